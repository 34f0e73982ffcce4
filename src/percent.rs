//! Percent-decoding (RFC 3986 §2.1), for request targets and the user
//! info of `redis://` URLs.

/// Decodes `%XX` escapes (`+` stays `+`: this is a URI, not a form).
/// `None` for a bad escape or a result that is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(text)?).ok()
}

/// Decodes `%XX` escapes into bytes, UTF-8 or not; `None` for a bad escape
/// (RFC 3986 `pct-encoded`: every `%` starts a `%HH`).
pub fn percent_decode_bytes(text: &str) -> Option<Vec<u8>> {
    let mut pieces = text.split('%');
    // Never longer than `text`: allocated once.
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(pieces.next().unwrap_or_default().as_bytes());
    // Every piece after the first starts right after a `%`.
    for piece in pieces {
        let hex = piece
            .get(..2)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))?;
        out.push(u8::from_str_radix(hex, 16).ok()?);
        out.extend_from_slice(&piece.as_bytes()[2..]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(percent_decode("a+b%20c"), s("a+b c"));
        assert_eq!(percent_decode("%41%e2%82%ac"), s("A€"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
