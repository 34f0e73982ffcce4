//! Configuration: every tunable in one [`Config`] with its defaults, and
//! the parsing of command-line flags and `TICKSTREAM_*` environment
//! variables.
//!
//! One table, [`FLAGS`], drives the parser, the variables and `--help`: a
//! flag is one row (name, argument, help, default, setter). A flag beats its
//! variable; `PORT` (as on most hosting platforms) means `0.0.0.0:$PORT`
//! when no address is given. Parsing is pure: it takes the arguments and a
//! lookup function for the environment, so it is tested without touching
//! the process environment.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::json::quote;
use crate::id::IdForm;
use crate::redis::RedisUrl;
use crate::symbol::Symbol;

/// Which source of prices feeds the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// A geometric random walk per symbol, one event per symbol per interval.
    Sim,
    /// One event per `SYMBOL PRICE [TS_MS]` line on standard input.
    Stdin,
    /// The entries of a Redis stream (`--redis`, `--stream`).
    Redis,
}

impl FeedKind {
    /// How this feed's events are named.
    pub fn id_form(self) -> IdForm {
        match self {
            FeedKind::Sim | FeedKind::Stdin => IdForm::Counter,
            FeedKind::Redis => IdForm::Stream,
        }
    }
}

/// Everything the server can be told, with the defaults the README documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Where prices come from.
    pub feed: FeedKind,
    /// Symbols the sim feed produces (no duplicates).
    pub symbols: Vec<Symbol>,
    /// Time between two ticks of the sim feed.
    pub interval: Duration,
    /// Seed for the sim feed; `None` picks one at random.
    pub seed: Option<u64>,
    /// Events retained for resume, over all symbols.
    pub history: usize,
    /// Stream connections open at once before new ones get `503`.
    pub max_clients: usize,
    /// Entries (ticks) a client's queue holds before it is dropped as slow.
    pub client_queue: usize,
    /// Silence after which a stream gets a comment line.
    pub heartbeat: Duration,
    /// Reconnect delay sent to browsers in the `retry:` field.
    pub retry: Duration,
    /// Time a socket may accept no bytes before it is closed.
    pub write_timeout: Duration,
    /// Time from connect within which the request head must be complete.
    pub header_timeout: Duration,
    /// `Access-Control-Allow-Origin` value; `None` sends no CORS headers.
    pub cors_origin: Option<String>,
    /// Time over which a stopping server ends its streams.
    pub drain: Duration,
    /// The Redis server of the redis feed and of `publish`.
    pub redis: RedisUrl,
    /// The key of the Redis stream.
    pub stream: String,
    /// `publish`: the stream is trimmed to about this many entries.
    pub maxlen: usize,
    /// Turns the per-connection log lines off.
    pub quiet: bool,
    /// The key file of `--auth-keys`; `None`: no access control.
    pub auth_keys: Option<PathBuf>,
    /// The `aud` a token must hold; `None`: not checked.
    pub auth_audience: Option<String>,
    /// Open streams of one token `sub` before `429`; 0: no limit.
    pub max_streams_per_sub: usize,
    /// `tickstream token`: how long the token lasts.
    pub ttl: Duration,
    /// `tickstream token`: its claims but `iat` and `exp`, as JSON members
    /// (`"sub":"alice"`) in the order given.
    pub claims: Vec<String>,
}

/// The longest `--ttl` of `tickstream token`.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Where Redis is unless `--redis` says otherwise.
pub const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// The default port, from the seed article.
pub const DEFAULT_PORT: u16 = 4444;
/// The longest duration any flag accepts: keeps deadline arithmetic far from
/// overflow and catches typos such as `--interval 1000h`.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// Upper bound for `--history`, `--max-clients` and `--client-queue`.
pub const MAX_COUNT: usize = 1_000_000;
/// Longest `--stream` key.
pub const MAX_KEY_BYTES: usize = 1024;
/// Most symbols `--symbols` (or a stream's `?symbols=`) may name.
pub const MAX_SYMBOLS: usize = 256;

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_PORT)),
            feed: FeedKind::Sim,
            symbols: parse_symbols("BTC,ETH,SOL,XRP,DOGE").unwrap_or_default(),
            interval: Duration::from_secs(1),
            seed: None,
            history: 1024,
            max_clients: 10_000,
            client_queue: 256,
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            cors_origin: Some("*".to_string()),
            drain: Duration::from_secs(5),
            redis: RedisUrl::parse(DEFAULT_REDIS).unwrap_or_else(|e| unreachable!("{e}")),
            stream: "tickstream:prices".to_string(),
            maxlen: 100_000,
            quiet: false,
            auth_keys: None,
            auth_audience: None,
            max_streams_per_sub: 0,
            ttl: Duration::from_secs(3600),
            claims: Vec::new(),
        }
    }
}

