//! The Swarm realiser: each workload is one Docker Swarm service on a cluster.
//!
//! - a workload of N instances is a replicated service of N tasks; a changed spec is
//!   a rolling update (start-first for replicas, stop-first for a single instance that
//!   holds a volume), health-gated, rolled back by the engine if it fails;
//! - a volume lives on one node; a single-instance service that mounts volumes is
//!   pinned to the node that holds them (chosen when the first is made);
//! - env vars and files marked secret go in as Docker secrets, other files as Docker
//!   configs, mounted under `/run/provisioner` and put in place by a `/bin/sh`
//!   wrapper before the image's own command starts: `docker service inspect` shows
//!   no credential (an image with files or secret env needs `/bin/sh` on Swarm);
//! - only ports with a fixed host port are published (ingress mesh or host mode, per
//!   environment); every other port, and every replica, is reached from this machine
//!   through a port-forward into the task's container over its node's engine API.
//!   Each task gets a loopback address (`127.77.x.y`) that stands for it: plugins'
//!   readiness probes and `net-probe` work unchanged;
//! - `exec`, `write-file` and logs go to the engine of the node running the task.
//!
//! See `docs/targets.md`.
//!
//! Here: the swarm, its nodes and the realiser; `request` turns a workload into a
//! service request, `placement` chooses the node of a stateful service, `forward` is
//! the port-forward, `logs` the nodes' engines as one for `provisioner logs`.

mod forward;
mod logs;
mod placement;
mod request;

use request::object_labels;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::reconcile::{Operation, Outcome};
use super::{Deployment, Observer, Phase, Realiser};
use crate::engine::cluster::{ClusterEngine, NodeDetails, Routing, ServiceDetails, TaskDetails};
use crate::engine::{ContainerDetails, ContainerEngine, Docker, EngineAddress, EngineError, ExecRequest, ExecResult, State};
use crate::naming::{self, Scope, LABEL_PORTS, LABEL_REPLICATED, LABEL_SPEC_HASH, LABEL_TARGET_HASH, LABEL_WORKLOAD};
use crate::policy::Workload;

/// How long `ensure` waits for a service's tasks to run before it reports why not.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(300);
/// A task error that lasts this long (no node fits, the image cannot be pulled) is
/// reported rather than waited out.
const PERSISTENT_ERROR: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(250);
/// How long the sweep waits for removed services' containers to go before it removes
/// their network, volumes and secrets.
const SWEEP_WAIT: Duration = Duration::from_secs(90);

/// `[environments.X]` settings of a Swarm target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSettings {
    pub routing: Routing,
    /// A placement constraint per service name.
    pub placement: BTreeMap<String, String>,
    /// Encrypt the project network's traffic between nodes.
    pub encrypted_network: bool,
}
pub struct Swarm {
    manager: Arc<Docker>,
    settings: SwarmSettings,
    /// Node engines by node id, connected on first use.
    nodes: Mutex<HashMap<String, Arc<Docker>>>,
    routes: Arc<Mutex<forward::Routes>>,
    /// Held while a service's volume node is chosen and its first volume made.
    choosing: Mutex<()>,
    /// The nodes as last listed, and when (see `nodes`).
    nodes_seen: Mutex<Option<(Instant, Vec<NodeDetails>)>>,
    /// Services whose volumes' node this process has recorded (`record_volumes_node`).
    recorded: Mutex<BTreeSet<String>>,
}

/// How long a listing of the nodes is used again. A node's state on the manager is
/// itself only as fresh as its last heartbeat (every 5 s by default), so this adds
/// little; a no-op run of six services asked for it about 28 times.
const NODES_FRESH: Duration = Duration::from_millis(500);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
fn task_state(task: &TaskDetails) -> State {
    match task.state.as_str() {
        "running" | "starting" => State::Running,
        "new" | "pending" | "assigned" | "accepted" | "preparing" | "ready" => State::Created,
        "remove" => State::Removing,
        _ => State::Exited,
    }
}

