//! Routing, pure: a parsed request and the configuration in, a [`Route`]
//! out. No socket, no clock, no shared state, so one table test covers
//! every path, method and query rule.

use std::time::{Duration, Instant};

use crate::config::{parse_duration, Config, FeedKind, MAX_SYMBOLS};
use crate::http::{self, Method, Request, Response, Status, ALLOW};
use crate::hub::{Filter, Selection, Wants};
use crate::id::EventId;
use crate::sse::Dialect;
use crate::symbol::Symbol;

/// Shortest and longest `?throttle=`.
pub const THROTTLE_RANGE: [Duration; 2] = [Duration::from_millis(100), Duration::from_secs(3600)];
/// The symbol `/crypto-price` streams without `?symbol=`, as the article's
/// server does.
pub const ARTICLE_SYMBOL: &str = "BTC";

/// The page served at `/`.
const PAGE: &str = include_str!("../page.html");

/// What a request asks for.
#[derive(Debug, PartialEq)]
pub enum Route {
    /// The event stream (or, for HEAD, its head alone).
    Stream(StreamParams),
    /// `/healthz`: depends on the feed's state when answered.
    Health,
    /// `/metrics`: rendered when answered.
    Metrics,
    /// Any other answer, complete.
    Answer(Response),
}

/// How a client wants its stream.
#[derive(Debug, PartialEq)]
pub struct StreamParams {
    /// What it asks the hub for. Where it resumes: the `Last-Event-ID`
    /// header, else `?lastEventId=` (a browser resuming a URL that has the
    /// query sends the newer id in the header).
    pub wants: Wants,
    /// HEAD: the head only, then close.
    pub head_only: bool,
    /// When the token of a stream opened with one expires (`server::access`).
    pub expires: Option<Instant>,
    /// The token's subscriber, for the log line and `--max-streams-per-sub`.
    pub sub: Option<String>,
}

/// Routes a request. Never inlined (see `server::connection`).
#[inline(never)]
pub fn route(request: &Request, config: &Config) -> Route {
    match (request.method, request.path.as_str()) {
        (Method::Options, "/prices" | "/crypto-price" | "/" | "/healthz" | "/metrics" | "*") => {
            Route::Answer(preflight(config))
        }
        (_, path @ ("/prices" | "/crypto-price")) => {
            let dialect = match path {
                "/prices" => Dialect::Prices,
                _ => Dialect::Article,
            };
            stream_params(request, config, dialect).map_or_else(Route::Answer, Route::Stream)
        }
        (_, "/") => Route::Answer(
            Response::new(Status::Ok, "text/html; charset=utf-8", PAGE)
                .with_header("Cache-Control", "no-cache"),
        ),
        (_, "/healthz") => Route::Health,
        (_, "/metrics") => Route::Metrics,
        _ => {
            // The path is percent-decoded: escape it so the answer stays one
            // short line whatever it holds.
            let shown: String = request.path.escape_debug().take(200).collect();
            Route::Answer(Response::error(
                Status::NotFound,
                &format!("no such path: {shown}"),
            ))
        }
    }
}

/// A stream refused at a limit: `Retry-After` is `--retry`, in whole
/// seconds, at least one.
pub fn retry_later(status: Status, message: &str, config: &Config) -> Response {
    let retry_secs = config.retry.as_secs_f64().ceil().max(1.0);
    Response::error(status, message).with_header("Retry-After", format!("{retry_secs}"))
}

/// The 503 for a stream past `--max-clients`.
pub fn too_many_clients(config: &Config) -> Response {
    let message = format!(
        "too many clients (limit {}); retry later",
        config.max_clients
    );
    retry_later(Status::ServiceUnavailable, &message, config)
}

fn preflight(config: &Config) -> Response {
    let mut response =
        Response::new(Status::NoContent, http::TEXT_PLAIN, "").with_header("Allow", ALLOW);
    if config.cors_origin.is_some() {
        response = response
            .with_header("Access-Control-Allow-Methods", ALLOW)
            .with_header(
                "Access-Control-Allow-Headers",
                "Authorization, Last-Event-ID, Cache-Control",
            )
            .with_header("Access-Control-Max-Age", "86400");
    }
    response
}

