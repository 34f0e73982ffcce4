//! RESP2, the Redis serialization protocol, without sockets: encoding a
//! command ([`push_command`]) and parsing replies from bytes as they arrive
//! ([`Parser`]).
//!
//! The grammar (<https://redis.io/docs/latest/develop/reference/protocol-spec/>):
//!
//! ```text
//! reply   = simple / error / integer / bulk / array
//! simple  = "+" line CRLF          error = "-" line CRLF
//! integer = ":" [ "-" / "+" ] 1*DIGIT CRLF
//! bulk    = "$" length CRLF <length bytes> CRLF  /  "$-1" CRLF
//! array   = "*" length CRLF <length replies>     /  "*-1" CRLF
//! ```
//!
//! where a `line` holds neither CR nor LF. RESP3 types are rejected: the
//! client never sends `HELLO 3`.
//!
//! The parser keeps its place between calls: each byte is handed to it once
//! and examined a bounded number of times, so parsing costs time linear in
//! the reply's bytes however it is split into reads. Its verdict is that of
//! reading byte by byte, so it never depends on the split either. A bulk
//! string over [`MAX_VALUE_BYTES`] is read through without being held and
//! stands in the reply as [`Reply::Skipped`], as does a nested array of
//! plain values (an entry's fields) past [`MAX_FIELDS_BYTES`]: no value,
//! however large (Redis allows 512 MB), makes the client hold more than
//! [`MAX_REPLY_BYTES`] of a reply, and no entry makes a reply of its own
//! too large. A declared length is checked before its
//! payload arrives and never sizes an allocation beyond that bound. A parsed
//! [`Reply`] takes 32 bytes per value plus its text's heap block: up to
//! about 16 times its counted size for a reply made of tiny values, so a
//! hostile reply can cost some 64 MiB; a real one (bulk strings of stream
//! fields) costs 3 to 5 times its size.

use std::io::Write as _;

/// Most bytes of one reply that are kept or counted: everything but the
/// payloads of skipped values. A page of 1,000 stream entries is about
/// 100 KiB.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;
/// Longest bulk string kept; a longer one is read through and skipped.
pub const MAX_VALUE_BYTES: usize = 4 * 1024;
/// Most bytes counted for a nested array of plain values (a stream entry's
/// fields); past it the array is read through and skipped, so that an entry
/// of many small fields cannot make even a page of one entry too large.
pub const MAX_FIELDS_BYTES: usize = 1024 * 1024;
/// Longest bulk string that may be declared at all: Redis's own limit
/// (`proto-max-bulk-len`, 512 MB); a larger length is a broken reply.
pub const MAX_DECLARED_BYTES: usize = 512 * 1024 * 1024;
/// Longest `+`, `-` or `:` line or `$`/`*` length header, without its CRLF.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most elements one array may declare.
pub const MAX_ARRAY_LEN: usize = 1024 * 1024;
/// Most arrays nested in one another (an XREAD reply needs 5).
pub const MAX_DEPTH: usize = 8;
/// Most elements reserved up front for an array, whatever it declares.
const ARRAY_PREALLOC: usize = 16;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: the line, decoded as UTF-8 (lossily: Redis sends ASCII).
    Simple(String),
    /// `-ERR message`: the line without its `-`, decoded as for `Simple`.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`, or `None` for the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// Read and dropped: a bulk string over [`MAX_VALUE_BYTES`] (its
    /// length), or a nested array of plain values over [`MAX_FIELDS_BYTES`]
    /// (its element count).
    Skipped(usize),
    /// `*2\r\n...`, or `None` for the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

/// Why bytes are not a RESP2 reply: one line naming the rule broken, such
/// as [`TOO_LARGE`].
pub type RespError = &'static str;

/// The reply passed [`MAX_REPLY_BYTES`] (counted as the module doc says),
/// or a bulk string declared more than [`MAX_DECLARED_BYTES`].
pub const TOO_LARGE: RespError = "reply larger than 4194304 bytes";

