//! The feeds that produce prices: the simulated random walk and the stdin
//! line reader. Each runs on the one feed thread and publishes to the hub;
//! neither ever waits for a client.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::is_valid_symbol;
use crate::hub::{Hub, Price};
use crate::metrics::Metrics;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ---------------------------------------------------------------- sim feed

/// Starting price and volatility (per square root of a second) of the
/// built-in symbols; any other symbol starts at 100.
const KNOWN_SYMBOLS: [(&str, f64, f64); 5] = [
    ("BTC", 64_000.0, 0.000_8),
    ("ETH", 3_400.0, 0.001_0),
    ("SOL", 150.0, 0.001_5),
    ("XRP", 0.62, 0.001_5),
    ("DOGE", 0.16, 0.002_0),
];
const DEFAULT_START: f64 = 100.0;
const DEFAULT_VOLATILITY: f64 = 0.001;
/// The walk is pulled back towards its start with this half-life, and never
/// leaves a factor of [`MAX_DRIFT`] around it, so a server left running for
/// months still shows plausible prices.
const PULL_HALF_LIFE_SECS: f64 = 6.0 * 3600.0;
const MAX_DRIFT: f64 = 100.0;

struct Walk {
    symbol: Arc<str>,
    start_ln: f64,
    ln_price: f64,
    volatility: f64,
}

/// A geometric random walk per symbol (an Ornstein–Uhlenbeck process on the
/// log of the price), reproducible from its seed.
pub struct RandomWalk {
    rng: fastrand::Rng,
    walks: Vec<Walk>,
    dt_secs: f64,
}

impl RandomWalk {
    /// A walk over `symbols`, one step per `interval`, seeded with `seed`.
    pub fn new(symbols: &[String], interval: Duration, seed: u64) -> RandomWalk {
        let walks = symbols
            .iter()
            .map(|symbol| {
                let (start, volatility) = KNOWN_SYMBOLS
                    .iter()
                    .find(|(s, _, _)| s == symbol)
                    .map_or((DEFAULT_START, DEFAULT_VOLATILITY), |(_, p, v)| (*p, *v));
                Walk {
                    symbol: Arc::from(symbol.as_str()),
                    start_ln: start.ln(),
                    ln_price: start.ln(),
                    volatility,
                }
            })
            .collect();
        RandomWalk {
            rng: fastrand::Rng::with_seed(seed),
            walks,
            dt_secs: interval.as_secs_f64(),
        }
    }

    /// Moves every symbol one step; returns the new prices stamped `ts_ms`.
    pub fn step(&mut self, ts_ms: u64) -> Vec<Price> {
        let pull = 1.0 - 0.5f64.powf(self.dt_secs / PULL_HALF_LIFE_SECS);
        let mut prices = Vec::with_capacity(self.walks.len());
        for walk in &mut self.walks {
            // Box–Muller: a standard normal draw from two uniform ones.
            let u1 = 1.0 - self.rng.f64();
            let u2 = self.rng.f64();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let ln = walk.ln_price - pull * (walk.ln_price - walk.start_ln)
                + walk.volatility * self.dt_secs.sqrt() * z;
            let bound = MAX_DRIFT.ln();
            walk.ln_price = ln.clamp(walk.start_ln - bound, walk.start_ln + bound);
            prices.push(Price {
                symbol: Arc::clone(&walk.symbol),
                price: format_price(walk.ln_price.exp()),
                ts_ms,
            });
        }
        prices
    }
}

/// A price as a JSON number: 2 decimals from 100 up, 4 from 1, else 6.
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

/// Runs the sim feed forever: one tick every `interval`, on a fixed
/// schedule (a late tick does not shift the ones after it).
pub fn run_sim(mut walk: RandomWalk, interval: Duration, hub: &Hub, metrics: &Metrics) {
    let mut next = Instant::now();
    loop {
        let prices = walk.step(now_ms());
        metrics.published(hub.publish(&prices));
        next += interval;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else {
            // Fell behind (the host was suspended or overloaded): skip the
            // missed ticks rather than bursting them out.
            next = now;
        }
    }
}

