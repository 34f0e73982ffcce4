//! `tickstream-bench load`: the steady-state benchmark of issue 6.
//!
//! Timeline: idle samples → ramp (connects spread evenly) → warmup →
//! measured window of `--duration` → 2 s drain → report. The window is
//! defined on the events' `ts` (see [`Fleet::open_window`]): events per
//! second, per-client events and latency count the live events produced in
//! it, collected until the drain ends. The server's CPU time and RSS are
//! read at the window's start and end in wall-clock time (RSS and threads
//! also every second, for the maxima). The run stops by itself.

use std::time::{Duration, Instant};

use crate::cli::LoadOpts;
use crate::fleet::{wall_us, Fleet};
use crate::measure::{self, ratio, ServerWatch};
use crate::procfs::{self, USER_HZ};
use crate::report::{Report, Value};

/// How often the server is sampled and progress is printed.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long after the window's end events produced in it are still
/// collected (an event later than that is missing from the counts).
const DRAIN: Duration = Duration::from_secs(2);

/// Runs the benchmark and returns its report.
pub fn run(o: &LoadOpts) -> Result<Report, String> {
    let c = &o.common;
    let mut watch = ServerWatch::start(c.pid)?;
    let mut fleet = measure::fleet(c, o.ramp)?;
    let start = Instant::now();
    let window_start = start + o.ramp + o.warmup;
    let mut progress = Progress::new(c.quiet, start);

    drive(&mut fleet, &mut watch, &mut progress, window_start)?;
    let server0 = watch.tick();
    let own0 = measure::own_cpu_secs();
    let w0 = Instant::now();
    let start_ms = wall_us() / 1000;
    fleet.open_window(start_ms, start_ms + o.duration.as_millis() as u64);
    let members = fleet.streaming();
    progress.say(&fleet, "window opens");

    drive(&mut fleet, &mut watch, &mut progress, w0 + o.duration)?;
    let cpu_window = w0.elapsed().as_secs_f64();
    let server1 = watch.tick();
    let own1 = measure::own_cpu_secs();
    let own_rss = procfs::sample("self").ok().map(|s| s.rss_kib);
    let kernel1 = procfs::kernel_mem_kib().ok();
    let streaming_end = fleet.streaming();
    progress.say(&fleet, "window closes, draining");
    drive(
        &mut fleet,
        &mut watch,
        &mut progress,
        Instant::now() + DRAIN,
    )?;
    let window = o.duration.as_secs_f64();

    let t = fleet.totals().clone();
    let per_client = fleet.window_events_per_client();
    drop(fleet); // closes every connection

    let mut r = Report::new(format!("tickstream-bench load: {}", c.label));
    r.add("mode", "mode", "", Value::Text("load".into()));
    r.add("label", "label", "", Value::Text(c.label.clone()));
    r.add("ramp_s", "ramp", "s", Value::Float(o.ramp.as_secs_f64(), 1));
    r.add(
        "warmup_s",
        "warmup",
        "s",
        Value::Float(o.warmup.as_secs_f64(), 1),
    );
    r.add("window_s", "measured window", "s", Value::Float(window, 2));
    measure::connections_section(&mut r, c, &t, &watch);
    r.add(
        "streaming_window_start",
        "streaming at window start",
        "",
        Value::Int(members as u64),
    );
    r.add(
        "streaming_window_end",
        "streaming at window end",
        "",
        Value::Int(streaming_end as u64),
    );
    r.add(
        "window_disconnects",
        "disconnects in window",
        "",
        Value::Int(t.window_disconnects),
    );

    r.section("delivery in the window");
    r.add("events", "events received", "", Value::Int(t.window_events));
    r.add(
        "events_per_s",
        "events per second",
        "/s",
        ratio(t.window_events as f64, window, 0),
    );
    let pick = |f: fn(&[u64]) -> Option<u64>| f(&per_client).map_or(Value::None, Value::Int);
    r.add(
        "events_per_client_min",
        "events per client: min",
        "",
        pick(|v| v.first().copied()),
    );
    r.add(
        "events_per_client_median",
        "events per client: median",
        "",
        pick(|v| v.get(v.len() / 2).copied()),
    );
    r.add(
        "events_per_client_max",
        "events per client: max",
        "",
        pick(|v| v.last().copied()),
    );
    measure::latency_rows(
        &mut r,
        [
            "latency_p50_ms",
            "latency_p99_ms",
            "latency_p999_ms",
            "latency_max_ms",
            "latency_samples",
        ],
        [
            "latency p50",
            "latency p99",
            "latency p99.9",
            "latency max",
            "latency samples",
        ],
        &t.latency_us,
    );
    // Gaps are judged on decimal ids of an unfiltered, unconflated stream
    // only: a `?symbols=` filter or conflation makes jumps normal (counted
    // as skips), and an `MS-SEQ` id has no "next" id to expect.
    let expected_jumps = measure::filtered(c) || measure::conflated(c);
    let id_form = match (t.counter_ids, t.entry_ids) {
        (0, 0) => "none",
        (_, 0) => "decimal",
        (0, _) => "MS-SEQ",
        _ => "mixed",
    };
    let gaps_judged = !expected_jumps && t.entry_ids == 0;
    let checked = |n: u64| {
        if gaps_judged {
            Value::Int(n)
        } else {
            Value::None
        }
    };
    let skipped = |n: u64| {
        if expected_jumps {
            Value::Int(n)
        } else {
            Value::None
        }
    };
    #[rustfmt::skip]
    let ids = [
        ("id_form", "id form", Value::Text(id_form.into())),
        ("id_gaps", "id gaps (whole run)", checked(t.gaps)),
        ("ids_missing", "ids missing in gaps", checked(t.missing_ids)),
        ("id_skips", "id skips, expected (whole run)", skipped(t.skips)),
        ("ids_skipped", "ids skipped", skipped(t.skipped_ids)),
        ("id_duplicates", "duplicate or backward ids", Value::Int(t.duplicates)),
        ("malformed_events", "malformed events", Value::Int(t.malformed)),
        ("heartbeats", "heartbeat comments", Value::Int(t.comments)),
    ];
    r.rows("", ids);

    r.section("server process (/proc/<pid>)");
    let pid = c.pid.map_or(Value::None, |p| Value::Int(p.into()));
    r.add("server_pid", "pid", "", pid);
    let idle = watch.idle;
    let kib = |s: Option<u64>| s.map_or(Value::None, Value::Int);
    let rss_per_client = match (idle, server1) {
        (Some(a), Some(b)) => ratio(b.rss_kib as f64 - a.rss_kib as f64, members as f64, 2),
        _ => Value::None,
    };
    #[rustfmt::skip]
    let rss = [
        ("server_rss_idle_kib", "RSS idle", kib(idle.map(|s| s.rss_kib))),
        ("server_rss_kib", "RSS at window end", kib(server1.map(|s| s.rss_kib))),
        ("server_rss_max_kib", "RSS max seen", kib(c.pid.map(|_| watch.max_rss))),
        ("server_rss_per_client_kib", "RSS per client", rss_per_client),
    ];
    r.rows("KiB", rss);
    #[rustfmt::skip]
    let threads = [
        ("server_threads_idle", "threads idle", kib(idle.map(|s| s.threads))),
        ("server_threads", "threads at window end", kib(server1.map(|s| s.threads))),
        ("server_threads_max", "threads max seen", kib(c.pid.map(|_| watch.max_threads))),
    ];
    r.rows("", threads);
    let cpu = match (server0, server1) {
        (Some(a), Some(b)) => Some((b.cpu_ticks - a.cpu_ticks) as f64 / USER_HZ as f64),
        _ => None,
    };
    r.add(
        "server_cpu_s",
        "CPU time in window",
        "s",
        cpu.map_or(Value::None, |s| Value::Float(s, 2)),
    );
    r.add(
        "server_cpu_pct",
        "CPU use in window",
        "% of a core",
        cpu.map_or(Value::None, |s| ratio(s * 100.0, cpu_window, 1)),
    );
    r.add(
        "server_cpu_us_per_event",
        "CPU per delivered event",
        "µs",
        cpu.map_or(Value::None, |s| ratio(s * 1e6, t.window_events as f64, 3)),
    );

    r.section("machine");
    let kdelta = match (watch.kernel_idle, kernel1) {
        (Some(a), Some(b)) => Some(b as f64 - a as f64),
        _ => None,
    };
    r.add(
        "kernel_mem_idle_kib",
        "kernel memory idle",
        "KiB",
        kib(watch.kernel_idle),
    );
    r.add(
        "kernel_mem_kib",
        "kernel memory at window end",
        "KiB",
        kib(kernel1),
    );
    r.add(
        "kernel_mem_per_client_kib",
        "kernel memory per client",
        "KiB",
        kdelta.map_or(Value::None, |d| ratio(d, members as f64, 2)),
    );
    r.add(
        "generator_cpu_pct",
        "generator CPU in window",
        "% of a core",
        ratio((own1 - own0) * 100.0, cpu_window, 1),
    );
    r.add(
        "generator_rss_kib",
        "generator RSS at window end",
        "KiB",
        kib(own_rss),
    );

    r.note(
        "latency = receive time − ts; ts has 1 ms resolution, so latencies read up to 1 ms high",
    );
    r.note("kernel memory (Slab + KernelStack + PageTables) is machine-wide and includes the generator's end of every loopback connection");
    if c.pid.is_some() {
        r.note(format!(
            "CPU time from /proc/<pid>/stat at {USER_HZ} ticks/s"
        ));
    }
    if watch.lost {
        r.note("the server process could not be sampled at some point (did it exit?)");
    }
    if t.entry_ids > 0 {
        r.note(
            "ids are Redis stream ids (MS-SEQ): checked for duplicates and order, gaps not judged",
        );
    }
    if measure::conflated(c) {
        let due = match measure::throttle_period(c) {
            Some(p) => format!(
                " (here about {:.0} writes per client in the window)",
                window / p.as_secs_f64()
            ),
            None => String::new(),
        };
        r.note(format!(
            "conflated stream: ids skip by design (counted as skips, not gaps); a client is due one \
             write per period{due} of the newest event of each symbol that changed, so events \
             per client ≈ writes × symbols, and latency includes each event's age when its \
             write came due (up to one feed interval)"
        ));
    }
    if let Some(e) = &t.first_protocol_error {
        r.note(format!("first protocol error: {e}"));
    }
    if t.negative_latency > 0 {
        r.note(format!(
            "{} events had a ts in the future (counted as 0 latency)",
            t.negative_latency
        ));
    }
    Ok(r)
}

