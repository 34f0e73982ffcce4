//! Command line: the four subcommands, their flags and defaults, and the
//! value parsers (durations, URLs, symbol lists). Nothing here does I/O.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// Usage text for `--help` and usage errors.
pub const USAGE: &str = "\
tickstream-bench: load generator and baseline server for tickstream

USAGE:
  tickstream-bench load   --url URL [options]   steady-state delivery benchmark
  tickstream-bench accept --url URL [options]   new stream connections per second
  tickstream-bench floor  [options]             one-thread baseline SSE server
  tickstream-bench feed   [options]             SYMBOL PRICE TS_MS lines on stdout,
                                                for a server's --feed stdin

load options:
  --url URL              stream URL, loopback only (http://127.0.0.1:4444/prices)
  --clients N            connections to hold (default 1000)
  --ramp DUR             spread the connects over this time (default 5s)
  --warmup DUR           wait after the ramp before measuring (default 5s)
  --duration DUR         length of the measured window (default 30s)
  --pid PID              server process to sample in /proc
  --bearer TOKEN         send Authorization: Bearer TOKEN (a server with --auth-keys)
  --max-pending N        connects in flight at most (default 100: std's listen
                         backlog is 128, beyond it SYNs are dropped)
  --connect-timeout DUR  an attempt without a response head fails (default 10s)
  --retries N            further attempts per client after a failure (default 3)
  --sources N            source addresses 127.0.0.2.. to cycle over (default 254)
  --label TEXT           name of the run in the report (default: the URL)
  --conflated            ids skip by design (implied by ?throttle= in the URL):
                         jumps of decimal ids are reported as skips, not gaps
  --json                 print one JSON line instead of the table
  --quiet                no progress lines on stderr

accept options: --url, --clients (default 5000), --max-pending (default 100),
  --timeout DUR (give up waiting, default 30s), --hold DUR (keep the
  connections open after the last first event, default 0s), --pid,
  --connect-timeout, --retries, --sources, --label, --conflated, --json, --quiet

Ids: decimal (sim and stdin feeds) or Redis stream ids MS-SEQ (redis feed),
ordered by their two numbers. Duplicate and backward ids are counted for
both; gaps only for decimal ids of an unfiltered, unconflated stream.

floor options:
  --addr ADDR            listen address (default 127.0.0.1:0)
  --interval DUR         time between batches (default 1s)
  --symbols N|LIST       number of symbols or a list (default BTC,ETH,SOL)

feed options:
  --rate N               lines per second (default 1500)
  --every DUR            burst period: each burst writes the lines owed so far
                         (default 1ms)
  --symbols N|LIST       number of symbols or a list, taking turns (default BTC,ETH,SOL)
  --duration DUR         stop after this long (default 0: until stdout closes)

Durations: 250ms, 1s, 2m. The server is stopped by signal (run.sh does it).
";

/// A usage error: the message names the flag and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see --help)", self.0)
    }
}

/// The parsed command line.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Print the usage text.
    Help,
    /// Steady-state load benchmark.
    Load(LoadOpts),
    /// Connection-rate benchmark.
    Accept(AcceptOpts),
    /// The one-thread baseline server.
    Floor(FloorOpts),
    /// Price lines on stdout for a stdin feed.
    Feed(FeedOpts),
}

/// A `http://host:port/path?query` URL on the loopback network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Server address.
    pub addr: SocketAddrV4,
    /// `Host` header value, as written in the URL.
    pub host: String,
    /// Path and query.
    pub path: String,
}

/// Options shared by `load` and `accept`.
#[derive(Clone, Debug, PartialEq)]
pub struct Common {
    /// Stream URL.
    pub url: Url,
    /// Number of clients.
    pub clients: usize,
    /// Server process to sample.
    pub pid: Option<u32>,
    /// Connects in flight at most.
    pub max_pending: usize,
    /// Attempt timeout.
    pub connect_timeout: Duration,
    /// Further attempts per client.
    pub retries: u32,
    /// Source addresses to cycle over.
    pub sources: Vec<Ipv4Addr>,
    /// Name of the run.
    pub label: String,
    /// `--conflated`: ids skip by design (also implied by `throttle=`).
    pub conflated: bool,
    /// One JSON line instead of a table.
    pub json: bool,
    /// No progress lines.
    pub quiet: bool,
    /// `--bearer TOKEN`: sent as `Authorization: Bearer TOKEN`.
    pub bearer: Option<String>,
}

/// `load` options.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOpts {
    /// Shared options.
    pub common: Common,
    /// Connect ramp.
    pub ramp: Duration,
    /// Settling time after the ramp.
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
}

