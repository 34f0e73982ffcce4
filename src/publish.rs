//! `tickstream publish`: the sim walk or stdin lines appended to a Redis
//! stream, one entry per event, with `XADD KEY MAXLEN ~ N * symbol S price P
//! ts T` (Redis gives the id). One publisher and any number of `--feed
//! redis` replicas make one feed.
//!
//! While Redis is unreachable it retries with the feed's back-off. The sim
//! publisher keeps its schedule and drops the ticks it cannot write (one
//! log line with their count when Redis is back); the stdin publisher stops
//! reading its input until Redis is back, so no line is lost. (An `XADD`
//! whose reply never came is written again, so such a line may be in the
//! stream twice: at least once, not exactly once.) It exits 0 at the end of
//! stdin, after its last write, and on SIGTERM or SIGINT.

use std::io;
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use crate::config::{Config, FeedKind};
use crate::feed::sim::RandomWalk;
use crate::feed::stdin::Lines;
use crate::hub::Price;
use crate::redis::{Backoff, Connection, RedisError, REDIS_TIMEOUT};
use crate::sys::StopSignals;

/// Runs the publisher until the end of its input or a stop signal.
pub fn run(config: &Config, signals: StopSignals) -> ExitCode {
    let spawned = thread::Builder::new()
        .name("tickstream-stop".into())
        .spawn(move || {
            while signals.wait() == crate::sys::Signal::Reload {
                crate::log!("tickstream: SIGHUP ignored by the publisher");
            }
            crate::log!("tickstream: publisher stopped by a signal");
            crate::log::flush();
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        crate::log::write_now(&format!("tickstream: cannot start the stop thread: {e}"));
        return ExitCode::FAILURE;
    }
    let mut out = Publisher {
        config,
        connection: None,
        backoff: Backoff::default(),
        retry_at: Instant::now(),
        last_complaint: String::new(),
    };
    crate::log!(
        "tickstream publish: {} feed into stream {:?} at {}",
        if config.feed == FeedKind::Sim {
            "sim"
        } else {
            "stdin"
        },
        config.stream,
        config.redis
    );
    match config.feed {
        FeedKind::Stdin => {
            let mut lines = Lines::new(io::stdin().lock());
            let mut written = 0u64;
            while let Some(line) = lines.next_line() {
                // A bad line was logged by `Lines`; a publisher has no metrics.
                if let Ok(Some(price)) = line {
                    // Back-pressure: the next line waits until this one is in.
                    while out.try_write(std::slice::from_ref(&price)).is_err() {
                        thread::sleep(out.retry_at.saturating_duration_since(Instant::now()));
                    }
                    written += 1;
                }
            }
            crate::log!(
                "tickstream publish: end of stdin after {} lines, {written} entries written",
                lines.count()
            );
            crate::log::flush();
        }
        _ => {
            let seed = config.seed.unwrap_or_else(|| fastrand::u64(..));
            let mut walk = RandomWalk::new(&config.symbols, config.interval, seed);
            let mut dropped = 0u64;
            loop {
                let (due, prices) = walk.next_ticks();
                if out.try_write(&prices).is_err() {
                    dropped += u64::from(due);
                } else if dropped > 0 {
                    crate::log!(
                        "tickstream publish: {dropped} ticks dropped while Redis was unreachable"
                    );
                    dropped = 0;
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// The connection to Redis, opened when needed and dropped on any error.
struct Publisher<'a> {
    config: &'a Config,
    connection: Option<Connection>,
    backoff: Backoff,
    /// No connect is tried before this.
    retry_at: Instant,
    last_complaint: String,
}

impl Publisher<'_> {
    /// Appends the prices together (one `MULTI` … `EXEC`, so a replica
    /// reads them as one tick), connecting first if needed (not before
    /// `retry_at`); on failure drops the connection and sets `retry_at`.
    fn try_write(&mut self, prices: &[Price]) -> Result<(), ()> {
        if self.connection.is_none() && Instant::now() < self.retry_at {
            return Err(());
        }
        match self.xadd(prices) {
            Ok(()) => {
                // Only a write that worked clears the back-off and the complaint.
                self.backoff.reset();
                if !self.last_complaint.is_empty() {
                    crate::log!("tickstream publish: writing to {} again", self.config.redis);
                    self.last_complaint.clear();
                }
                Ok(())
            }
            Err(e) => {
                self.connection = None;
                let complaint = e.to_string();
                if complaint != self.last_complaint {
                    crate::log!(
                        "tickstream publish: {}: {complaint}; retrying",
                        self.config.redis
                    );
                    self.last_complaint = complaint;
                }
                self.retry_at = Instant::now() + self.backoff.next_wait();
                Err(())
            }
        }
    }

    fn xadd(&mut self, prices: &[Price]) -> Result<(), RedisError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self
                .connection
                .insert(Connection::open(&self.config.redis, REDIS_TIMEOUT)?),
        };
        let ts: Vec<String> = prices.iter().map(|p| p.ts_ms.to_string()).collect();
        let fields: Vec<[(&str, &str); 3]> = prices
            .iter()
            .zip(&ts)
            .map(|(p, ts)| {
                [
                    ("symbol", p.symbol.as_str()),
                    ("price", &p.price),
                    ("ts", ts),
                ]
            })
            .collect();
        let entries: Vec<&[(&str, &str)]> = fields.iter().map(|f| f.as_slice()).collect();
        connection.xadd(&self.config.stream, self.config.maxlen, &entries)?;
        Ok(())
    }
}
