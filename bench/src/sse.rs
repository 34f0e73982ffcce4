//! Sans-IO parser for one `GET /prices` response: the HTTP/1.1 response
//! head, an optional chunked body (RFC 9112 §7.1), and the Server-Sent Events
//! stream inside it (WHATWG HTML, "server-sent events", §9.2.6 "Interpreting
//! an event stream").
//!
//! The parser takes bytes as they come off a socket, split anywhere, and
//! pushes [`Item`]s into a caller-owned `Vec` so that the event loop can hold
//! ~19,000 of them without allocating per event. It never touches a socket.
//!
//! Two layers: [`Response`] finds the head, decodes the body and splits it
//! into lines ([`Piece`]s); [`Parser`] interprets those lines as WHATWG
//! fields and events ([`Item`]s). The integration tests of the server
//! (`tests/it`) include this file (`#[path]`, it is std only) and build
//! their exact-format checks on [`Response`].

use std::fmt;

/// Longest response head accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Longest SSE line accepted, in bytes (tickstream's lines are < 100 bytes).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The parts of a response head the load generator cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Status code from the status line.
    pub status: u16,
    /// `Transfer-Encoding: chunked` was present.
    pub chunked: bool,
}

/// An event's `id:` in one of the two forms tickstream sends (spec, "The
/// stream"): a decimal counter (`sim` and `stdin` feeds), or a Redis stream
/// entry id `MS-SEQ` (`redis` feed), ordered by its two numbers.
///
/// The derived order puts every counter below every entry id; a stream
/// never mixes the two, so that order only matters for a broken one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventId {
    /// Decimal digits: consecutive on an unfiltered, unconflated stream.
    Counter(u64),
    /// `MS-SEQ`: increasing, but with no "next" id to expect, so a gap
    /// cannot be told from the id alone.
    Entry {
        /// Milliseconds part.
        ms: u64,
        /// Sequence within the millisecond.
        seq: u64,
    },
}

impl EventId {
    /// `digits` or `digits-digits` (1 to 19 digits each), nothing else.
    pub fn parse(s: &[u8]) -> Option<Self> {
        match s.iter().position(|&b| b == b'-') {
            None => parse_u64(s).map(EventId::Counter),
            Some(dash) => Some(EventId::Entry {
                ms: parse_u64(&s[..dash])?,
                seq: parse_u64(&s[dash + 1..])?,
            }),
        }
    }
}

/// One dispatched SSE event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event's `id:` field, if it had one of tickstream's forms.
    pub id: Option<EventId>,
    /// `ts` (ms since the Unix epoch) from the `data:` JSON, if well formed.
    pub ts: Option<u64>,
    /// `data:` was exactly `{"symbol":"S","price":P,"ts":T}` with a
    /// positive decimal price, as the spec's "The stream" section requires.
    pub well_formed: bool,
}

/// What the parser found in the bytes fed to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// The response head is complete.
    Head(Head),
    /// An event was dispatched (blank line after at least one `data:`).
    Event(Event),
    /// A comment line (`: heartbeat`).
    Comment,
    /// A `retry:` field with a numeric value (milliseconds).
    Retry(u64),
    /// The chunked body ended with its last (zero-size) chunk.
    End,
}

/// Why a response cannot be parsed any further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No `\r\n\r\n` within [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// The status line is not `HTTP/1.x NNN ...`.
    StatusLine,
    /// An SSE line longer than [`MAX_LINE_BYTES`].
    LineTooLong,
    /// A malformed chunk-size line or chunk terminator.
    Chunk,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::HeadTooLarge => "response head over 16 KiB",
            Error::StatusLine => "malformed status line",
            Error::LineTooLong => "event-stream line over 64 KiB",
            Error::Chunk => "malformed chunked encoding",
        })
    }
}

/// What [`Response::feed`] finds in the bytes fed to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The response head is complete: its parts, and the head as sent
    /// (status line to the empty line, CRLFs included).
    Head(Head, &'a [u8]),
    /// One line of the event stream, without its line end (CRLF, LF or CR).
    Line(&'a [u8]),
    /// The chunked body ended with its last (zero-size) chunk.
    End,
}

/// The framing of one response: the head, a plain or chunked body, and the
/// event stream's lines; feed it with [`Response::feed`].
#[derive(Debug, Default)]
pub struct Response {
    /// `None` until the head is complete; then the body decoder.
    body: Option<Body>,
    /// Bytes of an incomplete head.
    head: Vec<u8>,
    lines: Lines,
}

/// Incremental parser for one response; feed it with [`Parser::feed`].
#[derive(Debug, Default)]
pub struct Parser {
    response: Response,
    /// Fields of the event being built.
    pending: Pending,
}

#[derive(Debug)]
enum Body {
    Plain,
    Chunked(Dechunker),
}

impl Parser {
    /// A parser waiting for the response head.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `input`, the next bytes of the response, pushing what it finds
    /// to `out`. After an error the parser must not be fed again.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Item>) -> Result<(), Error> {
        let pending = &mut self.pending;
        self.response.feed(input, &mut |piece| match piece {
            Piece::Head(head, _) => out.push(Item::Head(head)),
            Piece::Line(line) => pending.line(line, out),
            Piece::End => out.push(Item::End),
        })
    }
}

