//! Waiting and probing helpers for `provision` and `ready`.

use std::time::Duration;
#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
use std::time::Instant;

/// Call `attempt` every `every` until it succeeds or `timeout` passes; the error
/// is the last attempt's.
pub fn until<T>(timeout: Duration, every: Duration, mut attempt: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = now() + timeout;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(e) if now() >= deadline => return Err(format!("gave up after {timeout:?}: {e}")),
            Err(_) => sleep(every),
        }
    }
}

/// The clock [`until`] reads: the real one, or under the `testing` feature the mock
/// host's manual clock (a wait then takes no time; see `MockHost::elapsed`).
#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
fn now() -> Instant {
    Instant::now()
}

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
fn sleep(every: Duration) {
    std::thread::sleep(every)
}

#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
use crate::testing::imports::clock::{now, sleep};

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
