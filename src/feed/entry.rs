//! The rule for a price that comes from outside (a stdin line's fields, a
//! stream entry's values): a valid [`Symbol`], a plain positive decimal
//! price written as given less its leading zeros, and an optional timestamp
//! in whole milliseconds. How the values are found (a line's fields, an
//! entry's named fields) is the caller's business, and so is counting.

use crate::hub::Price;
use crate::symbol::{Symbol, MAX_SYMBOL_LEN};

/// Which value of an entry breaks the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// The symbol breaks the symbol rule.
    Symbol,
    /// The price is not a plain positive decimal number.
    Price,
    /// The timestamp is not a whole number of milliseconds.
    Timestamp,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::Symbol => {
                write!(f, "symbol must be 1 to {MAX_SYMBOL_LEN} of A-Z 0-9 . _ -")
            }
            EntryError::Price => f.write_str(
                "price must be digits with an optional fraction, greater than zero and finite",
            ),
            EntryError::Timestamp => {
                f.write_str("timestamp must be whole milliseconds since the epoch")
            }
        }
    }
}

/// Checks one entry's values; `default_ts_ms` stamps it when it has no
/// timestamp.
pub fn parse_entry(
    symbol: &[u8],
    price: &[u8],
    ts: Option<&[u8]>,
    default_ts_ms: impl FnOnce() -> u64,
) -> Result<Price, EntryError> {
    let symbol = Symbol::parse(symbol).map_err(|_| EntryError::Symbol)?;
    let price = normalize_price(price).ok_or(EntryError::Price)?;
    // Digits only: `u64::from_str` would also take a leading `+`.
    let ts_ms = match ts {
        None => default_ts_ms(),
        Some(ts) if ts.iter().all(u8::is_ascii_digit) => std::str::from_utf8(ts)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(EntryError::Timestamp)?,
        Some(_) => return Err(EntryError::Timestamp),
    };
    Ok(Price {
        symbol,
        price,
        ts_ms,
    })
}

/// `DIGITS [ "." DIGITS ]`, greater than zero and finite as a double; returns
/// it without leading zeros (one stays before the point).
fn normalize_price(text: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?;
    let (int, frac) = text
        .split_once('.')
        .map_or((text, None), |(i, f)| (i, Some(f)));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !frac.is_none_or(digits) {
        return None;
    }
    let zeros = int.bytes().take_while(|b| *b == b'0').count();
    let text = &text[zeros.min(int.len() - 1)..];
    let value: f64 = text.parse().ok()?;
    (value > 0.0 && value.is_finite()).then(|| text.to_string())
}
