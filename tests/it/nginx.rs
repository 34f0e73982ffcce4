//! The README's nginx block, run for real: a Debian nginx on a loopback port
//! proxies `/prices`; each event must come through soon after its `ts`
//! (unbuffered), and resume must work through it.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Reports a missing tool where a person sees it (test output capture only
/// swallows `print!`), or fails under CI, where everything must run.
pub fn skip_or_fail(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what}: required under CI=true (.ci/run installs it)");
    }
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {what} ***\n");
}

/// The block of README.md fenced as ```` ```INFO ```` (`nginx` for the
/// single server, `nginx fleet` for several).
pub fn readme_block(info: &str) -> String {
    let readme = include_str!("../../README.md");
    let fence = format!("```{info}\n");
    let start = readme
        .find(&fence)
        .unwrap_or_else(|| panic!("a {fence:?} block in README.md"))
        + fence.len();
    let len = readme[start..].find("```").expect("end of the nginx block");
    readme[start..start + len].to_string()
}

/// nginx on a loopback port, with its own directory for configuration,
/// logs and temporary files; stopped and the directory removed on drop.
pub struct Nginx {
    child: ChildGuard,
    dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.child.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_nginx(binary: &str, upstream: SocketAddr) -> Nginx {
    let block = readme_block("nginx");
    assert!(block.contains("server 127.0.0.1:4444;"));
    start_nginx_with(
        binary,
        &block.replace("server 127.0.0.1:4444;", &format!("server {upstream};")),
    )
}

/// nginx with `block` (a README block, `listen 80;` replaced by a free
/// loopback port) inside its `http` context. Another process may bind the
/// port between its pick and nginx's bind; nginx then exits, and it is tried
/// again on another port.
pub fn start_nginx_with(binary: &str, block: &str) -> Nginx {
    assert!(block.contains("listen 80;"), "{block}");
    const TRIES: usize = 5;
    for _ in 0..TRIES {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir =
            std::env::temp_dir().join(format!("tickstream-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let block = block.replace("listen 80;", &format!("listen {addr};"));
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
             {block}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx {
            child: ChildGuard::new(child),
            dir,
            addr,
        };
        // nginx writes its pid file once it has bound its port, and exits
        // if it cannot bind it.
        let pid_file = nginx.dir.join("nginx.pid");
        let mut exited = false;
        wait_until(Duration::from_secs(10), || {
            exited = nginx.child.try_wait().expect("try_wait").is_some();
            exited || pid_file.exists()
        });
        if exited {
            continue;
        }
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(
                addr
            )
            .is_ok()),
            "nginx did not start listening on {addr}"
        );
        return nginx;
    }
    panic!("nginx did not start on any of {TRIES} free ports");
}

/// Debian's nginx, if installed.
pub fn nginx_binary() -> Option<String> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

#[test]
fn events_stream_through_nginx_unbuffered_and_resume_works() {
    let Some(binary) = nginx_binary() else {
        return skip_or_fail(
            "nginx is not installed (apt-get install nginx-light); the proxy test did not run",
        );
    };
    let interval_ms = 500;
    let server = Server::start(&["--interval", "500ms", "--symbols", "BTC"]);
    let nginx = start_nginx(&binary, server.addr);

    let mut sse = Sse::connect(nginx.addr, "/prices", "");
    sse.next_event(IO_TIMEOUT)
        .expect("the snapshot through nginx");
    // Live events come through one by one: each arrives soon after its
    // `ts`, stamped just before the server publishes it (same clock). A
    // proxy that held each event until the next one came would add a whole
    // interval to its lag; one that buffered 4 or 8 KiB (nginx's default)
    // would add many. Unbuffered, the lag is a few milliseconds.
    let mut events = Vec::new();
    let mut lags = Vec::new();
    for _ in 0..5 {
        let event = sse
            .next_event(IO_TIMEOUT)
            .expect("live event through nginx");
        lags.push(now_ms() as i64 - event.ts as i64);
        events.push(event);
    }
    println!("lag (arrival - ts) of each event through nginx: {lags:?} ms");
    assert_consecutive(&events);
    assert!(
        lags.iter().all(|lag| *lag < interval_ms),
        "events were held back: lags {lags:?} ms at a {interval_ms} ms interval"
    );
    let last = events.last().unwrap().id;
    drop(sse);
    // Two ticks pass while it is away.
    server.wait_for_published(server.published() + 2);
    let mut resumed = Sse::resume(nginx.addr, "/prices", last);
    assert_resumed_after(last, &resumed.events(3, IO_TIMEOUT));
    // nginx keeps client connections alive unless asked not to.
    let health = request(
        nginx.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
}