/// Steps the fleet until `until`, sampling the server every second.
fn drive(
    fleet: &mut Fleet,
    watch: &mut ServerWatch,
    progress: &mut Progress,
    until: Instant,
) -> Result<(), String> {
    let mut next_sample = Instant::now() + SAMPLE_EVERY;
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        if now >= next_sample {
            watch.tick();
            next_sample = now + SAMPLE_EVERY;
            progress.maybe(fleet, now);
        }
        let wait = until.min(next_sample) - now;
        fleet
            .step(wait.min(Duration::from_millis(100)))
            .map_err(|e| format!("event loop: {e}"))?;
    }
}

/// Progress lines on stderr.
pub struct Progress {
    quiet: bool,
    start: Instant,
    next: Instant,
}

impl Progress {
    /// Prints nothing if `quiet`.
    pub fn new(quiet: bool, start: Instant) -> Self {
        Self {
            quiet,
            start,
            next: start + PROGRESS_EVERY,
        }
    }

    /// Prints a line if one is due.
    pub fn maybe(&mut self, fleet: &Fleet, now: Instant) {
        if now >= self.next {
            self.next = now + PROGRESS_EVERY;
            self.say(fleet, "");
        }
    }

    /// Prints a line now.
    pub fn say(&self, fleet: &Fleet, what: &str) {
        if self.quiet {
            return;
        }
        let t = fleet.totals();
        eprintln!(
            "[{:6.1}s] streaming {} established {} gave up {} failed attempts {} disconnects {} \
             events {} {what}",
            self.start.elapsed().as_secs_f64(),
            fleet.streaming(),
            t.established,
            t.gave_up,
            t.attempt_failures.values().sum::<u64>(),
            t.disconnects.values().sum::<u64>(),
            t.events,
        );
    }
}
