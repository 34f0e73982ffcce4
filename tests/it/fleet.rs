//! A fleet, run for real: a `redis-server`, a sim publisher, three `--feed
//! redis` replicas and nginx with README.md's ```` ```nginx fleet ```` block.
//! A client that follows `EventSource`'s rules must receive exactly the
//! entries of the Redis stream over its span (none missing, none twice) when
//! the replica it is on is SIGKILLed, and through a rolling restart with
//! SIGTERM, in which every replica exits 0 within `--drain` plus a second
//! (README, "Stopping"). The live page in headless Chromium keeps a continuous
//! chart through the same kill (`tests/browser/fleet.test.mjs`).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::auth::{mint, KeyFile, ALPHA, BRAVO};
use crate::browser::run_browser_script;
use crate::nginx::{nginx_binary, readme_block, skip_or_fail, start_nginx_with, Nginx};
use crate::redis_server::*;
use crate::support::*;

/// `--drain` of every replica.
const DRAIN: Duration = Duration::from_secs(1);

/// The replicas' flags besides `--addr` (and the `--heartbeat 200ms` that
/// [`replica`] adds): a short `retry:` so clients come back soon, and
/// `--drain` [`DRAIN`].
const REPLICA_FLAGS: [&str; 5] = ["--retry", "200ms", "--drain", "1s", "--quiet"];

/// The upstream servers of the README block, in order, replaced by the
/// replicas' addresses.
const README_UPSTREAMS: [&str; 3] = ["127.0.0.1:4441", "127.0.0.1:4442", "127.0.0.1:4443"];

/// How long a stream may stay silent before the client gives up on it: ten
/// heartbeats.
const STALL: Duration = Duration::from_secs(2);

/// Redis, a publisher (BTC and ETH every 50 ms: 40 entries a second), three
/// replicas, each on a loopback port it keeps across restarts, and nginx in
/// front of them. Fields drop
/// in order: nginx first, Redis last.
pub struct Fleet {
    /// nginx with the README's fleet block.
    pub nginx: Nginx,
    /// The replicas, in the order of the README's upstream servers.
    pub replicas: Vec<Server>,
    _publisher: ChildGuard,
    /// The Redis server.
    pub redis: Redis,
    /// Header lines for `/metrics` (a token, with `--auth-keys`).
    pub metrics_auth: String,
}

impl Fleet {
    /// Starts everything and waits until every replica is healthy and the
    /// stream has entries.
    pub fn start(nginx_binary: &str) -> Fleet {
        Fleet::start_with(nginx_binary, &[])
    }

    /// [`Fleet::start`], each replica with these flags too.
    pub fn start_with(nginx_binary: &str, flags: &[&str]) -> Fleet {
        let redis = Redis::start();
        let publisher = ChildGuard::new(
            without_tickstream_env(Command::new(env!("CARGO_BIN_EXE_tickstream")))
                .args(["publish", "--redis", &redis.url()])
                .args(["--interval", "50ms", "--symbols", "BTC,ETH"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the publisher"),
        );
        let replicas: Vec<Server> = (0..3).map(|_| start_replica(&redis, 0, flags)).collect();
        let mut block = readme_block("nginx fleet");
        for (upstream, replica) in README_UPSTREAMS.iter().zip(&replicas) {
            assert!(block.contains(upstream), "{upstream} in {block}");
            block = block.replace(upstream, &replica.addr.to_string());
        }
        let nginx = start_nginx_with(nginx_binary, &block);
        assert!(
            wait_until(IO_TIMEOUT, || redis.ids().len() >= 4),
            "the publisher wrote nothing"
        );
        for replica in &replicas {
            wait_healthy(replica);
        }
        Fleet {
            nginx,
            replicas,
            _publisher: publisher,
            redis,
            metrics_auth: String::new(),
        }
    }

    /// The index of the replica that holds the one open stream.
    pub fn replica_with_the_client(&self) -> usize {
        let mut on = None;
        let found = wait_until(IO_TIMEOUT, || {
            let counts: Vec<u64> = self
                .replicas
                .iter()
                .map(|r| r.metric_with("tickstream_clients_connected", &self.metrics_auth))
                .collect();
            on = counts.iter().position(|&n| n == 1);
            counts.iter().sum::<u64>() == 1
        });
        assert!(found, "no single replica holds the client's stream");
        on.unwrap()
    }

    /// Once `client` has `before` events, SIGKILLs the replica that holds
    /// its stream; once it has `after` more past the newest entry at the
    /// kill (every event the victim sent is at or below it), what it saw.
    fn kill_the_clients_replica(&self, client: Follower, before: usize, after: usize) -> Seen {
        client.wait_for(before, IO_TIMEOUT);
        let on = self.replica_with_the_client();
        self.replicas[on].signal("KILL");
        let newest = self.newest_id();
        client.wait_past(&newest, after, Duration::from_secs(10));
        client.finish()
    }

    /// The id of the newest entry of the stream.
    pub fn newest_id(&self) -> String {
        let out = self
            .redis
            .cli(&["XREVRANGE", "tickstream:prices", "+", "-", "COUNT", "1"]);
        out.lines().next().expect("an entry").to_string()
    }
}

/// nginx's path if it and Redis are installed; otherwise reports the test
/// as SKIPPED (or fails under `CI=true`) and returns `None`.
fn tools() -> Option<String> {
    if !redis_available() {
        return None;
    }
    let binary = nginx_binary();
    if binary.is_none() {
        skip_or_fail(
            "nginx is not installed (apt-get install nginx-light); the fleet test did not run",
        );
    }
    binary
}

/// A replica on `127.0.0.1:port`, with these flags too.
fn start_replica(redis: &Redis, port: u16, flags: &[&str]) -> Server {
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["--addr", addr.as_str()];
    args.extend_from_slice(&REPLICA_FLAGS);
    args.extend_from_slice(flags);
    replica(redis, &args)
}

/// Waits until `/healthz` answers `200`: Redis connected, history loaded.
fn wait_healthy(replica: &Server) {
    assert!(
        wait_until(Duration::from_secs(10), || healthy(replica)),
        "replica {} not healthy: {}",
        replica.addr,
        replica.log()
    );
}

/// `MS-SEQ` as its two numbers, which order it.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("not MS-SEQ: {id}"));
    (ms.parse().unwrap(), seq.parse().unwrap())
}

/// What a [`Follower`] saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// The id of every event received, in order.
    ids: Vec<String>,
    /// Its symbol, and when it arrived.
    events: Vec<(String, Instant)>,
    /// Streams opened (answered `200`).
    streams: usize,
    /// Attempts answered otherwise (nginx's `502` with no replica up).
    refused: usize,
}