/// Reads a stream's query: `?symbols=` (or `?symbol=` in the article's
/// dialect), `?lastEventId=` and `?throttle=`.
fn stream_params(
    request: &Request,
    config: &Config,
    dialect: Dialect,
) -> Result<StreamParams, Response> {
    let form = config.feed.id_form();
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut query_id = None;
    let mut throttle = None;
    for (key, value) in http::query_pairs(&request.query) {
        // A key that is not UTF-8 is none of ours; a value is refused only
        // if it is read.
        let key = key.unwrap_or_default();
        let value = value
            .ok_or_else(|| Response::error(Status::BadRequest, &format!("?{key}= is not UTF-8")));
        match (key.as_str(), dialect) {
            ("symbols", Dialect::Prices) => {
                for symbol in value?.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let symbol = check_symbol(symbol, config)?;
                    if !symbols.contains(&symbol) {
                        symbols.push(symbol);
                    }
                }
            }
            ("symbol", Dialect::Article) => symbols = vec![check_symbol(value?.trim(), config)?],
            ("lastEventId", _) => query_id = EventId::parse(&value?, form),
            ("throttle", _) => throttle = Some(parse_throttle(&value?)?),
            _ => {}
        }
    }
    if dialect == Dialect::Article && symbols.is_empty() {
        symbols.push(check_symbol(ARTICLE_SYMBOL, config)?);
    }
    if symbols.len() > MAX_SYMBOLS {
        return Err(Response::error(
            Status::BadRequest,
            &format!("too many symbols: at most {MAX_SYMBOLS} per stream"),
        ));
    }
    let header_id = request
        .last_event_id
        .as_deref()
        .and_then(|id| EventId::parse(id, form));
    Ok(StreamParams {
        wants: Wants {
            selection: Selection {
                filter: Filter::only(symbols),
                floor: None,
                dialect,
            },
            last_event_id: header_id.or(query_id),
            throttle,
            tag: None,
        },
        head_only: request.method == Method::Head,
        expires: None,
        sub: None,
    })
}

/// `?throttle=DUR` (or a token's `throttle`): a duration as for flags,
/// within [`THROTTLE_RANGE`]; `400` otherwise.
pub fn parse_throttle(value: &str) -> Result<Duration, Response> {
    let [shortest, longest] = THROTTLE_RANGE;
    match parse_duration(value) {
        Ok(d) if (shortest..=longest).contains(&d) => Ok(d),
        _ => Err(Response::error(
            Status::BadRequest,
            &format!(
                "invalid throttle {:?}: a duration from {}ms to {}h, such as 1s",
                value.chars().take(32).collect::<String>(),
                shortest.as_millis(),
                longest.as_secs() / 3600
            ),
        )),
    }
}

