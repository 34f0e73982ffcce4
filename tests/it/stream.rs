//! The event stream: head, snapshot, live timing, resume, heartbeats, seeds.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::*;

const SYMBOLS: [&str; 5] = ["BTC", "ETH", "SOL", "XRP", "DOGE"];

#[test]
fn stream_head_and_retry_frame() {
    let server = Server::start(&["--interval", "1s", "--retry", "2500ms"]);
    let mut sse = Sse::connect(server.addr, "/prices", "");
    let lines: Vec<&str> = sse.head.lines().collect();
    assert_eq!(lines[0], "HTTP/1.1 200 OK");
    for expected in [
        "Content-Type: text/event-stream; charset=utf-8",
        "Cache-Control: no-cache",
        "X-Accel-Buffering: no",
        "Access-Control-Allow-Origin: *",
        "Connection: close",
    ] {
        assert!(lines.contains(&expected), "{expected} in {lines:?}");
    }
    assert!(!sse.head.contains("Content-Length"), "{}", sse.head);
    assert_eq!(sse.next_frame(IO_TIMEOUT), Some(Frame::Retry(2500)));

    let off = Server::start(&["--cors-origin", "none"]);
    let sse = Sse::connect(off.addr, "/prices", "");
    assert!(!sse.head.contains("Access-Control"), "{}", sse.head);
}

#[test]
fn new_client_gets_the_snapshot_at_once_then_the_next_tick_without_a_gap() {
    let interval = Duration::from_millis(500);
    let server = Server::start(&["--interval", "500ms"]);
    // One tick, so the snapshot is full.
    server.wait_for_published(SYMBOLS.len() as u64);
    let (connected_ms, connected) = (now_ms(), Instant::now());
    let mut sse = Sse::connect(server.addr, "/prices", "");
    let snapshot = sse.events(SYMBOLS.len(), IO_TIMEOUT);
    // At once: events made before the client connected (`ts` is stamped
    // just before publishing), not a tick it waited for.
    assert!(
        snapshot.iter().all(|e| e.ts <= connected_ms),
        "connected at {connected_ms}: {snapshot:?}"
    );
    let symbols: HashSet<&str> = snapshot.iter().map(|e| e.symbol.as_str()).collect();
    assert_eq!(
        symbols,
        SYMBOLS.iter().copied().collect(),
        "one event per symbol"
    );
    // The snapshot is the newest tick (the feed publishes a tick
    // atomically, so its ids are consecutive), in id order.
    assert_consecutive(&snapshot);
    let live = sse.next_event(IO_TIMEOUT).expect("a live event");
    let waited = connected.elapsed();
    println!("first live event {waited:?} after connecting, at a {interval:?} interval");
    assert_eq!(live.id, snapshot.last().unwrap().id + 1, "no tick skipped");
    // The next tick is due within one interval.
    assert!(waited <= interval * 3, "{waited:?}");
    assert!(live.price.parse::<f64>().unwrap() > 0.0);
}

#[test]
fn resume_delivers_exactly_the_missed_events() {
    let server = Server::start(&["--interval", "50ms"]);
    let mut witness = Sse::connect(server.addr, "/prices", "");
    let mut client = Sse::connect(server.addr, "/prices", "");
    let seen = client.events(12, IO_TIMEOUT);
    assert_consecutive(&seen);
    let last = seen.last().unwrap().id;
    drop(client);
    // At least 3 ticks (15 events) pass while it is away.
    server.wait_for_published(server.published() + 15);
    let mut resumed = Sse::resume(server.addr, "/prices", last);
    let after = resumed.events(40, IO_TIMEOUT);
    println!(
        "read {} events, resumed after id {last}: got {} ids from {}",
        seen.len(),
        after.len(),
        after[0].id
    );
    assert_resumed_after(last, &after);
    // And they are the very events the witness saw, prices and all.
    let witnessed = witness.events(80, IO_TIMEOUT);
    for event in &after {
        if let Some(w) = witnessed.iter().find(|w| w.id == event.id) {
            assert_eq!(w, event);
        }
    }
    assert!(
        witnessed.iter().any(|w| w.id == after[0].id),
        "windows overlap"
    );
}

