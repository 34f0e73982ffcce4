//! `tickstream-bench floor`: the baseline of issue 6. An SSE server that
//! writes the same bytes as tickstream to the same number of sockets from
//! **one thread**, with plain `write` calls and no wake-ups, so the cost of
//! tickstream's thread-per-connection design is a measured ratio.
//!
//! One side thread accepts: it reads the request head (bounded in bytes and
//! time), writes the response head, `retry:` and the snapshot (the latest
//! batch), and hands the socket, now non-blocking, to the writer. The writer
//! (the main thread) makes one batch per `--interval` — one event per
//! symbol, tickstream's wire format, ids consecutive from the boot time in
//! µs, `ts` the batch's wall-clock ms — and writes it to every socket with
//! one `write` each. A socket that errors or cannot take the whole batch at
//! once is closed (there is no queue to fall back on). No heartbeats: the
//! benchmark intervals are far below tickstream's 15 s heartbeat.
//!
//! Seam rule, as in the spec: the acceptor takes the snapshot and joins the
//! writer's list under the same lock the writer holds while it replaces the
//! latest batch, so a client gets no gap and no duplicate.
//!
//! It runs until killed (`bench/run.sh` stops it by PID).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::FloorOpts;

/// Largest request head read, bytes.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A client must send its request head within this time.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Backoff after a failed `accept` (EMFILE ...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The stream's response head, byte for byte what the spec's "The stream"
/// section lists, then the `retry:` line.
const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
    Content-Type: text/event-stream; charset=utf-8\r\n\
    Cache-Control: no-cache\r\n\
    X-Accel-Buffering: no\r\n\
    Access-Control-Allow-Origin: *\r\n\
    Connection: close\r\n\r\n\
    retry: 3000\n\n";

/// State shared by the acceptor and the writer.
struct Shared {
    /// The latest batch: the snapshot a new client gets.
    latest: Vec<u8>,
    /// Clients accepted since the writer last looked.
    joined: Vec<TcpStream>,
}

/// Binds, prints the listening line, and serves until killed.
pub fn run(o: &FloorOpts) -> Result<(), String> {
    let listener = TcpListener::bind(o.addr).map_err(|e| format!("cannot bind {}: {e}", o.addr))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let mut feed = Feed::new(&o.symbols);
    // A first batch at once, as tickstream's feed ticks at start: a new
    // client's snapshot is never empty.
    let shared = Arc::new(Mutex::new(Shared {
        latest: feed.batch(),
        joined: Vec::new(),
    }));
    let acceptor_shared = Arc::clone(&shared);
    thread::Builder::new()
        .name("floor-accept".into())
        .spawn(move || accept_loop(&listener, &acceptor_shared))
        .map_err(|e| format!("cannot spawn the accept thread: {e}"))?;
    eprintln!("tickstream-floor listening on http://{local}/");

    let mut clients: Vec<TcpStream> = Vec::new();
    let mut next_tick = Instant::now() + o.interval;
    loop {
        thread::sleep(next_tick.saturating_duration_since(Instant::now()));
        next_tick += o.interval;
        let batch = feed.batch();
        {
            let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
            s.latest.clone_from(&batch);
            clients.append(&mut s.joined);
        }
        clients.retain_mut(|c| matches!(c.write(&batch), Ok(n) if n == batch.len()));
    }
}

fn accept_loop(listener: &TcpListener, shared: &Mutex<Shared>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                // A client that misbehaves is simply dropped.
                let _ = admit(stream, shared);
            }
            Err(e) => {
                eprintln!("tickstream-floor: accept failed: {e}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Reads the request head and answers it: the stream for `GET /prices...`,
/// a 404 or 400 otherwise.
fn admit(mut stream: TcpStream, shared: &Mutex<Shared>) -> io::Result<()> {
    stream.set_read_timeout(Some(HEAD_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() + n > MAX_HEAD_BYTES {
            return Err(ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    if !head.starts_with(b"GET /prices") {
        let reply: &[u8] = if head.starts_with(b"GET ") {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n"
        } else {
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n"
        };
        return stream.write_all(reply);
    }
    let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let mut first = STREAM_HEAD.to_vec();
    first.extend_from_slice(&s.latest);
    stream.write_all(&first)?;
    stream.set_nonblocking(true)?;
    s.joined.push(stream);
    Ok(())
}

/// A random walk per symbol, formatted as tickstream's events.
struct Feed {
    symbols: Vec<(String, f64)>,
    next_id: u64,
    rng: u64,
}

impl Feed {
    fn new(symbols: &[String]) -> Self {
        let boot_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Self {
            symbols: symbols
                .iter()
                .map(|s| (s.clone(), crate::feed::start_price(s)))
                .collect(),
            next_id: boot_us,
            rng: boot_us | 1,
        }
    }

    /// One event per symbol, ids consecutive, all with this moment's `ts`.
    fn batch(&mut self) -> Vec<u8> {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut out = Vec::with_capacity(80 * self.symbols.len());
        for k in 0..self.symbols.len() {
            // xorshift64: uniform in [0, 1), then a ±0.1 % step.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let u = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
            let (symbol, price) = &mut self.symbols[k];
            *price *= 1.0 + 0.002 * (u - 0.5);
            let decimals = if *price >= 1.0 { 2 } else { 4 };
            let _ = write!(
                out,
                "id: {}\ndata: {{\"symbol\":\"{symbol}\",\"price\":{price:.decimals$},\"ts\":{ts}}}\n\n",
                self.next_id
            );
            self.next_id += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::{EventId, Item, Parser};

    #[test]
    fn batches_parse_as_consecutive_well_formed_events() {
        let mut feed = Feed::new(&["BTC".into(), "DOGE".into(), "NEW".into()]);
        let mut bytes = STREAM_HEAD.to_vec();
        for _ in 0..100 {
            bytes.extend(feed.batch());
        }
        let mut items = Vec::new();
        Parser::new().feed(&bytes, &mut items).unwrap();
        let ids: Vec<u64> = items
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => {
                    assert!(e.well_formed && e.ts.is_some(), "{e:?}");
                    match e.id {
                        Some(EventId::Counter(n)) => Some(n),
                        other => panic!("{other:?}"),
                    }
                }
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 300);
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    }
}
