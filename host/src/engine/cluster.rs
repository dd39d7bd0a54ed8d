//! A cluster engine (Docker Swarm) as the host sees it: services, their tasks, the
//! nodes they run on, and the secrets and configs they mount. Like the container
//! engine, it only carries out fully named, labelled requests; `realise::swarm`
//! decides what they are.

use std::collections::BTreeMap;

use super::{EngineError, HealthRequest};

/// Where a service's published ports answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// The ingress routing mesh and a virtual IP per service: the port answers on
    /// every node. Needs IPVS in the nodes' kernels, as real clusters have.
    Mesh,
    /// The port answers only on the node running the task, and the service name
    /// resolves to its tasks' addresses (DNS round robin). Works without IPVS.
    Host,
}

/// A file mounted from a Docker secret or config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFile {
    /// The secret's or config's name and id.
    pub source: String,
    pub source_id: String,
    pub secret: bool,
    /// Absolute path in the container.
    pub target: String,
    pub uid: String,
    pub mode: u32,
}

/// A Swarm service exactly as it will be created or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRequest {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub health: Option<HealthRequest>,
    pub memory_bytes: u64,
    pub nano_cpus: u64,
    pub pids: u32,
    pub stop_timeout_secs: u32,
    pub network: String,
    pub aliases: Vec<String>,
    /// (engine volume name, target, read-only); created on the node with `labels`.
    pub volumes: Vec<(String, String, bool)>,
    pub files: Vec<MountedFile>,
    /// (container port, published port).
    pub published: Vec<(u16, u16)>,
    pub routing: Routing,
    pub replicas: u64,
    /// Start the new task before stopping the old one (replicas); otherwise the
    /// other way round (a single instance that holds a volume).
    pub start_first: bool,
    pub constraints: Vec<String>,
}

impl ServiceRequest {
    /// As `ContainerRequest::is_confined`: nothing that could reach outside the
    /// tasks' own sandboxes.
    pub fn is_confined(&self) -> bool {
        super::confined(&self.volumes, self.memory_bytes, self.nano_cpus, self.pids)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDetails {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// For updates: the engine refuses one made against an older version.
    pub version: u64,
    pub replicas: u64,
    /// `updating`, `completed`, `rollback_completed`, `paused`, …, if it was updated.
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    /// Its placement constraints (`node.id==…` for one pinned to its volumes' node).
    pub constraints: Vec<String>,
    /// (container port, published port).
    pub published: Vec<(u16, u16)>,
}

/// One task of a service: a container the orchestrator wants on some node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDetails {
    pub id: String,
    /// The id of its service.
    pub service_id: String,
    pub slot: u64,
    pub node_id: String,
    /// The orchestrator wants it running (not shut down or replaced).
    pub desired_running: bool,
    /// `new`, `pending`, `assigned`, …, `running`, `complete`, `failed`, `rejected`, …
    pub state: String,
    pub message: String,
    pub error: Option<String>,
    pub container_id: Option<String>,
    pub exit_code: Option<i64>,
}

impl TaskDetails {
    /// Its container runs: `running`, or `starting` while its health check has not
    /// yet passed (readiness is the plugin's to decide, as on one engine).
    pub fn running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "starting")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDetails {
    pub id: String,
    pub hostname: String,
    /// The address the node's engine is reached at, as the swarm knows it.
    pub address: String,
    pub ready: bool,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    pub labels: BTreeMap<String, String>,
    pub manager: bool,
}

/// What an image runs, as its config says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageCommand {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: String,
}

/// The operations on a swarm manager.
pub trait ClusterEngine: Send + Sync {
    fn describe(&self) -> String;
    /// An error naming the fix unless the engine is a swarm manager.
    fn check_manager(&self) -> Result<(), EngineError>;
    fn nodes(&self) -> Result<Vec<NodeDetails>, EngineError>;

    /// An overlay network only the project's services attach to, its traffic between
    /// nodes encrypted (IPsec) when asked.
    fn ensure_overlay_network(&self, name: &str, labels: &BTreeMap<String, String>, encrypted: bool) -> Result<(), EngineError>;
    fn remove_network(&self, name: &str) -> Result<(), EngineError>;

    /// Create the secret (or config) unless one of that name exists; names carry a
    /// hash of their contents, so an existing one holds the same bytes. Its id.
    fn ensure_object(&self, secret: bool, name: &str, data: &[u8], labels: &BTreeMap<String, String>) -> Result<String, EngineError>;
    /// Secrets (or configs) carrying all of these labels: each one's name and labels.
    fn labelled_objects(&self, secret: bool, labels: &BTreeMap<String, String>) -> Result<Vec<(String, BTreeMap<String, String>)>, EngineError>;
    /// Secrets (or configs) carrying all of these labels, by name.
    fn list_objects(&self, secret: bool, labels: &BTreeMap<String, String>) -> Result<Vec<String>, EngineError> {
        Ok(self.labelled_objects(secret, labels)?.into_iter().map(|(name, _)| name).collect())
    }
    fn remove_object(&self, secret: bool, name: &str) -> Result<(), EngineError>;

    fn inspect_service(&self, name: &str) -> Result<Option<ServiceDetails>, EngineError>;
    fn list_services(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ServiceDetails>, EngineError>;
    fn create_service(&self, request: &ServiceRequest) -> Result<(), EngineError>;
    fn update_service(&self, version: u64, request: &ServiceRequest) -> Result<(), EngineError>;
    /// Change only the number of replicas.
    fn scale_service(&self, name: &str, replicas: u64) -> Result<(), EngineError>;
    fn remove_service(&self, name: &str) -> Result<(), EngineError>;
    /// The tasks of these services (names or ids), in one request.
    fn tasks(&self, services: &[&str]) -> Result<Vec<TaskDetails>, EngineError>;
    /// The image's own entrypoint and command (pulled if missing), to run them behind
    /// a wrapper.
    fn image_command(&self, image: &str) -> Result<ImageCommand, EngineError>;
}