/// Appends a command as an array of bulk strings: `*N\r\n$len\r\narg\r\n...`.
pub fn push_command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "*{}\r\n", args.len());
    for arg in args {
        let _ = write!(buf, "${}\r\n", arg.len());
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

/// Where the parser is within a reply.
#[derive(Debug, Default)]
enum State {
    /// Before a value's type byte.
    #[default]
    Start,
    /// In the line after the type byte `kind`; `cr` once its CR is read.
    Line { kind: u8, text: Vec<u8>, cr: bool },
    /// In a bulk payload of `len` bytes, `left` of them still to come;
    /// `kept` is `None` while a value over [`MAX_VALUE_BYTES`] is skipped.
    Bulk {
        len: usize,
        left: usize,
        kept: Option<Vec<u8>>,
    },
    /// After a bulk payload: `seen` bytes of its CRLF read.
    BulkEnd { value: Reply, seen: u8 },
}

/// A RESP2 reply parser that keeps its place between calls, so bytes can
/// be handed to it as they arrive, each once. After an error it must not
/// be used again (the connection's state is unknown).
#[derive(Debug, Default)]
pub struct Parser {
    state: State,
    reply: Partial,
}

/// The arrays of the reply being read, and what it has cost.
#[derive(Debug, Default)]
struct Partial {
    /// Arrays being filled, outermost first.
    open: Vec<Open>,
    /// Bytes of this reply counted against [`MAX_REPLY_BYTES`].
    counted: usize,
}

/// An array being filled.
#[derive(Debug)]
struct Open {
    items: Vec<Reply>,
    /// Its elements: declared, and still due.
    len: usize,
    due: usize,
    /// `counted` once its header was read.
    counted_before: usize,
    /// True while none of its elements is an array.
    plain: bool,
    /// True once it is read through: its elements are neither kept nor
    /// counted (an array within it is, as far as the reply's bound).
    skipping: bool,
}

impl Parser {
    /// Reads from `input` until a reply is complete or `input` ends:
    /// returns the bytes used and the reply if it is complete (the bytes
    /// after it belong to the next reply). Bytes used are never needed
    /// again.
    pub fn parse(&mut self, input: &[u8]) -> Result<(usize, Option<Reply>), RespError> {
        let mut pos = 0;
        loop {
            let value = match &mut self.state {
                State::Start => {
                    let Some(&kind) = input.get(pos) else {
                        return Ok((pos, None));
                    };
                    self.reply.count(1)?;
                    if !b"+-:$*".contains(&kind) {
                        return Err("unknown type byte (RESP2 has + - : $ *)");
                    }
                    if kind == b'*' && self.reply.open.len() >= MAX_DEPTH {
                        return Err("arrays nested more than 8 deep");
                    }
                    pos += 1;
                    let text = Vec::new();
                    self.state = State::Line {
                        kind,
                        text,
                        cr: false,
                    };
                    continue;
                }
                State::Line { kind, text, cr } => {
                    let Some(&byte) = input.get(pos) else {
                        return Ok((pos, None));
                    };
                    pos += 1;
                    self.reply.count(1)?;
                    match (byte, *cr) {
                        (b'\n', true) => {}
                        (_, true) | (b'\n', false) => return Err("line not ended by CRLF"),
                        (b'\r', false) => {
                            *cr = true;
                            continue;
                        }
                        _ if text.len() == MAX_LINE_BYTES => {
                            return Err("line longer than 65536 bytes")
                        }
                        _ => {
                            text.push(byte);
                            continue;
                        }
                    }
                    let (kind, text) = (*kind, std::mem::take(text));
                    self.state = State::Start;
                    match self.line_done(kind, &text)? {
                        Some(value) => value,
                        None => continue,
                    }
                }
                State::Bulk { len, left, kept } => {
                    let take = (*left).min(input.len() - pos);
                    if let Some(kept) = kept {
                        kept.extend_from_slice(&input[pos..pos + take]);
                    }
                    pos += take;
                    *left -= take;
                    if *left > 0 {
                        return Ok((pos, None));
                    }
                    let value = match kept.take() {
                        Some(kept) => Reply::Bulk(Some(kept)),
                        None => Reply::Skipped(*len),
                    };
                    self.state = State::BulkEnd { value, seen: 0 };
                    continue;
                }
                State::BulkEnd { value, seen } => {
                    let Some(&byte) = input.get(pos) else {
                        return Ok((pos, None));
                    };
                    pos += 1;
                    if byte != b"\r\n"[usize::from(*seen)] {
                        return Err("line not ended by CRLF");
                    }
                    *seen += 1;
                    if *seen < 2 {
                        continue;
                    }
                    std::mem::replace(value, Reply::Bulk(None))
                }
            };
            self.state = State::Start;
            if let Some(reply) = self.reply.finish(value) {
                return Ok((pos, Some(reply)));
            }
        }
    }

    /// A line after its type byte is complete: the value it makes, or
    /// `None` when a bulk payload or an array's elements follow.
    fn line_done(&mut self, kind: u8, line: &[u8]) -> Result<Option<Reply>, RespError> {
        let text = || String::from_utf8_lossy(line).into_owned();
        Ok(Some(match (kind, length(kind, line)?) {
            (b'+', _) => Reply::Simple(text()),
            (b'-', _) => Reply::Error(text()),
            (b':', _) => Reply::Integer(integer(line).ok_or("malformed integer")?),
            (b'$', None) => Reply::Bulk(None),
            (b'$', Some(len)) if len > MAX_DECLARED_BYTES => return Err(TOO_LARGE),
            (b'$', Some(len)) => {
                // The payload and its CRLF count, unless it is skipped.
                let kept = len <= MAX_VALUE_BYTES;
                self.reply.count(if kept { len + 2 } else { 2 })?;
                let kept = kept.then(|| Vec::with_capacity(len));
                self.state = State::Bulk {
                    len,
                    left: len,
                    kept,
                };
                return Ok(None);
            }
            (_, None) => Reply::Array(None),
            (_, Some(len)) if len > MAX_ARRAY_LEN => {
                return Err("array of more than 1048576 elements")
            }
            (_, Some(0)) => Reply::Array(Some(Vec::new())),
            (_, Some(len)) => {
                self.reply.open.push(Open {
                    items: Vec::with_capacity(len.min(ARRAY_PREALLOC)),
                    len,
                    due: len,
                    counted_before: self.reply.counted,
                    plain: true,
                    skipping: false,
                });
                return Ok(None);
            }
        }))
    }
}

impl Partial {
    /// Counts `n` more bytes of the reply against its limit; a nested array
    /// of plain values past [`MAX_FIELDS_BYTES`] is from then on read
    /// through, its bytes no longer counted.
    fn count(&mut self, n: usize) -> Result<(), RespError> {
        let nested = self.open.len() > 1;
        if let Some(open) = self.open.last_mut().filter(|open| nested && open.plain) {
            if open.skipping || self.counted + n - open.counted_before > MAX_FIELDS_BYTES {
                self.counted = open.counted_before;
                open.items = Vec::new();
                open.skipping = true;
                return Ok(());
            }
        }
        self.counted = self.counted.saturating_add(n);
        (self.counted <= MAX_REPLY_BYTES)
            .then_some(())
            .ok_or(TOO_LARGE)
    }

    /// Puts a complete value in the array being filled, closing every array
    /// it completes; returns the reply when the outermost value is complete.
    fn finish(&mut self, mut value: Reply) -> Option<Reply> {
        loop {
            let Some(open) = self.open.last_mut() else {
                self.counted = 0;
                return Some(value);
            };
            open.plain &= !matches!(value, Reply::Array(_));
            if !open.skipping {
                open.items.push(value);
            }
            open.due -= 1;
            if open.due > 0 {
                return None;
            }
            let open = self.open.pop()?;
            value = match open.skipping {
                true => Reply::Skipped(open.len),
                false => Reply::Array(Some(open.items)),
            };
        }
    }
}

/// A `$` or `*` line's length: `None` for `-1`; a length too large for
/// `usize` saturates (and fails the caller's limit). Other lines: `None`.
fn length(kind: u8, line: &[u8]) -> Result<Option<usize>, RespError> {
    if kind != b'$' && kind != b'*' || line == b"-1" {
        return Ok(None);
    }
    if line.is_empty() || !line.iter().all(u8::is_ascii_digit) {
        return Err("malformed length");
    }
    Ok(Some(line.iter().fold(0usize, |n, d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    })))
}

