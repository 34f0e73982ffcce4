//! Access control (SPEC "Access control (`--auth-keys FILE`)"): the one
//! place that answers "who is this and what may they read?". Bytes and the
//! current time in, a [`Grant`] or a [`TokenError`] out; no socket or clock
//! is touched here, and no crate is used. [`Access`] holds the key file's
//! secrets and reads the file again on SIGHUP.
//!
//! - [`sha256`]: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104).
//! - [`base64url`]: strict unpadded base64url (RFC 4648 §5).
//! - [`json`]: a strict JSON parser (RFC 8259).
//! - [`jwt`]: the key file, HS256 tokens verified and minted (RFC 7515,
//!   7519, 8725).

pub mod base64url;
pub mod json;
pub mod jwt;
pub mod sha256;

pub use jwt::{mint, verify, Grant, KeyId, Keys, TokenError};

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Largest key file read (16 secrets of a few hundred bytes fit many times).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The keys of `--auth-keys`, reloaded on SIGHUP, and the audience to check.
pub struct Access {
    path: PathBuf,
    audience: Option<String>,
    keys: RwLock<Arc<Keys>>,
}

impl Access {
    /// Reads the key file; the error names the file and the line, never a
    /// secret.
    pub fn load(path: PathBuf, audience: Option<String>) -> Result<Access, String> {
        let keys = RwLock::new(Arc::new(read_keys(&path)?));
        Ok(Access {
            path,
            audience,
            keys,
        })
    }

    /// Reads the key file again: a good one replaces the keys (their count
    /// is returned), a bad one leaves them (the error says why).
    pub fn reload(&self) -> Result<usize, String> {
        let keys = read_keys(&self.path)?;
        let count = keys.count();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(count)
    }

    /// The keys in force.
    pub fn keys(&self) -> Arc<Keys> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// What `token` grants at `now_secs` (SPEC "Tokens").
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Grant, TokenError> {
        verify(
            token.as_bytes(),
            &self.keys(),
            now_secs,
            self.audience.as_deref(),
        )
    }
}

/// Reads and parses a key file, bounded in size.
pub fn read_keys(path: &std::path::Path) -> Result<Keys, String> {
    use std::io::Read as _;
    let shown = path.display();
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!("{shown}: larger than {MAX_KEY_FILE_BYTES} bytes"));
    }
    Keys::parse(&text).map_err(|e| format!("{shown}: {e}"))
}

/// The token of a request (SPEC "Where the token goes"): the
/// `Authorization: Bearer` header, else the cookie `tickstream_token`, else
/// the query parameter `access_token`; the first present is the one
/// checked. A header of another scheme counts as none.
pub fn find_token<'a>(
    authorization: Option<&'a str>,
    cookie: &'a str,
    query: Option<&'a str>,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let cookie = cookie.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == "tickstream_token").then_some(value)
    });
    bearer.or(cookie).or(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_header_then_the_cookie_then_the_query() {
        type Case<'a> = (Option<&'a str>, &'a str, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (
                Some("Bearer a.b.c"),
                "tickstream_token=x",
                Some("q"),
                Some("a.b.c"),
            ),
            (Some("bearer  a.b.c "), "", None, Some("a.b.c")),
            (
                Some("Basic dTpw"),
                "tickstream_token=x",
                Some("q"),
                Some("x"),
            ),
            (
                None,
                "theme=dark; tickstream_token=x; y=z",
                Some("q"),
                Some("x"),
            ),
            (
                None,
                "tickstream_tokenx=1; other=tickstream_token",
                Some("q"),
                Some("q"),
            ),
            (None, "", Some("q"), Some("q")),
            (Some("Bearer"), "", None, None),
            (None, "", None, None),
        ];
        for (authorization, cookie, query, expected) in cases {
            assert_eq!(
                find_token(*authorization, cookie, *query),
                *expected,
                "{authorization:?} {cookie:?} {query:?}"
            );
        }
    }
}
