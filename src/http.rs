//! HTTP/1.x on the wire, without sockets: parsing a request head from bytes
//! ([`parse_head`]) and writing a complete response ([`Response`]).
//!
//! The grammar is RFC 9112's, strictly: a request head is
//!
//! ```text
//! request-line = method SP request-target SP HTTP-version CRLF
//! field-line   = field-name ":" OWS field-value OWS CRLF
//! ```
//!
//! followed by an empty line. Bare LF is accepted as a line end (RFC 9112
//! §2.2 allows it); a CR anywhere else, obs-fold, whitespace before the
//! colon and control characters in a value are rejected with 400. Every
//! limit is checked against the bytes received so far, so a client that
//! never ends its head is answered (414 / 431) once it passes the limit,
//! never buffered without bound.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::percent::{percent_decode, percent_decode_bytes};

/// Longest request line accepted (without its CRLF), in bytes.
pub const MAX_REQUEST_LINE_BYTES: usize = 2 * 1024;
/// Longest request head accepted (request line, fields and the empty line).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The methods tickstream serves; anything else is answered 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`: the same head as `GET`, no body.
    Head,
    /// `OPTIONS`: CORS preflight.
    Options,
}

/// The protocol version of a request; both get a close-delimited response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

/// A parsed request head: only what tickstream routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request method.
    pub method: Method,
    /// The path, percent-decoded; `*` for `OPTIONS *`.
    pub path: String,
    /// The query without its `?`, still percent-encoded (see [`query_pairs`]);
    /// its escapes are `%HH`, but may not decode to UTF-8.
    pub query: String,
    /// The protocol version.
    pub version: Version,
    /// The last `Last-Event-ID` field's value, if any.
    pub last_event_id: Option<String>,
    /// The last `Authorization` field's value, if any.
    pub authorization: Option<String>,
    /// The `Cookie` fields' values, joined by `; `.
    pub cookie: String,
}

/// Why a request head was refused; [`Reject::status`] maps each to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// The request line passed [`MAX_REQUEST_LINE_BYTES`].
    RequestLineTooLong,
    /// The head passed [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// The request line is not `method SP target SP version`.
    RequestLine,
    /// The request target is not origin-, absolute- or asterisk-form.
    Target,
    /// A field line is malformed.
    Header,
    /// An HTTP/1.1 request without a `Host` field.
    Host,
    /// More than one `Host` field, whatever the version (RFC 9112 §3.2).
    HostRepeated,
    /// A `Transfer-Encoding` field: request bodies are not read, so their
    /// framing must not be in doubt (RFC 9112 §6.3).
    TransferEncoding,
    /// A `Content-Length` that is not a decimal number, or values that
    /// differ (identical repeated values count as one: RFC 9112 §6.3).
    ContentLength,
    /// A `Host` field whose value is not `uri-host [ ":" port ]`.
    HostValue,
    /// A version other than HTTP/1.0 and HTTP/1.1.
    Version,
    /// A method other than GET, HEAD and OPTIONS.
    Method,
    /// The head was not complete within the header timeout.
    Timeout,
    /// Too many connections are still sending their heads.
    Busy,
}

impl Reject {
    /// The response status for this rejection.
    pub fn status(self) -> Status {
        match self {
            Reject::RequestLineTooLong => Status::UriTooLong,
            Reject::HeadTooLarge => Status::HeaderFieldsTooLarge,
            Reject::Version => Status::VersionNotSupported,
            Reject::Method => Status::MethodNotAllowed,
            Reject::Timeout => Status::RequestTimeout,
            Reject::Busy => Status::ServiceUnavailable,
            _ => Status::BadRequest,
        }
    }

