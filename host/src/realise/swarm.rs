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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::reconcile::{Operation, Outcome};
use super::{Deployment, Observer, Phase, Realiser};
use crate::engine::cluster::{ClusterEngine, MountedFile, NodeDetails, Routing, ServiceDetails, ServiceRequest, TaskDetails};
use crate::engine::{ContainerDetails, ContainerEngine, ContainerRequest, Docker, EngineError, ExecRequest, ExecResult, State};
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
/// Where a task's files and secret env are mounted from Docker configs and secrets,
/// for a wrapper to copy into place (and read into the environment) before it runs
/// the image's own command: mounts are read-only, and an entrypoint that takes
/// ownership of its files (RabbitMQ's, PostgreSQL's) must be able to.
const STAGING_DIR: &str = "/run/provisioner";

/// `[environments.X]` settings of a Swarm target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSettings {
    pub routing: Routing,
    /// A placement constraint per service name.
    pub placement: BTreeMap<String, String>,
    /// Encrypt the project network's traffic between nodes.
    pub encrypted_network: bool,
}

/// The loopback addresses that stand for tasks, and the listeners on them.
#[derive(Default)]
struct Routes {
    /// Task id → its address.
    by_task: HashMap<String, Ipv4Addr>,
    /// Address → (node id, container id).
    targets: HashMap<Ipv4Addr, (String, String)>,
    listening: BTreeSet<SocketAddr>,
}

pub struct Swarm {
    manager: Arc<Docker>,
    settings: SwarmSettings,
    /// Node engines by node id, connected on first use.
    nodes: Mutex<HashMap<String, Arc<Docker>>>,
    routes: Arc<Mutex<Routes>>,
    /// Held while a service's volume node is chosen and its first volume made.
    choosing: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn short_digest(bytes: &[u8]) -> String {
    crate::digest::sha256_hex(bytes)[..12].to_string()
}

/// `'…'` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
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
    pub fn connect(address: &str, settings: SwarmSettings) -> Result<Swarm, EngineError> {
        let manager = Docker::connect_to(address)?;
        manager.check_manager()?;
        Ok(Swarm { manager: Arc::new(manager), settings, nodes: Mutex::new(HashMap::new()), routes: Arc::default(), choosing: Mutex::new(()) })
    }

    /// The engine of a node, for exec, files, logs, forwards and volumes: reached at
    /// the node's swarm address with the manager's scheme and port.
    fn node_engine(&self, node: &NodeDetails) -> Result<Arc<Docker>, EngineError> {
        if let Some(engine) = lock(&self.nodes).get(&node.id) {
            return Ok(engine.clone());
        }
        let manager = ClusterEngine::describe(self.manager.as_ref());
        let (scheme, rest) = manager.split_once("://").unwrap_or(("tcp", manager.as_str()));
        let port = rest.rsplit_once(':').map(|(_, p)| p).unwrap_or("2375");
        let engine = if node.manager && (node.address.is_empty() || node.address == "0.0.0.0") {
            self.manager.clone()
        } else {
            let address = format!("{scheme}://{}:{port}", node.address);
            Arc::new(Docker::connect_to(&address).map_err(|e| {
                EngineError::Failed(format!(
                    "node {} ({address}): {e}; exec, files, logs, volumes and readiness probes need each node's engine API reachable from this machine",
                    node.hostname
                ))
            })?)
        };
        lock(&self.nodes).insert(node.id.clone(), engine.clone());
        Ok(engine)
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
        for node in self.manager.nodes()?.into_iter().filter(|n| n.ready) {
            let engine = self.node_engine(&node)?;
            all.push((node, engine));
        }
        Ok(all)
    }