#[test]
fn resume_by_query_parameter_and_header_precedence() {
    let server = Server::start(&["--interval", "50ms"]);
    let mut client = Sse::connect(server.addr, "/prices", "");
    let last = client.events(7, IO_TIMEOUT).last().unwrap().id;
    drop(client);
    // Two ticks pass while it is away.
    server.wait_for_published(server.published() + 10);
    let mut by_query = Sse::connect(server.addr, &format!("/prices?lastEventId={last}"), "");
    let after = by_query.events(20, IO_TIMEOUT);
    assert_resumed_after(last, &after);
    // A browser resuming a URL that has the query sends the newer id in the
    // header: the header wins.
    let newer = after[10].id;
    let mut both = Sse::connect(
        server.addr,
        &format!("/prices?lastEventId={last}"),
        &format!("Last-Event-ID: {newer}\r\n"),
    );
    assert_eq!(both.next_event(IO_TIMEOUT).unwrap().id, newer + 1);
}

/// A stdin-fed server with a known history: ids `first..first+n`.
fn stdin_server(args: &[&str], lines: &[&str]) -> (Server, Vec<Event>) {
    let mut server = Server::start_stdin(args);
    let mut witness = Sse::connect(server.addr, "/prices", "");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    server.feed(&text);
    let events = witness.events(lines.len(), IO_TIMEOUT);
    assert_consecutive(&events);
    (server, events)
}

#[test]
fn resume_edge_cases() {
    let lines = ["BTC 1", "ETH 2", "BTC 3", "SOL 4", "ETH 5", "BTC 6"];
    let (server, history) = stdin_server(&["--history", "4"], &lines);
    let catch_up = |headers: &str, path: &str| {
        Sse::connect(server.addr, path, headers).events_until_quiet(Duration::from_millis(300))
    };
    let ids = |events: &[Event]| events.iter().map(|e| e.id).collect::<Vec<_>>();
    let all = ids(&history);

    // No id, or a non-numeric one: the snapshot, latest per symbol in id order.
    let snapshot = vec![all[3], all[4], all[5]];
    assert_eq!(ids(&catch_up("", "/prices")), snapshot);
    assert_eq!(
        ids(&catch_up("Last-Event-ID: abc\r\n", "/prices")),
        snapshot
    );
    assert_eq!(ids(&catch_up("Last-Event-ID: -5\r\n", "/prices")), snapshot);
    assert_eq!(ids(&catch_up("", "/prices?lastEventId=x1")), snapshot);
    // Older than the history (4 events): the whole retained history.
    assert_eq!(
        ids(&catch_up("Last-Event-ID: 0\r\n", "/prices")),
        all[2..].to_vec()
    );
    let first = format!("Last-Event-ID: {}\r\n", all[0]);
    assert_eq!(ids(&catch_up(&first, "/prices")), all[2..].to_vec());
    // Within it: exactly the later ones.
    let mid = format!("Last-Event-ID: {}\r\n", all[3]);
    assert_eq!(ids(&catch_up(&mid, "/prices")), all[4..].to_vec());
    assert_eq!(
        ids(&catch_up("", &format!("/prices?lastEventId={}", all[3]))),
        all[4..].to_vec()
    );
    // Newer than the newest: live events only.
    let newer = format!("Last-Event-ID: {}\r\n", all[5] + 1000);
    assert_eq!(ids(&catch_up(&newer, "/prices")), Vec::<u64>::new());
    // With a filter: only those symbols, same rules.
    let btc = catch_up(&mid, "/prices?symbols=btc");
    assert_eq!(ids(&btc), vec![all[5]]);
    let btc_eth = catch_up("Last-Event-ID: 0\r\n", "/prices?symbols=BTC,eth");
    assert_eq!(ids(&btc_eth), vec![all[2], all[4], all[5]]);
    assert_eq!(ids(&catch_up("", "/prices?symbols=eth")), vec![all[4]]);
    // The events are the ones published, byte for byte.
    assert_eq!(
        catch_up("Last-Event-ID: 0\r\n", "/prices"),
        history[2..].to_vec()
    );
}

