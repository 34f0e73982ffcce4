//! Every row of README's "Reliability" table, while a streaming client on the
//! same server keeps receiving on time.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

fn long_target(len: usize) -> String {
    format!("/{}", "a".repeat(len - 1))
}

#[test]
fn every_bad_input_gets_its_status_and_a_one_line_reason() {
    let server = Server::start(&["--interval", "50ms", "--header-timeout", "500ms"]);
    let watcher = Watcher::start(&server, "/prices?symbols=BTC");

    let line_2049 = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", long_target(2049 - 13));
    let head_8193 = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "v".repeat(8193 - 32)
    );
    assert_eq!(head_8193.len(), 8193);
    let endless_head =
        format!("GET / HTTP/1.1\r\n{}", "X-Filler: aaaa\r\n".repeat(600)).into_bytes();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            line_2049.into_bytes(),
            414,
            "request line longer than 2048 bytes",
        ),
        (
            head_8193.into_bytes(),
            431,
            "request head larger than 8192 bytes",
        ),
        (endless_head, 431, "request head larger than 8192 bytes"),
        (
            b"GET /prices HTTP/1.1\r\n\r\n".to_vec(),
            400,
            "HTTP/1.1 request needs exactly one Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
            400,
            "more than one Host header",
        ),
        (
            b"GET /prices HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(),
            400,
            "invalid Host header",
        ),
        (
            b"GET /prices\r\n\r\n".to_vec(),
            400,
            "malformed request line",
        ),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n".to_vec(),
            400,
            "malformed request line",
        ),
        (
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
            400,
            "malformed header field",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n".to_vec(),
            400,
            "malformed header field",
        ),
        (
            b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "malformed request line",
        ),
        (
            b"GET /<script> HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "malformed request target",
        ),
        (
            b"POST /prices HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            405,
            "method not allowed; use GET, HEAD or OPTIONS",
        ),
        (
            b"DELETE / HTTP/1.0\r\n\r\n".to_vec(),
            405,
            "method not allowed; use GET, HEAD or OPTIONS",
        ),
        (
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            404,
            "no such path: /nope",
        ),
        (
            b"OPTIONS /nope HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            404,
            "no such path: /nope",
        ),
        (
            b"GET /a%0D%0AX:%20y HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            404,
            "no such path: /a\\r\\nX: y",
        ),
        (
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(),
            505,
            "only HTTP/1.0 and HTTP/1.1 are supported",
        ),
        (
            b"POST / HTTP/3.0\r\n\r\n".to_vec(),
            505,
            "only HTTP/1.0 and HTTP/1.1 are supported",
        ),
        (
            b"GET /prices?symbols=B@D HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "invalid symbol \"B@D\": 1 to 16 of A-Z 0-9 . _ -; valid symbols: BTC, ETH, SOL, XRP, DOGE",
        ),
    ];
    for (raw, status, message) in &cases {
        let reply = request(server.addr, raw);
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(40)]);
        assert_eq!(reply.status, *status, "{shown}");
        assert_eq!(reply.body, format!("{message}\n"), "{shown}");
        assert_eq!(
            reply.header("Content-Length"),
            Some(reply.body.len().to_string())
        );
        assert_eq!(reply.header("Connection").as_deref(), Some("close"));
        if *status == 405 {
            assert_eq!(reply.header("Allow").as_deref(), Some("GET, HEAD, OPTIONS"));
        }
        println!("{status} {message:?} <- {shown:?}");
    }

    // 408: a head that is not complete within --header-timeout of the connect.
    let started = Instant::now();
    let mut slow = connect(server.addr);
    slow.write_all(b"GET /prices HTTP/1.1\r\nHost").unwrap();
    let reply = read_reply(&mut slow);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (408, "request head not received in time\n")
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // The same head, sent in ten pieces, is fine.
    let whole = b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: pieces\r\n\r\n";
    let mut pieces = connect(server.addr);
    for piece in whole.chunks(whole.len().div_ceil(10)) {
        pieces.write_all(piece).unwrap();
        // A pause, so each piece reaches the server in a read of its own.
        thread::sleep(Duration::from_millis(20));
    }
    let reply = read_reply(&mut pieces);
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"));

    watcher.finish_on_time(Duration::from_millis(50), "bad input");
    assert_eq!(
        server.metric("tickstream_requests_rejected_total{status=\"400\"}"),
        10
    );
    assert_eq!(
        server.metric("tickstream_requests_rejected_total{status=\"408\"}"),
        1
    );
    assert_eq!(
        server.metric("tickstream_requests_rejected_total{status=\"431\"}"),
        2
    );
}

