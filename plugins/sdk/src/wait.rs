//! Waiting and probing helpers for `provision` and `ready`.

use std::time::{Duration, Instant};

/// Call `attempt` every `every` until it succeeds or `timeout` passes; the error
/// is the last attempt's.
pub fn until<T>(timeout: Duration, every: Duration, mut attempt: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => return Err(format!("gave up after {timeout:?}: {e}")),
            Err(_) => std::thread::sleep(every),
        }
    }
}

/// [`until`], for a server that must stay up meanwhile: when an attempt fails and
/// the service's container `name` has stopped, give up at once, with its exit code
/// (a server that exited will not come up by waiting).
pub fn until_up(name: &str, timeout: Duration, every: Duration, mut attempt: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let mut exited = None;
    until(timeout, every, || match attempt() {
        Ok(()) => Ok(()),
        Err(e) => match crate::docker::inspect(name).ok().and_then(|info| info.stopped()) {
            Some(code) => {
                exited = Some(code);
                Ok(())
            }
            None => Err(e),
        },
    })?;
    match exited {
        Some(code) => Err(format!("the server {} before it answered", crate::exited(code))),
        None => Ok(()),
    }
}

/// [`until_up`] for a probe of `server`'s published `port`, every 50 ms (a probe
/// costs next to nothing): `probe` gets the `host:port`. A server that exited at
/// once publishes nothing; this then reports its exit code too.
pub fn until_port_up(
    server: &crate::ContainerInfo,
    port: u16,
    timeout: Duration,
    mut probe: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    until_up(&server.name, timeout, Duration::from_millis(50), || probe(&server.host_addr(port)?))
}