impl Response {
    /// Parses `input`, the next bytes of the response, calling `visit` with
    /// each piece it completes, in order. After an error it must not be fed
    /// again.
    pub fn feed(&mut self, input: &[u8], visit: &mut impl FnMut(Piece<'_>)) -> Result<(), Error> {
        if self.body.is_none() {
            // Look for the end of the head, starting 3 bytes back in case
            // "\r\n\r\n" straddles two reads.
            let from = self.head.len().saturating_sub(3);
            self.head.extend_from_slice(input);
            let Some(pos) = find(&self.head[from..], b"\r\n\r\n").map(|p| from + p) else {
                if self.head.len() > MAX_HEAD_BYTES {
                    return Err(Error::HeadTooLarge);
                }
                return Ok(());
            };
            if pos > MAX_HEAD_BYTES {
                return Err(Error::HeadTooLarge);
            }
            let head = parse_head(&self.head[..pos + 2])?;
            self.body = Some(if head.chunked {
                Body::Chunked(Dechunker::default())
            } else {
                Body::Plain
            });
            let rest = std::mem::take(&mut self.head);
            visit(Piece::Head(head, &rest[..pos + 4]));
            return self.feed_body(&rest[pos + 4..], visit);
        }
        self.feed_body(input, visit)
    }

    fn feed_body(&mut self, input: &[u8], visit: &mut impl FnMut(Piece<'_>)) -> Result<(), Error> {
        match &mut self.body {
            Some(Body::Chunked(d)) => {
                let lines = &mut self.lines;
                let mut result = Ok(());
                d.decode(input, |data| {
                    if result.is_ok() {
                        result = match data {
                            Some(data) => lines.feed(data, visit),
                            None => {
                                visit(Piece::End);
                                Ok(())
                            }
                        };
                    }
                })?;
                result
            }
            _ => self.lines.feed(input, visit),
        }
    }
}

/// Parses a response head (status line and header lines, each ending in
/// CRLF, without the final empty line).
fn parse_head(head: &[u8]) -> Result<Head, Error> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    // status-line = HTTP-version SP status-code SP [ reason-phrase ]
    let status_line = lines.next().ok_or(Error::StatusLine)?;
    let rest = status_line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix(b"HTTP/1.0 "))
        .ok_or(Error::StatusLine)?;
    let code = rest.get(..3).ok_or(Error::StatusLine)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return Err(Error::StatusLine);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let mut chunked = false;
    for line in lines {
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let value = String::from_utf8_lossy(value).to_ascii_lowercase();
                chunked = value.split(',').any(|coding| coding.trim() == "chunked");
            }
        }
    }
    Ok(Head { status, chunked })
}

/// Splits the event stream into lines (ended by CRLF, LF or CR, as the
/// WHATWG grammar allows).
#[derive(Debug, Default)]
struct Lines {
    /// An incomplete line carried over to the next read.
    partial: Vec<u8>,
    /// The previous line ended with CR: a following LF belongs to it.
    skip_lf: bool,
}

#[derive(Debug, Default)]
struct Pending {
    id: Option<EventId>,
    has_data: bool,
    ts: Option<u64>,
    well_formed: bool,
}

impl Lines {
    fn feed(&mut self, mut input: &[u8], visit: &mut impl FnMut(Piece<'_>)) -> Result<(), Error> {
        while !input.is_empty() {
            if self.skip_lf {
                self.skip_lf = false;
                if input[0] == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            let Some(end) = input.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.partial.len() + input.len() > MAX_LINE_BYTES {
                    return Err(Error::LineTooLong);
                }
                self.partial.extend_from_slice(input);
                return Ok(());
            };
            self.skip_lf = input[end] == b'\r';
            if self.partial.is_empty() {
                visit(Piece::Line(&input[..end]));
            } else {
                if self.partial.len() + end > MAX_LINE_BYTES {
                    return Err(Error::LineTooLong);
                }
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&input[..end]);
                visit(Piece::Line(&line));
                line.clear();
                self.partial = line;
            }
            input = &input[end + 1..];
        }
        Ok(())
    }
}

