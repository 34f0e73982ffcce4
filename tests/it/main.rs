//! Integration tests: each starts the real `tickstream` binary on
//! `127.0.0.1:0`, reads the port from its first stderr line, and talks to it
//! over real sockets.

mod auth;
mod bad_input;
mod browser;
mod cli;
mod conflate;
mod faults;
mod fleet;
mod nginx;
mod ops;
mod package;
// bench's `/proc` reader and response parser: std only, so the server's
// tests include their source rather than depending on the bench crate (and
// its event loop). Their unit tests run here too.
#[allow(dead_code)]
#[path = "../../bench/src/procfs.rs"]
mod procfs;
mod prometheus;
mod props;
mod redis_faults;
mod redis_server;
mod replicas;
mod slow;
#[allow(dead_code)]
#[path = "../../bench/src/sse.rs"]
mod sse;
mod stop;
mod stream;
mod support;
