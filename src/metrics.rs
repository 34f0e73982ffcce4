//! Counters and gauges, updated with relaxed atomics from every thread, and
//! their rendering in the Prometheus text exposition format 0.0.4.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a stream connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client went away (a write failed).
    Closed,
    /// Its queue filled up: it could not keep up with the feed.
    Slow,
    /// Its socket accepted no bytes for `--write-timeout`.
    WriteTimeout,
}

impl DisconnectReason {
    const ALL: [DisconnectReason; 3] = [
        DisconnectReason::Closed,
        DisconnectReason::Slow,
        DisconnectReason::WriteTimeout,
    ];

    /// The label value (and log word) for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Closed => "closed",
            DisconnectReason::Slow => "slow",
            DisconnectReason::WriteTimeout => "write_timeout",
        }
    }
}

/// Every status tickstream answers with an error, in label order.
pub const ERROR_STATUSES: [u16; 8] = [400, 404, 405, 408, 414, 431, 503, 505];

/// The server's counters. All methods take `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    clients_connected: AtomicU64,
    connections_total: AtomicU64,
    rejected: [AtomicU64; ERROR_STATUSES.len()],
    disconnects: [AtomicU64; 3],
    events_published: AtomicU64,
    events_sent: AtomicU64,
    bytes_sent: AtomicU64,
    feed_lines_rejected: AtomicU64,
    start_time_seconds: AtomicU64,
}

impl Metrics {
    /// Metrics for a process started at `start_time_seconds` (Unix time).
    pub fn new(start_time_seconds: u64) -> Metrics {
        let metrics = Metrics::default();
        metrics
            .start_time_seconds
            .store(start_time_seconds, Ordering::Relaxed);
        metrics
    }

    /// Tries to take one of `max` stream slots; counts the connection.
    pub fn try_connect(&self, max: usize) -> bool {
        let taken = self
            .clients_connected
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max as u64).then_some(n + 1)
            })
            .is_ok();
        if taken {
            self.connections_total.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Gives a stream slot back, counting why it ended.
    pub fn disconnect(&self, reason: DisconnectReason) {
        self.clients_connected.fetch_sub(1, Ordering::Relaxed);
        let i = DisconnectReason::ALL.iter().position(|r| *r == reason);
        self.disconnects[i.unwrap_or(0)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an error answer.
    pub fn rejected(&self, status: u16) {
        if let Some(i) = ERROR_STATUSES.iter().position(|s| *s == status) {
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
        if events > 0 {
            self.events_sent.fetch_add(events as u64, Ordering::Relaxed);
        }
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a stdin line the feed skipped.
    pub fn feed_line_rejected(&self) {
        self.feed_lines_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Open stream connections now.
    pub fn clients_connected(&self) -> u64 {
        self.clients_connected.load(Ordering::Relaxed)
    }

    /// The exposition, `text/plain; version=0.0.4`.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |a: &AtomicU64| [(String::new(), get(a))];
        metric(
            "tickstream_clients_connected",
            "gauge",
            "Open stream connections.",
            &plain(&self.clients_connected),
        );
        metric(
            "tickstream_connections_total",
            "counter",
            "Stream connections accepted.",
            &plain(&self.connections_total),
        );
        let rejected: Vec<(String, u64)> = ERROR_STATUSES
            .iter()
            .zip(&self.rejected)
            .map(|(status, n)| (format!("{{status=\"{status}\"}}"), get(n)))
            .collect();
        metric(
            "tickstream_requests_rejected_total",
            "counter",
            "Error answers (4xx and 5xx), by status.",
            &rejected,
        );
        let disconnects: Vec<(String, u64)> = DisconnectReason::ALL
            .iter()
            .zip(&self.disconnects)
            .map(|(reason, n)| (format!("{{reason=\"{}\"}}", reason.as_str()), get(n)))
            .collect();
        metric(
            "tickstream_disconnects_total",
            "counter",
            "Stream connections ended, by reason.",
            &disconnects,
        );
        metric(
            "tickstream_events_published_total",
            "counter",
            "Events from the feed.",
            &plain(&self.events_published),
        );
        metric(
            "tickstream_events_sent_total",
            "counter",
            "Events written to clients.",
            &plain(&self.events_sent),
        );
        metric(
            "tickstream_bytes_sent_total",
            "counter",
            "Bytes of event streams written to clients.",
            &plain(&self.bytes_sent),
        );
        metric(
            "tickstream_feed_lines_rejected_total",
            "counter",
            "Stdin feed lines skipped as invalid.",
            &plain(&self.feed_lines_rejected),
        );
        metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch in seconds.",
            &plain(&self.start_time_seconds),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_bytes() {
        let m = Metrics::new(1_764_028_800);
        assert!(m.try_connect(2));
        assert!(m.try_connect(2));
        assert!(!m.try_connect(2), "the cap holds");
        m.disconnect(DisconnectReason::Slow);
        m.rejected(404);
        m.rejected(404);
        m.rejected(999);
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
# HELP tickstream_requests_rejected_total Error answers (4xx and 5xx), by status.
# TYPE tickstream_requests_rejected_total counter
tickstream_requests_rejected_total{status=\"400\"} 0
tickstream_requests_rejected_total{status=\"404\"} 2
tickstream_requests_rejected_total{status=\"405\"} 0
tickstream_requests_rejected_total{status=\"408\"} 0
tickstream_requests_rejected_total{status=\"414\"} 0
tickstream_requests_rejected_total{status=\"431\"} 0
tickstream_requests_rejected_total{status=\"503\"} 0
tickstream_requests_rejected_total{status=\"505\"} 0
# HELP tickstream_disconnects_total Stream connections ended, by reason.
# TYPE tickstream_disconnects_total counter
tickstream_disconnects_total{reason=\"closed\"} 0
tickstream_disconnects_total{reason=\"slow\"} 1
tickstream_disconnects_total{reason=\"write_timeout\"} 0
# HELP tickstream_events_published_total Events from the feed.
# TYPE tickstream_events_published_total counter
tickstream_events_published_total 5
# HELP tickstream_events_sent_total Events written to clients.
# TYPE tickstream_events_sent_total counter
tickstream_events_sent_total 3
# HELP tickstream_bytes_sent_total Bytes of event streams written to clients.
# TYPE tickstream_bytes_sent_total counter
tickstream_bytes_sent_total 313
# HELP tickstream_feed_lines_rejected_total Stdin feed lines skipped as invalid.
# TYPE tickstream_feed_lines_rejected_total counter
tickstream_feed_lines_rejected_total 1
# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1764028800
"
        );
    }
}
