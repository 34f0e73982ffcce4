//! tickstream: a live price feed over Server-Sent Events.
//!
//! One `TcpListener` accept loop, one OS thread per connection, one feed
//! thread; std only, plus `fastrand` for the random walk. See
//! ARCHITECTURE.md for the map of the modules and the life of a connection.

/// Logs one line on stderr without ever blocking or panicking (see
/// [`log`]): `log!("tickstream: {x}")`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::line(format!($($arg)*))
    };
}

pub mod config;
pub mod feed;
pub mod http;
pub mod hub;
pub mod log;
pub mod metrics;
pub mod redis;
pub mod resp;
pub mod server;
pub mod sse;
pub mod sys;

use std::ffi::OsString;
use std::process::ExitCode;

/// Exit status of a bad flag or value.
const USAGE_EXIT: u8 = 2;

/// Runs the program with these arguments (without the program name);
/// returns only on a usage error, `--help`, `--version`, or a failed start.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut strings = Vec::new();
    for arg in args {
        match arg.into_string() {
            Ok(s) => strings.push(s),
            Err(arg) => {
                log::write_now(&format!(
                    "tickstream: {arg:?}: not valid UTF-8 (see --help)"
                ));
                return ExitCode::from(USAGE_EXIT);
            }
        }
    }
    let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    let args = strings.clone();
    match config::parse(strings, env) {
        Err(e) => {
            log::write_now(&format!("tickstream: {e}"));
            ExitCode::from(USAGE_EXIT)
        }
        Ok(config::Command::Help) => {
            let _ = std::io::Write::write_all(&mut std::io::stdout(), config::HELP.as_bytes());
            ExitCode::SUCCESS
        }
        Ok(config::Command::Version) => {
            let version = format!("tickstream {}\n", env!("CARGO_PKG_VERSION"));
            let _ = std::io::Write::write_all(&mut std::io::stdout(), version.as_bytes());
            ExitCode::SUCCESS
        }
        Ok(config::Command::Run(config)) => {
            match server::start(*config, sys::drop_signal_stacks(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::write_now(&format!("tickstream: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
