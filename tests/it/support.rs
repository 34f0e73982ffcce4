//! Shared test helpers: the server under test as a child process, a plain
//! HTTP client, and an SSE client. Every socket has a timeout, so a hang
//! fails fast instead of stalling the suite.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::process::{Child, ChildStderr, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::procfs;
use crate::sse::{Piece, Response};

/// Threads of an idle server: the accept loop, the feed, the logger and the
/// stop thread.
pub const IDLE_THREADS: usize = 4;

/// How long any single read in a test may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a well-behaved client may wait between two events while
/// something else loads the server, at the 10 to 100 ms intervals used with
/// a [`Watcher`]: five ticks or more, on a 2-core machine shared with
/// builds and benchmarks.
pub const MAX_GAP: Duration = Duration::from_millis(500);

/// A child process, killed and reaped when dropped, so a failing test
/// leaves nothing running.
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Takes charge of `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(child)
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.0.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `tickstream` itself (`sh` for [`Server::start_with_open_files_limit`])
/// with none of its settings from the environment: the tests set every flag
/// they rely on.
pub fn without_tickstream_env(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TICKSTREAM_") || name == "PORT" {
            command.env_remove(name);
        }
    }
    command
}

/// The address in the server's first line, `tickstream 0.1.0 listening on
/// http://127.0.0.1:PORT/`.
pub fn listening_addr(line: &str) -> SocketAddr {
    line.split(" listening on http://")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .trim_end()
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("address in {line:?}: {e}"))
}

/// What a test does with the server's stderr after its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stderr {
    /// Read for the whole run into [`Server::log`], so the server never
    /// blocks on it.
    Drain,
    /// Kept open and never read again: the pipe fills.
    LeaveUnread,
}

/// The real `tickstream` binary, started with `--addr 127.0.0.1:0` (unless
/// the test gives an address) and killed and reaped on drop.
pub struct Server {
    child: ChildGuard,
    /// The address it listens on, read from its first stderr line.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Its standard input, for `--feed stdin`.
    pub stdin: Option<ChildStdin>,
    /// Its stderr, held open unread (see [`Server::start_stdin_leaving_stderr_unread`]).
    _unread_stderr: Option<BufReader<ChildStderr>>,
}

impl Server {
    /// Starts the server with these flags.
    pub fn start(args: &[&str]) -> Server {
        Server::spawn(args, false, Stderr::Drain)
    }

    /// Starts the server with `--feed stdin` and these flags.
    pub fn start_stdin(args: &[&str]) -> Server {
        Server::spawn(&with_stdin_feed(args), true, Stderr::Drain)
    }

    /// Like [`Server::start_stdin`], but stderr is never read after the
    /// listening line, so the pipe fills (64 KiB on Linux) and stays full.
    pub fn start_stdin_leaving_stderr_unread(args: &[&str]) -> Server {
        Server::spawn(&with_stdin_feed(args), true, Stderr::LeaveUnread)
    }

    /// Starts a server that clients which never read soon fall behind:
    /// [`many_symbols`] every 10 ms, then these flags. A queue of 50 ticks
    /// drops a reader only if it falls half a second behind (with 8, an
    /// 80 ms stall of a shared machine was enough); never-reading clients
    /// fill their socket buffers, then their queue or the 1 s write timeout
    /// ends them.
    pub fn start_for_non_readers(args: &[&str]) -> Server {
        let symbols = many_symbols();
        let mut all = vec![
            "--interval",
            "10ms",
            "--symbols",
            &symbols,
            "--client-queue",
            "50",
            "--write-timeout",
            "1s",
        ];
        all.extend_from_slice(args);
        Server::start(&all)
    }

