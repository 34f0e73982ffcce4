//! A blocking [`Connection`] to Redis that speaks RESP2 ([`super::resp`])
//! over one `TcpStream`, owned by one thread, and the stream commands the
//! feed and the publisher use.
//!
//! Every reply is bounded in bytes (the parser's limits) and in time: it
//! must arrive in full within the connection's timeout of its command being
//! sent (for `XREAD`, the block time plus that timeout), so a silent or
//! dribbling Redis is an error, never a hang. Resolving the host name is the
//! one wait without a bound of ours (std's `getaddrinfo`).
//!
//! After an error that leaves the connection's state unknown (I/O, timeout,
//! a malformed reply, the server closing) every later command fails with
//! [`RedisError::Closed`] without touching the socket: a late reply can
//! never be taken for the answer to the next command. The caller opens a
//! new connection. An error reply (`-ERR ...`) or a reply of an unexpected
//! shape leaves the connection usable.
//!
//! The commands need Redis 6.2 or later (or Valkey): `XRANGE` with an
//! exclusive start and `AUTH user password`. The password is never
//! printed in any error.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::resp::{self, Reply, RespError};
use super::url::RedisUrl;
use crate::id::{EventId, IdForm};

/// Bytes asked of the socket per read, and all the connection buffers:
/// the parser keeps what it needs of a reply.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes of a reply per second that each extend its wait by a second.
const MIN_RATE: usize = 1024 * 1024;
/// Shortest wait for a connect or a reply (`Duration::ZERO` is not a valid
/// socket timeout).
const MIN_WAIT: Duration = Duration::from_millis(1);
/// Longest wait for a connect or a reply (a huge one would overflow `Instant`).
const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest server message or bad entry id kept for a log line, in chars.
const MAX_MESSAGE_CHARS: usize = 200;

/// Why a command failed.
#[derive(Debug)]
pub enum RedisError {
    /// Connecting, reading or writing failed, or no reply came in time
    /// (kind `TimedOut`, see [`RedisError::is_timeout`]).
    Io(io::Error),
    /// The reply is not RESP2, or passes a limit of the parser.
    Protocol(RespError),
    /// Redis answered with an error reply: its message without the `-`
    /// (`WRONGTYPE ...`, `NOAUTH ...`), control characters replaced and cut
    /// to one short line.
    Server(String),
    /// A well-formed reply of a shape the command never returns.
    Unexpected(&'static str),
    /// The server closed the connection, or an earlier error left it in an
    /// unknown state: open a new one.
    Closed,
}

impl RedisError {
    /// An error reply saying the key holds a value of another type.
    pub fn is_wrong_type(&self) -> bool {
        matches!(self, RedisError::Server(message) if message.starts_with("WRONGTYPE"))
    }

    /// No reply, or no progress writing, within the timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RedisError::Io(e) if e.kind() == ErrorKind::TimedOut)
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Io(e) => write!(f, "connection: {e}"),
            RedisError::Protocol(e) => write!(f, "malformed reply: {e}"),
            RedisError::Server(message) => write!(f, "error reply: {message}"),
            RedisError::Unexpected(what) => write!(f, "unexpected reply: {what}"),
            RedisError::Closed => write!(f, "connection closed"),
        }
    }
}

impl std::error::Error for RedisError {}

impl From<io::Error> for RedisError {
    /// A socket timeout shows as `WouldBlock` on Unix: named `TimedOut` here.
    fn from(e: io::Error) -> Self {
        match e.kind() {
            ErrorKind::WouldBlock => {
                RedisError::Io(io::Error::new(ErrorKind::TimedOut, "timed out"))
            }
            _ => RedisError::Io(e),
        }
    }
}

/// One stream entry: its id and its field-value pairs, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's id.
    pub id: EventId,
    /// Its fields and values as Redis holds them (bytes, not checked),
    /// but for those whose name or value is over
    /// [`resp::MAX_VALUE_BYTES`], which were skipped.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// True if a field was skipped for its size, or all of them for theirs
    /// ([`resp::MAX_FIELDS_BYTES`]).
    pub oversized: bool,
}

/// A connection to Redis, used by one thread. See the module doc for the
/// timeouts and for what happens after an error.
pub struct Connection {
    stream: TcpStream,
    /// The last read's bytes; those before `parsed` were handed to the
    /// parser.
    buf: Vec<u8>,
    parsed: usize,
    /// The reply being read, kept between reads.
    parser: resp::Parser,
    /// The wait for connecting, for each write and for each reply.
    timeout: Duration,
    /// False once an error left the stream in an unknown state.
    usable: bool,
}

