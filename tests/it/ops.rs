//! Operations: the stdin feed, `/metrics` against what clients saw, and
//! threads and file descriptors after abrupt disconnects.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn stdin_lines_become_exactly_the_valid_events() {
    let mut server = Server::start_stdin(&["--heartbeat", "100ms"]);
    let mut client = Sse::connect(server.addr, "/prices", "");
    let long_line = format!("BTC 1.{}\n", "5".repeat(5000));
    let mut input = String::from(
        "btc 64123.17 1764028800123\n\
         \n\
         ETH\t0003400.5\r\n\
         not a price line\n\
         SOL -5\n\
         DOGE 1e5\n\
         XRP 0\n\
         BAD/SYM 1\n\
         NaN NaN\n",
    );
    input.push_str(&long_line);
    input.push_str("x.y_z-1 0.000001 5\n");
    input.push_str("BTC 64000 12x\n");
    input.push_str("SOL 150");
    server.feed(&input);
    let mut events = client.events(3, IO_TIMEOUT);
    // The last line has no newline: it counts once stdin ends. Every line
    // before it has been read once all 8 bad ones are counted; still 3
    // published.
    assert!(wait_until(IO_TIMEOUT, || server
        .metric("tickstream_feed_lines_rejected_total")
        == 8));
    assert_eq!(server.published(), 3);
    server.close_stdin();
    events.extend(client.events(1, IO_TIMEOUT));
    assert_consecutive(&events);
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.symbol.as_str(), e.price.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("BTC", "64123.17"),
            ("ETH", "3400.5"),
            ("X.Y_Z-1", "0.000001"),
            ("SOL", "150")
        ]
    );
    assert_eq!(events[0].ts, 1764028800123);
    assert_eq!(events[2].ts, 5);
    assert!(events[1].ts > 1764028800123, "stamped on arrival");
    assert!(
        server.wait_for_log("stdin feed ended after 13 lines", IO_TIMEOUT),
        "{}",
        server.log()
    );
    let log = server.log();
    for line in [4, 5, 6, 7, 8, 9, 10, 12] {
        assert!(
            log.contains(&format!("stdin line {line} skipped: ")),
            "line {line} in:\n{log}"
        );
    }
    assert!(
        log.contains("stdin line 10 skipped: longer than 4096 bytes"),
        "{log}"
    );
    assert_eq!(server.metric("tickstream_feed_lines_rejected_total"), 8);
    assert_eq!(server.published(), 4);

    // At EOF: /healthz turns 503, connected clients still get heartbeats.
    let health = get(server.addr, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (503, "feed ended\n"));
    let mut heartbeats = 0;
    while heartbeats < 3 {
        match client.next_frame(Duration::from_secs(1)) {
            Some(Frame::Comment(_)) => heartbeats += 1,
            other => panic!("expected heartbeats after EOF, got {other:?}"),
        }
    }
    // Any symbol is accepted in ?symbols= with a stdin feed.
    let mut late = Sse::connect(server.addr, "/prices?symbols=sol,NEVER_SEEN", "");
    assert_eq!(late.next_event(IO_TIMEOUT).unwrap().price, "150");
    assert!(server.is_running());
}

