//! The network edge, and the only module that owns a client's `TcpStream`.
//!
//! - [`accept`]: the accept loop; admission of heads and threads; spawning
//!   one small-stack thread per connection;
//! - [`connection`]: one connection's life: read the head (bounded in bytes
//!   and time), route it, answer it or hand it to the stream;
//! - [`access`]: a request's token checked, a stream narrowed to what it
//!   grants (`--auth-keys`);
//! - [`routes`]: pure routing, a request to a [`routes::Route`], no socket;
//! - [`reply`]: a complete answer written (with CORS) and the connection
//!   closed, for every other room;
//! - [`stream`]: writing one client's event stream;
//! - [`gate`]: the admission counter behind every limit.

pub mod accept;
pub mod access;
pub mod connection;
pub mod gate;
pub mod reply;
pub mod routes;
pub mod stream;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::auth::Access;
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use access::Subscribers;
use gate::Gate;

pub use accept::serve;

/// Connections allowed to be sending their request heads at once; more are
/// answered 503 by the accept loop itself, so slow senders cannot pile up
/// threads.
pub const MAX_PENDING_HEADS: usize = 1024;

/// What every connection thread shares.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The broadcast point.
    pub hub: Arc<Hub>,
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// Connections still sending their heads ([`MAX_PENDING_HEADS`]).
    pub pending_heads: Arc<Gate>,
    /// Connection threads (the budget of [`crate::sys::thread_budget`]).
    pub threads: Arc<Gate>,
    /// Open streams (`--max-clients`).
    pub clients: Arc<Gate>,
    /// Set when the server is stopping: the accept loop stops accepting.
    pub stopping: AtomicBool,
    /// The keys of `--auth-keys`; `None`: every stream is public.
    pub access: Option<Access>,
    /// Open streams per token subscriber (`--max-streams-per-sub`).
    pub subscribers: Subscribers,
}

impl Shared {
    /// State for a server with this configuration, hub and counters,
    /// allowed `thread_budget` connection threads at once.
    pub fn new(
        config: Config,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        thread_budget: usize,
        access: Option<Access>,
    ) -> Shared {
        Shared {
            clients: Gate::new(config.max_clients),
            config,
            hub,
            metrics,
            pending_heads: Gate::new(MAX_PENDING_HEADS),
            threads: Gate::new(thread_budget),
            stopping: AtomicBool::new(false),
            access,
            subscribers: Subscribers::default(),
        }
    }
}
