//! tickstream-peer: the comparison peer of the benchmarks. It serves the same
//! bytes as tickstream's `GET /prices` (spec, "The stream") from axum on a
//! multi-threaded tokio runtime, fed through one `tokio::sync::broadcast`
//! channel, so the load generator can compare tickstream's thread per
//! connection with the usual async design on the same box.
//!
//! - One feed produces ticks: `sim` (a random walk, one event per symbol per
//!   `--interval` on a fixed schedule; missed ticks are published late, never
//!   skipped) or `stdin` (`SYMBOL PRICE [TS_MS]` lines; lines that arrive
//!   together make one tick). Ids are consecutive from the boot time in µs.
//! - A tick is encoded once into [`Bytes`] and broadcast as an `Arc<Tick>`;
//!   every plain stream writes those same bytes. The channel holds 256 ticks:
//!   a receiver that falls further behind (`Lagged`) is disconnected, like
//!   tickstream's slow-client drop.
//! - `?throttle=DUR` (100ms to 1h) conflates: each connection keeps the
//!   newest event per symbol and writes them, in id order, once per `DUR`.
//!
//! Left out on purpose: the snapshot and `Last-Event-ID` catch-up, heartbeats,
//! `?symbols=`, and every route but `/prices`. It is a benchmark peer, not a
//! product, and lives outside the server's workspace: CI never builds it.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError, Receiver, Sender};
use tokio::time::{interval, MissedTickBehavior};

/// Ticks the broadcast channel holds before a slow receiver lags.
const CAPACITY: usize = 256;
/// The first bytes of every stream: the browser's reconnect delay.
const RETRY: &[u8] = b"retry: 3000\n\n";
/// Longest stdin line, newline not counted (as tickstream).
const MAX_LINE: usize = 4096;

/// One published tick, encoded once and shared by every connection.
struct Tick {
    /// All the tick's events back to back: what a plain stream writes.
    bytes: Bytes,
    /// Each event's symbol, id and slice of `bytes`, for conflation.
    events: Vec<(Arc<str>, u64, Bytes)>,
}

/// A feed's event before encoding: symbol, price as written, `ts` in ms.
type Event = (Arc<str>, String, u64);

/// Command-line options.
struct Opts {
    addr: SocketAddr,
    stdin: bool,
    symbols: Vec<String>,
    interval: Duration,
    seed: u64,
}

const USAGE: &str = "usage: tickstream-peer [--addr IP:PORT] [--feed sim|stdin] \
[--symbols BTC,ETH,SOL] [--interval DUR] [--seed N]";

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tickstream-peer: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(opts.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tickstream-peer: cannot bind {}: {e}", opts.addr);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(opts.addr);
    eprintln!("tickstream-peer listening on http://{local}/");

    // The app keeps a sender, so the channel never closes (after a stdin
    // EOF, connected clients stay connected, as with tickstream).
    let (tx, _) = broadcast::channel(CAPACITY);
    let publisher = Publisher::new(tx.clone());
    if opts.stdin {
        std::thread::spawn(move || stdin_feed(publisher));
    } else {
        tokio::spawn(sim_feed(opts, publisher));
    }
    let app = Router::new().route("/prices", get(prices)).with_state(tx);
    // Nagle off, as tickstream: each tick is one small write.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tickstream-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `GET /prices[?throttle=DUR]`: the event stream, plain or conflated.
async fn prices(
    State(tx): State<Sender<Arc<Tick>>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let body = match query.get("throttle") {
        None => Body::from_stream(plain(tx.subscribe())),
        Some(text) => match parse_duration(text)
            .filter(|d| (Duration::from_millis(100)..=Duration::from_secs(3600)).contains(d))
        {
            Some(every) => Body::from_stream(throttled(tx.subscribe(), every)),
            None => {
                let msg = "throttle: expected a duration from 100ms to 1h\n";
                return (StatusCode::BAD_REQUEST, msg).into_response();
            }
        },
    };
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
    ];
    (headers, body).into_response()
}

/// `retry:`, then every tick's shared bytes. A lagged receiver ends the body
/// with an error, which makes hyper close the connection.
fn plain(rx: Receiver<Arc<Tick>>) -> impl Stream<Item = io::Result<Bytes>> {
    let live = stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Ok(tick) => Some((Ok(tick.bytes.clone()), Some(rx))),
            Err(RecvError::Lagged(n)) => {
                let why = format!("slow client dropped: it lagged {n} ticks behind");
                eprintln!("tickstream-peer: {why}");
                Some((Err(io::Error::other(why)), None))
            }
            Err(RecvError::Closed) => None,
        }
    });
    stream::once(async { Ok(Bytes::from_static(RETRY)) }).chain(live)
}

