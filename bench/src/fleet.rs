//! The client fleet: up to ~19,000 SSE connections driven by one thread over
//! epoll (through `mio`), each parsed with [`crate::sse::Parser`].
//!
//! The fleet owns every client socket. It opens connections at a bounded
//! pace (spread evenly over a ramp, at most `max_pending` handshakes in
//! flight, so the server's SYN and accept queues never overflow into 1 s
//! SYN retransmits), binds each to a source address cycling over
//! 127.0.0.2–127.0.0.255 (each source address has its own ~28,000 ephemeral
//! ports), retries a failed attempt a bounded number of times with backoff,
//! and counts everything: attempt failures by reason, disconnects, events,
//! id gaps and duplicates, and — for events produced in the measurement
//! window — delivery latency `now − ts`.
//!
//! **Invariants**: a client is "pending" from `connect` until its response
//! head arrives or the attempt fails, and `pending` counts exactly those; an
//! established client is never reconnected (a disconnect is a result).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::hist::Histogram;
use crate::sse::{self, EventId, Item};

/// Read buffer shared by all clients (each keeps only its partial line).
const SCRATCH_BYTES: usize = 64 * 1024;
/// Poll period while connections are being opened, so the ramp stays even.
const CONNECT_TICK: Duration = Duration::from_millis(2);
/// First retry delay; doubled per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// `EINPROGRESS` on Linux: a non-blocking `connect` has started
/// (`io::ErrorKind::InProgress` is not stable yet).
const EINPROGRESS: i32 = 115;

/// How to open and read the connections.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// Server address (loopback).
    pub target: SocketAddrV4,
    /// The bytes of the HTTP request each client sends.
    pub request: Vec<u8>,
    /// Number of clients.
    pub clients: usize,
    /// Spread the first connect of the clients evenly over this time
    /// (zero: as fast as `max_pending` allows).
    pub ramp: Duration,
    /// Most connection attempts in flight (connect sent, head not yet read).
    pub max_pending: usize,
    /// An attempt without a response head after this long fails.
    pub connect_timeout: Duration,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// Source addresses to bind, used in turn.
    pub sources: Vec<Ipv4Addr>,
    /// Decimal ids must be consecutive (an unfiltered, unconflated
    /// stream): count their jumps as gaps, else only as skips.
    pub check_ids: bool,
}

/// Where a client is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not started yet, or waiting for a retry.
    Idle,
    /// `connect` sent, waiting for the handshake.
    Connecting,
    /// Connected, the request not fully written.
    Requesting,
    /// Request sent, waiting for the response head.
    AwaitHead,
    /// Got `200`: reading events.
    Streaming,
    /// Was streaming, the connection ended.
    Disconnected,
    /// Every attempt failed.
    Failed,
}

impl Phase {
    fn pending(self) -> bool {
        matches!(
            self,
            Phase::Connecting | Phase::Requesting | Phase::AwaitHead
        )
    }
}

/// Per-client state and counters.
#[derive(Debug)]
struct Client {
    stream: Option<TcpStream>,
    phase: Phase,
    attempts: u32,
    first_start: Option<Instant>,
    attempt_start: Instant,
    /// Wall clock (ms) when the TCP connection was made: events with an
    /// older `ts` are the catch-up snapshot, not live deliveries.
    connected_ms: u64,
    written: usize,
    parser: sse::Parser,
    last_id: Option<EventId>,
    events: u64,
    events_window: u64,
    in_window: bool,
    /// From the first attempt's start to the first event.
    first_event_after: Option<Duration>,
}

