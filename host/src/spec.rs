//! What a plugin asks for, in the host's own terms. Each WIT version's glue
//! (`runtime::wit::since_v*`) converts its records into these at the edge, so the
//! policy, the capabilities and the realisers never see a generated binding type.

/// An environment variable; `secret` values are masked in anything logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub container_port: u16,
    /// A fixed host port; `None` lets the engine choose.
    pub host_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The volume's short name (`data`), never a host path.
    pub volume: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub command: Vec<String>,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub retries: u32,
    pub start_period_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFile {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
    pub secret: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory_mb: Option<u32>,
    pub cpu_millis: Option<u32>,
    pub pids: Option<u32>,
}

/// One workload as a plugin describes it: what it needs, not how it is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The workload's short name, e.g. `server`.
    pub name: String,
    /// `None`: one container under the workload's name; `Some(n)`: n replicas.
    pub replicas: Option<u32>,
    pub image: String,
    pub env: Vec<EnvVar>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub ports: Vec<Port>,
    pub mounts: Vec<Mount>,
    pub files: Vec<ContainerFile>,
    pub health: Option<HealthCheck>,
    pub resources: Option<Resources>,
    pub user: Option<String>,
    pub aliases: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub stop_timeout_ms: Option<u32>,
    /// The service's name is one of the workload's DNS names (WIT 0.2; always for 0.1).
    pub answers_for_service: bool,
    /// Where each instance answers 2xx while healthy, for collectors to probe (WIT 0.2).
    pub http_health: Option<HttpEndpoint>,
}

/// An HTTP endpoint of a container: its port and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpoint {
    pub port: u16,
    pub path: String,
}

impl ContainerSpec {
    /// A spec with only a name and an image, for tests and defaults.
    pub fn new(name: &str, image: &str) -> Self {
        ContainerSpec {
            name: name.to_string(),
            image: image.to_string(),
            command: None,
            entrypoint: None,
            env: Vec::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
            files: Vec::new(),
            health: None,
            resources: None,
            user: None,
            aliases: Vec::new(),
            labels: Vec::new(),
            replicas: None,
            stop_timeout_ms: None,
            answers_for_service: true,
            http_health: None,
        }
    }
}

/// How a command runs inside one of the service's containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub env: Vec<EnvVar>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub stdin: Option<Vec<u8>>,
}