    /// The loopback address standing for a task.
    fn route_address(&self, task: &TaskDetails) -> Ipv4Addr {
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

    /// The service's workloads as they run: (service, its live tasks).
    fn services(&self, labels: &BTreeMap<String, String>) -> Result<Vec<(ServiceDetails, Vec<TaskDetails>)>, EngineError> {
        let mut all = Vec::new();
        for service in self.manager.list_services(labels)? {
            let tasks = self.manager.tasks(&service.name)?.into_iter().filter(|t| t.desired_running).collect();
            all.push((service, tasks));
        }
        Ok(all)
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
                .and_then(|engine| engine.inspect_container(id).ok().flatten())
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
        let nodes = self.manager.nodes()?;
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
        let nodes = self.manager.nodes()?;
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

    /// The node that holds the service's volumes (or should): where one of them is,
    /// else, among the ready, active nodes its placement allows, the one with the
    /// fewest of the environment's volumes. Services choose one at a time, so that
    /// stateful services started together spread over the nodes.
    /// With `create`, the volume of that short name is made there before the next
    /// service chooses.
    fn volume_node(&self, scope: &Scope, create: Option<&str>) -> Result<(NodeDetails, Arc<Docker>), EngineError> {
        let _turn = lock(&self.choosing);
        let made = |node: NodeDetails, engine: Arc<Docker>| -> Result<(NodeDetails, Arc<Docker>), EngineError> {
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

    /// The service request for a workload, after making the secrets and configs it
    /// mounts (their names are returned with it).
    fn request(&self, scope: &Scope, workload: &Workload) -> Result<(ServiceRequest, Vec<String>), EngineError> {
        let first: &ContainerRequest =
            workload.instances.first().ok_or_else(|| EngineError::Failed(format!("workload `{}` has no instances", workload.name)))?;
        let name = naming::engine_name(scope, &workload.name);
        let object_labels = object_labels(scope, &workload.name);
        let mut objects = Vec::new();
        let mut files = Vec::new();
        let (secret_env, env): (Vec<_>, Vec<_>) = first.env.iter().cloned().partition(|(k, _)| first.secrets.contains(k));
        let (mut entrypoint, mut command) = (first.entrypoint.clone(), first.command.clone());
        if !secret_env.is_empty() || !first.files.is_empty() {
            let image = self.manager.image_command(&first.image).map_err(|e| match e {
                EngineError::NotFound(_) | EngineError::Failed(_) => EngineError::Failed(format!(
                    "service `{}`: the swarm cannot pull {} ({}): push it to the registry its nodes pull from \
                     (`mirror`; `cargo xtask images --push REGISTRY` for the offline images) or set the service's image in \
                     [environments.NAME.images]",
                    scope.service,
                    first.image,
                    pull_cause(&e.to_string())
                )),
                other => other,
            })?;
            let user = first.user.clone().unwrap_or_default();
            let runs_as = if user.is_empty() { image.user.clone() } else { user };
            let root = runs_as.is_empty() || runs_as == "root" || runs_as == "0" || runs_as.starts_with("0:") || runs_as.starts_with("root:");
            // Root reads a 0400 file; any other user gets it readable, inside its own
            // task only.
            let staged_mode = if root { 0o400 } else { 0o444 };
            let mut stage = |contents: &[u8], secret: bool, target: String| -> Result<(), EngineError> {
                let object = naming::object_name(&name, &short_digest(&[target.as_bytes(), b"\0", contents].concat()));
                let source_id = self.manager.ensure_object(secret, &object, contents, &object_labels)?;
                files.push(MountedFile { source: object.clone(), source_id, secret, target, uid: "0".into(), mode: staged_mode });
                objects.push(object);
                Ok(())
            };
            let mut script = Vec::new();
            for (i, (path, contents, mode)) in first.files.iter().enumerate() {
                let staged = format!("{STAGING_DIR}/file-{i}");
                stage(contents, first.secrets.contains(path), staged.clone())?;
                let folder = path.rsplit_once('/').map(|(f, _)| f).filter(|f| !f.is_empty()).unwrap_or("/");
                let (path, folder) = (shell_quote(path), shell_quote(folder));
                script.push(format!("mkdir -p {folder} && rm -f {path} && cp {staged} {path} && chmod {mode:o} {path}"));
            }
            if !secret_env.is_empty() {
                let contents: String = secret_env.iter().map(|(k, v)| format!("{k}={}\n", shell_quote(v))).collect();
                let staged = format!("{STAGING_DIR}/env");
                stage(contents.as_bytes(), true, staged.clone())?;
                script.push(format!("set -a && . {staged} && set +a"));
            }
            script.push("exec \"$@\"".into());
            let (own_entrypoint, own_command) = match (entrypoint.take(), command.take()) {
                // An entrypoint of one's own drops the image's command, as in Docker.
                (Some(e), c) => (e, c.unwrap_or_default()),
                (None, c) => (image.entrypoint, c.unwrap_or(image.cmd)),
            };
            entrypoint = Some(vec!["/bin/sh".into(), "-c".into(), script.join(" && "), "provisioner-files".into()]);
            command = Some(own_entrypoint.into_iter().chain(own_command).collect());
        }
        let published: Vec<(u16, u16)> =
            first.ports.iter().filter(|(_, _, host)| *host != 0).map(|(container, _, host)| (*container, *host)).collect();
        let mut labels = first.labels.clone();
        let ports: Vec<String> = first.ports.iter().map(|(c, _, _)| c.to_string()).collect();
        labels.insert(LABEL_PORTS.into(), ports.join(","));
        labels.insert(LABEL_REPLICATED.into(), workload.replicated.to_string());
        let mut constraints = Vec::new();
        if let Some(constraint) = self.settings.placement.get(&scope.service) {
            constraints.push(constraint.clone());
        }
        if !workload.replicated && !first.volumes.is_empty() {
            let (node, _) = self.volume_node(scope, None)?;
            constraints.push(format!("node.id=={}", node.id));
        }
        labels.insert(LABEL_TARGET_HASH.into(), self.target_hash(scope, first));
        let request = ServiceRequest {
            name,
            labels,
            image: first.image.clone(),
            entrypoint,
            command,
            env,
            user: first.user.clone(),
            health: first.health.clone(),
            memory_bytes: first.memory_bytes,
            nano_cpus: first.nano_cpus,
            pids: first.pids,
            stop_timeout_secs: first.stop_timeout_secs,
            network: first.network.clone(),
            aliases: first.aliases.clone(),
            volumes: first.volumes.clone(),
            files,
            published,
            routing: self.settings.routing,
            replicas: u64::try_from(workload.instances.len()).unwrap_or(0),
            start_first: workload.replicated,
            constraints,
        };
        Ok((request, objects))
    }

    /// A fingerprint of what this target adds to a workload's request: its placement,
    /// the routing and the ports it publishes. (The node a volume pins a service to
    /// follows from the volume, which stays put.)
    fn target_hash(&self, scope: &Scope, first: &ContainerRequest) -> String {
        let published: Vec<(u16, u16)> = first.ports.iter().filter(|(_, _, h)| *h != 0).map(|(c, _, h)| (*c, *h)).collect();
        short_digest(format!("{:?} {:?} {published:?}", self.settings.placement.get(&scope.service), self.settings.routing).as_bytes())
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
            let tasks: Vec<TaskDetails> = self.manager.tasks(name)?.into_iter().filter(|t| t.desired_running).collect();
            let running = tasks.iter().filter(|t| t.running()).count() as u64;
            if !updating && running == replicas && tasks.len() as u64 == replicas {
                return Ok((service, tasks));
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

    fn serve_route(&self, addr: SocketAddr) -> Result<(), EngineError> {
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
        let nodes = self.manager.nodes()?;
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

/// The labels of a workload's secrets and configs.
fn object_labels(scope: &Scope, workload: &str) -> BTreeMap<String, String> {
    naming::workload_labels(scope, workload)
}

/// Whether `node` satisfies a placement constraint of the forms Swarm's docs show
/// (`node.id`, `node.hostname`, `node.role`, `node.labels.KEY`, with `==` or `!=`).
/// Any other form is left to the engine: it counts as satisfied here.
fn satisfies(node: &NodeDetails, constraint: &str) -> bool {
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

/// Whether a service made from `old` labels differs from the request with `new` ones:
/// its spec, or what this target added to it.
fn changed(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> bool {
    [LABEL_SPEC_HASH, LABEL_TARGET_HASH].iter().any(|key| old.get(*key) != new.get(*key))
}

/// The registry's own words from a failed pull (`manifest unknown`), not the whole story.
fn pull_cause(error: &str) -> String {
    let inner = error.split_once(" could not be pulled (").map(|(_, rest)| rest).unwrap_or(error);
    let inner = inner.split_once("). ").map(|(cause, _)| cause).unwrap_or(inner);
    inner.rsplit(": ").next().unwrap_or(inner).trim_end_matches(')').to_string()
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
                && service.replicas == replicas;
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
            Some(s) if changed(&s.labels, &request.labels) => {
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

    fn remove(&self, scope: &Scope, short: &str) -> Result<(), EngineError> {
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
            let nodes = self.manager.nodes()?;
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
            for object in self.manager.list_objects(secret, &labels)? {
                self.manager.remove_object(secret, &object)?;
                removed += 1;
            }
        }
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
        let nodes = self.manager.nodes()?;
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
    fn secret_values_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$HOME`x`"), "'$HOME`x`'");
    }

    #[test]
    fn a_pull_failure_is_told_by_its_cause() {
        let error = "image registry:5000/x/redis:missing is not on this machine and could not be pulled (manifest for registry:5000/x/redis:missing not found: manifest unknown: manifest unknown). Supply it with an image override";
        assert_eq!(pull_cause(error), "manifest unknown");
    }

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
    fn a_task_error_names_the_service_the_cause_and_the_fix() {
        let message = task_error("db", "No such image: registry:5000/x:1", "node-2");
        assert!(message.starts_with("service `db` cannot run on the swarm: No such image"), "{message}");
        assert!(message.contains("on node-2") && message.contains("mirror"), "{message}");
        let message = task_error("db", "no suitable node (scheduling constraints not satisfied on 3 nodes)", "no node");
        assert!(message.contains("placement"), "{message}");
    }
}

/// The containers of a swarm's tasks, on every node, as one read-only engine for
/// `provisioner logs`: each is listed under its instance's name (`…-db-server`,
/// `…-backend-app-2`), the one of its slot that runs (or ran last) only.
pub struct NodeLogs {
    engines: Vec<Arc<Docker>>,
    /// Instance name → (engine index, container id).
    names: Mutex<HashMap<String, (usize, String)>>,
}

impl Swarm {
    /// The swarm's nodes as one engine for reading logs.
    pub fn log_engine(&self) -> Result<Arc<dyn ContainerEngine>, EngineError> {
        let engines = self.node_engines()?.into_iter().map(|(_, engine)| engine).collect();
        Ok(Arc::new(NodeLogs { engines, names: Mutex::new(HashMap::new()) }))
    }
}

impl NodeLogs {
    fn located(&self, name: &str) -> Result<(Arc<Docker>, String), EngineError> {
        let names = lock(&self.names);
        let (index, id) = names.get(name).ok_or_else(|| EngineError::NotFound(format!("container {name}")))?;
        Ok((self.engines[*index].clone(), id.clone()))
    }

    fn read_only() -> EngineError {
        EngineError::Failed("the swarm's node engines are read here for logs only".into())
    }
}

impl ContainerEngine for NodeLogs {
    fn describe(&self) -> String {
        format!("{} swarm node engine(s)", self.engines.len())
    }

    fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerDetails>, EngineError> {
        let mut chosen: BTreeMap<String, (usize, ContainerDetails)> = BTreeMap::new();
        for (index, engine) in self.engines.iter().enumerate() {
            for mut details in engine.list_containers(labels)? {
                // `<service>.<slot>.<task id>`, or `<service>.<node id>.<task id>`.
                let Some((service, rest)) = details.name.split_once('.') else { continue };
                let replicated = details.labels.get(LABEL_REPLICATED).is_some_and(|v| v == "true");
                let slot = rest.split('.').next().unwrap_or("");
                let name = if replicated { format!("{service}-{slot}") } else { service.to_string() };
                let id = details.id.clone();
                details.name = name.clone();
                let better = chosen.get(&name).is_none_or(|(_, c)| c.state != State::Running && details.state == State::Running);
                if better {
                    chosen.insert(name.clone(), (index, details));
                    lock(&self.names).insert(name, (index, id));
                }
            }
        }
        Ok(chosen.into_values().map(|(_, details)| details).collect())
    }

    fn logs(&self, name: &str, lines: u32) -> Result<String, EngineError> {
        let (engine, id) = self.located(name)?;
        engine.logs(&id, lines)
    }

    fn stream_logs(&self, name: &str, options: &crate::engine::LogOptions, line: &mut dyn FnMut(crate::engine::LogLine) -> bool) -> Result<(), EngineError> {
        let (engine, id) = self.located(name)?;
        engine.stream_logs(&id, options, line)
    }

    fn ensure_network(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn remove_network(&self, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn inspect_volume(&self, _: &str) -> Result<Option<crate::engine::VolumeDetails>, EngineError> {
        Err(Self::read_only())
    }
    fn create_volume(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn remove_volume(&self, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn list_volumes(&self, _: &BTreeMap<String, String>) -> Result<Vec<crate::engine::VolumeDetails>, EngineError> {
        Err(Self::read_only())
    }
    fn ensure_image(&self, _: &str, _: &mut dyn FnMut(&str)) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn create_container(&self, _: &ContainerRequest) -> Result<String, EngineError> {
        Err(Self::read_only())
    }
    fn start_container(&self, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn stop_container(&self, _: &str, _: u32) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn remove_container(&self, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn rename_container(&self, _: &str, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn inspect_container(&self, name: &str) -> Result<Option<ContainerDetails>, EngineError> {
        let (engine, id) = self.located(name)?;
        Ok(engine.inspect_container(&id)?.map(|mut d| {
            d.name = name.to_string();
            d
        }))
    }
    fn exec(&self, _: &str, _: &ExecRequest) -> Result<ExecResult, EngineError> {
        Err(Self::read_only())
    }
    fn write_file(&self, _: &str, _: &str, _: &[u8], _: u32) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
}