/// Counters summed over the fleet.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Attempts started (first attempts and retries).
    pub attempts: u64,
    /// Failed attempts by reason (`refused`, `timeout`, `http 503`, ...).
    pub attempt_failures: BTreeMap<String, u64>,
    /// Clients that got a `200` head.
    pub established: u64,
    /// Clients whose every attempt failed.
    pub gave_up: u64,
    /// Established connections that ended, by reason.
    pub disconnects: BTreeMap<String, u64>,
    /// Disconnects while the wall clock was in the window.
    pub window_disconnects: u64,
    /// Events received, all clients, whole run.
    pub events: u64,
    /// Live events received whose `ts` lies in the window.
    pub window_events: u64,
    /// Heartbeat comments received.
    pub comments: u64,
    /// Events whose `data:` was not the spec's JSON shape.
    pub malformed: u64,
    /// Events without an id of either form.
    pub no_id: u64,
    /// Events with a decimal id.
    pub counter_ids: u64,
    /// Events with a Redis stream entry id (`MS-SEQ`).
    pub entry_ids: u64,
    /// Places where a decimal id jumped by more than one (`check_ids`
    /// only). `MS-SEQ` ids have no "next" id: their gaps are not judged.
    pub gaps: u64,
    /// Ids skipped over in those gaps.
    pub missing_ids: u64,
    /// Jumps of a decimal id by more than one where they are expected
    /// (not `check_ids`: a filtered or conflated stream), for information.
    pub skips: u64,
    /// Ids skipped over in those jumps.
    pub skipped_ids: u64,
    /// Events whose id was not above the previous one (either form).
    pub duplicates: u64,
    /// Delivery latency of the window's events, µs.
    pub latency_us: Histogram,
    /// Events in the window whose `ts` lay in the future (clock skew),
    /// recorded as 0 latency.
    pub negative_latency: u64,
    /// First protocol error seen, for the report.
    pub first_protocol_error: Option<String>,
}

/// The connections of one benchmark run.
pub struct Fleet {
    cfg: FleetConfig,
    poll: Poll,
    events: Events,
    ready: Vec<(usize, bool)>,
    clients: Vec<Client>,
    items: Vec<Item>,
    scratch: Vec<u8>,
    start: Instant,
    /// Next client to start for the first time.
    next_new: usize,
    /// Clients waiting to retry, by due time.
    retries: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Attempt deadlines in start order: (deadline, client, attempt number).
    deadlines: VecDeque<(Instant, usize, u32)>,
    next_source: usize,
    pending: usize,
    streaming: usize,
    /// The measurement window in producer time: `[start, end)` in ms
    /// since the Unix epoch, compared with each event's `ts`.
    window: Option<(u64, u64)>,
    totals: Totals,
}