impl Swarm {
    /// Connect to a swarm manager and check that it is one.
    pub fn connect(engine: &EngineAddress, settings: SwarmSettings) -> Result<Swarm, EngineError> {
        let manager = Docker::connect_with(engine)?;
        manager.check_manager()?;
        Ok(Swarm {
            manager: Arc::new(manager),
            settings,
            nodes: Mutex::new(HashMap::new()),
            routes: Arc::default(),
            choosing: Mutex::new(()),
            nodes_seen: Mutex::new(None),
            recorded: Mutex::new(BTreeSet::new()),
        })
    }

    /// The engine of a node, for exec, files, logs, forwards and volumes: reached at
    /// the node's swarm address with the manager's scheme, port and TLS files (a
    /// cluster's CA signs every node's certificate, as Docker's guide sets it up).
    fn node_engine(&self, node: &NodeDetails) -> Result<Arc<Docker>, EngineError> {
        if let Some(engine) = lock(&self.nodes).get(&node.id) {
            return Ok(engine.clone());
        }
        let manager = ClusterEngine::describe(self.manager.as_ref());
        let (scheme, rest) = manager.split_once("://").unwrap_or(("tcp", manager.as_str()));
        let tls = self.manager.engine_address().tls;
        // Docker's conventions when the manager's address names no port.
        let port = rest.rsplit_once(':').map(|(_, p)| p).unwrap_or(if tls.is_some() { "2376" } else { "2375" });
        let engine = if node.manager && (node.address.is_empty() || node.address == "0.0.0.0") {
            self.manager.clone()
        } else {
            let address = format!("{scheme}://{}:{port}", node.address);
            Arc::new(Docker::connect_with(&EngineAddress { address: address.clone(), tls }).map_err(|e| {
                EngineError::Failed(format!(
                    "node {} ({address}): {e}; exec, files, logs, volumes and readiness probes need each node's engine API reachable from this machine",
                    node.hostname
                ))
            })?)
        };
        lock(&self.nodes).insert(node.id.clone(), engine.clone());
        Ok(engine)
    }

    /// The swarm's nodes, listed at most `NODES_FRESH` ago. Callers at the same moment
    /// wait for one listing rather than each making their own.
    fn nodes(&self) -> Result<Vec<NodeDetails>, EngineError> {
        let mut seen = lock(&self.nodes_seen);
        if let Some((at, nodes)) = seen.as_ref() {
            if at.elapsed() < NODES_FRESH {
                return Ok(nodes.clone());
            }
        }
        let nodes = self.manager.nodes()?;
        *seen = Some((Instant::now(), nodes.clone()));
        Ok(nodes)
    }

    fn node(&self, id: &str) -> Result<NodeDetails, EngineError> {
        self.manager
            .nodes()?
            .into_iter()
            .find(|n| n.id == id)
            .ok_or_else(|| EngineError::NotFound(format!("node {id}")))
    }

    /// Ready nodes, and each one's engine.
    fn node_engines(&self) -> Result<Vec<(NodeDetails, Arc<Docker>)>, EngineError> {
        let mut all = Vec::new();
        for node in self.nodes()?.into_iter().filter(|n| n.ready) {
            let engine = self.node_engine(&node)?;
            all.push((node, engine));
        }
        Ok(all)
    }

    /// The service's workloads as they run: (service, its live tasks).
    fn services(&self, labels: &BTreeMap<String, String>) -> Result<Vec<(ServiceDetails, Vec<TaskDetails>)>, EngineError> {
        let services = self.manager.list_services(labels)?;
        let ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
        // One request for all of them: on a no-op run this listing is on the path.
        let mut tasks = self.manager.tasks(&ids)?;
        tasks.retain(|t| t.desired_running);
        Ok(services
            .into_iter()
            .map(|service| {
                let own = tasks.iter().filter(|t| t.service_id == service.id).cloned().collect();
                (service, own)
            })
            .collect())
    }

