//! tickstream-bench: the load generator and baseline server of issue 6.
//!
//! - `load`: holds N SSE connections (one thread, epoll), parses every event
//!   and reports delivery latency, events per second and per client, id
//!   gaps, and the server's RSS, threads and CPU time from `/proc/<pid>`.
//! - `accept`: new stream connections per second.
//! - `floor`: a one-thread SSE server writing the same bytes, the baseline
//!   the thread-per-connection server is measured against.
//! - `feed`: `SYMBOL PRICE TS_MS` lines on stdout at a steady rate, for a
//!   server's `--feed stdin`.
//!
//! Codemap: `cli` (flags), `fleet` (the only module that owns client
//! sockets), `sse` (sans-IO response parser), `hist` (latency histogram),
//! `procfs` (`/proc` readers), `measure` (what `load` and `accept` share),
//! `load`, `accept`, `floor`, `feed` (the subcommands), `report` (table and
//! JSON).
//!
//! This crate is never a dependency of the server.

mod accept;
mod cli;
mod feed;
mod fleet;
mod floor;
mod hist;
mod load;
mod measure;
mod procfs;
mod report;
mod sse;

use std::process::ExitCode;

use cli::Command;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match cli::parse(&args) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("tickstream-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tickstream-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Command) -> Result<(), String> {
    let (report, json) = match cmd {
        Command::Help => {
            print!("{}", cli::USAGE);
            return Ok(());
        }
        Command::Floor(o) => return floor::run(&o),
        Command::Feed(o) => return feed::run(&o),
        Command::Load(o) => (load::run(&o)?, o.common.json),
        Command::Accept(o) => (accept::run(&o)?, o.common.json),
    };
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
