//! `[environments.NAME]` and `[registry]`: where and how an environment runs, with
//! its defaults.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::tls::{self, EngineAddress, TlsError, TlsFile, TlsFiles};
use crate::limits::HookLimits;
use crate::policy::ContainerDefaults;

use super::*;

/// `[environments.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Where published ports listen on the host.
    #[serde(default = "localhost")]
    pub bind_address: IpAddr,
    /// Sandbox limits per hook call.
    #[serde(default)]
    pub limits: HookLimits,
    /// Default resource limits of every container.
    #[serde(default)]
    pub resources: ResourceDefaults,
    /// Image per service, replacing the plugin's default (e.g. a local build).
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    /// How long a service may take to become ready.
    #[serde(default = "default_readiness_timeout")]
    pub readiness_timeout_secs: u64,
    /// A registry that stands in for Docker Hub, e.g. `registry.local:5000`: every
    /// image that names no registry is pulled from there instead.
    #[serde(default)]
    pub mirror: Option<String>,
    /// Host ports below 1024 that services of this environment may publish on (e.g. a
    /// load balancer on 80). Without it a privileged host port is refused.
    #[serde(default)]
    pub privileged_host_ports: Vec<u16>,
    /// What runs the services: one Docker engine, or a Docker Swarm cluster.
    #[serde(default)]
    pub target: Target,
    /// The engine to talk to (`tcp://10.0.0.5:2375`, `unix:///…`); `DOCKER_HOST` or
    /// the local socket when unset. On Swarm, a manager.
    #[serde(default)]
    pub engine: Option<String>,
    /// Swarm: where published ports answer (`mesh`: every node, needs IPVS; `host`:
    /// the node running the task).
    #[serde(default = "mesh")]
    pub routing: crate::engine::cluster::Routing,
    /// Swarm: a placement constraint per service, e.g. `{ db = "node.labels.disk==ssd" }`.
    #[serde(default)]
    pub placement: BTreeMap<String, String>,
    /// Swarm: encrypt the project network's traffic between nodes (IPsec). On by
    /// default; off only where the nodes' kernels cannot (nested test engines).
    #[serde(default = "yes")]
    pub encrypted_network: bool,
    /// The engine is behind TLS, verified both ways as `docker --tlsverify` does; the
    /// files as Docker names them. Without it, Docker's own `DOCKER_TLS_VERIFY` and
    /// `DOCKER_CERT_PATH` decide.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

/// `tls` of an environment: `{ cert_path = "…" }` (a folder with `ca.pem`,
/// `cert.pem` and `key.pem`, as `DOCKER_CERT_PATH`), or the files one by one (`ca`,
/// `cert`, `key`, as `--tlscacert`, `--tlscert`, `--tlskey`); a file not named is
/// taken from `cert_path`, else from `DOCKER_CERT_PATH` or `~/.docker`. Relative paths
/// are from the folder of provisioner.toml; `~/` is the home folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert_path: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `target` of an environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Plain containers on one engine.
    #[default]
    Docker,
    /// Services of a Docker Swarm cluster.
    Swarm,
}

fn mesh() -> crate::engine::cluster::Routing {
    crate::engine::cluster::Routing::Mesh
}

fn localhost() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

fn default_readiness_timeout() -> u64 {
    DEFAULT_READINESS_TIMEOUT_SECS
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            bind_address: localhost(),
            limits: HookLimits::default(),
            resources: ResourceDefaults::default(),
            images: BTreeMap::new(),
            readiness_timeout_secs: default_readiness_timeout(),
            mirror: None,
            privileged_host_ports: Vec::new(),
            target: Target::Docker,
            engine: None,
            routing: mesh(),
            placement: BTreeMap::new(),
            encrypted_network: true,
            tls: None,
        }
    }
}

/// `[environments.NAME.resources]`: limits every container gets unless its plugin
/// asks for other values (which are still capped by the `max_*` ones).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceDefaults {
    pub memory_mb: u32,
    pub cpu_millis: u32,
    pub pids: u32,
    pub max_memory_mb: u32,
    pub max_cpu_millis: u32,
    pub max_pids: u32,
    /// What all containers of one service may ask for together (every replica of
    /// every workload).
    pub max_service_memory_mb: u32,
    pub max_service_cpu_millis: u32,
    /// What all services run by one plugin may ask for together.
    pub max_plugin_memory_mb: u32,
    pub max_plugin_cpu_millis: u32,
}

impl Default for ResourceDefaults {
    /// The CPU ceiling is this machine's CPUs: a fixed 8000m would promise eight
    /// CPUs on a two-core laptop. The default share stays within it.
    fn default() -> Self {
        let max_cpu_millis = machine_cpu_millis().unwrap_or(8000);
        ResourceDefaults {
            memory_mb: 1024,
            cpu_millis: 2000.min(max_cpu_millis),
            pids: 1024,
            max_memory_mb: 8192,
            max_cpu_millis,
            max_pids: 8192,
            // Limits are ceilings, not reservations: a few times the machine, never
            // 64 times the per-container maximum.
            max_service_memory_mb: 32_768,
            max_service_cpu_millis: max_cpu_millis.saturating_mul(8),
            max_plugin_memory_mb: 65_536,
            max_plugin_cpu_millis: max_cpu_millis.saturating_mul(16),
        }
    }
}

