//! The redis feed: the entries of one Redis stream, read on the feed thread
//! over a [`crate::redis::Connection`], become events named by their entry
//! ids, so every replica on the stream names every event alike.
//!
//! At start it loads the newest `--history` entries (history and snapshot),
//! then blocks in `XREAD` after the newest. After any failure it reconnects
//! with a jittered back-off (100 ms doubling to 5 s), first reads every
//! entry after the last one it read (`XRANGE` in pages: an entry still in
//! the stream is never skipped), then blocks again. While it is not
//! connected the feed is down (`/healthz` 503, `tickstream_feed_up` 0) and
//! connected clients keep their streams (heartbeats). A key that does not
//! exist yet is an empty stream; a key of another type is an error, logged
//! once until it changes.

use std::convert::Infallible;
use std::thread;
use std::time::Duration;

use crate::config::Config;
use crate::feed::entry::parse_entry;
use crate::hub::{Hub, Price};
use crate::id::EventId;
use crate::metrics::Metrics;
use crate::redis::resp::{MAX_FIELDS_BYTES, MAX_VALUE_BYTES, TOO_LARGE};
use crate::redis::{Backoff, Connection, Entry, RedisError, REDIS_TIMEOUT};

/// How long one `XREAD` blocks in Redis waiting for an entry.
const XREAD_BLOCK: Duration = Duration::from_secs(2);
/// Entries asked for per read (a page of `XRANGE` or `XREVRANGE`, or one
/// `XREAD`): about 100 KiB of reply.
const PAGE_ENTRIES: usize = 1000;

/// What the feed remembers across connections.
struct Reader<'a> {
    /// `--redis`, `--stream` and `--history`.
    config: &'a Config,
    hub: &'a Hub,
    metrics: &'a Metrics,
    /// True once the history was loaded: every later connection catches
    /// up from `last`.
    loaded: bool,
    /// The id of the last entry read; `0-0` (below any entry's) if none was.
    last: EventId,
    /// Entries asked for per read: halved each time a reply is too large or
    /// too slow, whole again once the feed is following the stream.
    page: usize,
    /// Set once the stream was found behind `last` (deleted and re-created),
    /// so it is logged once.
    behind: bool,
    /// The last trouble logged; cleared once a read works again.
    complaint: Option<String>,
    connected_before: bool,
}

/// Runs the redis feed of `config` forever.
pub fn run(config: &Config, hub: &Hub, metrics: &Metrics) {
    let (url, key) = (&config.redis, &config.stream);
    crate::log!("tickstream: redis feed: stream {key:?} at {url}");
    let mut reader = Reader {
        config,
        hub,
        metrics,
        loaded: false,
        last: EventId::stream(0, 0),
        page: PAGE_ENTRIES,
        behind: false,
        complaint: Some(String::new()),
        connected_before: false,
    };
    let mut backoff = Backoff::default();
    loop {
        let Err(e) = reader.session(&mut backoff);
        metrics.set_feed_up(false);
        if e.is_timeout() || matches!(e, RedisError::Protocol(TOO_LARGE)) {
            reader.page = (reader.page / 2).max(1);
        }
        // One line per kind of trouble, not one per retry.
        let complaint = match &e {
            e if e.is_wrong_type() => format!("key {key:?} is not a stream"),
            e => e.to_string(),
        };
        if reader.complaint.as_ref() != Some(&complaint) {
            crate::log!("tickstream: redis feed {url}: {complaint}; retrying");
            reader.complaint = Some(complaint);
        }
        thread::sleep(backoff.next_wait());
    }
}

