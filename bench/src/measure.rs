//! What `load` and `accept` share: building the fleet from the command
//! line, checking the open-files limit up front, sampling the server and
//! the machine in `/proc`, and the report sections both print.

use std::time::Duration;

use crate::cli::Common;
use crate::fleet::{Fleet, FleetConfig, Totals};
use crate::hist::Histogram;
use crate::procfs::{self, ProcSample};
use crate::report::{Report, Value};

/// File descriptors kept free beside the client sockets (epoll, stdio,
/// `/proc` reads).
const SPARE_FDS: u64 = 64;

/// Checks the open-files limit and builds the fleet for these options.
pub fn fleet(c: &Common, ramp: Duration) -> Result<Fleet, String> {
    if let Some(limit) = procfs::open_files_limit() {
        let need = c.clients as u64 + SPARE_FDS;
        if need > limit {
            return Err(format!(
                "--clients {} needs about {need} open files; this process may open {limit} \
                 (ulimit -n)",
                c.clients
            ));
        }
    }
    let bearer = c
        .bearer
        .as_ref()
        .map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\
         User-Agent: tickstream-bench\r\n{bearer}\r\n",
        c.url.path, c.url.host
    );
    Fleet::new(FleetConfig {
        target: c.url.addr,
        request: request.into_bytes(),
        clients: c.clients,
        ramp,
        max_pending: c.max_pending,
        connect_timeout: c.connect_timeout,
        retries: c.retries,
        sources: c.sources.clone(),
        // A `?symbols=` filter or conflation makes gaps in the ids normal.
        check_ids: !filtered(c) && !conflated(c),
    })
    .map_err(|e| format!("cannot create the event loop: {e}"))
}

/// The URL asks for some symbols only, so ids have gaps by design.
pub fn filtered(c: &Common) -> bool {
    c.url.path.contains("symbols=")
}

/// A conflated stream (`--conflated`, or `?throttle=` in the URL): each
/// write holds only the newest event of each symbol, so ids skip by design.
pub fn conflated(c: &Common) -> bool {
    c.conflated || c.url.path.contains("throttle=")
}

/// The `?throttle=` period in the URL, if it is in `250ms`/`1s`/`2m` form.
pub fn throttle_period(c: &Common) -> Option<std::time::Duration> {
    let query = c.url.path.split_once('?')?.1;
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("throttle="))?;
    crate::cli::parse_duration(value).filter(|d| !d.is_zero())
}

/// Samples of the server process and the machine over a run.
#[derive(Debug, Default)]
pub struct ServerWatch {
    pid: Option<u32>,
    /// Before any connection.
    pub idle: Option<ProcSample>,
    /// Machine-wide kernel memory before any connection, KiB.
    pub kernel_idle: Option<u64>,
    /// Machine-wide `ListenOverflows` before any connection.
    pub overflows_idle: Option<u64>,
    /// Largest RSS seen by [`ServerWatch::tick`], KiB.
    pub max_rss: u64,
    /// Largest thread count seen by [`ServerWatch::tick`].
    pub max_threads: u64,
    /// Set when a sample failed (the process went away).
    pub lost: bool,
}

impl ServerWatch {
    /// Takes the idle samples.
    pub fn start(pid: Option<u32>) -> Result<Self, String> {
        let mut w = Self {
            pid,
            kernel_idle: procfs::kernel_mem_kib().ok(),
            overflows_idle: procfs::listen_overflows().ok(),
            ..Self::default()
        };
        if let Some(p) = pid {
            let s = procfs::sample(&p.to_string())
                .map_err(|e| format!("cannot read /proc/{p}: {e} (is --pid right?)"))?;
            w.idle = Some(s);
            w.max_rss = s.rss_kib;
            w.max_threads = s.threads;
        }
        Ok(w)
    }

    /// Accept-queue overflows on the machine since [`ServerWatch::start`].
    pub fn listen_overflows(&self) -> Value {
        match (self.overflows_idle, procfs::listen_overflows().ok()) {
            (Some(a), Some(b)) => Value::Int(b.saturating_sub(a)),
            _ => Value::None,
        }
    }

    /// Samples the server now (`None` without `--pid`), updating the maxima.
    pub fn tick(&mut self) -> Option<ProcSample> {
        let p = self.pid?;
        match procfs::sample(&p.to_string()) {
            Ok(s) => {
                self.max_rss = self.max_rss.max(s.rss_kib);
                self.max_threads = self.max_threads.max(s.threads);
                Some(s)
            }
            Err(_) => {
                self.lost = true;
                None
            }
        }
    }
}

/// This process's CPU time now, seconds.
pub fn own_cpu_secs() -> f64 {
    procfs::sample("self").map_or(0.0, |s| s.cpu_secs())
}

/// `"refused=3, http 503=1"`, or `"none"`.
pub fn reasons(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The connection figures both benchmarks report.
pub fn connections_section(r: &mut Report, c: &Common, t: &Totals, w: &ServerWatch) {
    let failed_attempts: u64 = t.attempt_failures.values().sum();
    let disconnects: u64 = t.disconnects.values().sum();
    r.section("connections");
    #[rustfmt::skip]
    let rows = [
        ("clients", "clients asked for", Value::Int(c.clients as u64)),
        ("max_pending", "connects in flight at most", Value::Int(c.max_pending as u64)),
        ("established", "got a 200 stream", Value::Int(t.established)),
        ("connect_failures", "never connected (gave up)", Value::Int(t.gave_up)),
        ("attempts", "connect attempts", Value::Int(t.attempts)),
        ("failed_attempts", "failed attempts", Value::Int(failed_attempts)),
        ("failed_attempt_reasons", "  by reason", Value::Text(reasons(&t.attempt_failures))),
        ("disconnects", "disconnects (whole run)", Value::Int(disconnects)),
        ("disconnect_reasons", "  by reason", Value::Text(reasons(&t.disconnects))),
        ("listen_overflows", "accept-queue overflows (machine)", w.listen_overflows()),
    ];
    r.rows("", rows);
}

/// Latency quantiles in milliseconds (3 decimals): JSON `keys` and table
/// `labels` for p50, p99, p99.9, max and the sample count.
pub fn latency_rows(
    r: &mut Report,
    keys: [&'static str; 5],
    labels: [&'static str; 5],
    h: &Histogram,
) {
    let ms = |q: f64| {
        h.quantile(q)
            .map_or(Value::None, |us| Value::Float(us as f64 / 1000.0, 3))
    };
    let max = if h.count() == 0 {
        Value::None
    } else {
        Value::Float(h.max() as f64 / 1000.0, 3)
    };
    let values = [ms(0.50), ms(0.99), ms(0.999), max, Value::Int(h.count())];
    for ((key, label), value) in keys.into_iter().zip(labels).zip(values) {
        let unit = if key.ends_with("_ms") { "ms" } else { "" };
        r.add(key, label, unit, value);
    }
}

/// `Value::Float` or `Value::None` for a ratio whose divisor may be zero.
pub fn ratio(num: f64, den: f64, decimals: usize) -> Value {
    if den > 0.0 {
        Value::Float(num / den, decimals)
    } else {
        Value::None
    }
}
