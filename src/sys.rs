//! The one module with `unsafe` code: libc calls std does not offer, each
//! for a measured or specified need.
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
//! - **Small threads, by glibc's tunables.** The same re-exec sets
//!   `GLIBC_TUNABLES` (before any the user set, so theirs win): no per-thread
//!   cache of freed chunks, and a static TLS reserve for one link namespace.
//!   `GLIBC_TUNABLES` below says what each buys.
//! - **systemd's `MONOTONIC_USEC=`** needs `CLOCK_MONOTONIC`'s value, which
//!   std's `Instant` hides: `clock_gettime(2)`.
//! - **Stopping on SIGTERM and SIGINT, reloading on SIGHUP** (README,
//!   "Stopping"). No handler runs code: `main` blocks the three signals
//!   before any thread exists (threads inherit the mask), and one thread
//!   takes them with `sigwait`. Closing
//!   the listening socket "at once" while the accept loop is blocked in
//!   `accept` is `shutdown(SHUT_RD)`: Linux then refuses new connections
//!   and wakes the `accept`.
//! - **Reading the mapping limit**, to keep the thread count within it
//!   ([`thread_budget`]), needs no `unsafe` but belongs with it.
//!
//! The signal numbers, the `sigset_t` size and `/proc` are Linux's (glibc
//! and musl): elsewhere each function is a plain fallback (std's backlog,
//! std's signal stacks, no mapping limit, no graceful stop).
#![allow(unsafe_code)]

#[cfg(target_os = "linux")]
pub use linux::*;

/// What a signal taken by [`StopSignals::wait`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: stop.
    Stop,
    /// SIGHUP: read the key file again.
    Reload,
}
#[cfg(not(target_os = "linux"))]
pub use other::*;

/// Mappings kept free for the heap, libraries and the main threads.
const RESERVED_MAPPINGS: usize = 4096;

/// Memory mappings a connection thread costs: its stack and guard page, and
/// std's signal stack and guard page unless [`drop_signal_stacks`] worked.
pub fn mappings_per_thread(signal_stacks_dropped: bool) -> usize {
    if signal_stacks_dropped {
        2
    } else {
        4
    }
}

