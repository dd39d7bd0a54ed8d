//! The port-forward: each task gets a loopback address (`127.77.x.y`) that stands for
//! it here, and a connection to it is carried into the task's container over its
//! node's engine API (an exec of bash's `/dev/tcp`), as `kubectl port-forward` does.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;

use super::{lock, Swarm};
use crate::engine::cluster::TaskDetails;
use crate::engine::EngineError;

/// The loopback addresses that stand for tasks, and the listeners on them.
#[derive(Default)]
pub(super) struct Routes {
    /// Task id → its address.
    by_task: HashMap<String, Ipv4Addr>,
    /// Address → (node id, container id).
    targets: HashMap<Ipv4Addr, (String, String)>,
    listening: BTreeSet<SocketAddr>,
}
impl Swarm {
    /// The loopback address standing for a task.
    pub(super) fn route_address(&self, task: &TaskDetails) -> Ipv4Addr {
        let mut routes = lock(&self.routes);
        let next = u32::try_from(routes.by_task.len()).unwrap_or(0) + 1;
        let address = *routes.by_task.entry(task.id.clone()).or_insert_with(|| {
            let [_, _, b, c] = next.to_be_bytes();
            Ipv4Addr::new(127, 77, b, c)
        });
        if let Some(container) = &task.container_id {
            routes.targets.insert(address, (task.node_id.clone(), container.clone()));
        }
        address
    }


    pub(super) fn serve_route(&self, addr: SocketAddr) -> Result<(), EngineError> {
        let IpAddr::V4(ip) = addr.ip() else { return Ok(()) };
        {
            let routes = lock(&self.routes);
            if routes.listening.contains(&addr) || !routes.targets.contains_key(&ip) {
                return Ok(());
            }
        }
        let listener = TcpListener::bind(addr).map_err(|e| EngineError::Failed(format!("port-forward on {addr}: {e}")))?;
        lock(&self.routes).listening.insert(addr);
        let routes = self.routes.clone();
        let nodes = self.nodes()?;
        let mut engines = HashMap::new();
        for node in &nodes {
            if let Ok(engine) = self.node_engine(node) {
                engines.insert(node.id.clone(), engine);
            }
        }
        let engines = Arc::new(engines);
        std::thread::Builder::new()
            .name(format!("forward-{addr}"))
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let target = lock(&routes).targets.get(&ip).cloned();
                    let Some((node, container)) = target else { continue };
                    let Some(engine) = engines.get(&node).cloned() else { continue };
                    let _ = std::thread::Builder::new().name(format!("forward-{addr}-conn")).spawn(move || {
                        if let Err(e) = engine.forward(&container, addr.port(), stream) {
                            tracing::debug!(%addr, "port-forward: {e}");
                        }
                    });
                }
            })
            .map_err(|e| EngineError::Failed(format!("port-forward on {addr}: {e}")))?;
        Ok(())
    }
}
