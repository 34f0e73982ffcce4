//! What a hostile or careless publisher can put in the stream, and what
//! Redis can do to a replica's connection, against a real `redis-server`:
//! no entry stops the feed or swells the replica, no reconnect loses an
//! entry, and every replica stamps an entry alike.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::redis_server::*;
use crate::support::*;

/// Sends these commands, encoded as RESP, through `redis-cli --pipe`.
fn pipe(redis: &Redis, commands: &[Vec<String>]) {
    let mut wire = Vec::new();
    for args in commands {
        wire.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            wire.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
    }
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &redis.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-cli");
    child.stdin.take().unwrap().write_all(&wire).unwrap();
    assert!(child.wait().unwrap().success(), "redis-cli --pipe");
}

/// Redis and a healthy replica on it; `None` (skipped) without Redis.
fn redis_and_replica() -> Option<(Redis, Server)> {
    if !redis_available() {
        return None;
    }
    let redis = Redis::start();
    let server = replica(&redis, &[]);
    assert!(
        wait_until(IO_TIMEOUT, || healthy(&server)),
        "{}",
        server.log()
    );
    Some((redis, server))
}

/// `XADD tickstream:prices ID symbol S price P` and more fields.
fn xadd(id: &str, symbol: &str, price: &str, more: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "XADD",
        "tickstream:prices",
        id,
        "symbol",
        symbol,
        "price",
        price,
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(more);
    args
}

/// An entry with a 5 MB field (Redis allows 512 MB) is skipped and counted;
/// the entries around it arrive, `/healthz` stays 200, and a replica
/// started while it is among the newest `--history` becomes healthy and
/// serves the valid entries. (It retried the same page for ever before.)
#[test]
fn a_huge_entry_is_skipped_and_stops_nothing() {
    let pad = ["pad".into(), "x".repeat(5_000_000)];
    an_entry_is_skipped_and_stops_nothing(&pad, "a field over 4096 bytes");
}

/// An entry of 200,000 small fields (none over 4 KiB, about 5 MB in all,
/// more than a reply may hold) is skipped like one with a huge field: it
/// used to make even a page of that one entry too large, stopping the
/// feed, and a new replica never came up.
#[test]
fn an_entry_of_many_small_fields_is_skipped_and_stops_nothing() {
    let many: Vec<String> = (0..200_000)
        .flat_map(|n| [format!("f{n}"), "v".to_string()])
        .collect();
    let why = "a field over 4096 bytes, or fields over 1048576 bytes in all";
    an_entry_is_skipped_and_stops_nothing(&many, why);
}

/// The ids of the next two events of `stream`.
fn two_ids(stream: &mut Sse) -> Vec<String> {
    let events = stream.events(2, IO_TIMEOUT).into_iter();
    events.map(|e| e.id_text).collect()
}

/// Entry 11-0 with the fields `more` too, between two valid ones: skipped
/// with `why`, counted, and the others served, by a running replica and by
/// one started after it.
fn an_entry_is_skipped_and_stops_nothing(more: &[String], why: &str) {
    let Some((redis, early)) = redis_and_replica() else {
        return;
    };
    let mut client = Sse::connect(early.addr, "/prices", "");
    redis.add("10-0", "BTC", "1");
    pipe(&redis, &[xadd("11-0", "BTC", "2", more)]);
    redis.add("12-0", "BTC", "3");
    let ids = two_ids(&mut client);
    assert_eq!(ids, ["10-0", "12-0"]);
    assert!(healthy(&early));
    assert!(wait_until(IO_TIMEOUT, || early
        .metric("tickstream_feed_lines_rejected_total")
        == 1));
    let logged = format!("redis entry 11-0 skipped: {why}");
    assert!(early.wait_for_log(&logged, IO_TIMEOUT), "{}", early.log());

    let late = replica(&redis, &[]);
    assert!(wait_until(IO_TIMEOUT, || healthy(&late)), "{}", late.log());
    let mut resumed = Sse::connect(late.addr, "/prices", "Last-Event-ID: 1-0\r\n");
    let ids = two_ids(&mut resumed);
    assert_eq!(ids, ["10-0", "12-0"]);
    assert_eq!(late.metric("tickstream_feed_lines_rejected_total"), 1);
}

