//! Server-Sent Events framing, pure and infallible: bytes in, bytes out.
//!
//! Follows the WHATWG HTML "server-sent events" section: every field is
//! written `name: value` with the space; a frame ends with an empty line,
//! which dispatches it. tickstream's fields are single-line by construction
//! (decimal ids, one-line JSON over validated symbols and numbers), so no
//! value ever holds a CR or LF. Comments (`: ...`) and the `retry:` frame
//! dispatch nothing, because their empty line finds an empty data buffer.

use std::io::Write as _;

use crate::symbol::Symbol;

/// The comment frame sent after `--heartbeat` of silence.
pub const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// Appends one event frame:
///
/// ```text
/// id: 42
/// data: {"symbol":"BTC","price":64123.17,"ts":1764028800123}
///
/// ```
///
/// A [`Symbol`] needs no JSON escaping; `price` must be a JSON number
/// without exponent.
///
/// ```
/// use tickstream::symbol::Symbol;
/// let btc = Symbol::parse(b"BTC").unwrap();
/// let mut frame = Vec::new();
/// tickstream::sse::push_event(&mut frame, 42, &btc, "64123.17", 1764028800123);
/// assert_eq!(
///     frame,
///     b"id: 42\ndata: {\"symbol\":\"BTC\",\"price\":64123.17,\"ts\":1764028800123}\n\n"
/// );
/// ```
pub fn push_event(buf: &mut Vec<u8>, id: u64, symbol: &Symbol, price: &str, ts_ms: u64) {
    debug_assert!(price.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    let _ = write!(
        buf,
        "id: {id}\ndata: {{\"symbol\":\"{symbol}\",\"price\":{price},\"ts\":{ts_ms}}}\n\n"
    );
}

/// Appends the `retry:` frame that sets a browser's reconnect delay.
pub fn push_retry(buf: &mut Vec<u8>, millis: u128) {
    let _ = write!(buf, "retry: {millis}\n\n");
}

/// Reads a `Last-Event-ID` (header or `?lastEventId=`): decimal digits only.
/// Anything else is ignored, as if absent. A number too large for `u64`
/// is still newer than any id, so it saturates.
pub fn parse_last_event_id(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_frame_bytes() {
        let mut buf = Vec::new();
        let sym = |s: &str| Symbol::parse(s.as_bytes()).unwrap();
        push_event(
            &mut buf,
            1764028800123456,
            &sym("BTC"),
            "64123.17",
            1764028800123,
        );
        assert_eq!(
            buf,
            b"id: 1764028800123456\ndata: {\"symbol\":\"BTC\",\"price\":64123.17,\"ts\":1764028800123}\n\n"
        );
        push_event(&mut buf, 7, &sym("X.Y_Z-1"), "0.5", 0);
        assert!(buf.ends_with(b"id: 7\ndata: {\"symbol\":\"X.Y_Z-1\",\"price\":0.5,\"ts\":0}\n\n"));
    }

    #[test]
    fn retry_and_heartbeat_bytes() {
        let mut buf = Vec::new();
        push_retry(&mut buf, 3000);
        assert_eq!(buf, b"retry: 3000\n\n");
        assert_eq!(HEARTBEAT, b": heartbeat\n\n");
    }

    #[test]
    fn last_event_ids() {
        let cases: &[(&str, Option<u64>)] = &[
            ("42", Some(42)),
            ("0", Some(0)),
            ("007", Some(7)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("", None),
            ("-1", None),
            ("+1", None),
            ("1e3", None),
            ("abc", None),
            (" 1", None),
        ];
        for (text, id) in cases {
            assert_eq!(parse_last_event_id(text), *id, "{text:?}");
        }
    }
}