/// `retry:`, then at most one write every `every`: the newest event of each
/// symbol that changed since the last write, in id order. Its backlog is one
/// event per symbol, so it is never dropped as slow (spec): after a lag it
/// simply goes on from the oldest tick still in the channel.
fn throttled(rx: Receiver<Arc<Tick>>, every: Duration) -> impl Stream<Item = io::Result<Bytes>> {
    let mut ticker = interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let state = (rx, ticker, HashMap::<Arc<str>, (u64, Bytes)>::new());
    let live = stream::unfold(state, |(mut rx, mut ticker, mut latest)| async move {
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(tick) => {
                        for (symbol, id, bytes) in &tick.events {
                            latest.insert(Arc::clone(symbol), (*id, bytes.clone()));
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                },
                _ = ticker.tick(), if !latest.is_empty() => {
                    let mut events: Vec<(u64, Bytes)> = latest.drain().map(|(_, e)| e).collect();
                    events.sort_unstable_by_key(|e| e.0);
                    let out: Vec<u8> = events.iter().flat_map(|e| e.1.iter().copied()).collect();
                    return Some((Ok(Bytes::from(out)), (rx, ticker, latest)));
                }
            }
        }
    });
    stream::once(async { Ok(Bytes::from_static(RETRY)) }).chain(live)
}

/// Numbers events and encodes ticks; owned by the one feed.
struct Publisher {
    tx: Sender<Arc<Tick>>,
    next_id: u64,
}

impl Publisher {
    /// Ids start at the boot time in µs (spec, "The stream").
    fn new(tx: Sender<Arc<Tick>>) -> Self {
        let boot_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Self {
            tx,
            next_id: boot_us,
        }
    }

    /// Encodes `(symbol, price, ts_ms)` events as one tick and broadcasts it.
    fn publish(&mut self, events: &[Event]) {
        use std::io::Write;
        if events.is_empty() {
            return;
        }
        let mut buf = Vec::with_capacity(80 * events.len());
        let mut spans = Vec::with_capacity(events.len());
        for (symbol, price, ts) in events {
            let start = buf.len();
            let _ = write!(
                buf,
                "id: {}\ndata: {{\"symbol\":\"{symbol}\",\"price\":{price},\"ts\":{ts}}}\n\n",
                self.next_id
            );
            spans.push((Arc::clone(symbol), self.next_id, start..buf.len()));
            self.next_id += 1;
        }
        let bytes = Bytes::from(buf);
        let events = spans
            .into_iter()
            .map(|(s, id, span)| (s, id, bytes.slice(span)))
            .collect();
        // An error only means nobody is connected.
        let _ = self.tx.send(Arc::new(Tick { bytes, events }));
    }
}

/// The sim feed: one event per symbol per tick on a fixed schedule
/// (`MissedTickBehavior::Burst`: a late tick is published late, none is
/// skipped), prices a ±0.1 % random walk from each symbol's start.
async fn sim_feed(opts: Opts, mut publisher: Publisher) {
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let start = |s: &str| match s {
        "BTC" => 64000.0,
        "ETH" => 3200.0,
        "SOL" => 150.0,
        "XRP" => 0.6,
        "DOGE" => 0.15,
        _ => 100.0,
    };
    let mut walks: Vec<(Arc<str>, f64)> = opts
        .symbols
        .iter()
        .map(|s| (Arc::from(s.as_str()), start(s)))
        .collect();
    let mut ticker = interval(opts.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut events = Vec::with_capacity(walks.len());
    loop {
        ticker.tick().await;
        let ts = now_ms();
        events.clear();
        for (symbol, price) in &mut walks {
            *price *= 1.0 + 0.002 * (rng.f64() - 0.5);
            events.push((Arc::clone(symbol), format_price(*price), ts));
        }
        publisher.publish(&events);
    }
}

/// As tickstream: 2 decimals from 100 up, 4 from 1, else 6.
fn format_price(price: f64) -> String {
    let decimals = if price >= 100.0 {
        2
    } else if price >= 1.0 {
        4
    } else {
        6
    };
    format!("{price:.decimals$}")
}

/// The stdin feed, on its own thread (a blocking read is simplest there):
/// every valid line becomes one event; lines already buffered together are
/// published as one tick, never held back waiting for more input.
fn stdin_feed(mut publisher: Publisher) {
    let mut reader = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut line = Vec::with_capacity(256);
    let mut batch = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => number += 1,
            Err(e) => {
                eprintln!("tickstream-peer: cannot read stdin: {e}");
                break;
            }
        }
        match parse_line(&line) {
            Ok(Some(event)) => batch.push(event),
            Ok(None) => {}
            Err(why) => eprintln!("tickstream-peer: stdin line {number} skipped: {why}"),
        }
        if !reader.buffer().contains(&b'\n') {
            publisher.publish(&batch);
            batch.clear();
        }
    }
    publisher.publish(&batch);
    eprintln!("tickstream-peer: stdin feed ended after {number} lines; still serving");
}