    /// A task as a container: named as the local target names the instance, with the
    /// address that stands for it here.
    fn details(&self, service: &ServiceDetails, task: &TaskDetails, nodes: &[NodeDetails]) -> ContainerDetails {
        let workload = service.labels.get(LABEL_WORKLOAD).cloned().unwrap_or_default();
        let replicated = service.labels.get(LABEL_REPLICATED).is_some_and(|v| v == "true");
        let short = naming::instance_short_name(&workload, replicated.then_some(u32::try_from(task.slot).unwrap_or(0)));
        let prefix = service.name.strip_suffix(&workload).unwrap_or(&service.name);
        let node = nodes.iter().find(|n| n.id == task.node_id);
        let address = self.route_address(task);
        let mut ports: Vec<(u16, String, u16)> = service
            .published
            .iter()
            .map(|(target, published)| {
                let ip = match (self.settings.routing, node) {
                    (Routing::Host, Some(node)) => node.address.clone(),
                    _ => nodes.iter().find(|n| n.manager).map(|n| n.address.clone()).unwrap_or_default(),
                };
                (*target, ip, *published)
            })
            .collect();
        for port in service.labels.get(LABEL_PORTS).map(String::as_str).unwrap_or("").split(',') {
            if let Ok(port) = port.parse::<u16>() {
                if !ports.iter().any(|(target, _, _)| *target == port) {
                    ports.push((port, address.to_string(), port));
                }
            }
        }
        let health = match (&task.container_id, node) {
            (Some(id), Some(node)) if task.running() => self
                .node_engine(node)
                .ok()
                .and_then(|engine| engine.inspect_container_id(id).ok().flatten())
                .and_then(|c| c.health),
            _ => None,
        };
        ContainerDetails {
            id: task.container_id.clone().unwrap_or_else(|| task.id.clone()),
            name: format!("{prefix}{short}"),
            image: String::new(),
            labels: service.labels.clone(),
            state: task_state(task),
            health,
            exit_code: task.exit_code.and_then(|c| i32::try_from(c).ok()).filter(|_| !task.running()),
            oom_killed: false,
            ports,
            address: Some(address.to_string()),
            node: node.map(|n| n.hostname.clone()),
        }
    }

    /// Every task of these services as containers: one per slot, the running one
    /// where there is one.
    fn containers(&self, services: &[(ServiceDetails, Vec<TaskDetails>)]) -> Result<Vec<ContainerDetails>, EngineError> {
        let nodes = self.nodes()?;
        let mut all = Vec::new();
        for (service, tasks) in services {
            let mut by_slot: BTreeMap<u64, &TaskDetails> = BTreeMap::new();
            for task in tasks {
                let better = by_slot.get(&task.slot).is_none_or(|t| !t.running() && task.running());
                if better {
                    by_slot.insert(task.slot, task);
                }
            }
            all.extend(by_slot.values().map(|task| self.details(service, task, &nodes)));
        }
        Ok(all)
    }

    /// One of the service's instances by short name, and where it runs.
    fn find(&self, scope: &Scope, short: &str) -> Result<(ContainerDetails, Arc<Docker>), EngineError> {
        if !naming::is_valid_short_name(short) {
            return Err(EngineError::Failed(format!("invalid container name `{short}`")));
        }
        let wanted = naming::engine_name(scope, short);
        let services = self.services(&naming::service_labels(scope))?;
        let nodes = self.nodes()?;
        for (service, tasks) in &services {
            for task in tasks.iter().filter(|t| t.running()) {
                let details = self.details(service, task, &nodes);
                if details.name == wanted {
                    let node = nodes.iter().find(|n| n.id == task.node_id).ok_or_else(|| EngineError::NotFound(format!("node {}", task.node_id)))?;
                    return Ok((details, self.node_engine(node)?));
                }
            }
        }
        Err(EngineError::NotFound(format!("running container `{short}` of service `{}`", scope.service)))
    }

