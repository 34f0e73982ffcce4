//! The Redis client of the `redis` feed and of `tickstream publish`, written
//! by hand over std: [`url`] (what to connect to), [`resp`] (the wire
//! protocol, sans-IO), [`connection`] (one blocking connection, bounded in
//! bytes and time, and the stream commands) and [`backoff`] (how often to
//! try again). Its two users are `feed::redis` and `publish`.

pub mod backoff;
pub mod connection;
pub mod resp;
pub mod url;

use std::time::Duration;

pub use backoff::Backoff;
pub use connection::{Connection, Entry, RedisError};
pub use url::RedisUrl;

/// Wait for connecting, and for each reply but `XREAD`'s block.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
