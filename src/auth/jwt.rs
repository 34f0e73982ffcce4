//! HS256 JSON Web Tokens (RFC 7519 in the compact JWS form of RFC 7515,
//! under the rules of RFC 8725), as SPEC "Access control" describes them:
//! the key file ([`Keys`]), verifying a token into what it grants
//! ([`verify`], [`Grant`], [`TokenError`]) and minting one ([`mint`]).
//!
//! The algorithm comes from the server, never from the token: only HS256,
//! a header with `crit` is refused, and the signature is checked, in
//! constant time, before any claim is read. Sans-IO: the caller reads the
//! file and passes the time.

use std::fmt;
use std::time::Duration;

use super::json::{self, Json};
use super::{base64url, sha256};
use crate::symbol::Symbol;

/// A longer token is malformed (SPEC: "a token over 4 KiB is malformed").
pub const MAX_TOKEN_BYTES: usize = 4096;
/// The shortest secret a key file may hold (RFC 7518 §3.2: at least the
/// hash's size).
pub const MIN_SECRET_BYTES: usize = 32;
/// The most secrets a key file may hold.
pub const MAX_KEYS: usize = 16;
/// The longest `sub` claim, in bytes.
pub const MAX_SUB_BYTES: usize = 128;
/// The most entries of a `symbols` claim.
pub const MAX_SYMBOLS: usize = 256;

/// The base64url of `{"alg":"HS256","typ":"JWT"}`, the header [`mint`]
/// writes.
const MINTED_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Names one secret of a key file without showing it: the first 8 bytes of
/// its SHA-256. The same secret has the same id in every reading of the
/// file, so a stream can ask after a reload whether its key is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub u64);

impl KeyId {
    fn of(secret: &[u8]) -> KeyId {
        let [a, b, c, d, e, f, g, h, ..] = sha256::sha256(secret);
        KeyId(u64::from_be_bytes([a, b, c, d, e, f, g, h]))
    }
}

/// The secrets of a key file: one to [`MAX_KEYS`], each at least
/// [`MIN_SECRET_BYTES`]. Its `Debug` shows the count, never a secret.
#[derive(Clone)]
pub struct Keys {
    /// In the file's order; never empty.
    secrets: Vec<(KeyId, Vec<u8>)>,
}

impl Keys {
    /// Reads a key file's bytes (SPEC "Keys"): one secret a line; blank
    /// lines and lines starting with `#` are skipped; a trailing `\r`, then
    /// trailing spaces, are dropped; every other byte is the secret's. The
    /// error names the line, never the secret: `line 3: a secret must be at
    /// least 32 bytes`, `line 20: more than 16 secrets`, `no secret`.
    pub fn parse(text: &[u8]) -> Result<Keys, String> {
        let mut secrets = Vec::new();
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let end = line.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            let secret = &line[..end];
            if secret.is_empty() || secret.starts_with(b"#") {
                continue;
            }
            let line = index + 1;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "line {line}: a secret must be at least {MIN_SECRET_BYTES} bytes"
                ));
            }
            if secrets.len() == MAX_KEYS {
                return Err(format!("line {line}: more than {MAX_KEYS} secrets"));
            }
            secrets.push((KeyId::of(secret), secret.to_vec()));
        }
        if secrets.is_empty() {
            return Err("no secret".to_string());
        }
        Ok(Keys { secrets })
    }

    /// Whether the key named `id` is among these.
    pub fn contains(&self, id: KeyId) -> bool {
        self.secrets.iter().any(|(k, _)| *k == id)
    }

    /// How many secrets there are (1 to [`MAX_KEYS`]), for the reload's log
    /// line.
    pub fn count(&self) -> usize {
        self.secrets.len()
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} secrets)", self.count())
    }
}

