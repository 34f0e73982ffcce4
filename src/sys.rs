//! The one module with `unsafe` code: widening the listen backlog.
//!
//! `TcpListener::bind` listens with a backlog of 128, and std offers no way
//! to change it. A reconnect storm (after a restart every browser comes
//! back `--retry` later, at once) overflows that queue: the kernel drops the
//! extra SYNs and each of those clients waits 1 s, then 3 s, ... to try
//! again. Measured with `tickstream-bench accept --clients 5000 --max-pending
//! 1000`: 2,631 stream connections per second and 2,336 dropped SYNs with
//! 128; see BENCHMARKS.md for the figure with the wider backlog. Calling
//! `listen(2)` again on a listening socket only changes its backlog; the
//! kernel caps it at `net.core.somaxconn`.
#![allow(unsafe_code)]

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::raw::c_int;

/// The backlog asked for; the kernel lowers it to `net.core.somaxconn`
/// (4096 by default since Linux 5.4).
pub const LISTEN_BACKLOG: c_int = 65_535;

extern "C" {
    fn listen(fd: c_int, backlog: c_int) -> c_int;
}

/// Sets the accept queue of a listening socket to [`LISTEN_BACKLOG`].
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