/// `SYMBOL PRICE [TS_MS]` (spec, "Feeds"); `Ok(None)` for a blank line.
fn parse_line(line: &[u8]) -> Result<Option<Event>, &'static str> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err("longer than 4 KiB");
    }
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8")?;
    let mut fields = text.split([' ', '\t']).filter(|f| !f.is_empty());
    let Some(symbol) = fields.next() else {
        return Ok(None);
    };
    let (Some(price), ts, None) = (fields.next(), fields.next(), fields.next()) else {
        return Err("expected SYMBOL PRICE [TS_MS]");
    };
    let symbol_ok = symbol.len() <= 16
        && symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !symbol_ok {
        return Err("bad symbol");
    }
    let (int, frac) = price.split_once('.').unwrap_or((price, "0"));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let value: f64 = price.parse().unwrap_or(0.0);
    if !(digits(int) && digits(frac) && value > 0.0 && value.is_finite()) {
        return Err("bad price");
    }
    // Leading zeros dropped, one kept before the point.
    let zeros = (int.len() - int.trim_start_matches('0').len()).min(int.len() - 1);
    let price = &price[zeros..];
    let ts = match ts {
        None => now_ms(),
        Some(t) if digits(t) => t.parse().map_err(|_| "bad timestamp")?,
        Some(_) => return Err("bad timestamp"),
    };
    Ok(Some((
        Arc::from(symbol.to_ascii_uppercase()),
        price.to_owned(),
        ts,
    )))
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `250ms`, `1s`, `2m`, `1h`.
fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().ok()?;
    let secs = |k: u64| n.checked_mul(k).map(Duration::from_secs);
    match &s[digits..] {
        "ms" => Some(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        _ => None,
    }
}

/// `--flag value` or `--flag=value`; `Ok(None)` for `--help`.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Opts>, String> {
    let mut opts = Opts {
        addr: SocketAddr::from(([127, 0, 0, 1], 4444)),
        stdin: false,
        symbols: ["BTC", "ETH", "SOL", "XRP", "DOGE"]
            .map(String::from)
            .to_vec(),
        interval: Duration::from_secs(1),
        seed: fastrand::u64(..),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), v.to_owned()),
            None => {
                let v = args.next().ok_or(format!("{arg}: missing value"))?;
                (arg, v)
            }
        };
        let bad = |what: &str| format!("{flag}: {what}, got {value:?}");
        match flag.as_str() {
            "--addr" => opts.addr = value.parse().map_err(|_| bad("expected IP:PORT"))?,
            "--feed" => {
                opts.stdin = match value.as_str() {
                    "sim" => false,
                    "stdin" => true,
                    _ => return Err(bad("expected sim or stdin")),
                }
            }
            "--symbols" => {
                opts.symbols = value
                    .split(',')
                    .map(|s| s.trim().to_ascii_uppercase())
                    .collect();
                if opts.symbols.iter().any(|s| s.is_empty()) {
                    return Err(bad("expected a list like BTC,ETH"));
                }
            }
            "--interval" => {
                opts.interval = parse_duration(&value)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| bad("expected a duration like 2ms, 100ms or 1s"))?;
            }
            "--seed" => opts.seed = value.parse().map_err(|_| bad("expected a number"))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Some(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_lines() {
        let ok = parse_line(b"btc\t007.50  1764028800123\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (&*ok.0, ok.1.as_str(), ok.2),
            ("BTC", "7.50", 1764028800123)
        );
        assert_eq!(parse_line(b"X 0.5").unwrap().unwrap().1, "0.5");
        assert!(parse_line(b"  \n").unwrap().is_none());
        for bad in [
            "BTC",
            "BTC 0",
            "BTC -1",
            "BTC 1e3",
            "BTC 1.",
            "B/C 1",
            "BTC 1 x",
            "BTC 1 2 3",
        ] {
            assert!(parse_line(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn ticks_are_encoded_once_with_consecutive_ids() {
        let (tx, mut rx) = broadcast::channel(4);
        let mut p = Publisher::new(tx);
        let first = p.next_id;
        let sym = |s: &str| Arc::<str>::from(s);
        p.publish(&[
            (sym("BTC"), "64123.17".into(), 5),
            (sym("ETH"), "3200.00".into(), 5),
        ]);
        let tick = rx.try_recv().unwrap();
        let want = format!(
            "id: {first}\ndata: {{\"symbol\":\"BTC\",\"price\":64123.17,\"ts\":5}}\n\n\
             id: {}\ndata: {{\"symbol\":\"ETH\",\"price\":3200.00,\"ts\":5}}\n\n",
            first + 1
        );
        assert_eq!(&tick.bytes[..], want.as_bytes());
        assert_eq!(tick.events[1].1, first + 1);
        assert!(want.ends_with(std::str::from_utf8(&tick.events[1].2).unwrap()));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2ms"), Some(Duration::from_millis(2)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1"), None);
    }
}