#[test]
fn head_and_options_and_the_other_routes() {
    let server = Server::start(&["--interval", "1s"]);
    let head = request(server.addr, b"HEAD /prices HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Type").as_deref(),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(head.body, "", "no body after HEAD");
    let page = get(server.addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("EventSource"));
    let head = request(server.addr, b"HEAD / HTTP/1.0\r\n\r\n");
    assert_eq!(
        head.header("Content-Length"),
        Some(page.body.len().to_string())
    );
    assert_eq!(head.body, "");
    let health = request(server.addr, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((health.status, health.body.as_str()), (200, ""));
    let preflight = request(
        server.addr,
        b"OPTIONS /prices HTTP/1.1\r\nHost: x\r\nOrigin: http://elsewhere.test\r\nAccess-Control-Request-Headers: last-event-id\r\n\r\n",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("Access-Control-Allow-Origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        preflight.header("Access-Control-Allow-Methods").as_deref(),
        Some("GET, HEAD, OPTIONS")
    );
    assert!(preflight
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Last-Event-ID"));
    assert_eq!(
        preflight.header("Content-Length"),
        None,
        "a 204 has no Content-Length"
    );
    let absolute = request(
        server.addr,
        b"GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!((absolute.status, absolute.body.as_str()), (200, "ok\n"));
}

#[test]
fn connections_still_sending_heads_are_capped() {
    let server = Server::start(&["--interval", "100ms", "--header-timeout", "20s"]);
    let watcher = Watcher::start(&server, "/prices?symbols=BTC");
    // 1,024 connections that never finish their heads hold every slot...
    let idle: Vec<TcpStream> = (0..1024)
        .map(|_| {
            let mut s = connect(server.addr);
            s.write_all(b"GET /").unwrap();
            s
        })
        .collect();
    assert!(wait_until(Duration::from_secs(10), || server.threads() >= 1024 + 3));
    // ... so the next one is answered 503 at once, without a thread.
    let reply = read_reply(&mut connect(server.addr));
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        "too many connections sending requests; retry later\n"
    );
    println!("threads with 1024 pending heads: {}", server.threads());
    drop(idle);
    // Their threads end once the clients are gone; the server answers again.
    assert!(wait_until(Duration::from_secs(10), || server.threads() < 10));
    assert_eq!(get(server.addr, "/healthz").status, 200);
    watcher.finish_on_time(Duration::from_millis(100), "pending heads");
}

#[test]
fn max_clients_answers_503_with_retry_after_and_recovers() {
    let server = Server::start(&["--interval", "100ms", "--max-clients", "2", "--retry", "2s"]);
    let first = Sse::connect(server.addr, "/prices", "");
    let mut second = Sse::connect(server.addr, "/prices", "");
    second.events_until_quiet(Duration::from_millis(50)); // the snapshot
    let refused = Sse::try_connect(server.addr, "/prices", "")
        .err()
        .expect("503");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("Retry-After").as_deref(), Some("2"));
    assert_eq!(refused.body, "too many clients (limit 2); retry later\n");
    let head = request(server.addr, b"HEAD /prices HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 503);
    // /metrics and /healthz still answer.
    assert_eq!(get(server.addr, "/healthz").status, 200);
    assert_eq!(server.metric("tickstream_clients_connected"), 2);
    // The streams already open kept receiving meanwhile, nothing missed:
    // the next two ticks (10 events), due within 200 ms, in three times that.
    let events = second.events(10, Duration::from_millis(200) * 3);
    assert_consecutive(&events);
    drop(first);
    // The server notices the client left on its next write.
    assert!(wait_until(Duration::from_secs(5), || server
        .metric("tickstream_clients_connected")
        == 1));
    let mut third = Sse::connect(server.addr, "/prices", "");
    assert!(third.next_event(IO_TIMEOUT).is_some());
    drop(second);
    assert_eq!(
        server.metric("tickstream_requests_rejected_total{status=\"503\"}"),
        2
    );
}

#[test]
fn head_gives_its_max_clients_place_back_before_lingering() {
    let server = Server::start(&["--interval", "100ms", "--max-clients", "1"]);
    // The HEAD's client reads the head but does not close, so the server
    // lingers on that connection for a second.
    let mut head = connect(server.addr);
    head.write_all(b"HEAD /prices HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut head).status, 200);
    let mut stream = Sse::try_connect(server.addr, "/prices", "")
        .unwrap_or_else(|r| panic!("a stream refused beside a lingering HEAD: {r:?}"));
    assert!(stream.next_event(IO_TIMEOUT).is_some());
    drop(head);
}

#[test]
fn body_framing_and_repeated_hosts_get_400_and_unread_parameters_are_ignored() {
    let server = Server::start(&["--interval", "1s"]);
    let cases: [(&[u8], u16, &str); 7] = [
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "Transfer-Encoding not accepted on a request\n",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
            400,
            "Content-Length must be one decimal number\n",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            400,
            "Content-Length must be one decimal number\n",
        ),
        (
            b"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
            "more than one Host header\n",
        ),
        (
            b"GET /healthz?x=%C3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 0\r\n\r\n",
            200,
            "ok\n",
        ),
        (b"HEAD /prices?utm=%FF HTTP/1.1\r\nHost: x\r\n\r\n", 200, ""),
        (
            b"HEAD /prices?symbols=%FF HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "",
        ),
    ];
    for (raw, status, body) in cases {
        let reply = request(server.addr, raw);
        let shown = String::from_utf8_lossy(raw);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (status, body),
            "{shown}"
        );
        assert_eq!(reply.header("Connection").as_deref(), Some("close"));
        assert_eq!(
            reply.header("Access-Control-Allow-Origin").as_deref(),
            Some("*")
        );
        if status == 400 {
            assert!(reply.header("Content-Length").is_some(), "{shown}");
        }
    }
}