    /// The answer: the status and a one-line body saying what was wrong
    /// (405 also lists the allowed methods).
    pub fn response(self) -> Response {
        let response = Response::error(self.status(), &self.to_string());
        match self {
            Reject::Method => response.with_header("Allow", ALLOW),
            _ => response,
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::RequestLineTooLong => {
                write!(f, "request line longer than {MAX_REQUEST_LINE_BYTES} bytes")
            }
            Reject::HeadTooLarge => write!(f, "request head larger than {MAX_HEAD_BYTES} bytes"),
            Reject::RequestLine => f.write_str("malformed request line"),
            Reject::Target => f.write_str("malformed request target"),
            Reject::Header => f.write_str("malformed header field"),
            Reject::Host => f.write_str("HTTP/1.1 request needs exactly one Host header"),
            Reject::HostRepeated => f.write_str("more than one Host header"),
            Reject::HostValue => f.write_str("invalid Host header"),
            Reject::TransferEncoding => f.write_str("Transfer-Encoding not accepted on a request"),
            Reject::ContentLength => f.write_str("Content-Length must be one decimal number"),
            Reject::Version => f.write_str("only HTTP/1.0 and HTTP/1.1 are supported"),
            Reject::Method => f.write_str("method not allowed; use GET, HEAD or OPTIONS"),
            Reject::Timeout => f.write_str("request head not received in time"),
            Reject::Busy => f.write_str("too many connections sending requests; retry later"),
        }
    }
}

/// The methods served, as `Allow` lists them.
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// Every status tickstream sends: the one type behind rejections, reason
/// phrases and the metrics' `status` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200
    Ok = 200,
    /// 204
    NoContent = 204,
    /// 400
    BadRequest = 400,
    /// 404
    NotFound = 404,
    /// 401
    Unauthorized = 401,
    /// 403
    Forbidden = 403,
    /// 405
    MethodNotAllowed = 405,
    /// 408
    RequestTimeout = 408,
    /// 414
    UriTooLong = 414,
    /// 429
    TooManyRequests = 429,
    /// 431
    HeaderFieldsTooLarge = 431,
    /// 503
    ServiceUnavailable = 503,
    /// 505
    VersionNotSupported = 505,
}

impl Status {
    /// The error statuses, in the order `/metrics` lists them.
    pub const ERRORS: [Status; 11] = [
        Status::BadRequest,
        Status::Unauthorized,
        Status::Forbidden,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::RequestTimeout,
        Status::UriTooLong,
        Status::TooManyRequests,
        Status::HeaderFieldsTooLarge,
        Status::ServiceUnavailable,
        Status::VersionNotSupported,
    ];

    /// The status code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NoContent => "No Content",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::UriTooLong => "URI Too Long",
            Status::TooManyRequests => "Too Many Requests",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// The outcome of parsing the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet (and no limit is passed): read more.
    Partial,
    /// The head is complete.
    Complete(Request),
}

/// Parses a request head from the start of `buf` (everything received so
/// far). Bytes after the head, if any, are ignored: every response closes
/// the connection.
pub fn parse_head(buf: &[u8]) -> Result<Parsed, Reject> {
    // RFC 9112 §2.2: ignore at least one empty line before the request line.
    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") || buf[start..].starts_with(b"\n") {
        start += if buf[start] == b'\r' { 2 } else { 1 };
        if start > MAX_HEAD_BYTES {
            return Err(Reject::HeadTooLarge);
        }
    }
    let rest = &buf[start..];
    let Some(line_end) = rest.iter().position(|&b| b == b'\n') else {
        // Room for the longest line plus its CR: anything longer is too long.
        if rest.len() > MAX_REQUEST_LINE_BYTES + 1 {
            return Err(Reject::RequestLineTooLong);
        }
        return Ok(Parsed::Partial);
    };
    // The length first, as when the newline has not arrived yet: the
    // verdict must not depend on how the bytes were split into reads.
    let line = &rest[..line_end];
    if line.strip_suffix(b"\r").unwrap_or(line).len() > MAX_REQUEST_LINE_BYTES {
        return Err(Reject::RequestLineTooLong);
    }
    let line = strip_cr(line).ok_or(Reject::RequestLine)?;
    let (method, target, version) = parse_request_line(line)?;

    // Field lines, up to the empty line that ends the head.
    let mut pos = start + line_end + 1;
    let mut hosts = 0;
    let mut content_length = None;
    let mut last_event_id = None;
    let (mut authorization, mut cookie) = (None, String::new());
    loop {
        let Some(len) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(Reject::HeadTooLarge);
            }
            return Ok(Parsed::Partial);
        };
        if pos + len + 1 > MAX_HEAD_BYTES {
            return Err(Reject::HeadTooLarge);
        }
        let line = strip_cr(&buf[pos..pos + len]).ok_or(Reject::Header)?;
        pos += len + 1;
        if line.is_empty() {
            break;
        }
        let (name, value) = parse_field_line(line)?;
        if name.eq_ignore_ascii_case(b"host") {
            // RFC 9112 §3.2: an invalid Host value is answered 400.
            if !is_valid_host(value) {
                return Err(Reject::HostValue);
            }
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"last-event-id") {
            last_event_id = Some(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case(b"authorization") {
            authorization = Some(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case(b"cookie") {
            if !cookie.is_empty() {
                cookie.push_str("; ");
            }
            cookie.push_str(&String::from_utf8_lossy(value));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(Reject::TransferEncoding);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9110 §8.6: `1*DIGIT`, possibly as a list of equal values.
            for element in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                let length = std::str::from_utf8(element)
                    .ok()
                    .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse::<u64>().ok())
                    .ok_or(Reject::ContentLength)?;
                if *content_length.get_or_insert(length) != length {
                    return Err(Reject::ContentLength);
                }
            }
        }
    }
    // RFC 9112 §3.2: 400 for more than one Host, whatever the version.
    if hosts > 1 {
        return Err(Reject::HostRepeated);
    }
    if version == Version::Http11 && hosts == 0 {
        return Err(Reject::Host);
    }
    let (path, query) = split_target(target, method)?;
    Ok(Parsed::Complete(Request {
        method,
        path,
        query,
        version,
        last_event_id,
        authorization,
        cookie,
    }))
}

