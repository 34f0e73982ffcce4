//! The feeds that produce prices, each run on the one feed thread and
//! publishing to the hub; none ever waits for a client.
//!
//! - [`sim`]: a random walk per symbol, one tick per `--interval`;
//! - [`stdin`]: one event per `SYMBOL PRICE [TS_MS]` line;
//! - [`entry`]: the rule every outside price obeys (a stdin line's fields,
//!   later a stream entry's), in one place.

pub mod entry;
pub mod sim;
pub mod stdin;

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Config, FeedKind};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts the feed thread the configuration names. The feed counts as up
/// from now until its thread ends (a stdin feed at EOF, or a panic).
pub fn spawn(config: &Config, hub: Arc<Hub>, metrics: Arc<Metrics>) -> io::Result<()> {
    let kind = config.feed;
    let walk = match kind {
        FeedKind::Sim => {
            let seed = config.seed.unwrap_or_else(|| fastrand::u64(..));
            let names: Vec<&str> = config.symbols.iter().map(|s| s.as_str()).collect();
            crate::log!(
                "tickstream: sim feed of {} every {:?}, seed {seed}",
                names.join(","),
                config.interval
            );
            Some(sim::RandomWalk::new(&config.symbols, config.interval, seed))
        }
        FeedKind::Stdin => {
            crate::log!("tickstream: stdin feed: one SYMBOL PRICE [TS_MS] line per event");
            None
        }
    };
    metrics.set_feed_up(true);
    thread::Builder::new()
        .name("tickstream-feed".into())
        .spawn(move || {
            let _down = FeedDown(&metrics);
            match walk {
                Some(walk) => sim::run(walk, &hub, &metrics),
                None => stdin::run(io::stdin().lock(), &hub, &metrics),
            }
        })
        .map(drop)
}

/// Marks the feed as down when dropped: at its end, or if it panics.
struct FeedDown<'a>(&'a Metrics);

impl Drop for FeedDown<'_> {
    fn drop(&mut self) {
        self.0.set_feed_up(false);
    }
}