/// The CPUs this process may use (affinity and cgroup quota included), in millis.
fn machine_cpu_millis() -> Option<u32> {
    let cpus = std::thread::available_parallelism().ok()?.get();
    Some(u32::try_from(cpus).unwrap_or(u32::MAX).saturating_mul(1000).max(MIN_CPU_MILLIS))
}

impl ResourceDefaults {
    /// Each field below the smallest value the host applies, with that minimum and
    /// its unit. The ceilings count too: a ceiling below the minimum leaves no valid
    /// value at all.
    pub(super) fn below_minimum(&self) -> Vec<(&'static str, u32, u32, &'static str)> {
        [
            ("memory_mb", self.memory_mb, MIN_MEMORY_MB, "MB"),
            ("max_memory_mb", self.max_memory_mb, MIN_MEMORY_MB, "MB"),
            ("cpu_millis", self.cpu_millis, MIN_CPU_MILLIS, "millis"),
            ("max_cpu_millis", self.max_cpu_millis, MIN_CPU_MILLIS, "millis"),
            ("pids", self.pids, MIN_PIDS, "pids"),
            ("max_pids", self.max_pids, MIN_PIDS, "pids"),
            ("max_service_memory_mb", self.max_service_memory_mb, MIN_MEMORY_MB, "MB"),
            ("max_service_cpu_millis", self.max_service_cpu_millis, MIN_CPU_MILLIS, "millis"),
            ("max_plugin_memory_mb", self.max_plugin_memory_mb, MIN_MEMORY_MB, "MB"),
            ("max_plugin_cpu_millis", self.max_plugin_cpu_millis, MIN_CPU_MILLIS, "millis"),
        ]
        .into_iter()
        .filter(|(_, value, min, _)| value < min)
        .collect()
    }
}

impl Environment {
    /// The engine this environment runs on and how to reach it: `engine`, else
    /// `DOCKER_HOST`; over TLS when `tls` says so, else when Docker's own variables do.
    /// `None` when neither names an engine (the local socket, for a `docker` target).
    /// `name` is the environment's, `root` the folder of provisioner.toml, `var` reads
    /// a process environment variable.
    pub fn engine_address(&self, name: &str, root: &Path, var: &dyn Fn(&str) -> Option<String>) -> Result<Option<EngineAddress>, TlsError> {
        let address = self.engine.clone().or_else(|| var("DOCKER_HOST").filter(|a| !a.is_empty()));
        let setting = |key: &str| format!("tls.{key} of [environments.{name}]");
        let Some(settings) = &self.tls else {
            return match address {
                Some(address) => Ok(Some(EngineAddress { tls: tls::from_docker_env(&address, var)?, address })),
                None => Ok(None),
            };
        };
        let address = match address {
            Some(address) if tls::is_tcp(&address) => address,
            other => {
                return Err(TlsError::NotTcp {
                    address: other.unwrap_or_else(|| "(none: no `engine` nor DOCKER_HOST, so the local socket)".into()),
                    named_by: format!("`tls` of [environments.{name}]"),
                })
            }
        };
        let home = |path: &Path| -> PathBuf {
            match (path.strip_prefix("~"), var("HOME")) {
                (Ok(rest), Some(home)) => Path::new(&home).join(rest),
                _ => root.join(path),
            }
        };
        let folder = match &settings.cert_path {
            Some(path) => Some((home(path), setting("cert_path"))),
            None => tls::default_folder(var),
        };
        let file = |explicit: &Option<PathBuf>, key: &str, default: &str| -> Result<TlsFile, TlsError> {
            match (explicit, &folder) {
                (Some(path), _) => Ok(TlsFile { path: home(path), named_by: setting(key) }),
                (None, Some((dir, named_by))) => Ok(TlsFile { path: dir.join(default), named_by: named_by.clone() }),
                (None, None) => Err(TlsError::NoFolder { named_by: format!("`tls` of [environments.{name}]") }),
            }
        };
        let files = TlsFiles { ca: file(&settings.ca, "ca", "ca.pem")?, cert: file(&settings.cert, "cert", "cert.pem")?, key: file(&settings.key, "key", "key.pem")? };
        Ok(Some(EngineAddress { address, tls: Some(files) }))
    }

    pub fn container_defaults(&self) -> ContainerDefaults {
        ContainerDefaults {
            bind_address: self.bind_address,
            resources: self.resources.clone(),
            mirror: self.mirror.clone(),
            other_services: Vec::new(),
            privileged_host_ports: self.privileged_host_ports.clone(),
        }
    }
}

/// `[registry]`: where `provisioner plugins install` looks, and whose signatures it
/// accepts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// A folder (relative to provisioner.toml) or an http(s) base URL.
    pub url: Option<String>,
    /// Public keys whose signatures are accepted, as `ed25519:BASE64`.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Refuse artifacts without a valid signature by a trusted key. On by default:
    /// turning it off is a deliberate choice in the file.
    #[serde(default = "yes")]
    pub require_signatures: bool,
    /// OCI registries (`host:port`) spoken to over plain HTTP. Loopback ones always
    /// are; any other only when listed here.
    #[serde(default)]
    pub insecure: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings { url: None, trusted_keys: Vec::new(), require_signatures: true, insecure: Vec::new() }
    }
}
