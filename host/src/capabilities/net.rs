//! `net-probe`: plugins use ordinary WASI sockets for real protocol checks, and the
//! host lets a socket connect only to the service's own published ports and to its own
//! containers' addresses on the project network (where replicas, which are never
//! published, answer). Anything else fails inside the guest with a permission error.
//! Targets are learnt as the plugin sees its containers through the `docker` import,
//! and every connect is checked again against the containers the service has *now*:
//! an address outlives its container, and the engine may give it to someone else's.
//!
//! Why WASI sockets and not a `net` interface of our own: protocol crates
//! (postgres-protocol, redis-protocol, rusty-s3, …) work on `std::net::TcpStream`
//! unchanged, and the host still decides every address.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::WasiCtxBuilder;

use super::service::ServiceHost;
use crate::engine::ContainerDetails;
use crate::naming::Scope;
use crate::realise::Realiser;

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

/// Whether `addr` belongs to one of `containers`: one of their published ports, or
/// any port of their address on the project network.
pub fn belongs_to(containers: &[ContainerDetails], addr: SocketAddr) -> bool {
    containers.iter().any(|c| {
        let on_network = c.address.as_deref().and_then(|a| a.parse::<IpAddr>().ok()) == Some(addr.ip());
        let published = c.ports.iter().any(|(_, ip, port)| {
            let ip = if ip == "0.0.0.0" || ip.is_empty() { "127.0.0.1" } else { ip.as_str() };
            *port == addr.port() && ip.parse::<IpAddr>().ok() == Some(addr.ip())
        });
        on_network || published
    })
}

/// Whether the service's containers, as the engine has them now, include `addr`; if
/// so, the realiser makes it answer here.
fn still_own(realiser: &dyn Realiser, scope: &Scope, addr: SocketAddr) -> bool {
    // The check runs inside wasmtime-wasi's async runtime; the engine blocks on its
    // own, so it is asked from a plain thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            let own = realiser.list(scope).is_ok_and(|list| belongs_to(&list, addr));
            if own {
                if let Err(e) = realiser.open_route(scope, addr) {
                    tracing::warn!(service = %scope.service, %addr, "net-probe: {e}");
                }
            }
            own
        })
        .join()
        .unwrap_or(false)
    })
}

/// Open the sandbox's TCP to the service's own ports and containers, if granted.
/// Without the grant TCP stays off (wasmtime-wasi's default) and every check fails.
pub fn configure(wasi: &mut WasiCtxBuilder, host: &ServiceHost) {
    if !host.effective.allows_net_probe() {
        return;
    }
    let targets: Arc<Mutex<HashSet<SocketAddr>>> = host.probe_targets.clone();
    let realiser = host.realiser.clone();
    let scope = host.scope.clone();
    wasi.allow_tcp(true);
    wasi.socket_addr_check(move |addr, use_| {
        let learnt = targets.lock().map(|t| allows(&t, addr, use_)).unwrap_or(false);
        let allowed = learnt && (!matches!(use_, SocketAddrUse::TcpConnect) || still_own(realiser.as_ref(), &scope, addr));
        if learnt && !allowed {
            tracing::warn!(service = %scope.service, %addr, "net-probe: refused, the address is no longer one of the service's containers");
        }
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

    #[test]
    fn an_address_counts_only_while_a_container_of_the_service_has_it() {
        let container = ContainerDetails {
            ports: vec![(5432, "127.0.0.1".into(), 40001)],
            address: Some("172.18.0.5".into()),
            ..ContainerDetails::for_test("shop-local-db-server", Default::default(), crate::engine::State::Running)
        };
        let cases = [("172.18.0.5:5432", true), ("172.18.0.5:9", true), ("127.0.0.1:40001", true), ("127.0.0.1:40002", false), ("172.18.0.6:5432", false)];
        for (addr, own) in cases {
            assert_eq!(belongs_to(std::slice::from_ref(&container), addr.parse().unwrap()), own, "{addr}");
        }
        assert!(!belongs_to(&[], "172.18.0.5:5432".parse().unwrap()), "a removed container's address is no longer a target");
    }
}
