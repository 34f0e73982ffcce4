//! systemd's readiness protocol (`sd_notify(3)`), for a unit of
//! `Type=notify`: `READY=1` once the server listens, `RELOADING=1` and
//! `READY=1` around a SIGHUP reload, `STOPPING=1` when the drain starts.
//! Each is one datagram to the socket named by `$NOTIFY_SOCKET` (a path, or
//! `@name` in the abstract namespace). Without the variable nothing is
//! sent; a send that fails is ignored, as systemd would ignore a late one.

/// Tells systemd that the server listens (or has reloaded).
pub const READY: &str = "READY=1";
/// Tells systemd that the drain has started.
pub const STOPPING: &str = "STOPPING=1";

/// Sends `state` to `$NOTIFY_SOCKET`, if set.
pub fn notify(state: &str) {
    #[cfg(target_os = "linux")]
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        let _ = send(&path, state);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = state;
}

/// The message that opens a reload: `RELOADING=1` with the monotonic time
/// systemd asks to accompany it.
pub fn reloading() -> String {
    format!(
        "RELOADING=1\nMONOTONIC_USEC={}",
        crate::sys::monotonic_micros()
    )
}

#[cfg(target_os = "linux")]
fn send(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let socket = UnixDatagram::unbound()?;
    let address = match path.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(path)?,
    };
    socket.send_to_addr(state.as_bytes(), &address)?;
    Ok(())
}
