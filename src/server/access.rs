//! Access control at the server's edge (SPEC "Access control"): finds a
//! request's token, asks [`crate::auth`] what it grants, and narrows a
//! stream to it, or answers `401`, `403` or `429`. Verification happens
//! once per connection, before any stream thread work: a refused request
//! costs what a `404` does. Without `--auth-keys` nothing here runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::{self, Access, Grant};
use crate::config::Config;
use crate::http::{self, Request, Response, Status};
use crate::hub::Filter;
use crate::percent::percent_decode;
use crate::server::routes::{parse_throttle, retry_later, Route, StreamParams};
use crate::server::Shared;
use crate::symbol::Symbol;

/// Checks the token of a request for a stream or `/metrics` against
/// `access`; every other route passes as it is. Never inlined, and called
/// only with `--auth-keys`: its frame (a token's verification) would
/// otherwise deepen the stack of every connection (BENCHMARKS.md).
#[inline(never)]
pub fn check(request: &Request, route: Route, access: &Access, shared: &Shared) -> Route {
    if !matches!(route, Route::Stream(_) | Route::Metrics) {
        return route;
    }
    let query_token = http::query_pairs(&request.query)
        .find(|(key, _)| key.as_deref() == Some("access_token"))
        .and_then(|(_, value)| value);
    let Some(token) = auth::find_token(
        request.authorization.as_deref(),
        &request.cookie,
        query_token.as_deref(),
    ) else {
        return Route::Answer(unauthorized(None));
    };
    let grant = match access.verify(token, crate::since_epoch().as_secs()) {
        Ok(grant) => grant,
        Err(e) => return Route::Answer(unauthorized(Some(e))),
    };
    match route {
        Route::Metrics if grant.metrics => Route::Metrics,
        Route::Metrics => Route::Answer(forbidden()),
        Route::Stream(params) => {
            entitle(params, grant, &shared.config).map_or_else(Route::Answer, Route::Stream)
        }
        other => other,
    }
}

/// Narrows a stream to what the token grants: its symbols (`403` for a
/// symbol asked for outside them, or when the sim feed has none of them)
/// and at least its throttle period.
pub fn entitle(
    mut params: StreamParams,
    grant: Grant,
    config: &Config,
) -> Result<StreamParams, Response> {
    if let Some(throttle) = &grant.throttle {
        let period = parse_throttle(throttle).map_err(|_| unauthorized(Some("claims")))?;
        // At least the token's period (`None`, no throttle, orders below it).
        params.wants.throttle = params.wants.throttle.max(Some(period));
    }
    if let Some(symbols) = grant.symbols {
        let entitled: Vec<Symbol> = symbols
            .iter()
            .filter_map(|s| Symbol::parse(s.as_bytes()).ok())
            .filter(|s| config.feed != crate::config::FeedKind::Sim || config.symbols.contains(s))
            .collect();
        let filter = &mut params.wants.selection.filter;
        match filter {
            Filter::Only(asked) if asked.iter().all(|s| entitled.contains(s)) => {}
            Filter::All if !entitled.is_empty() => *filter = Filter::only(entitled),
            _ => return Err(forbidden()),
        }
    }
    params.wants.tag = Some(grant.key.0);
    let left = Duration::from_secs(grant.exp).saturating_sub(crate::since_epoch());
    // An `exp` past what an `Instant` can hold (aeons away) never comes.
    params.expires = Instant::now().checked_add(left);
    params.sub = grant.sub;
    Ok(params)
}

/// The `401`: no token (`why` none), or a bad one.
fn unauthorized(why: Option<&str>) -> Response {
    let (message, error) = match why {
        None => ("a token is needed (Authorization: Bearer, the tickstream_token cookie or ?access_token=)".to_string(), String::new()),
        Some(why) => (
            format!("invalid token: {why}"),
            format!(", error=\"invalid_token\", error_description=\"{why}\""),
        ),
    };
    let challenge = format!("Bearer realm=\"tickstream\"{error}");
    Response::error(Status::Unauthorized, &message).with_header("WWW-Authenticate", challenge)
}

/// The `403`: the token does not reach what was asked for.
fn forbidden() -> Response {
    Response::error(Status::Forbidden, "the token does not allow this").with_header(
        "WWW-Authenticate",
        "Bearer realm=\"tickstream\", error=\"insufficient_scope\"",
    )
}

/// Open streams per subscriber, for `--max-streams-per-sub`.
#[derive(Default)]
pub struct Subscribers(Mutex<HashMap<String, usize>>);

/// A subscriber's place among its streams, given back when dropped.
pub struct SubPlace<'a>(&'a Subscribers, String);

impl Subscribers {
    /// A place for one more stream of `sub`; `None` when `limit` (not 0)
    /// are open.
    pub fn enter(&self, sub: &str, limit: usize) -> Option<SubPlace<'_>> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(sub.to_string()).or_default();
        if limit != 0 && *count >= limit {
            return None;
        }
        *count += 1;
        Some(SubPlace(self, sub.to_string()))
    }
}

