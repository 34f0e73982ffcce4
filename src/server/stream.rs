//! Writing one client's event stream: head, `retry:`, catch-up, then live
//! ticks as the hub queues them (or, conflated, the newest events once per
//! period) and a heartbeat after silence, until a write fails (the client
//! left), the socket accepts nothing for `--write-timeout`, or the hub
//! drops the client as slow.

use std::convert::Infallible;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{Request, Response, Version};
use crate::hub::{EventRun, Subscription};
use crate::metrics::DisconnectReason;
use crate::server::access::{self, too_many_streams};
use crate::server::reply::{respond, timed_out, to_bytes};
use crate::server::routes::{too_many_clients, StreamParams};
use crate::server::Shared;
use crate::sse;

/// Catch-up and drained backlogs are written in pieces of about this size,
/// so a client's buffer never holds much more.
const WRITE_PIECE_BYTES: usize = 64 * 1024;
/// A write blocked on a full socket looks up this often to see whether the
/// hub dropped the client or the server is stopping (`SO_SNDTIMEO`).
const WRITE_SLICE: Duration = Duration::from_millis(250);

/// Serves a stream request: takes a place among `--max-clients` (503 past
/// it), then writes the stream until it ends and logs why. Never inlined,
/// so the connection's frame below it stays small: what ran before it
/// (reading the head, routing, a token's verification) then never adds to
/// the stack the stream keeps for its whole life (BENCHMARKS.md).
#[inline(never)]
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    request: &Request,
    params: StreamParams,
    head: Vec<u8>,
    shared: &Shared,
) {
    let Some(place) = shared.clients.try_enter() else {
        return refuse(&stream, too_many_clients, params.head_only, shared);
    };
    if params.head_only {
        // HEAD: the head a stream would start with, not counted as a stream;
        // its place was only the check, given back before the linger.
        drop(place);
        return refuse(&stream, |_| Response::event_stream(), true, shared);
    }
    let sub = params.sub.as_deref();
    let limit = shared.config.max_streams_per_sub;
    let _sub_place = match sub.filter(|_| limit > 0) {
        None => None,
        Some(sub) => match shared.subscribers.enter(sub, limit) {
            None => return refuse(&stream, too_many_streams, false, shared),
            place => place,
        },
    };
    let _ = stream.set_write_timeout(Some(shared.config.write_timeout.min(WRITE_SLICE)));
    let _ = stream.set_nodelay(true);
    shared.metrics.connected();
    let started = Instant::now();
    let throttle = params.wants.throttle;
    let mut subscription = shared.hub.subscribe(params.wants);
    let mut writer = EventWriter {
        stream,
        shared,
        events_sent: 0,
        expires: params.expires,
    };
    let reason = writer.run(&mut subscription, head, throttle);
    shared.metrics.disconnected(reason);
    if !shared.config.quiet {
        let ended = (started.elapsed(), writer.events_sent, reason);
        log_ended(peer, request, sub, ended);
    }
}

/// The log line of an ended stream: peer, path (a token redacted), the
/// token's subscriber, duration, events sent, why. Out of line, so that its
/// formatting does not deepen the stream's frame (BENCHMARKS.md).
#[cold]
#[inline(never)]
fn log_ended(
    peer: SocketAddr,
    request: &Request,
    sub: Option<&str>,
    (lasted, events, reason): (Duration, u64, DisconnectReason),
) {
    let path = access::logged_path(request);
    let sub = sub.map_or(String::new(), |sub| format!(" (sub {sub:?})"));
    let version = match request.version {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    };
    crate::log!(
        "tickstream: {peer} {path}{sub} {version} ended after {:.1}s, {events} events sent: {}",
        lasted.as_secs_f64(),
        reason.as_str()
    );
}

/// The bytes a stream starts with: its response head and `retry:`. Made
/// by the caller of [`serve`], before serve's frame is on the stack: the
/// formatting (the `Date`) is the deepest call of a stream's life, and below
/// serve it touched a third stack page per client (BENCHMARKS.md).
pub fn head_bytes(shared: &Shared) -> Vec<u8> {
    let mut head = to_bytes(Response::event_stream(), false, shared);
    sse::push_retry(&mut head, shared.config.retry.as_millis());
    head
}

/// Answers a stream request with `response` instead of the stream. Cold and
/// never inlined, so the response's locals stay out of the stream's frame.
#[cold]
#[inline(never)]
fn refuse(
    stream: &TcpStream,
    response: fn(&crate::config::Config) -> Response,
    head_only: bool,
    shared: &Shared,
) {
    respond(stream, response(&shared.config), head_only, shared)
}

/// Writes one client's stream.
struct EventWriter<'a> {
    stream: TcpStream,
    shared: &'a Shared,
    events_sent: u64,
    /// When the stream's token expires.
    expires: Option<Instant>,
}

