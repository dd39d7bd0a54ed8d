//! Where a stateful service runs: its volumes are node-local, so it is pinned to the
//! node that holds them, chosen once among the nodes its placement allows.

use std::sync::Arc;

use super::{lock, Swarm};
use crate::engine::cluster::{ClusterEngine, NodeDetails, ServiceDetails};
use crate::engine::{ContainerEngine, Docker, EngineError};
use crate::naming::{self, Scope, LABEL_VOLUMES_NODE, LABEL_VOLUMES_NODE_NAME};

impl Swarm {
    /// The node that holds the service's volumes (or should): where one of them is,
    /// else, among the ready, active nodes its placement allows, the one with the
    /// fewest of the environment's volumes. Services choose one at a time, so that
    /// stateful services started together spread over the nodes.
    /// With `create`, the volume of that short name is made there before the next
    /// service chooses.
    pub(super) fn volume_node(&self, scope: &Scope, create: Option<&str>) -> Result<(NodeDetails, Arc<Docker>), EngineError> {
        let _turn = lock(&self.choosing);
        let made = |node: NodeDetails, engine: Arc<Docker>| -> Result<(NodeDetails, Arc<Docker>), EngineError> {
            self.record_volumes_node(scope, &node)?;
            if let Some(short) = create {
                let name = naming::engine_name(scope, short);
                match engine.inspect_volume(&name)? {
                    Some(v) if naming::owned_by(&v.labels, scope) => {}
                    Some(_) => return Err(EngineError::Conflict(format!("volume {name} exists and belongs to something else"))),
                    None => engine.create_volume(&name, &naming::service_labels(scope))?,
                }
            }
            Ok((node, engine))
        };
        let engines = self.node_engines()?;
        for (node, engine) in &engines {
            if !engine.list_volumes(&naming::service_labels(scope))?.is_empty() {
                return made(node.clone(), engine.clone());
            }
        }
        // No ready node holds them. If the service is pinned to a node that is down or
        // gone, its data is there: say so, rather than start it afresh, empty,
        // somewhere else.
        let services = self.manager.list_services(&naming::service_labels(scope))?;
        if services.iter().any(|s| pinned_node(s).is_some()) {
            let nodes = self.nodes()?;
            if let Some(away) = services.iter().find_map(|s| node_away(&scope.service, s, &nodes)) {
                return Err(away);
            }
        }
        // Nor is it pinned when its services were removed with the volumes kept
        // (`teardown --keep-volumes`): the record says where they are.
        if let Some((_, id, hostname)) = self.volume_records(scope)?.into_iter().next() {
            if let Some(away) = volumes_away(&scope.service, &id, &hostname, &self.nodes()?) {
                return Err(away);
            }
        }
        let placement = self.settings.placement.get(&scope.service);
        let mut best: Option<(usize, &(NodeDetails, Arc<Docker>))> = None;
        for candidate in engines.iter().filter(|(n, _)| n.availability == "active" && placement.is_none_or(|p| satisfies(n, p))) {
            let count = candidate.1.list_volumes(&naming::environment_labels(&scope.project, &scope.environment))?.len();
            if best.is_none_or(|(fewest, _)| count < fewest) {
                best = Some((count, candidate));
            }
        }
        let (node, engine) = best.map(|(_, c)| c.clone()).ok_or_else(|| {
            EngineError::Failed(match placement {
                Some(p) => format!("no ready, active node of the swarm satisfies the placement `{p}` of service `{}`", scope.service),
                None => "no node of the swarm is ready and active (`docker node ls`)".into(),
            })
        })?;
        made(node, engine)
    }
}

impl Swarm {
    /// The service's records of the node holding its volumes: (config name, node id,
    /// hostname). One, unless a run was cut short while replacing it.
    pub(super) fn volume_records(&self, scope: &Scope) -> Result<Vec<(String, String, String)>, EngineError> {
        Ok(self
            .manager
            .labelled_objects(false, &naming::service_labels(scope))?
            .into_iter()
            .filter_map(|(name, labels)| {
                let id = labels.get(LABEL_VOLUMES_NODE)?.clone();
                let hostname = labels.get(LABEL_VOLUMES_NODE_NAME).cloned().unwrap_or_else(|| id.clone());
                Some((name, id, hostname))
            })
            .collect())
    }