    /// Starts the server with these flags under an open-files limit
    /// (`ulimit -n`), through `sh`, which then `exec`s it.
    pub fn start_with_open_files_limit(limit: u32, args: &[&str]) -> Server {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_tickstream"),
        ]);
        Server::spawn_command(command, args, false, Stderr::Drain)
    }

    /// Starts `command` (the server, or a tool that runs it, such as
    /// `strace`) with these flags, as [`Server::start`] starts the binary.
    pub fn start_command(command: Command, args: &[&str]) -> Server {
        Server::spawn_command(command, args, false, Stderr::Drain)
    }

    fn spawn(args: &[&str], piped_stdin: bool, stderr: Stderr) -> Server {
        Server::spawn_command(
            Command::new(env!("CARGO_BIN_EXE_tickstream")),
            args,
            piped_stdin,
            stderr,
        )
    }

    fn spawn_command(
        command: Command,
        args: &[&str],
        piped_stdin: bool,
        stderr_use: Stderr,
    ) -> Server {
        let mut command = without_tickstream_env(command);
        if !args.contains(&"--addr") {
            command.args(["--addr", "127.0.0.1:0"]);
        }
        command
            .args(args)
            .stdin(if piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::new(command.spawn().expect("start tickstream"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (first_tx, first_rx) = mpsc::channel();
        let log_writer = Arc::clone(&log);
        thread::spawn(move || {
            let append = |line: &str| {
                let mut log = log_writer.lock().unwrap();
                log.push_str(line);
                log.push('\n');
            };
            let mut stderr = BufReader::new(stderr);
            let mut first = String::new();
            let _ = stderr.read_line(&mut first);
            let first = first.trim_end().to_string();
            append(&first);
            if stderr_use == Stderr::LeaveUnread {
                let _ = first_tx.send((first, Some(stderr)));
                return;
            }
            let _ = first_tx.send((first, None));
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                append(&line);
            }
        });
        let (first, unread_stderr) = first_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("listening line on stderr");
        let addr = listening_addr(&first);
        let stdin = child.stdin.take();
        Server {
            child,
            addr,
            log,
            stdin,
            _unread_stderr: unread_stderr,
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; false on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// Writes lines to the server's stdin (for `--feed stdin`).
    pub fn feed(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("started with start_stdin");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the server's stdin: the stdin feed reaches EOF.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Threads of the server process now.
    pub fn threads(&self) -> usize {
        proc_sample(self.pid()).threads as usize
    }

    /// Resident memory of the server process now, in KiB.
    pub fn rss_kib(&self) -> usize {
        proc_sample(self.pid()).rss_kib as usize
    }

    /// Open file descriptors of the server process now.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// How the process ended (`None` while it runs), for failure messages:
    /// an exit code, or the signal that killed it.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends the process a signal (`TERM`, `INT`, `KILL`) by its PID.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -s {name}");
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.exit_within(timeout)
    }

    /// The value of one sample line of `/metrics`, e.g.
    /// `tickstream_requests_rejected_total{status="404"}`.
    pub fn metric(&self, sample: &str) -> u64 {
        self.metric_with(sample, "")
    }

    /// [`Server::metric`], asked with these header lines (a token).
    pub fn metric_with(&self, sample: &str, headers: &str) -> u64 {
        let ask = format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{headers}\r\n");
        let text = request(self.addr, ask.as_bytes()).body;
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Streams the server ended for not reading: `slow` (queue full) plus
    /// `write_timeout`.
    pub fn dropped_as_slow(&self) -> u64 {
        self.metric("tickstream_disconnects_total{reason=\"slow\"}")
            + self.metric("tickstream_disconnects_total{reason=\"write_timeout\"}")
    }

    /// Events the feed has published so far.
    pub fn published(&self) -> u64 {
        self.metric("tickstream_events_published_total")
    }

    /// Waits until the feed has published `at_least` events in all, e.g.
    /// the ticks a client is to miss while it is away: counted, not slept
    /// for. Panics after [`IO_TIMEOUT`].
    pub fn wait_for_published(&self, at_least: u64) {
        assert!(
            wait_until(IO_TIMEOUT, || self.published() >= at_least),
            "{} of {at_least} events published after {IO_TIMEOUT:?}",
            self.published()
        );
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        self.child.stop();
    }
}

/// Collects what a child writes to `pipe` (its stderr), line by line, on a
/// thread of its own, so the child never blocks on it.
pub fn read_lines(pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let writer = Arc::clone(&log);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut log = writer.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

/// `--feed stdin` and these flags.
fn with_stdin_feed<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--feed", "stdin"];
    all.extend_from_slice(args);
    all
}

/// Threads, resident memory and CPU time of process `pid` now (bench's
/// `/proc` reader); all zero once it is gone.
pub fn proc_sample(pid: u32) -> procfs::ProcSample {
    procfs::sample(&pid.to_string()).unwrap_or_default()
}

/// Milliseconds since the Unix epoch: the clock of each event's `ts`.
pub fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.expect("a clock after 1970").as_millis() as u64
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A complete (non-stream) response.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The head, lines joined with `\n`.
    pub head: String,
    /// The body.
    pub body: String,
}

impl Reply {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Connects with a read timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Sends raw bytes and reads the answer to the end.
pub fn request(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = connect(addr);
    stream.write_all(raw).unwrap();
    read_reply(&mut stream)
}

/// Reads a complete response until the server closes.
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read response");
    parse_reply(&bytes)
}

/// Splits raw response bytes into status, head and body.
pub fn parse_reply(bytes: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    Reply {
        status,
        head: head.replace("\r\n", "\n"),
        body: body.to_string(),
    }
}

/// `GET path` over HTTP/1.1.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
    )
}

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its id, for a counter id (a stream entry id reads 0).
    pub id: u64,
    /// Its id as written.
    pub id_text: String,
    /// `symbol` from the JSON.
    pub symbol: String,
    /// `price` from the JSON, as written.
    pub price: String,
    /// `ts` from the JSON.
    pub ts: u64,
}