/// One flag: a row of the table behind parsing, variables and `--help`.
pub struct Flag {
    /// The name without `--`; the variable is `TICKSTREAM_` + its upper case.
    pub name: &'static str,
    /// What its value looks like in `--help`; empty for a switch.
    pub arg: &'static str,
    /// One line of `--help`.
    pub help: &'static str,
    /// The default, as a value the setter accepts (empty: none).
    pub default: &'static str,
    /// Checks a value and stores it.
    pub set: fn(&mut Config, &str) -> Result<(), String>,
    /// Which commands take it: [`SERVE`], [`PUBLISH`], [`TOKEN`] or'd.
    pub used_by: u8,
}

/// A flag of the server.
pub const SERVE: u8 = 1;
/// A flag of `tickstream publish`.
pub const PUBLISH: u8 = 2;
/// A flag of `tickstream token`.
pub const TOKEN: u8 = 4;

/// Sets claim `name` of `tickstream token` to the JSON `value`; a flag
/// given twice: the last.
fn claim(c: &mut Config, name: &str, value: Result<String, String>) -> Result<(), String> {
    let (key, value) = (format!("{}:", quote(name)), value?);
    c.claims.retain(|m| !m.starts_with(&key));
    c.claims.push(key + &value);
    Ok(())
}

/// Stores a checked value: the body of most setters.
fn put<T>(slot: &mut T, value: Result<T, String>) -> Result<(), String> {
    *slot = value?;
    Ok(())
}

