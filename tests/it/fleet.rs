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
}

impl Fleet {
    /// Starts everything and waits until every replica is healthy and the
    /// stream has entries.
    pub fn start(nginx_binary: &str) -> Fleet {
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
        let replicas: Vec<Server> = (0..3).map(|_| start_replica(&redis, 0)).collect();
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
        }
    }

    /// The index of the replica that holds the one open stream.
    pub fn replica_with_the_client(&self) -> usize {
        let mut on = None;
        let found = wait_until(IO_TIMEOUT, || {
            let counts: Vec<u64> = self
                .replicas
                .iter()
                .map(|r| r.metric("tickstream_clients_connected"))
                .collect();
            on = counts.iter().position(|&n| n == 1);
            counts.iter().sum::<u64>() == 1
        });
        assert!(found, "no single replica holds the client's stream");
        on.unwrap()
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

/// A replica on `127.0.0.1:port`.
fn start_replica(redis: &Redis, port: u16) -> Server {
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["--addr", addr.as_str()];
    args.extend_from_slice(&REPLICA_FLAGS);
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
                match Sse::try_connect(addr, "/prices", &header) {
                    Err(_) => record.lock().unwrap().refused += 1,
                    Ok(mut sse) => {
                        record.lock().unwrap().streams += 1;
                        while !stopping.load(Ordering::Relaxed) {
                            match sse.next_frame(STALL) {
                                Some(Frame::Retry(ms)) => retry = Duration::from_millis(ms),
                                Some(Frame::Event(event)) => {
                                    record.lock().unwrap().ids.push(event.id_text.clone());
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
    client.wait_for(20, IO_TIMEOUT);
    let on = fleet.replica_with_the_client();
    fleet.replicas[on].signal("KILL");
    // Read after the kill: every event the victim sent is at or below it.
    let newest = fleet.newest_id();
    // Two seconds of entries after the kill, all through other replicas.
    client.wait_past(&newest, 80, Duration::from_secs(10));
    let seen = client.finish();
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
        fleet.replicas[i] = start_replica(&fleet.redis, port);
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