/// A client that follows `EventSource`'s rules (WHATWG HTML, "Server-sent
/// events"): when its stream ends or fails it waits the last `retry:` time,
/// then reconnects with `Last-Event-ID` set to the id of the last event it
/// received. Like the page, and unlike a bare `EventSource`, it also tries
/// again after a non-200 answer.
struct Follower {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    handle: thread::JoinHandle<()>,
}

impl Follower {
    /// Starts following `/prices` at `addr` on a thread of its own.
    fn start(addr: SocketAddr) -> Follower {
        Follower::start_with(addr, String::new())
    }

    /// [`Follower::start`], sending these header lines too.
    fn start_with(addr: SocketAddr, headers: String) -> Follower {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stopping, record) = (Arc::clone(&stop), Arc::clone(&seen));
        let handle = thread::spawn(move || {
            // EventSource's reconnection time until a `retry:` field says.
            let mut retry = Duration::from_secs(3);
            let mut last_id: Option<String> = None;
            while !stopping.load(Ordering::Relaxed) {
                let header = last_id
                    .as_ref()
                    .map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
                let header = header + &headers;
                match Sse::try_connect(addr, "/prices", &header) {
                    Err(_) => record.lock().unwrap().refused += 1,
                    Ok(mut sse) => {
                        record.lock().unwrap().streams += 1;
                        while !stopping.load(Ordering::Relaxed) {
                            match sse.next_frame(STALL) {
                                Some(Frame::Retry(ms)) => retry = Duration::from_millis(ms),
                                Some(Frame::Event(event)) => {
                                    let mut seen = record.lock().unwrap();
                                    seen.ids.push(event.id_text.clone());
                                    seen.events.push((event.symbol.clone(), Instant::now()));
                                    drop(seen);
                                    last_id = Some(event.id_text);
                                }
                                Some(_) => {}
                                None => break,
                            }
                        }
                    }
                }
                thread::sleep(retry);
            }
        });
        Follower { stop, seen, handle }
    }

    /// Events received so far.
    fn received(&self) -> usize {
        self.seen.lock().unwrap().ids.len()
    }

    /// Waits until `n` events in all have arrived.
    fn wait_for(&self, n: usize, timeout: Duration) {
        assert!(
            wait_until(timeout, || self.received() >= n),
            "{} of {n} events within {timeout:?}: {:?}",
            self.received(),
            self.seen.lock().unwrap()
        );
    }

    /// Waits until `more` events with ids above `id` have arrived.
    fn wait_past(&self, id: &str, more: usize, timeout: Duration) {
        let floor = stream_id(id);
        let past = || {
            let seen = self.seen.lock().unwrap();
            seen.ids.iter().filter(|i| stream_id(i) > floor).count()
        };
        assert!(
            wait_until(timeout, || past() >= more),
            "{} of {more} events after {id} within {timeout:?}: {:?}",
            past(),
            self.seen.lock().unwrap()
        );
    }

    /// Stops following; what it saw.
    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the follower's thread");
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

