//! Writing a complete answer and closing: the one place that adds the CORS
//! header, used by the accept loop (its 503), the connection (every other
//! complete answer) and the stream (its head, and its refusals).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use crate::http::{Response, Status};
use crate::server::Shared;

/// After an answer, how long and how much of the rest of the request is
/// read and dropped before closing, so the answer is not lost to a TCP
/// reset (RFC 9112 §9.6).
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// The error a socket read or write gives when its timeout
/// (`SO_RCVTIMEO` / `SO_SNDTIMEO`) runs out.
pub fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The bytes of a response's head (and body, unless `head_only`), with the
/// CORS header every answer carries: the one place it is added.
pub fn to_bytes(mut response: Response, head_only: bool, shared: &Shared) -> Vec<u8> {
    if let Some(origin) = &shared.config.cors_origin {
        response = response.with_header("Access-Control-Allow-Origin", origin.clone());
        // One named origin may send its cookie (EventSource withCredentials).
        if origin != "*" {
            response = response.with_header("Access-Control-Allow-Credentials", "true");
        }
    }
    response.to_bytes(head_only, SystemTime::now())
}

/// Writes a complete response (counting error answers) and closes.
pub fn respond(stream: &TcpStream, response: Response, head_only: bool, shared: &Shared) {
    shared.metrics.rejected(response.status);
    let _ = stream.set_write_timeout(Some(shared.config.write_timeout));
    let mut writer = stream;
    let _ = writer.write_all(&to_bytes(response, head_only, shared));
    linger_close(stream);
}

/// Half-closes, then reads and drops what the client still sends, for a
/// bounded time, so that closing does not reset the connection before the
/// client has read the answer.
fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER_TIME;
    let mut drained = 0;
    let mut scratch = [0u8; 512];
    let mut reader = stream;
    while drained < LINGER_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match reader.read(&mut scratch) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// The 503 for a connection past a gate, written by the accept loop without
/// blocking: a new socket's send buffer is empty.
pub fn answer_busy(stream: TcpStream, shared: &Shared, message: &str) {
    let response =
        Response::error(Status::ServiceUnavailable, message).with_header("Retry-After", "1");
    shared.metrics.rejected(response.status);
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write(&to_bytes(response, false, shared));
    // Read what already arrived, so closing sends a FIN rather than a reset
    // that could destroy the answer before the client reads it.
    let mut scratch = [0u8; 1024];
    for _ in 0..16 {
        if !matches!((&stream).read(&mut scratch), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}