/// One frame of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `retry: N`
    Retry(u64),
    /// A comment (heartbeat).
    Comment(String),
    /// An event.
    Event(Event),
    /// An event in the article's dialect (`/crypto-price`): id and price.
    Article(String, String),
}

/// An SSE client on a raw socket. The response's framing (head, chunked
/// body, lines) is bench's parser ([`crate::sse::Response`]); the frames
/// are checked against the exact format the server writes
/// ([`parse_frame`]).
pub struct Sse {
    /// The socket.
    pub stream: TcpStream,
    /// The response head, lines joined with `\n`.
    pub head: String,
    response: Response,
    /// The answer is `HTTP/1.1 200`: its body is an event stream.
    streaming: bool,
    /// Lines of the frame being read, each ending in `\n`.
    frame: String,
    /// Complete frames not yet returned.
    frames: VecDeque<Frame>,
    /// The chunked body's last chunk came: the stream ended though the
    /// connection may stay open (a proxy keeps it alive).
    ended: bool,
}

impl Sse {
    /// `GET path` with extra header lines (each ending in `\r\n`); panics
    /// unless the answer is `200` with `text/event-stream`.
    pub fn connect(addr: SocketAddr, path: &str, extra_headers: &str) -> Sse {
        let sse = Sse::try_connect(addr, path, extra_headers).unwrap_or_else(|r| panic!("{r:?}"));
        assert!(
            sse.head.contains("Content-Type: text/event-stream"),
            "{}",
            sse.head
        );
        sse
    }

    /// `GET path` with `Last-Event-ID: last_id`, as a reconnecting
    /// `EventSource` sends it.
    pub fn resume(addr: SocketAddr, path: &str, last_id: u64) -> Sse {
        Sse::connect(addr, path, &format!("Last-Event-ID: {last_id}\r\n"))
    }

