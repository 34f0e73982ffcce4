//! The stdin feed: each `SYMBOL PRICE [TS_MS]` line becomes one event.
//! Lines are read with a bounded reader (a line over [`MAX_LINE_BYTES`] is
//! read through and skipped, never held); a bad line is warned about with
//! its number, counted and skipped. Lines that arrive together travel as one
//! tick (one id each).

use std::io::{self, BufRead, BufReader, Read};

use std::fmt;

use crate::feed::entry::{parse_entry, EntryError};
use crate::hub::{Hub, Price};
use crate::metrics::Metrics;

/// Longest stdin line accepted, in bytes, not counting its newline.
pub const MAX_LINE_BYTES: usize = 4 * 1024;
/// Most lines published as one tick when they arrive together.
const MAX_EVENTS_PER_TICK: usize = 256;

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// Longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// Not two or three fields.
    Fields,
    /// A field breaks the entry rule.
    Value(EntryError),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong => write!(f, "longer than {MAX_LINE_BYTES} bytes"),
            LineError::Fields => f.write_str("expected SYMBOL PRICE [TS_MS]"),
            LineError::Value(e) => e.fmt(f),
        }
    }
}

/// Parses one line (without its `\n`) by the entry rule: `Ok(None)` for a
/// blank line. Fields are separated by runs of spaces or tabs; a trailing
/// CR is dropped.
pub fn parse_line(line: &[u8], now_ms: impl FnOnce() -> u64) -> Result<Option<Price>, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|f| !f.is_empty());
    let Some(symbol) = fields.next() else {
        return Ok(None);
    };
    let (Some(price), ts, None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(LineError::Fields);
    };
    parse_entry(symbol, price, ts, now_ms)
        .map(Some)
        .map_err(LineError::Value)
}

/// One read of [`read_line_bounded`].
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A whole line is in the buffer (without its newline).
    Line,
    /// A line longer than the limit was read and thrown away.
    TooLong,
    /// End of input, nothing read.
    Eof,
}

/// Reads one line into `line` (cleared first), never holding more than
/// `max` bytes of it (plus a CR before the newline, which does not count):
/// the rest of a longer line is read and dropped.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    line.clear();
    // Room for the limit, a CR (which only the newline can confirm) and the
    // newline. A last line without a newline still counts.
    if reader.take(max as u64 + 2).read_until(b'\n', line)? == 0 {
        return Ok(LineRead::Eof);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > max + 1 {
        // Read the rest of the line through, one bounded piece at a time.
        while line.last() != Some(&b'\n') {
            line.clear();
            if reader.take(max as u64 + 2).read_until(b'\n', line)? == 0 {
                break;
            }
        }
        line.clear();
        return Ok(LineRead::TooLong);
    }
    // A whole line: over the limit only if its extra byte is not a CR.
    if line.len() > max && line.last() != Some(&b'\r') {
        line.clear();
        return Ok(LineRead::TooLong);
    }
    Ok(LineRead::Line)
}

/// The lines of stdin (or of any input), parsed, in order: a bad line is
/// warned about (with its number) and handed to the caller to count.
pub struct Lines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    number: u64,
}

impl<R: Read> Lines<R> {
    /// Lines of `input`, called stdin in warnings.
    pub fn new(input: R) -> Lines<R> {
        Lines {
            reader: BufReader::with_capacity(64 * 1024, input),
            line: Vec::with_capacity(256),
            number: 0,
        }
    }

    /// The next line: `Some(Ok(None))` for a blank one, `Some(Err(_))` for
    /// a skipped one (already logged), `None` at the end of the input (or a
    /// read error, logged as its end).
    pub fn next_line(&mut self) -> Option<Result<Option<Price>, LineError>> {
        let read = read_line_bounded(&mut self.reader, &mut self.line, MAX_LINE_BYTES)
            .unwrap_or_else(|e| {
                crate::log!("tickstream: cannot read stdin: {e}; treating it as its end");
                LineRead::Eof
            });
        self.number += 1;
        let parsed = match read {
            LineRead::Eof => return None,
            LineRead::TooLong => Err(LineError::TooLong),
            LineRead::Line => parse_line(&self.line, || crate::since_epoch().as_millis() as u64),
        };
        if let Err(e) = &parsed {
            crate::log!("tickstream: stdin line {} skipped: {e}", self.number);
        }
        Some(parsed)
    }

    /// True if a whole line is already buffered, so the next read will not
    /// block (the search stops at the first newline, usually within the
    /// next line).
    pub fn has_whole_line(&self) -> bool {
        self.reader.buffer().contains(&b'\n')
    }

    /// Lines read so far.
    pub fn count(&self) -> u64 {
        self.number.saturating_sub(1)
    }
}

