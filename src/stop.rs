//! Stopping (README, "Stopping"): on SIGTERM or SIGINT the server stops
//! listening at once, so a load balancer moves on; ends its open streams in
//! random order spread evenly over `--drain`, so their clients reconnect
//! elsewhere a few at a time rather than all at once; logs one line with the
//! count and exits 0. A second signal ends it at once, with status 1. No
//! step waits on stderr for more than [`crate::log::FLUSH_WAIT`].

use std::io;
use std::net::TcpListener;
use std::process;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::auth::KeyId;
use crate::notify::{self, notify};
use crate::server::Shared;
use crate::sys::{self, Signal, StopSignals};

/// After the last stream is told to end, how long its thread may take to
/// finish its write and count its disconnect before the process exits.
const LAST_WRITES: Duration = Duration::from_secs(1);

/// Starts the thread that waits for the stop signals.
pub fn spawn(signals: StopSignals, listener: TcpListener, shared: Arc<Shared>) -> io::Result<()> {
    thread::Builder::new()
        .name("tickstream-stop".into())
        .spawn(move || {
            while signals.wait() == Signal::Reload {
                notify(&notify::reloading());
                reload(&shared);
                notify(notify::READY);
            }
            let second = thread::Builder::new().name("tickstream-stop2".into());
            let spawned = second.spawn(move || {
                while signals.wait() == Signal::Reload {}
                crate::log!("tickstream: second signal: exiting now");
                crate::log::flush();
                process::exit(1);
            });
            if spawned.is_err() {
                crate::log!("tickstream: a second signal will not end the drain early");
            }
            stop(&listener, &shared);
        })
        .map(drop)
}

/// SIGHUP: reads the key file again; a good one replaces the keys and ends
/// the streams of a key that is gone, a bad one is logged and changes
/// nothing. Without `--auth-keys` it is logged and ignored.
fn reload(shared: &Shared) {
    let Some(access) = &shared.access else {
        crate::log!("tickstream: SIGHUP ignored: no --auth-keys to reload");
        return;
    };
    match access.reload() {
        Ok(count) => {
            let keys = access.keys();
            let ended = shared.hub.revoke(|key| !keys.contains(KeyId(key)));
            let s = if count == 1 { "" } else { "s" };
            crate::log!(
                "tickstream: keys reloaded: {count} key{s}; {ended} streams of removed keys ended"
            );
        }
        Err(e) => {
            let count = access.keys().count();
            let s = if count == 1 { "" } else { "s" };
            crate::log!("tickstream: SIGHUP: --auth-keys {e}; keeping the {count} key{s} in use");
        }
    }
}

fn stop(listener: &TcpListener, shared: &Shared) -> ! {
    notify(notify::STOPPING);
    shared.stopping.store(true, Ordering::Relaxed);
    if let Err(e) = sys::stop_listening(listener) {
        crate::log!("tickstream: cannot close the listening socket: {e}");
    }
    let drain = shared.config.drain;
    let mut enders = shared.hub.drain();
    fastrand::shuffle(&mut enders);
    let count = enders.len();
    crate::log!(
        "tickstream: stopping: ending {count} streams over {:.1}s",
        drain.as_secs_f64()
    );
    let started = Instant::now();
    for (i, ender) in enders.iter().enumerate() {
        let slot = started + drain.mul_f64(i as f64 / count as f64);
        thread::sleep(slot.saturating_duration_since(Instant::now()));
        ender.end();
    }
    let last_writes = Instant::now() + LAST_WRITES;
    while shared.metrics.clients_connected() > 0 && Instant::now() < last_writes {
        thread::sleep(Duration::from_millis(10));
    }
    crate::log!("tickstream: stopped after draining {count} streams");
    crate::log::flush();
    process::exit(0)
}
