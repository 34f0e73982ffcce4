//! The sim feed: a geometric random walk per symbol, one event per symbol
//! per `--interval`, reproducible from `--seed`.

use std::thread;
use std::time::{Duration, Instant};

use crate::feed::now_ms;
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
        }
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
    let decimals = if price >= 100.0 {
        2
    } else if price >= 1.0 {
        4
    } else {
        6
    };
    format!("{price:.decimals$}")
}

/// Runs the sim feed forever: one tick every interval of the walk, on a
/// fixed schedule (a late tick does not shift the ones after it).
pub fn run(mut walk: RandomWalk, hub: &Hub, metrics: &Metrics) {
    let interval = walk.interval;
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

#[cfg(test)]
mod tests {
    use super::*;

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