/// What a verified token grants: its claims, checked for type and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The key that signed it.
    pub key: KeyId,
    /// `exp`, in whole seconds since the epoch, rounded up: the token is
    /// refused from this second on.
    pub exp: u64,
    /// `sub`: at most [`MAX_SUB_BYTES`].
    pub sub: Option<String>,
    /// `symbols`: at most [`MAX_SYMBOLS`], each 1 to 16 of
    /// `A-Z a-z 0-9 . _ -` as given (not folded to upper case); `None`
    /// means every symbol.
    pub symbols: Option<Vec<String>>,
    /// `throttle`, the duration's text as given (the caller parses it).
    pub throttle: Option<String>,
    /// Whether the space-separated `scope` holds `metrics`.
    pub metrics: bool,
}

/// Why a token was refused: one `error_description` of SPEC's table
/// (`malformed`, `signature`, `expired`, `not yet valid`, `audience`,
/// `claims`).
pub type TokenError = &'static str;

/// Verifies a compact JWS `token` at `now_secs` (seconds since the epoch)
/// against `keys`, and with `audience` set, its `aud`. The checks, in
/// order: size; three base64url parts; the header (a JSON object, `alg`
/// `HS256`, a `typ` if any `JWT`, no `crit`); the signature, against each
/// key in turn; only then the claims: a JSON object, the listed claims'
/// types, `exp` and `nbf` (compared as `f64`: a NumericDate may have a
/// fraction), `aud`.
pub fn verify(
    token: &[u8],
    keys: &Keys,
    now_secs: u64,
    audience: Option<&str>,
) -> Result<Grant, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("malformed");
    }
    let parts: Vec<&[u8]> = token.split(|&b| b == b'.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("malformed");
    };
    // What the signature covers: the first two parts as sent.
    let signed = &token[..header.len() + 1 + payload.len()];
    let header = base64url::decode(header).and_then(|h| json::parse(&h));
    let payload = base64url::decode(payload).ok_or("malformed")?;
    let signature = base64url::decode(signature).ok_or("malformed")?;
    match header {
        Some(Json::Object(members)) if header_is_hs256(&members) => {}
        _ => return Err("malformed"),
    }
    let key = keys
        .secrets
        .iter()
        .find(|(_, secret)| macs_equal(&sha256::hmac_sha256(secret, signed), &signature))
        .map(|(id, _)| *id)
        .ok_or("signature")?;

    let claims = json::parse(&payload)
        .filter(|claims| matches!(claims, Json::Object(_)))
        .ok_or("malformed")?;
    let number = |name| match claims.get(name) {
        None => Ok(None),
        Some(Json::Number(n)) => Ok(Some(*n)),
        Some(_) => Err("claims"),
    };
    let string = |name| match claims.get(name) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("claims"),
    };
    let exp = number("exp")?.ok_or("claims")?;
    let nbf = number("nbf")?;
    let aud = match claims.get("aud") {
        None => vec![],
        Some(Json::String(s)) => vec![s.as_str()],
        Some(Json::Array(items)) => strings(items).ok_or("claims")?,
        Some(_) => return Err("claims"),
    };
    let sub = string("sub")?;
    if sub.as_ref().is_some_and(|s| s.len() > MAX_SUB_BYTES) {
        return Err("claims");
    }
    let symbols = match claims.get("symbols") {
        None => None,
        Some(Json::Array(items)) if items.len() <= MAX_SYMBOLS => {
            let symbols = strings(items).ok_or("claims")?;
            if !symbols.iter().all(|s| Symbol::parse(s.as_bytes()).is_ok()) {
                return Err("claims");
            }
            Some(symbols.into_iter().map(String::from).collect())
        }
        Some(_) => return Err("claims"),
    };
    let throttle = string("throttle")?;
    let scope = string("scope")?;

    let now = now_secs as f64;
    if now >= exp {
        return Err("expired");
    }
    if nbf.is_some_and(|nbf| now < nbf) {
        return Err("not yet valid");
    }
    if audience.is_some_and(|wanted| !aud.contains(&wanted)) {
        return Err("audience");
    }
    Ok(Grant {
        key,
        // Saturating: an `exp` past u64 seconds never comes.
        exp: exp.ceil() as u64,
        sub,
        symbols,
        throttle,
        metrics: scope.is_some_and(|s| s.split(' ').any(|word| word == "metrics")),
    })
}

