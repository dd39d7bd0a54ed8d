//! `net-probe`: plugins use ordinary WASI sockets for real protocol checks, and the
//! host lets a socket connect only to the service's own published ports and to its own
//! containers' addresses on the project network (where replicas, which are never
//! published, answer). Anything else fails inside the guest with a permission error.
//! Targets are learnt as the plugin sees its containers through the `docker` import.
//!
//! Why WASI sockets and not a `net` interface of our own: protocol crates
//! (postgres-protocol, redis-protocol, rusty-s3, …) work on `std::net::TcpStream`
//! unchanged, and the host still decides every address.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::WasiCtxBuilder;

use crate::runtime::state::ServiceHost;

/// Whether a socket may use `addr` for `use_`, given the service's probe targets. A
/// target with port 0 stands for every port of that address (an own container's).
pub fn allows(targets: &HashSet<SocketAddr>, addr: SocketAddr, use_: SocketAddrUse) -> bool {
    match use_ {
        // A connect first binds the socket to an ephemeral local port.
        SocketAddrUse::TcpBind => addr.port() == 0 && addr.ip().is_unspecified(),
        SocketAddrUse::TcpConnect => {
            addr.port() != 0 && (targets.contains(&addr) || targets.contains(&SocketAddr::new(addr.ip(), 0)))
        }
        _ => false,
    }
}

/// Open the sandbox's TCP to the service's own ports and containers, if granted.
/// Without the grant TCP stays off (wasmtime-wasi's default) and every check fails.
pub fn configure(wasi: &mut WasiCtxBuilder, host: &ServiceHost) {
    if !host.effective.allows_net_probe() {
        return;
    }
    let targets: Arc<Mutex<HashSet<SocketAddr>>> = host.probe_targets.clone();
    wasi.allow_tcp(true);
    wasi.socket_addr_check(move |addr, use_| {
        let allowed = targets.lock().map(|t| allows(&t, addr, use_)).unwrap_or(false);
        Box::pin(async move { allowed })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_published_ports_and_own_containers() {
        let targets: HashSet<SocketAddr> = ["127.0.0.1:40001".parse().unwrap(), "172.18.0.5:0".parse().unwrap()].into();
        let cases = [
            ("172.18.0.5:8000", SocketAddrUse::TcpConnect, true),
            ("172.18.0.6:8000", SocketAddrUse::TcpConnect, false),
            ("172.18.0.5:0", SocketAddrUse::TcpConnect, false),
            ("0.0.0.0:0", SocketAddrUse::TcpBind, true),
            ("[::]:0", SocketAddrUse::TcpBind, true),
            ("0.0.0.0:8080", SocketAddrUse::TcpBind, false),
            ("127.0.0.1:40001", SocketAddrUse::TcpConnect, true),
            ("127.0.0.1:40002", SocketAddrUse::TcpConnect, false),
            ("10.0.0.1:40001", SocketAddrUse::TcpConnect, false),
            ("127.0.0.1:40001", SocketAddrUse::TcpListen, false),
            ("127.0.0.1:40001", SocketAddrUse::UdpSend, false),
            ("127.0.0.1:40001", SocketAddrUse::UdpBind, false),
        ];
        for (addr, use_, allowed) in cases {
            assert_eq!(allows(&targets, addr.parse().unwrap(), use_), allowed, "{addr} {use_:?}");
        }
    }
}
