//! Writing one client's event stream: head, `retry:`, catch-up, then live
//! ticks as the hub queues them and a heartbeat after silence, until a
//! write fails (the client left), the socket accepts nothing for
//! `--write-timeout`, or the hub drops the client as slow.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use crate::http::{Request, Response, Version};
use crate::hub::{Filter, Next, Subscription};
use crate::metrics::{DisconnectReason, Metrics};
use crate::server::connection::{linger_close, respond, timed_out, to_bytes};
use crate::server::routes::{too_many_clients, StreamParams};
use crate::server::Shared;
use crate::sse;

/// Catch-up and drained backlogs are written in pieces of about this size,
/// so a client's buffer never holds much more.
const WRITE_PIECE_BYTES: usize = 64 * 1024;

/// Serves a stream request: takes a place among `--max-clients` (503 past
/// it), then writes the stream until it ends and logs why.
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    request: &Request,
    params: StreamParams,
    shared: &Shared,
) {
    let Some(_place) = shared.clients.try_enter() else {
        return respond(&stream, too_many_clients(&shared.config), false, shared);
    };
    let _ = stream.set_write_timeout(Some(shared.config.write_timeout));
    if params.head_only {
        // HEAD: the head a stream would start with, not counted as a stream.
        let _ = (&stream).write_all(&to_bytes(Response::event_stream(), true, shared));
        return linger_close(&stream);
    }
    let _ = stream.set_nodelay(true);
    shared.metrics.connected();
    let started = Instant::now();
    let mut subscription = shared.hub.subscribe(params.filter, params.last_event_id);
    let mut writer = EventWriter {
        stream,
        metrics: &shared.metrics,
        events_sent: 0,
    };
    let reason = writer.run(&mut subscription, shared);
    shared.metrics.disconnected(reason);
    if !shared.config.quiet {
        let path = match request.query.as_str() {
            "" => request.path.clone(),
            query => format!("{}?{query}", request.path),
        };
        let version = match request.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        crate::log!(
            "tickstream: {peer} {path} {version} ended after {:.1}s, {} events sent: {}",
            started.elapsed().as_secs_f64(),
            writer.events_sent,
            reason.as_str()
        );
    }
}

/// Writes one client's stream.
struct EventWriter<'a> {
    stream: TcpStream,
    metrics: &'a Metrics,
    events_sent: u64,
}

impl EventWriter<'_> {
    /// Writes head, `retry:`, catch-up, then live ticks and heartbeats until
    /// the connection must end; returns why.
    fn run(&mut self, sub: &mut Subscription, shared: &Shared) -> DisconnectReason {
        match self.stream_all(sub, shared) {
            Ok(never) => match never {},
            Err(reason) => reason,
        }
    }

    fn stream_all(
        &mut self,
        sub: &mut Subscription,
        shared: &Shared,
    ) -> Result<Never, DisconnectReason> {
        let mut buf = to_bytes(Response::event_stream(), false, shared);
        sse::push_retry(&mut buf, shared.config.retry.as_millis());
        let mut events = 0;
        // Taken, so the ticks it holds are released once written.
        for run in std::mem::take(&mut sub.catch_up) {
            events += run.tick.append_to(&mut buf, run.events, &sub.filter);
            if buf.len() >= WRITE_PIECE_BYTES {
                self.write(sub, &buf, std::mem::take(&mut events))?;
                buf.clear();
            }
        }
        self.write(sub, &buf, events)?;
        // The live path needs a buffer only for filtered or bunched ticks:
        // free the catch-up's (an assignment drops it; shadowing would not).
        buf = Vec::new();
        let heartbeat = shared.config.heartbeat;
        let mut last_write = Instant::now();
        loop {
            let wait = heartbeat.saturating_sub(last_write.elapsed());
            let tick = match sub.next(wait) {
                Next::Tick(tick) => tick,
                Next::Idle => {
                    self.write(sub, sse::HEARTBEAT, 0)?;
                    last_write = Instant::now();
                    continue;
                }
                Next::Dropped => return Err(DisconnectReason::Slow),
            };
            let oldest = tick.published();
            // Drain whatever else is queued, so a client that fell behind
            // catches up in few writes.
            let mut next = sub.try_next();
            if next.is_none() && matches!(*sub.filter, Filter::All) {
                self.write(sub, tick.bytes(), tick.len())?;
            } else {
                buf.clear();
                let mut events = tick.append_to(&mut buf, 0..tick.len(), &sub.filter);
                while let Some(Next::Tick(tick)) = next {
                    if buf.len() >= WRITE_PIECE_BYTES {
                        self.write(sub, &buf, std::mem::take(&mut events))?;
                        buf.clear();
                    }
                    events += tick.append_to(&mut buf, 0..tick.len(), &sub.filter);
                    next = sub.try_next();
                }
                self.write(sub, &buf, events)?;
                if buf.capacity() > 2 * WRITE_PIECE_BYTES {
                    buf = Vec::new(); // One big tick must not stay resident.
                }
                if let Some(Next::Dropped) = next {
                    return Err(DisconnectReason::Slow);
                }
            }
            self.metrics.delivered_after(oldest.elapsed());
            last_write = Instant::now();
        }
    }

    /// Writes all of `bytes` (holding `events` events). Ends the connection
    /// if the socket accepts no byte for the write timeout (SO_SNDTIMEO,
    /// set at the start of the stream), or if the hub drops this client
    /// while the write is still going.
    fn write(
        &mut self,
        sub: &Subscription,
        bytes: &[u8],
        events: usize,
    ) -> Result<(), DisconnectReason> {
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) => return Err(DisconnectReason::Closed),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if timed_out(&e) => return Err(DisconnectReason::WriteTimeout),
                Err(_) => return Err(DisconnectReason::Closed),
            }
            if written < bytes.len() && sub.is_dropped() {
                return Err(DisconnectReason::Slow);
            }
        }
        self.metrics.sent(events, bytes.len());
        self.events_sent += events as u64;
        Ok(())
    }
}

/// A type with no values: `stream_all` only ever returns an error.
enum Never {}