/// A token issued at `iat` (seconds since the epoch) that expires `ttl`
/// later, with `claims` after `iat` and `exp` (JSON members such as
/// `"sub":"alice"`, each name once), under the header
/// `{"alg":"HS256","typ":"JWT"}`, signed with the first key. It checks no
/// bound: the caller (`tickstream token`) does.
pub fn mint(keys: &Keys, iat: u64, ttl: Duration, claims: &[String]) -> String {
    let exp = iat + ttl.as_secs();
    let claims: String = claims.iter().map(|member| format!(",{member}")).collect();
    let payload = format!("{{\"iat\":{iat},\"exp\":{exp}{claims}}}");
    let signed = format!("{MINTED_HEADER}.{}", base64url::encode(payload.as_bytes()));
    let mac = sha256::hmac_sha256(&keys.secrets[0].1, signed.as_bytes());
    format!("{signed}.{}", base64url::encode(&mac))
}

/// Whether a header's members say HS256: `alg` is `HS256`, a `typ` is
/// `JWT` (any case, RFC 7519 §5.1), and there is no `crit` (RFC 7515
/// §4.1.11: we understand no extension). Other members (`kid`) are ignored.
fn header_is_hs256(members: &[(String, Json)]) -> bool {
    let mut alg = false;
    for (name, value) in members {
        match (name.as_str(), value) {
            ("alg", Json::String(s)) if s == "HS256" => alg = true,
            ("typ", Json::String(s)) if s.eq_ignore_ascii_case("JWT") => {}
            ("alg" | "typ" | "crit", _) => return false,
            _ => {}
        }
    }
    alg
}

/// Compares two MACs in time that depends on their length only.
fn macs_equal(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && std::hint::black_box(diff) == 0
}