/// Every flag, in `--help` order.
pub const FLAGS: &[Flag] = &[
    Flag {
        name: "addr",
        arg: "ADDR",
        help: "listen address: IPv4:PORT, [IPv6]:PORT or localhost:PORT (port 0: any free port)",
        default: "0.0.0.0:4444",
        set: |c, v| put(&mut c.addr, parse_addr(v)),
        used_by: SERVE,
    },
    Flag {
        name: "feed",
        arg: "sim|stdin|redis",
        help: "random-walk prices, SYMBOL PRICE [TS_MS] lines on stdin, or a Redis stream",
        default: "sim",
        set: |c, v| {
            c.feed = match v {
                "sim" => FeedKind::Sim,
                "stdin" => FeedKind::Stdin,
                "redis" => FeedKind::Redis,
                _ => return Err(format!("expected sim, stdin or redis, got {v:?}")),
            };
            Ok(())
        },
        used_by: SERVE | PUBLISH,
    },
    Flag {
        name: "symbols",
        arg: "LIST",
        help: "symbols of the sim feed",
        default: "BTC,ETH,SOL,XRP,DOGE",
        set: |c, v| put(&mut c.symbols, parse_symbols(v)),
        used_by: SERVE | PUBLISH,
    },
    Flag {
        name: "interval",
        arg: "DUR",
        help: "time between sim ticks",
        default: "1s",
        set: |c, v| put(&mut c.interval, parse_duration(v)),
        used_by: SERVE | PUBLISH,
    },
    Flag {
        name: "seed",
        arg: "N",
        help: "make the sim prices reproducible (default: random)",
        default: "",
        set: |c, v| {
            c.seed = Some(
                v.parse()
                    .map_err(|_| format!("expected a whole number, got {v:?}"))?,
            );
            Ok(())
        },
        used_by: SERVE | PUBLISH,
    },
    Flag {
        name: "history",
        arg: "N",
        help: "events kept for Last-Event-ID resume",
        default: "1024",
        set: |c, v| put(&mut c.history, parse_count(v, 0)),
        used_by: SERVE,
    },
    Flag {
        name: "max-clients",
        arg: "N",
        help: "open streams before 503",
        default: "10000",
        set: |c, v| put(&mut c.max_clients, parse_count(v, 1)),
        used_by: SERVE,
    },
    Flag {
        name: "client-queue",
        arg: "N",
        help: "ticks queued per client before it is dropped as slow",
        default: "256",
        set: |c, v| put(&mut c.client_queue, parse_count(v, 1)),
        used_by: SERVE,
    },
    Flag {
        name: "heartbeat",
        arg: "DUR",
        help: "comment line after this much silence",
        default: "15s",
        set: |c, v| put(&mut c.heartbeat, parse_duration(v)),
        used_by: SERVE,
    },
    Flag {
        name: "retry",
        arg: "DUR",
        help: "reconnect delay hint for browsers",
        default: "3s",
        set: |c, v| put(&mut c.retry, parse_duration(v)),
        used_by: SERVE,
    },
    Flag {
        name: "write-timeout",
        arg: "DUR",
        help: "close a socket that accepts nothing this long",
        default: "10s",
        set: |c, v| put(&mut c.write_timeout, parse_duration(v)),
        used_by: SERVE,
    },
    Flag {
        name: "header-timeout",
        arg: "DUR",
        help: "time allowed to send the request head",
        default: "10s",
        set: |c, v| put(&mut c.header_timeout, parse_duration(v)),
        used_by: SERVE,
    },
    Flag {
        name: "cors-origin",
        arg: "ORIGIN|none",
        help: "Access-Control-Allow-Origin",
        default: "*",
        set: |c, v| put(&mut c.cors_origin, parse_origin(v)),
        used_by: SERVE,
    },
    Flag {
        name: "redis",
        arg: "URL",
        help: "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]",
        default: DEFAULT_REDIS,
        set: |c, v| put(&mut c.redis, RedisUrl::parse(v)),
        used_by: SERVE | PUBLISH,
    },
    Flag {
        name: "stream",
        arg: "KEY",
        help: "key of the Redis stream",
        default: "tickstream:prices",
        set: |c, v| {
            if v.is_empty() || v.len() > MAX_KEY_BYTES {
                return Err(format!("expected a key of 1 to {MAX_KEY_BYTES} bytes"));
            }
            c.stream = v.to_string();
            Ok(())
        },
        used_by: SERVE | PUBLISH,
    },
    Flag {
        name: "maxlen",
        arg: "N",
        help: "trim the stream to about this many entries",
        default: "100000",
        set: |c, v| put(&mut c.maxlen, parse_count(v, 1)),
        used_by: PUBLISH,
    },
    Flag {
        name: "drain",
        arg: "DUR",
        help: "on SIGTERM, end the open streams over this long (0: at once)",
        default: "5s",
        set: |c, v| {
            // Zero is allowed here, in any unit: end every stream at once.
            let zero = v.trim_start_matches('0');
            c.drain = match (v.starts_with('0'), zero) {
                (true, "" | "ms" | "s" | "m" | "h") => Duration::ZERO,
                _ => parse_duration(v)?,
            };
            Ok(())
        },
        used_by: SERVE,
    },
    Flag {
        name: "quiet",
        arg: "",
        help: "no log line per stream connection",
        default: "",
        set: |c, v| put(&mut c.quiet, parse_bool(v)),
        used_by: SERVE | PUBLISH,
    },
    Flag {
        name: "auth-keys",
        arg: "FILE",
        help: "HS256 secrets, one a line: streams and /metrics need a token",
        default: "",
        set: |c, v| {
            put(
                &mut c.auth_keys,
                parse_text(v, 4096).map(|v| Some(v.into())),
            )
        },
        used_by: SERVE | TOKEN,
    },
    Flag {
        name: "auth-audience",
        arg: "AUD",
        help: "the aud a token must hold",
        default: "",
        set: |c, v| put(&mut c.auth_audience, parse_text(v, 256).map(Some)),
        used_by: SERVE,
    },
    Flag {
        name: "max-streams-per-sub",
        arg: "N",
        help: "429 past N open streams of one token sub (0: no limit)",
        default: "0",
        set: |c, v| put(&mut c.max_streams_per_sub, parse_count(v, 0)),
        used_by: SERVE,
    },
    Flag {
        name: "sub",
        arg: "S",
        help: "the subscriber",
        default: "",
        set: |c, v| claim(c, "sub", parse_text(v, 128).map(|v| quote(&v))),
        used_by: TOKEN,
    },
    Flag {
        name: "ttl",
        arg: "DUR",
        help: "how long the token lasts (at most 8760h)",
        default: "1h",
        set: |c, v| put(&mut c.ttl, parse_duration_upto(v, MAX_TTL)),
        used_by: TOKEN,
    },
    Flag {
        name: "symbols",
        arg: "LIST",
        help: "the symbols it may read (default: all)",
        default: "",
        set: |c, v| {
            let symbols = parse_symbols(v)?;
            let quoted: Vec<String> = symbols.iter().map(|s| quote(s.as_str())).collect();
            claim(c, "symbols", Ok(format!("[{}]", quoted.join(","))))
        },
        used_by: TOKEN,
    },
    Flag {
        name: "throttle",
        arg: "DUR",
        help: "its streams are conflated to at least this period",
        default: "",
        set: |c, v| {
            let period = parse_duration(v)?;
            if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&period) {
                return Err(format!("expected a duration from 100ms to 1h, got {v:?}"));
            }
            claim(c, "throttle", Ok(quote(v)))
        },
        used_by: TOKEN,
    },
    Flag {
        name: "scope",
        arg: "S",
        help: "space-separated; metrics allows /metrics",
        default: "",
        set: |c, v| claim(c, "scope", parse_text(v, 256).map(|v| quote(&v))),
        used_by: TOKEN,
    },
    Flag {
        name: "audience",
        arg: "AUD",
        help: "its aud",
        default: "",
        set: |c, v| claim(c, "aud", parse_text(v, 256).map(|v| quote(&v))),
        used_by: TOKEN,
    },
];

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// `tickstream publish`: append the feed's events to a Redis stream.
    Publish(Box<Config>),
    /// `tickstream token`: print a token signed with the key file's first key.
    Token(Box<Config>),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// The text `--help` prints, made from [`FLAGS`].