/// `accept` options.
#[derive(Clone, Debug, PartialEq)]
pub struct AcceptOpts {
    /// Shared options.
    pub common: Common,
    /// Give up waiting for first events after this long.
    pub timeout: Duration,
    /// Keep the connections open this long after the last first event.
    pub hold: Duration,
}

/// `floor` options.
#[derive(Clone, Debug, PartialEq)]
pub struct FloorOpts {
    /// Listen address.
    pub addr: SocketAddr,
    /// Time between batches.
    pub interval: Duration,
    /// Symbols, one event each per batch.
    pub symbols: Vec<String>,
}

/// `feed` options.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedOpts {
    /// Lines per second.
    pub rate: u64,
    /// Burst period.
    pub every: Duration,
    /// Symbols, taking turns.
    pub symbols: Vec<String>,
    /// Stop after this long; zero: never.
    pub duration: Duration,
}

/// Default bound on connects in flight. Rust's `TcpListener` (tickstream's
/// and the floor's) listens with a backlog of 128: with more handshakes in
/// flight than the server has yet accepted, the kernel drops SYNs and the
/// client retransmits after 1 s, which wrecks a ramp and any rate figure.
pub const DEFAULT_MAX_PENDING: usize = 100;

/// Symbols the floor uses when given a count.
const DEFAULT_SYMBOLS: [&str; 5] = ["BTC", "ETH", "SOL", "XRP", "DOGE"];

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(UsageError(
            "missing subcommand: load, accept, floor or feed".into(),
        ));
    };
    let flags = Flags::parse(rest)?;
    if sub == "--help" || sub == "-h" || sub == "help" || flags.has("help") {
        return Ok(Command::Help);
    }
    let cmd = match sub.as_str() {
        "load" => Command::Load(LoadOpts {
            common: common(&flags, 1000, DEFAULT_MAX_PENDING)?,
            ramp: flags.duration("ramp", Duration::from_secs(5))?,
            warmup: flags.duration("warmup", Duration::from_secs(5))?,
            duration: nonzero(
                flags.duration("duration", Duration::from_secs(30))?,
                "duration",
            )?,
        }),
        "accept" => Command::Accept(AcceptOpts {
            common: common(&flags, 5000, DEFAULT_MAX_PENDING)?,
            timeout: nonzero(
                flags.duration("timeout", Duration::from_secs(30))?,
                "timeout",
            )?,
            hold: flags.duration("hold", Duration::ZERO)?,
        }),
        "floor" => Command::Floor(FloorOpts {
            addr: flags
                .get("addr")
                .unwrap_or("127.0.0.1:0")
                .parse()
                .map_err(|_| UsageError("--addr: expected IP:PORT".into()))?,
            interval: nonzero(
                flags.duration("interval", Duration::from_secs(1))?,
                "interval",
            )?,
            symbols: symbols(flags.get("symbols").unwrap_or("3"))?,
        }),
        "feed" => Command::Feed(FeedOpts {
            rate: nonzero(flags.number("rate", 1500)?, "rate")?,
            every: nonzero(flags.duration("every", Duration::from_millis(1))?, "every")?,
            symbols: symbols(flags.get("symbols").unwrap_or("3"))?,
            duration: flags.duration("duration", Duration::ZERO)?,
        }),
        other => return Err(UsageError(format!("unknown subcommand '{other}'"))),
    };
    let (own, common): (&[&str], &[&str]) = match sub.as_str() {
        "load" => (&["ramp", "warmup", "duration"], &COMMON_FLAGS),
        "accept" => (&["timeout", "hold"], &COMMON_FLAGS),
        "feed" => (&["rate", "every", "symbols", "duration"], &[]),
        _ => (&["addr", "interval", "symbols"], &[]),
    };
    let allowed = |name: &str| own.contains(&name) || common.contains(&name);
    if let Some((name, _)) = flags.0.iter().find(|(n, _)| !allowed(n)) {
        return Err(UsageError(format!("unknown flag --{name} for '{sub}'")));
    }
    Ok(cmd)
}

/// The flags of [`Common`], which `load` and `accept` share.
const COMMON_FLAGS: [&str; 12] = [
    "bearer",
    "url",
    "clients",
    "pid",
    "max-pending",
    "connect-timeout",
    "retries",
    "sources",
    "label",
    "conflated",
    "json",
    "quiet",
];