    /// Record that `node` holds the service's volumes (once per process and service;
    /// a record of another node is replaced: the node rejoined under a new id).
    fn record_volumes_node(&self, scope: &Scope, node: &NodeDetails) -> Result<(), EngineError> {
        let key = naming::engine_name(scope, "volumes");
        if lock(&self.recorded).contains(&key) {
            return Ok(());
        }
        let records = self.volume_records(scope)?;
        if !records.iter().any(|(_, id, _)| *id == node.id) {
            let mut labels = naming::service_labels(scope);
            labels.insert(LABEL_VOLUMES_NODE.into(), node.id.clone());
            labels.insert(LABEL_VOLUMES_NODE_NAME.into(), node.hostname.clone());
            let name = naming::object_name(&key, &super::request::short_digest(node.id.as_bytes()));
            self.manager.ensure_object(false, &name, node.hostname.as_bytes(), &labels)?;
        }
        for (name, _, _) in records.iter().filter(|(_, id, _)| *id != node.id) {
            self.manager.remove_object(false, name)?;
        }
        lock(&self.recorded).insert(key);
        Ok(())
    }

    /// Forget where the service's volumes are: it has none left.
    pub(super) fn forget_volumes_node(&self, scope: &Scope) -> Result<(), EngineError> {
        for (name, _, _) in self.volume_records(scope)? {
            self.manager.remove_object(false, &name)?;
        }
        lock(&self.recorded).remove(&naming::engine_name(scope, "volumes"));
        Ok(())
    }
}

/// The node a service is pinned to by its volumes (`node.id==…`), if it is.
pub(super) fn pinned_node(service: &ServiceDetails) -> Option<&str> {
    service.constraints.iter().find_map(|c| {
        let (key, value) = c.split_once("==")?;
        (key.trim() == "node.id").then(|| value.trim())
    })
}

/// Why a service pinned to its volumes' node cannot run there now: the node is down,
/// has left the swarm, or is drained. One line with the service, the cause and the fix.
pub(super) fn node_away(service: &str, details: &ServiceDetails, nodes: &[NodeDetails]) -> Option<EngineError> {
    let id = pinned_node(details)?;
    volumes_away(service, id, id, nodes)
}

/// Why a service whose volumes are on node `id` (`hostname` when the swarm no longer
/// lists it) cannot run there now, if it cannot.
pub(super) fn volumes_away(service: &str, id: &str, hostname: &str, nodes: &[NodeDetails]) -> Option<EngineError> {
    let (cause, fix) = match nodes.iter().find(|n| n.id == id) {
        Some(n) if n.ready && n.availability == "active" => return None,
        Some(n) if n.ready => (
            format!("its volumes are on {}, which is set to `{}`", n.hostname, n.availability),
            format!("`docker node update --availability active {}` on a manager", n.hostname),
        ),
        Some(n) => (
            format!("its volumes are on {}, which is down or has left the swarm (`docker node ls`)", n.hostname),
            format!(
                "bring {} back (if it left: `docker swarm join` on it, then `docker node rm` its old entry on a manager)",
                n.hostname
            ),
        ),
        None if hostname != id => (
            format!("its volumes are on {hostname} (node {id}), which is no longer in the swarm"),
            format!("join {hostname} to the swarm again (`docker swarm join` on it)"),
        ),
        None => (
            format!("its volumes are on node {id}, which is no longer in the swarm"),
            "join that machine to the swarm again (`docker swarm join`)".to_string(),
        ),
    };
    Some(EngineError::Failed(format!(
        "service `{service}` cannot run on the swarm: {cause}; {fix}: a volume stays on its node, so the service waits for it"
    )))
}

