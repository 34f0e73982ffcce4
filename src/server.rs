//! The network edge, and the only module that owns a `TcpStream`: the accept
//! loop, one thread per connection, routing, plain responses and the event
//! stream.
//!
//! Life of a connection: the accept loop checks the number of connections
//! still sending their heads (503 past [`MAX_PENDING_HEADS`], answered
//! without a thread), then spawns a small-stack thread. The thread reads the
//! head, bounded in bytes and by `--header-timeout` from the connect, and
//! answers. A stream takes a client slot (503 past `--max-clients`),
//! subscribes to the hub, writes head, `retry:` and catch-up, then writes
//! whatever its queue holds each time it wakes, or a heartbeat after
//! silence, until a write fails, times out, or the hub drops it as slow.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{is_valid_symbol, Config, FeedKind, MAX_SYMBOLS};
use crate::http::{self, Method, Parsed, Reject, Request, Response, Version};
use crate::hub::{Filter, Hub, Next, Subscription};
use crate::metrics::{DisconnectReason, Metrics};
use crate::{feed, sse};

/// Connections allowed to be sending their request heads at once; more are
/// answered 503 by the accept loop itself, so slow senders cannot pile up
/// threads.
pub const MAX_PENDING_HEADS: usize = 1024;
/// Stack of a connection thread. The deepest path touches 12 KiB of it;
/// a panic that prints a backtrace overflows 16 KiB (and a stack overflow
/// ends the whole process), so this is twice the smallest size that
/// survives one. Only touched pages cost memory (BENCHMARKS.md).
pub const CONNECTION_STACK_BYTES: usize = 64 * 1024;
/// First size of the buffer a head is read into; it grows to
/// [`http::MAX_HEAD_BYTES`] only for large heads.
const HEAD_BUFFER_START_BYTES: usize = 1024;
/// Catch-up and drained backlogs are written in pieces of about this size,
/// so a client's buffer never holds much more.
const WRITE_PIECE_BYTES: usize = 64 * 1024;
/// After an error answer, how long and how much of the rest of the request
/// is read and dropped before closing, so the answer is not lost to a TCP
/// reset (RFC 9112 §9.6).
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;
/// Pause after a failed `accept` or thread spawn (out of file descriptors,
/// threads or memory) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The page served at `/`.
const PAGE: &str = include_str!("page.html");

/// What every connection thread shares.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The broadcast point.
    pub hub: Arc<Hub>,
    /// The counters.
    pub metrics: Metrics,
    /// Set when the feed has ended (stdin at EOF).
    pub feed_ended: AtomicBool,
    pending_heads: AtomicUsize,
    connection_threads: AtomicUsize,
    /// Connection threads allowed at once (see [`crate::sys::thread_budget`]).
    thread_budget: usize,
}

impl Shared {
    /// State for a server with this configuration and hub, allowed
    /// `thread_budget` connection threads at once.
    pub fn new(config: Config, hub: Arc<Hub>, metrics: Metrics, thread_budget: usize) -> Shared {
        Shared {
            config,
            hub,
            metrics,
            feed_ended: AtomicBool::new(false),
            pending_heads: AtomicUsize::new(0),
            connection_threads: AtomicUsize::new(0),
            thread_budget,
        }
    }
}

/// Marks the feed as ended when dropped: at its end, or if it panics.
pub struct FeedGuard(pub Arc<Shared>);

impl Drop for FeedGuard {
    fn drop(&mut self) {
        self.0.feed_ended.store(true, Ordering::Relaxed);
    }
}

/// Runs the accept loop forever.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut last_complaint: Option<Instant> = None;
    let mut complain = |what: &str, error: &io::Error| {
        // At most one line a second, however long the trouble lasts.
        if last_complaint.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            crate::log!("tickstream: {what}: {error}; backing off");
            last_complaint = Some(Instant::now());
        }
        thread::sleep(ACCEPT_BACKOFF);
    };
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                complain("cannot accept", &e);
                continue;
            }
        };
        let connected_at = Instant::now();
        if shared.pending_heads.load(Ordering::Relaxed) >= MAX_PENDING_HEADS {
            answer_busy(stream, &shared, Reject::Busy.message());
            continue;
        }
        if shared.connection_threads.load(Ordering::Relaxed) >= shared.thread_budget {
            answer_busy(stream, &shared, "server at its thread limit; retry later");
            continue;
        }
        let pending = Counted::new(&shared, pending_heads);
        let thread = Counted::new(&shared, connection_threads);
        let thread_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("tickstream-conn".into())
            .stack_size(CONNECTION_STACK_BYTES)
            .spawn(move || {
                let _thread = thread;
                handle(stream, peer, connected_at, pending, &thread_shared)
            });
        // On failure the closure, the stream and the pending mark are dropped:
        // the client sees the connection close.
        if let Err(e) = spawned {
            complain("cannot spawn a connection thread", &e);
        }
    }
}