impl Connection {
    /// Resolves the host, connects within `timeout` (trying each address),
    /// and sends `AUTH [user] password` if the URL has a password, then
    /// `SELECT db` if its db is not 0. `timeout` also bounds each later
    /// write and reply.
    pub fn open(url: &RedisUrl, timeout: Duration) -> Result<Connection, RedisError> {
        let timeout = timeout.clamp(MIN_WAIT, MAX_WAIT);
        let mut connected = Err(io::Error::new(ErrorKind::NotFound, "no address"));
        for addr in (url.host.as_str(), url.port).to_socket_addrs()? {
            connected = TcpStream::connect_timeout(&addr, timeout);
            if connected.is_ok() {
                break;
            }
        }
        let stream = connected?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout))?;
        let mut connection = Connection {
            stream,
            buf: Vec::new(),
            parsed: 0,
            parser: resp::Parser::default(),
            timeout,
            usable: true,
        };
        if let Some(password) = url.password() {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &url.username {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            connection.expect_ok(&args, "AUTH: expected +OK")?;
        }
        if url.db != 0 {
            let db = url.db.to_string();
            connection.expect_ok(&[b"SELECT", db.as_bytes()], "SELECT: expected +OK")?;
        }
        Ok(connection)
    }

    /// `TYPE key`: `"none"` for a missing key, `"stream"`, `"string"`, ...
    pub fn key_type(&mut self, key: &str) -> Result<String, RedisError> {
        match self.call(&[b"TYPE", key.as_bytes()], self.timeout)? {
            Reply::Simple(kind) => Ok(kind),
            _ => Err(RedisError::Unexpected("TYPE: expected a simple string")),
        }
    }

    /// `XADD key MAXLEN ~ maxlen * field value ...` for each entry: appends
    /// them (Redis gives their ids, returned here) and trims the stream to
    /// about `maxlen`. Several entries go in one write, inside `MULTI` …
    /// `EXEC`, so they enter the stream together and a reader's `XREAD`
    /// returns them together.
    pub fn xadd(
        &mut self,
        key: &str,
        maxlen: usize,
        entries: &[&[(&str, &str)]],
    ) -> Result<Vec<EventId>, RedisError> {
        let maxlen = maxlen.to_string();
        let xadds = entries.iter().map(|fields| {
            let mut args: Vec<&[u8]> = vec![b"XADD", key.as_bytes(), b"MAXLEN", b"~"];
            args.extend([maxlen.as_bytes(), b"*"]);
            for (field, value) in fields.iter() {
                args.extend([field.as_bytes(), value.as_bytes()]);
            }
            args
        });
        let id = |reply: Reply| match reply {
            Reply::Bulk(Some(id)) => stream_id(&id).ok_or(RedisError::Unexpected(
                "XADD: an entry id that is not MS-SEQ",
            )),
            Reply::Error(message) => Err(RedisError::Server(one_line(&message))),
            _ => Err(RedisError::Unexpected("XADD: expected an entry id")),
        };
        if entries.len() == 1 {
            let commands: Vec<Vec<&[u8]>> = xadds.collect();
            return Ok(vec![id(self
                .call_within(&commands, self.timeout)?
                .remove(0))?]);
        }
        let mut commands: Vec<Vec<&[u8]>> = vec![vec![b"MULTI"]];
        commands.extend(xadds);
        commands.push(vec![b"EXEC"]);
        match self.call_within(&commands, self.timeout)?.pop() {
            Some(Reply::Array(Some(ids))) if ids.len() == entries.len() => {
                ids.into_iter().map(id).collect()
            }
            _ => Err(RedisError::Unexpected("EXEC: expected one reply per XADD")),
        }
    }

    /// `XREVRANGE key (before - COUNT count` (`+` for `None`): the newest
    /// `count` entries before `before` (exclusive), returned oldest first.
    /// `count` is taken between 1 and [`resp::MAX_ARRAY_LEN`]; keep it to
    /// what fits in [`resp::MAX_REPLY_BYTES`].
    pub fn xrevrange_before(
        &mut self,
        key: &str,
        before: Option<EventId>,
        count: usize,
    ) -> Result<Vec<Entry>, RedisError> {
        let end = before.map_or("+".to_string(), |id| format!("({id}"));
        let mut entries = self.range(b"XREVRANGE", key, &end, "-", count)?;
        entries.reverse();
        Ok(entries)
    }

    /// `XRANGE key (after + COUNT count`: up to `count` entries after
    /// `after` (exclusive), oldest first. `count` as for
    /// [`Connection::xrevrange_before`].
    pub fn xrange_after(
        &mut self,
        key: &str,
        after: EventId,
        count: usize,
    ) -> Result<Vec<Entry>, RedisError> {
        // Redis refuses to start after the largest id; nothing can follow it.
        if after == EventId::stream(u64::MAX, u64::MAX) {
            return Ok(Vec::new());
        }
        self.range(b"XRANGE", key, &format!("({after}"), "+", count)
    }

    /// `XRANGE` or `XREVRANGE key from to COUNT count`.
    fn range(
        &mut self,
        command: &[u8],
        key: &str,
        from: &str,
        to: &str,
        count: usize,
    ) -> Result<Vec<Entry>, RedisError> {
        let count = page_size(count);
        let args = [command, key.as_bytes(), from.as_bytes(), to.as_bytes()];
        let args = [&args[..], &[b"COUNT", count.as_bytes()]].concat();
        entries(self.call(&args, self.timeout)?)
    }

    /// `XREAD COUNT count BLOCK ms STREAMS key after`: up to `count` entries
    /// after `after`, waiting up to `block` for one to arrive; an empty vec
    /// when none did. `block` is rounded down to whole milliseconds, and at
    /// least 1 (`BLOCK 0` would wait for ever); the reply may take `block`
    /// plus the connection's timeout.
    pub fn xread_after(
        &mut self,
        key: &str,
        after: EventId,
        block: Duration,
        count: usize,
    ) -> Result<Vec<Entry>, RedisError> {
        let block = block.clamp(MIN_WAIT, MAX_WAIT);
        let (count, block_ms, after) = (
            page_size(count),
            block.as_millis().to_string(),
            after.to_string(),
        );
        let args: [&[u8]; 8] = [
            b"XREAD",
            b"COUNT",
            count.as_bytes(),
            b"BLOCK",
            block_ms.as_bytes(),
            b"STREAMS",
            key.as_bytes(),
            after.as_bytes(),
        ];
        const SHAPE: &str = "XREAD: expected null or [[key, entries]]";
        match self.call(&args, block + self.timeout)? {
            Reply::Array(None) => Ok(Vec::new()),
            Reply::Array(Some(streams)) if streams.is_empty() => Ok(Vec::new()),
            Reply::Array(Some(streams)) => {
                let Ok([Reply::Array(Some(stream))]) = <[Reply; 1]>::try_from(streams) else {
                    return Err(RedisError::Unexpected(SHAPE));
                };
                let Ok([Reply::Bulk(Some(_key)), stream_entries]) = <[Reply; 2]>::try_from(stream)
                else {
                    return Err(RedisError::Unexpected(SHAPE));
                };
                entries(stream_entries)
            }
            _ => Err(RedisError::Unexpected(SHAPE)),
        }
    }

    /// Sends a command that answers `+OK`.
    fn expect_ok(&mut self, args: &[&[u8]], what: &'static str) -> Result<(), RedisError> {
        match self.call(args, self.timeout)? {
            Reply::Simple(ok) if ok == "OK" => Ok(()),
            _ => Err(RedisError::Unexpected(what)),
        }
    }

    /// Sends a command and reads its reply within `wait`; an error reply
    /// becomes [`RedisError::Server`].
    fn call(&mut self, args: &[&[u8]], wait: Duration) -> Result<Reply, RedisError> {
        self.call_within(&[args.to_vec()], wait)
            .map(|mut replies| replies.remove(0))
    }

    /// Sends commands in one write and reads their replies, each within
    /// `wait`.
    fn call_within(
        &mut self,
        commands: &[Vec<&[u8]>],
        wait: Duration,
    ) -> Result<Vec<Reply>, RedisError> {
        if !self.usable {
            return Err(RedisError::Closed);
        }
        // Unusable until every reply is read: any early return leaves the
        // stream in an unknown state.
        self.usable = false;
        let mut bytes = Vec::new();
        for args in commands {
            resp::push_command(&mut bytes, args);
        }
        self.stream.write_all(&bytes)?;
        let replies = commands
            .iter()
            .map(|_| self.read_reply(wait.clamp(MIN_WAIT, MAX_WAIT)))
            .collect::<Result<Vec<Reply>, RedisError>>()?;
        self.usable = true;
        if let Some(Reply::Error(message)) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
            return Err(RedisError::Server(one_line(message)));
        }
        Ok(replies)
    }

    /// Reads until the parser has one whole reply. It must begin within
    /// `wait`, and every further [`MIN_RATE`] bytes extend that by a second,
    /// so a large reply is given time to arrive and a dribbling Redis is
    /// not waited on for ever.
    fn read_reply(&mut self, wait: Duration) -> Result<Reply, RedisError> {
        let started = Instant::now();
        let mut received = 0;
        loop {
            let unparsed = &self.buf[self.parsed..];
            let (used, reply) = self.parser.parse(unparsed).map_err(RedisError::Protocol)?;
            self.parsed += used;
            if let Some(reply) = reply {
                return Ok(reply);
            }
            let allowed = wait + Duration::from_secs((received / MIN_RATE) as u64);
            let left = allowed.saturating_sub(started.elapsed());
            if left.is_zero() {
                let e = io::Error::new(ErrorKind::TimedOut, format!("no reply within {wait:?}"));
                return Err(RedisError::Io(e));
            }
            self.stream.set_read_timeout(Some(left))?;
            // Everything was parsed: the buffer starts again.
            self.buf.resize(READ_CHUNK_BYTES, 0);
            self.parsed = 0;
            let read = self.stream.read(&mut self.buf);
            self.buf.truncate(*read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Err(RedisError::Closed),
                Ok(n) => received += n,
                Err(e) => match e.kind() {
                    // A read that timed out ends the wait at the top of the loop.
                    ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut => {}
                    _ => return Err(RedisError::Io(e)),
                },
            }
        }
    }
}

