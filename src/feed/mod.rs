//! The feeds that produce prices, each run on the one feed thread and
//! publishing to the hub; none ever waits for a client.
//!
//! - [`sim`]: a random walk per symbol, one tick per `--interval`;
//! - [`stdin`]: one event per `SYMBOL PRICE [TS_MS]` line;
//! - [`redis`]: the entries of a Redis stream, named by their entry ids;
//! - [`entry`]: the rule every outside price obeys (a stdin line's fields,
//!   a stream entry's), in one place.

pub mod entry;
pub mod redis;
pub mod sim;
pub mod stdin;

use std::io;
use std::sync::Arc;
use std::thread;

use crate::config::{Config, FeedKind};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Starts the feed thread the configuration names. A sim or stdin feed
/// counts as up from now until its thread ends (a stdin feed at EOF, or a
/// panic); the redis feed while it is connected.
pub fn spawn(config: &Config, hub: Arc<Hub>, metrics: Arc<Metrics>) -> io::Result<()> {
    let config = config.clone();
    metrics.set_feed_up(config.feed != FeedKind::Redis);
    thread::Builder::new()
        .name("tickstream-feed".into())
        .spawn(move || {
            let _down = FeedDown(&metrics);
            match config.feed {
                FeedKind::Sim => sim::run(&config, &hub, &metrics),
                FeedKind::Stdin => stdin::run(io::stdin().lock(), &hub, &metrics),
                FeedKind::Redis => redis::run(&config, &hub, &metrics),
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