/// Removes the CR of a CRLF line end; `None` if a CR stands anywhere else.
fn strip_cr(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.contains(&b'\r')).then_some(line)
}

/// `method SP request-target SP HTTP-version`, checked as README's
/// "Reliability" table says: the version first (505), then the method (400
/// if not a token, 405 if not served).
fn parse_request_line(line: &[u8]) -> Result<(Method, &[u8], Version), Reject> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::RequestLine);
    };
    // HTTP-version = "HTTP" "/" DIGIT "." DIGIT
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(Reject::Version)
        }
        _ => return Err(Reject::RequestLine),
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Reject::RequestLine);
    }
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"OPTIONS" => Method::Options,
        _ => return Err(Reject::Method),
    };
    if target.is_empty() {
        return Err(Reject::RequestLine);
    }
    Ok((method, target, version))
}

/// `field-name ":" OWS field-value OWS`, returning the name and the trimmed
/// value.
fn parse_field_line(line: &[u8]) -> Result<(&[u8], &[u8]), Reject> {
    let colon = line.iter().position(|&b| b == b':').ok_or(Reject::Header)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // An empty name, obs-fold (a line starting with whitespace) and
    // whitespace before the colon (RFC 9112 §5.1) all fail the token rule.
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(Reject::Header);
    }
    // field-value = *( VCHAR / SP / HTAB / obs-text ), with OWS around it:
    // no control character but HTAB. Once that holds, the only ASCII
    // whitespace left to trim is SP and HTAB.
    if value.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return Err(Reject::Header);
    }
    Ok((name, value.trim_ascii()))
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), where `uri-host` is an
/// IP literal in brackets or a reg-name (which also covers IPv4); it may be
/// empty.
fn is_valid_host(value: &[u8]) -> bool {
    // A port is what follows the last colon when it is all digits (or none).
    let host = match value.iter().rposition(|&b| b == b':') {
        Some(colon) if value[colon + 1..].iter().all(u8::is_ascii_digit) => &value[..colon],
        _ => value,
    };
    match host.strip_prefix(b"[").and_then(|h| h.strip_suffix(b"]")) {
        Some(literal) => {
            !literal.is_empty()
                && literal
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b":.".contains(&b))
        }
        None => host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b)),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes allowed in a request target: RFC 3986 unreserved, sub-delims,
/// `:`, `@`, `/`, `?` and `%` (checked further by [`percent_decode`]).
fn is_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