impl EventWriter<'_> {
    /// Writes head, `retry:`, catch-up, then events and heartbeats until
    /// the connection must end; returns why.
    fn run(
        &mut self,
        sub: &mut Subscription,
        head: Vec<u8>,
        throttle: Option<Duration>,
    ) -> DisconnectReason {
        let config = &self.shared.config;
        // Taken, so the ticks it holds are released once written.
        let catch_up = std::mem::take(&mut sub.catch_up);
        let result = self
            .write_runs(sub, head, catch_up)
            .and_then(|()| match throttle {
                None => self.live(sub, config.heartbeat),
                Some(period) => self.conflated(sub, period, config.heartbeat),
            });
        let Err(reason) = result;
        reason
    }

    /// Writes `buf`, then the events of `runs`, in pieces of about
    /// [`WRITE_PIECE_BYTES`].
    fn write_runs(
        &mut self,
        sub: &Subscription,
        mut buf: Vec<u8>,
        runs: Vec<EventRun>,
    ) -> Result<(), DisconnectReason> {
        let mut events = 0;
        for run in runs {
            events += run.tick.append_to(&mut buf, run.events, &sub.selection);
            if buf.len() >= WRITE_PIECE_BYTES {
                self.write(sub, &buf, std::mem::take(&mut events))?;
                buf.clear();
            }
        }
        self.write(sub, &buf, events)
    }

    /// Every tick the hub queues, as soon as it is queued.
    fn live(
        &mut self,
        sub: &Subscription,
        heartbeat: Duration,
    ) -> Result<Infallible, DisconnectReason> {
        let mut buf = Vec::new();
        let mut last_write = Instant::now();
        loop {
            let wait = self.before_expiry(heartbeat.saturating_sub(last_write.elapsed()))?;
            let Some(tick) = sub.next(wait)? else {
                if last_write.elapsed() >= heartbeat {
                    self.write(sub, sse::HEARTBEAT, 0)?;
                    last_write = Instant::now();
                }
                continue;
            };
            let oldest = tick.published;
            // Drain whatever else is queued, so a client that fell behind
            // catches up in few writes.
            let mut next = sub.try_next();
            if matches!(next, Ok(None)) && sub.selection.takes_whole(&tick) {
                self.write(sub, &tick.prices, tick.len())?;
            } else {
                buf.clear();
                let mut events = tick.append_to(&mut buf, 0..tick.len(), &sub.selection);
                while let Ok(Some(tick)) = next {
                    if buf.len() >= WRITE_PIECE_BYTES {
                        self.write(sub, &buf, std::mem::take(&mut events))?;
                        buf.clear();
                    }
                    events += tick.append_to(&mut buf, 0..tick.len(), &sub.selection);
                    next = sub.try_next();
                }
                self.write(sub, &buf, events)?;
                if buf.capacity() > 2 * WRITE_PIECE_BYTES {
                    buf = Vec::new(); // One big tick must not stay resident.
                }
                next?;
            }
            self.shared.metrics.delivered_after(oldest.elapsed());
            last_write = Instant::now();
        }
    }

    /// At most one write of events per `period`: the newest event of each
    /// symbol that changed since the last one. The thread sleeps through
    /// the period (waking only for heartbeats, which do not count); once it
    /// is up, the hub wakes it at the first publish it takes, so streams of
    /// one period wake together, with a tick, rather than each on a timer of
    /// its own (BENCHMARKS.md, issue 17: 5,000 streams `?throttle=1s` on a
    /// 100 ms feed took 1.63x the CPU of a 1 s feed, now 1.06-1.21x, and
    /// their p99 went from 100 ms to 8 ms).
    fn conflated(
        &mut self,
        sub: &mut Subscription,
        period: Duration,
        heartbeat: Duration,
    ) -> Result<Infallible, DisconnectReason> {
        let mut due = Instant::now() + period;
        let mut last_write = Instant::now();
        loop {
            let until_expiry = self.before_expiry(heartbeat)?;
            let now = Instant::now();
            if now < due {
                sub.wake_at(due);
            } else {
                // With nothing new, the hub wakes us at the next event.
                let runs = sub.newest_since();
                if !runs.is_empty() {
                    self.write_runs(sub, Vec::new(), runs)?;
                    last_write = Instant::now();
                    // The next period follows this one, unless this write
                    // came a whole period late (the feed was quiet).
                    due = match now < due + period {
                        true => due + period,
                        false => now + period,
                    };
                    continue;
                }
            }
            let next_heartbeat = last_write + heartbeat;
            if now >= next_heartbeat {
                self.write(sub, sse::HEARTBEAT, 0)?;
                last_write = Instant::now();
                continue;
            }
            pause_until(sub, next_heartbeat.min(now + until_expiry))?;
        }
    }

    /// `wait`, cut short at the token's expiry; `Expired` once it passed.
    fn before_expiry(&self, wait: Duration) -> Result<Duration, DisconnectReason> {
        let Some(expires) = self.expires else {
            return Ok(wait);
        };
        match expires.saturating_duration_since(Instant::now()) {
            left if left.is_zero() => Err(DisconnectReason::Expired),
            left => Ok(wait.min(left)),
        }
    }

    /// Writes all of `bytes` (holding `events` events). Ends the connection
    /// if the socket accepts no byte for `--write-timeout`, and, within a
    /// [`WRITE_SLICE`], if the hub drops this client as slow or the server
    /// stops while the write is still going.
    fn write(
        &mut self,
        sub: &Subscription,
        bytes: &[u8],
        events: usize,
    ) -> Result<(), DisconnectReason> {
        let mut written = 0;
        let mut progress = Instant::now();
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) => return Err(DisconnectReason::Closed),
                Ok(n) => {
                    written += n;
                    progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if timed_out(&e) => {
                    if progress.elapsed() >= self.shared.config.write_timeout {
                        return Err(DisconnectReason::WriteTimeout);
                    }
                }
                Err(_) => return Err(DisconnectReason::Closed),
            }
            if let Some(reason) = sub.ended().filter(|_| written < bytes.len()) {
                return Err(reason);
            }
        }
        self.shared.metrics.sent(events, bytes.len());
        self.events_sent += events as u64;
        Ok(())
    }
}

/// Sleeps until `deadline`, or until the thread is unparked (the hub has
/// news for a conflated stream that asked, or the server is stopping); ends
/// the stream if the server is stopping.
fn pause_until(sub: &Subscription, deadline: Instant) -> Result<(), DisconnectReason> {
    let left = deadline.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        thread::park_timeout(left);
    }
    sub.ended().map_or(Ok(()), Err)
}
