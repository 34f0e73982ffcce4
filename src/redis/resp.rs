//! RESP2, the Redis serialization protocol, without sockets: encoding a
//! command ([`push_command`]) and parsing one reply from bytes
//! ([`parse_reply`]).
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
//! client never sends `HELLO 3`. The parser reads the bytes strictly from
//! left to right and checks every limit against the bytes seen so far, so
//! its verdict never depends on how the bytes were split into reads: a
//! prefix of a valid reply is [`Parsed::Partial`], and an invalid reply gets
//! the same error from the first prefix that shows the fault onwards. A
//! declared length is checked before its payload arrives and never sizes an
//! allocation. A parsed [`Reply`] takes 32 bytes per value plus its text's
//! heap block: up to about 16 times its wire size for a reply made of tiny
//! values, so a hostile reply can cost some 64 MiB; a real one (bulk
//! strings of stream fields) costs 3 to 5 times its size.

use std::fmt;
use std::io::Write as _;

/// Largest reply accepted, in bytes on the wire, declared or observed: a
/// page of 1,000 stream entries is about 100 KiB.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;
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
    /// `*2\r\n...`, or `None` for the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

/// The outcome of parsing the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The reply is not complete yet (and no limit is passed): read more.
    Partial,
    /// A complete reply, and the number of bytes it took from the buffer.
    Complete(Reply, usize),
}

/// Why bytes are not a RESP2 reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// A value starts with a byte other than `+ - : $ *`.
    Type,
    /// A line or a bulk payload not ended by CRLF (a bare CR or LF).
    Line,
    /// A line passed [`MAX_LINE_BYTES`] without its CRLF.
    LineTooLong,
    /// A `$` or `*` length that is neither `-1` nor digits.
    Length,
    /// A `:` value that is not a decimal 64-bit integer.
    Integer,
    /// The reply passed [`MAX_REPLY_BYTES`], declared or observed.
    TooLarge,
    /// An array declared more than [`MAX_ARRAY_LEN`] elements.
    ArrayTooLong,
    /// Arrays nested more than [`MAX_DEPTH`] deep.
    Depth,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::Type => write!(f, "unknown type byte (RESP2 has + - : $ *)"),
            RespError::Line => write!(f, "line not ended by CRLF"),
            RespError::LineTooLong => write!(f, "line longer than {MAX_LINE_BYTES} bytes"),
            RespError::Length => write!(f, "malformed length"),
            RespError::Integer => write!(f, "malformed integer"),
            RespError::TooLarge => write!(f, "reply larger than {MAX_REPLY_BYTES} bytes"),
            RespError::ArrayTooLong => write!(f, "array of more than {MAX_ARRAY_LEN} elements"),
            RespError::Depth => write!(f, "arrays nested more than {MAX_DEPTH} deep"),
        }
    }
}

impl std::error::Error for RespError {}

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

/// Parses one reply from the start of `buf` (everything received so far).
/// Bytes after the reply are left alone.
pub fn parse_reply(buf: &[u8]) -> Result<Parsed, RespError> {
    Ok(match value(buf, 0, 0)? {
        Some((reply, end)) => Parsed::Complete(reply, end),
        None => Parsed::Partial,
    })
}