    /// Like [`Sse::connect`], but returns a non-200 answer as an error.
    pub fn try_connect(addr: SocketAddr, path: &str, extra_headers: &str) -> Result<Sse, Reply> {
        let mut stream = connect(addr);
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra_headers}\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut sse = Sse {
            stream,
            head: String::new(),
            response: Response::default(),
            streaming: false,
            frame: String::new(),
            frames: VecDeque::new(),
            ended: false,
        };
        // Everything read until the head is complete, for a non-200 answer.
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        while sse.head.is_empty() {
            let n = sse.stream.read(&mut chunk).expect("read stream head");
            if n == 0 {
                return Err(parse_reply(&raw));
            }
            raw.extend_from_slice(&chunk[..n]);
            if sse.take(&chunk[..n]).is_err() {
                break;
            }
        }
        if !sse.streaming {
            // Up to the close, or the read timeout through a proxy that keeps
            // the connection open (the bytes read so far are kept).
            let _ = sse.stream.read_to_end(&mut raw);
            return Err(parse_reply(&raw));
        }
        Ok(sse)
    }

    /// Feeds bytes read from the socket to the parser; collects the head
    /// and each complete frame.
    fn take(&mut self, bytes: &[u8]) -> Result<(), crate::sse::Error> {
        let Sse {
            head,
            streaming,
            frame,
            frames,
            ended,
            response,
            ..
        } = self;
        response.feed(bytes, &mut |piece| match piece {
            Piece::Head(_, raw) => {
                *head = String::from_utf8_lossy(raw).replace("\r\n", "\n");
                *streaming = head.starts_with("HTTP/1.1 200 ");
            }
            Piece::Line(_) if !*streaming => {}
            Piece::Line(line) => {
                frame.push_str(std::str::from_utf8(line).expect("UTF-8 line"));
                frame.push('\n');
                if line.is_empty() {
                    frames.push_back(parse_frame(&std::mem::take(frame)));
                }
            }
            Piece::End => *ended = true,
        })
    }

    /// The next frame, or `None` if none arrives within `timeout` (or the
    /// server closed the stream).
    pub fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Some(frame);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || self.ended {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self
                    .take(&chunk[..n])
                    .unwrap_or_else(|e| panic!("event stream: {e}")),
                Err(_) => return None,
            }
        }
    }

    /// The next event, skipping other frames; `None` on timeout or close.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.next_frame(left)? {
                Frame::Event(event) => return Some(event),
                _ => continue,
            }
        }
    }

    /// Exactly `n` events; panics if they do not arrive within `timeout`.
    pub fn events(&mut self, n: usize, timeout: Duration) -> Vec<Event> {
        let end = Instant::now() + timeout;
        (0..n)
            .map(|i| {
                let left = end.saturating_duration_since(Instant::now());
                self.next_event(left)
                    .unwrap_or_else(|| panic!("only {i} of {n} events within {timeout:?}"))
            })
            .collect()
    }

    /// Events that arrive until `quiet` passes without one.
    pub fn events_until_quiet(&mut self, quiet: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event(quiet) {
            events.push(event);
        }
        events
    }
}

/// Parses one frame (ending in a blank line) as the server writes them.
pub fn parse_frame(frame: &str) -> Frame {
    let body = frame
        .strip_suffix("\n\n")
        .expect("frame ends with a blank line");
    if let Some(ms) = body.strip_prefix("retry: ") {
        return Frame::Retry(ms.parse().expect("retry value"));
    }
    if let Some(comment) = body.strip_prefix(':') {
        assert!(!comment.contains('\n'), "one comment line: {frame:?}");
        return Frame::Comment(comment.trim().to_string());
    }
    let (id_line, rest) = body.split_once('\n').expect("id and data lines");
    let id_text = id_line.strip_prefix("id: ").expect("id field").to_string();
    let is_stream_id = id_text.split_once('-').is_some_and(|(ms, seq)| {
        [ms, seq]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    let id = if is_stream_id {
        0
    } else {
        id_text.parse().expect("decimal or MS-SEQ id")
    };
    if let Some(data) = rest.strip_prefix("event: price-update\ndata: ") {
        let price = data
            .strip_prefix("{\"data\":")
            .and_then(|d| d.strip_suffix('}'))
            .unwrap_or_else(|| panic!("article data: {data}"));
        return Frame::Article(id_text, price.to_string());
    }
    let data = rest.strip_prefix("data: ").expect("data field");
    let field = |name: &str, end: char| -> String {
        let start = data
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {data}"))
            + name.len();
        data[start..].split(end).next().unwrap().to_string()
    };
    let symbol = field("{\"symbol\":\"", '"');
    let price = field(",\"price\":", ',');
    let ts = field(",\"ts\":", '}').parse().expect("ts");
    assert_eq!(
        data,
        format!("{{\"symbol\":\"{symbol}\",\"price\":{price},\"ts\":{ts}}}"),
        "data is exactly the JSON, keys in order"
    );
    Frame::Event(Event {
        id,
        id_text,
        symbol,
        price,
        ts,
    })
}

/// `n` clients of `/prices`, once the server counts them all connected.
pub fn connect_clients(server: &Server, n: u64) -> Vec<Sse> {
    let clients: Vec<Sse> = (0..n)
        .map(|_| Sse::connect(server.addr, "/prices", ""))
        .collect();
    let connected = || server.metric("tickstream_clients_connected") == n;
    assert!(wait_until(IO_TIMEOUT, connected), "{n} clients connected");
    clients
}

/// Asserts `events` start right after id `last` and miss none: nothing
/// missed, nothing twice.
pub fn assert_resumed_after(last: u64, events: &[Event]) {
    assert_eq!(
        events.first().map(|e| e.id),
        Some(last + 1),
        "resumed after id {last}"
    );
    assert_consecutive(events);
}

/// Asserts ids strictly increase by one.
pub fn assert_consecutive(events: &[Event]) {
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].id,
            pair[0].id + 1,
            "ids must be consecutive: {pair:?}"
        );
    }
}

