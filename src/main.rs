//! The `tickstream` binary: everything lives in the library, so it can be
//! tested.

use std::process::ExitCode;

fn main() -> ExitCode {
    tickstream::run(std::env::args_os().skip(1))
}
