//! `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` URLs. The password is never
//! printed: not by [`RedisUrl`]'s `Display` or `Debug`, nor in a parse
//! error, which never repeats its input.

use std::fmt;
use std::net::Ipv6Addr;

use crate::percent::percent_decode;

/// The port of a `redis://` URL without one.
pub const DEFAULT_PORT: u16 = 6379;
/// One or more ASCII digits as a number; `None` on anything else or overflow.
fn parse_digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Where and how to connect: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
/// Neither `Display` nor `Debug` shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port, [`DEFAULT_PORT`] if the URL has none.
    pub port: u16,
    /// The ACL user for `AUTH`; `None`: the default user.
    pub username: Option<String>,
    /// Private, so it can only be read here, to send `AUTH`.
    password: Option<Password>,
    /// The database to `SELECT`, 0 if the URL has none.
    pub db: u32,
}

impl RedisUrl {
    /// The password, to send `AUTH` (never to print).
    pub fn password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.0.as_str())
    }

    /// Parses a URL; the error is a one-line reason that never repeats the
    /// input (which may hold a password). USER and PASSWORD may be
    /// percent-encoded; a PASSWORD may also hold `@`, `/` or `:` as they are.
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        const FORM: &str = "expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]";
        let (scheme, rest) = url.split_once("://").ok_or(FORM)?;
        if scheme.eq_ignore_ascii_case("rediss") {
            return Err("rediss:// (TLS) is not supported: put a TLS proxy in front".into());
        }
        if !scheme.eq_ignore_ascii_case("redis") {
            return Err(FORM.into());
        }
        // HOST, PORT and DB cannot hold an `@`: the last one ends USER:PASSWORD.
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = userinfo
                    .split_once(':')
                    .ok_or("USER without PASSWORD: write redis://USER:PASSWORD@HOST")?;
                let decode = |text| {
                    percent_decode(text).ok_or("bad %-escape in USER or PASSWORD (write % as %25)")
                };
                let password = decode(password)?;
                if password.is_empty() {
                    return Err("empty PASSWORD".into());
                }
                let user = decode(user)?;
                ((!user.is_empty()).then_some(user), Some(Password(password)))
            }
        };
        let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
        let db = match db {
            "" => 0,
            db => parse_digits(db)
                .ok_or_else(|| format!("DB must be a whole number up to {}", u32::MAX))?,
        };
        let (host, port) = match authority.strip_prefix('[') {
            Some(literal) => {
                let (host, port) = literal.split_once(']').ok_or("IPv6 HOST without ]")?;
                host.parse::<Ipv6Addr>().map_err(|_| "bad IPv6 HOST")?;
                (host, port)
            }
            None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
        };
        if host.is_empty() {
            return Err("missing HOST (an IPv6 address goes in brackets: [::1])".into());
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-._".contains(&b))
        {
            return Err("HOST must be a name or an IP address".into());
        }
        let port = match port {
            "" => DEFAULT_PORT,
            port => port
                .strip_prefix(':')
                .and_then(parse_digits)
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("PORT must be a number from 1 to {}", u16::MAX))?,
        };
        Ok(RedisUrl {
            host: host.to_string(),
            port,
            username,
            password,
            db,
        })
    }
}

impl fmt::Display for RedisUrl {
    /// `redis://user:***@host:port/db`: the password masked, the port always
    /// shown, the db when not 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redis://")?;
        if self.password.is_some() {
            write!(f, "{}:***@", self.username.as_deref().unwrap_or(""))?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if self.db != 0 {
            write!(f, "/{}", self.db)?;
        }
        Ok(())
    }
}

