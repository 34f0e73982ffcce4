//! Counters and gauges, updated with relaxed atomics from every thread, and
//! their rendering in the Prometheus text exposition format 0.0.4.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::http::Status;

/// Why a stream connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client went away (a write failed).
    Closed,
    /// Its queue filled up: it could not keep up with the feed.
    Slow,
    /// Its socket accepted no bytes for `--write-timeout`.
    WriteTimeout,
    /// The server ended it while stopping.
    Drain,
    /// Its token expired.
    Expired,
    /// The key that signed its token was removed (SIGHUP).
    Revoked,
}

impl DisconnectReason {
    /// The label values (and log words), in the order of the variants.
    const LABELS: [&'static str; 6] = [
        "closed",
        "slow",
        "write_timeout",
        "drain",
        "expired",
        "revoked",
    ];

    /// The label value (and log word) for this reason.
    pub fn as_str(self) -> &'static str {
        Self::LABELS[self as usize]
    }
}

/// Upper bounds of the delivery-lag histogram's buckets, in seconds (from
/// 0.5 ms to 10 s; `+Inf` is implied).
pub const LAG_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server's counters. All methods take `&self`; none of them admits or
/// refuses anything, they only count.
#[derive(Debug, Default)]
pub struct Metrics {
    clients_connected: AtomicU64,
    connections_total: AtomicU64,
    rejected: [AtomicU64; Status::ERRORS.len()],
    disconnects: [AtomicU64; DisconnectReason::LABELS.len()],
    events_published: AtomicU64,
    events_sent: AtomicU64,
    bytes_sent: AtomicU64,
    feed_lines_rejected: AtomicU64,
    feed_up: AtomicU64,
    feed_reconnects: AtomicU64,
    /// Writes per bucket of [`LAG_BUCKETS`] (each counted once, in the
    /// first bucket that holds it; the exposition adds them up), then
    /// those beyond the last.
    lag_buckets: [AtomicU64; LAG_BUCKETS.len() + 1],
    lag_sum_nanos: AtomicU64,
    start_time_seconds: AtomicU64,
}

impl Metrics {
    /// Metrics for a process started at `start_time_seconds` (Unix time).
    pub fn new(start_time_seconds: u64) -> Metrics {
        Metrics {
            start_time_seconds: AtomicU64::new(start_time_seconds),
            ..Metrics::default()
        }
    }