/// The error a socket read or write gives when its timeout
/// (`SO_RCVTIMEO` / `SO_SNDTIMEO`) runs out.
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Errors of `accept` that concern one connection only.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// The 503 for a connection over [`MAX_PENDING_HEADS`] or the thread
/// budget, written by the accept loop without blocking: a new socket's send
/// buffer is empty.
fn answer_busy(stream: TcpStream, shared: &Shared, message: &str) {
    let response = Response::error(503, message).with_header("Retry-After", "1");
    shared.metrics.rejected(503);
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write(&response.to_bytes(false, SystemTime::now()));
    // Read what already arrived, so closing sends a FIN rather than a reset
    // that could destroy the answer before the client reads it.
    let mut scratch = [0u8; 1024];
    for _ in 0..16 {
        if !matches!((&stream).read(&mut scratch), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Holds one unit of a counter of [`Shared`] while alive: a connection
/// still sending its head, or a connection thread (if the spawn fails, until
/// the closure holding it is dropped).
struct Counted {
    shared: Arc<Shared>,
    counter: fn(&Shared) -> &AtomicUsize,
}

impl Counted {
    fn new(shared: &Arc<Shared>, counter: fn(&Shared) -> &AtomicUsize) -> Counted {
        counter(shared).fetch_add(1, Ordering::Relaxed);
        Counted {
            shared: Arc::clone(shared),
            counter,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        (self.counter)(&self.shared).fetch_sub(1, Ordering::Relaxed);
    }
}

fn pending_heads(shared: &Shared) -> &AtomicUsize {
    &shared.pending_heads
}

fn connection_threads(shared: &Shared) -> &AtomicUsize {
    &shared.connection_threads
}

/// A connection thread: read the head, then answer it.
fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    connected_at: Instant,
    pending: Counted,
    shared: &Shared,
) {
    let deadline = connected_at + shared.config.header_timeout;
    let head = read_head(&stream, deadline);
    drop(pending);
    match head {
        Ok(Some(request)) => route(stream, peer, request, shared),
        Ok(None) => {} // The client left before finishing its head.
        Err(reject) => {
            let mut response = Response::error(reject.status(), reject.message());
            if reject == Reject::Method {
                response = response.with_header("Allow", ALLOW);
            }
            respond(&stream, response, false, shared);
        }
    }
}

const ALLOW: &str = "GET, HEAD, OPTIONS";

/// Reads until the head is complete, a limit is passed, the deadline
/// passes, or the client goes away (`Ok(None)`).
fn read_head(mut stream: &TcpStream, deadline: Instant) -> Result<Option<Request>, Reject> {
    let mut buf = vec![0; HEAD_BUFFER_START_BYTES];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Reject::Timeout);
        }
        if len == buf.len() {
            buf.resize((2 * len).min(http::MAX_HEAD_BYTES), 0);
        }
        let n = match stream.read(&mut buf[len..]) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if timed_out(&e) => return Err(Reject::Timeout),
            Err(_) => return Ok(None),
        };
        let new_line = buf[len..len + n].contains(&b'\n');
        len += n;
        if new_line || len > http::MAX_REQUEST_LINE_BYTES + 1 {
            match http::parse_head(&buf[..len])? {
                Parsed::Complete(request) => return Ok(Some(request)),
                // A full buffer the parser still calls Partial (only leading
                // empty lines can do that) is too large all the same.
                Parsed::Partial if len >= http::MAX_HEAD_BYTES => return Err(Reject::HeadTooLarge),
                Parsed::Partial => {}
            }
        }
    }
}

/// Answers a complete request.
fn route(stream: TcpStream, peer: SocketAddr, request: Request, shared: &Shared) {
    let head_only = request.method == Method::Head;
    let response = match (request.method, request.path.as_str()) {
        (Method::Options, "/prices" | "/" | "/healthz" | "/metrics" | "*") => preflight(shared),
        (_, "/prices") => match stream_params(&request, shared) {
            Err(response) => response,
            Ok((filter, last_event_id)) if !head_only => {
                return serve_stream(stream, peer, &request, filter, last_event_id, shared)
            }
            Ok(_) if shared.metrics.clients_connected() >= shared.config.max_clients as u64 => {
                too_many_clients(shared)
            }
            Ok(_) => {
                let head = stream_head(shared);
                let _ = stream.set_write_timeout(Some(shared.config.write_timeout));
                let _ = (&stream).write_all(&head);
                return linger_close(&stream);
            }
        },
        (_, "/") => Response::new(200, "text/html; charset=utf-8", PAGE)
            .with_header("Cache-Control", "no-cache"),
        (_, "/healthz") if shared.feed_ended.load(Ordering::Relaxed) => {
            Response::error(503, "feed ended")
        }
        (_, "/healthz") => Response::new(200, http::TEXT_PLAIN, "ok\n"),
        (_, "/metrics") => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render(),
        ),
        _ => {
            // The path is percent-decoded: escape it so the answer stays one
            // short line whatever it holds.
            let shown: String = request.path.escape_debug().take(200).collect();
            Response::error(404, &format!("no such path: {shown}"))
        }
    };
    respond(&stream, response, head_only, shared)
}