pub fn help() -> String {
    let mut text = String::from(
        "tickstream: a live price feed over Server-Sent Events

USAGE: tickstream [FLAGS]            serve the feed over HTTP
       tickstream publish [FLAGS]    append the sim or stdin feed to a Redis stream
       tickstream token [FLAGS]      print a token signed with --auth-keys' first key

",
    );
    for flag in FLAGS {
        let left = format!("--{} {}", flag.name, flag.arg);
        let default = match flag.default {
            "" => String::new(),
            d => format!(" (default {d})"),
        };
        let only = match flag.used_by {
            SERVE => " [serve]",
            PUBLISH => " [publish]",
            TOKEN => " [token]",
            b if b == SERVE | TOKEN => " [serve, token]",
            _ => "",
        };
        let line = format!("  {:<26}{}{default}{only}\n", left.trim_end(), flag.help);
        text.push_str(&line);
    }
    text.push_str(
        "  --help, --version

Durations: 250ms, 1s, 2m, 1h (at most 24h; --ttl up to 8760h). Every flag can
also be set with an environment variable TICKSTREAM_<FLAG> (upper case, -
becomes _), e.g. TICKSTREAM_INTERVAL=250ms; a flag beats its variable; token
reads only TICKSTREAM_AUTH_KEYS. PORT=N alone means --addr 0.0.0.0:N. SIGHUP
re-reads --auth-keys.

Endpoints: /prices (the stream; ?symbols=BTC,ETH, ?lastEventId=ID, ?throttle=1s),
/crypto-price (?symbol=BTC: the seed article's dialect), / (live page),
/healthz, /metrics. With --auth-keys, streams and /metrics need a token:
Authorization: Bearer, the tickstream_token cookie, or ?access_token=.
",
    );
    text
}

/// Parses the arguments (without the program name) and the environment,
/// looked up through `env`. The error is a bad flag or value, as one line
/// naming the flag (or variable) at fault; the process then exits 2.
pub fn parse<I, F>(args: I, env: F) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
    F: Fn(&str) -> Option<String>,
{
    let mut args = args.into_iter().peekable();
    let command = match args.next_if(|a| a == "publish" || a == "token").as_deref() {
        Some("publish") => PUBLISH,
        Some(_) => TOKEN,
        None => SERVE,
    };
    let takes = |flag: &Flag| flag.used_by & command != 0;
    // (flag, where it came from, value) from the command line.
    let mut settings: Vec<(&Flag, String, String)> = Vec::new();
    while let Some(arg) = args.next() {
        let Some(name) = arg.strip_prefix("--") else {
            return Err(usage(&arg, "unexpected argument"));
        };
        let (name, inline) = name
            .split_once('=')
            .map_or((name, None), |(n, v)| (n, Some(v.to_string())));
        match name {
            "help" => return Ok(Command::Help),
            "version" => return Ok(Command::Version),
            _ => {}
        }
        let source = format!("--{name}");
        let Some(flag) = FLAGS.iter().find(|f| f.name == name && takes(f)) else {
            let problem = match FLAGS.iter().any(|f| f.name == name) {
                true => format!(
                    "not a flag of {}",
                    ["the server", "publish", "token"][command.trailing_zeros() as usize]
                ),
                false => "unknown flag".to_string(),
            };
            return Err(usage(&source, &problem));
        };
        let value = match (inline, flag.arg.is_empty()) {
            (Some(v), _) => v,
            (None, true) => "true".to_string(),
            (None, false) => args.next().ok_or_else(|| usage(&arg, "needs a value"))?,
        };
        settings.push((flag, source, value));
    }

    // Then the variables of the flags not given (a flag beats its variable,
    // even a bad one); a variable of the other command is not ours, and
    // `token` reads only the key file's (a server's TICKSTREAM_SYMBOLS must
    // not narrow a token).
    let from_env = |f: &&Flag| takes(f) && (command != TOKEN || f.name == "auth-keys");
    for flag in FLAGS.iter().filter(from_env) {
        if settings.iter().all(|(given, _, _)| given.name != flag.name) {
            let variable = format!("TICKSTREAM_{}", flag.name.to_uppercase().replace('-', "_"));
            if let Some(value) = env(&variable) {
                settings.push((flag, variable, value));
            }
        }
    }
    let mut config = Config::default();
    for (flag, source, value) in &settings {
        (flag.set)(&mut config, value).map_err(|problem| usage(source, &problem))?;
        if command == PUBLISH && config.feed == FeedKind::Redis {
            return Err(usage(source, "publish takes --feed sim or stdin"));
        }
    }
    if command == PUBLISH {
        return Ok(Command::Publish(Box::new(config)));
    }
    if command == TOKEN {
        if config.auth_keys.is_none() {
            return Err(usage("token", "needs --auth-keys FILE"));
        }
        return Ok(Command::Token(Box::new(config)));
    }
    if !settings.iter().any(|(flag, _, _)| flag.name == "addr") {
        if let Some(port) = env("PORT") {
            let port: u16 = port
                .parse()
                .map_err(|_| usage("PORT", &format!("expected a port number, got {port:?}")))?;
            config.addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        }
    }
    Ok(Command::Run(Box::new(config)))
}

fn usage(flag: &str, problem: &str) -> String {
    format!("{flag}: {problem} (see --help)")
}

/// Parses `IPv4:PORT`, `[IPv6]:PORT` or `localhost:PORT`.
pub fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    if let Some(port) = value.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid port in {value:?}"))?;
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    value
        .parse()
        .map_err(|_| format!("expected IPv4:PORT, [IPv6]:PORT or localhost:PORT, got {value:?}"))
}