// -------------------------------------------------------------- stdin feed

/// Longest stdin line accepted, in bytes, not counting its newline.
pub const MAX_LINE_BYTES: usize = 4 * 1024;
/// Most lines published as one tick when they arrive together.
const MAX_EVENTS_PER_TICK: usize = 256;

/// Why a stdin line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// Longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// Not two or three fields.
    Fields,
    /// The symbol breaks the symbol rule.
    Symbol,
    /// The price is not a plain positive decimal number.
    Price,
    /// The timestamp is not a whole number of milliseconds.
    Timestamp,
}

impl LineError {
    /// What the warning says.
    pub fn message(self) -> &'static str {
        match self {
            LineError::TooLong => "longer than 4096 bytes",
            LineError::Fields => "expected SYMBOL PRICE [TS_MS]",
            LineError::Symbol => "symbol must be 1 to 16 of A-Z 0-9 . _ -",
            LineError::Price => {
                "price must be digits with an optional fraction, greater than zero and finite"
            }
            LineError::Timestamp => "timestamp must be whole milliseconds since the epoch",
        }
    }
}

/// A valid stdin line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLine {
    /// The symbol, folded to upper case.
    pub symbol: String,
    /// The price as given, less leading zeros.
    pub price: String,
    /// The timestamp, if the line had one.
    pub ts_ms: Option<u64>,
}

/// Parses one line (without its `\n`): `Ok(None)` for a blank line.
pub fn parse_line(line: &[u8]) -> Result<Option<FeedLine>, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|f| !f.is_empty());
    let Some(symbol) = fields.next() else {
        return Ok(None);
    };
    let (Some(price), ts, None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(LineError::Fields);
    };
    if !is_valid_symbol(symbol) {
        return Err(LineError::Symbol);
    }
    let price = normalize_price(price).ok_or(LineError::Price)?;
    let ts_ms = match ts {
        None => None,
        Some(ts) if ts.iter().all(u8::is_ascii_digit) => Some(
            std::str::from_utf8(ts)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or(LineError::Timestamp)?,
        ),
        Some(_) => return Err(LineError::Timestamp),
    };
    Ok(Some(FeedLine {
        symbol: String::from_utf8_lossy(symbol).to_ascii_uppercase(),
        price,
        ts_ms,
    }))
}

/// `DIGITS [ "." DIGITS ]`, greater than zero and finite as a double; returns
/// it without leading zeros (one stays before the point).
fn normalize_price(text: &[u8]) -> Option<String> {
    let (int, frac) = match text.iter().position(|b| *b == b'.') {
        Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
        None => (text, None),
    };
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    if !digits(int) || !frac.is_none_or(digits) {
        return None;
    }
    let zeros = int
        .iter()
        .take_while(|b| **b == b'0')
        .count()
        .min(int.len() - 1);
    let text = std::str::from_utf8(&text[zeros..]).ok()?;
    let value: f64 = text.parse().ok()?;
    (value > 0.0 && value.is_finite()).then(|| text.to_string())
}

/// One read of [`read_line_bounded`].
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A whole line is in the buffer (without its newline).
    Line,
    /// A line longer than the limit was read and thrown away.
    TooLong,
    /// End of input, nothing read.
    Eof,
}

/// Reads one line into `line` (cleared first), never holding more than
/// `max` bytes of it (plus a CR before the newline, which does not count):
/// the rest of a longer line is read and dropped.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    let mut read_any = false;
    // A whole line: over the limit only if its extra byte is not a CR.
    let finish = |line: &mut Vec<u8>, too_long: bool| {
        if too_long || (line.len() > max && line.last() != Some(&b'\r')) {
            line.clear();
            LineRead::TooLong
        } else {
            LineRead::Line
        }
    };
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            // A last line without a newline still counts.
            return Ok(if read_any {
                finish(line, too_long)
            } else {
                LineRead::Eof
            });
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        // Room for the limit plus a CR, which only the newline can confirm.
        if line.len() + chunk.len() > max + 1 {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(finish(line, too_long));
        }
    }
}

