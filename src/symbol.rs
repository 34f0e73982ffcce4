//! The symbol rule, held by a type: a [`Symbol`] is 1 to
//! [`MAX_SYMBOL_LEN`] of `A-Z 0-9 . _ -`, upper case, checked once where it
//! enters (a flag, a query, a stdin line, a stream entry) and trusted
//! everywhere after. Nothing in a symbol needs escaping in JSON or in a
//! header, which is what lets the SSE framing skip escaping altogether.

use std::fmt;
use std::sync::Arc;

/// Longest symbol, in bytes.
pub const MAX_SYMBOL_LEN: usize = 16;

/// A valid, upper-case symbol. Cheap to clone (shared text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// Checks `text` against the rule and folds it to upper case; the error
    /// is the one message for a symbol that breaks it.
    pub fn parse(text: &[u8]) -> Result<Symbol, String> {
        let valid = (1..=MAX_SYMBOL_LEN).contains(&text.len())
            && text
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            let shown: String = String::from_utf8_lossy(text).chars().take(32).collect();
            return Err(format!(
                "invalid symbol {shown:?}: 1 to {MAX_SYMBOL_LEN} of A-Z 0-9 . _ -"
            ));
        }
        // Valid bytes are ASCII, so this cannot fail.
        let text = std::str::from_utf8(text).unwrap_or_default();
        Ok(Symbol(Arc::from(text.to_ascii_uppercase())))
    }

    /// The symbol's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"BTC", Some("BTC")),
            (b"btc", Some("BTC")),
            (b"A.B_C-1", Some("A.B_C-1")),
            (b"ABCDEFGHIJKLMNOP", Some("ABCDEFGHIJKLMNOP")),
            (b"ABCDEFGHIJKLMNOPQ", None),
            (b"", None),
            (b"B/TC", None),
            (b"B TC", None),
            (b"\xff", None),
        ];
        for (text, expected) in cases {
            let got = Symbol::parse(text).ok();
            assert_eq!(got.as_ref().map(Symbol::as_str), *expected, "{text:?}");
        }
        assert_eq!(
            Symbol::parse(b"b/tc").unwrap_err().to_string(),
            "invalid symbol \"b/tc\": 1 to 16 of A-Z 0-9 . _ -"
        );
    }
}