/// Parses a duration such as `250ms`, `1s`, `2m` or `1h`: greater than zero,
/// at most [`MAX_DURATION`].
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    parse_duration_upto(value, MAX_DURATION)
}

/// A non-empty value of at most `max` bytes, without control characters.
fn parse_text(value: &str, max: usize) -> Result<String, String> {
    let text = !value.is_empty() && value.len() <= max && !value.chars().any(char::is_control);
    text.then(|| value.to_string())
        .ok_or_else(|| format!("expected 1 to {max} bytes of text"))
}

/// A duration of at most `longest`.
fn parse_duration_upto(value: &str, longest: Duration) -> Result<Duration, String> {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = value.split_at(digits);
    let invalid = || format!("expected a duration such as 250ms, 1s or 2m, got {value:?}");
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid()),
    };
    let duration = number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .filter(|d| *d <= longest)
        .ok_or_else(|| {
            let hours = longest.as_secs() / 3600;
            format!("{value:?} is longer than the limit of {hours}h")
        })?;
    if duration.is_zero() {
        return Err(format!("must be greater than zero, got {value:?}"));
    }
    Ok(duration)
}

fn parse_count(value: &str, min: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (min..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {MAX_COUNT}, got {value:?}"
        )),
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}

fn parse_origin(value: &str) -> Result<Option<String>, String> {
    if value == "none" {
        return Ok(None);
    }
    // The value goes into a response header: visible ASCII only.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "expected an origin such as * or https://example.com, or none, got {value:?}"
        ));
    }
    Ok(Some(value.to_string()))
}