/// Reads `?symbols=` and the last event id (the `Last-Event-ID` header wins
/// over `?lastEventId=`, since a browser resuming a URL that has the query
/// sends the newer id in the header).
fn stream_params(request: &Request, shared: &Shared) -> Result<(Filter, Option<u64>), Response> {
    let mut symbols: Vec<String> = Vec::new();
    let mut query_id = None;
    for (key, value) in http::query_pairs(&request.query) {
        // The parser has already checked every escape.
        let (key, value) = (key.unwrap_or_default(), value.unwrap_or_default());
        match key.as_str() {
            "symbols" => {
                for symbol in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let symbol = check_symbol(symbol, shared)?;
                    if !symbols.contains(&symbol) {
                        symbols.push(symbol);
                    }
                }
            }
            "lastEventId" => query_id = sse::parse_last_event_id(&value),
            _ => {}
        }
    }
    if symbols.len() > MAX_SYMBOLS {
        return Err(Response::error(
            400,
            &format!("too many symbols: at most {MAX_SYMBOLS} per stream"),
        ));
    }
    let header_id = request
        .last_event_id
        .as_deref()
        .and_then(sse::parse_last_event_id);
    Ok((Filter::only(symbols), header_id.or(query_id)))
}

fn check_symbol(symbol: &str, shared: &Shared) -> Result<String, Response> {
    let sim = shared.config.feed == FeedKind::Sim;
    // With the sim feed the answer names the valid symbols.
    let valid = || {
        if sim {
            format!("; valid symbols: {}", shared.config.symbols.join(", "))
        } else {
            String::new()
        }
    };
    if !is_valid_symbol(symbol.as_bytes()) {
        let shown: String = symbol.chars().take(32).collect();
        return Err(Response::error(
            400,
            &format!(
                "invalid symbol {shown:?}: 1 to 16 of A-Z 0-9 . _ -{}",
                valid()
            ),
        ));
    }
    let symbol = symbol.to_ascii_uppercase();
    if sim && !shared.config.symbols.contains(&symbol) {
        return Err(Response::error(
            400,
            &format!("unknown symbol {symbol}{}", valid()),
        ));
    }
    Ok(symbol)
}

fn preflight(shared: &Shared) -> Response {
    let mut response = Response::new(204, http::TEXT_PLAIN, "").with_header("Allow", ALLOW);
    if shared.config.cors_origin.is_some() {
        response = response
            .with_header("Access-Control-Allow-Methods", ALLOW)
            .with_header(
                "Access-Control-Allow-Headers",
                "Last-Event-ID, Cache-Control",
            )
            .with_header("Access-Control-Max-Age", "86400");
    }
    response
}

fn too_many_clients(shared: &Shared) -> Response {
    let limit = shared.config.max_clients;
    let retry_secs = shared.config.retry.as_secs_f64().ceil().max(1.0);
    Response::error(
        503,
        &format!("too many clients (limit {limit}); retry later"),
    )
    .with_header("Retry-After", format!("{retry_secs}"))
}

/// Writes a complete response (counting error answers) and closes.
fn respond(stream: &TcpStream, mut response: Response, head_only: bool, shared: &Shared) {
    if response.status >= 400 {
        shared.metrics.rejected(response.status);
    }
    if let Some(origin) = &shared.config.cors_origin {
        response = response.with_header("Access-Control-Allow-Origin", origin.clone());
    }
    let _ = stream.set_write_timeout(Some(shared.config.write_timeout));
    let mut writer = stream;
    let _ = writer.write_all(&response.to_bytes(head_only, SystemTime::now()));
    linger_close(stream);
}

/// Half-closes, then reads and drops what the client still sends, for a
/// bounded time, so that closing does not reset the connection before the
/// client has read the answer.
fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER_TIME;
    let mut drained = 0;
    let mut scratch = [0u8; 512];
    let mut reader = stream;
    while drained < LINGER_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match reader.read(&mut scratch) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// The head of the event stream (close-delimited for HTTP/1.0 and 1.1).