/// Splits a request target into its decoded path and raw query. Accepts
/// origin-form (`/path?query`), absolute-form (`http://host/path`, which
/// RFC 9112 §3.2.2 says a server must accept) and `*` for OPTIONS.
fn split_target(target: &[u8], method: Method) -> Result<(String, String), Reject> {
    // `*` with another method fails below, as any target without `/`.
    if target == b"*" && method == Method::Options {
        return Ok(("*".into(), String::new()));
    }
    let target = std::str::from_utf8(target).map_err(|_| Reject::Target)?;
    let mut origin_form = target;
    if !target.starts_with('/') {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let after_scheme = if lower.starts_with("http://") {
            &target[7..]
        } else if lower.starts_with("https://") {
            &target[8..]
        } else {
            return Err(Reject::Target);
        };
        let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme.split_at(end);
        // The authority may be an IPv6 literal in brackets.
        if !authority
            .bytes()
            .all(|b| is_target_byte(b) || b == b'[' || b == b']')
        {
            return Err(Reject::Target);
        }
        origin_form = rest;
    }
    if !origin_form.bytes().all(is_target_byte) {
        return Err(Reject::Target);
    }
    let (path, query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
    // `http://host` and `http://host?query`: the path is `/`.
    let path = if path.is_empty() { "/" } else { path };
    let path = percent_decode(path).ok_or(Reject::Target)?;
    // Every `%` starts a `%HH`. Whether the escapes decode to UTF-8 is left
    // to routing: only a parameter the route reads may be refused for that.
    percent_decode_bytes(query).ok_or(Reject::Target)?;
    Ok((path, query.to_string()))
}

/// The `key=value` pairs of a query string, each percent-decoded (`None`
/// where the decoding fails). A pair without `=` has an empty value.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Option<String>, Option<String>)> + '_ {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
}

/// A response head and body. Every response carries `Connection: close`
/// and is the last on its connection; a complete one carries
/// `Content-Length` (except a 204: RFC 9110 §8.6 forbids it there), the
/// event stream's body runs until the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status.
    pub status: Status,
    /// Extra header fields, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The `Content-Type`, if there is a body.
    pub content_type: &'static str,
    /// The body (also measured for `Content-Length` when not sent, for HEAD).
    pub body: Vec<u8>,
    /// True for the event stream: a close-delimited body the caller writes.
    pub streamed: bool,
}