fn budget(max_map_count: usize, mappings_per_thread: usize) -> usize {
    max_map_count.saturating_sub(RESERVED_MAPPINGS) / mappings_per_thread.max(1)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::os::raw::c_int;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// The backlog asked for; the kernel lowers it to `net.core.somaxconn`
    /// (4096 by default since Linux 5.4).
    pub const LISTEN_BACKLOG: c_int = 65_535;

    const SIGHUP: c_int = 1;
    const SIGINT: c_int = 2;
    const SIGBUS: c_int = 7;
    const SIGSEGV: c_int = 11;
    const SIGTERM: c_int = 15;
    const SIG_DFL: usize = 0;
    const SIG_IGN: usize = 1;
    const SIG_BLOCK: c_int = 0;
    /// Set in the environment of the re-executed program.
    const REEXEC_MARK: &str = "TICKSTREAM_REEXECUTED";
    /// glibc's settings for the re-executed program, each buying RSS per
    /// connection thread (BENCHMARKS.md, issue 17: 12.6 -> 10.6 KiB per
    /// client at 5,000 @ 1 s). `tcache_count=0`: a thread's freed chunks go
    /// back to its arena instead of a cache of its own, where they stayed
    /// resident for the stream's whole life (heap 5.7 -> 2.6 KiB per
    /// client). `rtld.nns=1`: the static TLS reserve at the top of every
    /// thread's stack is sized for one link namespace, not four (we never
    /// call `dlmopen`), 864 bytes less; without it, one stream thread in
    /// five touched a third stack page (8,088 bytes deep, up to 8,248 with
    /// glibc's slower malloc path; now 7,304, never past two pages).
    const GLIBC_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.rtld.nns=1";
    const SHUT_RD: c_int = 0;

    /// `sigset_t`: 1,024 bits in glibc and musl.
    #[repr(C)]
    struct SigSet([u64; 16]);

    extern "C" {
        fn listen(fd: c_int, backlog: c_int) -> c_int;
        fn signal(signum: c_int, handler: usize) -> usize;
        fn sigemptyset(set: *mut SigSet) -> c_int;
        fn sigaddset(set: *mut SigSet, signum: c_int) -> c_int;
        fn pthread_sigmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
        fn sigwait(set: *const SigSet, signum: *mut c_int) -> c_int;
        fn shutdown(fd: c_int, how: c_int) -> c_int;
        fn clock_gettime(clock: c_int, time: *mut [i64; 2]) -> c_int;
    }

    const CLOCK_MONOTONIC: c_int = 1;

    /// `CLOCK_MONOTONIC` in microseconds, as systemd's `MONOTONIC_USEC=`
    /// wants it (std's `Instant` does not show its value).
    pub fn monotonic_micros() -> u64 {
        let mut time = [0i64; 2];
        // SAFETY: clock_gettime(2) writes one `struct timespec` (two 64-bit
        // fields on 64-bit Linux) to a pointer that is valid for the call.
        let _ = unsafe { clock_gettime(CLOCK_MONOTONIC, &mut time) };
        time[0] as u64 * 1_000_000 + time[1] as u64 / 1_000
    }

    fn check(result: c_int) -> io::Result<()> {
        match result {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Sets the accept queue of a listening socket to [`LISTEN_BACKLOG`].
    pub fn widen_backlog(listener: &TcpListener) -> io::Result<()> {
        // SAFETY: listen(2) takes a descriptor and an integer and touches no
        // memory of ours; the descriptor stays open while `listener` is
        // borrowed.
        check(unsafe { listen(listener.as_raw_fd(), LISTEN_BACKLOG) })
    }

    /// Stops a listening socket from taking connections, now: new connects
    /// are refused and a thread blocked in `accept` on it wakes with an
    /// error.
    pub fn stop_listening(listener: &TcpListener) -> io::Result<()> {
        // SAFETY: shutdown(2) takes a descriptor and an integer and touches
        // no memory of ours; the descriptor stays open while borrowed.
        check(unsafe { shutdown(listener.as_raw_fd(), SHUT_RD) })
    }

    /// Makes sure threads spawned from now on get no alternate signal stack:
    /// on the first start, re-executes the program with its own arguments and
    /// with SIGSEGV and SIGBUS ignored (this call then never returns); on the
    /// second, when both arrive ignored, restores their default dispositions
    /// and returns `true`. Returns `false` if the program could not be
    /// re-executed (threads then keep their signal stacks). Call it from
    /// `main`, before any other thread exists and before any file is opened.
    pub fn drop_signal_stacks() -> bool {
        // SAFETY: signal(2) with SIG_IGN or SIG_DFL installs no code and
        // touches no memory of ours; no other thread exists yet to race with.
        let (segv, bus) = unsafe { (signal(SIGSEGV, SIG_IGN), signal(SIGBUS, SIG_IGN)) };
        // std installs its handler (and with it the signal stacks) for each of
        // the two that is at its default, so both must have been ignored.
        let dropped = segv == SIG_IGN && bus == SIG_IGN;
        // At most once: a tool that installs its own SIGSEGV handler before
        // `main` (a sanitizer, valgrind) must not make this loop.
        if !dropped && std::env::var_os(REEXEC_MARK).is_none() {
            if let Ok(program) = std::env::current_exe() {
                // Only returns if the exec failed.
                // The user's own tunables come last, so they win.
                let mut tunables = std::ffi::OsString::from(GLIBC_TUNABLES);
                if let Some(theirs) = std::env::var_os("GLIBC_TUNABLES") {
                    tunables.push(":");
                    tunables.push(theirs);
                }
                let _ = Command::new(program)
                    .args(std::env::args_os().skip(1))
                    .env(REEXEC_MARK, "1")
                    .env("GLIBC_TUNABLES", tunables)
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

    /// SIGTERM, SIGINT and SIGHUP, blocked in every thread, to be taken by
    /// [`StopSignals::wait`].
    pub struct StopSignals(SigSet);

    /// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and every
    /// thread it spawns from now on. Call it from `main` before any other thread
    /// exists, so that no thread is left for the kernel to deliver them to.
    pub fn block_stop_signals() -> StopSignals {
        let mut set = SigSet([0; 16]);
        // SAFETY: the set is a valid, owned sigset_t-sized buffer; the calls
        // only write it (sigemptyset, sigaddset) or read it and change this
        // thread's mask (pthread_sigmask, with no old set asked for).
        unsafe {
            sigemptyset(&mut set);
            sigaddset(&mut set, SIGTERM);
            sigaddset(&mut set, SIGINT);
            sigaddset(&mut set, SIGHUP);
            pthread_sigmask(SIG_BLOCK, &set, std::ptr::null_mut());
        }
        StopSignals(set)
    }

    impl StopSignals {
        /// Waits for the next SIGTERM, SIGINT or SIGHUP.
        pub fn wait(&self) -> super::Signal {
            let mut signum: c_int = 0;
            // SAFETY: both pointers are valid for the call; sigwait only reads
            // the set and writes the signal number.
            while unsafe { sigwait(&self.0, &mut signum) } != 0 {}
            match signum {
                SIGHUP => super::Signal::Reload,
                _ => super::Signal::Stop,
            }
        }
    }

    /// How many connection threads fit under `vm.max_map_count` (read from
    /// `/proc`, 65,530 if unreadable). Past it a new mapping would fail, and
    /// std aborts the process when a thread's or an allocation's mapping
    /// fails.
    pub fn thread_budget(mappings_per_thread: usize) -> usize {
        let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(65_530);
        super::budget(max_map_count, mappings_per_thread)
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use std::io;
    use std::net::TcpListener;

    /// Keeps std's backlog.
    pub fn widen_backlog(_listener: &TcpListener) -> io::Result<()> {
        Ok(())
    }

    /// Not offered here: the listener keeps listening until the process ends.
    pub fn stop_listening(_listener: &TcpListener) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Threads keep their signal stacks: `false`.
    pub fn drop_signal_stacks() -> bool {
        false
    }

    /// No graceful stop here: signals keep their default action.
    pub struct StopSignals;

    /// Leaves the signals alone.
    pub fn block_stop_signals() -> StopSignals {
        StopSignals
    }

    impl StopSignals {
        /// Never returns: the default action ends the process.
        pub fn wait(&self) -> super::Signal {
            loop {
                std::thread::park();
            }
        }
    }

    /// No monotonic clock reading is offered here: 0.
    pub fn monotonic_micros() -> u64 {
        0
    }

    /// No known mapping limit.
    pub fn thread_budget(_mappings_per_thread: usize) -> usize {
        usize::MAX
    }
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
