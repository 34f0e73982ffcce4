//! Logging: one line per call on stderr, written by a thread of its own.
//!
//! A stderr that nobody reads fills up, and a write to it then blocks. The
//! feed thread, the accept loop and the connection threads therefore only
//! hand their lines to a bounded queue ([`line()`], behind the `log!` macro);
//! lines that do not fit are counted and reported once stderr drains. Only
//! the lines written just before the process exits go out directly
//! ([`write_now`]).

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::OnceLock;
use std::thread;

/// Lines the queue holds before new ones are dropped (and counted).
const QUEUE_LINES: usize = 4096;

static QUEUE: OnceLock<Option<SyncSender<String>>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Queues one line for stderr. Never blocks; if the logger thread cannot
/// be started, writes the line itself.
pub fn line(text: String) {
    match QUEUE.get_or_init(start_logger) {
        Some(queue) => {
            if queue.try_send(text).is_err() {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => write_now(&text),
    }
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
            }
        });
    spawned.ok().map(|_| queue)
}

/// Writes one line to stderr now, in one `write`, ignoring a failure (a
/// closed stderr): unlike `eprintln!`, it never panics.
pub fn write_now(text: &str) {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    let _ = std::io::stderr().write_all(&bytes);
}