fn stream_head(shared: &Shared) -> Vec<u8> {
    let mut head = http::status_line(200);
    head.push_str("Date: ");
    head.push_str(&http::http_date(SystemTime::now()));
    head.push_str(
        "\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
         Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n",
    );
    if let Some(origin) = &shared.config.cors_origin {
        head.push_str("Access-Control-Allow-Origin: ");
        head.push_str(origin);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

/// Holds a client slot; gives it back, with the reason, when dropped (also
/// if the thread unwinds).
struct ClientSlot<'a> {
    metrics: &'a Metrics,
    reason: DisconnectReason,
}

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        self.metrics.disconnect(self.reason);
    }
}

fn serve_stream(
    stream: TcpStream,
    peer: SocketAddr,
    request: &Request,
    filter: Filter,
    last_event_id: Option<u64>,
    shared: &Shared,
) {
    if !shared.metrics.try_connect(shared.config.max_clients) {
        return respond(&stream, too_many_clients(shared), false, shared);
    }
    let mut slot = ClientSlot {
        metrics: &shared.metrics,
        reason: DisconnectReason::Closed,
    };
    let started = Instant::now();
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(shared.config.write_timeout));
    let mut subscription = shared.hub.subscribe(filter, last_event_id);
    let mut writer = EventWriter {
        stream,
        metrics: &shared.metrics,
        events_sent: 0,
    };
    slot.reason = writer.run(&mut subscription, shared);
    if !shared.config.quiet {
        let path = if request.query.is_empty() {
            request.path.clone()
        } else {
            format!("{}?{}", request.path, request.query)
        };
        let version = match request.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        crate::log!(
            "tickstream: {peer} {path} {version} ended after {:.1}s, {} events sent: {}",
            started.elapsed().as_secs_f64(),
            writer.events_sent,
            slot.reason.as_str()
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
        let mut buf = stream_head(shared);
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

/// Binds, prints the listening line, starts the feed thread and serves
/// forever. `signal_stacks_dropped` says whether
/// [`crate::sys::drop_signal_stacks`] worked, which sets how many
/// connection threads the memory-mapping limit allows.
pub fn start(config: Config, signal_stacks_dropped: bool) -> Result<(), StartError> {
    let listener = TcpListener::bind(config.addr).map_err(|e| StartError::Bind(config.addr, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| StartError::Bind(config.addr, e))?;
    crate::log!(
        "tickstream {} listening on http://{local}/",
        env!("CARGO_PKG_VERSION")
    );
    if let Err(e) = crate::sys::widen_backlog(&listener) {
        crate::log!("tickstream: cannot widen the listen backlog beyond 128: {e}");
    }
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Ids start at the boot time in microseconds: above any id an earlier
    // run could have issued (unless it published a million events a second).
    let first_id = started.as_micros() as u64;
    let hub = Hub::new(first_id, config.history, config.client_queue);
    let mappings = crate::sys::mappings_per_thread(signal_stacks_dropped);
    let thread_budget = crate::sys::thread_budget(mappings);
    if config.max_clients + MAX_PENDING_HEADS > thread_budget {
        crate::log!(
            "tickstream: vm.max_map_count allows about {thread_budget} connection threads \
             ({mappings} memory mappings each), fewer than --max-clients {} plus {MAX_PENDING_HEADS} \
             requests in flight; connections past it get 503",
            config.max_clients
        );
    }
    let metrics = Metrics::new(started.as_secs());
    let shared = Arc::new(Shared::new(config, hub, metrics, thread_budget));

    let feed_shared = Arc::clone(&shared);
    let feed = match shared.config.feed {
        FeedKind::Sim => {
            let seed = shared.config.seed.unwrap_or_else(|| fastrand::u64(..));
            crate::log!(
                "tickstream: sim feed of {} every {:?}, seed {seed}",
                shared.config.symbols.join(","),
                shared.config.interval
            );
            thread::Builder::new()
                .name("tickstream-feed".into())
                .spawn(move || {
                    let guard = FeedGuard(feed_shared);
                    let config = &guard.0.config;
                    let walk = feed::RandomWalk::new(&config.symbols, config.interval, seed);
                    feed::run_sim(walk, config.interval, &guard.0.hub, &guard.0.metrics);
                })
        }
        FeedKind::Stdin => {
            crate::log!("tickstream: stdin feed: one SYMBOL PRICE [TS_MS] line per event");
            thread::Builder::new()
                .name("tickstream-feed".into())
                .spawn(move || {
                    let guard = FeedGuard(feed_shared);
                    feed::run_stdin(io::stdin().lock(), &guard.0.hub, &guard.0.metrics);
                })
        }
    };
    feed.map_err(StartError::Feed)?;
    serve(listener, shared);
    Ok(())
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The listening socket could not be bound.
    Bind(SocketAddr, io::Error),
    /// The feed thread could not be started.
    Feed(io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind(addr, e) => write!(f, "cannot bind {addr}: {e}"),
            StartError::Feed(e) => write!(f, "cannot start the feed thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind(_, e) | StartError::Feed(e) => Some(e),
        }
    }
}
