//! Access control (`--auth-keys`), against the real binary: who gets which
//! answer, what a token's claims bound, streams that end at `exp` or when
//! their key is removed by SIGHUP, key-file errors, and tokens kept out of
//! the log. Tokens come from `tickstream token` here; tests/browser's
//! `jose.test.mjs` checks them against a real JWT library.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

/// Secrets for the key files of these tests (at least 32 bytes each).
pub const ALPHA: &str = "alpha: the first secret of the tests, 44 bytes";
pub const BRAVO: &str = "bravo: the second secret of the tests, 45 bytes";

/// A key file in a directory of its own, removed on drop.
pub struct KeyFile {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl KeyFile {
    pub fn new(secrets: &[&str]) -> KeyFile {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let id = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tickstream-keys-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = KeyFile {
            path: dir.join("keys"),
            dir,
        };
        keys.write(secrets);
        keys
    }

    /// Replaces the file's secrets (a comment line first).
    pub fn write(&self, secrets: &[&str]) {
        std::fs::write(&self.path, format!("# test keys\n{}\n", secrets.join("\n"))).unwrap();
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `tickstream token --auth-keys FILE ARGS...`: the token it prints.
pub fn mint(keys: &KeyFile, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tickstream"))
        .args(["token", "--auth-keys", keys.path_str()])
        .args(args)
        .output()
        .expect("tickstream token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "{text:?}"
    );
    text.trim_end().to_string()
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// A server with `--auth-keys` and these flags.
fn server(keys: &KeyFile, args: &[&str]) -> Server {
    let mut all = vec!["--auth-keys", keys.path_str(), "--interval", "50ms"];
    all.extend_from_slice(args);
    Server::start(&all)
}

/// The answer to a GET with these extra header lines.
fn get_with(server: &Server, path: &str, headers: &str) -> Reply {
    request(
        server.addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes(),
    )
}

/// The status of a stream request: 200 if the stream started (it is then
/// closed), else the refusal's.
fn stream_status(server: &Server, path: &str, headers: &str) -> u16 {
    match Sse::try_connect(server.addr, path, headers) {
        Ok(_) => 200,
        Err(reply) => reply.status,
    }
}

/// Asserts the log holds none of these tokens, nor any part of one.
fn assert_no_token_in(log: &str, tokens: &[&str]) {
    for token in tokens {
        for part in token.split('.').filter(|p| p.len() >= 16) {
            assert!(!log.contains(part), "a token part in the log:\n{log}");
        }
    }
}

fn now_secs() -> u64 {
    now_ms() / 1000
}

#[test]
fn without_a_token_streams_and_metrics_get_401_and_the_rest_stays_open() {
    let keys = KeyFile::new(&[ALPHA]);
    let server = server(&keys, &[]);
    let challenge = "Bearer realm=\"tickstream\"";
    for path in [
        "/prices",
        "/crypto-price",
        "/metrics",
        "/prices?symbols=BTC",
    ] {
        let reply = get(server.addr, path);
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(reply.header("www-authenticate").as_deref(), Some(challenge));
        assert_eq!(
            reply.header("access-control-allow-origin").as_deref(),
            Some("*")
        );
        assert_eq!(reply.body.matches('\n').count(), 1, "{:?}", reply.body);
    }
    // Another scheme counts as no token.
    let basic = get_with(&server, "/prices", "Authorization: Basic YTpi\r\n");
    assert_eq!(basic.status, 401);
    assert_eq!(basic.header("www-authenticate").as_deref(), Some(challenge));
    for path in ["/", "/healthz"] {
        assert_eq!(get(server.addr, path).status, 200, "{path}");
    }
    let preflight = request(
        server.addr,
        b"OPTIONS /prices HTTP/1.1\r\nHost: t\r\nOrigin: https://a.example\r\n\r\n",
    );
    assert_eq!(preflight.status, 204);
    let allowed = preflight.header("access-control-allow-headers").unwrap();
    assert!(allowed.contains("Authorization"), "{allowed}");
    let metrics = get_with(
        &server,
        "/metrics",
        &bearer(&mint(&keys, &["--scope", "metrics"])),
    );
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .body
        .contains("tickstream_requests_rejected_total{status=\"401\"} 5"));
    // No stream thread was spent: nothing was ever connected.
    assert!(metrics.body.contains("tickstream_connections_total 0"));
}

#[test]
fn bad_tokens_get_401_naming_why() {
    let keys = KeyFile::new(&[ALPHA]);
    let other = KeyFile::new(&[BRAVO]);
    let server = server(&keys, &["--auth-audience", "prices"]);
    let expiring = mint(&keys, &["--ttl", "1s", "--audience", "prices"]);
    let cases = [
        ("abc.def".to_string(), "malformed"),
        ("a.b.c.d".to_string(), "malformed"),
        ("x".repeat(5000), "malformed"),
        (mint(&other, &["--audience", "prices"]), "signature"),
        (mint(&keys, &["--audience", "elsewhere"]), "audience"),
        (mint(&keys, &[]), "audience"),
    ];
    for (token, why) in &cases {
        let reply = get_with(&server, "/prices", &bearer(token));
        assert_eq!(reply.status, 401, "{why}");
        let expected = format!(
            "Bearer realm=\"tickstream\", error=\"invalid_token\", error_description=\"{why}\""
        );
        assert_eq!(reply.header("www-authenticate"), Some(expected));
    }
    // At exp and after it: expired.
    let exp_passed = wait_until(Duration::from_secs(5), || {
        match Sse::try_connect(server.addr, "/prices", &bearer(&expiring)) {
            Ok(_) => false,
            Err(reply) => reply
                .header("www-authenticate")
                .is_some_and(|h| h.ends_with("error_description=\"expired\"")),
        }
    });
    assert!(exp_passed, "the 1 s token still accepted after 5 s");
    let tokens: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    assert_no_token_in(&server.log(), &tokens);
}

#[test]
fn a_token_bounds_the_symbols_and_the_rate_of_its_streams() {
    let keys = KeyFile::new(&[ALPHA]);
    let server = server(&keys, &[]);
    let token = mint(&keys, &["--symbols", "BTC,eth", "--throttle", "500ms"]);
    let auth = bearer(&token);
    // Without ?symbols=, the token's symbols; at most one write per 500 ms
    // even when ?throttle= asks for less.
    let mut stream = Sse::connect(server.addr, "/prices?throttle=100ms", &auth);
    let started = Instant::now();
    let events = stream.events(12, Duration::from_secs(10));
    let symbols: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.symbol.as_str()).collect();
    assert_eq!(symbols.into_iter().collect::<Vec<_>>(), ["BTC", "ETH"]);
    // 12 events at two per write need 6 writes, 5 periods (2.5 s) apart;
    // unthrottled they would take 0.3 s. Allowed a third of the periods.
    assert!(
        started.elapsed() >= Duration::from_millis(2_500 / 3),
        "{:?}",
        started.elapsed()
    );
    // Outside the token's symbols, or a feed symbol it lacks: 403.
    let scope = "Bearer realm=\"tickstream\", error=\"insufficient_scope\"";
    for path in [
        "/prices?symbols=SOL",
        "/prices?symbols=BTC,SOL",
        "/crypto-price?symbol=SOL",
    ] {
        let reply = get_with(&server, path, &auth);
        assert_eq!(reply.status, 403, "{path}");
        assert_eq!(reply.header("www-authenticate").as_deref(), Some(scope));
    }
    assert_eq!(get_with(&server, "/metrics", &auth).status, 403);
    // The article's default symbol, BTC, is within it.
    assert_eq!(stream_status(&server, "/crypto-price", &auth), 200);
    let nothing = mint(&keys, &["--symbols", "NOPE"]);
    assert_eq!(stream_status(&server, "/prices", &bearer(&nothing)), 403);
}

#[test]
fn the_token_may_come_from_the_cookie_or_the_query_and_never_reaches_the_log() {
    let keys = KeyFile::new(&[ALPHA]);
    let server = server(&keys, &[]);
    let token = mint(&keys, &["--sub", "carol"]);
    let mut by_cookie = Sse::connect(
        server.addr,
        "/prices",
        &format!("Cookie: theme=dark; tickstream_token={token}\r\n"),
    );
    assert!(by_cookie.next_event(IO_TIMEOUT).is_some());
    let mut by_query = Sse::connect(
        server.addr,
        &format!("/prices?access_token={token}&symbols=BTC"),
        "",
    );
    assert!(by_query.next_event(IO_TIMEOUT).is_some());
    // A query name with %-escapes is the same name: its token is checked,
    // and redacted in the log.
    let mut escaped = Sse::connect(server.addr, &format!("/prices?access%5Ftoken={token}"), "");
    assert!(escaped.next_event(IO_TIMEOUT).is_some());
    // The header wins over a bad cookie: the first present is the one checked.
    let bad_cookie = "Cookie: tickstream_token=garbage\r\n".to_string();
    let both = bearer(&token) + &bad_cookie;
    assert_eq!(stream_status(&server, "/prices", &both), 200);
    assert_eq!(stream_status(&server, "/prices", &bad_cookie), 401);
    drop((by_cookie, by_query, escaped));
    for logged in [
        "/prices?access_token=REDACTED&symbols=BTC",
        "/prices?access%5Ftoken=REDACTED",
    ] {
        assert!(server.wait_for_log(logged, IO_TIMEOUT), "{}", server.log());
    }
    assert!(
        server.log().contains("carol"),
        "the sub names the subscriber"
    );
    assert_no_token_in(&server.log(), &[&token]);
}

#[test]
fn streams_past_the_limit_of_one_sub_get_429_until_one_ends() {
    let keys = KeyFile::new(&[ALPHA]);
    let server = server(&keys, &["--max-streams-per-sub", "2"]);
    let dave = bearer(&mint(&keys, &["--sub", "dave"]));
    let first = Sse::connect(server.addr, "/prices", &dave);
    let _second = Sse::connect(server.addr, "/prices", &dave);
    let third = get_with(&server, "/prices", &dave);
    assert_eq!(third.status, 429);
    assert!(third.header("retry-after").is_some());
    // Another subscriber is not limited by dave's streams.
    let erin = bearer(&mint(&keys, &["--sub", "erin"]));
    let _erin = Sse::connect(server.addr, "/prices", &erin);
    drop(first);
    assert!(wait_until(IO_TIMEOUT, || {
        Sse::try_connect(server.addr, "/prices", &dave).is_ok()
    }));
}

#[test]
fn a_stream_ends_at_exp_and_a_fresh_token_resumes_it_exactly() {
    let keys = KeyFile::new(&[ALPHA]);
    let metrics = bearer(&mint(&keys, &["--scope", "metrics"]));
    let server = server(&keys, &[]);
    let short = mint(&keys, &["--ttl", "2s"]);
    let exp = now_secs() + 2;
    let mut stream = Sse::connect(server.addr, "/prices", &bearer(&short));
    let mut events = Vec::new();
    while let Some(event) = stream.next_event(Duration::from_secs(6)) {
        events.push(event);
        assert!(now_secs() <= exp + 3, "the stream outlived its token");
    }
    let ended_at = now_secs();
    assert!(
        ended_at >= exp && ended_at <= exp + 3,
        "ended {ended_at}, exp {exp}"
    );
    let reason = "tickstream_disconnects_total{reason=\"expired\"} 1";
    assert!(wait_until(IO_TIMEOUT, || get_with(
        &server, "/metrics", &metrics
    )
    .body
    .contains(reason)));
    let last = events.last().expect("events before exp").id;
    let fresh = format!("Last-Event-ID: {last}\r\n{}", bearer(&mint(&keys, &[])));
    let mut resumed = Sse::connect(server.addr, "/prices", &fresh);
    let more = resumed.events(10, IO_TIMEOUT);
    assert_resumed_after(last, &more);
}

#[test]
fn sighup_rotates_keys_and_ends_only_the_streams_of_a_removed_key() {
    let keys = KeyFile::new(&[ALPHA, BRAVO]);
    let server = server(&keys, &[]);
    let alpha_keys = KeyFile::new(&[ALPHA]);
    let bravo_keys = KeyFile::new(&[BRAVO]);
    let by_alpha = mint(&alpha_keys, &[]);
    let by_bravo = mint(&bravo_keys, &["--scope", "metrics"]);
    let mut old = Sse::connect(server.addr, "/prices", &bearer(&by_alpha));
    let mut kept = Sse::connect(server.addr, "/prices", &bearer(&by_bravo));
    assert!(old.next_event(IO_TIMEOUT).is_some() && kept.next_event(IO_TIMEOUT).is_some());

    keys.write(&[BRAVO]);
    server.signal("HUP");
    assert!(
        server.wait_for_log("tickstream: keys reloaded: 1 key", IO_TIMEOUT),
        "{}",
        server.log()
    );
    // Within a second of the reload, allowed three.
    let signalled = Instant::now();
    while old.next_event(Duration::from_secs(3)).is_some() {
        assert!(
            signalled.elapsed() < Duration::from_secs(3),
            "the revoked stream goes on"
        );
    }
    assert!(
        kept.next_event(IO_TIMEOUT).is_some(),
        "the other key's stream ends too"
    );
    let metrics = get_with(&server, "/metrics", &bearer(&by_bravo)).body;
    assert!(
        metrics.contains("tickstream_disconnects_total{reason=\"revoked\"} 1"),
        "{metrics}"
    );
    assert_eq!(stream_status(&server, "/prices", &bearer(&by_alpha)), 401);

    // A bad file is logged and keeps the keys the server has.
    std::fs::write(&keys.path, "too short\n").unwrap();
    server.signal("HUP");
    assert!(
        server.wait_for_log("keeping the 1 key", IO_TIMEOUT),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("too short"),
        "the secret is never logged"
    );
    assert!(kept.next_event(IO_TIMEOUT).is_some());
    assert_eq!(stream_status(&server, "/prices", &bearer(&by_bravo)), 200);
}

#[test]
fn sighup_without_auth_keys_is_logged_and_ignored() {
    let mut server = Server::start(&["--interval", "50ms"]);
    let mut client = Sse::connect(server.addr, "/prices", "");
    server.signal("HUP");
    assert!(
        server.wait_for_log("SIGHUP ignored", IO_TIMEOUT),
        "{}",
        server.log()
    );
    assert!(client.next_event(IO_TIMEOUT).is_some());
    assert!(server.is_running());
}

#[test]
fn key_file_errors_exit_2_naming_the_file_and_line_never_the_secret() {
    let short = "a short secret";
    let keys = KeyFile::new(&[ALPHA, "", short]);
    let empty = KeyFile::new(&[]);
    let missing = keys.dir.join("no-such-file");
    let cases = [
        (keys.path_str().to_string(), "line 4"),
        (empty.path_str().to_string(), "no secret"),
        (missing.to_str().unwrap().to_string(), "cannot read"),
    ];
    for (path, what) in &cases {
        let serve = ["--auth-keys", path, "--addr", "127.0.0.1:0"];
        for command in [&serve[..], &["token", "--auth-keys", path]] {
            let out = without_tickstream_env(Command::new(env!("CARGO_BIN_EXE_tickstream")))
                .args(command)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.contains(path.as_str()) && stderr.contains(what),
                "{stderr}"
            );
            assert!(
                !stderr.contains(short) && !stderr.contains(ALPHA),
                "{stderr}"
            );
        }
    }
}

#[test]
fn a_named_cors_origin_may_send_its_cookie() {
    let keys = KeyFile::new(&[ALPHA]);
    let origin = "https://prices.example";
    let server = server(&keys, &["--cors-origin", origin]);
    let token = mint(&keys, &[]);
    let cookie = format!("Origin: {origin}\r\nCookie: tickstream_token={token}\r\n");
    let stream = Sse::connect(server.addr, "/prices", &cookie);
    let expected = [
        format!("access-control-allow-origin: {origin}"),
        "access-control-allow-credentials: true".to_string(),
    ];
    for head in [stream.head.as_str(), &get(server.addr, "/prices").head] {
        let head = head.to_ascii_lowercase();
        assert!(expected.iter().all(|h| head.contains(h)), "{head}");
    }
    // With `*`, browsers refuse credentials: the header is not sent.
    let open = Server::start(&["--auth-keys", keys.path_str()]);
    let head = get(open.addr, "/prices").head.to_ascii_lowercase();
    assert!(!head.contains("access-control-allow-credentials"), "{head}");
}
