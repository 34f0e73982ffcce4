//! tickstream: a live price feed over Server-Sent Events.
//!
//! One `TcpListener` accept loop, one OS thread per connection, one feed
//! thread; std only, plus `fastrand` for the random walk. See
//! ARCHITECTURE.md for the map of the modules and the life of a connection.

pub mod config;
pub mod feed;
pub mod http;
pub mod hub;
pub mod metrics;
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
                eprintln!("tickstream: {arg:?}: not valid UTF-8 (see --help)");
                return ExitCode::from(USAGE_EXIT);
            }
        }
    }
    let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    match config::parse(strings, env) {
        Err(e) => {
            eprintln!("tickstream: {e}");
            ExitCode::from(USAGE_EXIT)
        }
        Ok(config::Command::Help) => {
            print!("{}", config::HELP);
            ExitCode::SUCCESS
        }
        Ok(config::Command::Version) => {
            println!("tickstream {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(config::Command::Run(config)) => match server::start(*config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tickstream: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