#[test]
fn metrics_agree_with_what_clients_saw() {
    let mut server = Server::start_stdin(&["--heartbeat", "10s"]);
    let before = server.metric("tickstream_events_sent_total");
    let mut clients = connect_clients(&server, 4);
    let lines: String = (1..=25).map(|i| format!("SYM{} {i}.5\n", i % 3)).collect();
    server.feed(&lines);
    for client in &mut clients {
        client.events(25, IO_TIMEOUT);
    }
    let sent = server.metric("tickstream_events_sent_total") - before;
    println!("4 clients x 25 events: events_sent_total grew by {sent}");
    assert_eq!(sent, 4 * 25);
    assert_eq!(server.published(), 25);
    assert_eq!(server.metric("tickstream_connections_total"), 4);
    let bytes = server.metric("tickstream_bytes_sent_total");
    assert!(bytes > 4 * 25 * 60, "{bytes}");

    // Two leave; the server notices at its next write.
    clients.truncate(2);
    assert!(wait_until(IO_TIMEOUT, || {
        // The first write after a close still succeeds; the next one fails.
        server.feed("SYM0 1\n");
        server.metric("tickstream_disconnects_total{reason=\"closed\"}") == 2
    }));
    assert_eq!(server.metric("tickstream_clients_connected"), 2);
    for path in ["/nope", "/nope", "/prices?symbols=b%40d"] {
        get(server.addr, path);
    }
    request(server.addr, b"PUT / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        server.metric("tickstream_requests_rejected_total{status=\"404\"}"),
        2
    );
    assert_eq!(
        server.metric("tickstream_requests_rejected_total{status=\"400\"}"),
        1
    );
    assert_eq!(
        server.metric("tickstream_requests_rejected_total{status=\"405\"}"),
        1
    );
    assert_eq!(
        server.metric("tickstream_requests_rejected_total{status=\"503\"}"),
        0
    );

    let text = get(server.addr, "/metrics");
    assert_eq!(
        text.header("Content-Type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for name in [
        "tickstream_clients_connected gauge",
        "tickstream_connections_total counter",
        "tickstream_requests_rejected_total counter",
        "tickstream_disconnects_total counter",
        "tickstream_events_published_total counter",
        "tickstream_events_sent_total counter",
        "tickstream_bytes_sent_total counter",
        "tickstream_feed_lines_rejected_total counter",
        "process_start_time_seconds gauge",
    ] {
        assert!(text.body.contains(&format!("# TYPE {name}\n")), "{name}");
    }
}

#[test]
fn threads_and_fds_return_to_baseline_after_abrupt_resets() {
    let server = Server::start(&["--interval", "20ms"]);
    let mut probe = Sse::connect(server.addr, "/prices", "");
    probe.next_event(IO_TIMEOUT).unwrap();
    drop(probe);
    assert!(wait_until(IO_TIMEOUT, || server.threads() == IDLE_THREADS));
    let (threads, fds) = (server.threads(), server.fds());
    let clients = 300;
    for _ in 0..3 {
        reset_clients(server.addr, clients / 3);
    }
    let back = wait_until(Duration::from_secs(10), || {
        server.threads() == threads && server.fds() == fds
    });
    println!(
        "after {clients} reset clients: threads {threads} -> {}, fds {fds} -> {}",
        server.threads(),
        server.fds()
    );
    assert!(
        back,
        "threads {} (baseline {threads}), fds {} (baseline {fds})",
        server.threads(),
        server.fds()
    );
    assert_eq!(server.metric("tickstream_clients_connected"), 0);
    assert_eq!(
        server.metric("tickstream_connections_total"),
        clients as u64 + 1
    );
}

#[test]
fn a_connection_thread_costs_two_memory_mappings() {
    // std's per-thread signal stacks would make it four, and cap the server
    // near 16,000 clients under the default vm.max_map_count (src/sys.rs).
    let server = Server::start(&["--interval", "50ms"]);
    let maps = || {
        std::fs::read_to_string(format!("/proc/{}/maps", server.pid()))
            .unwrap()
            .lines()
            .count()
    };
    let mut probe = Sse::connect(server.addr, "/prices", "");
    probe.next_event(IO_TIMEOUT).unwrap();
    let (threads, before) = (server.threads(), maps());
    let clients: Vec<Sse> = (0..200)
        .map(|_| Sse::connect(server.addr, "/prices", ""))
        .collect();
    assert!(wait_until(IO_TIMEOUT, || server.threads() == threads + 200));
    let after = maps();
    println!(
        "200 stream threads added {} memory mappings",
        after - before
    );
    // Plus up to 16 malloc arenas (two mappings each) as threads start.
    assert!(
        after - before <= 2 * 200 + 64,
        "{} mappings for 200 threads",
        after - before
    );
    drop(clients);
}

#[test]
fn running_out_of_file_descriptors_is_logged_and_survived() {
    // 32 descriptors: the standard streams, the listener and a few more,
    // so about 25 connections exhaust them and accept fails with EMFILE.
    let server = Server::start_with_open_files_limit(32, &["--interval", "50ms"]);
    let mut watcher = Sse::connect(server.addr, "/prices?symbols=BTC", "");
    watcher.next_event(IO_TIMEOUT).unwrap();
    let hogs: Vec<TcpStream> = (0..40).map(|_| connect(server.addr)).collect();
    assert!(
        server.wait_for_log("cannot accept: Too many open files", IO_TIMEOUT),
        "{}",
        server.log()
    );
    let out_of_fds = Instant::now();
    // Still up, and the stream already open keeps flowing.
    let events = watcher.events(5, IO_TIMEOUT);
    println!(
        "accept failed with EMFILE (fds {}); the open stream still got {} events",
        server.fds(),
        events.len()
    );
    drop(hogs);
    // Once the descriptors are free, new clients are served again.
    assert!(wait_until(Duration::from_secs(10), || {
        std::panic::catch_unwind(|| get(server.addr, "/healthz").status == 200).unwrap_or(false)
    }));
    // At most one line a second, counted over however long that took.
    let (complaints, secs) = (
        server.log().matches("cannot accept").count() as u64,
        out_of_fds.elapsed().as_secs(),
    );
    println!("{complaints} log lines in {secs} s (and a fraction) out of descriptors");
    assert!(complaints <= secs + 2, "{}", server.log());
}

#[test]
fn a_filter_of_more_than_256_symbols_is_refused() {
    // How fast publishing is past many long filters is the hub's unit test
    // (it counts the work); here, only the limit a client sees.
    let server = Server::start_stdin(&["--heartbeat", "10s"]);
    let symbols: Vec<String> = (0..256).map(|i| format!("N{i:X}")).collect();
    Sse::connect(
        server.addr,
        &format!("/prices?symbols={}", symbols.join(",")),
        "",
    );
    let too_many = get(
        server.addr,
        &format!("/prices?symbols={},ONE_MORE", symbols.join(",")),
    );
    assert_eq!(
        (too_many.status, too_many.body.as_str()),
        (400, "too many symbols: at most 256 per stream\n")
    );
}

#[test]
fn resuming_clients_do_not_each_keep_a_copy_of_the_history() {
    // About 1 MB of history (1,024 events of ~1 KB); 100 clients resume
    // from its start and stay connected.
    let mut server = Server::start_stdin(&["--heartbeat", "10s", "--history", "1024"]);
    let price = format!("1.{}", "5".repeat(1000));
    let lines: String = (0..1024).map(|i| format!("S{} {price}\n", i % 7)).collect();
    let mut witness = Sse::connect(server.addr, "/prices", "");
    server.feed(&lines);
    witness.events(1024, IO_TIMEOUT);
    let before = server.rss_kib();
    let clients: Vec<Sse> = (0..100)
        .map(|_| {
            let mut sse = Sse::resume(server.addr, "/prices", 0);
            sse.events(1024, IO_TIMEOUT);
            sse
        })
        .collect();
    let grown = server.rss_kib().saturating_sub(before);
    println!("100 clients resumed through ~1 MB of history each: RSS +{grown} KiB");
    // About 2.4 MB when each catch-up buffer is freed after use; 8.5 MB when
    // each client kept its 64 KiB write buffer, 100 MB if it kept the copy.
    assert!(grown < 5 * 1024, "RSS grew by {grown} KiB");
    drop(clients);
}

#[test]
fn a_stderr_nobody_reads_does_not_stall_the_feed() {
    // After the listening line nobody reads stderr: the pipe (64 KiB) fills
    // with warnings about bad lines.
    let mut server = Server::start_stdin_leaving_stderr_unread(&[]);
    let mut sse = Sse::connect(server.addr, "/prices", "");
    let junk: String = (0..5000)
        .map(|i| format!("not a price line {i}\n"))
        .collect();
    server.feed(&junk);
    server.feed("BTC 1.5\n");
    assert_eq!(
        sse.next_event(IO_TIMEOUT).map(|e| e.price).as_deref(),
        Some("1.5"),
        "the feed stalled on a full stderr"
    );
    assert_eq!(get(server.addr, "/healthz").status, 200);
}