/// Asserts the client received exactly the stream's entries from its first
/// id to its last: none missing, none twice, in order.
fn assert_exactly_the_stream(redis: &Redis, seen: &Seen) {
    let (first, last) = (&seen.ids[0], seen.ids.last().unwrap());
    let stored = redis.ids_between(first, last);
    println!(
        "client: {} events over {} streams ({} refused); the stream holds {} from {first} to {last}",
        seen.ids.len(),
        seen.streams,
        seen.refused,
        stored.len()
    );
    assert_eq!(seen.ids, stored, "no entry missing, none twice");
}

#[test]
fn fleet_a_sigkilled_replica_costs_its_client_no_event_and_no_repeat() {
    let Some(binary) = tools() else { return };
    let fleet = Fleet::start(&binary);
    let client = Follower::start(fleet.nginx.addr);
    // Two seconds of entries after the kill, all through other replicas.
    let seen = fleet.kill_the_clients_replica(client, 20, 80);
    assert!(seen.streams >= 2, "the client never reconnected: {seen:?}");
    assert_exactly_the_stream(&fleet.redis, &seen);
}

#[test]
fn fleet_a_rolling_restart_costs_clients_no_event_and_no_repeat() {
    let Some(binary) = tools() else { return };
    let mut fleet = Fleet::start(&binary);
    // Two streams per replica on average, so each drain spreads several.
    let clients: Vec<Follower> = (0..6).map(|_| Follower::start(fleet.nginx.addr)).collect();
    for client in &clients {
        client.wait_for(20, IO_TIMEOUT);
    }
    let mut drained = 0;
    for i in 0..fleet.replicas.len() {
        let port = fleet.replicas[i].addr.port();
        fleet.replicas[i].signal("TERM");
        let signalled = Instant::now();
        // The stop path allows the drain plus a second of last writes;
        // three times that.
        let allowed = (DRAIN + Duration::from_secs(1)) * 3;
        let status = fleet.replicas[i]
            .exit_within(allowed)
            .unwrap_or_else(|| panic!("replica {i} still running {allowed:?} after SIGTERM"));
        let log = fleet.replicas[i].log();
        let ended: usize = log
            .lines()
            .find_map(|l| l.strip_prefix("tickstream: stopped after draining "))
            .and_then(|rest| rest.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no drain line in {log}"));
        println!(
            "replica {i}: {status} {:?} after SIGTERM, {ended} streams drained",
            signalled.elapsed()
        );
        assert_eq!(status.code(), Some(0), "{log}");
        drained += ended;
        fleet.replicas[i] = start_replica(&fleet.redis, port, &[]);
        wait_healthy(&fleet.replicas[i]);
        // Every client goes on receiving before the next replica stops.
        let received: Vec<usize> = clients.iter().map(Follower::received).collect();
        for (client, n) in clients.iter().zip(received) {
            client.wait_for(n + 20, IO_TIMEOUT);
        }
    }
    let newest = fleet.newest_id();
    assert!(
        drained >= clients.len(),
        "{drained} streams drained: each client's stream was on some replica"
    );
    for client in &clients {
        client.wait_past(&newest, 20, IO_TIMEOUT);
    }
    for client in clients {
        let seen = client.finish();
        assert!(seen.streams >= 2, "the client never reconnected: {seen:?}");
        assert_eq!(seen.refused, 0, "nginx refused while replicas were up");
        assert_exactly_the_stream(&fleet.redis, &seen);
    }
}

#[test]
fn fleet_metrics_stay_private_through_nginx() {
    let Some(binary) = tools() else { return };
    let fleet = Fleet::start(&binary);
    let closing = "Host: x\r\nConnection: close\r\n\r\n";
    for path in ["/metrics", "/metrics?x=1", "/%6Detrics", "//metrics"] {
        let reply = request(
            fleet.nginx.addr,
            format!("GET {path} HTTP/1.1\r\n{closing}").as_bytes(),
        );
        assert_eq!(reply.status, 403, "{path} through nginx: {}", reply.head);
    }
    let health = request(
        fleet.nginx.addr,
        format!("GET /healthz HTTP/1.1\r\n{closing}").as_bytes(),
    );
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
}

#[test]
fn fleet_page_in_chromium_keeps_a_continuous_chart_through_a_sigkill() {
    let Some(binary) = tools() else { return };
    let fleet = Fleet::start(&binary);
    let replicas: Vec<String> = fleet
        .replicas
        .iter()
        .map(|r| format!("{}={}", r.addr, r.pid()))
        .collect();
    run_browser_script(
        "fleet.test.mjs",
        &[
            ("FLEET_URL", format!("http://{}/", fleet.nginx.addr)),
            ("FLEET_REPLICAS", replicas.join(",")),
            ("FLEET_REDIS_PORT", fleet.redis.port.to_string()),
        ],
    );
}

/// A client on a token with `symbols` and `throttle` fails over after its
/// replica is SIGKILLed (every replica reads a copy of the same key file)
/// and keeps both entitlements: only its symbol, writes at least the
/// throttle apart, ids strictly rising (no repeat), and after the failover
/// the newest entry of its symbol that it had not seen (no gap in what a
/// conflated stream owes).
#[test]
fn fleet_a_token_keeps_its_symbols_and_throttle_through_a_failover() {
    let Some(binary) = tools() else { return };
    let keys = KeyFile::new(&[ALPHA]);
    let mut fleet = Fleet::start_with(&binary, &["--auth-keys", keys.path_str()]);
    let token = mint(&keys, &["--symbols", "ETH", "--throttle", "500ms"]);
    let metrics = mint(&keys, &["--scope", "metrics"]);
    fleet.metrics_auth = format!("Authorization: Bearer {metrics}\r\n");
    let client = Follower::start_with(
        fleet.nginx.addr,
        format!("Authorization: Bearer {token}\r\n"),
    );
    let seen = fleet.kill_the_clients_replica(client, 4, 4);
    println!(
        "client: {} events over {} streams",
        seen.ids.len(),
        seen.streams
    );
    assert!(seen.streams >= 2, "the client never reconnected: {seen:?}");
    assert!(
        seen.events.iter().all(|(symbol, _)| symbol == "ETH"),
        "{seen:?}"
    );
    let ids: Vec<(u64, u64)> = seen.ids.iter().map(|id| stream_id(id)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "no repeat: {seen:?}");
    // One event per write here (one symbol): writes the throttle (500 ms)
    // apart, allowed a third of it (unthrottled: 50 ms); the failover's
    // first write may come sooner.
    let gaps = seen.events.windows(2).map(|w| w[1].1 - w[0].1);
    let short = gaps
        .filter(|gap| *gap < Duration::from_millis(500 / 3))
        .count();
    assert!(
        short <= 1,
        "{short} writes under a third of the throttle apart: {seen:?}"
    );
    // Each write carries the newest ETH entry of its moment: the stream
    // holds no ETH entry newer than the last one received but from after it.
    let last = seen.ids.last().unwrap();
    let later = fleet.redis.ids_between(&format!("({last}"), "+");
    assert!(
        later.len() < 40,
        "the client fell behind: {} later entries",
        later.len()
    );
}

/// A key rotated out by SIGHUP across the fleet ends the streams of its
/// tokens on every replica (their reconnects get 401), and nothing else:
/// a stream on the other key goes on, on the same connection.
#[test]
fn fleet_a_key_rotation_by_sighup_ends_the_old_keys_streams_only() {
    let Some(binary) = tools() else { return };
    let keys = KeyFile::new(&[ALPHA, BRAVO]);
    let fleet = Fleet::start_with(&binary, &["--auth-keys", keys.path_str()]);
    let old = mint(&KeyFile::new(&[ALPHA]), &[]);
    let new = mint(&KeyFile::new(&[BRAVO]), &[]);
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
    let olds: Vec<Follower> = (0..3)
        .map(|_| Follower::start_with(fleet.nginx.addr, bearer(&old)))
        .collect();
    let kept = Follower::start_with(fleet.nginx.addr, bearer(&new));
    for client in olds.iter().chain([&kept]) {
        client.wait_for(10, IO_TIMEOUT);
    }
    keys.write(&[BRAVO]);
    for replica in &fleet.replicas {
        replica.signal("HUP");
    }
    for replica in &fleet.replicas {
        assert!(
            replica.wait_for_log("keys reloaded: 1 key", IO_TIMEOUT),
            "{}",
            replica.log()
        );
    }
    // Every old stream ends and is refused from then on.
    // (A refusal is counted once its reply is read to the end, and nginx
    // keeps the client's connection open: the read runs into IO_TIMEOUT.)
    for client in &olds {
        let refused = || client.seen.lock().unwrap().refused;
        assert!(
            wait_until(4 * IO_TIMEOUT, || refused() >= 1),
            "{:?}",
            client.seen.lock().unwrap()
        );
    }
    let received = kept.received();
    kept.wait_for(received + 20, IO_TIMEOUT);
    let kept = kept.finish();
    assert_eq!(kept.streams, 1, "the other key's stream went on: {kept:?}");
    assert_exactly_the_stream(&fleet.redis, &kept);
    for client in olds {
        let seen = client.finish();
        assert_eq!(seen.streams, 1, "no stream after the rotation: {seen:?}");
    }
}