    /// Wait until every slot runs the current spec, or say why it does not; the
    /// service and its live tasks as they then are.
    fn converge(
        &self,
        scope: &Scope,
        name: &str,
        replicas: u64,
        observer: &mut dyn Observer,
    ) -> Result<(ServiceDetails, Vec<TaskDetails>), EngineError> {
        let started = Instant::now();
        let mut errors: HashMap<String, Instant> = HashMap::new();
        let mut last_note = String::new();
        loop {
            let service = self.manager.inspect_service(name)?.ok_or_else(|| EngineError::NotFound(format!("service {name}")))?;
            if let Some(state) = service.update_state.as_deref() {
                if matches!(state, "rollback_completed" | "rollback_paused" | "paused") {
                    return Err(EngineError::Failed(format!(
                        "service `{}`: the rolling update failed and was {}: {}",
                        scope.service,
                        if state == "paused" { "paused" } else { "rolled back" },
                        service.update_message.unwrap_or_default()
                    )));
                }
            }
            let updating = matches!(service.update_state.as_deref(), Some("updating" | "rollback_started"));
            let tasks: Vec<TaskDetails> = self.manager.tasks(&[name])?.into_iter().filter(|t| t.desired_running).collect();
            let running = tasks.iter().filter(|t| t.running()).count() as u64;
            if !updating && running == replicas && tasks.len() as u64 == replicas {
                return Ok((service, tasks));
            }
            // A task that waits for the node holding its volumes, which is down, gone
            // or drained, waits in vain: said at once, with the node.
            if running < replicas && placement::pinned_node(&service).is_some() {
                if let Some(away) = placement::node_away(&scope.service, &service, &self.nodes()?) {
                    return Err(away);
                }
            }
            for task in tasks.iter().filter(|t| !t.running()) {
                let Some(error) = &task.error else { continue };
                let since = *errors.entry(format!("{}{error}", task.id)).or_insert_with(Instant::now);
                if since.elapsed() >= PERSISTENT_ERROR || error.contains("No such image") {
                    let node = self.node(&task.node_id).map(|n| n.hostname).unwrap_or_else(|_| "no node".into());
                    return Err(EngineError::Failed(task_error(&scope.service, error, &node)));
                }
            }
            let note = format!("{running}/{replicas} task(s) running");
            if note != last_note {
                observer.note(&note);
                last_note = note;
            }
            if started.elapsed() >= CONVERGE_TIMEOUT {
                let waiting: Vec<String> = tasks.iter().filter(|t| !t.running()).map(|t| format!("{} ({})", t.state, t.message)).collect();
                return Err(EngineError::Failed(format!(
                    "service `{}`: {running} of {replicas} task(s) running after {} s; waiting: {}",
                    scope.service,
                    CONVERGE_TIMEOUT.as_secs(),
                    waiting.join(", ")
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Remove the workload's secrets and configs that its service no longer uses.
    fn prune_objects(&self, scope: &Scope, workload: &str, keep: &BTreeSet<String>) {
        let labels = object_labels(scope, workload);
        for secret in [true, false] {
            for object in self.manager.list_objects(secret, &labels).unwrap_or_default() {
                if !keep.contains(&object) {
                    // Still in use by a task that is shutting down: the next run or the
                    // sweep takes it.
                    let _ = self.manager.remove_object(secret, &object);
                }
            }
        }
    }

    /// Wait until no node has a container with these labels.
    fn wait_for_containers_gone(&self, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let engines = self.node_engines()?;
        let deadline = Instant::now() + SWEEP_WAIT;
        loop {
            let mut left = 0;
            for (_, engine) in &engines {
                left += engine.list_containers(labels)?.len();
            }
            if left == 0 || Instant::now() >= deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Whether a service made from `old` labels differs from the request with `new` ones:
/// its spec, or what this target added to it.
fn changed(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> bool {
    [LABEL_SPEC_HASH, LABEL_TARGET_HASH].iter().any(|key| old.get(*key) != new.get(*key))
}

/// The same placement constraints, in any order: a service whose volumes' node came
/// back under a new id is updated to follow it.
fn same_constraints(old: &[String], new: &[String]) -> bool {
    old.iter().collect::<BTreeSet<_>>() == new.iter().collect::<BTreeSet<_>>()
}
/// A task's error as one line: the service, the cause, the fix.
fn task_error(service: &str, error: &str, node: &str) -> String {
    let fix = if error.contains("No such image") || error.contains("pull access denied") || error.contains("manifest unknown") {
        "push the image to the registry every node pulls from (`mirror` in the environment; `cargo xtask images --push` for the offline images)"
    } else if error.contains("no suitable node") {
        if error.contains("memory") {
            "lower the service's memory limit or add a node with more memory"
        } else {
            "no node satisfies its placement: check `placement` in the environment and the nodes' labels (`docker node inspect`)"
        }
    } else {
        "see `docker service ps --no-trunc` on a manager"
    };
    format!("service `{service}` cannot run on the swarm: {error} (on {node}); {fix}")
}
impl Realiser for Swarm {
    fn describe(&self) -> String {
        format!("the swarm managed at {}", ClusterEngine::describe(self.manager.as_ref()))
    }

    fn network(&self, scope: &Scope) -> Result<String, EngineError> {
        let name = naming::network_name(&scope.project, &scope.environment);
        self.manager.ensure_overlay_network(
            &name,
            &naming::environment_labels(&scope.project, &scope.environment),
            self.settings.encrypted_network,
        )?;
        Ok(name)
    }

    fn create_volume(&self, scope: &Scope, short: &str) -> Result<String, EngineError> {
        self.volume_node(scope, Some(short))?;
        Ok(naming::engine_name(scope, short))
    }

    fn remove_volume(&self, scope: &Scope, short: &str) -> Result<(), EngineError> {
        let name = naming::engine_name(scope, short);
        let mut found = false;
        for (_, engine) in self.node_engines()? {
            if let Some(v) = engine.inspect_volume(&name)? {
                if naming::owned_by(&v.labels, scope) {
                    engine.remove_volume(&name)?;
                    found = true;
                }
            }
        }
        if found {
            // The service's last volume gone, from every node its record could name:
            // nothing is left to record.
            let engines = self.node_engines()?;
            let mut left = 0;
            for (_, engine) in &engines {
                left += engine.list_volumes(&naming::service_labels(scope))?.len();
            }
            let all_seen = self.volume_records(scope)?.iter().all(|(_, id, _)| engines.iter().any(|(n, _)| n.id == *id));
            if left == 0 && all_seen {
                self.forget_volumes_node(scope)?;
            }
            Ok(())
        } else {
            Err(EngineError::NotFound(format!("volume `{short}` of service `{}`", scope.service)))
        }
    }

    fn list_volumes(&self, scope: &Scope) -> Result<Vec<String>, EngineError> {
        let mut all = BTreeSet::new();
        for (_, engine) in self.node_engines()? {
            for v in engine.list_volumes(&naming::service_labels(scope))? {
                if let Some(short) = naming::short_name(scope, &v.name) {
                    all.insert(short.to_string());
                }
            }
        }
        Ok(all.into_iter().collect())
    }

    fn plan(&self, scope: &Scope, workload: &Workload) -> Result<Vec<Operation>, EngineError> {
        let name = naming::engine_name(scope, &workload.name);
        let wanted_hash = workload.instances.first().and_then(|r| r.labels.get(LABEL_SPEC_HASH));
        let replicas = u64::try_from(workload.instances.len()).unwrap_or(0);
        Ok(match self.manager.inspect_service(&name)? {
            None => vec![Operation::Create(name)],
            Some(s) if !naming::owned_by(&s.labels, scope) => {
                return Err(EngineError::Conflict(format!("service {name} exists and belongs to something else")))
            }
            Some(s) if s.labels.get(LABEL_SPEC_HASH) != wanted_hash => vec![Operation::Recreate(name)],
            Some(s) if s.replicas != replicas => vec![Operation::Start(format!("{name} ({} → {replicas} tasks)", s.replicas))],
            Some(_) => vec![],
        })
    }

    fn ensure(&self, scope: &Scope, workload: &Workload, observer: &mut dyn Observer) -> Result<Deployment, EngineError> {
        let created = Instant::now();
        let name = naming::engine_name(scope, &workload.name);
        let replicas = u64::try_from(workload.instances.len()).unwrap_or(0);
        // Unchanged (the common case of a warm run): nothing to make, only to check.
        if let (Some(service), Some(first)) = (self.manager.inspect_service(&name)?, workload.instances.first()) {
            let unchanged = naming::owned_by(&service.labels, scope)
                && service.labels.get(LABEL_SPEC_HASH) == first.labels.get(LABEL_SPEC_HASH)
                && service.labels.get(LABEL_TARGET_HASH) == Some(&self.target_hash(scope, first))
                && service.replicas == replicas
                // Pinned to a node that is still there: a node that left and joined
                // again holds the volumes under a new id, and the service follows.
                && match placement::pinned_node(&service) {
                    None => true,
                    Some(id) => self.nodes()?.iter().any(|n| n.id == id && n.ready),
                };
            if unchanged {
                observer.phase(Phase::Create, created.elapsed());
                let started = Instant::now();
                let (service, tasks) = self.converge(scope, &name, replicas, observer)?;
                observer.phase(Phase::Start, started.elapsed());
                return Ok(Deployment { outcome: Outcome::Unchanged, containers: self.containers(&[(service, tasks)])? });
            }
        }
        self.network(scope)?;
        let (request, objects) = self.request(scope, workload)?;
        let existing = self.manager.inspect_service(&request.name)?;
        let outcome = match &existing {
            Some(s) if !naming::owned_by(&s.labels, scope) => {
                return Err(EngineError::Conflict(format!("service {} exists and belongs to something else", request.name)))
            }
            None => {
                observer.note(&format!("creating service {}", request.name));
                self.manager.create_service(&request)?;
                Outcome::Created
            }
            Some(s) if changed(&s.labels, &request.labels) || !same_constraints(&s.constraints, &request.constraints) => {
                observer.note(&format!("rolling update of {}", request.name));
                self.manager.update_service(s.version, &request)?;
                Outcome::Recreated
            }
            Some(s) if s.replicas != request.replicas => {
                observer.note(&format!("scaling {} to {}", request.name, request.replicas));
                self.manager.scale_service(&request.name, request.replicas)?;
                Outcome::Started
            }
            Some(_) => Outcome::Unchanged,
        };
        observer.phase(Phase::Create, created.elapsed());
        let started = Instant::now();
        let (service, tasks) = self.converge(scope, &request.name, request.replicas, observer)?;
        observer.phase(Phase::Start, started.elapsed());
        let keep: BTreeSet<String> = objects.into_iter().collect();
        self.prune_objects(scope, &workload.name, &keep);
        Ok(Deployment { outcome, containers: self.containers(&[(service, tasks)])? })
    }

    fn list(&self, scope: &Scope) -> Result<Vec<ContainerDetails>, EngineError> {
        self.containers(&self.services(&naming::service_labels(scope))?)
    }

    fn inspect(&self, scope: &Scope, short: &str) -> Result<ContainerDetails, EngineError> {
        let wanted = naming::engine_name(scope, short);
        self.list(scope)?
            .into_iter()
            .find(|c| c.name == wanted)
            .ok_or_else(|| EngineError::NotFound(format!("container `{short}` of service `{}`", scope.service)))
    }

    fn start(&self, scope: &Scope, short: &str) -> Result<(), EngineError> {
        let name = naming::engine_name(scope, short);
        match self.manager.inspect_service(&name)? {
            Some(s) if naming::owned_by(&s.labels, scope) => self.manager.scale_service(&name, s.replicas.max(1)),
            _ => Err(EngineError::NotFound(format!("workload `{short}` of service `{}`", scope.service))),
        }
    }

    fn stop(&self, scope: &Scope, short: &str, _timeout_secs: u32) -> Result<(), EngineError> {
        let name = naming::engine_name(scope, short);
        match self.manager.inspect_service(&name)? {
            Some(s) if naming::owned_by(&s.labels, scope) => self.manager.scale_service(&name, 0),
            _ => Err(EngineError::NotFound(format!("workload `{short}` of service `{}`", scope.service))),
        }
    }

    /// The orchestrator stops a service's tasks within the grace its spec names, so
    /// `stop_grace_secs` is not used here.
    fn remove(&self, scope: &Scope, short: &str, _stop_grace_secs: Option<u32>) -> Result<(), EngineError> {
        let name = naming::engine_name(scope, short);
        match self.manager.inspect_service(&name)? {
            Some(s) if naming::owned_by(&s.labels, scope) => {
                self.manager.remove_service(&name)?;
                // The orchestrator stops the tasks after it answers; until their
                // containers are gone, the volumes and secrets they use stay busy.
                self.wait_for_containers_gone(&naming::workload_labels(scope, short))?;
                self.prune_objects(scope, short, &BTreeSet::new());
                Ok(())
            }
            _ => Err(EngineError::NotFound(format!("workload `{short}` of service `{}`", scope.service))),
        }
    }

    fn exec(&self, scope: &Scope, short: &str, request: &ExecRequest) -> Result<ExecResult, EngineError> {
        let (details, engine) = self.find(scope, short)?;
        engine.exec(&details.id, request)
    }

    fn exec_streaming(
        &self,
        scope: &Scope,
        short: &str,
        request: &ExecRequest,
        stdin: Option<&mut dyn std::io::Read>,
        stdout: &mut dyn std::io::Write,
    ) -> Result<ExecResult, EngineError> {
        let (details, engine) = self.find(scope, short)?;
        engine.exec_streaming(&details.id, request, stdin, stdout)
    }

    fn signal(&self, scope: &Scope, short: &str, signal: &str) -> Result<(), EngineError> {
        let (details, engine) = self.find(scope, short)?;
        engine.signal(&details.id, signal)
    }

    fn write_file(&self, scope: &Scope, short: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), EngineError> {
        let (details, engine) = self.find(scope, short)?;
        engine.write_file(&details.id, path, contents, mode)
    }

    fn logs(&self, scope: &Scope, short: &str, lines: u32) -> Result<String, EngineError> {
        let (details, engine) = self.find(scope, short)?;
        engine.logs(&details.id, lines)
    }

    fn open_route(&self, _scope: &Scope, addr: SocketAddr) -> Result<(), EngineError> {
        self.serve_route(addr)
    }

    fn environment(&self, project: &str, environment: &str) -> Result<Vec<ContainerDetails>, EngineError> {
        self.containers(&self.services(&naming::environment_labels(project, environment))?)
    }

    fn remove_from_environment(&self, project: &str, environment: &str, name: &str) -> Result<(), EngineError> {
        let labels = naming::environment_labels(project, environment);
        for (service, tasks) in self.services(&labels)? {
            let nodes = self.nodes()?;
            if service.name == name || tasks.iter().any(|t| self.details(&service, t, &nodes).name == name) {
                return self.manager.remove_service(&service.name);
            }
        }
        Err(EngineError::NotFound(format!("container {name} of {project}-{environment}")))
    }

    fn sweep(&self, project: &str, environment: &str, keep_volumes: bool) -> Result<usize, EngineError> {
        let labels = naming::environment_labels(project, environment);
        let services = self.manager.list_services(&labels)?;
        for service in &services {
            self.manager.remove_service(&service.name)?;
        }
        let mut removed = services.len();
        // Containers stop within their stop grace; until they are gone their network,
        // volumes and secrets are in use.
        self.wait_for_containers_gone(&labels)?;
        let engines = self.node_engines()?;
        for secret in [true, false] {
            for (object, object_labels) in self.manager.labelled_objects(secret, &labels)? {
                // Where kept volumes are stays known (see `volume_records`).
                if keep_volumes && object_labels.contains_key(naming::LABEL_VOLUMES_NODE) {
                    continue;
                }
                self.manager.remove_object(secret, &object)?;
                removed += 1;
            }
        }
        lock(&self.recorded).clear();
        if !keep_volumes {
            for (_, engine) in &engines {
                for volume in engine.list_volumes(&labels)? {
                    engine.remove_volume(&volume.name)?;
                    removed += 1;
                }
            }
        }
        let network = naming::network_name(project, environment);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match ClusterEngine::remove_network(self.manager.as_ref(), &network) {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => return Err(e),
                // The network's last endpoints go a moment after their containers.
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
        Ok(removed)
    }

    fn environment_logs(&self, project: &str, environment: &str, name: &str, lines: u32) -> Result<String, EngineError> {
        let labels = naming::environment_labels(project, environment);
        let nodes = self.nodes()?;
        for (service, tasks) in self.services(&labels)? {
            for task in &tasks {
                let details = self.details(&service, task, &nodes);
                if details.name == name {
                    let node = nodes.iter().find(|n| n.id == task.node_id).ok_or_else(|| EngineError::NotFound(format!("node {}", task.node_id)))?;
                    return self.node_engine(node)?.logs(&details.id, lines);
                }
            }
        }
        Err(EngineError::NotFound(format!("container {name} of {project}-{environment}")))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_error_names_the_service_the_cause_and_the_fix() {
        let message = task_error("db", "No such image: registry:5000/x:1", "node-2");
        assert!(message.starts_with("service `db` cannot run on the swarm: No such image"), "{message}");
        assert!(message.contains("on node-2") && message.contains("mirror"), "{message}");
        let message = task_error("db", "no suitable node (scheduling constraints not satisfied on 3 nodes)", "no node");
        assert!(message.contains("placement"), "{message}");
    }
}