/// A value starting at `pos`, inside `depth` arrays: the value and the
/// position after it, or `None` if more bytes are needed.
fn value(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Reply, usize)>, RespError> {
    let Some(kind) = byte_at(buf, pos)? else {
        return Ok(None);
    };
    if !b"+-:$*".contains(&kind) {
        return Err(RespError::Type);
    }
    if kind == b'*' && depth >= MAX_DEPTH {
        return Err(RespError::Depth);
    }
    let Some((line, pos)) = line(buf, pos + 1)? else {
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(line).into_owned();
    match kind {
        b'+' => Ok(Some((Reply::Simple(text()), pos))),
        b'-' => Ok(Some((Reply::Error(text()), pos))),
        b':' => {
            let n = integer(line).ok_or(RespError::Integer)?;
            Ok(Some((Reply::Integer(n), pos)))
        }
        b'$' => bulk(buf, pos, length(line)?),
        _ => array(buf, pos, length(line)?, depth),
    }
}

/// The payload of a bulk string of `len` bytes (`None`: null) at `pos`.
fn bulk(buf: &[u8], pos: usize, len: Option<usize>) -> Result<Option<(Reply, usize)>, RespError> {
    let Some(len) = len else {
        return Ok(Some((Reply::Bulk(None), pos)));
    };
    // The whole reply must fit, payload and CRLF included: known now,
    // before any of the payload arrives.
    if pos.saturating_add(len).saturating_add(2) > MAX_REPLY_BYTES {
        return Err(RespError::TooLarge);
    }
    let end = pos + len;
    match (buf.get(end), buf.get(end + 1)) {
        (Some(b'\r'), Some(b'\n')) => {
            let payload = buf[pos..end].to_vec();
            Ok(Some((Reply::Bulk(Some(payload)), end + 2)))
        }
        (None, _) | (Some(b'\r'), None) => Ok(None),
        _ => Err(RespError::Line),
    }
}

/// The `len` elements (`None`: null array) of an array at `pos`, inside
/// `depth` arrays.
fn array(
    buf: &[u8],
    mut pos: usize,
    len: Option<usize>,
    depth: usize,
) -> Result<Option<(Reply, usize)>, RespError> {
    let Some(len) = len else {
        return Ok(Some((Reply::Array(None), pos)));
    };
    if len > MAX_ARRAY_LEN {
        return Err(RespError::ArrayTooLong);
    }
    let mut items = Vec::with_capacity(len.min(ARRAY_PREALLOC));
    for _ in 0..len {
        let Some((item, next)) = value(buf, pos, depth + 1)? else {
            return Ok(None);
        };
        items.push(item);
        pos = next;
    }
    Ok(Some((Reply::Array(Some(items)), pos)))
}

/// The byte at `pos`, `None` if it has not arrived; an error if the reply
/// would have to be longer than [`MAX_REPLY_BYTES`] to hold it.
fn byte_at(buf: &[u8], pos: usize) -> Result<Option<u8>, RespError> {
    if pos >= MAX_REPLY_BYTES {
        return Err(RespError::TooLarge);
    }
    Ok(buf.get(pos).copied())
}

/// The line starting at `start` (without its CRLF) and the position after
/// the CRLF; `None` if the CRLF has not arrived. The verdict is that of
/// reading byte by byte: the first CR or LF, the byte past
/// [`MAX_LINE_BYTES`] or the byte at [`MAX_REPLY_BYTES`] decides, however
/// the input was split.
fn line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, RespError> {
    // Bytes that may be looked at: up to the one just past the line limit.
    let stop = (start + MAX_LINE_BYTES + 1).min(MAX_REPLY_BYTES);
    let seen = buf.get(start..buf.len().min(stop)).unwrap_or_default();
    match seen.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(len) if seen[len] == b'\r' => match byte_at(buf, start + len + 1)? {
            None => Ok(None),
            Some(b'\n') => Ok(Some((&seen[..len], start + len + 2))),
            Some(_) => Err(RespError::Line),
        },
        Some(_) => Err(RespError::Line),
        None if seen.len() < stop - start => Ok(None),
        None if stop == start + MAX_LINE_BYTES + 1 => Err(RespError::LineTooLong),
        None => Err(RespError::TooLarge),
    }
}