/// A password, which `Debug` shows as `"***"`.
#[derive(Clone, PartialEq, Eq)]
struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = |host: &str, port, user: Option<&str>, password: Option<&str>, db| RedisUrl {
            host: host.into(),
            port,
            username: user.map(Into::into),
            password: password.map(|p| Password(p.into())),
            db,
        };
        let cases = [
            (
                "redis://127.0.0.1:6379",
                url("127.0.0.1", 6379, None, None, 0),
            ),
            ("redis://localhost", url("localhost", 6379, None, None, 0)),
            (
                "REDIS://Redis-1.internal:7000/3",
                url("Redis-1.internal", 7000, None, None, 3),
            ),
            ("redis://h/", url("h", 6379, None, None, 0)),
            (
                "redis://h:65535/4294967295",
                url("h", 65535, None, None, u32::MAX),
            ),
            ("redis://[::1]", url("::1", 6379, None, None, 0)),
            (
                "redis://[2001:db8::7]:6380/1",
                url("2001:db8::7", 6380, None, None, 1),
            ),
            ("redis://:pw@h", url("h", 6379, None, Some("pw"), 0)),
            (
                "redis://feeder:pw@h:1/2",
                url("h", 1, Some("feeder"), Some("pw"), 2),
            ),
            (
                "redis://u%40x:p%3Aw%2F%25@h",
                url("h", 6379, Some("u@x"), Some("p:w/%"), 0),
            ),
            (
                "redis://u:p@ss/w:d@[::1]:9",
                url("::1", 9, Some("u"), Some("p@ss/w:d"), 0),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(RedisUrl::parse(text), Ok(expected), "{text}");
        }
        let bad = [
            ("", "expected redis://"),
            ("127.0.0.1:6379", "expected redis://"),
            ("http://h", "expected redis://"),
            ("redis:/h", "expected redis://"),
            ("rediss://h", "TLS"),
            ("redis://", "missing HOST"),
            ("redis://:6379", "missing HOST"),
            ("redis://::1", "missing HOST"),
            ("redis://h:", "PORT"),
            ("redis://h:0", "PORT"),
            ("redis://h:65536", "PORT"),
            ("redis://h:+1", "PORT"),
            ("redis://h:6379x", "PORT"),
            ("redis://[::1]x", "PORT"),
            ("redis://h/x", "DB"),
            ("redis://h/-1", "DB"),
            ("redis://h/1/2", "DB"),
            ("redis://h/4294967296", "DB"),
            ("redis://h?db=1", "HOST must be"),
            ("redis://h h", "HOST must be"),
            ("redis://[::1", "without ]"),
            ("redis://[zz]", "bad IPv6"),
            ("redis://[]", "bad IPv6"),
            ("redis://user@h", "USER without PASSWORD"),
            ("redis://u:@h", "empty PASSWORD"),
            ("redis://:@h", "empty PASSWORD"),
            ("redis://u:%zz@h", "%-escape"),
            ("redis://%ff:p@h", "%-escape"),
        ];
        for (text, reason) in bad {
            let error = RedisUrl::parse(text).expect_err(text);
            assert!(error.contains(reason), "{text}: {error}");
            assert!(!error.contains('\n'), "{text}: {error}");
        }
    }

    #[test]
    fn url_display_and_debug_mask_the_password() {
        let shown = |text: &str| {
            let url = RedisUrl::parse(text).expect(text);
            (url.to_string(), format!("{url:?}"))
        };
        assert_eq!(shown("redis://h").0, "redis://h:6379");
        assert_eq!(shown("redis://:s3cret@h/2").0, "redis://:***@h:6379/2");
        assert_eq!(
            shown("redis://feeder:s3cret@[::1]:7000").0,
            "redis://feeder:***@[::1]:7000"
        );
        assert_eq!(
            shown("redis://u:s3cret@h").1,
            r#"RedisUrl { host: "h", port: 6379, username: Some("u"), password: Some("***"), db: 0 }"#
        );
        let mut printed = Vec::new();
        for text in [
            "redis://u:s3cret@h",
            "redis://:s3cret@h:1/1",
            "redis://u:s3cret%21@h",
        ] {
            let (display, debug) = shown(text);
            printed.extend([display, debug]);
        }
        for text in [
            "redis://u:s3cret@h:99999",
            "redis://u:s3cret@",
            "redis://u:s3cret@h/x",
            "redis://u:s3cret%zz@h",
            "rediss://u:s3cret@h",
            "redis//u:s3cret@h",
            "redis://u:s3cret@h h",
        ] {
            printed.push(RedisUrl::parse(text).expect_err(text));
        }
        for text in printed {
            assert!(!text.contains("s3cret"), "{text}");
        }
    }
}