    /// Counts an accepted stream connection.
    pub fn connected(&self) {
        self.clients_connected.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream connection's end and why.
    pub fn disconnected(&self, reason: DisconnectReason) {
        self.clients_connected.fetch_sub(1, Ordering::Relaxed);
        self.disconnects[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an error answer (any status in [`Status::ERRORS`]).
    pub fn rejected(&self, status: Status) {
        if let Some(i) = Status::ERRORS.iter().position(|s| *s == status) {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts events the feed published.
    pub fn published(&self, events: usize) {
        self.events_published
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Counts events and bytes written to a client.
    pub fn sent(&self, events: usize, bytes: usize) {
        self.events_sent.fetch_add(events as u64, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Records one write of live events that took `lag` from the publish of
    /// its oldest event to the end of the write.
    pub fn delivered_after(&self, lag: Duration) {
        let secs = lag.as_secs_f64();
        let first = LAG_BUCKETS.partition_point(|bound| *bound < secs);
        // One increment on the hot path; the exposition makes them cumulative.
        self.lag_buckets[first].fetch_add(1, Ordering::Relaxed);
        self.lag_sum_nanos
            .fetch_add(lag.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Open stream connections now.
    pub fn clients_connected(&self) -> u64 {
        self.clients_connected.load(Ordering::Relaxed)
    }

    /// Counts a stdin line or stream entry the feed skipped.
    pub fn feed_line_rejected(&self) {
        self.feed_lines_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets whether the feed is producing (or connected).
    pub fn set_feed_up(&self, up: bool) {
        self.feed_up.store(u64::from(up), Ordering::Relaxed);
    }

    /// True while the feed is producing (or connected).
    pub fn feed_up(&self) -> bool {
        self.feed_up.load(Ordering::Relaxed) == 1
    }

    /// Counts a reconnect of the redis feed after its first connect.
    pub fn feed_reconnected(&self) {
        self.feed_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition, `text/plain; version=0.0.4`.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(4096);
        // The single-sample families, in exposition order.
        #[rustfmt::skip]
        let singles: [(&str, &str, &str, &AtomicU64); 9] = [
            ("tickstream_clients_connected", "gauge", "Open stream connections.", &self.clients_connected),
            ("tickstream_connections_total", "counter", "Stream connections accepted.", &self.connections_total),
            ("tickstream_events_published_total", "counter", "Events from the feed.", &self.events_published),
            ("tickstream_events_sent_total", "counter", "Events written to clients.", &self.events_sent),
            ("tickstream_bytes_sent_total", "counter", "Bytes of event streams written to clients.", &self.bytes_sent),
            ("tickstream_feed_lines_rejected_total", "counter", "Stdin feed lines or stream entries skipped as invalid.", &self.feed_lines_rejected),
            ("tickstream_feed_up", "gauge", "1 while the feed produces or is connected, else 0.", &self.feed_up),
            ("tickstream_feed_reconnects_total", "counter", "Connects of the redis feed after its first successful one.", &self.feed_reconnects),
            ("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.", &self.start_time_seconds),
        ];
        for (name, kind, help, value) in singles {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {}", get(value));
        }
        let name = "tickstream_requests_rejected_total";
        family(
            &mut out,
            name,
            "counter",
            "Error answers (4xx and 5xx), by status.",
        );
        for (status, n) in Status::ERRORS.iter().zip(&self.rejected) {
            let _ = writeln!(out, "{name}{{status=\"{}\"}} {}", status.code(), get(n));
        }
        let name = "tickstream_disconnects_total";
        family(
            &mut out,
            name,
            "counter",
            "Stream connections ended, by reason.",
        );
        for (reason, n) in DisconnectReason::LABELS.iter().zip(&self.disconnects) {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", get(n));
        }
        let name = "tickstream_delivery_lag_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "Time from the publish of the oldest event in a write of live events to the write's end.",
        );
        // Each write is counted in one bucket: the exposition adds them up.
        let mut total = 0;
        for (le, n) in LAG_BUCKETS.iter().zip(&self.lag_buckets) {
            total += get(n);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {total}");
        }
        total += get(&self.lag_buckets[LAG_BUCKETS.len()]);
        let sum = get(&self.lag_sum_nanos) as f64 / 1e9;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
        out
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_bytes() {
        let m = Metrics::new(1_764_028_800);
        m.connected();
        m.connected();
        m.disconnected(DisconnectReason::Slow);
        m.rejected(Status::NotFound);
        m.rejected(Status::NotFound);
        m.rejected(Status::Ok);
        m.delivered_after(Duration::from_micros(700));
        m.delivered_after(Duration::from_millis(20));
        m.set_feed_up(true);
        m.published(5);
        m.sent(3, 300);
        m.sent(0, 13);
        m.feed_line_rejected();
        assert_eq!(
            m.render(),
            "\
# HELP tickstream_clients_connected Open stream connections.
# TYPE tickstream_clients_connected gauge
tickstream_clients_connected 1
# HELP tickstream_connections_total Stream connections accepted.
# TYPE tickstream_connections_total counter
tickstream_connections_total 2
# HELP tickstream_events_published_total Events from the feed.
# TYPE tickstream_events_published_total counter
tickstream_events_published_total 5
# HELP tickstream_events_sent_total Events written to clients.
# TYPE tickstream_events_sent_total counter
tickstream_events_sent_total 3
# HELP tickstream_bytes_sent_total Bytes of event streams written to clients.
# TYPE tickstream_bytes_sent_total counter
tickstream_bytes_sent_total 313
# HELP tickstream_feed_lines_rejected_total Stdin feed lines or stream entries skipped as invalid.
# TYPE tickstream_feed_lines_rejected_total counter
tickstream_feed_lines_rejected_total 1
# HELP tickstream_feed_up 1 while the feed produces or is connected, else 0.
# TYPE tickstream_feed_up gauge
tickstream_feed_up 1
# HELP tickstream_feed_reconnects_total Connects of the redis feed after its first successful one.
# TYPE tickstream_feed_reconnects_total counter
tickstream_feed_reconnects_total 0
# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1764028800
# HELP tickstream_requests_rejected_total Error answers (4xx and 5xx), by status.
# TYPE tickstream_requests_rejected_total counter
tickstream_requests_rejected_total{status=\"400\"} 0
tickstream_requests_rejected_total{status=\"401\"} 0
tickstream_requests_rejected_total{status=\"403\"} 0
tickstream_requests_rejected_total{status=\"404\"} 2
tickstream_requests_rejected_total{status=\"405\"} 0
tickstream_requests_rejected_total{status=\"408\"} 0
tickstream_requests_rejected_total{status=\"414\"} 0
tickstream_requests_rejected_total{status=\"429\"} 0
tickstream_requests_rejected_total{status=\"431\"} 0
tickstream_requests_rejected_total{status=\"503\"} 0
tickstream_requests_rejected_total{status=\"505\"} 0
# HELP tickstream_disconnects_total Stream connections ended, by reason.
# TYPE tickstream_disconnects_total counter
tickstream_disconnects_total{reason=\"closed\"} 0
tickstream_disconnects_total{reason=\"slow\"} 1
tickstream_disconnects_total{reason=\"write_timeout\"} 0
tickstream_disconnects_total{reason=\"drain\"} 0
tickstream_disconnects_total{reason=\"expired\"} 0
tickstream_disconnects_total{reason=\"revoked\"} 0
# HELP tickstream_delivery_lag_seconds Time from the publish of the oldest event in a write of live events to the write's end.
# TYPE tickstream_delivery_lag_seconds histogram
tickstream_delivery_lag_seconds_bucket{le=\"0.0005\"} 0
tickstream_delivery_lag_seconds_bucket{le=\"0.001\"} 1
tickstream_delivery_lag_seconds_bucket{le=\"0.0025\"} 1
tickstream_delivery_lag_seconds_bucket{le=\"0.005\"} 1
tickstream_delivery_lag_seconds_bucket{le=\"0.01\"} 1
tickstream_delivery_lag_seconds_bucket{le=\"0.025\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"0.05\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"0.1\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"0.25\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"0.5\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"1\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"2.5\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"5\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"10\"} 2
tickstream_delivery_lag_seconds_bucket{le=\"+Inf\"} 2
tickstream_delivery_lag_seconds_sum 0.0207
tickstream_delivery_lag_seconds_count 2
"
        );
    }
}