impl Fleet {
    /// A fleet that starts opening connections on the first [`Fleet::step`].
    pub fn new(cfg: FleetConfig) -> io::Result<Self> {
        let now = Instant::now();
        let clients = (0..cfg.clients)
            .map(|_| Client {
                stream: None,
                phase: Phase::Idle,
                attempts: 0,
                first_start: None,
                attempt_start: now,
                connected_ms: 0,
                written: 0,
                parser: sse::Parser::new(),
                last_id: None,
                events: 0,
                events_window: 0,
                in_window: false,
                first_event_after: None,
            })
            .collect();
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            ready: Vec::with_capacity(4096),
            clients,
            items: Vec::new(),
            scratch: vec![0; SCRATCH_BYTES],
            start: now,
            next_new: 0,
            retries: BinaryHeap::new(),
            deadlines: VecDeque::new(),
            next_source: 0,
            pending: 0,
            streaming: 0,
            window: None,
            totals: Totals::default(),
            cfg,
        })
    }

    /// Counters so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Clients streaming right now.
    pub fn streaming(&self) -> usize {
        self.streaming
    }

    /// Every client has either received its first event or given up, or
    /// its connection ended.
    pub fn all_settled(&self) -> bool {
        self.next_new == self.clients.len()
            && self.clients.iter().all(|c| {
                c.first_event_after.is_some()
                    || matches!(c.phase, Phase::Failed | Phase::Disconnected)
            })
    }

    /// Sets the measurement window to the events whose `ts` (ms since the
    /// Unix epoch) lies in `[start_ms, end_ms)`, and marks the clients
    /// streaming now as its members (whose per-client counts are reported).
    ///
    /// The window is in the producer's time, not the receiver's, so every
    /// member is due the same events whatever the delivery lag, and an event
    /// produced near the end still counts if it arrives after it: keep
    /// stepping a little past `end_ms` to collect those.
    pub fn open_window(&mut self, start_ms: u64, end_ms: u64) {
        self.window = Some((start_ms, end_ms));
        for c in &mut self.clients {
            c.in_window = c.phase == Phase::Streaming;
            c.events_window = 0;
        }
    }

    fn in_window(&self, ms: u64) -> bool {
        self.window
            .is_some_and(|(start, end)| (start..end).contains(&ms))
    }

    /// Events each window member received in the window, sorted.
    pub fn window_events_per_client(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .clients
            .iter()
            .filter(|c| c.in_window)
            .map(|c| c.events_window)
            .collect();
        v.sort_unstable();
        v
    }

    /// For each client that got one, the time from its first connect
    /// attempt to its first event.
    pub fn first_event_times(&self) -> impl Iterator<Item = Duration> + '_ {
        self.clients.iter().filter_map(|c| c.first_event_after)
    }

    /// The latest instant at which a client got its first event, as time
    /// since the fleet was created.
    pub fn last_first_event(&self) -> Option<Duration> {
        self.clients
            .iter()
            .filter_map(|c| Some(c.first_start? + c.first_event_after?))
            .max()
            .map(|t| t - self.start)
    }

    /// Starts due connections, waits up to `max_wait` for socket events and
    /// handles them.
    pub fn step(&mut self, max_wait: Duration) -> io::Result<()> {
        let now = Instant::now();
        self.expire_attempts(now);
        self.start_due(now);
        let connecting = self.next_new < self.clients.len() || !self.retries.is_empty();
        let wait = if connecting {
            max_wait.min(CONNECT_TICK)
        } else {
            max_wait
        };
        match self.poll.poll(&mut self.events, Some(wait)) {
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            r => r?,
        }
        self.ready.clear();
        self.ready.extend(
            self.events
                .iter()
                .map(|e| (e.token().0, e.is_writable() || e.is_error())),
        );
        for k in 0..self.ready.len() {
            let (i, writable) = self.ready[k];
            self.on_ready(i, writable);
        }
        Ok(())
    }

    /// Fails attempts that have waited too long for their response head.
    fn expire_attempts(&mut self, now: Instant) {
        while let Some(&(deadline, i, attempt)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let c = &self.clients[i];
            if c.phase.pending() && c.attempts == attempt {
                self.fail_attempt(i, "timeout".into());
            }
        }
    }

    /// Starts first attempts as the ramp allows, then due retries, keeping
    /// at most `max_pending` in flight.
    fn start_due(&mut self, now: Instant) {
        let n = self.clients.len();
        let due = if self.cfg.ramp.is_zero() {
            n
        } else {
            let frac = now.duration_since(self.start).as_secs_f64() / self.cfg.ramp.as_secs_f64();
            ((frac * n as f64).ceil() as usize).min(n)
        };
        while self.next_new < due && self.pending < self.cfg.max_pending {
            let i = self.next_new;
            self.next_new += 1;
            self.start_attempt(i, now);
        }
        while self.pending < self.cfg.max_pending {
            match self.retries.peek() {
                Some(&Reverse((at, i))) if at <= now => {
                    self.retries.pop();
                    self.start_attempt(i, now);
                }
                _ => break,
            }
        }
    }

    fn start_attempt(&mut self, i: usize, now: Instant) {
        let source = self.cfg.sources[self.next_source % self.cfg.sources.len()];
        self.next_source += 1;
        let c = &mut self.clients[i];
        c.attempts += 1;
        c.attempt_start = now;
        c.first_start.get_or_insert(now);
        c.written = 0;
        c.parser = sse::Parser::new();
        c.phase = Phase::Connecting;
        self.pending += 1;
        self.totals.attempts += 1;
        self.deadlines
            .push_back((now + self.cfg.connect_timeout, i, c.attempts));
        match connect(source, self.cfg.target) {
            Ok(mut stream) => {
                let interest = Interest::READABLE | Interest::WRITABLE;
                match self
                    .poll
                    .registry()
                    .register(&mut stream, Token(i), interest)
                {
                    Ok(()) => self.clients[i].stream = Some(stream),
                    Err(e) => self.fail_attempt(i, reason(&e)),
                }
            }
            Err(e) => self.fail_attempt(i, reason(&e)),
        }
    }

    /// Ends the current attempt of client `i`; schedules a retry if any
    /// are left.
    fn fail_attempt(&mut self, i: usize, why: String) {
        let c = &mut self.clients[i];
        debug_assert!(c.phase.pending());
        c.stream = None; // closing the fd also removes it from epoll
        self.pending -= 1;
        *self.totals.attempt_failures.entry(why).or_default() += 1;
        if c.attempts <= self.cfg.retries {
            c.phase = Phase::Idle;
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << (c.attempts - 1).min(8))
                .min(MAX_BACKOFF);
            self.retries.push(Reverse((Instant::now() + backoff, i)));
        } else {
            c.phase = Phase::Failed;
            self.totals.gave_up += 1;
        }
    }

    fn disconnect(&mut self, i: usize, why: String) {
        let c = &mut self.clients[i];
        c.stream = None;
        c.phase = Phase::Disconnected;
        self.streaming -= 1;
        if self.in_window(wall_us() / 1000) {
            self.totals.window_disconnects += 1;
        }
        *self.totals.disconnects.entry(why).or_default() += 1;
    }

    /// Ends client `i`'s connection, whatever phase it is in.
    fn end(&mut self, i: usize, why: String) {
        match self.clients[i].phase {
            Phase::Streaming => self.disconnect(i, why),
            p if p.pending() => self.fail_attempt(i, why),
            _ => {}
        }
    }

    /// Handles readiness of client `i`'s socket.
    fn on_ready(&mut self, i: usize, writable: bool) {
        let Some(c) = self.clients.get_mut(i) else {
            return;
        };
        if c.stream.is_none() {
            return; // a stale event for a socket closed in this batch
        }
        if c.phase == Phase::Connecting {
            if !writable {
                return;
            }
            let stream = c.stream.as_ref().expect("checked above");
            // The mio way to learn the outcome of a non-blocking connect.
            match stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail_attempt(i, reason(&e)),
            }
            match stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return,
                Err(e) => return self.fail_attempt(i, reason(&e)),
            }
            c.connected_ms = wall_us() / 1000;
            c.phase = Phase::Requesting;
        }
        if c.phase == Phase::Requesting {
            let stream = c.stream.as_mut().expect("checked above");
            while c.written < self.cfg.request.len() {
                match stream.write(&self.cfg.request[c.written..]) {
                    Ok(n) => c.written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return self.fail_attempt(i, reason(&e)),
                }
            }
            c.phase = Phase::AwaitHead;
        }
        self.read_all(i);
    }

    /// Reads client `i`'s socket until it would block (epoll is
    /// edge-triggered), handling every item parsed.
    fn read_all(&mut self, i: usize) {
        loop {
            let c = &mut self.clients[i];
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            let n = match stream.read(&mut self.scratch) {
                Ok(0) => return self.end(i, "closed by server".into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return self.end(i, reason(&e)),
            };
            self.items.clear();
            if let Err(e) = c.parser.feed(&self.scratch[..n], &mut self.items) {
                self.totals
                    .first_protocol_error
                    .get_or_insert_with(|| e.to_string());
                return self.end(i, format!("protocol: {e}"));
            }
            let now = Instant::now();
            let now_us = wall_us();
            for k in 0..self.items.len() {
                let item = self.items[k];
                if !self.handle_item(i, item, now, now_us) {
                    return;
                }
            }
        }
    }

    /// Applies one parsed item to client `i`; false when the connection was
    /// ended because of it.
    fn handle_item(&mut self, i: usize, item: Item, now: Instant, now_us: u64) -> bool {
        let c = &mut self.clients[i];
        let t = &mut self.totals;
        match item {
            Item::Head(h) if c.phase == Phase::AwaitHead => {
                if h.status != 200 {
                    self.fail_attempt(i, format!("http {}", h.status));
                    return false;
                }
                c.phase = Phase::Streaming;
                self.pending -= 1;
                self.streaming += 1;
                t.established += 1;
            }
            Item::Head(_) => {}
            Item::Event(ev) => {
                c.events += 1;
                t.events += 1;
                if c.first_event_after.is_none() {
                    c.first_event_after = c.first_start.map(|s| now - s);
                }
                if !ev.well_formed {
                    t.malformed += 1;
                }
                match ev.id {
                    Some(EventId::Counter(_)) => t.counter_ids += 1,
                    Some(EventId::Entry { .. }) => t.entry_ids += 1,
                    None => t.no_id += 1,
                }
                match (ev.id, c.last_id) {
                    (None, _) => {}
                    (Some(id), None) => c.last_id = Some(id),
                    (Some(id), Some(last)) if id > last => {
                        if let (EventId::Counter(n), EventId::Counter(l)) = (id, last) {
                            if n != l + 1 {
                                let (jumps, ids) = if self.cfg.check_ids {
                                    (&mut t.gaps, &mut t.missing_ids)
                                } else {
                                    (&mut t.skips, &mut t.skipped_ids)
                                };
                                *jumps += 1;
                                *ids += n - l - 1;
                            }
                        }
                        c.last_id = Some(id);
                    }
                    (Some(_), Some(_)) => t.duplicates += 1,
                }
                // Live events in the window only: the snapshot sent on
                // connect was produced before the connection existed.
                let live = ev.ts.filter(|&ts| ts >= c.connected_ms);
                if let Some(ts) = live.filter(|&ts| {
                    self.window
                        .is_some_and(|(start, end)| (start..end).contains(&ts))
                }) {
                    t.window_events += 1;
                    if c.in_window {
                        c.events_window += 1;
                    }
                    let sent_us = ts.saturating_mul(1000);
                    if sent_us > now_us {
                        t.negative_latency += 1;
                    }
                    t.latency_us.record(now_us.saturating_sub(sent_us));
                }
            }
            Item::Comment => t.comments += 1,
            Item::Retry(_) => {}
            Item::End => {
                self.end(i, "end of chunked body".into());
                return false;
            }
        }
        true
    }
}

