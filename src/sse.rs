//! Server-Sent Events framing, pure and infallible: bytes in, bytes out.
//!
//! Follows the WHATWG HTML "server-sent events" section: every field is
//! written `name: value` with the space; a frame ends with an empty line,
//! which dispatches it. tickstream's fields are single-line by construction
//! (ids of digits and `-`, one-line JSON over [`Symbol`]s and plain
//! numbers), so no value ever holds a CR or LF. Comments (`: ...`) and the
//! `retry:` frame dispatch nothing, because their empty line finds an empty
//! data buffer.

use std::io::Write as _;

use crate::id::EventId;
use crate::symbol::Symbol;

/// The comment frame sent after `--heartbeat` of silence.
pub const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// The two ways tickstream frames a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/prices`: `data: {"symbol":…,"price":…,"ts":…}`, no `event:` field.
    Prices,
    /// `/crypto-price`, the seed article's: `event: price-update` and
    /// `data: {"data":<price>}`.
    Article,
}

/// Appends one event frame in `dialect`:
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
/// use tickstream::id::EventId;
/// use tickstream::sse::{push_event, Dialect};
/// use tickstream::symbol::Symbol;
/// let btc = Symbol::parse(b"BTC").unwrap();
/// let mut frame = Vec::new();
/// push_event(&mut frame, Dialect::Prices, EventId::counter(42), &btc, "64123.17", 1764028800123);
/// assert_eq!(
///     frame,
///     b"id: 42\ndata: {\"symbol\":\"BTC\",\"price\":64123.17,\"ts\":1764028800123}\n\n"
/// );
/// ```
pub fn push_event(
    buf: &mut Vec<u8>,
    dialect: Dialect,
    id: EventId,
    symbol: &Symbol,
    price: &str,
    ts_ms: u64,
) {
    debug_assert!(price.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    let _ = match dialect {
        Dialect::Prices => write!(
            buf,
            "id: {id}\ndata: {{\"symbol\":\"{symbol}\",\"price\":{price},\"ts\":{ts_ms}}}\n\n"
        ),
        Dialect::Article => write!(
            buf,
            "id: {id}\nevent: price-update\ndata: {{\"data\":{price}}}\n\n"
        ),
    };
}

/// Appends the `retry:` frame that sets a browser's reconnect delay.
pub fn push_retry(buf: &mut Vec<u8>, millis: u128) {
    let _ = write!(buf, "retry: {millis}\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_frame_bytes() {
        let sym = |s: &str| Symbol::parse(s.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let id = EventId::counter(1764028800123456);
        push_event(
            &mut buf,
            Dialect::Prices,
            id,
            &sym("BTC"),
            "64123.17",
            1764028800123,
        );
        assert_eq!(
            buf,
            b"id: 1764028800123456\ndata: {\"symbol\":\"BTC\",\"price\":64123.17,\"ts\":1764028800123}\n\n"
        );
        buf.clear();
        let id = EventId::stream(1764028800123, 7);
        push_event(&mut buf, Dialect::Prices, id, &sym("X.Y_Z-1"), "0.5", 0);
        push_event(&mut buf, Dialect::Article, id, &sym("BTC"), "0.5", 0);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "id: 1764028800123-7\ndata: {\"symbol\":\"X.Y_Z-1\",\"price\":0.5,\"ts\":0}\n\n\
             id: 1764028800123-7\nevent: price-update\ndata: {\"data\":0.5}\n\n"
        );
    }

    #[test]
    fn retry_and_heartbeat_bytes() {
        let mut buf = Vec::new();
        push_retry(&mut buf, 3000);
        assert_eq!(buf, b"retry: 3000\n\n");
        assert_eq!(HEARTBEAT, b": heartbeat\n\n");
    }
}