/// A `$` or `*` length: `None` for `-1`; a length too large for `usize`
/// saturates (and fails the caller's limit).
fn length(line: &[u8]) -> Result<Option<usize>, RespError> {
    if line == b"-1" {
        return Ok(None);
    }
    if line.is_empty() || !line.iter().all(u8::is_ascii_digit) {
        return Err(RespError::Length);
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
            (b"%1\r\n", RespError::Type),
            (b"_\r\n", RespError::Type),
            (b"OK\r\n", RespError::Type),
            (b"*2\r\n+a\r\n?\r\n", RespError::Type),
            (b"+a\rb\r\n", RespError::Line),
            (b"+a\nb\r\n", RespError::Line),
            (b"+a\r\r\n", RespError::Line),
            (b"$3\r\nabcd\r\n", RespError::Line),
            (b"$3\r\nabc\rx", RespError::Line),
            (b"$3\r\nabc\n", RespError::Line),
            (b"$\r\n", RespError::Length),
            (b"$-2\r\n", RespError::Length),
            (b"$-0\r\n", RespError::Length),
            (b"$+3\r\nabc\r\n", RespError::Length),
            (b"$ 3\r\nabc\r\n", RespError::Length),
            (b"*1x\r\n", RespError::Length),
            (b"*-1 \r\n", RespError::Length),
            (b":\r\n", RespError::Integer),
            (b":-\r\n", RespError::Integer),
            (b":1.5\r\n", RespError::Integer),
            (b":9223372036854775808\r\n", RespError::Integer),
            (b":--1\r\n", RespError::Integer),
            (b"$99999999999999999999999999\r\n", RespError::TooLarge),
            (b"*99999999999999999999999999\r\n", RespError::ArrayTooLong),
        ];
        for (bytes, error) in cases {
            assert_error(bytes, *error);
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
        assert_error(&line(MAX_LINE_BYTES + 1), RespError::LineTooLong);
        let mut long = line(MAX_LINE_BYTES + 1);
        long.extend_from_slice(b"\r\n");
        assert_error(&long, RespError::LineTooLong);
        // Length headers count too.
        let mut header = b"$".to_vec();
        header.resize(1 + MAX_LINE_BYTES + 1, b'0');
        assert_error(&header, RespError::LineTooLong);
    }

    #[test]
    fn reply_size_limit() {
        // A bulk string whose whole reply is exactly MAX_REPLY_BYTES.
        let header = |len: usize| format!("${len}\r\n").into_bytes();
        let fits = MAX_REPLY_BYTES - header(MAX_REPLY_BYTES).len() - 2;
        let mut ok = header(fits);
        assert_eq!(parse_reply(&ok), Ok(Parsed::Partial));
        ok.resize(ok.len() + fits, b'x');
        ok.extend_from_slice(b"\r\n");
        assert_eq!(ok.len(), MAX_REPLY_BYTES);
        assert_eq!(
            parse_reply(&ok),
            Ok(Parsed::Complete(bulk(&vec![b'x'; fits]), MAX_REPLY_BYTES))
        );
        assert_eq!(parse_reply(&ok[..MAX_REPLY_BYTES - 1]), Ok(Parsed::Partial));
        // One byte more is refused on its header, before any payload.
        assert_error(&header(fits + 1), RespError::TooLarge);
        assert_error(&header(MAX_REPLY_BYTES), RespError::TooLarge);

        // Observed: an array whose last line crosses the limit.
        let mut big = b"*2\r\n".to_vec();
        big.extend_from_slice(&header(fits - 4 - 4));
        big.resize(big.len() + fits - 8, b'x');
        big.extend_from_slice(b"\r\n+");
        let room = MAX_REPLY_BYTES - big.len() - 2;
        big.resize(big.len() + room, b'y');
        let mut exact = big.clone();
        exact.extend_from_slice(b"\r\n");
        assert_eq!(exact.len(), MAX_REPLY_BYTES);
        assert!(matches!(
            parse_reply(&exact),
            Ok(Parsed::Complete(_, MAX_REPLY_BYTES))
        ));
        // One more byte of the line: its CRLF could only end past the limit,
        // which shows when the byte at MAX_REPLY_BYTES is needed.
        big.push(b'y');
        assert_eq!(parse_reply(&big), Ok(Parsed::Partial));
        big.push(b'y');
        assert_eq!(big.len(), MAX_REPLY_BYTES);
        assert_eq!(parse_reply(&big), Err(RespError::TooLarge));
        big.extend_from_slice(b"\r\n");
        assert_eq!(parse_reply(&big), Err(RespError::TooLarge));
        big.truncate(MAX_REPLY_BYTES - 1);
        big.push(b'\r');
        assert_eq!(parse_reply(&big), Err(RespError::TooLarge));
    }

    #[test]
    fn array_and_depth_limits() {
        let header = |len: usize| format!("*{len}\r\n").into_bytes();
        assert_eq!(parse_reply(&header(MAX_ARRAY_LEN)), Ok(Parsed::Partial));
        assert_error(&header(MAX_ARRAY_LEN + 1), RespError::ArrayTooLong);

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
        assert_error(&nested(MAX_DEPTH + 1), RespError::Depth);
        let mut null = b"*1\r\n".repeat(MAX_DEPTH);
        null.extend_from_slice(b"*-1\r\n");
        assert_error(&null, RespError::Depth);
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
        assert_eq!(
            RespError::TooLarge.to_string(),
            format!("reply larger than {MAX_REPLY_BYTES} bytes")
        );
        assert_eq!(
            RespError::LineTooLong.to_string(),
            "line longer than 65536 bytes"
        );
        assert_eq!(
            RespError::Depth.to_string(),
            "arrays nested more than 8 deep"
        );
    }
}
