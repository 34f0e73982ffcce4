//! Integration tests: each starts the real `tickstream` binary on
//! `127.0.0.1:0`, reads the port from its first stderr line, and talks to it
//! over real sockets.

mod bad_input;
mod browser;
mod cli;
mod conflate;
mod faults;
mod fleet;
mod nginx;
mod ops;
mod props;
mod redis_server;
mod replicas;
mod slow;
mod stream;
mod support;