/// Runs the stdin feed until end of input, then returns. Lines that arrive
/// together are published as one tick (still one id each), never held back
/// waiting for more input.
pub fn run_stdin(input: impl Read, hub: &Hub, metrics: &Metrics) {
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::with_capacity(256);
    let mut batch: Vec<Price> = Vec::new();
    let mut line_number: u64 = 0;
    loop {
        let read = match read_line_bounded(&mut reader, &mut line, MAX_LINE_BYTES) {
            Ok(read) => read,
            Err(e) => {
                crate::log!(
                    "tickstream: cannot read stdin: {e}; treating it as the end of the feed"
                );
                LineRead::Eof
            }
        };
        if read == LineRead::Eof {
            break;
        }
        line_number += 1;
        let parsed = match read {
            LineRead::TooLong => Err(LineError::TooLong),
            _ => parse_line(&line),
        };
        match parsed {
            Ok(Some(feed_line)) => batch.push(Price {
                symbol: Arc::from(feed_line.symbol),
                price: feed_line.price,
                ts_ms: feed_line.ts_ms.unwrap_or_else(now_ms),
            }),
            Ok(None) => {}
            Err(e) => {
                metrics.feed_line_rejected();
                crate::log!(
                    "tickstream: stdin line {line_number} skipped: {}",
                    e.message()
                );
            }
        }
        // Publish before a read that may block: when no whole line is
        // buffered (the search stops at the first newline, usually within
        // the next line).
        if !reader.buffer().contains(&b'\n') || batch.len() >= MAX_EVENTS_PER_TICK {
            metrics.published(hub.publish(&batch));
            batch.clear();
        }
    }
    metrics.published(hub.publish(&batch));
    crate::log!(
        "tickstream: stdin feed ended after {line_number} lines; still serving connected clients"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_lines() {
        let ok = |symbol: &str, price: &str, ts: Option<u64>| {
            Ok(Some(FeedLine {
                symbol: symbol.into(),
                price: price.into(),
                ts_ms: ts,
            }))
        };
        type Case<'a> = (&'a [u8], Result<Option<FeedLine>, LineError>);
        let cases: Vec<Case> = vec![
            (b"BTC 64123.17", ok("BTC", "64123.17", None)),
            (
                b"btc\t007.50\t1764028800123\r",
                ok("BTC", "7.50", Some(1764028800123)),
            ),
            (b"  eth   0.5  ", ok("ETH", "0.5", None)),
            (b"X 00.5", ok("X", "0.5", None)),
            (b"X 10", ok("X", "10", None)),
            (b"A.B_C-D 1 0", ok("A.B_C-D", "1", Some(0))),
            (b"", Ok(None)),
            (b" \t \r", Ok(None)),
            (b"BTC", Err(LineError::Fields)),
            (b"BTC 1 2 3", Err(LineError::Fields)),
            (b"B/TC 1", Err(LineError::Symbol)),
            (b"ABCDEFGHIJKLMNOPQ 1", Err(LineError::Symbol)),
            (b"\xff\xfe 1", Err(LineError::Symbol)),
            (b"BTC 0", Err(LineError::Price)),
            (b"BTC 0.000", Err(LineError::Price)),
            (b"BTC -1", Err(LineError::Price)),
            (b"BTC +1", Err(LineError::Price)),
            (b"BTC 1e5", Err(LineError::Price)),
            (b"BTC NaN", Err(LineError::Price)),
            (b"BTC inf", Err(LineError::Price)),
            (b"BTC .5", Err(LineError::Price)),
            (b"BTC 5.", Err(LineError::Price)),
            (b"BTC 1.2.3", Err(LineError::Price)),
            (b"BTC 1 -5", Err(LineError::Timestamp)),
            (b"BTC 1 99999999999999999999999", Err(LineError::Timestamp)),
            (b"BTC 1 12.5", Err(LineError::Timestamp)),
            (b"BTC 1\r\r", Err(LineError::Price)),
        ];
        for (line, expected) in cases {
            assert_eq!(
                parse_line(line),
                expected,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let huge = format!("BTC 1{}", "0".repeat(400));
        assert_eq!(parse_line(huge.as_bytes()), Err(LineError::Price));
    }

    #[test]
    fn bounded_line_reader() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10));
        input.extend_from_slice(b"\nexactly8\nlast");
        // A tiny buffer forces lines to arrive in pieces.
        let mut reader = BufReader::with_capacity(3, &input[..]);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            let read = read_line_bounded(&mut reader, &mut line, 8).unwrap();
            if read == LineRead::Eof {
                break;
            }
            seen.push((read, String::from_utf8(line.clone()).unwrap()));
        }
        assert_eq!(
            seen,
            [
                (LineRead::Line, "short".to_string()),
                (LineRead::TooLong, String::new()),
                (LineRead::Line, "exactly8".to_string()),
                (LineRead::Line, "last".to_string()),
            ]
        );
        // A CR before the newline does not count towards the limit.
        let mut reader = BufReader::with_capacity(3, &b"exactly8\r\nlonger__9\r\n"[..]);
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 8).unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"exactly8\r");
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 8).unwrap(),
            LineRead::TooLong
        );
    }

    #[test]
    fn stdin_feed_publishes_valid_lines_and_counts_the_rest() {
        let hub = Hub::new(1, 100, 64);
        let metrics = Metrics::new(0);
        let mut input = b"BTC 1 5\nnope\n\nETH 2 6\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'9', MAX_LINE_BYTES + 1));
        input.extend_from_slice(b"\nsol 3 7");
        run_stdin(&input[..], &hub, &metrics);
        let sub = hub.subscribe(crate::hub::Filter::All, Some(0));
        let mut out = Vec::new();
        for run in &sub.catch_up {
            run.tick
                .append_to(&mut out, run.events.clone(), &sub.filter);
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id: 1\ndata: {\"symbol\":\"BTC\",\"price\":1,\"ts\":5}\n\n\
             id: 2\ndata: {\"symbol\":\"ETH\",\"price\":2,\"ts\":6}\n\n\
             id: 3\ndata: {\"symbol\":\"SOL\",\"price\":3,\"ts\":7}\n\n"
        );
        let text = metrics.render();
        assert!(
            text.contains("tickstream_feed_lines_rejected_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tickstream_events_published_total 3\n"),
            "{text}"
        );
    }

    #[test]
    fn same_seed_same_prices() {
        let symbols: Vec<String> = ["BTC", "DOGE", "NEW"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let run = |seed| {
            let mut walk = RandomWalk::new(&symbols, Duration::from_secs(1), seed);
            (0..50)
                .flat_map(|_| walk.step(0))
                .map(|p| p.price)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let prices = run(7);
        // Plausible: near the starting prices, positive, no exponent.
        let btc: f64 = prices[0].parse().unwrap();
        let doge: f64 = prices[1].parse().unwrap();
        let new: f64 = prices[2].parse().unwrap();
        assert!((60_000.0..68_000.0).contains(&btc), "{btc}");
        assert!(
            (0.1..0.2).contains(&doge) && prices[1].len() == 8,
            "{}",
            prices[1]
        );
        assert!((90.0..110.0).contains(&new), "{new}");
        assert!(prices
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit() || b == b'.')));
    }

    #[test]
    fn price_format() {
        assert_eq!(format_price(64123.171), "64123.17");
        assert_eq!(format_price(1.5), "1.5000");
        assert_eq!(format_price(0.1623456), "0.162346");
    }
}