/// The items of an array that holds only strings.
fn strings(items: &[Json]) -> Option<Vec<&str>> {
    items
        .iter()
        .map(|item| match item {
            Json::String(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What verifying one token costs (BENCHMARKS.md): a token like the
    /// ones `tickstream token` mints, with `sub`, two symbols and a
    /// throttle, against a file of one key and of 16 keys (the token signed
    /// by the last). `cargo test --release --lib verify_cost -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn verify_cost() {
        let secrets: Vec<Vec<u8>> = (0..16)
            .map(|n| format!("{SECRET:?}{n}").into_bytes())
            .collect();
        let claims = [
            r#""sub":"subscriber-0001""#.to_string(),
            r#""symbols":["BTC","ETH"]"#.to_string(),
            r#""throttle":"1s""#.to_string(),
        ];
        for n in [1, 16] {
            let keys = keys(&secrets[..n].iter().map(Vec::as_slice).collect::<Vec<_>>());
            let signer = self::keys(&[secrets[n - 1].as_slice()]);
            let token = mint(&signer, NOW, Duration::from_secs(3600), &claims);
            let rounds = 20_000;
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                assert!(verify(std::hint::black_box(token.as_bytes()), &keys, NOW, None).is_ok());
            }
            let each = started.elapsed() / rounds;
            println!(
                "verify, {n} key(s), {} bytes: {each:?} per token",
                token.len()
            );
        }
    }

    /// A time after every `nbf` and before every `exp` of the fixtures below.
    const NOW: u64 = 1_750_000_000;
    const SECRET: &[u8] = b"test-secret-of-more-than-32-bytes-0001";
    const OTHER: &[u8] = b"test-secret-of-more-than-32-bytes-0002";

    fn keys(secrets: &[&[u8]]) -> Keys {
        Keys {
            secrets: secrets.iter().map(|s| (KeyId::of(s), s.to_vec())).collect(),
        }
    }

    /// A token of these exact header and payload texts, signed with `secret`.
    fn sign(header: &str, payload: &str, secret: &[u8]) -> String {
        let signed = format!(
            "{}.{}",
            base64url::encode(header.as_bytes()),
            base64url::encode(payload.as_bytes())
        );
        let mac = sha256::hmac_sha256(secret, signed.as_bytes());
        format!("{signed}.{}", base64url::encode(&mac))
    }

    fn b64(text: &str) -> String {
        base64url::encode(text.as_bytes())
    }

    fn hs256(payload: &str) -> String {
        sign(r#"{"alg":"HS256","typ":"JWT"}"#, payload, SECRET)
    }

    fn check(token: &str) -> Result<Grant, TokenError> {
        verify(token.as_bytes(), &keys(&[SECRET]), NOW, None)
    }

    /// RFC 7515 Appendix A.1: header and payload hold CRLF line breaks, the
    /// key is the JWK's `k`.
    #[test]
    fn rfc_7515_a1() {
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
            .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
            .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let k = b"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
        let key = base64url::decode(k).unwrap();
        let keys = keys(&[&key]);
        let header = base64url::decode(token.split('.').next().unwrap().as_bytes()).unwrap();
        assert_eq!(header, b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
        assert_eq!(verify(token.as_bytes(), &keys, NOW, None), Err("expired"));
        assert_eq!(
            verify(token.as_bytes(), &keys, 1_300_819_380, None),
            Err("expired")
        );
        let grant = verify(token.as_bytes(), &keys, 1_300_819_379, None).unwrap();
        assert_eq!(
            grant,
            Grant {
                key: KeyId::of(&key),
                exp: 1_300_819_380,
                sub: None,
                symbols: None,
                throttle: None,
                metrics: false,
            }
        );
        let wrong = self::keys(&[SECRET]);
        assert_eq!(verify(token.as_bytes(), &wrong, 0, None), Err("signature"));
    }

    /// Tokens computed with Python's standard library alone:
    ///
    /// ```text
    /// b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    /// s = b64(header) + "." + b64(payload)  # compact JSON, as below
    /// s + "." + b64(hmac.new(key, s.encode(), hashlib.sha256).digest())
    /// ```
    #[test]
    fn python_fixtures() {
        let keys = keys(&[b"python-hmac-fixture-secret-0123456789"]);
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMCwibmJmIjoxNzAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsImF1ZCI6WyJ0aWNrc3RyZWFtIiwib3RoZXIiXSwic3ltYm9scyI6WyJCVEMiLCJldGgiXSwidGhyb3R0bGUiOiI1cyIsInNjb3BlIjoicmVhZCBtZXRyaWNzIiwibmFtZSI6IkFsXHUwMGVmY2UifQ.YVThmLXGNTFHK0wIRTvgqDVGYaTw1z84nNjyRhK4mME";
        let grant = verify(token.as_bytes(), &keys, NOW, Some("tickstream")).unwrap();
        assert_eq!(grant.exp, 4_102_444_800);
        assert_eq!(grant.sub.as_deref(), Some("alice"));
        assert_eq!(
            grant.symbols,
            Some(vec!["BTC".to_string(), "eth".to_string()])
        );
        assert_eq!(grant.throttle.as_deref(), Some("5s"));
        assert!(grant.metrics);
        assert_eq!(
            verify(token.as_bytes(), &keys, NOW, Some("x")),
            Err("audience")
        );
        assert_eq!(
            verify(token.as_bytes(), &keys, 1_699_999_999, None),
            Err("not yet valid")
        );
        assert!(verify(token.as_bytes(), &keys, 1_700_000_000, None).is_ok());
        // `jose`'s default header: no `typ`.
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.1ia_IDQqp9pUx9_CjqhlT3bgcsfVDQcRZhugYuYnMSg";
        assert!(verify(token.as_bytes(), &keys, NOW, None).is_ok());
    }

    /// `mint` writes, byte for byte, what Python signs for these claims.
    #[test]
    fn mint_matches_python_and_verifies() {
        let keys = keys(&[b"python-hmac-fixture-secret-0123456789", SECRET]);
        let claims = [
            format!("\"sub\":{}", json::quote("bob \"q\"\n")),
            r#""aud":"tickstream""#.to_string(),
            r#""throttle":"1s""#.to_string(),
            r#""scope":"metrics""#.to_string(),
            r#""symbols":["BTC","ETH"]"#.to_string(),
        ];
        let token = mint(&keys, 1_700_000_000, Duration::from_secs(3600), &claims);
        assert_eq!(token, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwic3ViIjoiYm9iIFwicVwiXHUwMDBhIiwiYXVkIjoidGlja3N0cmVhbSIsInRocm90dGxlIjoiMXMiLCJzY29wZSI6Im1ldHJpY3MiLCJzeW1ib2xzIjpbIkJUQyIsIkVUSCJdfQ.wYjJqkbSxXJFCxH2NzokblI8uV-sLL_tqsJM_QLBtC0");
        let grant = verify(token.as_bytes(), &keys, 1_700_000_000, Some("tickstream")).unwrap();
        assert_eq!(
            grant,
            Grant {
                key: KeyId::of(&keys.secrets[0].1),
                exp: 1_700_003_600,
                sub: Some("bob \"q\"\n".to_string()),
                symbols: Some(vec!["BTC".to_string(), "ETH".to_string()]),
                throttle: Some("1s".to_string()),
                metrics: true,
            }
        );
        assert_eq!(
            verify(token.as_bytes(), &keys, 1_700_003_600, None),
            Err("expired")
        );
        // The fewest claims.
        let token = mint(&keys, NOW, Duration::from_secs(3600), &[]);
        let grant = verify(token.as_bytes(), &keys, NOW, None).unwrap();
        assert_eq!(
            (grant.sub, grant.symbols, grant.throttle, grant.metrics),
            (None, None, None, false)
        );
        assert_eq!(
            verify(token.as_bytes(), &keys, NOW, Some("tickstream")),
            Err("audience")
        );
    }

    #[test]
    fn bad_tokens() {
        let good = hs256(r#"{"exp":4102444800}"#);
        let (head, rest) = good.split_once('.').unwrap();
        let (body, sig) = rest.split_once('.').unwrap();
        let exp = r#""exp":4102444800"#;
        let cases: Vec<(&str, String, TokenError)> = vec![
            (
                "alg none, unsecured",
                format!("{}.{body}.", b64(r#"{"alg":"none"}"#)),
                "malformed",
            ),
            (
                "alg none, signed",
                sign(r#"{"alg":"none"}"#, &format!("{{{exp}}}"), SECRET),
                "malformed",
            ),
            (
                "alg HS512",
                sign(r#"{"alg":"HS512"}"#, &format!("{{{exp}}}"), SECRET),
                "malformed",
            ),
            (
                "alg hs256",
                sign(r#"{"alg":"hs256"}"#, &format!("{{{exp}}}"), SECRET),
                "malformed",
            ),
            (
                "alg not a string",
                sign(r#"{"alg":["HS256"]}"#, &format!("{{{exp}}}"), SECRET),
                "malformed",
            ),
            (
                "alg missing",
                sign(r#"{"typ":"JWT"}"#, &format!("{{{exp}}}"), SECRET),
                "malformed",
            ),
            (
                "alg twice",
                sign(
                    r#"{"alg":"HS256","alg":"HS256"}"#,
                    &format!("{{{exp}}}"),
                    SECRET,
                ),
                "malformed",
            ),
            (
                "crit",
                sign(
                    r#"{"alg":"HS256","crit":["exp"]}"#,
                    &format!("{{{exp}}}"),
                    SECRET,
                ),
                "malformed",
            ),
            (
                "typ other",
                sign(
                    r#"{"alg":"HS256","typ":"at+jwt"}"#,
                    &format!("{{{exp}}}"),
                    SECRET,
                ),
                "malformed",
            ),
            (
                "header an array",
                sign(r#"["alg","HS256"]"#, &format!("{{{exp}}}"), SECRET),
                "malformed",
            ),
            (
                "header a string",
                sign(r#""HS256""#, &format!("{{{exp}}}"), SECRET),
                "malformed",
            ),
            (
                "header not JSON",
                sign(r#"{"alg":"HS256""#, &format!("{{{exp}}}"), SECRET),
                "malformed",
            ),
            ("one part", head.to_string(), "malformed"),
            ("two parts", format!("{head}.{body}"), "malformed"),
            ("four parts", format!("{good}.{sig}"), "malformed"),
            ("trailing dot", format!("{good}."), "malformed"),
            ("empty", String::new(), "malformed"),
            ("dots", "..".to_string(), "malformed"),
            (
                "bad base64 header",
                format!("{head}!.{body}.{sig}"),
                "malformed",
            ),
            (
                "bad base64 payload",
                format!("{head}.{body}*.{sig}"),
                "malformed",
            ),
            (
                "bad base64 signature",
                format!("{head}.{body}.{sig}+"),
                "malformed",
            ),
            ("padding", format!("{head}.{body}.{sig}="), "malformed"),
            (
                "padded header",
                format!("{head}=.{body}.{sig}"),
                "malformed",
            ),
            ("space", format!(" {good}"), "malformed"),
            ("empty signature", format!("{head}.{body}."), "signature"),
            (
                "short signature",
                format!("{head}.{body}.{}", &sig[..40]),
                "signature",
            ),
            (
                "wrong key",
                sign(r#"{"alg":"HS256"}"#, &format!("{{{exp}}}"), OTHER),
                "signature",
            ),
            (
                "another payload",
                format!(
                    "{head}.{}.{sig}",
                    base64url::encode(b"{\"exp\":4102444801}")
                ),
                "signature",
            ),
            (
                "payload not JSON",
                hs256(r#"{"exp":4102444800"#),
                "malformed",
            ),
            (
                "payload an array",
                hs256(r#"[{"exp":4102444800}]"#),
                "malformed",
            ),
            ("payload empty", hs256(""), "malformed"),
            (
                "duplicate claim",
                hs256(r#"{"exp":4102444800,"exp":1}"#),
                "malformed",
            ),
            (
                "duplicate nested",
                hs256(r#"{"exp":4102444800,"x":{"a":1,"a":1}}"#),
                "malformed",
            ),
            ("exp missing", hs256(r#"{"sub":"a"}"#), "claims"),
            ("exp a string", hs256(r#"{"exp":"4102444800"}"#), "claims"),
            ("exp null", hs256(r#"{"exp":null}"#), "claims"),
            (
                "nbf a string",
                hs256(r#"{"exp":4102444800,"nbf":"0"}"#),
                "claims",
            ),
            (
                "aud a number",
                hs256(r#"{"exp":4102444800,"aud":1}"#),
                "claims",
            ),
            (
                "aud array of a number",
                hs256(r#"{"exp":4102444800,"aud":["a",1]}"#),
                "claims",
            ),
            (
                "sub a number",
                hs256(r#"{"exp":4102444800,"sub":1}"#),
                "claims",
            ),
            (
                "sub too long",
                hs256(&format!(
                    r#"{{"exp":4102444800,"sub":"{}"}}"#,
                    "s".repeat(129)
                )),
                "claims",
            ),
            (
                "symbols a string",
                hs256(r#"{"exp":4102444800,"symbols":"BTC"}"#),
                "claims",
            ),
            (
                "symbols of a number",
                hs256(r#"{"exp":4102444800,"symbols":["BTC",1]}"#),
                "claims",
            ),
            (
                "symbols bad symbol",
                hs256(r#"{"exp":4102444800,"symbols":["BTC/USD"]}"#),
                "claims",
            ),
            (
                "symbols empty symbol",
                hs256(r#"{"exp":4102444800,"symbols":[""]}"#),
                "claims",
            ),
            (
                "symbols 17 bytes",
                hs256(r#"{"exp":4102444800,"symbols":["ABCDEFGHIJKLMNOPQ"]}"#),
                "claims",
            ),
            (
                "throttle a number",
                hs256(r#"{"exp":4102444800,"throttle":5}"#),
                "claims",
            ),
            (
                "scope an array",
                hs256(r#"{"exp":4102444800,"scope":["metrics"]}"#),
                "claims",
            ),
            ("type before time", hs256(r#"{"exp":1,"sub":2}"#), "claims"),
            ("exp past", hs256(r#"{"exp":1700000000}"#), "expired"),
            ("exp now", hs256(&format!(r#"{{"exp":{NOW}}}"#)), "expired"),
            ("exp negative", hs256(r#"{"exp":-1}"#), "expired"),
            (
                "exp fraction past",
                hs256(&format!(r#"{{"exp":{NOW}.0}}"#)),
                "expired",
            ),
            (
                "nbf future",
                hs256(r#"{"exp":4102444800,"nbf":1750000000.5}"#),
                "not yet valid",
            ),
        ];
        for (name, token, expected) in &cases {
            assert_eq!(check(token), Err(*expected), "{name}: {token}");
        }
        let symbols = vec!["\"A\""; 257].join(",");
        let token = hs256(&format!(r#"{{"exp":4102444800,"symbols":[{symbols}]}}"#));
        assert_eq!(check(&token), Err("claims"), "257 symbols");
        let symbols = vec!["\"A\""; 256].join(",");
        let token = hs256(&format!(r#"{{"exp":4102444800,"symbols":[{symbols}]}}"#));
        assert_eq!(check(&token).unwrap().symbols.unwrap().len(), 256);
        let token = hs256(&format!(
            r#"{{"exp":4102444800,"sub":"{}"}}"#,
            "é".repeat(64)
        ));
        assert_eq!(check(&token).unwrap().sub.unwrap().len(), 128);
        let token = hs256(&format!(r#"{{"exp":{}.5}}"#, NOW - 1));
        assert_eq!(check(&token), Err("expired"));
        let token = hs256(&format!(r#"{{"exp":{}.5}}"#, NOW));
        assert_eq!(check(&token).unwrap().exp, NOW + 1, "rounded up");
        assert!(check(&hs256(&format!(r#"{{"exp":4102444800,"nbf":{NOW}}}"#))).is_ok());
    }

    #[test]
    fn size_limit() {
        // Pad the payload with an ignored claim to exactly the limit, then one past.
        let base = hs256(r#"{"exp":4102444800,"x":""}"#).len();
        let fill = |n| hs256(&format!(r#"{{"exp":4102444800,"x":"{}"}}"#, "x".repeat(n)));
        let mut n = (MAX_TOKEN_BYTES - base) * 3 / 4;
        while fill(n + 1).len() <= MAX_TOKEN_BYTES {
            n += 1;
        }
        assert_eq!(fill(n).len(), MAX_TOKEN_BYTES);
        assert!(check(&fill(n)).is_ok());
        assert!(fill(n + 1).len() > MAX_TOKEN_BYTES);
        assert_eq!(check(&fill(n + 1)), Err("malformed"));
        assert_eq!(check(&"a".repeat(100_000)), Err("malformed"));
    }

    #[test]
    fn audience() {
        let keys = keys(&[SECRET]);
        let cases = [
            (r#"{"exp":4102444800,"aud":"api"}"#, Ok(())),
            (r#"{"exp":4102444800,"aud":["web","api"]}"#, Ok(())),
            (r#"{"exp":4102444800,"aud":"API"}"#, Err("audience")),
            (r#"{"exp":4102444800,"aud":["web"]}"#, Err("audience")),
            (r#"{"exp":4102444800,"aud":[]}"#, Err("audience")),
            (r#"{"exp":4102444800}"#, Err("audience")),
            (r#"{"exp":1,"aud":"web"}"#, Err("expired")),
        ];
        for (payload, expected) in cases {
            let token = hs256(payload);
            let got = verify(token.as_bytes(), &keys, NOW, Some("api")).map(|_| ());
            assert_eq!(got, expected, "{payload}");
            // Without an audience, aud is not checked (but still typed).
            assert_eq!(
                verify(token.as_bytes(), &keys, NOW, None)
                    .map(|_| ())
                    .is_ok(),
                !payload.contains("\"exp\":1,")
            );
        }
    }

    #[test]
    fn truncations_and_changes_are_refused() {
        let keys = keys(&[SECRET]);
        let good = hs256(r#"{"exp":4102444800,"sub":"a"}"#);
        assert!(verify(good.as_bytes(), &keys, NOW, None).is_ok());
        for end in 0..good.len() {
            assert!(
                verify(&good.as_bytes()[..end], &keys, NOW, None).is_err(),
                "{end}"
            );
            assert!(
                verify(&good.as_bytes()[end + 1..], &keys, NOW, None).is_err(),
                "{end}"
            );
        }
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
        let sig_start = good.rfind('.').unwrap() + 1;
        for at in sig_start..good.len() {
            for &c in alphabet {
                let mut token = good.clone().into_bytes();
                if token[at] == c {
                    continue;
                }
                token[at] = c;
                let got = verify(&token, &keys, NOW, None);
                assert!(
                    matches!(got, Err("signature" | "malformed")),
                    "{at} {c}: {got:?}"
                );
            }
        }
        // Any split of the token at any byte into header.payload.sig fails.
        for at in 1..good.len() {
            let mut token = good.clone();
            token.insert(at, '.');
            assert!(verify(token.as_bytes(), &keys, NOW, None).is_err(), "{at}");
        }
    }

    #[test]
    fn second_key_and_rotation() {
        let file = keys(&[SECRET, OTHER]);
        let token = sign(r#"{"alg":"HS256"}"#, r#"{"exp":4102444800}"#, OTHER);
        let grant = verify(token.as_bytes(), &file, NOW, None).unwrap();
        assert_eq!(grant.key, KeyId::of(OTHER));
        assert_ne!(grant.key, KeyId::of(SECRET));
        assert!(file.contains(grant.key));
        // A reload without that key: the grant's key is gone.
        let reloaded = Keys::parse(&[SECRET, b"\n"].concat()).unwrap();
        assert!(!reloaded.contains(grant.key));
        assert!(reloaded.contains(KeyId::of(SECRET)));
        assert_eq!(
            verify(token.as_bytes(), &reloaded, NOW, None),
            Err("signature")
        );
    }

    #[test]
    fn key_files() {
        let a = "a".repeat(32);
        let b = "b".repeat(40);
        let ok: Vec<(String, Vec<&str>)> = vec![
            (a.clone(), vec![&a]),
            (format!("{a}\n"), vec![&a]),
            (
                format!("# keys\n\n{a}\r\n   \n#{}\n{b}  \r\n", "x".repeat(5)),
                vec![&a, &b],
            ),
            (format!("{a}   \n{b}\r"), vec![&a, &b]),
            (format!("\r\n{a}\n\n"), vec![&a]),
        ];
        for (text, expected) in &ok {
            let keys = Keys::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let secrets: Vec<&[u8]> = keys.secrets.iter().map(|(_, s)| &s[..]).collect();
            let expected: Vec<&[u8]> = expected.iter().map(|s| s.as_bytes()).collect();
            assert_eq!(secrets, expected, "{text:?}");
            assert_eq!(keys.count(), expected.len());
            assert_eq!(keys.secrets[0].0, KeyId::of(expected[0]));
        }
        // Inner spaces and a leading one belong to the secret.
        let spaced = Keys::parse(format!(" {}", "c d".repeat(11)).as_bytes()).unwrap();
        assert_eq!(
            spaced.secrets[0].1,
            format!(" {}", "c d".repeat(11)).into_bytes()
        );

        let short = "s3cr3t-too-short-1234567890abcd"; // 31 bytes
        let seventeen: String = (0..17).map(|i| format!("{i:0>32}\n")).collect();
        let bad = [
            (String::new(), "no secret"),
            ("# only a comment\n\n  \r\n".to_string(), "no secret"),
            (
                format!("{a}\n# x\n{short}\n"),
                "line 3: a secret must be at least 32 bytes",
            ),
            (
                format!("{short}    \r\n"),
                "line 1: a secret must be at least 32 bytes",
            ),
            (
                format!("{a}\n {}", "#".repeat(20)),
                "line 2: a secret must be at least 32 bytes",
            ),
            (seventeen.clone(), "line 17: more than 16 secrets"),
        ];
        for (text, message) in &bad {
            let error = Keys::parse(text.as_bytes()).unwrap_err();
            assert_eq!(error, *message, "{text:?}");
            assert!(!error.contains("s3cr3t"));
        }
        let sixteen: String = seventeen
            .lines()
            .take(MAX_KEYS)
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(Keys::parse(sixteen.as_bytes()).unwrap().count(), MAX_KEYS);
        // Debug shows ids only.
        let keys = Keys::parse(a.as_bytes()).unwrap();
        assert!(!format!("{keys:?}").contains("aaaa"));
    }
}