/// Opens a non-blocking TCP socket bound to `source` and starts connecting
/// it to `target`.
fn connect(source: Ipv4Addr, target: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    match socket.connect(&SocketAddr::V4(target).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) || e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// A short, stable name for an I/O error, used as a counter key.
fn reason(e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "refused".into(),
        ErrorKind::ConnectionReset => "reset".into(),
        ErrorKind::ConnectionAborted => "aborted".into(),
        ErrorKind::BrokenPipe => "broken pipe".into(),
        ErrorKind::TimedOut => "timeout".into(),
        ErrorKind::AddrNotAvailable => "address not available".into(),
        ErrorKind::AddrInUse => "address in use".into(),
        _ => e.to_string(),
    }
}

/// Microseconds since the Unix epoch.
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// `clients` reading `GET /prices` from `target`, from `sources`
    /// addresses 127.0.0.2 on, the window open from the start.
    fn test_fleet(
        target: SocketAddrV4,
        clients: usize,
        sources: u8,
        retries: u32,
        check_ids: bool,
    ) -> Fleet {
        let mut fleet = Fleet::new(FleetConfig {
            target,
            request: b"GET /prices HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            clients,
            ramp: Duration::ZERO,
            max_pending: 10,
            connect_timeout: Duration::from_secs(5),
            retries,
            sources: (0..sources)
                .map(|k| Ipv4Addr::new(127, 0, 0, 2 + k))
                .collect(),
            check_ids,
        })
        .unwrap();
        fleet.open_window(0, u64::MAX);
        fleet
    }

    /// Steps `fleet` until `done` holds of it, for 5 s at most.
    fn step_until(fleet: &mut Fleet, done: impl Fn(&Fleet) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(fleet) && Instant::now() < deadline {
            fleet.step(Duration::from_millis(10)).unwrap();
        }
    }

    /// A fleet against a std listener that answers with a fixed response:
    /// checks connect, request, head, snapshot skipping and id accounting.
    #[test]
    fn reads_events_and_counts_gaps() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = match listener.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let now_ms = wall_us() / 1000;
        let server = std::thread::spawn(move || {
            let mut conns = Vec::new();
            for _ in 0..3 {
                let (mut s, _) = listener.accept().unwrap();
                let mut req = [0u8; 256];
                let n = s.read(&mut req).unwrap();
                assert!(req[..n].starts_with(b"GET /prices HTTP/1.1\r\n"));
                let ev = |id: u64, ts: u64| {
                    format!("id: {id}\ndata: {{\"symbol\":\"BTC\",\"price\":1.5,\"ts\":{ts}}}\n\n")
                };
                let mut body =
                    String::from("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nretry: 3000\n\n");
                body += &ev(10, 1); // snapshot: old ts, no latency
                body += &ev(11, now_ms + 100_000);
                body += &ev(13, now_ms + 100_000); // a gap of one
                body += &ev(13, now_ms + 100_000); // a duplicate
                body += ": heartbeat\n\n";
                s.write_all(body.as_bytes()).unwrap();
                conns.push(s);
            }
            conns
        });
        let mut fleet = test_fleet(addr, 3, 2, 0, true);
        step_until(&mut fleet, |f| f.totals().comments >= 3);
        let conns = server.join().unwrap();
        let t = fleet.totals();
        assert_eq!((t.established, fleet.streaming()), (3, 3));
        assert_eq!((t.events, t.window_events, t.comments), (12, 9, 3));
        assert_eq!((t.gaps, t.missing_ids, t.duplicates), (3, 3, 3));
        assert_eq!((t.malformed, t.no_id), (0, 0));
        assert_eq!(t.latency_us.count(), 9, "snapshot events are not timed");
        assert_eq!(t.negative_latency, 9);
        assert!(fleet.all_settled());
        drop(conns);
        step_until(&mut fleet, |f| f.streaming() == 0);
        assert_eq!(fleet.totals().disconnects.get("closed by server"), Some(&3));
    }

    /// One client against a server that sends live events with `ids` (and
    /// a heartbeat), then holds the connection: the totals once it is read.
    fn one_client(ids: &'static [&'static str], check_ids: bool) -> Totals {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
            unreachable!()
        };
        let ts = wall_us() / 1000 + 100_000;
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 256];
            let _ = s.read(&mut req).unwrap();
            let mut body = String::from("HTTP/1.1 200 OK\r\n\r\nretry: 3000\n\n");
            for id in ids {
                body += &format!(
                    "id: {id}\ndata: {{\"symbol\":\"BTC\",\"price\":1.5,\"ts\":{ts}}}\n\n"
                );
            }
            body += ": heartbeat\n\n";
            s.write_all(body.as_bytes()).unwrap();
            s
        });
        let mut fleet = test_fleet(addr, 1, 1, 0, check_ids);
        step_until(&mut fleet, |f| f.totals().comments >= 1);
        let _conn = server.join().unwrap();
        fleet.totals().clone()
    }

    /// The redis feed's `MS-SEQ` ids: ordered by their two numbers (not as
    /// text) for the duplicate and backward checks; gaps are not judged.
    #[test]
    fn entry_ids_are_ordered_and_never_gaps() {
        let t = one_client(
            &[
                "9-5",
                "10-0",
                "10-2",
                "10-10", // increasing, 10-2 < 10-10
                "10-10", // a duplicate
                "10-9",  // backward
                "11-0",
                "1764028800123-0",
            ],
            true,
        );
        assert_eq!(
            (t.events, t.entry_ids, t.counter_ids, t.no_id),
            (8, 8, 0, 0)
        );
        assert_eq!((t.duplicates, t.gaps, t.missing_ids, t.skips), (2, 0, 0, 0));
    }

    /// A conflated (or filtered) stream: decimal ids jump by design, counted
    /// as skips, not gaps; duplicates still count.
    #[test]
    fn expected_jumps_are_skips() {
        let t = one_client(&["100", "130", "160", "161", "161"], false);
        assert_eq!((t.events, t.counter_ids), (5, 5));
        assert_eq!((t.gaps, t.missing_ids), (0, 0));
        assert_eq!((t.skips, t.skipped_ids, t.duplicates), (2, 58, 1));
    }

    /// Refused connections are retried, then given up.
    #[test]
    fn refused_connections_retry_then_give_up() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // the listener is closed here: connects are refused
        let mut fleet = test_fleet(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), 2, 1, 1, true);
        step_until(&mut fleet, |f| f.totals().gave_up >= 2);
        let t = fleet.totals();
        assert_eq!((t.attempts, t.gave_up, t.established), (4, 2, 0));
        assert_eq!(t.attempt_failures.get("refused"), Some(&4));
        assert!(fleet.all_settled());
    }
}
