//! The one module with `unsafe` code: two libc calls std does not offer
//! (`listen` and `signal`), each for a measured need.
//!
//! - **A wider listen backlog.** `TcpListener::bind` listens with a backlog
//!   of 128. A reconnect storm (after a restart every browser comes back
//!   `--retry` later, at once) overflows it: the kernel drops the extra SYNs
//!   and each of those clients waits 1 s, then 3 s, ... Measured with
//!   `tickstream-bench accept --clients 5000 --max-pending 1000`: 2,631
//!   connections/s and 2,336 dropped SYNs with 128, 16,512/s and none with
//!   the kernel's maximum. Calling `listen(2)` again only changes the backlog.
//! - **No per-thread signal stacks.** std gives every thread it spawns an
//!   alternate signal stack with a guard page (two memory mappings, on top of
//!   the stack and its own guard), so that it can report a stack overflow.
//!   At four mappings a thread, `vm.max_map_count` (65,530 by default) caps a
//!   thread-per-connection server near 16,000 clients, and the mapping that
//!   fails makes std abort the whole process. std sets these stacks up only
//!   when SIGSEGV is at its default disposition at start; an ignored signal
//!   survives `exec`, so the server re-executes itself once with SIGSEGV and
//!   SIGBUS ignored, then restores their defaults. A stack overflow still
//!   ends the process with SIGSEGV, only without std's message.
//! - **Reading the limit above**, to keep the thread count within it
//!   ([`thread_budget`]), needs no `unsafe` but belongs with it.
//!
//! The signal numbers and `/proc` are Linux's: elsewhere each function is a
//! plain fallback (std's backlog, std's signal stacks, no mapping limit).
#![allow(unsafe_code)]

use std::io;
use std::net::TcpListener;

#[cfg(target_os = "linux")]
use std::{os::fd::AsRawFd, os::raw::c_int, os::unix::process::CommandExt, process::Command};

/// The backlog asked for; the kernel lowers it to `net.core.somaxconn`
/// (4096 by default since Linux 5.4).
#[cfg(target_os = "linux")]
pub const LISTEN_BACKLOG: c_int = 65_535;

#[cfg(target_os = "linux")]
const SIGBUS: c_int = 7;
#[cfg(target_os = "linux")]
const SIGSEGV: c_int = 11;
#[cfg(target_os = "linux")]
const SIG_DFL: usize = 0;
#[cfg(target_os = "linux")]
const SIG_IGN: usize = 1;

#[cfg(target_os = "linux")]
extern "C" {
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
}

/// Sets the accept queue of a listening socket to [`LISTEN_BACKLOG`]
/// (elsewhere than Linux: keeps std's).
#[cfg(not(target_os = "linux"))]
pub fn widen_backlog(_listener: &TcpListener) -> io::Result<()> {
    Ok(())
}

/// Sets the accept queue of a listening socket to [`LISTEN_BACKLOG`].
#[cfg(target_os = "linux")]
pub fn widen_backlog(listener: &TcpListener) -> io::Result<()> {
    // SAFETY: listen(2) takes a descriptor and an integer and touches no
    // memory of ours; the descriptor stays open while `listener` is borrowed.
    let result = unsafe { listen(listener.as_raw_fd(), LISTEN_BACKLOG) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere than Linux threads keep their signal stacks: `false`.
#[cfg(not(target_os = "linux"))]
pub fn drop_signal_stacks() -> bool {
    false
}

/// Makes sure threads spawned from now on get no alternate signal stack:
/// on the first start, re-executes the program with its own arguments and
/// with SIGSEGV and SIGBUS ignored (this call then never returns); on the
/// second, when both arrive ignored, restores their default dispositions
/// and returns `true`. Returns `false` if the program could not be
/// re-executed (threads then keep their signal stacks). Call it from
/// `main`, before any other thread exists and before any file is opened.
#[cfg(target_os = "linux")]
pub fn drop_signal_stacks() -> bool {
    // SAFETY: signal(2) with SIG_IGN or SIG_DFL installs no code and touches
    // no memory of ours; no other thread exists yet to race with.
    let (segv, bus) = unsafe { (signal(SIGSEGV, SIG_IGN), signal(SIGBUS, SIG_IGN)) };
    // std installs its handler (and with it the signal stacks) for each of
    // the two that is at its default, so both must have been ignored.
    let dropped = segv == SIG_IGN && bus == SIG_IGN;
    if !dropped {
        if let Ok(program) = std::env::current_exe() {
            // Only returns if the exec failed.
            let _ = Command::new(program)
                .args(std::env::args_os().skip(1))
                .exec();
        }
    }
    // Re-executed, or the exec failed: either way, back to the defaults.
    // SAFETY: as above.
    unsafe {
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
    }
    dropped
}

/// Memory mappings a connection thread costs: its stack and guard page, and
/// std's signal stack and guard page unless [`drop_signal_stacks`] worked.
pub fn mappings_per_thread(signal_stacks_dropped: bool) -> usize {
    if signal_stacks_dropped {
        2
    } else {
        4
    }
}

/// Mappings kept free for the heap, libraries and the main threads.
const RESERVED_MAPPINGS: usize = 4096;

/// How many connection threads fit under `vm.max_map_count` (read from
/// `/proc`, 65,530 if unreadable). Past it a new mapping would fail, and
/// std aborts the process when a thread's or an allocation's mapping fails.
pub fn thread_budget(mappings_per_thread: usize) -> usize {
    if cfg!(not(target_os = "linux")) {
        return usize::MAX;
    }
    let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(65_530);
    budget(max_map_count, mappings_per_thread)
}

fn budget(max_map_count: usize, mappings_per_thread: usize) -> usize {
    max_map_count.saturating_sub(RESERVED_MAPPINGS) / mappings_per_thread.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        assert_eq!(budget(65_530, 2), 30_717);
        assert_eq!(budget(65_530, 4), 15_358);
        assert_eq!(budget(1_000, 2), 0);
        assert_eq!(mappings_per_thread(true), 2);
        assert_eq!(mappings_per_thread(false), 4);
    }
}
