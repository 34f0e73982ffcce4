//! A real `redis-server` for the tests of the redis feed and the
//! publisher: started on a free port with a directory of its own, stopped
//! (by its PID) when dropped; `redis-cli` for the test's own commands.
//!
//! (`bench/lib.sh` starts the benchmarks' and `scripts/fleet.sh`'s Redis the
//! same way in shell: the scripts cannot call this, and the tests need a
//! child they own, restarts on the same port and an append-only file.)

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// A `redis-server` child process.
pub struct Redis {
    child: Option<ChildGuard>,
    /// Its port, kept across restarts.
    pub port: u16,
    dir: PathBuf,
    aof: bool,
}

impl Redis {
    /// Starts one without persistence.
    pub fn start() -> Redis {
        Redis::launch(false)
    }

    /// Starts one that writes every command to its append-only file before
    /// answering (`appendfsync always`), so a restart loses nothing.
    pub fn start_with_aof() -> Redis {
        Redis::launch(true)
    }

    /// Starts one on a free port. Another process may bind that port
    /// between [`free_port`] and redis-server; then redis-server exits, and
    /// it is tried again on another port.
    fn launch(aof: bool) -> Redis {
        const TRIES: usize = 5;
        for _ in 0..TRIES {
            let port = free_port();
            let dir = std::env::temp_dir()
                .join(format!("tickstream-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("redis directory");
            let mut redis = Redis {
                child: None,
                port,
                dir,
                aof,
            };
            if redis.try_start() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of {TRIES} free ports");
    }

    /// The URL for `--redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again (after [`Redis::stop`]) on the same port and
    /// directory, and waits until it answers.
    pub fn restart(&mut self) {
        assert!(
            self.try_start(),
            "redis-server on port {} did not answer PING",
            self.port
        );
    }

    /// Starts redis-server on its port and directory; true once it answers
    /// (it, not another process on that port: `INFO` names its PID), false
    /// if it exits first (the port is taken) or stays silent for 10 s.
    fn try_start(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "always", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = ChildGuard::new(
            command
                .spawn()
                .expect("redis-server (apt-get install redis-server; .ci/run installs it)"),
        );
        let pid = format!("process_id:{}", child.id());
        let mut exited = false;
        let up = wait_until(Duration::from_secs(10), || {
            exited = child.try_wait().expect("try_wait").is_some();
            exited
                || self
                    .try_cli(&["INFO", "server"])
                    .is_some_and(|info| info.lines().any(|l| l.trim() == pid))
        });
        if !up || exited {
            return false;
        }
        self.child = Some(child);
        true
    }

    /// Stops it (SIGKILL to the PID it was started with); with AOF and
    /// `appendfsync always`, everything it acknowledged is on disk.
    pub fn stop(&mut self) {
        self.child = None;
    }

    /// Runs `redis-cli` against it; its output, trimmed; `None` if it
    /// failed (Redis down).
    pub fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    /// Runs `redis-cli` against it and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    /// `XADD tickstream:prices <id> symbol S price P ts 5`; returns the id.
    pub fn add(&self, id: &str, symbol: &str, price: &str) -> String {
        let fields = ["symbol", symbol, "price", price, "ts", "5"];
        let mut args = vec!["XADD", "tickstream:prices", id];
        args.extend_from_slice(&fields);
        self.cli(&args)
    }

    /// The ids of every entry of the stream, oldest first.
    pub fn ids(&self) -> Vec<String> {
        self.ids_between("-", "+")
    }

    /// The ids of the stream's entries from `first` to `last` (both
    /// included; `-` and `+` for either end), oldest first.
    pub fn ids_between(&self, first: &str, last: &str) -> Vec<String> {
        let out = self.cli(&["XRANGE", "tickstream:prices", first, last]);
        // redis-cli prints each entry as its id, then field and value lines.
        out.lines()
            .filter(|l| {
                l.split_once('-').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && a.bytes().all(|c| c.is_ascii_digit())
                        && !b.is_empty()
                        && b.bytes().all(|c| c.is_ascii_digit())
                })
            })
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True if `redis-server` and `redis-cli` can be run; otherwise reports
/// the test as SKIPPED (or fails under `CI=true`, where `.ci/run` installs
/// them). A test starts with `if !redis_available() { return; }`.
pub fn redis_available() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let found = runs("redis-server") && runs("redis-cli");
    if !found {
        crate::nginx::skip_or_fail("redis-server and redis-cli (apt-get install redis-server)");
    }
    found
}

/// A port that was free a moment ago (see `Redis::launch` for what if it
/// is not any more).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().map(|a: SocketAddr| a.port()).unwrap()
}

/// True while `/healthz` answers 200: for a replica, Redis connected and
/// the history loaded.
pub fn healthy(server: &Server) -> bool {
    get(server.addr, "/healthz").status == 200
}

/// A replica: the server with `--feed redis` on this Redis, then `args`.
pub fn replica(redis: &Redis, args: &[&str]) -> Server {
    let url = redis.url();
    let mut all = vec![
        "--feed",
        "redis",
        "--redis",
        url.as_str(),
        "--heartbeat",
        "200ms",
    ];
    all.extend_from_slice(args);
    Server::start(&all)
}