/// Runs the stdin feed until end of input, then returns. Lines that arrive
/// together are published as one tick (still one id each), never held back
/// waiting for more input.
pub fn run(input: impl Read, hub: &Hub, metrics: &Metrics) {
    crate::log!("tickstream: stdin feed: one SYMBOL PRICE [TS_MS] line per event");
    let mut lines = Lines::new(input);
    let mut batch: Vec<Price> = Vec::new();
    while let Some(line) = lines.next_line() {
        match line {
            Ok(price) => batch.extend(price),
            Err(_) => metrics.feed_line_rejected(),
        }
        // Publish before a read that may block.
        if !lines.has_whole_line() || batch.len() >= MAX_EVENTS_PER_TICK {
            metrics.published(hub.publish(&batch));
            batch.clear();
        }
    }
    metrics.published(hub.publish(&batch));
    crate::log!(
        "tickstream: stdin feed ended after {} lines; still serving connected clients",
        lines.count()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbol::Symbol;

    #[test]
    fn feed_lines() {
        let ok = |symbol: &str, price: &str, ts: Option<u64>| {
            Ok(Some(Price {
                symbol: Symbol::parse(symbol.as_bytes()).unwrap(),
                price: price.into(),
                ts_ms: ts.unwrap_or(42),
            }))
        };
        type Case<'a> = (&'a [u8], Result<Option<Price>, LineError>);
        let cases: Vec<Case> = vec![
            (b"BTC 64123.17", ok("BTC", "64123.17", None)),
            (
                b"btc\t007.50\t1764028800123\r",
                ok("BTC", "7.50", Some(1764028800123)),
            ),
            (b"  eth   0.5  ", ok("ETH", "0.5", None)),
            (b"X 00.5", ok("X", "0.5", None)),
            (b"X 10", ok("X", "10", None)),
            (b"A.B_C-D 1 0", ok("A.B_C-D", "1", Some(0))),
            (b"", Ok(None)),
            (b" \t \r", Ok(None)),
            (b"BTC", Err(LineError::Fields)),
            (b"BTC 1 2 3", Err(LineError::Fields)),
            (b"B/TC 1", Err(LineError::Value(EntryError::Symbol))),
            (
                b"ABCDEFGHIJKLMNOPQ 1",
                Err(LineError::Value(EntryError::Symbol)),
            ),
            (b"\xff\xfe 1", Err(LineError::Value(EntryError::Symbol))),
            (b"BTC 0", Err(LineError::Value(EntryError::Price))),
            (b"BTC 0.000", Err(LineError::Value(EntryError::Price))),
            (b"BTC -1", Err(LineError::Value(EntryError::Price))),
            (b"BTC +1", Err(LineError::Value(EntryError::Price))),
            (b"BTC 1e5", Err(LineError::Value(EntryError::Price))),
            (b"BTC NaN", Err(LineError::Value(EntryError::Price))),
            (b"BTC inf", Err(LineError::Value(EntryError::Price))),
            (b"BTC .5", Err(LineError::Value(EntryError::Price))),
            (b"BTC 5.", Err(LineError::Value(EntryError::Price))),
            (b"BTC 1.2.3", Err(LineError::Value(EntryError::Price))),
            (b"BTC 1 -5", Err(LineError::Value(EntryError::Timestamp))),
            (
                b"BTC 1 99999999999999999999999",
                Err(LineError::Value(EntryError::Timestamp)),
            ),
            (b"BTC 1 12.5", Err(LineError::Value(EntryError::Timestamp))),
            (b"BTC 1\r\r", Err(LineError::Value(EntryError::Price))),
        ];
        for (line, expected) in cases {
            assert_eq!(
                parse_line(line, || 42),
                expected,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let huge = format!("BTC 1{}", "0".repeat(400));
        assert_eq!(
            parse_line(huge.as_bytes(), || 42),
            Err(LineError::Value(EntryError::Price))
        );
    }

    #[test]
    fn bounded_line_reader() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10));
        input.extend_from_slice(b"\nexactly8\nlast");
        // A tiny buffer forces lines to arrive in pieces.
        let mut reader = BufReader::with_capacity(3, &input[..]);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            let read = read_line_bounded(&mut reader, &mut line, 8).unwrap();
            if read == LineRead::Eof {
                break;
            }
            seen.push((read, String::from_utf8(line.clone()).unwrap()));
        }
        assert_eq!(
            seen,
            [
                (LineRead::Line, "short".to_string()),
                (LineRead::TooLong, String::new()),
                (LineRead::Line, "exactly8".to_string()),
                (LineRead::Line, "last".to_string()),
            ]
        );
        // A CR before the newline does not count towards the limit.
        let mut reader = BufReader::with_capacity(3, &b"exactly8\r\nlonger__9\r\n"[..]);
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 8).unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"exactly8\r");
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 8).unwrap(),
            LineRead::TooLong
        );
    }

    #[test]
    fn stdin_feed_publishes_valid_lines_and_counts_the_rest() {
        let hub = Hub::new(crate::id::IdForm::Counter, 1, 100, 64);
        let metrics = Metrics::new(0);
        let mut input = b"BTC 1 5\nnope\n\nETH 2 6\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'9', MAX_LINE_BYTES + 1));
        input.extend_from_slice(b"\nsol 3 7");
        run(&input[..], &hub, &metrics);
        let sub = hub.subscribe(crate::hub::Wants {
            selection: crate::hub::Selection {
                filter: crate::hub::Filter::All,
                floor: None,
                dialect: crate::sse::Dialect::Prices,
            },
            last_event_id: Some(crate::id::EventId::counter(0)),
            throttle: None,
            tag: None,
        });
        let mut out = Vec::new();
        for run in &sub.catch_up {
            run.tick
                .append_to(&mut out, run.events.clone(), &sub.selection);
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id: 1\ndata: {\"symbol\":\"BTC\",\"price\":1,\"ts\":5}\n\n\
             id: 2\ndata: {\"symbol\":\"ETH\",\"price\":2,\"ts\":6}\n\n\
             id: 3\ndata: {\"symbol\":\"SOL\",\"price\":3,\"ts\":7}\n\n"
        );
        let text = metrics.render();
        assert!(
            text.contains("tickstream_feed_lines_rejected_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tickstream_events_published_total 3\n"),
            "{text}"
        );
    }
}