/// `count` as an argument, between 1 (`COUNT 0` means no limit to `XREAD`)
/// and the most entries a reply may hold.
fn page_size(count: usize) -> String {
    count.clamp(1, resp::MAX_ARRAY_LEN).to_string()
}

/// The entries of an `XRANGE` or `XREVRANGE` reply, or of one stream of an
/// `XREAD` reply.
fn entries(reply: Reply) -> Result<Vec<Entry>, RedisError> {
    let Reply::Array(Some(items)) = reply else {
        return Err(RedisError::Unexpected(
            "expected an array of stream entries",
        ));
    };
    items.into_iter().map(entry).collect()
}

/// One `[id, [field, value, ...]]`.
fn entry(reply: Reply) -> Result<Entry, RedisError> {
    const SHAPE: &str = "expected a stream entry [id, [field, value, ...]]";
    let Reply::Array(Some(parts)) = reply else {
        return Err(RedisError::Unexpected(SHAPE));
    };
    let Ok([Reply::Bulk(Some(id)), fields]) = <[Reply; 2]>::try_from(parts) else {
        return Err(RedisError::Unexpected(SHAPE));
    };
    let mut entry = Entry {
        id: EventId::stream(0, 0),
        fields: Vec::new(),
        oversized: false,
    };
    match fields {
        // Only a consumer-group read of a deleted entry has null fields.
        Reply::Array(None) => {}
        Reply::Skipped(_) => entry.oversized = true,
        Reply::Array(Some(items)) if items.len() % 2 == 0 => {
            let mut items = items.into_iter();
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                match (field, value) {
                    (Reply::Bulk(Some(field)), Reply::Bulk(Some(value))) => {
                        entry.fields.push((field, value))
                    }
                    (Reply::Bulk(Some(_)) | Reply::Skipped(_), Reply::Skipped(_))
                    | (Reply::Skipped(_), Reply::Bulk(Some(_))) => entry.oversized = true,
                    _ => return Err(RedisError::Unexpected(SHAPE)),
                }
            }
        }
        _ => return Err(RedisError::Unexpected(SHAPE)),
    };
    entry.id = stream_id(&id).ok_or(RedisError::Unexpected(
        "a stream entry id that is not MS-SEQ",
    ))?;
    Ok(entry)
}

