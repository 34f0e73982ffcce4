//! One connection's life on its own thread: read the request head (bounded
//! in bytes by the parser's limits and in time by `--header-timeout` from
//! the connect), route it, then either write a complete answer and close,
//! or hand the socket to [`crate::server::stream`].

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use crate::config::FeedKind;
use crate::http::{self, Method, Parsed, Reject, Request, Response, Status};
use crate::server::access;
use crate::server::gate::Pass;
use crate::server::reply::{respond, timed_out};
use crate::server::routes::{self, Route};
use crate::server::{stream, Shared};

/// First size of the buffer a head is read into; it grows to
/// [`http::MAX_HEAD_BYTES`] only for large heads.
const HEAD_BUFFER_START_BYTES: usize = 1024;
/// A connection thread: read the head, then answer it. `pending` is the
/// place among the connections still sending heads, given back once the
/// head is read.
pub fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    connected_at: Instant,
    pending: Pass,
    shared: &Shared,
) {
    let deadline = connected_at + shared.config.header_timeout;
    let head = read_head(&stream, deadline);
    drop(pending);
    match head {
        Ok(Some(request)) => answer(stream, peer, &request, shared),
        Ok(None) => {} // The client left before finishing its head.
        Err(reject) => respond(&stream, reject.response(), false, shared),
    }
}

/// Reads until the head is complete, a limit is passed, the deadline
/// passes, or the client goes away (`Ok(None)`).
fn read_head(mut stream: &TcpStream, deadline: Instant) -> Result<Option<Request>, Reject> {
    let mut buf = vec![0; HEAD_BUFFER_START_BYTES];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Reject::Timeout);
        }
        if len == buf.len() {
            buf.resize((2 * len).min(http::MAX_HEAD_BYTES), 0);
        }
        let n = match stream.read(&mut buf[len..]) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if timed_out(&e) => return Err(Reject::Timeout),
            Err(_) => return Ok(None),
        };
        let new_line = buf[len..len + n].contains(&b'\n');
        len += n;
        if new_line || len > http::MAX_REQUEST_LINE_BYTES + 1 {
            match http::parse_head(&buf[..len])? {
                Parsed::Complete(request) => return Ok(Some(request)),
                // A full buffer the parser still calls Partial (only leading
                // empty lines can do that) is too large all the same.
                Parsed::Partial if len >= http::MAX_HEAD_BYTES => return Err(Reject::HeadTooLarge),
                Parsed::Partial => {}
            }
        }
    }
}

/// Answers a complete request.
fn answer(stream: TcpStream, peer: SocketAddr, request: &Request, shared: &Shared) {
    let route = routes::route(request, &shared.config);
    let route = match &shared.access {
        None => route,
        Some(keys) => access::check(request, route, keys, shared),
    };
    match route {
        Route::Stream(params) => {
            let head = stream::head_bytes(shared);
            stream::serve(stream, peer, request, params, head, shared)
        }
        route => answer_complete(&stream, route, request.method == Method::Head, shared),
    }
}

// Routing, a token's check and a complete answer are never inlined here:
// their locals would otherwise stay in the frame below every stream for its
// whole life, and a third stack page per client costs 4 KiB of RSS
// (BENCHMARKS.md, issues 14-16).

/// Writes an answer other than a stream.
#[inline(never)]
fn answer_complete(stream: &TcpStream, route: Route, head_only: bool, shared: &Shared) {
    let response = match route {
        Route::Answer(response) => response,
        Route::Health if shared.metrics.feed_up() => {
            Response::new(Status::Ok, http::TEXT_PLAIN, "ok\n")
        }
        Route::Health => Response::error(
            Status::ServiceUnavailable,
            match shared.config.feed {
                FeedKind::Sim | FeedKind::Stdin => "feed ended",
                FeedKind::Redis => "feed unavailable",
            },
        ),
        Route::Metrics => Response::new(
            Status::Ok,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render(),
        ),
        Route::Stream(_) => return,
    };
    respond(stream, response, head_only, shared)
}
