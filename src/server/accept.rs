//! The accept loop: one thread that never blocks on a client. It answers
//! 503 itself (without a thread) when too many connections are still
//! sending their heads or the thread budget is spent, and otherwise spawns
//! one small-stack thread per connection. A failed `accept` or spawn (out of
//! file descriptors, threads or memory) is logged, backed off and survived.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::http::Reject;
use crate::server::reply::answer_busy;
use crate::server::{connection, Shared};

/// Stack of a connection thread. The deepest path touches 12 KiB of it;
/// a panic that prints a backtrace overflows 16 KiB (and a stack overflow
/// ends the whole process), so this is twice the smallest size that
/// survives one. Only touched pages cost memory (BENCHMARKS.md).
pub const CONNECTION_STACK_BYTES: usize = 64 * 1024;
/// Pause after a failed `accept` or thread spawn before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Complaints about a failing `accept` or spawn: at most one per this long.
const COMPLAINT_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the accept loop forever.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) -> ! {
    let mut last_complaint: Option<Instant> = None;
    let mut complain = |what: &str, error: &io::Error| {
        if last_complaint.is_none_or(|t| t.elapsed() >= COMPLAINT_INTERVAL) {
            crate::log!("tickstream: {what}: {error}; backing off");
            last_complaint = Some(Instant::now());
        }
        thread::sleep(ACCEPT_BACKOFF);
    };
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(_) if shared.stopping.load(Ordering::Relaxed) => loop {
                // The listener is closed; the stop thread ends the process.
                thread::park();
            },
            Err(e) => {
                complain("cannot accept", &e);
                continue;
            }
        };
        let connected_at = Instant::now();
        let Some(pending) = shared.pending_heads.try_enter() else {
            answer_busy(stream, &shared, &Reject::Busy.to_string());
            continue;
        };
        let Some(thread_pass) = shared.threads.try_enter() else {
            answer_busy(stream, &shared, "server at its thread limit; retry later");
            continue;
        };
        let thread_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("tickstream-conn".into())
            .stack_size(CONNECTION_STACK_BYTES)
            .spawn(move || {
                let _thread = thread_pass;
                connection::handle(stream, peer, connected_at, pending, &thread_shared)
            });
        // On failure the closure, the stream and both passes are dropped:
        // the client sees the connection close.
        if let Err(e) = spawned {
            complain("cannot spawn a connection thread", &e);
        }
    }
}

/// Errors of `accept` that concern one connection only.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
