//! What a client receives beyond `/prices`: conflated streams
//! (`?throttle=`), the article's dialect (`/crypto-price`) and the
//! delivery-lag histogram.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::*;

/// Splits a conflated stream into its writes: each holds at most one event
/// per symbol, so a repeated symbol starts the next.
fn writes(events: Vec<Event>) -> Vec<Vec<Event>> {
    let mut writes: Vec<Vec<Event>> = Vec::new();
    for event in events {
        match writes.last_mut() {
            Some(w) if !w.iter().any(|e| e.symbol == event.symbol) => w.push(event),
            _ => writes.push(vec![event]),
        }
    }
    writes
}

/// Witness events up to and including id `last`.
fn events_through(witness: &mut Sse, last: u64) -> Vec<Event> {
    let mut events = Vec::new();
    while events.last().is_none_or(|e: &Event| e.id < last) {
        events.push(witness.next_event(IO_TIMEOUT).expect("a witness event"));
    }
    events
}

/// Checks `write` against an unthrottled witness: it holds, for each symbol
/// with an event after `after`, the newest one up to the write's newest id,
/// in id order, and nothing else.
fn assert_conflated(write: &[Event], after: u64, witness: &[Event], symbols: &[&str]) {
    let newest = write.iter().map(|e| e.id).max().unwrap();
    let mut expected: HashMap<&str, &Event> = HashMap::new();
    let wanted =
        |e: &&Event| e.id > after && e.id <= newest && symbols.contains(&e.symbol.as_str());
    for event in witness.iter().filter(wanted) {
        expected.insert(&event.symbol, event);
    }
    let mut expected: Vec<&Event> = expected.into_values().collect();
    expected.sort_by_key(|e| e.id);
    let got: Vec<&Event> = write.iter().collect();
    assert_eq!(got, expected, "a write after id {after}");
}

#[test]
fn throttled_writes_hold_the_newest_event_per_symbol_at_most_once_per_period() {
    let interval = Duration::from_millis(50);
    let period = Duration::from_millis(300);
    let server = Server::start(&["--interval", "50ms", "--symbols", "BTC,ETH,SOL"]);
    let mut witness = Sse::connect(server.addr, "/prices", "");
    let mut throttled = Sse::connect(server.addr, "/prices?throttle=300ms&symbols=BTC,ETH", "");
    let got = writes(throttled.events(2 * 8, 20 * period));
    let newest = got.iter().flatten().map(|e| e.id).max().unwrap();
    let seen = events_through(&mut witness, newest);
    assert!(got.len() >= 8, "{got:?}");
    for pair in got.windows(2) {
        let before = pair[0].iter().map(|e| e.id).max().unwrap();
        assert_conflated(&pair[1], before, &seen, &["BTC", "ETH"]);
        // Each write holds what was newest when it was made: the newest
        // event of the next is about a period younger (less a tick, and a
        // tick's lateness on a busy machine); a third of it, so one late
        // tick does not fail the test, and still two ticks (100 ms), so a
        // stream written every tick does.
        let gap = Duration::from_millis(newest_ts(&pair[1]) - newest_ts(&pair[0]));
        assert!(gap >= period / 3, "writes {gap:?} apart: {pair:?}");
    }
    // Over all of them, the spacing averages at least the period.
    let span = Duration::from_millis(newest_ts(got.last().unwrap()) - newest_ts(&got[0]));
    let least = period * (got.len() as u32 - 1) - 2 * interval;
    assert!(span >= least, "{} writes in {span:?}", got.len());
}

/// The `ts` of the newest event of a write.
fn newest_ts(write: &[Event]) -> u64 {
    write.iter().map(|e| e.ts).max().unwrap()
}

#[test]
fn a_conflated_resume_gives_the_newest_missed_event_per_symbol() {
    let server = Server::start(&["--interval", "20ms", "--symbols", "BTC,ETH,SOL"]);
    let mut witness = Sse::connect(server.addr, "/prices", "");
    let first = witness.events(6, IO_TIMEOUT);
    let last = first[2].id;
    server.wait_for_published(server.published() + 15);
    let mut resumed = Sse::resume(server.addr, "/prices?throttle=1s", last);
    let catch_up = resumed.events(3, IO_TIMEOUT);
    let newest = catch_up.iter().map(|e| e.id).max().unwrap();
    let mut seen = first;
    seen.extend(events_through(&mut witness, newest));
    assert_conflated(&catch_up, last, &seen, &["BTC", "ETH", "SOL"]);
    assert!(catch_up[0].id > last + 3, "the missed ticks were conflated");
}

fn slow(server: &Server) -> u64 {
    server.metric("tickstream_disconnects_total{reason=\"slow\"}")
}