fn common(flags: &Flags, clients: usize, max_pending: usize) -> Result<Common, UsageError> {
    let url = parse_url(
        flags
            .get("url")
            .ok_or_else(|| UsageError("--url is required".into()))?,
    )
    .map_err(|e| UsageError(format!("--url: {e}")))?;
    let sources = flags.number("sources", 254)?;
    if !(1..=254).contains(&sources) {
        return Err(UsageError("--sources: expected 1 to 254".into()));
    }
    Ok(Common {
        label: flags
            .get("label")
            .map_or_else(|| url_text(&url), str::to_owned),
        url,
        clients: nonzero(flags.number("clients", clients as u64)?, "clients")? as usize,
        pid: flags
            .get("pid")
            .map(|p| p.parse())
            .transpose()
            .map_err(|_| UsageError("--pid: expected a process id".into()))?,
        max_pending: nonzero(
            flags.number("max-pending", max_pending as u64)?,
            "max-pending",
        )? as usize,
        connect_timeout: nonzero(
            flags.duration("connect-timeout", Duration::from_secs(10))?,
            "connect-timeout",
        )?,
        retries: flags.number("retries", 3)?.min(100) as u32,
        sources: (0..sources as u8)
            .map(|k| Ipv4Addr::new(127, 0, 0, 2 + k))
            .collect(),
        conflated: flags.has("conflated"),
        json: flags.has("json"),
        quiet: flags.has("quiet"),
        bearer: flags.get("bearer").map(str::to_owned),
    })
}

fn url_text(url: &Url) -> String {
    format!("http://{}{}", url.host, url.path)
}

fn nonzero<T: Default + PartialEq>(v: T, name: &str) -> Result<T, UsageError> {
    if v == T::default() {
        return Err(UsageError(format!("--{name}: must be above zero")));
    }
    Ok(v)
}

/// `--name value`, `--name=value` and bare `--name` switches, in order.
struct Flags(Vec<(String, Option<String>)>);

/// Flags that take no value.
const SWITCHES: [&str; 4] = ["json", "quiet", "help", "conflated"];

impl Flags {
    fn parse(args: &[String]) -> Result<Self, UsageError> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| UsageError(format!("unexpected argument '{arg}'")))?;
            if let Some((n, v)) = name.split_once('=') {
                out.push((n.to_owned(), Some(v.to_owned())));
            } else if SWITCHES.contains(&name) {
                out.push((name.to_owned(), None));
            } else {
                let v = it
                    .next()
                    .ok_or_else(|| UsageError(format!("--{name}: missing value")))?;
                out.push((name.to_owned(), Some(v.clone())));
            }
        }
        Ok(Self(out))
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// The last value given for `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, UsageError> {
        self.get(name).map_or(Ok(default), |v| {
            v.replace('_', "")
                .parse()
                .map_err(|_| UsageError(format!("--{name}: expected a number, got '{v}'")))
        })
    }

    fn duration(&self, name: &str, default: Duration) -> Result<Duration, UsageError> {
        self.get(name).map_or(Ok(default), |v| {
            parse_duration(v).ok_or_else(|| {
                UsageError(format!(
                    "--{name}: expected a duration like 250ms, 1s or 2m, got '{v}'"
                ))
            })
        })
    }
}

/// `250ms`, `1s`, `2m`, `0`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().ok()?;
    Some(match &s[digits..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "" if n == 0 => Duration::ZERO,
        _ => return None,
    })
}

/// `http://IPv4-or-localhost:PORT/path?query`, loopback only: the
/// benchmarks never send traffic off this machine.
pub fn parse_url(s: &str) -> Result<Url, String> {
    let rest = s
        .strip_prefix("http://")
        .ok_or("expected http://HOST:PORT/PATH")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or("expected an explicit port")?;
    let port: u16 = port.parse().map_err(|_| format!("bad port '{port}'"))?;
    let ip = if host == "localhost" {
        Ipv4Addr::LOCALHOST
    } else {
        host.parse::<Ipv4Addr>()
            .map_err(|_| format!("expected an IPv4 address or localhost, got '{host}'"))?
    };
    if !ip.is_loopback() {
        return Err(format!("{ip} is not a loopback address (127.0.0.0/8)"));
    }
    Ok(Url {
        addr: SocketAddrV4::new(ip, port),
        host: authority.to_owned(),
        path: path.to_owned(),
    })
}