impl Response {
    /// A response with a body of the given type.
    pub fn new(status: Status, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            content_type,
            body: body.into(),
            streamed: false,
        }
    }

    /// An error answer: one plain-text line saying what was wrong.
    pub fn error(status: Status, message: &str) -> Self {
        Response::new(status, TEXT_PLAIN, format!("{message}\n"))
    }

    /// The head of an event stream (WHATWG HTML, server-sent events): its
    /// body is written by the caller until the connection ends, so it has no
    /// `Content-Length` (close-delimited for HTTP/1.0 and 1.1 alike).
    pub fn event_stream() -> Self {
        Response {
            streamed: true,
            ..Response::new(Status::Ok, "text/event-stream; charset=utf-8", "")
        }
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Accel-Buffering", "no")
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The response as bytes; without the body when `head_only` (HEAD).
    pub fn to_bytes(&self, head_only: bool, now: SystemTime) -> Vec<u8> {
        // Room for a stream's head at once: growing it reallocates, and
        // glibc's realloc reaches deeper into a connection thread's stack
        // than anything else on a stream's path (a third stack page).
        let mut head = String::with_capacity(512);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {}\r\n",
            self.status.code(),
            self.status.reason(),
            HttpDate(now)
        );
        if !self.body.is_empty() || self.streamed {
            let _ = write!(head, "Content-Type: {}\r\n", self.content_type);
        }
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        // RFC 9110 §8.6: no Content-Length in a 204.
        if self.status != Status::NoContent && !self.streamed {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// `Content-Type` of plain-text bodies.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// An IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`,
/// written where it is displayed (no `String` of its own).
pub struct HttpDate(pub SystemTime);

impl fmt::Display for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let days = secs / 86_400;
        let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
        // 1970-01-01 was a Thursday.
        let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
        let (year, month, day) = civil_from_days(days as i64);
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS[month as usize - 1];
        write!(
            f,
            "{weekday}, {day:02} {month} {year} {h:02}:{m:02}:{s:02} GMT"
        )
    }
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(method: Method, path: &str, query: &str, version: Version) -> Request {
        Request {
            method,
            path: path.into(),
            query: query.into(),
            version,
            last_event_id: None,
            authorization: None,
            cookie: String::new(),
        }
    }

    #[test]
    fn complete_heads() {
        let get = |p: &str, q: &str| request(Method::Get, p, q, Version::Http11);
        let cases: Vec<(&[u8], Request)> = vec![
            (
                b"GET /prices HTTP/1.1\r\nHost: x\r\n\r\n",
                get("/prices", ""),
            ),
            (
                b"GET /prices?symbols=BTC HTTP/1.1\nHost: x\n\n",
                get("/prices", "symbols=BTC"),
            ),
            (b"\r\nGET / HTTP/1.1\r\nHost:\r\n\r\n", get("/", "")),
            (
                b"GET /%70rices HTTP/1.1\r\nHost: x\r\n\r\n",
                get("/prices", ""),
            ),
            (
                b"GET http://x:4444/prices?a=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                get("/prices", "a=1"),
            ),
            (b"GET HTTP://x HTTP/1.1\r\nHost: x\r\n\r\n", get("/", "")),
            (
                b"GET https://x?q HTTP/1.1\r\nHost: x\r\n\r\n",
                get("/", "q"),
            ),
            (
                b"GET http://[::1]:4444/prices HTTP/1.1\r\nHost: [::1]\r\n\r\n",
                get("/prices", ""),
            ),
            (
                b"GET / HTTP/1.0\r\n\r\n",
                request(Method::Get, "/", "", Version::Http10),
            ),
            (
                b"HEAD /healthz HTTP/1.0\r\n\r\n",
                request(Method::Head, "/healthz", "", Version::Http10),
            ),
            (
                b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
                request(Method::Options, "*", "", Version::Http11),
            ),
            // RFC 9112 §6.3: identical Content-Length values are one value.
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\ncontent-length:05\r\n\r\n",
                get("/", ""),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                get("/", ""),
            ),
            // Escapes are checked as `%HH` here; whether they decode to
            // UTF-8 matters only for a parameter the route reads.
            (
                b"GET /prices?utm=%FF&x=%C3 HTTP/1.1\r\nHost: x\r\n\r\n",
                get("/prices", "utm=%FF&x=%C3"),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                parse_head(bytes),
                Ok(Parsed::Complete(expected)),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn host_values() {
        for good in [
            "x",
            "",
            "example.test:4444",
            "127.0.0.1:4444",
            "[::1]",
            "[::1]:80",
            "a-b_c~d%41",
            "h:",
        ] {
            assert!(is_valid_host(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "a b", "a/b", "a:80x", "[::1", "[]", "[::1]x", "a@b", "a:b:c", "\u{e9}",
        ] {
            assert!(!is_valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn last_event_id_is_read_and_trimmed() {
        let head =
            b"GET /prices HTTP/1.1\r\nhost: x\r\nLast-Event-ID: \t 42 \r\nX-Other: \xff\r\n\r\n";
        let Ok(Parsed::Complete(req)) = parse_head(head) else {
            panic!()
        };
        assert_eq!(req.last_event_id.as_deref(), Some("42"));
    }

    #[test]
    fn partial_heads() {
        let heads: [&[u8]; 2] = [
            b"GET /prices HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\n",
            b"GET /?a=%FF HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
        ];
        for full in heads {
            for cut in 0..full.len() {
                assert_eq!(
                    parse_head(&full[..cut]),
                    Ok(Parsed::Partial),
                    "cut at {cut}"
                );
            }
            assert!(matches!(parse_head(full), Ok(Parsed::Complete(_))));
        }
    }

    #[test]
    fn rejections() {
        let cases: &[(&[u8], Reject)] = &[
            (b"GET /prices HTTP/2.0\r\n\r\n", Reject::Version),
            (b"BREW /pot HTTP/0.9\r\n\r\n", Reject::Version),
            (b"GET /prices HTTP/1.1\r\n\r\n", Reject::Host),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Reject::HostValue),
            (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Reject::HostValue),
            (b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", Reject::HostValue),
            (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", Reject::HostValue),
            (b"GET / HTTP/1.0\r\nHost: a@b\r\n\r\n", Reject::HostValue),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Reject::HostRepeated,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
                Reject::HostRepeated,
            ),
            (
                b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
                Reject::HostRepeated,
            ),
            (b"POST /prices HTTP/1.1\r\n", Reject::Method),
            (b"get /prices HTTP/1.1\r\n", Reject::Method),
            (b"G(T / HTTP/1.1\r\n", Reject::RequestLine),
            (b"GET  / HTTP/1.1\r\n", Reject::RequestLine),
            (b"GET / HTTP/1.1 \r\n", Reject::RequestLine),
            (b"GET /\r\n", Reject::RequestLine),
            (b"GET / HTTP/1.1\rX\r\n", Reject::RequestLine),
            (b"GET / HTTPS/1.1\r\n", Reject::RequestLine),
            (b"\x00\x01\x02\r\n", Reject::RequestLine),
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", Reject::Header),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                Reject::Header,
            ),
            (b"GET / HTTP/1.1\r\n: x\r\n\r\n", Reject::Header),
            (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", Reject::Header),
            (
                b"GET / HTTP/1.1\r\nX: a\x00b\r\nHost: x\r\n\r\n",
                Reject::Header,
            ),
            (
                b"GET / HTTP/1.1\r\nX: a\rb\r\nHost: x\r\n\r\n",
                Reject::Header,
            ),
            (b"GET prices HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (
                b"GET /?symbols=%G1 HTTP/1.1\r\nHost: x\r\n\r\n",
                Reject::Target,
            ),
            (b"GET /%ff HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (b"GET /?a=%4 HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (b"GET /?a=%%41 HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (
                b"GET http://x?%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                Reject::Target,
            ),
            (b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (b"GET /[x] HTTP/1.1\r\nHost: x\r\n\r\n", Reject::Target),
            (
                b"GET http://x/<p> HTTP/1.1\r\nHost: x\r\n\r\n",
                Reject::Target,
            ),
            (
                b"GET http://x?a<b HTTP/1.1\r\nHost: x\r\n\r\n",
                Reject::Target,
            ),
        ];
        for (bytes, reject) in cases {
            assert_eq!(
                parse_head(bytes),
                Err(*reject),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    /// Request bodies are never read, so their framing must not be in
    /// doubt (RFC 9112 §6.3): the verdict is the same however the head is
    /// split into reads.
    #[test]
    fn body_framing_rejections() {
        let cases: &[(&[u8], Reject)] = &[
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                Reject::TransferEncoding,
            ),
            (
                b"GET / HTTP/1.0\r\ntransfer-encoding: identity\r\nContent-Length: 0\r\n\r\n",
                Reject::TransferEncoding,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n",
                Reject::TransferEncoding,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                Reject::ContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
                Reject::ContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,5\r\nContent-Length: 7\r\n\r\n",
                Reject::ContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                Reject::ContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
                Reject::ContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
                Reject::ContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,,5\r\n\r\n",
                Reject::ContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
                Reject::ContentLength,
            ),
        ];
        for (bytes, reject) in cases {
            let shown = String::from_utf8_lossy(bytes);
            assert_eq!(parse_head(bytes), Err(*reject), "{shown}");
            for cut in 0..bytes.len() {
                let verdict = parse_head(&bytes[..cut]);
                assert!(
                    verdict == Ok(Parsed::Partial) || verdict == Err(*reject),
                    "{shown:?} cut at {cut}: {verdict:?}"
                );
            }
        }
    }

    #[test]
    fn limits_are_exact() {
        // A request line of exactly 2048 bytes is fine; 2049 is not.
        let line = |len: usize| {
            let mut l = b"GET /".to_vec();
            l.resize(len - " HTTP/1.1".len(), b'a');
            l.extend_from_slice(b" HTTP/1.1");
            assert_eq!(l.len(), len);
            l
        };
        let mut ok = line(MAX_REQUEST_LINE_BYTES);
        assert_eq!(parse_head(&ok), Ok(Parsed::Partial));
        ok.extend_from_slice(b"\r\nHost: x\r\n\r\n");
        assert!(matches!(parse_head(&ok), Ok(Parsed::Complete(_))));
        let mut long = line(MAX_REQUEST_LINE_BYTES + 1);
        assert_eq!(
            parse_head(&long),
            Ok(Parsed::Partial),
            "could still end in CR"
        );
        long.push(b'a');
        assert_eq!(parse_head(&long), Err(Reject::RequestLineTooLong));
        long.truncate(MAX_REQUEST_LINE_BYTES + 1);
        long.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&long), Err(Reject::RequestLineTooLong));

        // A head of exactly 8192 bytes is fine; one more byte is not.
        let head = |len: usize| {
            let mut h = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
            h.resize(len - 4, b'v');
            h.extend_from_slice(b"\r\n\r\n");
            h
        };
        assert!(matches!(
            parse_head(&head(MAX_HEAD_BYTES)),
            Ok(Parsed::Complete(_))
        ));
        assert_eq!(
            parse_head(&head(MAX_HEAD_BYTES + 1)),
            Err(Reject::HeadTooLarge)
        );
        let unfinished = head(MAX_HEAD_BYTES);
        assert_eq!(
            parse_head(&unfinished[..MAX_HEAD_BYTES - 1]),
            Ok(Parsed::Partial)
        );
        let mut endless = b"GET / HTTP/1.1\r\n".to_vec();
        endless.resize(MAX_HEAD_BYTES, b'h');
        assert_eq!(parse_head(&endless), Err(Reject::HeadTooLarge));
    }

    #[test]
    fn statuses() {
        let statuses: Vec<(u16, String)> = [
            Reject::RequestLineTooLong,
            Reject::HeadTooLarge,
            Reject::RequestLine,
            Reject::Version,
            Reject::Method,
            Reject::Timeout,
            Reject::Busy,
            Reject::Host,
            Reject::HostRepeated,
            Reject::TransferEncoding,
            Reject::ContentLength,
        ]
        .iter()
        .map(|r| (r.status().code(), r.to_string()))
        .collect();
        let expected = [
            (414, "request line longer than 2048 bytes"),
            (431, "request head larger than 8192 bytes"),
            (400, "malformed request line"),
            (505, "only HTTP/1.0 and HTTP/1.1 are supported"),
            (405, "method not allowed; use GET, HEAD or OPTIONS"),
            (408, "request head not received in time"),
            (503, "too many connections sending requests; retry later"),
            (400, "HTTP/1.1 request needs exactly one Host header"),
            (400, "more than one Host header"),
            (400, "Transfer-Encoding not accepted on a request"),
            (400, "Content-Length must be one decimal number"),
        ];
        assert_eq!(statuses, expected.map(|(c, m)| (c, m.to_string())));
        assert!(Reject::Method
            .response()
            .headers
            .contains(&("Allow", ALLOW.to_string())));
    }

    #[test]
    fn query_decoding() {
        let pairs: Vec<_> = query_pairs("symbols=BTC%2Ceth&&x&lastEventId=5").collect();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            pairs,
            [
                (s("symbols"), s("BTC,eth")),
                (s("x"), s("")),
                (s("lastEventId"), s("5"))
            ]
        );
    }

    #[test]
    fn response_bytes() {
        let at = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let response = Response::error(Status::NotFound, "no such path").with_header("X-A", "b");
        assert_eq!(
            String::from_utf8(response.to_bytes(false, at)).unwrap(),
            "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nX-A: b\r\n\
             Content-Length: 13\r\nConnection: close\r\n\r\nno such path\n"
        );
        assert_eq!(
            String::from_utf8(response.to_bytes(true, at)).unwrap(),
            "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nX-A: b\r\n\
             Content-Length: 13\r\nConnection: close\r\n\r\n"
        );
        let empty = Response::new(Status::NoContent, TEXT_PLAIN, "");
        assert_eq!(
            String::from_utf8(empty.to_bytes(false, at)).unwrap(),
            "HTTP/1.1 204 No Content\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Connection: close\r\n\r\n"
        );
        let stream = Response::event_stream().with_header("Access-Control-Allow-Origin", "*");
        assert_eq!(
            String::from_utf8(stream.to_bytes(false, at)).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/event-stream; charset=utf-8\r\n\
             Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\
             Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn dates() {
        let at = |s: u64| HttpDate(UNIX_EPOCH + Duration::from_secs(s)).to_string();
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_795_564_799), "Tue, 24 Nov 2026 23:59:59 GMT");
        assert_eq!(at(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
    }
}