fn parse_symbols(value: &str) -> Result<Vec<Symbol>, String> {
    let mut symbols: Vec<Symbol> = Vec::new();
    for item in value.split(',').map(str::trim) {
        let symbol = Symbol::parse(item.as_bytes())?;
        if !symbols.contains(&symbol) {
            symbols.push(symbol);
        }
    }
    if symbols.len() > MAX_SYMBOLS {
        return Err(format!("at most {MAX_SYMBOLS} symbols"));
    }
    Ok(symbols)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(symbols: &[Symbol]) -> Vec<&str> {
        symbols.iter().map(Symbol::as_str).collect()
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match parse(args.iter().map(|s| s.to_string()), lookup)? {
            Command::Run(config) => Ok(*config),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.addr.to_string(), "0.0.0.0:4444");
        assert_eq!(names(&c.symbols), ["BTC", "ETH", "SOL", "XRP", "DOGE"]);
        assert_eq!(c.cors_origin.as_deref(), Some("*"));
    }

    #[test]
    fn flags_and_variables() {
        let c = run(
            &["--interval", "250ms", "--symbols=btc,Eth,BTC", "--quiet"],
            &[("TICKSTREAM_INTERVAL", "2m"), ("TICKSTREAM_HISTORY", "7")],
        )
        .unwrap();
        assert_eq!(
            c.interval,
            Duration::from_millis(250),
            "flag beats variable"
        );
        assert_eq!(c.history, 7);
        assert_eq!(names(&c.symbols), ["BTC", "ETH"]);
        assert!(c.quiet);
        let c = run(
            &[],
            &[
                ("TICKSTREAM_CORS_ORIGIN", "none"),
                ("TICKSTREAM_MAX_CLIENTS", "3"),
            ],
        )
        .unwrap();
        assert_eq!(c.cors_origin, None);
        assert_eq!(c.max_clients, 3);
    }

    #[test]
    fn port_variable_only_without_an_address() {
        assert_eq!(
            run(&[], &[("PORT", "8080")]).unwrap().addr.to_string(),
            "0.0.0.0:8080"
        );
        let c = run(&["--addr", "127.0.0.1:0"], &[("PORT", "8080")]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:0");
        let c = run(&[], &[("PORT", "8080"), ("TICKSTREAM_ADDR", "[::1]:9")]).unwrap();
        assert_eq!(c.addr.to_string(), "[::1]:9");
        assert_eq!(
            run(&["--addr", "localhost:5"], &[])
                .unwrap()
                .addr
                .to_string(),
            "127.0.0.1:5"
        );
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Option<u64>)] = &[
            ("250ms", Some(250)),
            ("1s", Some(1000)),
            ("2m", Some(120_000)),
            ("1h", Some(3_600_000)),
            ("24h", Some(86_400_000)),
            ("25h", None),
            ("0s", None),
            ("1", None),
            ("s", None),
            ("1.5s", None),
            ("-1s", None),
            ("99999999999999999999s", None),
            ("18446744073709551615h", None),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text).ok(),
                millis.map(Duration::from_millis),
                "{text}"
            );
        }
    }

    #[test]
    fn usage_errors_name_the_flag() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (&["--nope"], &[], "--nope: unknown flag (see --help)"),
            (&["--interval"], &[], "--interval: needs a value (see --help)"),
            (&["stray"], &[], "stray: unexpected argument (see --help)"),
            (&["--feed", "kafka"], &[], "--feed: expected sim, stdin or redis, got \"kafka\" (see --help)"),
            (&["--history", "-1"], &[], "--history: expected a whole number from 0 to 1000000, got \"-1\" (see --help)"),
            (&["--max-clients", "0"], &[], "--max-clients: expected a whole number from 1 to 1000000, got \"0\" (see --help)"),
            (&[], &[("TICKSTREAM_QUIET", "maybe")], "TICKSTREAM_QUIET: expected true or false, got \"maybe\" (see --help)"),
            (&[], &[("PORT", "http")], "PORT: expected a port number, got \"http\" (see --help)"),
            (&["--symbols", "BTC,,ETH"], &[], "--symbols: invalid symbol \"\": 1 to 16 of A-Z 0-9 . _ - (see --help)"),
            (&["publish", "--addr", "x"], &[], "--addr: not a flag of publish (see --help)"),
            (&["--sub", "x"], &[], "--sub: not a flag of the server (see --help)"),
            (&["token", "--sub", "x"], &[], "token: needs --auth-keys FILE (see --help)"),
            (&["token", "--auth-keys", "k", "--ttl", "8761h"], &[], "--ttl: \"8761h\" is longer than the limit of 8760h (see --help)"),
            (&["token", "--auth-keys", "k", "--throttle", "50ms"], &[], "--throttle: expected a duration from 100ms to 1h, got \"50ms\" (see --help)"),
            (&["--max-streams-per-sub", "x"], &[], "--max-streams-per-sub: expected a whole number from 0 to 1000000, got \"x\" (see --help)"),
            (&["--maxlen", "5"], &[], "--maxlen: not a flag of the server (see --help)"),
            (&["publish", "--feed", "redis"], &[], "--feed: publish takes --feed sim or stdin (see --help)"),
            (&["--redis", "http://x"], &[], "--redis: expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (see --help)"),
            (&["--stream", ""], &[], "--stream: expected a key of 1 to 1024 bytes (see --help)"),
            (&["--addr", "4444"], &[], "--addr: expected IPv4:PORT, [IPv6]:PORT or localhost:PORT, got \"4444\" (see --help)"),
        ];
        for (args, env, message) in cases {
            assert_eq!(
                run(args, env).unwrap_err().to_string(),
                *message,
                "{args:?}"
            );
        }
    }

    #[test]
    fn help_and_version_win() {
        let help = parse(["--help".to_string()], |_| None).unwrap();
        assert_eq!(help, Command::Help);
        let version = parse(["--version".to_string()], |_| None).unwrap();
        assert_eq!(version, Command::Version);
    }

    #[test]
    fn the_table_defaults_are_the_config_defaults() {
        let mut config = Config {
            symbols: Vec::new(),
            ..Config::default()
        };
        for flag in FLAGS.iter().filter(|f| !f.default.is_empty()) {
            (flag.set)(&mut config, flag.default).unwrap();
        }
        assert_eq!(config, Config::default());
        let help = help();
        for flag in FLAGS {
            assert!(help.contains(
                &format!("--{} {}", flag.name, flag.arg)
                    .trim_end()
                    .to_string()
            ));
        }
    }

    #[test]
    fn token_claims_are_json_members_in_order_and_a_repeated_flag_replaces() {
        let args = [
            "token",
            "--auth-keys",
            "k",
            "--sub",
            "a",
            "--symbols",
            "btc,ETH",
            "--ttl",
            "2h",
            "--sub",
            "b\"c",
            "--scope",
            "metrics",
            "--audience",
            "x",
            "--throttle",
            "5s",
        ];
        let args = args.iter().map(|s| s.to_string());
        let Ok(Command::Token(config)) = parse(args, |_| None) else {
            panic!("expected Token");
        };
        assert_eq!(config.ttl, Duration::from_secs(7200));
        assert_eq!(
            config.claims,
            [
                r#""symbols":["BTC","ETH"]"#,
                r#""sub":"b\"c""#,
                r#""scope":"metrics""#,
                r#""aud":"x""#,
                r#""throttle":"5s""#
            ]
        );
    }

    #[test]
    fn publish_takes_its_flags_and_ignores_the_servers_variables() {
        let env =
            |k: &str| (k == "TICKSTREAM_ADDR" || k == "TICKSTREAM_MAXLEN").then(|| "9".to_string());
        let args = ["publish", "--feed", "stdin", "--stream", "k"].map(String::from);
        let Ok(Command::Publish(c)) = parse(args, env) else {
            panic!("publish")
        };
        assert_eq!(
            (c.feed, c.stream.as_str(), c.maxlen),
            (FeedKind::Stdin, "k", 9)
        );
        assert_eq!(c.addr, Config::default().addr);
        assert_eq!(c.redis.to_string(), "redis://127.0.0.1:6379");
    }

    #[test]
    fn a_flag_beats_even_a_bad_variable_and_drain_takes_zero() {
        let c = run(&["--interval", "1s"], &[("TICKSTREAM_INTERVAL", "bogus")]).unwrap();
        assert_eq!(c.interval, Duration::from_secs(1));
        for zero in ["0", "0s", "00ms"] {
            assert_eq!(run(&["--drain", zero], &[]).unwrap().drain, Duration::ZERO);
        }
        assert!(run(&["--drain", "0x"], &[]).is_err());
    }
}
