//! `tickstream-bench feed`: a steady stream of `SYMBOL PRICE TS_MS` lines on
//! stdout, for a server's `--feed stdin` (spec, "Feeds"). `--rate` lines per
//! second in small bursts every `--every` (default 1 ms) on a fixed
//! schedule: each burst writes the lines owed since the start, so a late
//! wake-up is made up at the next burst and the long-run rate is exact.
//! Symbols take turns, each a ±0.1 % random walk; `TS_MS` is the wall clock
//! when the burst is written, so `load` measures latency from it.
//!
//! It stops after `--duration` (0, the default: never), or quietly when the
//! reader goes away (a broken pipe: the server was stopped).

use std::io::{self, BufWriter, ErrorKind, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::FeedOpts;
use crate::fleet::wall_us;

/// Writes lines until `--duration` ends or stdout is closed.
pub fn run(o: &FeedOpts) -> Result<(), String> {
    match write_lines(o, &mut BufWriter::new(io::stdout().lock())) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(format!("cannot write stdout: {e}")),
        _ => Ok(()),
    }
}

fn write_lines(o: &FeedOpts, out: &mut impl Write) -> io::Result<()> {
    let mut walk = Walk::new(&o.symbols);
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut next = start;
    loop {
        let now = Instant::now();
        if !o.duration.is_zero() && now >= start + o.duration {
            return out.flush();
        }
        let ts = wall_us() / 1000;
        while sent < owed(o.rate, now - start) {
            walk.line(ts, out)?;
            sent += 1;
        }
        out.flush()?;
        next += o.every;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Lines due `elapsed` after the start at `rate` per second (one at once).
fn owed(rate: u64, elapsed: Duration) -> u64 {
    (u128::from(rate) * elapsed.as_micros() / 1_000_000) as u64 + 1
}

/// A random walk per symbol; the symbols take turns.
struct Walk {
    symbols: Vec<(String, f64)>,
    turn: usize,
    rng: u64,
}

/// A plausible first price for a symbol (tickstream's own starts).
pub fn start_price(symbol: &str) -> f64 {
    match symbol {
        "BTC" => 64000.0,
        "ETH" => 3200.0,
        "SOL" => 150.0,
        "XRP" => 0.6,
        "DOGE" => 0.15,
        _ => 100.0,
    }
}

impl Walk {
    fn new(symbols: &[String]) -> Self {
        Self {
            symbols: symbols
                .iter()
                .map(|s| (s.clone(), start_price(s)))
                .collect(),
            turn: 0,
            // Golden-ratio multiply: the clock's changing low bits reach
            // the high bits that the first draws use.
            rng: wall_us().wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// Writes the next symbol's next price as `SYMBOL PRICE TS_MS\n`.
    fn line(&mut self, ts: u64, out: &mut impl Write) -> io::Result<()> {
        // xorshift64: uniform in [0, 1), then a ±0.1 % step.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let u = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let turn = self.turn;
        self.turn = (turn + 1) % self.symbols.len();
        let (symbol, price) = &mut self.symbols[turn];
        *price *= 1.0 + 0.002 * (u - 0.5);
        let decimals = if *price >= 100.0 { 2 } else { 6 };
        writeln!(out, "{symbol} {price:.decimals$} {ts}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_lines_follow_the_rate() {
        assert_eq!(owed(1500, Duration::ZERO), 1);
        assert_eq!(owed(1500, Duration::from_millis(1)), 2);
        assert_eq!(owed(1500, Duration::from_secs(2)), 3001);
    }

    #[test]
    fn lines_rotate_symbols_and_parse() {
        let mut walk = Walk::new(&["BTC".into(), "DOGE".into()]);
        let mut out = Vec::new();
        for _ in 0..4 {
            walk.line(1764028800123, &mut out).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        let symbols: Vec<&str> = lines.iter().map(|f| f[0]).collect();
        assert_eq!(symbols, ["BTC", "DOGE", "BTC", "DOGE"]);
        for f in &lines {
            assert_eq!(f.len(), 3);
            assert!(f[1].parse::<f64>().unwrap() > 0.0 && !f[1].contains('e'));
            assert_eq!(f[2], "1764028800123");
        }
    }

    #[test]
    fn stops_after_its_duration() {
        let o = FeedOpts {
            rate: 2000,
            every: Duration::from_millis(1),
            symbols: vec!["BTC".into()],
            duration: Duration::from_millis(100),
        };
        let mut out = Vec::new();
        write_lines(&o, &mut out).unwrap();
        let n = out.iter().filter(|b| **b == b'\n').count();
        // At most the 201 owed by the end; fewer if this thread was late.
        assert!((100..=201).contains(&n), "{n} lines in 100 ms at 2000/s");
    }
}
