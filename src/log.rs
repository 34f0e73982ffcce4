//! Logging: one line per call on stderr, written by a thread of its own.
//!
//! A stderr that nobody reads fills up, and a write to it then blocks. The
//! feed thread, the accept loop and the connection threads therefore only
//! hand their lines to a bounded queue ([`line()`], behind the `log!` macro);
//! lines that do not fit are counted and reported once stderr drains. Lines
//! written before the logger starts (a usage error) go out directly
//! ([`write_now`]); a process that exits first waits for the queue to drain
//! for a bounded time ([`flush`]), so no stop ever waits on stderr.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How long the last lines may wait for stderr before the process exits.
pub const FLUSH_WAIT: Duration = Duration::from_millis(500);
/// Lines the queue holds before new ones are dropped (and counted).
const QUEUE_LINES: usize = 4096;

static QUEUE: OnceLock<Option<SyncSender<String>>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines queued, and lines the logger has written (or failed to write).
static QUEUED: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Queues one line for stderr. Never blocks; if the logger thread cannot
/// be started, writes the line itself.
pub fn line(text: String) {
    let Some(queue) = QUEUE.get_or_init(start_logger) else {
        return write_now(&text);
    };
    match queue.try_send(text) {
        Ok(()) => QUEUED.fetch_add(1, Ordering::SeqCst),
        Err(_) => DROPPED.fetch_add(1, Ordering::Relaxed),
    };
}

fn start_logger() -> Option<SyncSender<String>> {
    let (queue, lines) = sync_channel::<String>(QUEUE_LINES);
    let spawned = thread::Builder::new()
        .name("tickstream-log".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            for text in lines {
                let dropped = DROPPED.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    write_now(&format!(
                        "tickstream: {dropped} log lines dropped: stderr was not being read"
                    ));
                }
                write_now(&text);
                WRITTEN.fetch_add(1, Ordering::SeqCst);
            }
        });
    spawned.ok().map(|_| queue)
}

/// Waits until every line queued so far is written, or [`FLUSH_WAIT`] has
/// passed (stderr is not being read): the last thing a process does before
/// it exits.
pub fn flush() {
    let (queued, until) = (QUEUED.load(Ordering::SeqCst), Instant::now() + FLUSH_WAIT);
    while WRITTEN.load(Ordering::SeqCst) < queued && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
}

/// Writes one line to stderr now, in one `write`, ignoring a failure (a
/// closed stderr): unlike `eprintln!`, it never panics.
pub fn write_now(text: &str) {
    let _ = std::io::stderr().write_all(format!("{text}\n").as_bytes());
}