impl Drop for SubPlace<'_> {
    fn drop(&mut self) {
        let mut open = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// The `429` for a subscriber at `--max-streams-per-sub`.
pub fn too_many_streams(config: &Config) -> Response {
    let limit = config.max_streams_per_sub;
    let message = format!("too many streams for this subscriber (limit {limit})");
    retry_later(Status::TooManyRequests, &message, config)
}

/// A request's path and query for the log: the value of `access_token`
/// (however its name is escaped) shown as `REDACTED`.
pub fn logged_path(request: &Request) -> String {
    if request.query.is_empty() {
        return request.path.clone();
    }
    let query: Vec<String> = request
        .query
        .split('&')
        .map(|pair| {
            // The name as `check` reads it: %-escapes decoded.
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            match percent_decode(name).as_deref() == Some("access_token") {
                true => format!("{name}=REDACTED"),
                false => pair.to_string(),
            }
        })
        .collect();
    format!("{}?{}", request.path, query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeyId;
    use crate::http::{parse_head, Parsed};
    use crate::server::routes::route;

    fn request(target: &str) -> Request {
        let head = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        match parse_head(head.as_bytes()) {
            Ok(Parsed::Complete(request)) => request,
            other => panic!("{target}: {other:?}"),
        }
    }

    fn grant(symbols: Option<&[&str]>, throttle: Option<&str>) -> Grant {
        Grant {
            key: KeyId(7),
            exp: 99,
            sub: Some("ann".into()),
            symbols: symbols.map(|s| s.iter().map(|s| s.to_string()).collect()),
            throttle: throttle.map(Into::into),
            metrics: false,
        }
    }

    /// The symbols a stream ends up with, sorted, and its throttle; or the
    /// status it is refused with.
    fn entitled(target: &str, grant: Grant) -> Result<(String, Option<Duration>), u16> {
        let config = Config::default();
        let Route::Stream(params) = route(&request(target), &config) else {
            panic!("{target}: not a stream");
        };
        let params = entitle(params, grant, &config).map_err(|r| r.status.code())?;
        assert_eq!(params.wants.tag, Some(7));
        let names = match &params.wants.selection.filter {
            Filter::All => "All".to_string(),
            Filter::Only(set) => {
                let mut names: Vec<&str> = set.iter().map(Symbol::as_str).collect();
                names.sort();
                names.join(",")
            }
        };
        Ok((names, params.wants.throttle))
    }

    #[test]
    fn an_exp_aeons_away_is_no_expiry_and_no_panic() {
        let config = Config::default();
        let Route::Stream(params) = route(&request("/prices"), &config) else {
            panic!("not a stream");
        };
        let far = Grant {
            exp: u64::MAX,
            ..grant(None, None)
        };
        let params = entitle(params, far, &config).expect("entitled");
        assert_eq!(params.expires, None);
        let Route::Stream(params) = route(&request("/prices"), &config) else {
            panic!("not a stream");
        };
        let soon = Grant {
            exp: crate::since_epoch().as_secs() + 60,
            ..grant(None, None)
        };
        let expires = entitle(params, soon, &config).expect("entitled").expires;
        let left = expires.expect("an expiry").duration_since(Instant::now());
        assert!(left <= Duration::from_secs(60) && left >= Duration::from_secs(55));
    }

    #[test]
    fn a_grant_narrows_a_stream() {
        let ms = Duration::from_millis;
        let both = Some(&["btc", "ETH", "NOPE"][..]);
        type Case<'a> = (&'a str, Grant, Result<(&'a str, Option<Duration>), u16>);
        let cases: &[Case] = &[
            ("/prices", grant(None, None), Ok(("All", None))),
            ("/prices", grant(both, None), Ok(("BTC,ETH", None))),
            ("/prices?symbols=eth", grant(both, None), Ok(("ETH", None))),
            ("/prices?symbols=SOL", grant(both, None), Err(403)),
            ("/prices?symbols=BTC,SOL", grant(both, None), Err(403)),
            ("/crypto-price", grant(both, None), Ok(("BTC", None))),
            ("/crypto-price?symbol=SOL", grant(both, None), Err(403)),
            ("/prices", grant(Some(&["NOPE"]), None), Err(403)),
            ("/prices", grant(Some(&[]), None), Err(403)),
            (
                "/prices",
                grant(None, Some("500ms")),
                Ok(("All", Some(ms(500)))),
            ),
            (
                "/prices?throttle=100ms",
                grant(None, Some("500ms")),
                Ok(("All", Some(ms(500)))),
            ),
            (
                "/prices?throttle=2s",
                grant(None, Some("500ms")),
                Ok(("All", Some(ms(2000)))),
            ),
            ("/prices", grant(None, Some("5 s")), Err(401)),
        ];
        for (target, grant, expected) in cases {
            let expected = expected.map(|(names, throttle)| (names.to_string(), throttle));
            assert_eq!(
                entitled(target, grant.clone()),
                expected,
                "{target} {grant:?}"
            );
        }
    }

    #[test]
    fn a_logged_path_never_shows_a_token() {
        for (target, logged) in [
            ("/prices", "/prices"),
            ("/prices?symbols=BTC", "/prices?symbols=BTC"),
            (
                "/prices?access_token=a.b.c&x=1",
                "/prices?access_token=REDACTED&x=1",
            ),
            ("/prices?x&access_token=", "/prices?x&access_token=REDACTED"),
            (
                "/prices?access%5Ftoken=a.b.c",
                "/prices?access%5Ftoken=REDACTED",
            ),
            (
                "/prices?%61ccess_token=a.b.c",
                "/prices?%61ccess_token=REDACTED",
            ),
        ] {
            assert_eq!(logged_path(&request(target)), logged);
        }
    }

    #[test]
    fn a_subscriber_has_at_most_its_limit_of_places() {
        let subscribers = Subscribers::default();
        let first = subscribers.enter("ann", 2);
        let second = subscribers.enter("ann", 2);
        assert!(first.is_some() && second.is_some());
        assert!(subscribers.enter("ann", 2).is_none());
        assert!(subscribers.enter("bob", 2).is_some());
        drop(first);
        assert!(subscribers.enter("ann", 2).is_some());
        drop(second);
        assert!(
            subscribers.0.lock().unwrap().is_empty(),
            "no count is left behind"
        );
    }
}