/// The largest id there is: a new replica loads it and the history before
/// it (there is no id after it to read before), and a reconnect after
/// reading it keeps the feed up (Redis refuses an `XRANGE` that starts
/// after it; it used to fail that way for ever).
#[test]
fn the_largest_id_is_loaded_and_survives_a_reconnect() {
    let Some((redis, _early)) = redis_and_replica() else {
        return;
    };
    let largest = "18446744073709551615-18446744073709551615";
    redis.add("5-0", "BTC", "1");
    redis.add(largest, "ETH", "2");
    let late = replica(&redis, &[]);
    assert!(wait_until(IO_TIMEOUT, || healthy(&late)), "{}", late.log());
    let mut resumed = Sse::connect(late.addr, "/prices", "Last-Event-ID: 1-0\r\n");
    let ids = two_ids(&mut resumed);
    assert_eq!(ids, ["5-0", largest]);
    redis.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    // Back to reading: logged once a read works again after the complaint.
    assert!(
        late.wait_for_log("redis feed reading stream", IO_TIMEOUT),
        "{}",
        late.log()
    );
    assert!(late.metric("tickstream_feed_reconnects_total") >= 1);
    assert!(healthy(&late));
    assert!(!late.log().contains("invalid start ID"), "{}", late.log());
}

/// 400 entries with a 1 MiB price are skipped without being held: the
/// replica's RSS grows by less than 64 MiB (it took 830 MB before).
#[test]
fn oversized_prices_do_not_swell_the_replica() {
    let Some((redis, server)) = redis_and_replica() else {
        return;
    };
    let before = server.rss_kib();
    // Finite, so valid but for its length: `1.000…0`.
    let price = format!("1.{}", "0".repeat(1024 * 1024 - 2));
    let entries: Vec<Vec<String>> = (1..=400)
        .map(|n| xadd(&format!("{n}-0"), "BTC", &price, &[]))
        .collect();
    pipe(&redis, &entries);
    redis.add("401-0", "BTC", "1.5");
    let mut client = Sse::connect(server.addr, "/prices", "Last-Event-ID: 400-0\r\n");
    let event = client.next_event(IO_TIMEOUT).expect("the valid entry");
    assert_eq!(
        (event.id_text.as_str(), event.price.as_str()),
        ("401-0", "1.5")
    );
    assert!(wait_until(IO_TIMEOUT, || server
        .metric("tickstream_feed_lines_rejected_total")
        == 400));
    let grown = server.rss_kib().saturating_sub(before);
    println!("RSS {before} KiB, then +{grown} KiB after 400 entries of 1 MiB");
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

/// A replica started before its publisher (no key yet) whose connection
/// Redis drops while five entries are added: its client gets all five,
/// because the catch-up after a reconnect starts at the stream's beginning
/// when nothing was read (it got only the fifth, as a snapshot, before).
#[test]
fn a_reconnect_before_any_entry_loses_none() {
    let Some((redis, server)) = redis_and_replica() else {
        return;
    };
    let mut client = Sse::connect(server.addr, "/prices", "");
    // The kill and the entries in one transaction: the replica's blocked
    // XREAD is gone before the first entry exists.
    let kill = ["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"];
    let mut commands = vec![vec!["MULTI".to_string()], kill.map(String::from).to_vec()];
    commands.extend((1..=5).map(|n| xadd(&format!("{n}-0"), "BTC", &n.to_string(), &[])));
    commands.push(vec!["EXEC".to_string()]);
    pipe(&redis, &commands);
    let ids: Vec<String> = client
        .events(5, IO_TIMEOUT)
        .into_iter()
        .map(|e| e.id_text)
        .collect();
    assert_eq!(ids, ["1-0", "2-0", "3-0", "4-0", "5-0"]);
    assert!(wait_until(IO_TIMEOUT, || server
        .metric("tickstream_feed_reconnects_total")
        == 1));
}

/// An entry without `ts` is stamped with its id's milliseconds, so two
/// replicas (started apart) carry the same bytes.
#[test]
fn an_entry_without_ts_is_stamped_with_its_id() {
    let Some((redis, first)) = redis_and_replica() else {
        return;
    };
    let mut early = Sse::connect(first.addr, "/prices", "");
    redis.cli(&[
        "XADD",
        "tickstream:prices",
        "1764028800123-0",
        "symbol",
        "BTC",
        "price",
        "1",
    ]);
    let event = early.next_event(IO_TIMEOUT).expect("the entry");
    assert_eq!(event.ts, 1_764_028_800_123);
    let second = replica(&redis, &[]);
    let mut late = Sse::connect(second.addr, "/prices", "Last-Event-ID: 1-0\r\n");
    assert_eq!(
        late.next_event(IO_TIMEOUT).expect("the entry").ts,
        1_764_028_800_123
    );
}

/// Loading 1,000 entries of 280 small fields at start costs the replica
/// little CPU: the reply is parsed once, not again at each 64 KiB read
/// (about 1.5 s of CPU for a 4 MB page before).
#[test]
fn loading_wide_entries_costs_linear_time() {
    if !redis_available() {
        return;
    }
    let redis = Redis::start();
    let fields: Vec<String> = (0..139)
        .flat_map(|n| [format!("f{n}"), format!("v{n}")])
        .collect();
    let entries: Vec<Vec<String>> = (1..=1000)
        .map(|n| xadd(&format!("{n}-0"), "BTC", &n.to_string(), &fields))
        .collect();
    pipe(&redis, &entries);
    let server = replica(&redis, &[]);
    assert!(
        wait_until(IO_TIMEOUT, || healthy(&server)),
        "{}",
        server.log()
    );
    // CPU time so far, in clock ticks (`utime + stime`).
    let ticks = proc_sample(server.pid()).cpu_ticks;
    println!("replica CPU to load 1,000 entries of 280 fields: {ticks} ticks of 10 ms");
    // Ten times what it takes here (2-4 ticks in a release build, about
    // ten times that unoptimized), a fifth of what it took before.
    let most = if cfg!(debug_assertions) { 300 } else { 30 };
    assert!(ticks < most, "{ticks} ticks");
}

/// A stream deleted and re-created with smaller ids is logged once.
#[test]
fn a_stream_recreated_below_the_last_id_is_logged_once() {
    let Some((redis, server)) = redis_and_replica() else {
        return;
    };
    let mut client = Sse::connect(server.addr, "/prices", "");
    redis.add("100-0", "BTC", "1");
    assert_eq!(
        client.next_event(IO_TIMEOUT).expect("entry").id_text,
        "100-0"
    );
    redis.cli(&["DEL", "tickstream:prices"]);
    redis.add("5-0", "BTC", "2");
    let note = "newest entry 5-0 is below the last one read, 100-0";
    assert!(
        server.wait_for_log(note, Duration::from_secs(10)),
        "{}",
        server.log()
    );
    // Two more idle XREADs (2 s each, counted by Redis: the one under way
    // and two whole ones) and no second line.
    let xreads = || -> u64 {
        let stats = redis.cli(&["INFO", "commandstats"]);
        stats
            .lines()
            .find_map(|l| l.trim().strip_prefix("cmdstat_xread:calls="))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    let before = xreads();
    let enough = Duration::from_secs(2) * 3 * 3; // three XREADs, three times over
    assert!(
        wait_until(enough, || xreads() >= before + 3),
        "{} XREADs in {enough:?}",
        xreads() - before
    );
    assert_eq!(server.log().matches(note).count(), 1, "{}", server.log());
    redis.add("101-0", "BTC", "3");
    assert_eq!(
        client.next_event(IO_TIMEOUT).expect("entry").id_text,
        "101-0"
    );
}