/// A stream entry id as Redis sends it, `MS-SEQ`.
fn stream_id(id: &[u8]) -> Option<EventId> {
    EventId::parse(std::str::from_utf8(id).ok()?, IdForm::Stream)
}

/// Text from the server made fit for one log line: control characters
/// replaced with `?`, cut after [`MAX_MESSAGE_CHARS`] characters.
fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        line.push_str("...");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    impl Connection {
        /// `PING`: succeeds on `+PONG`.
        fn ping(&mut self) -> Result<(), RedisError> {
            match self.call(&[b"PING"], self.timeout)? {
                Reply::Simple(pong) if pong == "PONG" => Ok(()),
                _ => Err(RedisError::Unexpected("PING: expected +PONG")),
            }
        }
    }

    /// What the fake server does once it has received the expected command.
    enum Answer {
        /// Writes these bytes at once.
        Whole(&'static [u8]),
        /// Writes them one byte per write.
        Bytewise(&'static [u8]),
        /// Waits, then writes them.
        Late(Duration, &'static [u8]),
        /// Writes them (a reply over the size limit).
        Owned(Vec<u8>),
        /// Writes them, then closes the connection.
        CloseAfter(&'static [u8]),
        /// Never answers, and ends the script.
        Silent,
    }

    /// A server on 127.0.0.1 that accepts one connection, and for each step
    /// checks that it received exactly the command's bytes, then answers.
    /// After the script it checks that the client sends nothing more. Join
    /// the handle after dropping the connection: a failed check panics there.
    fn fake_redis(script: Vec<(&'static [u8], Answer)>) -> (u16, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local address").port();
        let server = thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("read timeout");
            socket.set_nodelay(true).expect("nodelay");
            for (command, answer) in script {
                let mut got = vec![0; command.len()];
                socket.read_exact(&mut got).expect("the command");
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(command)
                );
                // The client may have given up and gone: writes may fail.
                let _ = match answer {
                    Answer::Whole(bytes) => socket.write_all(bytes),
                    Answer::Bytewise(bytes) => {
                        bytes.iter().try_for_each(|b| socket.write_all(&[*b]))
                    }
                    Answer::Late(delay, bytes) => {
                        thread::sleep(delay);
                        socket.write_all(bytes)
                    }
                    Answer::Owned(bytes) => socket.write_all(&bytes),
                    Answer::CloseAfter(bytes) => {
                        let _ = socket.write_all(bytes);
                        return;
                    }
                    Answer::Silent => break,
                };
            }
            let mut rest = Vec::new();
            let _ = socket.read_to_end(&mut rest);
            assert_eq!(String::from_utf8_lossy(&rest), "", "after the script");
        });
        (port, server)
    }

    fn open(url: &str, port: u16, timeout: Duration) -> Result<Connection, RedisError> {
        let url = RedisUrl::parse(&url.replace("PORT", &port.to_string())).expect("url");
        Connection::open(&url, timeout)
    }

    const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
    const TYPE_K: &[u8] = b"*2\r\n$4\r\nTYPE\r\n$1\r\nk\r\n";
    const SECOND: Duration = Duration::from_secs(1);

    fn ids(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.id.to_string()).collect()
    }

    #[test]
    fn commands_and_replies() {
        let (port, server) = fake_redis(vec![
            (PING, Answer::Bytewise(b"+PONG\r\n")),
            (TYPE_K, Answer::Whole(b"+none\r\n")),
            (
                b"*10\r\n$4\r\nXADD\r\n$1\r\nk\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$3\r\n100\r\n\
                  $1\r\n*\r\n$6\r\nsymbol\r\n$3\r\nBTC\r\n$5\r\nprice\r\n$3\r\n1.5\r\n",
                Answer::Bytewise(b"$15\r\n1764028800123-0\r\n"),
            ),
            (
                b"*6\r\n$9\r\nXREVRANGE\r\n$1\r\nk\r\n$1\r\n+\r\n$1\r\n-\r\n$5\r\nCOUNT\r\n$1\r\n2\r\n",
                Answer::Bytewise(
                    b"*2\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n\
                      *2\r\n$3\r\n5-0\r\n*-1\r\n",
                ),
            ),
            (
                b"*6\r\n$6\r\nXRANGE\r\n$1\r\nk\r\n$4\r\n(5-1\r\n$1\r\n+\r\n$5\r\nCOUNT\r\n$2\r\n10\r\n",
                Answer::Whole(b"*2\r\n*2\r\n$3\r\n6-0\r\n*0\r\n*2\r\n$5\r\n6-x\x1b\x07\r\n*0\r\n"),
            ),
            (
                b"*8\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n$5\r\nBLOCK\r\n$3\r\n100\r\n\
                  $7\r\nSTREAMS\r\n$1\r\nk\r\n$3\r\n6-0\r\n",
                Answer::Whole(b"*-1\r\n"),
            ),
            (
                b"*8\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$1\r\n1\r\n$5\r\nBLOCK\r\n$1\r\n1\r\n\
                  $7\r\nSTREAMS\r\n$1\r\nk\r\n$3\r\n6-0\r\n",
                Answer::Bytewise(
                    b"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n7-0\r\n\
                      *4\r\n$6\r\nsymbol\r\n$3\r\nETH\r\n$5\r\nprice\r\n$1\r\n2\r\n",
                ),
            ),
        ]);
        let mut redis = open("redis://127.0.0.1:PORT", port, SECOND).expect("open");
        redis.ping().expect("ping");
        assert_eq!(redis.key_type("k").expect("type"), "none");
        let id = redis
            .xadd("k", 100, &[&[("symbol", "BTC"), ("price", "1.5")]])
            .expect("xadd");
        assert_eq!(id, [EventId::stream(1_764_028_800_123, 0)]);
        let newest = redis.xrevrange_before("k", None, 2).expect("xrevrange");
        assert_eq!(ids(&newest), ["5-0", "5-1"], "oldest first");
        assert_eq!(
            newest[1],
            Entry {
                id: EventId::stream(5, 1),
                fields: vec![(b"a".to_vec(), b"b".to_vec())],
                oversized: false,
            }
        );
        let after = EventId::stream(5, 1);
        let bad_id = redis.xrange_after("k", after, 10).expect_err("a bad id");
        assert_eq!(
            bad_id.to_string(),
            "unexpected reply: a stream entry id that is not MS-SEQ"
        );
        let after = EventId::stream(6, 0);
        let none = redis
            .xread_after("k", after, Duration::from_millis(100), 5)
            .expect("xread");
        assert!(none.is_empty());
        let read = redis
            .xread_after("k", after, Duration::ZERO, 0)
            .expect("xread");
        assert_eq!(
            read,
            [Entry {
                id: EventId::stream(7, 0),
                fields: vec![
                    (b"symbol".to_vec(), b"ETH".to_vec()),
                    (b"price".to_vec(), b"2".to_vec())
                ],
                oversized: false,
            }]
        );
        drop(redis);
        server.join().expect("fake redis");
    }

    #[test]
    fn auth_then_select() {
        let (port, server) = fake_redis(vec![
            (
                b"*3\r\n$4\r\nAUTH\r\n$6\r\nfeeder\r\n$6\r\ns3cret\r\n",
                Answer::Bytewise(b"+OK\r\n"),
            ),
            (
                b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n",
                Answer::Whole(b"+OK\r\n"),
            ),
            (PING, Answer::Whole(b"+PONG\r\n")),
        ]);
        let mut redis = open("redis://feeder:s3cret@127.0.0.1:PORT/2", port, SECOND).expect("open");
        redis.ping().expect("ping");
        drop(redis);
        server.join().expect("fake redis");

        // A password alone: AUTH with one argument, and no SELECT for db 0.
        let (port, server) = fake_redis(vec![(
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n",
            Answer::Whole(b"+OK\r\n"),
        )]);
        drop(open("redis://:pw@127.0.0.1:PORT/0", port, SECOND).expect("open"));
        server.join().expect("fake redis");
    }

    #[test]
    fn a_refused_password_is_not_shown() {
        let (port, server) = fake_redis(vec![(
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$6\r\ns3cret\r\n",
            Answer::Whole(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
        )]);
        let Err(error) = open("redis://u:s3cret@127.0.0.1:PORT", port, SECOND) else {
            panic!("AUTH refused")
        };
        server.join().expect("fake redis");
        assert_eq!(
            error.to_string(),
            "error reply: WRONGPASS invalid username-password pair or user is disabled."
        );
        assert!(!format!("{error} {error:?}").contains("s3cret"));
    }

    #[test]
    fn error_replies_and_odd_shapes_leave_the_connection_usable() {
        let (port, server) = fake_redis(vec![
            (
                TYPE_K,
                Answer::Whole(
                    b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                ),
            ),
            (PING, Answer::Whole(b"-ERR unknown\x1b[31m command\r\n")),
            (TYPE_K, Answer::Whole(b":1\r\n")),
            (PING, Answer::Whole(b"*1\r\n+PONG\r\n")),
            (
                b"*6\r\n$9\r\nXREVRANGE\r\n$1\r\nk\r\n$1\r\n+\r\n$1\r\n-\r\n$5\r\nCOUNT\r\n$1\r\n1\r\n",
                Answer::Whole(b"*1\r\n*2\r\n$3\r\n1-0\r\n*1\r\n$1\r\na\r\n"),
            ),
            (PING, Answer::Whole(b"+PONG\r\n")),
        ]);
        let mut redis = open("redis://127.0.0.1:PORT", port, SECOND).expect("open");
        let error = redis.key_type("k").expect_err("WRONGTYPE");
        assert!(error.is_wrong_type(), "{error}");
        let error = redis.ping().expect_err("ERR");
        assert!(!error.is_wrong_type());
        assert_eq!(error.to_string(), "error reply: ERR unknown?[31m command");
        assert!(matches!(
            redis.key_type("k"),
            Err(RedisError::Unexpected("TYPE: expected a simple string"))
        ));
        assert!(matches!(redis.ping(), Err(RedisError::Unexpected(_))));
        let error = redis
            .xrevrange_before("k", None, 1)
            .expect_err("odd fields");
        assert_eq!(
            error.to_string(),
            "unexpected reply: expected a stream entry [id, [field, value, ...]]"
        );
        redis.ping().expect("still usable");
        drop(redis);
        server.join().expect("fake redis");
    }

    #[test]
    fn a_reply_over_the_size_limit_is_refused_on_its_header() {
        let header = format!("${}\r\n", resp::MAX_DECLARED_BYTES + 1).into_bytes();
        let (port, server) = fake_redis(vec![(TYPE_K, Answer::Owned(header))]);
        let mut redis = open("redis://127.0.0.1:PORT", port, SECOND).expect("open");
        let error = redis.key_type("k").expect_err("too large");
        assert!(matches!(error, RedisError::Protocol(resp::TOO_LARGE)));
        assert_eq!(
            error.to_string(),
            format!(
                "malformed reply: reply larger than {} bytes",
                resp::MAX_REPLY_BYTES
            )
        );
        // The stream is out of step now: nothing more is sent.
        assert!(matches!(redis.ping(), Err(RedisError::Closed)));
        drop(redis);
        server.join().expect("fake redis");
    }

    #[test]
    fn a_silent_server_is_a_timeout() {
        let (port, server) = fake_redis(vec![(PING, Answer::Silent)]);
        let mut redis =
            open("redis://127.0.0.1:PORT", port, Duration::from_millis(200)).expect("open");
        let error = redis.ping().expect_err("silence");
        assert!(error.is_timeout(), "{error}");
        assert_eq!(error.to_string(), "connection: no reply within 200ms");
        assert!(matches!(redis.ping(), Err(RedisError::Closed)));
        drop(redis);
        server.join().expect("fake redis");
    }

    #[test]
    fn xread_waits_its_block_time_then_other_commands_do_not() {
        // A reply 1 s late: within XREAD's 3 s block plus the 100 ms
        // timeout (3x the wait it needs), ten times PING's 100 ms timeout.
        let (timeout, late) = (Duration::from_millis(100), Duration::from_secs(1));
        let (port, server) = fake_redis(vec![
            (
                b"*8\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$1\r\n9\r\n$5\r\nBLOCK\r\n$4\r\n3000\r\n\
                  $7\r\nSTREAMS\r\n$1\r\nk\r\n$3\r\n0-0\r\n",
                Answer::Late(late, b"*-1\r\n"),
            ),
            (PING, Answer::Late(late, b"+PONG\r\n")),
        ]);
        let mut redis = open("redis://127.0.0.1:PORT", port, timeout).expect("open");
        let block = Duration::from_secs(3);
        let read = redis.xread_after("k", EventId::stream(0, 0), block, 9);
        assert!(read.expect("within block + timeout").is_empty());
        assert!(redis.ping().expect_err("late").is_timeout());
        drop(redis);
        server.join().expect("fake redis");
    }

    #[test]
    fn a_server_closing_mid_reply() {
        for partial in [&b"+PO"[..], b"$5\r\nPO", b"*2\r\n+a\r\n", b""] {
            let (port, server) = fake_redis(vec![(PING, Answer::CloseAfter(partial))]);
            let mut redis = open("redis://127.0.0.1:PORT", port, SECOND).expect("open");
            let error = redis.ping().expect_err("closed");
            assert!(matches!(error, RedisError::Closed), "{error}");
            assert!(matches!(redis.ping(), Err(RedisError::Closed)));
            drop(redis);
            server.join().expect("fake redis");
        }
    }

    #[test]
    fn nobody_listening() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        let error = open("redis://127.0.0.1:PORT", port, SECOND)
            .err()
            .expect("refused");
        assert!(matches!(error, RedisError::Io(_)), "{error}");
    }

    /// Against a real Redis (6.2 or later) named by `TICKSTREAM_TEST_REDIS`,
    /// e.g. `redis://:pw@127.0.0.1:6390/1`; uses and deletes the keys
    /// `tickstream:test:*` and the ACL user `tickstream-test`.
    #[test]
    #[ignore = "needs a Redis server: TICKSTREAM_TEST_REDIS=redis://..."]
    fn live_redis() {
        let Ok(text) = std::env::var("TICKSTREAM_TEST_REDIS") else {
            eprintln!("TICKSTREAM_TEST_REDIS is not set: nothing to do");
            return;
        };
        let url = RedisUrl::parse(&text).expect("TICKSTREAM_TEST_REDIS");
        let mut redis = Connection::open(&url, SECOND).expect("open");
        let (key, other) = ("tickstream:test:prices", "tickstream:test:string");
        redis
            .call(&[b"DEL", key.as_bytes(), other.as_bytes()], SECOND)
            .expect("DEL");
        redis.ping().expect("ping");
        assert_eq!(redis.key_type(key).expect("type"), "none");
        assert!(redis
            .xrevrange_before(key, None, 10)
            .expect("xrevrange")
            .is_empty());
        let zero = EventId::stream(0, 0);
        assert!(redis
            .xrange_after(key, zero, 10)
            .expect("xrange")
            .is_empty());
        let block = Duration::from_millis(50);
        assert!(redis
            .xread_after(key, zero, block, 10)
            .expect("xread")
            .is_empty());

        let added = redis
            .xadd(
                key,
                100,
                &[
                    &[("symbol", "BTC"), ("price", "1")],
                    &[("symbol", "BTC"), ("price", "2")],
                    &[("symbol", "BTC"), ("price", "3")],
                ],
            )
            .expect("xadd in MULTI");
        assert!(added.windows(2).all(|w| w[0] < w[1]), "{added:?}");
        assert_eq!(redis.key_type(key).expect("type"), "stream");
        let ids =
            |entries: Vec<Entry>| -> Vec<EventId> { entries.into_iter().map(|e| e.id).collect() };
        assert_eq!(
            ids(redis.xrevrange_before(key, None, 2).expect("x")),
            added[1..]
        );
        assert_eq!(
            ids(redis.xrange_after(key, added[0], 1).expect("x")),
            added[1..2]
        );
        assert_eq!(
            ids(redis.xread_after(key, added[0], block, 9).expect("x")),
            added[1..]
        );
        assert!(redis
            .xread_after(key, added[2], block, 9)
            .expect("x")
            .is_empty());
        let entry = redis.xrange_after(key, zero, 1).expect("x").remove(0);
        assert_eq!(
            entry.fields,
            [
                (b"symbol".to_vec(), b"BTC".to_vec()),
                (b"price".to_vec(), b"1".to_vec())
            ]
        );

        redis
            .call(&[b"SET", other.as_bytes(), b"x"], SECOND)
            .expect("SET");
        assert_eq!(redis.key_type(other).expect("type"), "string");
        assert!(redis
            .xread_after(other, zero, block, 1)
            .expect_err("x")
            .is_wrong_type());
        assert!(redis
            .xrange_after(other, zero, 1)
            .expect_err("x")
            .is_wrong_type());
        assert!(redis
            .xadd(other, 9, &[&[("a", "b")]])
            .expect_err("x")
            .is_wrong_type());

        // A named user, as `AUTH user password`.
        let acl = [
            &b"ACL"[..],
            b"SETUSER",
            b"tickstream-test",
            b"on",
            b">s3cret",
            b"~*",
            b"+@all",
        ];
        redis.call(&acl, SECOND).expect("ACL SETUSER");
        let named = format!(
            "redis://tickstream-test:s3cret@{}:{}/{}",
            url.host, url.port, url.db
        );
        let mut user =
            Connection::open(&RedisUrl::parse(&named).expect("url"), SECOND).expect("AUTH");
        assert_eq!(user.key_type(key).expect("type"), "stream");
        let wrong = named.replace("s3cret", "wrong");
        let refused = Connection::open(&RedisUrl::parse(&wrong).expect("url"), SECOND);
        assert!(matches!(refused, Err(RedisError::Server(m)) if m.starts_with("WRONGPASS")));

        redis
            .call(&[b"ACL", b"DELUSER", b"tickstream-test"], SECOND)
            .expect("ACL DELUSER");
        redis
            .call(&[b"DEL", key.as_bytes(), other.as_bytes()], SECOND)
            .expect("DEL");
    }
}
