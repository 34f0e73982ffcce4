//! tickstream: a live price feed over Server-Sent Events.
//!
//! One `TcpListener` accept loop, one OS thread per connection, one feed
//! thread; std only, plus `fastrand` for the random walk. [`run`] wires the
//! process together; ARCHITECTURE.md maps the modules and the life of a
//! connection.

/// Logs one line on stderr without ever blocking or panicking (see
/// [`mod@log`]): `log!("tickstream: {x}")`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::line(format!($($arg)*))
    };
}

pub mod auth;
pub mod config;
pub mod feed;
pub mod http;
pub mod hub;
pub mod id;
pub mod log;
pub mod metrics;
pub mod notify;
pub mod percent;
pub mod publish;
pub mod redis;
pub mod server;
pub mod sse;
pub mod stop;
pub mod symbol;
pub mod sys;

use std::convert::Infallible;
use std::ffi::OsString;
use std::io;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use config::{Command, Config};
use hub::Hub;
use metrics::Metrics;
use server::{Shared, MAX_PENDING_HEADS};

/// The time since the Unix epoch (zero for a clock before it).
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Exit status of a bad flag or value.
const USAGE_EXIT: u8 = 2;

/// Runs the program with these arguments (without the program name);
/// returns only on a usage error, `--help`, `--version`, or a failed start.
/// `signal_stacks_dropped` says whether [`sys::drop_signal_stacks`] worked,
/// which sets how many connection threads the memory-mapping limit allows;
/// `signals` are the stop signals `main` blocked before any thread existed.
pub fn run(
    args: impl IntoIterator<Item = OsString>,
    signal_stacks_dropped: bool,
    signals: sys::StopSignals,
) -> ExitCode {
    let strings: Vec<String> = match args.into_iter().map(OsString::into_string).collect() {
        Ok(strings) => strings,
        Err(arg) => return usage_error(&format!("{arg:?}: not valid UTF-8 (see --help)")),
    };
    let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    let print = |text: &str| {
        let _ = io::Write::write_all(&mut io::stdout(), text.as_bytes());
        ExitCode::SUCCESS
    };
    match config::parse(strings, env) {
        Err(e) => usage_error(&e),
        Ok(Command::Help) => print(&config::help()),
        Ok(Command::Version) => print(&format!("tickstream {}\n", env!("CARGO_PKG_VERSION"))),
        Ok(Command::Publish(config)) => publish::run(&config, signals),
        Ok(Command::Token(config)) => match token(&config) {
            Ok(token) => print(&format!("{token}\n")),
            Err(e) => usage_error(&e),
        },
        Ok(Command::Run(config)) => {
            let access = config
                .auth_keys
                .clone()
                .map(|path| auth::Access::load(path, config.auth_audience.clone()));
            let access = match access.transpose() {
                Ok(access) => access,
                Err(e) => return usage_error(&format!("--auth-keys {e}")),
            };
            let Err(e) = start(*config, access, signal_stacks_dropped, signals);
            log::write_now(&format!("tickstream: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// One line on stderr, exit status 2.
fn usage_error(problem: &str) -> ExitCode {
    log::write_now(&format!("tickstream: {problem}"));
    ExitCode::from(USAGE_EXIT)
}

/// `tickstream token`: a token of the configured claims, signed with the
/// key file's first key.
fn token(config: &Config) -> Result<String, String> {
    let path = config.auth_keys.clone().unwrap_or_default();
    let keys = auth::read_keys(&path).map_err(|e| format!("--auth-keys {e}"))?;
    Ok(auth::mint(
        &keys,
        since_epoch().as_secs(),
        config.ttl,
        &config.claims,
    ))
}

/// Binds, prints the listening line, starts the feed thread and serves
/// forever.
fn start(
    config: Config,
    access: Option<auth::Access>,
    signal_stacks_dropped: bool,
    signals: sys::StopSignals,
) -> Result<Infallible, String> {
    let cannot_bind = |e| format!("cannot bind {}: {e}", config.addr);
    let listener = TcpListener::bind(config.addr).map_err(cannot_bind)?;
    let local = listener.local_addr().map_err(cannot_bind)?;
    crate::log!(
        "tickstream {} listening on http://{local}/",
        env!("CARGO_PKG_VERSION")
    );
    if let Err(e) = sys::widen_backlog(&listener) {
        crate::log!("tickstream: cannot widen the listen backlog: {e}");
    }
    let started = since_epoch();
    // Ids start at the boot time in microseconds: above any id an earlier
    // run could have issued (unless it published a million events a second).
    let first_id = started.as_micros() as u64;
    let hub = Hub::new(
        config.feed.id_form(),
        first_id,
        config.history,
        config.client_queue,
    );
    let mappings = sys::mappings_per_thread(signal_stacks_dropped);
    let thread_budget = sys::thread_budget(mappings);
    if config.max_clients + MAX_PENDING_HEADS > thread_budget {
        crate::log!(
            "tickstream: vm.max_map_count allows about {thread_budget} connection threads \
             ({mappings} memory mappings each), fewer than --max-clients {} plus {MAX_PENDING_HEADS} \
             requests in flight; connections past it get 503",
            config.max_clients
        );
    }
    let metrics = Arc::new(Metrics::new(started.as_secs()));
    feed::spawn(&config, Arc::clone(&hub), Arc::clone(&metrics))
        .map_err(|e| format!("cannot start the feed thread: {e}"))?;
    let shared = Arc::new(Shared::new(config, hub, metrics, thread_budget, access));
    let cannot_stop = |e| format!("cannot start the stop thread: {e}");
    let stop_listener = listener.try_clone().map_err(cannot_stop)?;
    stop::spawn(signals, stop_listener, Arc::clone(&shared)).map_err(cannot_stop)?;
    notify::notify(notify::READY);
    server::serve(listener, shared)
}
