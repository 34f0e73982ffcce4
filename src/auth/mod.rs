//! Access control's sans-IO core (SPEC "Access control (`--auth-keys
//! FILE`)"): the one place that answers "who is this and what may they
//! read?". Bytes and the current time in, a [`Grant`] or a [`TokenError`]
//! out; no file, socket or clock is touched here, and no crate is used.
//!
//! - [`sha256`]: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104).
//! - [`base64url`]: strict unpadded base64url (RFC 4648 §5).
//! - [`json`]: a strict JSON parser (RFC 8259).
//! - [`jwt`]: the key file, HS256 tokens verified and minted (RFC 7515,
//!   7519, 8725).

pub mod base64url;
pub mod json;
pub mod jwt;
pub mod sha256;

pub use jwt::{mint, verify, Grant, KeyId, Keys, MintClaims, TokenError};
