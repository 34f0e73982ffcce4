//! Event ids: a decimal counter (`sim` and `stdin` feeds) or a Redis stream
//! entry id `MS-SEQ` (`redis` feed), one type for the hub, the wire, routes
//! and the Redis client. Ordered by their numbers, never as text.

use std::fmt;

/// How a feed names its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdForm {
    /// A decimal counter (`sim` and `stdin` feeds).
    Counter,
    /// A Redis stream entry id, `MS-SEQ` (`redis` feed).
    Stream,
}

/// An event id, ordered by its numbers: a counter `N`, or a stream entry
/// id `MS-SEQ`. One hub only ever holds ids of one form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// The counter, or the entry's milliseconds.
    pub major: u64,
    /// The entry's sequence number; `None` for a counter.
    pub minor: Option<u64>,
}

impl EventId {
    /// A counter id.
    pub fn counter(n: u64) -> EventId {
        EventId {
            major: n,
            minor: None,
        }
    }

    /// A stream entry id.
    pub fn stream(ms: u64, seq: u64) -> EventId {
        EventId {
            major: ms,
            minor: Some(seq),
        }
    }

    /// Reads a `Last-Event-ID` (header or `?lastEventId=`) of the feed's
    /// form; anything else is ignored, as if absent. A counter too large for
    /// `u64` is still newer than any id, so it saturates.
    pub fn parse(text: &str, form: IdForm) -> Option<EventId> {
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        match form {
            IdForm::Counter => {
                digits(text).then(|| EventId::counter(text.parse().unwrap_or(u64::MAX)))
            }
            IdForm::Stream => {
                let (ms, seq) = text
                    .split_once('-')
                    .filter(|(m, s)| digits(m) && digits(s))?;
                Some(EventId::stream(ms.parse().ok()?, seq.parse().ok()?))
            }
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            None => write!(f, "{}", self.major),
            Some(seq) => write!(f, "{}-{seq}", self.major),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_ids() {
        use IdForm::{Counter, Stream};
        let (c, st) = (EventId::counter, EventId::stream);
        let valid = [
            ("42", Counter, c(42)),
            ("007", Counter, c(7)),
            ("99999999999999999999999", Counter, c(u64::MAX)),
            ("1764028800123-0", Stream, st(1764028800123, 0)),
            ("5-18446744073709551615", Stream, st(5, u64::MAX)),
        ];
        for (text, form, id) in valid {
            assert_eq!(EventId::parse(text, form), Some(id), "{text:?}");
        }
        let not_counters = ["", "-1", "+1", "1e3", "abc", " 1", "1-0"];
        let not_entry_ids = [
            "5-18446744073709551616",
            "42",
            "1-",
            "-1",
            "1-2-3",
            "1--2",
            "1-+2",
        ];
        for (texts, form) in [(&not_counters, Counter), (&not_entry_ids, Stream)] {
            for text in texts {
                assert_eq!(EventId::parse(text, form), None, "{text:?} {form:?}");
            }
        }
        assert!(st(5, 10) > st(5, 9));
        assert!(st(6, 0) > st(5, 99));
        assert_eq!(st(6, 1).to_string(), "6-1");
    }
}