/// A client reading a stream on its own thread; on `finish`, how many
/// events it read and the longest time it waited between two of them.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(usize, Duration)>,
}

impl Watcher {
    /// Connects to `path`, reads its first event, and goes on reading.
    pub fn start(server: &Server, path: &str) -> Watcher {
        let mut sse = Sse::connect(server.addr, path, "");
        sse.next_event(IO_TIMEOUT).expect("first event");
        let stop = Arc::new(AtomicBool::new(false));
        let stop_reading = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut last = Instant::now();
            let (mut events, mut worst) = (0, Duration::ZERO);
            while !stop_reading.load(Ordering::Relaxed) {
                sse.next_event(IO_TIMEOUT).expect("stream keeps flowing");
                worst = worst.max(last.elapsed());
                last = Instant::now();
                events += 1;
            }
            (events, worst)
        });
        Watcher { stop, handle }
    }

    /// Stops reading; returns (events read, longest gap between events).
    pub fn finish(self) -> (usize, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("watcher thread")
    }

    /// Stops reading, prints what it saw while `what` ran, and asserts it
    /// never waited [`MAX_GAP`] for an event of a stream ticking every
    /// `interval`.
    pub fn finish_on_time(self, interval: Duration, what: &str) {
        assert!(interval * 5 <= MAX_GAP, "{interval:?} is too slow a tick");
        let (events, worst) = self.finish();
        println!(
            "{what}: watcher read {events} events, longest gap {worst:?} at a {interval:?} interval"
        );
        assert!(
            worst < MAX_GAP,
            "{what}: the well-behaved client waited {worst:?}"
        );
    }
}

/// 200 symbols, `BTC` first: with a 10 ms interval, about 1.6 MB/s per
/// unfiltered client, so one that never reads fills its socket buffers
/// within seconds.
pub fn many_symbols() -> String {
    let mut symbols = vec!["BTC".to_string()];
    symbols.extend((1..200).map(|i| format!("SYMBOL{i:03}")));
    symbols.join(",")
}

/// Connects and sends `GET /prices` with these extra header lines (each
/// ending in `\r\n`); reads nothing.
pub fn stream_request(addr: SocketAddr, extra_headers: &str) -> TcpStream {
    let mut stream = connect(addr);
    stream
        .write_all(format!("GET /prices HTTP/1.1\r\nHost: test\r\n{extra_headers}\r\n").as_bytes())
        .expect("send the stream request");
    stream
}

/// Opens `n` streams that never read: their socket buffers fill, then the
/// server drops them (`slow` or `write_timeout`) while they stay open.
pub fn never_reading_clients(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| stream_request(addr, "")).collect()
}

/// Opens `n` streams (every other one asking for the whole history, so
/// some reset during their catch-up), waits until data sits unread in
/// each, and drops them all: unread data makes Linux reset the connection
/// instead of closing it (std cannot set `SO_LINGER` 0).
pub fn reset_clients(addr: SocketAddr, n: usize) {
    let streams: Vec<TcpStream> = (0..n)
        .map(|i| {
            stream_request(
                addr,
                if i % 2 == 0 {
                    "Last-Event-ID: 0\r\n"
                } else {
                    ""
                },
            )
        })
        .collect();
    for s in &streams {
        let mut byte = [0u8; 1];
        s.peek(&mut byte).expect("stream data");
    }
}
