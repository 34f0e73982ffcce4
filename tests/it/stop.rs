//! Stopping never waits on stderr: with the pipe full and nobody reading
//! it, a SIGTERM still exits 0 after the drain and a second one exits 1 at
//! once; the stop's log lines keep their order.

use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;

/// A stdin server whose stderr pipe is full (5,000 warnings about bad
/// lines, some 150 KiB, into a 64 KiB pipe nobody reads).
fn server_with_full_stderr(args: &[&str]) -> Server {
    let mut server = Server::start_stdin_leaving_stderr_unread(args);
    let junk: String = (0..5000)
        .map(|i| format!("not a price line {i}\n"))
        .collect();
    server.feed(&junk);
    assert!(wait_until(IO_TIMEOUT, || server
        .metric("tickstream_feed_lines_rejected_total")
        == 5000));
    server
}

/// Waits until the server has closed its listening socket: it has begun
/// to stop.
fn wait_until_not_listening(server: &Server) {
    let addr = server.addr;
    assert!(
        wait_until(IO_TIMEOUT, || TcpStream::connect(addr).is_err()),
        "still listening"
    );
}

#[test]
fn sigterm_exits_0_when_nobody_reads_stderr() {
    let mut server = server_with_full_stderr(&["--drain", "0"]);
    server.signal("TERM");
    // The stop needs at most a second of last writes and half a second of
    // last log lines: allowed four times that.
    let status = server.exit_within(Duration::from_secs(6));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}

#[test]
fn a_second_sigterm_exits_1_when_nobody_reads_stderr() {
    let mut server = server_with_full_stderr(&["--drain", "60s"]);
    // The drain ends its streams spread over the minute, the first at once:
    // with three, the stop is still under way 20 s later.
    let _clients: Vec<Sse> = (0..3)
        .map(|_| Sse::connect(server.addr, "/prices", ""))
        .collect();
    server.signal("TERM");
    wait_until_not_listening(&server);
    server.signal("TERM");
    // Half a second for the last log line, allowed ten times that; the
    // drain alone would take a minute.
    let status = server.exit_within(Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{status:?}");
}

#[test]
fn the_stop_lines_keep_their_order() {
    let mut server = Server::start(&["--drain", "0"]);
    server.signal("TERM");
    let status = server.exit_within(Duration::from_secs(6));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    // The log reader may still be taking the last lines off the pipe.
    let stopped = "tickstream: stopped after draining 0 streams";
    assert!(server.wait_for_log(stopped, IO_TIMEOUT), "{}", server.log());
    let log = server.log();
    let stopping = log.find("tickstream: stopping: ending 0 streams");
    assert!(
        stopping.is_some_and(|at| at < log.find(stopped).unwrap()),
        "{log}"
    );
}
