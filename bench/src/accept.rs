//! `tickstream-bench accept`: how fast the server takes on new stream
//! connections (issue 6, target 4: ≥ 5,000 per second).
//!
//! Opens `--clients` connections as fast as `--max-pending` allows (no
//! ramp) and times each from its first connect attempt to its first event
//! (the catch-up snapshot, which a server sends as soon as the client is
//! subscribed, so the feed interval does not matter). The rate is clients
//! that got their first event divided by the time until the last of them
//! did. Then it holds the connections for `--hold` and closes them.

use std::time::{Duration, Instant};

use crate::cli::AcceptOpts;
use crate::hist::Histogram;
use crate::load::Progress;
use crate::measure::{self, ratio, ServerWatch};
use crate::report::{Report, Value};

/// Runs the benchmark and returns its report.
pub fn run(o: &AcceptOpts) -> Result<Report, String> {
    let c = &o.common;
    let mut watch = ServerWatch::start(c.pid)?;
    let own0 = measure::own_cpu_secs();
    let mut fleet = measure::fleet(c, Duration::ZERO)?;
    let start = Instant::now();
    let mut progress = Progress::new(c.quiet, start);
    let mut next_sample = start;
    let deadline = start + o.timeout;
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= next_sample {
            watch.tick();
            next_sample = now + Duration::from_millis(500);
            progress.maybe(&fleet, now);
        }
        if fleet.all_settled() {
            break;
        }
        if now >= deadline {
            timed_out = true;
            break;
        }
        fleet
            .step(Duration::from_millis(10))
            .map_err(|e| format!("event loop: {e}"))?;
    }
    let server_end = watch.tick();
    let own1 = measure::own_cpu_secs();
    progress.say(&fleet, "connections settled");
    let hold_until = Instant::now() + o.hold;
    while Instant::now() < hold_until {
        let wait = hold_until.saturating_duration_since(Instant::now());
        fleet
            .step(wait.min(Duration::from_millis(100)))
            .map_err(|e| format!("event loop: {e}"))?;
    }

    let t = fleet.totals().clone();
    let mut first = Histogram::default();
    let mut ready = 0u64;
    for d in fleet.first_event_times() {
        first.record(d.as_micros() as u64);
        ready += 1;
    }
    let span = fleet.last_first_event().map_or(0.0, |d| d.as_secs_f64());
    drop(fleet);

    let mut r = Report::new(format!("tickstream-bench accept: {}", c.label));
    r.add("mode", "mode", "", Value::Text("accept".into()));
    r.add("label", "label", "", Value::Text(c.label.clone()));
    measure::connections_section(&mut r, c, &t, &watch);

    r.section("connection rate");
    r.add(
        "ready",
        "clients that got a first event",
        "",
        Value::Int(ready),
    );
    r.add(
        "span_s",
        "time to the last first event",
        "s",
        Value::Float(span, 3),
    );
    r.add(
        "connections_per_s",
        "stream connections per second",
        "/s",
        ratio(ready as f64, span, 0),
    );
    measure::latency_rows(
        &mut r,
        [
            "first_event_p50_ms",
            "first_event_p99_ms",
            "first_event_p999_ms",
            "first_event_max_ms",
            "first_event_samples",
        ],
        [
            "time to first event p50",
            "time to first event p99",
            "time to first event p99.9",
            "time to first event max",
            "clients timed",
        ],
        &first,
    );

    r.section("server process (/proc/<pid>)");
    let opt = |v: Option<u64>| v.map_or(Value::None, Value::Int);
    r.add("server_pid", "pid", "", opt(c.pid.map(u64::from)));
    let cpu = match (watch.idle, server_end) {
        (Some(a), Some(b)) => Some(b.cpu_secs() - a.cpu_secs()),
        _ => None,
    };
    r.add(
        "server_cpu_s",
        "CPU time until settled",
        "s",
        cpu.map_or(Value::None, |s| Value::Float(s, 2)),
    );
    r.add(
        "server_cpu_us_per_connection",
        "CPU per connection",
        "µs",
        cpu.map_or(Value::None, |s| ratio(s * 1e6, ready as f64, 1)),
    );
    r.add(
        "server_rss_kib",
        "RSS when settled",
        "KiB",
        opt(server_end.map(|s| s.rss_kib)),
    );
    r.add(
        "server_threads",
        "threads when settled",
        "",
        opt(server_end.map(|s| s.threads)),
    );
    r.add(
        "generator_cpu_s",
        "generator CPU until settled",
        "s",
        Value::Float(own1 - own0, 2),
    );

    r.note("first-event time runs from a client's first connect attempt (retries included) to its first event");
    if timed_out {
        r.note(format!(
            "stopped waiting after --timeout {}s",
            o.timeout.as_secs_f64()
        ));
    }
    if watch.lost {
        r.note("the server process could not be sampled at some point (did it exit?)");
    }
    if let Some(e) = &t.first_protocol_error {
        r.note(format!("first protocol error: {e}"));
    }
    Ok(r)
}