impl Pending {
    /// Interprets one line, per "Interpreting an event stream".
    fn line(&mut self, line: &[u8], out: &mut Vec<Item>) {
        if line.is_empty() {
            let p = std::mem::take(self);
            if p.has_data {
                out.push(Item::Event(Event {
                    id: p.id,
                    ts: p.ts,
                    well_formed: p.well_formed,
                }));
            }
            return;
        }
        if line[0] == b':' {
            out.push(Item::Comment);
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"id" => self.id = EventId::parse(value),
            b"data" => {
                // tickstream sends one data line per event; if there were
                // several, the last one's fields win.
                self.has_data = true;
                match parse_price_json(value) {
                    Some(ts) => {
                        self.ts = Some(ts);
                        self.well_formed = true;
                    }
                    None => {
                        self.ts = find_ts(value);
                        self.well_formed = false;
                    }
                }
            }
            b"retry" => {
                if let Some(ms) = parse_u64(value) {
                    out.push(Item::Retry(ms));
                }
            }
            _ => {} // `event:` and unknown fields are ignored
        }
    }
}

/// Decodes a chunked body (RFC 9112 §7.1): `chunk-size [ext] CRLF data CRLF`
/// ... `0 CRLF [trailers] CRLF`. Trailers are not read: the stream is over.
#[derive(Debug, Default)]
struct Dechunker {
    state: ChunkState,
}

#[derive(Debug, Default)]
enum ChunkState {
    /// Reading the hex size; `ext` once a `;` extension started.
    #[default]
    SizeStart,
    Size {
        size: u64,
        ext: bool,
    },
    /// Saw CR after the size line, expecting LF.
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    Done,
}

