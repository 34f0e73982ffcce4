//! The sim feed: a geometric random walk per symbol, one event per symbol
//! per `--interval`, reproducible from `--seed`.

use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::hub::{Hub, Price};
use crate::metrics::Metrics;
use crate::symbol::Symbol;

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
    symbol: Symbol,
    start_ln: f64,
    ln_price: f64,
    volatility: f64,
}

/// A geometric random walk per symbol (an Ornstein–Uhlenbeck process on the
/// log of the price), reproducible from its seed.
pub struct RandomWalk {
    rng: fastrand::Rng,
    walks: Vec<Walk>,
    interval: Duration,
    /// When the next tick is due.
    next: Instant,
}

impl RandomWalk {
    /// A walk over `symbols`, one step per `interval`, seeded with `seed`.
    pub fn new(symbols: &[Symbol], interval: Duration, seed: u64) -> RandomWalk {
        let walks = symbols
            .iter()
            .map(|symbol| {
                let (start, volatility) = KNOWN_SYMBOLS
                    .iter()
                    .find(|(s, _, _)| *s == symbol.as_str())
                    .map_or((DEFAULT_START, DEFAULT_VOLATILITY), |(_, p, v)| (*p, *v));
                Walk {
                    symbol: symbol.clone(),
                    start_ln: start.ln(),
                    ln_price: start.ln(),
                    volatility,
                }
            })
            .collect();
        RandomWalk {
            rng: fastrand::Rng::with_seed(seed),
            walks,
            interval,
            next: Instant::now(),
        }
    }

    /// Sleeps until the next tick on the fixed schedule, then steps once per
    /// tick due (see [`ticks_due`]): how many ticks, and their prices, all
    /// stamped now.
    pub fn next_ticks(&mut self) -> (u32, Vec<Price>) {
        thread::sleep(self.next.saturating_duration_since(Instant::now()));
        let now = Instant::now();
        let ts = crate::since_epoch().as_millis() as u64;
        let due = ticks_due(&mut self.next, now, self.interval);
        (due, (0..due).flat_map(|_| self.step(ts)).collect())
    }

    /// Moves every symbol one step; returns the new prices stamped `ts_ms`.
    pub fn step(&mut self, ts_ms: u64) -> Vec<Price> {
        let dt_secs = self.interval.as_secs_f64();
        let pull = 1.0 - 0.5f64.powf(dt_secs / PULL_HALF_LIFE_SECS);
        let mut prices = Vec::with_capacity(self.walks.len());
        for walk in &mut self.walks {
            // Box–Muller: a standard normal draw from two uniform ones.
            let u1 = 1.0 - self.rng.f64();
            let u2 = self.rng.f64();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let ln = walk.ln_price - pull * (walk.ln_price - walk.start_ln)
                + walk.volatility * dt_secs.sqrt() * z;
            let bound = MAX_DRIFT.ln();
            walk.ln_price = ln.clamp(walk.start_ln - bound, walk.start_ln + bound);
            prices.push(Price {
                symbol: walk.symbol.clone(),
                price: format_price(walk.ln_price.exp()),
                ts_ms,
            });
        }
        prices
    }
}

/// A price as a JSON number: 2 decimals from 100 up, 4 from 1, else 6.
fn format_price(price: f64) -> String {
    let decimals = match price {
        100.0.. => 2,
        1.0.. => 4,
        _ => 6,
    };
    format!("{price:.decimals$}")
}

/// Most ticks the feed makes up for at once when it fell behind (a busy
/// host); beyond it (a suspended host) the missed ticks are skipped.
pub const MAX_TICKS_OWED: u32 = 1000;

/// Runs the sim feed of `config` forever on a fixed schedule, one tick per
/// `--interval`. A tick that comes late does not shift the ones after it, and
/// ticks the feed owes (it was held up: a busy host, clients taking the
/// hub's lock) are made up at once as one publish, so no event is lost.
pub fn run(config: &Config, hub: &Hub, metrics: &Metrics) {
    let seed = config.seed.unwrap_or_else(|| fastrand::u64(..));
    let symbols: Vec<&str> = config.symbols.iter().map(Symbol::as_str).collect();
    crate::log!(
        "tickstream: sim feed of {} every {:?}, seed {seed}",
        symbols.join(","),
        config.interval
    );
    let mut walk = RandomWalk::new(&config.symbols, config.interval, seed);
    loop {
        metrics.published(hub.publish(&walk.next_ticks().1));
    }
}

/// How many ticks are due at `now` (at least one: the caller wakes for the
/// tick at `next`), moving `next` to the next tick after them. Beyond
/// [`MAX_TICKS_OWED`] the missed ticks are skipped.
fn ticks_due(next: &mut Instant, now: Instant, interval: Duration) -> u32 {
    let mut due = 1;
    *next += interval;
    while *next <= now && due <= MAX_TICKS_OWED {
        *next += interval;
        due += 1;
    }
    if *next <= now {
        *next = now + interval;
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_ticks_are_made_up_at_once() {
        let ms = Duration::from_millis;
        let start = Instant::now();
        let mut next = start;
        // On time: one tick, the next one interval later.
        assert_eq!(ticks_due(&mut next, start, ms(2)), 1);
        assert_eq!(next, start + ms(2));
        // Held up for 5 intervals past it: 6 ticks, schedule kept.
        assert_eq!(ticks_due(&mut next, start + ms(12), ms(2)), 6);
        assert_eq!(next, start + ms(14));
        // Suspended: at most MAX_TICKS_OWED + 1, then the schedule restarts.
        let late = start + ms(2 * 5000);
        assert_eq!(ticks_due(&mut next, late, ms(2)), MAX_TICKS_OWED + 1);
        assert_eq!(next, late + ms(2));
    }
    #[test]
    fn same_seed_same_prices() {
        let symbols: Vec<Symbol> = ["BTC", "DOGE", "NEW"]
            .iter()
            .map(|s| Symbol::parse(s.as_bytes()).unwrap())
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