/// A symbol of a query: valid, and with the sim feed one it produces (the
/// answer then names the valid ones).
fn check_symbol(text: &str, config: &Config) -> Result<Symbol, Response> {
    let sim = config.feed == FeedKind::Sim;
    let bad = |mut message: String| {
        if sim {
            let names: Vec<&str> = config.symbols.iter().map(Symbol::as_str).collect();
            message += &format!("; valid symbols: {}", names.join(", "));
        }
        Response::error(Status::BadRequest, &message)
    };
    let symbol = Symbol::parse(text.as_bytes()).map_err(bad)?;
    if sim && !config.symbols.contains(&symbol) {
        return Err(bad(format!("unknown symbol {symbol}")));
    }
    Ok(symbol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Parsed};

    fn request(head: &str) -> Request {
        match parse_head(head.as_bytes()) {
            Ok(Parsed::Complete(request)) => request,
            other => panic!("{head:?}: {other:?}"),
        }
    }

    /// A filter's symbols, sorted (a set's order is random).
    fn names(filter: &Filter) -> String {
        match filter {
            Filter::All => "All".into(),
            Filter::Only(set) => {
                let mut names: Vec<&str> = set.iter().map(Symbol::as_str).collect();
                names.sort_unstable();
                names.join(",")
            }
        }
    }

    /// A route in one word and the status or detail that tells it apart.
    fn describe(route: &Route) -> String {
        match route {
            Route::Stream(p) => format!(
                "stream {} {}{}{}{}",
                names(&p.wants.selection.filter),
                p.wants
                    .last_event_id
                    .map_or("-".into(), |id| id.to_string()),
                if p.head_only { " head" } else { "" },
                if p.wants.selection.dialect == Dialect::Article {
                    " article"
                } else {
                    ""
                },
                p.wants
                    .throttle
                    .map_or(String::new(), |t| format!(" every {t:?}")),
            ),
            Route::Health => "health".into(),
            Route::Metrics => "metrics".into(),
            Route::Answer(r) => {
                let body = String::from_utf8_lossy(&r.body);
                format!("{} {}", r.status.code(), body.lines().next().unwrap_or(""))
            }
        }
    }

    #[test]
    fn routing_table() {
        let config = Config::default();
        let stdin = Config {
            feed: FeedKind::Stdin,
            ..Config::default()
        };
        let only = |s: &[&str]| s.join(",");
        let cases: Vec<(&Config, &str, String)> = vec![
            (&config, "GET /prices HTTP/1.1\r\nHost: x\r\n\r\n", "stream All -".into()),
            (&config, "HEAD /prices HTTP/1.1\r\nHost: x\r\n\r\n", "stream All - head".into()),
            (&config, "GET /prices?symbols=btc,ETH,btc HTTP/1.0\r\n\r\n", format!("stream {} -", only(&["BTC", "ETH"]))),
            (&config, "GET /prices?symbols=,, HTTP/1.0\r\n\r\n", "stream All -".into()),
            (&config, "GET /prices?lastEventId=42 HTTP/1.0\r\n\r\n", "stream All 42".into()),
            (&config, "GET /prices?lastEventId=42 HTTP/1.0\r\nLast-Event-ID: 50\r\n\r\n", "stream All 50".into()),
            (&config, "GET /prices?lastEventId=x HTTP/1.0\r\nLast-Event-ID: y\r\n\r\n", "stream All -".into()),
            (&config, "GET /prices?symbols=NOPE HTTP/1.0\r\n\r\n", "400 unknown symbol NOPE; valid symbols: BTC, ETH, SOL, XRP, DOGE".into()),
            (&config, "GET /prices?symbols=a/b HTTP/1.0\r\n\r\n", "400 invalid symbol \"a/b\": 1 to 16 of A-Z 0-9 . _ -; valid symbols: BTC, ETH, SOL, XRP, DOGE".into()),
            (&stdin, "GET /prices?symbols=nope HTTP/1.0\r\n\r\n", format!("stream {} -", only(&["NOPE"]))),
            (&stdin, "GET /prices?symbols=a/b HTTP/1.0\r\n\r\n", "400 invalid symbol \"a/b\": 1 to 16 of A-Z 0-9 . _ -".into()),
            (&config, "GET /prices?throttle=1s&symbols=ETH HTTP/1.0\r\n\r\n", "stream ETH - every 1s".into()),
            (&config, "GET /prices?throttle=100ms HTTP/1.0\r\n\r\n", "stream All - every 100ms".into()),
            (&config, "GET /prices?throttle=99ms HTTP/1.0\r\n\r\n", "400 invalid throttle \"99ms\": a duration from 100ms to 1h, such as 1s".into()),
            (&config, "GET /prices?throttle=2h HTTP/1.0\r\n\r\n", "400 invalid throttle \"2h\": a duration from 100ms to 1h, such as 1s".into()),
            (&config, "GET /prices?throttle= HTTP/1.0\r\n\r\n", "400 invalid throttle \"\": a duration from 100ms to 1h, such as 1s".into()),
            (&config, "GET /crypto-price HTTP/1.0\r\n\r\n", "stream BTC - article".into()),
            (&config, "GET /crypto-price?symbol=eth&lastEventId=9&throttle=1s HTTP/1.0\r\n\r\n", "stream ETH 9 article every 1s".into()),
            (&config, "HEAD /crypto-price?symbols=ETH HTTP/1.0\r\n\r\n", "stream BTC - head article".into()),
            (&config, "GET /crypto-price?symbol=NOPE HTTP/1.0\r\n\r\n", "400 unknown symbol NOPE; valid symbols: BTC, ETH, SOL, XRP, DOGE".into()),
            (&stdin, "GET /crypto-price?symbol=nope HTTP/1.0\r\n\r\n", "stream NOPE - article".into()),
            (&config, "OPTIONS /crypto-price HTTP/1.0\r\n\r\n", "204 ".into()),
            (&config, "GET / HTTP/1.0\r\n\r\n", format!("200 {}", PAGE.lines().next().unwrap())),
            (&config, "GET /healthz HTTP/1.0\r\n\r\n", "health".into()),
            (&config, "HEAD /metrics HTTP/1.0\r\n\r\n", "metrics".into()),
            (&config, "OPTIONS /prices HTTP/1.0\r\n\r\n", "204 ".into()),
            (&config, "OPTIONS * HTTP/1.0\r\n\r\n", "204 ".into()),
            (&config, "OPTIONS /nope HTTP/1.0\r\n\r\n", "404 no such path: /nope".into()),
            (&config, "GET /a%0Ab HTTP/1.0\r\n\r\n", "404 no such path: /a\\nb".into()),
            // Only a parameter the route reads is refused for an escape
            // that is not UTF-8.
            (&config, "GET /prices?utm=%FF&%C3=1 HTTP/1.0\r\n\r\n", "stream All -".into()),
            (&config, "GET /crypto-price?symbols=%FF HTTP/1.0\r\n\r\n", "stream BTC - article".into()),
            (&config, "GET /healthz?x=%C3 HTTP/1.0\r\n\r\n", "health".into()),
            (&config, "GET /metrics?x=%C3 HTTP/1.0\r\n\r\n", "metrics".into()),
            (&config, "GET /?x=%C3 HTTP/1.0\r\n\r\n", format!("200 {}", PAGE.lines().next().unwrap())),
            (&config, "GET /nope?x=%C3 HTTP/1.0\r\n\r\n", "404 no such path: /nope".into()),
            (&config, "GET /prices?symbols=%FF HTTP/1.0\r\n\r\n", "400 ?symbols= is not UTF-8".into()),
            (&config, "GET /prices?symbol=%FF HTTP/1.0\r\n\r\n", "stream All -".into()),
            (&config, "GET /crypto-price?symbol=%C3 HTTP/1.0\r\n\r\n", "400 ?symbol= is not UTF-8".into()),
            (&config, "GET /prices?lastEventId=%C3%28 HTTP/1.0\r\n\r\n", "400 ?lastEventId= is not UTF-8".into()),
            (&config, "GET /crypto-price?throttle=%80 HTTP/1.0\r\n\r\n", "400 ?throttle= is not UTF-8".into()),
        ];
        for (config, head, expected) in cases {
            assert_eq!(
                describe(&route(&request(head), config)),
                expected,
                "{head:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_SYMBOLS).map(|n| format!("S{n}")).collect();
        let head = format!("GET /prices?symbols={} HTTP/1.0\r\n\r\n", many.join(","));
        assert_eq!(
            describe(&route(&request(&head), &stdin)),
            "400 too many symbols: at most 256 per stream"
        );
    }

    #[test]
    fn preflight_names_the_methods_only_with_cors() {
        let with = preflight(&Config::default());
        assert!(with
            .headers
            .contains(&("Access-Control-Allow-Methods", ALLOW.into())));
        let without = preflight(&Config {
            cors_origin: None,
            ..Config::default()
        });
        assert_eq!(without.headers, [("Allow", ALLOW.to_string())]);
    }
}