#[test]
fn a_throttled_client_that_stops_reading_is_not_dropped_as_slow() {
    let server = Server::start_for_non_readers(&["--client-queue", "4", "--write-timeout", "60s"]);
    let throttled = {
        let mut s = connect(server.addr);
        std::io::Write::write_all(
            &mut s,
            b"GET /prices?throttle=100ms HTTP/1.1\r\nHost: test\r\n\r\n",
        )
        .unwrap();
        s
    };
    let control = never_reading_clients(server.addr, 1);
    assert!(
        wait_until(Duration::from_secs(30), || slow(&server) == 1),
        "the unthrottled control is dropped as slow"
    );
    let rss_before = server.rss_kib();
    server.wait_for_published(server.published() + 200 * 100);
    let rss_after = server.rss_kib();
    println!("RSS {rss_before} -> {rss_after} KiB while a throttled client reads nothing");
    assert_eq!(slow(&server), 1);
    assert_eq!(
        server.metric("tickstream_clients_connected"),
        1,
        "the throttled client is still connected"
    );
    assert!(rss_after < rss_before + 4 * 1024, "memory stays bounded");
    drop((throttled, control));
}

#[test]
fn a_throttled_stream_still_gets_heartbeats_within_its_period() {
    let server = Server::start(&["--interval", "50ms", "--heartbeat", "200ms"]);
    server.wait_for_published(1); // so the snapshot is not empty
    let mut client = Sse::connect(server.addr, "/prices?throttle=2s&symbols=BTC", "");
    assert!(matches!(
        client.next_frame(IO_TIMEOUT),
        Some(Frame::Retry(_))
    ));
    let snapshot = client.next_frame(IO_TIMEOUT);
    assert!(matches!(snapshot, Some(Frame::Event(_))), "{snapshot:?}");
    // Before the next write of events, 2 s on: heartbeats after silence.
    for _ in 0..3 {
        let frame = client.next_frame(IO_TIMEOUT);
        assert!(matches!(frame, Some(Frame::Comment(_))), "{frame:?}");
    }
}

#[test]
fn a_bad_throttle_is_a_400() {
    let server = Server::start(&[]);
    for bad in ["50ms", "2h", "fast", ""] {
        let reply = get(server.addr, &format!("/prices?throttle={bad}"));
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.body.starts_with("invalid throttle"), "{}", reply.body);
    }
}

/// The frames after the head, as the bytes the server wrote.
fn read_frames(sse: &mut Sse, n: usize) -> Vec<Frame> {
    (0..n)
        .map(|_| sse.next_frame(IO_TIMEOUT).expect("a frame"))
        .collect()
}

#[test]
fn crypto_price_speaks_the_articles_dialect() {
    let mut server = Server::start_stdin(&["--retry", "2s"]);
    server.feed("btc 1.50 1000\neth 2 1000\n");
    let mut witness = Sse::connect(server.addr, "/prices", "");
    let snapshot = witness.events(2, IO_TIMEOUT);
    let mut article = Sse::connect(server.addr, "/crypto-price", "");
    assert!(
        article.head.starts_with("HTTP/1.1 200 OK\n"),
        "{}",
        article.head
    );
    assert!(article
        .head
        .contains("Content-Type: text/event-stream; charset=utf-8\n"));
    let mut eth = Sse::connect(server.addr, "/crypto-price?symbol=Eth", "");
    server.feed("ETH 3.25\nBTC 0004\n");
    let btc_id = |n: u64| (snapshot[0].id + n).to_string();
    assert_eq!(
        read_frames(&mut article, 3),
        [
            Frame::Retry(2000),
            Frame::Article(btc_id(0), "1.50".into()),
            Frame::Article(btc_id(3), "4".into()),
        ]
    );
    assert_eq!(
        read_frames(&mut eth, 3),
        [
            Frame::Retry(2000),
            Frame::Article(btc_id(1), "2".into()),
            Frame::Article(btc_id(2), "3.25".into()),
        ]
    );
    // Byte for byte, from a resume.
    let mut raw = connect(server.addr);
    let resume = format!(
        "GET /crypto-price HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {}\r\n\r\n",
        btc_id(0)
    );
    std::io::Write::write_all(&mut raw, resume.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let expected_body = format!(
        "retry: 2000\n\nid: {}\nevent: price-update\ndata: {{\"data\":4}}\n\n",
        btc_id(3)
    );
    while !String::from_utf8_lossy(&bytes).ends_with(&expected_body) {
        let n = std::io::Read::read(&mut raw, &mut chunk).expect("the resumed stream");
        assert!(n > 0, "{}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(body, expected_body);
    assert!(head.contains("\r\nContent-Type: text/event-stream; charset=utf-8\r\n"));
    assert_eq!(get(server.addr, "/crypto-price?symbol=b/c").status, 400);
}

#[test]
fn the_delivery_lag_histogram_counts_each_live_write() {
    let server = Server::start(&["--interval", "20ms"]);
    let mut client = Sse::connect(server.addr, "/prices", "");
    client.events(10, IO_TIMEOUT);
    let count = || server.metric("tickstream_delivery_lag_seconds_count");
    let before = count();
    client.events(25, IO_TIMEOUT);
    assert!(
        wait_until(IO_TIMEOUT, || count() >= before + 4),
        "{}",
        count()
    );
    let text = get(server.addr, "/metrics").body;
    assert!(text.contains("# TYPE tickstream_delivery_lag_seconds histogram\n"));
    assert!(text.contains("tickstream_delivery_lag_seconds_bucket{le=\"0.0005\"} "));
    assert!(text.contains("tickstream_delivery_lag_seconds_sum "));
    let inf = server.metric("tickstream_delivery_lag_seconds_bucket{le=\"+Inf\"}");
    assert!(inf >= before + 4, "+Inf is the count: {inf}");
}