impl Dechunker {
    /// Calls `emit` with each run of body bytes found in `input`, and with
    /// `None` once the last chunk ends.
    fn decode(
        &mut self,
        mut input: &[u8],
        mut emit: impl FnMut(Option<&[u8]>),
    ) -> Result<(), Error> {
        use ChunkState::*;
        while let Some((&b, rest)) = input.split_first() {
            match self.state {
                Done => return Ok(()),
                Data(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    emit(Some(&input[..n]));
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 { DataCr } else { Data(left) };
                    continue;
                }
                SizeStart => {
                    let d = hex(b).ok_or(Error::Chunk)?;
                    self.state = Size {
                        size: d,
                        ext: false,
                    };
                }
                Size { size, ext } => {
                    self.state = match (b, hex(b)) {
                        (b'\r', _) => SizeLf(size),
                        (_, _) if ext => Size { size, ext },
                        (b';', _) => Size { size, ext: true },
                        (_, Some(d)) if size < (1 << 40) => Size {
                            size: size * 16 + d,
                            ext,
                        },
                        _ => return Err(Error::Chunk),
                    };
                }
                SizeLf(size) => {
                    if b != b'\n' {
                        return Err(Error::Chunk);
                    }
                    if size == 0 {
                        self.state = Done;
                        emit(None);
                        return Ok(());
                    }
                    self.state = Data(size);
                }
                DataCr => {
                    if b != b'\r' {
                        return Err(Error::Chunk);
                    }
                    self.state = DataLf;
                }
                DataLf => {
                    if b != b'\n' {
                        return Err(Error::Chunk);
                    }
                    self.state = SizeStart;
                }
            }
            input = rest;
        }
        Ok(())
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

/// A decimal integer of 1 to 19 digits, nothing else.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Checks `{"symbol":"S","price":P,"ts":T}` exactly (the spec fixes the key
/// order) and returns `T`.
fn parse_price_json(s: &[u8]) -> Option<u64> {
    let s = s.strip_prefix(br#"{"symbol":""#)?;
    let quote = s.iter().position(|&b| b == b'"')?;
    let symbol = &s[..quote];
    let symbol_ok = (1..=16).contains(&symbol.len())
        && symbol
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let s = s[quote..].strip_prefix(br#"","price":"#)?;
    let comma = s.iter().position(|&b| b == b',')?;
    let (price, s) = s.split_at(comma);
    let ts = s.strip_prefix(br#","ts":"#)?.strip_suffix(b"}")?;
    (symbol_ok && is_positive_decimal(price))
        .then(|| parse_u64(ts))
        .flatten()
}

/// `digits [ "." digits ]`, greater than zero, no sign or exponent.
fn is_positive_decimal(s: &[u8]) -> bool {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], Some(&s[dot + 1..])),
        None => (s, None),
    };
    let digits = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    digits(int) && frac.is_none_or(digits) && s.iter().any(|&b| (b'1'..=b'9').contains(&b))
}

/// `"ts":<digits>` anywhere in a malformed data line, so latency can still
/// be measured while the event is counted as malformed.
fn find_ts(s: &[u8]) -> Option<u64> {
    let at = find(s, br#""ts":"#)? + 5;
    let digits = s[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    parse_u64(&s[at..at + digits])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
        Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
    const BODY: &[u8] = b"retry: 3000\n\n\
        id: 1764028800123456\ndata: {\"symbol\":\"BTC\",\"price\":64123.17,\"ts\":1764028800123}\n\n\
        : heartbeat\n\n\
        id: 1764028800123457\ndata: {\"symbol\":\"ETH\",\"price\":3000,\"ts\":1764028800124}\n\n";

    fn expected() -> Vec<Item> {
        vec![
            Item::Head(Head {
                status: 200,
                chunked: false,
            }),
            Item::Retry(3000),
            Item::Event(Event {
                id: Some(EventId::Counter(1764028800123456)),
                ts: Some(1764028800123),
                well_formed: true,
            }),
            Item::Comment,
            Item::Event(Event {
                id: Some(EventId::Counter(1764028800123457)),
                ts: Some(1764028800124),
                well_formed: true,
            }),
        ]
    }

    fn parse_in_pieces(bytes: &[u8], piece: usize) -> Result<Vec<Item>, Error> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(piece) {
            p.feed(chunk, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn whole_response_in_any_split() {
        let all = [HEAD, BODY].concat();
        for piece in 1..=all.len() {
            assert_eq!(
                parse_in_pieces(&all, piece),
                Ok(expected()),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        for eol in [&b"\r\n"[..], b"\r"] {
            let body: Vec<u8> = BODY.split(|&b| b == b'\n').collect::<Vec<_>>().join(eol);
            let all = [HEAD, &body].concat();
            for piece in [1, 2, 7, all.len()] {
                assert_eq!(
                    parse_in_pieces(&all, piece),
                    Ok(expected()),
                    "piece {piece}"
                );
            }
        }
    }

    #[test]
    fn chunked_body_in_any_split() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (a, b) = BODY.split_at(40);
        let mut all = head.to_vec();
        all.extend_from_slice(format!("{:x};ext=1\r\n", a.len()).as_bytes());
        all.extend_from_slice(a);
        all.extend_from_slice(format!("\r\n{:X}\r\n", b.len()).as_bytes());
        all.extend_from_slice(b);
        all.extend_from_slice(b"\r\n0\r\n\r\n");
        let mut want = expected();
        want[0] = Item::Head(Head {
            status: 200,
            chunked: true,
        });
        want.push(Item::End);
        for piece in 1..=all.len() {
            assert_eq!(
                parse_in_pieces(&all, piece),
                Ok(want.clone()),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn response_pieces_in_any_split() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body = b"retry: 5\n\nid: 1\r\ndata: x\r\rdata: y\n\n";
        let mut all = head.to_vec();
        all.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        all.extend_from_slice(body);
        all.extend_from_slice(b"\r\n0\r\n\r\n");
        let want = [
            "head HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "line retry: 5",
            "line ",
            "line id: 1",
            "line data: x",
            "line ",
            "line data: y",
            "line ",
            "end",
        ];
        for piece in 1..=all.len() {
            let mut response = Response::default();
            let mut got = Vec::new();
            for bytes in all.chunks(piece) {
                response
                    .feed(bytes, &mut |p| {
                        got.push(match p {
                            Piece::Head(h, raw) => {
                                assert_eq!(
                                    h,
                                    Head {
                                        status: 200,
                                        chunked: true
                                    }
                                );
                                format!("head {}", String::from_utf8_lossy(raw))
                            }
                            Piece::Line(l) => format!("line {}", String::from_utf8_lossy(l)),
                            Piece::End => "end".to_string(),
                        })
                    })
                    .unwrap();
            }
            assert_eq!(got, want, "piece {piece}");
        }
    }

    #[test]
    fn status_lines() {
        let cases: &[(&[u8], Result<u16, Error>)] = &[
            (b"HTTP/1.1 200 OK\r\n\r\n", Ok(200)),
            (
                b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n",
                Ok(503),
            ),
            (b"HTTP/1.1 404\r\n\r\n", Ok(404)),
            (b"HTTP/2 200 OK\r\n\r\n", Err(Error::StatusLine)),
            (b"HTTP/1.1 20x OK\r\n\r\n", Err(Error::StatusLine)),
            (b"HTTP/1.1 2000 OK\r\n\r\n", Err(Error::StatusLine)),
        ];
        for &(bytes, want) in cases {
            let got = parse_in_pieces(bytes, bytes.len()).map(|items| match items[0] {
                Item::Head(h) => h.status,
                _ => unreachable!(),
            });
            assert_eq!(got, want, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn oversized_head_and_line() {
        let big = vec![b'x'; MAX_HEAD_BYTES + 10];
        assert_eq!(parse_in_pieces(&big, 1000), Err(Error::HeadTooLarge));
        let mut all = HEAD.to_vec();
        all.extend(std::iter::repeat_n(b'd', MAX_LINE_BYTES + 1));
        assert_eq!(parse_in_pieces(&all, 4096), Err(Error::LineTooLong));
    }

    #[test]
    fn data_lines() {
        let cases: &[(&str, Option<u64>, bool)] = &[
            (
                r#"{"symbol":"BTC","price":64123.17,"ts":17}"#,
                Some(17),
                true,
            ),
            (r#"{"symbol":"BRK.B","price":0.5,"ts":1}"#, Some(1), true),
            (r#"{"symbol":"BTC","price":0,"ts":17}"#, Some(17), false),
            (r#"{"symbol":"BTC","price":1e5,"ts":17}"#, Some(17), false),
            (r#"{"symbol":"BTC","price":-1,"ts":17}"#, Some(17), false),
            (r#"{"symbol":"BTC","price":1.,"ts":17}"#, Some(17), false),
            (r#"{"symbol":"btc","price":1,"ts":17}"#, Some(17), false),
            (r#"{"price":1,"symbol":"BTC","ts":17}"#, Some(17), false),
            (r#"{"symbol":"BTC","price":1,"ts":17} "#, Some(17), false),
            (r#"{"symbol":"BTC","price":1}"#, None, false),
        ];
        for &(data, ts, well_formed) in cases {
            let mut all = HEAD.to_vec();
            all.extend_from_slice(format!("data: {data}\n\n").as_bytes());
            let items = parse_in_pieces(&all, all.len()).unwrap();
            let want = Item::Event(Event {
                id: None,
                ts,
                well_formed,
            });
            assert_eq!(items[1], want, "{data}");
        }
    }

    #[test]
    fn redis_entry_ids() {
        let cases: &[(&str, Option<EventId>)] = &[
            ("17", Some(EventId::Counter(17))),
            (
                "1764028800123-0",
                Some(EventId::Entry {
                    ms: 1764028800123,
                    seq: 0,
                }),
            ),
            ("1-18", Some(EventId::Entry { ms: 1, seq: 18 })),
            ("1-", None),
            ("-1", None),
            ("1-2-3", None),
            ("1-x", None),
            ("12a", None),
            ("", None),
        ];
        for &(id, want) in cases {
            assert_eq!(EventId::parse(id.as_bytes()), want, "{id:?}");
            let mut all = HEAD.to_vec();
            all.extend_from_slice(format!("id: {id}\ndata: x\n\n").as_bytes());
            match parse_in_pieces(&all, 5).unwrap()[1] {
                Item::Event(e) => assert_eq!(e.id, want, "{id:?}"),
                ref other => panic!("{other:?}"),
            }
        }
        // Ordered by the two numbers, not as text.
        let id = |s: &str| EventId::parse(s.as_bytes()).unwrap();
        assert!(id("9-5") < id("10-0"));
        assert!(id("10-2") < id("10-10"));
        assert!(id("10-10") < id("11-0"));
        assert_eq!(id("10-10"), id("10-10"));
    }

    #[test]
    fn fields_per_whatwg() {
        // No space after the colon, a non-numeric id, an event without data
        // (not dispatched), and an `event:` field (ignored).
        let body = b"id:5\ndata:{\"symbol\":\"A\",\"price\":1,\"ts\":2}\n\nid: x\nevent: y\n\n\
            id: 7\ndata: {}\n\n";
        let all = [HEAD, &body[..]].concat();
        let items = parse_in_pieces(&all, 3).unwrap();
        assert_eq!(
            items[1..],
            [
                Item::Event(Event {
                    id: Some(EventId::Counter(5)),
                    ts: Some(2),
                    well_formed: true
                }),
                Item::Event(Event {
                    id: Some(EventId::Counter(7)),
                    ts: None,
                    well_formed: false
                }),
            ]
        );
    }
}
