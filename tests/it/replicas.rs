//! Replicas on one Redis stream (a real `redis-server`): the same events
//! under the same ids everywhere, exact resume, no repeat after a failover,
//! Redis restarts, bad entries, the publisher, and the graceful stop.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::*;
use crate::support::*;

/// The ids of the client's next `n` events.
fn next_ids(client: &mut Sse, n: usize) -> Vec<String> {
    let events = client.events(n, IO_TIMEOUT);
    events.into_iter().map(|e| e.id_text).collect()
}

/// Redis, a replica on it and a client of the replica; `None` (skipped)
/// without Redis.
fn replica_and_client() -> Option<(Redis, Server, Sse)> {
    if !redis_available() {
        return None;
    }
    let redis = Redis::start();
    let server = replica(&redis, &[]);
    let client = Sse::connect(server.addr, "/prices", "");
    Some((redis, server, client))
}

/// The raw bytes of a stream after its head, up to `events` events.
fn raw_events(addr: std::net::SocketAddr, last_id: &str, events: usize) -> String {
    let mut stream = stream_request(addr, &format!("Last-Event-ID: {last_id}\r\n"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let frames = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        text.split_once("\r\n\r\n")
            .map_or(0, |(_, body)| body.matches("\n\n").count())
    };
    // The `retry:` frame, then the events.
    while frames(&bytes) < events + 1 {
        let n = stream.read(&mut chunk).expect("stream bytes");
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8(bytes).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    // Up to the last whole event of the `events` asked for.
    let mut end = 0;
    for _ in 0..=events {
        end += body[end..].find("\n\n").unwrap() + 2;
    }
    body[..end].to_string()
}

/// The ids in a stream body.
fn ids_of(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn two_replicas_serve_byte_identical_events_under_the_streams_ids() {
    if !redis_available() {
        return;
    }
    let redis = Redis::start();
    let ids: Vec<String> = (0..20)
        .map(|n| redis.add("*", ["BTC", "ETH"][n % 2], &format!("{}.5", 100 + n)))
        .collect();
    let a = replica(&redis, &[]);
    let b = replica(&redis, &[]);
    let from_a = raw_events(a.addr, &ids[4], 15);
    let from_b = raw_events(b.addr, &ids[4], 15);
    assert_eq!(from_a, from_b);
    assert_eq!(ids_of(&from_a), ids[5..]);
    assert!(from_a.starts_with(&format!(
        "retry: 3000\n\nid: {}\ndata: {{\"symbol\":\"ETH\",\"price\":105.5,\"ts\":5}}\n\n",
        ids[5]
    )));
    // Live entries too.
    let mut on_a = Sse::connect(
        a.addr,
        "/prices",
        &format!("Last-Event-ID: {}\r\n", ids[19]),
    );
    let mut on_b = Sse::connect(
        b.addr,
        "/prices",
        &format!("Last-Event-ID: {}\r\n", ids[19]),
    );
    let live = redis.add("*", "SOL", "7");
    for client in [&mut on_a, &mut on_b] {
        let event = client.next_event(IO_TIMEOUT).expect("the live entry");
        assert_eq!(
            (event.id_text.as_str(), event.price.as_str()),
            (live.as_str(), "7")
        );
    }
}

#[test]
fn a_replica_started_after_300_entries_resumes_from_the_100th_exactly() {
    if !redis_available() {
        return;
    }
    let redis = Redis::start();
    for n in 1..=300 {
        redis.add(&format!("1000-{n}"), "BTC", &n.to_string());
    }
    let server = replica(&redis, &[]);
    let body = raw_events(server.addr, "1000-100", 200);
    let expected: Vec<String> = (101..=300).map(|n| format!("1000-{n}")).collect();
    assert_eq!(ids_of(&body), expected);
    // A history shorter than the stream: the newest entries only.
    let short = replica(&redis, &["--history", "50"]);
    let body = raw_events(short.addr, "1000-100", 50);
    assert_eq!(ids_of(&body), expected[150..]);
}

#[test]
fn no_id_at_or_below_a_newer_last_event_id() {
    if !redis_available() {
        return;
    }
    let redis = Redis::start();
    for n in 0..10 {
        redis.add(&format!("1000-{n}"), "BTC", "1");
    }
    let server = replica(&redis, &[]);
    // A client that failed over from a replica a few entries ahead.
    let mut client = Sse::connect(server.addr, "/prices", "Last-Event-ID: 1000-20\r\n");
    redis.add("1000-15", "BTC", "2");
    redis.add("1000-20", "BTC", "3");
    redis.add("1000-21", "ETH", "4");
    let event = client
        .next_event(IO_TIMEOUT)
        .expect("the entry after its id");
    assert_eq!(
        (event.id_text.as_str(), event.price.as_str()),
        ("1000-21", "4")
    );
    // A throttled one likewise, and a plain one sees everything.
    let mut throttled = Sse::connect(
        server.addr,
        "/prices?throttle=100ms",
        "Last-Event-ID: 1000-20\r\n",
    );
    assert_eq!(throttled.next_event(IO_TIMEOUT).unwrap().id_text, "1000-21");
    let mut fresh = Sse::connect(server.addr, "/prices", "Last-Event-ID: 1000-14\r\n");
    let ids = next_ids(&mut fresh, 3);
    assert_eq!(ids, ["1000-15", "1000-20", "1000-21"]);
    // Not MS-SEQ: ignored, as if absent (the snapshot).
    let mut other = Sse::connect(server.addr, "/prices", "Last-Event-ID: 1000\r\n");
    let snapshot = next_ids(&mut other, 2);
    assert_eq!(snapshot, ["1000-20", "1000-21"]);
}

#[test]
fn after_a_lost_connection_every_entry_still_in_the_stream_arrives() {
    let Some((redis, server, mut client)) = replica_and_client() else {
        return;
    };
    let first = redis.add("*", "BTC", "0.5");
    assert_eq!(client.next_event(IO_TIMEOUT).unwrap().id_text, first);
    // In one transaction: cut the replica's connection, then add more
    // entries than one page holds, so it must catch up in pages.
    let add = "for i=1,2500 do redis.call('XADD', KEYS[1], '*', 'symbol', 'BTC', 'price', tostring(i)) end return 1";
    let script = format!(
        "MULTI\nCLIENT KILL TYPE normal SKIPME yes\nEVAL \"{add}\" 1 tickstream:prices\nEXEC\n"
    );
    let mut cli = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-cli");
    std::io::Write::write_all(cli.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    drop(cli.stdin.take());
    assert!(cli.wait().unwrap().success());
    let prices: Vec<String> = client
        .events(2500, Duration::from_secs(20))
        .into_iter()
        .map(|e| e.price)
        .collect();
    let expected: Vec<String> = (1..=2500).map(|n| n.to_string()).collect();
    assert_eq!(prices, expected);
    assert_eq!(server.metric("tickstream_feed_reconnects_total"), 1);
}

#[test]
fn bad_entries_are_skipped_and_counted_exactly() {
    let Some((redis, server, mut client)) = replica_and_client() else {
        return;
    };
    let bad: &[&[&str]] = &[
        &["symbol", "BTC"],
        &["price", "1"],
        &["symbol", "B/C", "price", "1"],
        &["symbol", "BTC", "price", "-1"],
        &["symbol", "BTC", "price", "1e3"],
        &["symbol", "BTC", "price", "1", "ts", "soon"],
    ];
    for fields in bad {
        let mut args = vec!["XADD", "tickstream:prices", "*"];
        args.extend_from_slice(fields);
        redis.cli(&args);
    }
    redis.cli(&[
        "XADD",
        "tickstream:prices",
        "*",
        "other",
        "x",
        "symbol",
        "eth",
        "price",
        "02.50",
        "ts",
        "7",
    ]);
    let event = client.next_event(IO_TIMEOUT).expect("the good entry");
    assert_eq!(
        (event.symbol.as_str(), event.price.as_str(), event.ts),
        ("ETH", "2.50", 7)
    );
    assert_eq!(
        server.metric("tickstream_feed_lines_rejected_total"),
        bad.len() as u64
    );
    assert!(
        server.wait_for_log("skipped: price must be", IO_TIMEOUT),
        "{}",
        server.log()
    );
}

#[test]
fn a_redis_restart_keeps_clients_connected_and_loses_no_entry() {
    if !redis_available() {
        return;
    }
    let mut redis = Redis::start_with_aof();
    let publisher_args = [
        "publish",
        "--redis",
        &redis.url(),
        "--interval",
        "50ms",
        "--symbols",
        "BTC,ETH",
    ];
    let mut publisher = ChildGuard::new(
        without_tickstream_env(Command::new(env!("CARGO_BIN_EXE_tickstream")))
            .args(publisher_args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the publisher"),
    );
    let server = replica(&redis, &[]);
    let mut client = Sse::connect(server.addr, "/prices", "");
    let before = client.events(10, IO_TIMEOUT);
    redis.stop();
    assert!(wait_until(IO_TIMEOUT, || get(server.addr, "/healthz")
        .status
        == 503));
    assert_eq!(get(server.addr, "/healthz").body, "feed unavailable\n");
    // Heartbeats keep the stream open meanwhile.
    assert!(matches!(
        client.next_frame(IO_TIMEOUT),
        Some(Frame::Comment(_) | Frame::Event(_))
    ));
    redis.restart();
    assert!(wait_until(Duration::from_secs(10), || healthy(&server)));
    let mut seen = before;
    seen.extend(client.events(20, Duration::from_secs(10)));
    assert_eq!(server.metric("tickstream_feed_reconnects_total"), 1);
    publisher.stop();
    // Every entry of the stream from the client's first to its last.
    let got: Vec<String> = seen.iter().map(|e| e.id_text.clone()).collect();
    let stored = redis.ids();
    let first = stored
        .iter()
        .position(|id| *id == got[0])
        .expect("first id stored");
    let last = stored
        .iter()
        .position(|id| id == got.last().unwrap())
        .expect("last id stored");
    assert_eq!(got, stored[first..=last], "no entry missing, none twice");
}

#[test]
fn a_replica_started_while_redis_is_down_streams_once_it_is_up() {
    if !redis_available() {
        return;
    }
    let mut redis = Redis::start();
    redis.stop();
    let server = replica(&redis, &[]);
    assert_eq!(get(server.addr, "/healthz").status, 503);
    assert_eq!(server.metric("tickstream_feed_up"), 0);
    let mut client = Sse::connect(server.addr, "/prices", "");
    redis.restart();
    assert!(wait_until(Duration::from_secs(10), || healthy(&server)));
    let id = redis.add("*", "BTC", "1");
    assert_eq!(client.next_event(IO_TIMEOUT).unwrap().id_text, id);
    assert_eq!(server.metric("tickstream_feed_up"), 1);
}

#[test]
fn a_stdin_publisher_loses_no_line_across_a_redis_restart() {
    if !redis_available() {
        return;
    }
    let mut redis = Redis::start_with_aof();
    let mut publisher = ChildGuard::new(
        without_tickstream_env(Command::new(env!("CARGO_BIN_EXE_tickstream")))
            .args([
                "publish",
                "--feed",
                "stdin",
                "--redis",
                &redis.url(),
                "--maxlen",
                "1000",
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the publisher"),
    );
    let log = read_lines(publisher.stderr.take().unwrap());
    let mut input = publisher.stdin.take().unwrap();
    let mut send = |from: u32, to: u32| {
        let lines: String = (from..to).map(|n| format!("btc {n}.5\n")).collect();
        std::io::Write::write_all(&mut input, lines.as_bytes()).unwrap();
    };
    send(1, 51);
    assert!(wait_until(IO_TIMEOUT, || redis.ids().len() == 50));
    redis.stop();
    send(51, 101);
    // Lines wait while Redis is away: the publisher has tried and failed.
    assert!(
        wait_until(IO_TIMEOUT, || log.lock().unwrap().contains("; retrying")),
        "{}",
        log.lock().unwrap()
    );
    redis.restart();
    send(101, 151);
    drop(input);
    let status = publisher
        .exit_within(Duration::from_secs(20))
        .expect("exits at EOF");
    assert!(status.success(), "{status:?}");
    let out = redis.cli(&["XRANGE", "tickstream:prices", "-", "+"]);
    let prices: Vec<&str> = out
        .lines()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "price")
        .map(|w| w[1])
        .collect();
    let expected: Vec<String> = (1..151).map(|n| format!("{n}.5")).collect();
    assert_eq!(prices, expected);
}

#[test]
fn sigterm_drains_every_stream_within_the_drain_time_and_exits_0() {
    let mut server = Server::start(&["--interval", "50ms", "--drain", "1s"]);
    let mut clients = connect_clients(&server, 6);
    let signalled = Instant::now();
    server.signal("TERM");
    // The stop path allows --drain plus a second of last writes (2 s);
    // three times that.
    let status = server
        .exit_within(Duration::from_secs(2) * 3)
        .expect("exits within three times --drain plus a second");
    println!("exited {:?} after the signal", signalled.elapsed());
    assert_eq!(status.code(), Some(0));
    for client in &mut clients {
        // Each stream was ended by the server: reading reaches its end.
        while client.next_frame(IO_TIMEOUT).is_some() {}
    }
    assert!(
        server.log().contains("stopped after draining 6 streams"),
        "{}",
        server.log()
    );
    assert!(
        std::net::TcpStream::connect(server.addr).is_err(),
        "no longer listening"
    );
}