impl Reader<'_> {
    /// One connection: catch up, then follow the stream until an error.
    fn session(&mut self, backoff: &mut Backoff) -> Result<Infallible, RedisError> {
        let (url, key) = (&self.config.redis, &self.config.stream);
        let mut conn = Connection::open(url, REDIS_TIMEOUT)?;
        if !matches!(conn.key_type(key)?.as_str(), "none" | "stream") {
            return Err(RedisError::Server("WRONGTYPE".into()));
        }
        if self.connected_before {
            self.metrics.feed_reconnected();
        }
        self.connected_before = true;
        let page = self.page;
        match self.loaded {
            false => {
                // The newest entry's id, then the history, newest pages
                // first, into the hub without sending it to anyone: clients
                // that came before the load get the snapshot after it.
                let newest = self.newest(&mut conn)?;
                let mut pages = Vec::new();
                // Before the id after the newest, or before the stream's end
                // (`None`) when the newest is the largest id there is.
                let (mut before, mut wanted) = (newest.map(next_id), self.config.history);
                while let (Some(end), true) = (before, wanted > 0) {
                    let entries = conn.xrevrange_before(key, end, wanted.min(page))?;
                    wanted = wanted.saturating_sub(entries.len());
                    before = entries.first().map(|e| Some(e.id));
                    let last_page = entries.len() < page;
                    pages.push(entries);
                    if last_page {
                        break;
                    }
                }
                for entries in pages.iter().rev() {
                    self.take(entries, false);
                }
                self.hub.send_snapshot();
                self.last = newest.unwrap_or(self.last);
                self.loaded = true;
            }
            // From the stream's start if nothing was read yet.
            true => loop {
                let entries = conn.xrange_after(key, self.last, page)?;
                self.take(&entries, true);
                if entries.len() < page {
                    break;
                }
            },
        }
        self.metrics.set_feed_up(true);
        self.page = PAGE_ENTRIES;
        loop {
            let entries = conn.xread_after(key, self.last, XREAD_BLOCK, page)?;
            if entries.is_empty() {
                self.check_behind(&mut conn)?;
            }
            // Only a read that worked clears the back-off and the complaint.
            backoff.reset();
            if self.complaint.take().is_some() {
                crate::log!("tickstream: redis feed reading stream {key:?} at {url}");
            }
            self.take(&entries, true);
        }
    }

    /// Logs once if the stream's newest entry is below the last one read:
    /// it was deleted and re-created, and nothing comes until it passes
    /// that id again.
    fn check_behind(&mut self, conn: &mut Connection) -> Result<(), RedisError> {
        let (last, newest) = (self.last, self.newest(conn)?);
        let behind = newest.filter(|newest| *newest < last);
        if let (Some(newest), false) = (behind, self.behind) {
            crate::log!(
                "tickstream: redis stream {:?}: newest entry {newest} is below the last one \
                 read, {last}; was it deleted and re-created? Waiting for entries after {last}",
                self.config.stream,
            );
        }
        self.behind = behind.is_some();
        Ok(())
    }

    /// The id of the stream's newest entry; `None` if it is empty.
    fn newest(&self, conn: &mut Connection) -> Result<Option<EventId>, RedisError> {
        Ok(conn
            .xrevrange_before(&self.config.stream, None, 1)?
            .first()
            .map(|e| e.id))
    }

    /// Publishes the valid entries as one tick (or, `live` false, loads
    /// them into the hub's history only); skips, warns about and counts the
    /// others; moves `last` past all of them.
    fn take(&mut self, entries: &[Entry], live: bool) {
        let mut events = Vec::with_capacity(entries.len());
        for entry in entries {
            self.last = entry.id;
            match price_of(entry) {
                Ok(price) => events.push((entry.id, price)),
                Err(e) => {
                    self.metrics.feed_line_rejected();
                    crate::log!("tickstream: redis entry {} skipped: {e}", entry.id);
                }
            }
        }
        self.metrics
            .published(self.hub.publish_named(&events, live));
    }
}

/// The stream id just after `id`, so an exclusive bound before it
/// includes `id`; `None` past the largest id.
fn next_id(id: EventId) -> Option<EventId> {
    match id.minor.unwrap_or(0).checked_add(1) {
        Some(seq) => Some(EventId::stream(id.major, seq)),
        None => Some(EventId::stream(id.major.checked_add(1)?, 0)),
    }
}

/// The price an entry holds: fields `symbol`, `price` and optionally `ts`,
/// under the same rules as a stdin line; other fields are ignored. Without
/// `ts`, the entry id's milliseconds, so every replica stamps it alike. The
/// error says why the entry is skipped.
fn price_of(entry: &Entry) -> Result<Price, String> {
    if entry.oversized {
        return Err(format!(
            "a field over {MAX_VALUE_BYTES} bytes, or fields over {MAX_FIELDS_BYTES} bytes in all"
        ));
    }
    let field = |name: &str| match entry.fields.iter().find(|(f, _)| f == name.as_bytes()) {
        Some((_, value)) => Ok(value.as_slice()),
        None => Err(format!("no {name} field")),
    };
    let (symbol, price, ts) = (field("symbol")?, field("price")?, field("ts").ok());
    parse_entry(symbol, price, ts, || entry.id.major).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::entry::EntryError;

    #[test]
    fn entry_fields() {
        let entry = |pairs: &[(&str, &str)]| Entry {
            id: EventId::stream(1_764_028_800_123, 4),
            fields: pairs
                .iter()
                .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            oversized: false,
        };
        let ok = price_of(&entry(&[
            ("price", "007.5"),
            ("x", "y"),
            ("symbol", "btc"),
            ("ts", "9"),
        ]));
        let ok = ok.unwrap();
        assert_eq!(
            (ok.symbol.as_str(), ok.price.as_str(), ok.ts_ms),
            ("BTC", "7.5", 9)
        );
        let stamped = price_of(&entry(&[("symbol", "BTC"), ("price", "1")]));
        assert_eq!(stamped.unwrap().ts_ms, 1_764_028_800_123, "the id's ms");
        let value = |e: EntryError| e.to_string();
        let cases: &[(&[(&str, &str)], String)] = &[
            (&[("symbol", "BTC")], "no price field".into()),
            (&[("price", "1")], "no symbol field".into()),
            (
                &[("symbol", "B C"), ("price", "1")],
                value(EntryError::Symbol),
            ),
            (
                &[("symbol", "BTC"), ("price", "-1")],
                value(EntryError::Price),
            ),
            (
                &[("symbol", "BTC"), ("price", "1"), ("ts", "soon")],
                value(EntryError::Timestamp),
            ),
        ];
        for (pairs, error) in cases {
            assert_eq!(price_of(&entry(pairs)).as_ref(), Err(error), "{pairs:?}");
        }
        let mut big = entry(&[("symbol", "BTC"), ("price", "1")]);
        big.oversized = true;
        let why = "a field over 4096 bytes, or fields over 1048576 bytes in all";
        assert_eq!(price_of(&big), Err(why.into()));
    }
}