/// `[ "-" / "+" ] 1*DIGIT` as an `i64`.
fn integer(line: &[u8]) -> Option<i64> {
    let digits = line.strip_prefix(b"-").or(line.strip_prefix(b"+"));
    let digits = digits.unwrap_or(line);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(line).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The parser's errors, each by the rule it names.
    const TYPE: RespError = "unknown type byte (RESP2 has + - : $ *)";
    const LINE: RespError = "line not ended by CRLF";
    const LINE_TOO_LONG: RespError = "line longer than 65536 bytes";
    const LENGTH: RespError = "malformed length";
    const INTEGER: RespError = "malformed integer";
    const ARRAY_TOO_LONG: RespError = "array of more than 1048576 elements";
    const DEPTH: RespError = "arrays nested more than 8 deep";

    /// The outcome of parsing the bytes received so far.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Parsed {
        /// The reply is not complete yet (and no limit is passed): read more.
        Partial,
        /// A complete reply, and the number of bytes it took from the buffer.
        Complete(Reply, usize),
    }

    /// Parses one reply from the start of `buf` (everything received so far).
    /// Bytes after the reply are left alone.
    fn parse_reply(buf: &[u8]) -> Result<Parsed, RespError> {
        Ok(match Parser::default().parse(buf)? {
            (used, Some(reply)) => Parsed::Complete(reply, used),
            (_, None) => Parsed::Partial,
        })
    }

    impl Parser {
        /// Bytes held between calls outside finished values: the line or
        /// bulk payload in progress.
        fn held(&self) -> usize {
            match &self.state {
                State::Line { text, .. } => text.capacity(),
                State::Bulk { kept, .. } => kept.as_ref().map_or(0, Vec::capacity),
                _ => 0,
            }
        }
    }

    fn bulk(bytes: &[u8]) -> Reply {
        Reply::Bulk(Some(bytes.to_vec()))
    }

    fn array(items: Vec<Reply>) -> Reply {
        Reply::Array(Some(items))
    }

    fn simple(text: &str) -> Reply {
        Reply::Simple(text.into())
    }

    /// The lengths `0..len` at which to cut an input: all of them for a
    /// short one; for a long one its ends and a stride between (a parse of
    /// every prefix would take quadratic time).
    fn cuts(len: usize) -> impl Iterator<Item = usize> {
        const ALL: usize = 512;
        (0..len).filter(move |&cut| {
            len <= ALL || cut < ALL / 2 || len - cut <= ALL / 2 || cut % 997 == 0
        })
    }

    /// Every proper prefix is `Partial`, the whole is `Complete`, and bytes
    /// after the reply change nothing.
    fn assert_complete(bytes: &[u8], expected: &Reply) {
        let show = String::from_utf8_lossy(bytes);
        for cut in cuts(bytes.len()) {
            assert_eq!(
                parse_reply(&bytes[..cut]),
                Ok(Parsed::Partial),
                "{show:?} cut at {cut}"
            );
        }
        let complete = Ok(Parsed::Complete(expected.clone(), bytes.len()));
        assert_eq!(parse_reply(bytes), complete, "{show:?}");
        // Handed over in two pieces, to one parser that keeps its place.
        for cut in cuts(bytes.len()) {
            let mut parser = Parser::default();
            assert_eq!(
                parser.parse(&bytes[..cut]),
                Ok((cut, None)),
                "{show:?} {cut}"
            );
            let rest = parser.parse(&bytes[cut..]);
            assert_eq!(
                rest,
                Ok((bytes.len() - cut, Some(expected.clone()))),
                "{show:?} {cut}"
            );
        }
        let mut more = bytes.to_vec();
        more.extend_from_slice(b"+next\r\n");
        assert_eq!(parse_reply(&more), complete, "{show:?} with more");
    }

    /// The whole gives `error`, and so does every prefix from the first one
    /// that gives an error: the verdict never changes as bytes arrive.
    fn assert_error(bytes: &[u8], error: RespError) {
        let show = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]);
        let mut seen = false;
        for cut in cuts(bytes.len() + 1) {
            match parse_reply(&bytes[..cut]) {
                Ok(Parsed::Partial) if !seen => {}
                Err(e) if e == error => seen = true,
                other => panic!("{show:?} cut at {cut}: {other:?}, expected {error:?}"),
            }
        }
        assert!(seen, "{show:?}");
        for cut in cuts(bytes.len()) {
            let mut parser = Parser::default();
            let verdict = match parser.parse(&bytes[..cut]) {
                Ok((_, None)) => parser.parse(&bytes[cut..]).map(|(_, reply)| reply),
                first => first.map(|(_, reply)| reply),
            };
            assert_eq!(verdict, Err(error), "{show:?} in two at {cut}");
        }
    }

    #[test]
    fn commands() {
        let mut buf = Vec::new();
        push_command(&mut buf, &[b"PING"]);
        assert_eq!(buf, b"*1\r\n$4\r\nPING\r\n");
        buf.clear();
        push_command(
            &mut buf,
            &[b"XADD", b"k", b"MAXLEN", b"~", b"10", b"*", b"", b"a\r\nb"],
        );
        assert_eq!(
            buf,
            b"*8\r\n$4\r\nXADD\r\n$1\r\nk\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$2\r\n10\r\n\
              $1\r\n*\r\n$0\r\n\r\n$4\r\na\r\nb\r\n"
        );
    }

    #[test]
    fn replies() {
        let entry = |id: &[u8], fields: &[&[u8]]| {
            array(vec![
                bulk(id),
                array(fields.iter().map(|f| bulk(f)).collect()),
            ])
        };
        let cases: Vec<(&[u8], Reply)> = vec![
            // PING, AUTH, SELECT, TYPE
            (b"+PONG\r\n", simple("PONG")),
            (b"+OK\r\n", simple("OK")),
            (b"+stream\r\n", simple("stream")),
            (b"+none\r\n", simple("none")),
            (b"+\r\n", simple("")),
            (
                b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into()),
            ),
            (
                b"-NOAUTH Authentication required.\r\n",
                Reply::Error("NOAUTH Authentication required.".into()),
            ),
            (b"-ERR\r\n", Reply::Error("ERR".into())),
            (b":0\r\n", Reply::Integer(0)),
            (b":-1\r\n", Reply::Integer(-1)),
            (b":+7\r\n", Reply::Integer(7)),
            (b":9223372036854775807\r\n", Reply::Integer(i64::MAX)),
            (b":-9223372036854775808\r\n", Reply::Integer(i64::MIN)),
            // XADD
            (b"$15\r\n1764028800123-0\r\n", bulk(b"1764028800123-0")),
            (b"$0\r\n\r\n", bulk(b"")),
            (b"$4\r\na\r\nb\r\n", bulk(b"a\r\nb")),
            (b"$-1\r\n", Reply::Bulk(None)),
            // XRANGE / XREVRANGE
            (b"*0\r\n", array(vec![])),
            (b"*-1\r\n", Reply::Array(None)),
            (
                b"*1\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$6\r\nsymbol\r\n$3\r\nBTC\r\n$5\r\nprice\r\n$3\r\n1.5\r\n",
                array(vec![entry(b"1-0", &[b"symbol", b"BTC", b"price", b"1.5"])]),
            ),
            (
                b"*2\r\n*2\r\n$3\r\n1-0\r\n*0\r\n*2\r\n$3\r\n2-0\r\n*-1\r\n",
                array(vec![
                    entry(b"1-0", &[]),
                    array(vec![bulk(b"2-0"), Reply::Array(None)]),
                ]),
            ),
            // XREAD
            (
                b"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
                array(vec![array(vec![bulk(b"k"), array(vec![entry(b"5-1", &[b"a", b"b"])])])]),
            ),
            (
                b"*3\r\n:1\r\n+x\r\n-E y\r\n",
                array(vec![Reply::Integer(1), simple("x"), Reply::Error("E y".into())]),
            ),
            (b"+caf\xc3\xa9 \xff\r\n", simple("caf\u{e9} \u{fffd}")),
        ];
        for (bytes, expected) in &cases {
            assert_complete(bytes, expected);
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&[u8], RespError)] = &[
            (b"%1\r\n", TYPE),
            (b"_\r\n", TYPE),
            (b"OK\r\n", TYPE),
            (b"*2\r\n+a\r\n?\r\n", TYPE),
            (b"+a\rb\r\n", LINE),
            (b"+a\nb\r\n", LINE),
            (b"+a\r\r\n", LINE),
            (b"$3\r\nabcd\r\n", LINE),
            (b"$3\r\nabc\rx", LINE),
            (b"$3\r\nabc\n", LINE),
            (b"$\r\n", LENGTH),
            (b"$-2\r\n", LENGTH),
            (b"$-0\r\n", LENGTH),
            (b"$+3\r\nabc\r\n", LENGTH),
            (b"$ 3\r\nabc\r\n", LENGTH),
            (b"*1x\r\n", LENGTH),
            (b"*-1 \r\n", LENGTH),
            (b":\r\n", INTEGER),
            (b":-\r\n", INTEGER),
            (b":1.5\r\n", INTEGER),
            (b":9223372036854775808\r\n", INTEGER),
            (b":--1\r\n", INTEGER),
            (b"$99999999999999999999999999\r\n", TOO_LARGE),
            (b"*99999999999999999999999999\r\n", ARRAY_TOO_LONG),
        ];
        for (bytes, error) in cases {
            assert_error(bytes, error);
        }
    }

    #[test]
    fn line_limit() {
        let line = |len: usize| {
            let mut l = b"+".to_vec();
            l.resize(1 + len, b'a');
            l
        };
        let mut ok = line(MAX_LINE_BYTES);
        assert_eq!(parse_reply(&ok), Ok(Parsed::Partial));
        ok.extend_from_slice(b"\r\n");
        assert_complete(&ok, &simple(&"a".repeat(MAX_LINE_BYTES)));
        // One more byte without CRLF: an error at once, CRLF or not.
        assert_error(&line(MAX_LINE_BYTES + 1), LINE_TOO_LONG);
        let mut long = line(MAX_LINE_BYTES + 1);
        long.extend_from_slice(b"\r\n");
        assert_error(&long, LINE_TOO_LONG);
        // Length headers count too.
        let mut header = b"$".to_vec();
        header.resize(1 + MAX_LINE_BYTES + 1, b'0');
        assert_error(&header, LINE_TOO_LONG);
    }

    /// `$len` with `len` bytes of `fill`.
    fn bulk_bytes(len: usize, fill: u8) -> Vec<u8> {
        let mut bytes = format!("${len}\r\n").into_bytes();
        bytes.resize(bytes.len() + len, fill);
        bytes.extend_from_slice(b"\r\n");
        bytes
    }

    #[test]
    fn values_over_the_bound_are_skipped_at_every_split() {
        for len in [
            MAX_VALUE_BYTES - 1,
            MAX_VALUE_BYTES,
            MAX_VALUE_BYTES + 1,
            3 * MAX_VALUE_BYTES,
        ] {
            let mut bytes = b"*3\r\n$5\r\nhello\r\n".to_vec();
            bytes.extend_from_slice(&bulk_bytes(len, b'\n'));
            bytes.extend_from_slice(b":1\r\n");
            let value = match len <= MAX_VALUE_BYTES {
                true => bulk(&vec![b'\n'; len]),
                false => Reply::Skipped(len),
            };
            let expected = array(vec![bulk(b"hello"), value, Reply::Integer(1)]);
            assert_complete(&bytes, &expected);
        }
        // A skipped payload not ended by CRLF is still a broken reply.
        let mut bytes = bulk_bytes(MAX_VALUE_BYTES + 1, b'x');
        bytes.truncate(bytes.len() - 2);
        bytes.extend_from_slice(b"x\r\n");
        assert_error(&bytes, LINE);
    }

    /// A stream entry's fields past [`MAX_FIELDS_BYTES`] (many small ones,
    /// none skipped by itself) are read through and stand as one
    /// `Skipped`, however the bytes arrive; the entries around it are kept.
    /// A plain array at the top, or an array of arrays, is never skipped.
    #[test]
    fn nested_plain_arrays_over_the_bound_are_skipped() {
        let field = bulk_bytes(10, b'f');
        let entry = |id: &str, fields: usize| {
            let mut bytes = format!("*2\r\n$3\r\n{id}\r\n*{fields}\r\n").into_bytes();
            bytes.extend_from_slice(&field.repeat(fields));
            bytes
        };
        let parsed = |id: &str, fields: Reply| array(vec![bulk(id.as_bytes()), fields]);
        let fields = |n: usize| array(vec![bulk(b"ffffffffff"); n]);
        let (under, over) = (
            MAX_FIELDS_BYTES / field.len(),
            MAX_FIELDS_BYTES / field.len() + 1,
        );
        let mut bytes = b"*3\r\n".to_vec();
        for (id, n) in [("1-0", 2), ("2-0", over), ("3-0", under)] {
            bytes.extend_from_slice(&entry(id, n));
        }
        let expected = array(vec![
            parsed("1-0", fields(2)),
            parsed("2-0", Reply::Skipped(over)),
            parsed("3-0", fields(under)),
        ]);
        for size in [1, 7, 4096, 65536, bytes.len()] {
            let mut parser = Parser::default();
            let mut reply = None;
            for chunk in bytes.chunks(size) {
                let (used, done) = parser.parse(chunk).expect("valid");
                assert_eq!(used, chunk.len());
                assert!(parser.held() < 64, "{} bytes held", parser.held());
                reply = reply.or(done);
            }
            assert_eq!(reply.as_ref(), Some(&expected), "in pieces of {size}");
        }
        // At the top, the same array is kept whole.
        let mut top = format!("*{over}\r\n").into_bytes();
        top.extend_from_slice(&field.repeat(over));
        let whole = Parsed::Complete(fields(over), top.len());
        assert_eq!(parse_reply(&top), Ok(whole));
        // An array of arrays (an XREAD's entries) is kept whole too.
        let pairs = over / 2 + 1;
        let mut nested = format!("*1\r\n*{pairs}\r\n").into_bytes();
        for _ in 0..pairs {
            nested.extend_from_slice(b"*2\r\n");
            nested.extend_from_slice(&field.repeat(2));
        }
        let kept = array(vec![array(vec![fields(2); pairs])]);
        assert_eq!(
            parse_reply(&nested),
            Ok(Parsed::Complete(kept, nested.len()))
        );
    }

    /// A value of 10 MiB, handed over 64 KiB at a time, is never held: the
    /// parser keeps no more than a line between calls.
    #[test]
    fn a_skipped_value_is_not_held() {
        let len = 10 * 1024 * 1024;
        let mut bytes = b"*2\r\n".to_vec();
        bytes.extend_from_slice(&bulk_bytes(len, b'x'));
        bytes.extend_from_slice(b"+end\r\n");
        let mut parser = Parser::default();
        let mut reply = None;
        for chunk in bytes.chunks(64 * 1024) {
            let (used, done) = parser.parse(chunk).expect("valid");
            assert_eq!(used, chunk.len());
            assert!(parser.held() < 64, "{} bytes held", parser.held());
            reply = reply.or(done);
        }
        let expected = array(vec![Reply::Skipped(len), simple("end")]);
        assert_eq!(reply, Some(expected));
    }

    /// A 4 MB page of small fields handed over as 64 KiB reads: each byte is
    /// handed to the parser once (it never asks for bytes again), and a
    /// reply that completes inside a read leaves the rest for the next.
    #[test]
    fn parsing_is_linear_in_the_bytes() {
        let field = bulk_bytes(5, b'f');
        let entries = MAX_REPLY_BYTES / 2 / (field.len() * 20);
        let mut reply = format!("*{entries}\r\n").into_bytes();
        for n in 0..entries {
            reply.extend_from_slice(b"*2\r\n");
            reply.extend_from_slice(&bulk_bytes(format!("{n}-0").len(), b'1'));
            reply.extend_from_slice(b"*20\r\n");
            reply.extend_from_slice(&field.repeat(20));
        }
        assert!(reply.len() > 2 * 1024 * 1024, "{}", reply.len());
        let mut wire = reply.repeat(2);
        wire.extend_from_slice(b"+next\r\n");
        let (mut parser, mut handed, mut replies) = (Parser::default(), 0, 0);
        let mut pending: &[u8] = &[];
        let mut reads = wire.chunks(64 * 1024);
        loop {
            if pending.is_empty() {
                match reads.next() {
                    Some(read) => pending = read,
                    None => break,
                }
            }
            handed += pending.len();
            let (used, done) = parser.parse(pending).expect("valid");
            handed -= pending.len() - used;
            pending = &pending[used..];
            replies += usize::from(done.is_some());
        }
        assert_eq!(replies, 3);
        assert_eq!(handed, wire.len(), "each byte handed over once");
    }

    #[test]
    fn reply_size_limit() {
        // Kept values and lines count: an array of 4 KiB values and a
        // padding line that ends exactly at the limit.
        let full = bulk_bytes(MAX_VALUE_BYTES, b'x');
        let n = (MAX_REPLY_BYTES - 40_000) / full.len();
        let mut exact = format!("*{}\r\n", n + 1).into_bytes();
        for _ in 0..n {
            exact.extend_from_slice(&full);
        }
        let room = MAX_REPLY_BYTES - exact.len() - 3;
        exact.push(b'+');
        exact.resize(exact.len() + room, b'y');
        exact.extend_from_slice(b"\r\n");
        assert_eq!(exact.len(), MAX_REPLY_BYTES);
        assert!(matches!(
            parse_reply(&exact),
            Ok(Parsed::Complete(_, MAX_REPLY_BYTES))
        ));
        // One more byte of the line: its CRLF could only end past the limit.
        let mut over = exact[..MAX_REPLY_BYTES - 2].to_vec();
        over.push(b'y');
        assert_eq!(parse_reply(&over), Ok(Parsed::Partial));
        over.extend_from_slice(b"\r\n");
        assert_eq!(parse_reply(&over), Err(TOO_LARGE));
        // A kept value that would pass the limit is refused on its header,
        // before any payload.
        let m = MAX_REPLY_BYTES / full.len() + 1;
        let mut declared = format!("*{m}\r\n").into_bytes();
        declared.extend_from_slice(&full.repeat(m - 1));
        declared.extend_from_slice(&full[..7]);
        assert!(declared.len() < MAX_REPLY_BYTES);
        assert_eq!(parse_reply(&declared), Err(TOO_LARGE));
        assert_eq!(
            parse_reply(&declared[..declared.len() - 1]),
            Ok(Parsed::Partial)
        );
        // Skipped payloads do not count; a length Redis never sends does.
        let mut skipped = exact[..MAX_REPLY_BYTES - room - 3].to_vec();
        skipped.extend_from_slice(&bulk_bytes(MAX_VALUE_BYTES * 40, b'z'));
        assert!(matches!(parse_reply(&skipped), Ok(Parsed::Complete(..))));
        assert_error(
            format!("${}\r\n", MAX_DECLARED_BYTES + 1).as_bytes(),
            TOO_LARGE,
        );
    }

    #[test]
    fn array_and_depth_limits() {
        let header = |len: usize| format!("*{len}\r\n").into_bytes();
        assert_eq!(parse_reply(&header(MAX_ARRAY_LEN)), Ok(Parsed::Partial));
        assert_error(&header(MAX_ARRAY_LEN + 1), ARRAY_TOO_LONG);

        let nested = |depth: usize| {
            let mut bytes = b"*1\r\n".repeat(depth);
            bytes.extend_from_slice(b":1\r\n");
            bytes
        };
        let mut reply = Reply::Integer(1);
        for _ in 0..MAX_DEPTH {
            reply = array(vec![reply]);
        }
        assert_complete(&nested(MAX_DEPTH), &reply);
        assert_error(&nested(MAX_DEPTH + 1), DEPTH);
        let mut null = b"*1\r\n".repeat(MAX_DEPTH);
        null.extend_from_slice(b"*-1\r\n");
        assert_error(&null, DEPTH);
    }

    #[test]
    fn verdict_never_changes_as_bytes_arrive() {
        let seeds: [&[u8]; 4] = [
            b"*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n",
            b"*1\r\n*2\r\n$1\r\nk\r\n*-1\r\n",
            b"-ERR x\r\n",
            b":-12\r\n",
        ];
        let noise = b"+-:$*-0123456789\r\nx%";
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5_000 {
            let mut bytes = seeds[rng.usize(..seeds.len())].to_vec();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..bytes.len());
                let byte = noise[rng.usize(..noise.len())];
                match rng.u8(..3) {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => drop(bytes.remove(at)),
                }
            }
            // Once a prefix has a verdict, every longer prefix has it too.
            let mut verdict = None;
            for cut in 0..=bytes.len() {
                let now = parse_reply(&bytes[..cut]);
                match (&verdict, &now) {
                    (None, Ok(Parsed::Partial)) => {}
                    (None, _) => verdict = Some(now),
                    (Some(Err(e)), _) => assert_eq!(now, Err(*e), "{bytes:?} at {cut}"),
                    (Some(Ok(Parsed::Complete(reply, used))), _) => assert_eq!(
                        now,
                        Ok(Parsed::Complete(reply.clone(), *used)),
                        "{bytes:?} at {cut}"
                    ),
                    (Some(Ok(Parsed::Partial)), _) => unreachable!(),
                }
            }
        }
    }

    #[test]
    fn messages_name_the_limits() {
        assert_eq!(
            std::mem::size_of::<Reply>(),
            32,
            "the module doc counts on it"
        );
        // The parser's messages (checked against these by the tests above)
        // name the limits' values.
        assert_eq!(
            TOO_LARGE,
            format!("reply larger than {MAX_REPLY_BYTES} bytes")
        );
        assert_eq!(
            LINE_TOO_LONG,
            format!("line longer than {MAX_LINE_BYTES} bytes")
        );
        assert_eq!(
            ARRAY_TOO_LONG,
            format!("array of more than {MAX_ARRAY_LEN} elements")
        );
        assert_eq!(DEPTH, format!("arrays nested more than {MAX_DEPTH} deep"));
    }
}
