//! The `tickstream` binary: everything lives in the library, so it can be
//! tested. Only the re-execution that drops std's per-thread signal stacks
//! happens here, before any other thread exists or any file is opened: a
//! library call (say, from a test) must never re-execute its caller. The
//! stop signals are blocked here too, for the same reason: before any
//! thread exists.

use std::process::ExitCode;

fn main() -> ExitCode {
    let signal_stacks_dropped = tickstream::sys::drop_signal_stacks();
    // Before any thread exists, so that every thread inherits the mask.
    let signals = tickstream::sys::block_stop_signals();
    tickstream::run(std::env::args_os().skip(1), signal_stacks_dropped, signals)
}