/// Whether `node` satisfies a placement constraint of the forms Swarm's docs show
/// (`node.id`, `node.hostname`, `node.role`, `node.labels.KEY`, with `==` or `!=`).
/// Any other form is left to the engine: it counts as satisfied here.
pub(super) fn satisfies(node: &NodeDetails, constraint: &str) -> bool {
    let (key, wanted, equal) = match constraint.split_once("!=") {
        Some((k, v)) => (k.trim(), v.trim(), false),
        None => match constraint.split_once("==") {
            Some((k, v)) => (k.trim(), v.trim(), true),
            None => return true,
        },
    };
    let actual = match key {
        "node.id" => Some(node.id.as_str()),
        "node.hostname" => Some(node.hostname.as_str()),
        "node.role" => Some(if node.manager { "manager" } else { "worker" }),
        _ => match key.strip_prefix("node.labels.") {
            Some(label) => node.labels.get(label).map(String::as_str),
            None => return true,
        },
    };
    (actual == Some(wanted)) == equal
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn placement_constraints_are_read_as_swarm_reads_them() {
        let node = NodeDetails {
            id: "abc".into(),
            hostname: "node-2".into(),
            address: "10.0.0.2".into(),
            ready: true,
            availability: "active".into(),
            labels: BTreeMap::from([("disk".to_string(), "ssd".to_string())]),
            manager: false,
        };
        let cases = [
            ("node.hostname==node-2", true),
            ("node.hostname == node-3", false),
            ("node.hostname!=node-3", true),
            ("node.role==worker", true),
            ("node.role==manager", false),
            ("node.labels.disk==ssd", true),
            ("node.labels.disk!=ssd", false),
            ("node.labels.zone==a", false),
            ("node.id==abc", true),
            ("engine.labels.os==linux", true),
        ];
        for (constraint, expected) in cases {
            assert_eq!(satisfies(&node, constraint), expected, "{constraint}");
        }
    }

    #[test]
    fn a_service_whose_volumes_node_is_away_is_told_which_node_and_what_to_do() {
        let node = |id: &str, ready: bool, availability: &str| NodeDetails {
            id: id.into(),
            hostname: format!("host-{id}"),
            address: String::new(),
            ready,
            availability: availability.into(),
            labels: BTreeMap::new(),
            manager: false,
        };
        let service = ServiceDetails {
            id: "s".into(),
            name: "p-e-cache-server".into(),
            labels: BTreeMap::new(),
            version: 1,
            replicas: 1,
            update_state: None,
            update_message: None,
            constraints: vec!["node.labels.disk==ssd".into(), "node.id == n2".into()],
            published: Vec::new(),
        };
        assert_eq!(pinned_node(&service), Some("n2"));
        assert!(node_away("cache", &service, &[node("n2", true, "active")]).is_none(), "its node is there");

        let down = node_away("cache", &service, &[node("n1", true, "active"), node("n2", false, "active")]).expect("away").to_string();
        assert!(down.starts_with("service `cache` cannot run on the swarm: its volumes are on host-n2, which is down or has left"), "{down}");
        assert!(down.contains("docker swarm join") && down.contains("docker node rm"), "{down}");
        assert_eq!(down.lines().count(), 1);
        let drained = node_away("cache", &service, &[node("n2", true, "drain")]).expect("away").to_string();
        assert!(drained.contains("set to `drain`") && drained.contains("--availability active host-n2"), "{drained}");
        let gone = node_away("cache", &service, &[node("n1", true, "active")]).expect("away").to_string();
        assert!(gone.contains("node n2, which is no longer in the swarm"), "{gone}");
        // From a record, which also knows the node's hostname.
        let recorded = volumes_away("cache", "n2", "node-2", &[node("n1", true, "active")]).expect("away").to_string();
        assert!(recorded.contains("its volumes are on node-2 (node n2), which is no longer in the swarm"), "{recorded}");
        assert!(recorded.contains("join node-2 to the swarm again"), "{recorded}");
        assert!(volumes_away("cache", "n2", "node-2", &[node("n2", true, "active")]).is_none());

        let replicated = ServiceDetails { constraints: vec!["node.role==worker".into()], ..service };
        assert_eq!(pinned_node(&replicated), None);
        assert!(node_away("web", &replicated, &[]).is_none());
    }

}
