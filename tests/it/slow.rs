//! Clients that cannot keep up: they are disconnected, nobody else waits.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn clients_that_never_read_are_dropped_and_readers_keep_their_timing() {
    let server = Server::start_for_non_readers(&[]);
    // Every connection adds one thread to the idle ones.
    let baseline_threads = IDLE_THREADS;
    let watcher = Watcher::start(&server, "/prices?symbols=BTC");
    let stalled = never_reading_clients(server.addr, 3);
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || server.dropped_as_slow() >= 3),
        "non-reading clients still connected after 30 s:\n{}",
        server.log()
    );
    println!(
        "3 non-reading clients dropped within {:?} (slow: {}, write_timeout: {})",
        started.elapsed(),
        server.metric("tickstream_disconnects_total{reason=\"slow\"}"),
        server.metric("tickstream_disconnects_total{reason=\"write_timeout\"}"),
    );
    assert!(
        server.log().contains(" events sent: slow")
            || server.log().contains(" events sent: write_timeout")
    );
    watcher.finish_on_time(Duration::from_millis(10), "non-readers");
    drop(stalled);
    assert!(
        wait_until(Duration::from_secs(10), || server.threads()
            <= baseline_threads),
        "threads {} > baseline {baseline_threads}",
        server.threads()
    );
    println!(
        "threads: baseline {baseline_threads}, after {}",
        server.threads()
    );
}

#[test]
fn a_client_gone_mid_stream_is_counted_as_closed() {
    let server = Server::start(&["--interval", "20ms"]);
    let mut sse = Sse::connect(server.addr, "/prices", "");
    sse.events(3, IO_TIMEOUT);
    drop(sse);
    assert!(wait_until(Duration::from_secs(5), || {
        server.metric("tickstream_disconnects_total{reason=\"closed\"}") == 1
    }));
    assert_eq!(server.metric("tickstream_clients_connected"), 0);
    assert!(server.wait_for_log("/prices HTTP/1.1 ended after", Duration::from_secs(2)));
    let quiet = Server::start(&["--interval", "20ms", "--quiet"]);
    let mut sse = Sse::connect(quiet.addr, "/prices", "");
    sse.events(3, IO_TIMEOUT);
    drop(sse);
    assert!(wait_until(Duration::from_secs(5), || quiet
        .metric("tickstream_clients_connected")
        == 0));
    assert!(!quiet.log().contains("ended after"), "{}", quiet.log());
}
