//! A real Prometheus (Debian's `prometheus`) scrapes `/metrics` of a server
//! with `--auth-keys`, with the README's scrape block: a token of scope
//! `metrics` from `credentials_file` gets `up` 1, one without the scope
//! `up` 0. `promtool check metrics` passes on the exposition.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::auth::{mint, KeyFile, ALPHA};
use crate::nginx::{readme_block, skip_or_fail};
use crate::redis_server::free_port;
use crate::support::*;

fn prometheus_available() -> bool {
    let runs = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    let found = runs("prometheus") && runs("promtool");
    if !found {
        skip_or_fail("prometheus and promtool (apt-get install prometheus)");
    }
    found
}

/// `GET path` on 127.0.0.1:port; the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

/// The value of `up` for `job`, as Prometheus's query API reports it.
fn up(port: u16, job: &str) -> Option<String> {
    let body = http_get(port, "/api/v1/query?query=up")?;
    let at = body.find(&format!("\"job\":\"{job}\""))?;
    let value = &body[at..];
    let value = &value[value.find("\"value\":[")?..];
    let end = value.find("\"]")?;
    let start = value[..end].rfind('"')? + 1;
    Some(value[start..end].to_string())
}

#[test]
fn prometheus_scrapes_with_a_metrics_token_and_not_without() {
    if !prometheus_available() {
        return;
    }
    let keys = KeyFile::new(&[ALPHA]);
    let server = Server::start(&["--auth-keys", keys.path_str(), "--quiet"]);
    let with_scope = keys.dir.join("metrics-token");
    let without = keys.dir.join("stream-token");
    std::fs::write(
        &with_scope,
        mint(&keys, &["--scope", "metrics", "--ttl", "1h"]),
    )
    .unwrap();
    std::fs::write(&without, mint(&keys, &["--ttl", "1h"])).unwrap();

    // The README's block, once as it is and once with the other token.
    let block = readme_block("yaml prometheus");
    assert!(
        block.contains("/etc/prometheus/tickstream.token"),
        "{block}"
    );
    assert!(block.contains("127.0.0.1:4444"), "{block}");
    let job = |name: &str, token: &std::path::Path| {
        block
            .replace("job_name: tickstream", &format!("job_name: {name}"))
            .replace("/etc/prometheus/tickstream.token", token.to_str().unwrap())
            .replace("127.0.0.1:4444", &server.addr.to_string())
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}",
        job("scoped", &with_scope),
        job("unscoped", &without)
    );
    let config_path = keys.dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let _prometheus = ChildGuard::new(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                keys.dir.join("tsdb").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    let both = wait_until(Duration::from_secs(30), || {
        up(port, "scoped").is_some() && up(port, "unscoped").is_some()
    });
    assert!(
        both,
        "no scrape within 30 s: {:?}",
        http_get(port, "/api/v1/query?query=up")
    );
    assert_eq!(up(port, "scoped").as_deref(), Some("1"));
    assert_eq!(up(port, "unscoped").as_deref(), Some("0"));
    let token = std::fs::read_to_string(&with_scope).unwrap();
    let metrics = request(
        server.addr,
        format!("GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n")
            .as_bytes(),
    );
    assert!(!metrics
        .body
        .contains("tickstream_requests_rejected_total{status=\"403\"} 0\n"));
}

#[test]
fn promtool_accepts_the_exposition() {
    if !prometheus_available() {
        return;
    }
    let server = Server::start(&["--quiet"]);
    let mut client = Sse::connect(server.addr, "/prices", "");
    client.next_event(IO_TIMEOUT).expect("an event");
    let exposition = get(server.addr, "/metrics").body;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