#[test]
fn resume_across_a_restart_gets_only_newer_ids() {
    let mut first = Server::start(&["--interval", "50ms"]);
    let mut client = Sse::connect(first.addr, "/prices", "");
    let last = client.events(8, IO_TIMEOUT).last().unwrap().id;
    drop(client);
    first.stop();
    let second = Server::start(&["--interval", "50ms"]);
    // Two ticks, so there is a history to resume from.
    second.wait_for_published(10);
    let mut resumed = Sse::resume(second.addr, "/prices", last);
    let after = resumed.events(20, IO_TIMEOUT);
    println!(
        "last id of run 1: {last}; first id resumed from run 2: {}",
        after[0].id
    );
    assert!(after[0].id > last, "the new run's ids are larger");
    assert_consecutive(&after);
    // Older than everything retained: it starts at the new run's first event.
    assert_eq!(after[0].symbol, "BTC");
}

#[test]
fn filtered_stream_sees_only_its_symbols_with_gaps() {
    let server = Server::start(&["--interval", "30ms"]);
    let mut sse = Sse::connect(server.addr, "/prices?symbols=eth,Doge,ETH", "");
    let events = sse.events(12, IO_TIMEOUT);
    assert!(
        events
            .iter()
            .all(|e| e.symbol == "ETH" || e.symbol == "DOGE"),
        "{events:?}"
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    let bad = get(server.addr, "/prices?symbols=BTC,NOPE");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body,
        "unknown symbol NOPE; valid symbols: BTC, ETH, SOL, XRP, DOGE\n"
    );
}

#[test]
fn quiet_stream_carries_heartbeats() {
    let heartbeat = Duration::from_millis(100);
    let server = Server::start(&["--interval", "10s", "--heartbeat", "100ms"]);
    let mut sse = Sse::connect(server.addr, "/prices", "");
    // After the retry frame and the snapshot, heartbeats only: ten of them,
    // none more than five periods after the frame before it.
    let (mut heartbeats, mut first) = (0, None);
    while heartbeats < 10 {
        match sse.next_frame(heartbeat * 5) {
            Some(Frame::Comment(text)) => {
                assert_eq!(text, "heartbeat");
                first.get_or_insert_with(Instant::now);
                heartbeats += 1;
            }
            Some(frame) => assert!(first.is_none(), "{frame:?} between heartbeats"),
            None => panic!("silence longer than five heartbeat periods"),
        }
    }
    // And not one per write: nine periods took 900 ms at the server (each
    // heartbeat follows 100 ms of silence); a third of that here, as the
    // first one may reach this client late and the rest at once.
    let span = first.unwrap().elapsed();
    println!("10 heartbeats in {span:?} at --heartbeat 100ms");
    assert!(span >= heartbeat * 9 / 3, "{span:?}");
}

#[test]
fn same_seed_same_prices() {
    let prices = |seed: &str| {
        let server = Server::start(&["--interval", "20ms", "--seed", seed]);
        // From the start of the run: the history holds every event so far,
        // and live ones follow it without a gap.
        let mut sse = Sse::resume(server.addr, "/prices", 0);
        sse.events(50, IO_TIMEOUT)
            .into_iter()
            .map(|e| (e.symbol, e.price))
            .collect::<Vec<_>>()
    };
    let a = prices("42");
    assert_eq!(a, prices("42"));
    assert_ne!(a, prices("43"));
    assert_eq!(a[0].0, "BTC");
}

#[test]
fn http_1_0_client_gets_a_close_delimited_stream() {
    let server = Server::start(&["--interval", "50ms"]);
    let mut stream = connect(server.addr);
    use std::io::{Read, Write};
    stream.write_all(b"GET /prices HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\nid: ") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!text.contains("Transfer-Encoding"), "{text}");
}