/// A count (the first N default symbols, then `S6`, `S7`, ...) or a
/// comma-separated list.
fn symbols(s: &str) -> Result<Vec<String>, UsageError> {
    if let Ok(n) = s.parse::<usize>() {
        if !(1..=1000).contains(&n) {
            return Err(UsageError("--symbols: expected 1 to 1000".into()));
        }
        return Ok((0..n)
            .map(|i| {
                DEFAULT_SYMBOLS
                    .get(i)
                    .map_or_else(|| format!("S{}", i + 1), |s| s.to_string())
            })
            .collect());
    }
    let list: Vec<String> = s
        .split(',')
        .map(|p| p.trim().to_ascii_uppercase())
        .collect();
    if list.iter().any(|p| {
        p.is_empty()
            || p.len() > 16
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }) {
        return Err(UsageError(format!("--symbols: bad list '{s}'")));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn durations() {
        let cases = [
            ("250ms", Some(Duration::from_millis(250))),
            ("1s", Some(Duration::from_secs(1))),
            ("2m", Some(Duration::from_secs(120))),
            ("0", Some(Duration::ZERO)),
            ("5", None),
            ("1h", None),
            ("s", None),
            ("-1s", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), want, "{s}");
        }
    }

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:4444/prices?symbols=BTC").unwrap();
        assert_eq!(u.addr, "127.0.0.1:4444".parse().unwrap());
        assert_eq!(
            (u.host.as_str(), u.path.as_str()),
            ("127.0.0.1:4444", "/prices?symbols=BTC")
        );
        assert_eq!(parse_url("http://localhost:80").unwrap().path, "/");
        assert!(parse_url("http://10.0.0.1:80/").is_err());
        assert!(parse_url("https://127.0.0.1:80/").is_err());
        assert!(parse_url("http://127.0.0.1/").is_err());
    }

    #[test]
    fn load_command() {
        let cmd = parse(&args(
            "load --url http://127.0.0.1:4444/prices --clients 5_000 --ramp=2s --json --sources 2",
        ))
        .unwrap();
        let Command::Load(o) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(o.common.clients, 5000);
        assert_eq!(o.ramp, Duration::from_secs(2));
        assert_eq!(o.duration, Duration::from_secs(30));
        assert!(o.common.json && !o.common.quiet && !o.common.conflated);
        assert_eq!(
            o.common.sources,
            [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)]
        );
        assert_eq!(o.common.label, "http://127.0.0.1:4444/prices");
        let cmd = parse(&args(
            "load --url http://127.0.0.1:4444/prices?throttle=1s --conflated --quiet",
        ))
        .unwrap();
        let Command::Load(o) = cmd else {
            panic!("{cmd:?}")
        };
        assert!(o.common.conflated && o.common.quiet);
    }

    #[test]
    fn floor_command() {
        let Command::Floor(o) = parse(&args("floor --interval 100ms --symbols 7")).unwrap() else {
            panic!()
        };
        assert_eq!(o.interval, Duration::from_millis(100));
        assert_eq!(o.symbols, ["BTC", "ETH", "SOL", "XRP", "DOGE", "S6", "S7"]);
        let Command::Floor(o) = parse(&args("floor --symbols btc,eth")).unwrap() else {
            panic!()
        };
        assert_eq!(o.symbols, ["BTC", "ETH"]);
    }

    #[test]
    fn feed_command() {
        let Command::Feed(o) = parse(&args("feed")).unwrap() else {
            panic!()
        };
        assert_eq!((o.rate, o.every), (1500, Duration::from_millis(1)));
        assert_eq!((o.symbols.len(), o.duration), (3, Duration::ZERO));
        let Command::Feed(o) =
            parse(&args("feed --rate 3_000 --symbols btc --duration 5s")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (o.rate, o.symbols.as_slice()),
            (3000, &["BTC".to_string()][..])
        );
        assert_eq!(o.duration, Duration::from_secs(5));
    }

    #[test]
    fn usage_errors() {
        let cases = [
            ("", "missing subcommand"),
            ("load", "--url is required"),
            (
                "load --url http://127.0.0.1:1/ --clients",
                "--clients: missing value",
            ),
            (
                "load --url http://127.0.0.1:1/ --clients x",
                "--clients: expected a number",
            ),
            (
                "load --url http://127.0.0.1:1/ --clients 0",
                "--clients: must be above zero",
            ),
            (
                "load --url http://127.0.0.1:1/ --hold 1s",
                "unknown flag --hold",
            ),
            ("floor --interval 0", "--interval: must be above zero"),
            ("floor --symbols a,,b", "--symbols: bad list"),
            ("feed --rate 0", "--rate: must be above zero"),
            ("feed --interval 1s", "unknown flag --interval"),
            ("bogus", "unknown subcommand"),
        ];
        for (line, want) in cases {
            let err = parse(&args(line)).unwrap_err();
            assert!(err.0.contains(want), "{line}: {err}");
        }
        assert_eq!(parse(&args("load --help")), Ok(Command::Help));
    }
}
