//! The container engine as the host sees it: a handful of primitive operations on
//! fully named, fully labelled resources. Policy (names, labels, ownership, limits)
//! is decided before a request gets here, in `capabilities::docker`; an engine only
//! carries requests out.

pub mod cluster;
mod docker;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
pub mod tls;
mod unavailable;

pub use cluster::ClusterEngine;
pub use docker::Docker;
pub use tls::{EngineAddress, TlsFiles};
pub use unavailable::Unavailable;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Why an engine operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Failed(String),
}

/// A container exactly as it will be created. Built only by
/// `capabilities::docker::container_request`, which applies the invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRequest {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    /// (container port, host address, host port or 0 for any)
    pub ports: Vec<(u16, IpAddr, u16)>,
    /// (engine volume name, target path, read-only)
    pub volumes: Vec<(String, String, bool)>,
    pub network: String,
    pub aliases: Vec<String>,
    /// (path, contents, mode): written after create, before the first start.
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// The names of env vars and the paths of files that hold credentials: a target
    /// that can keep them out of the workload's visible definition does (Swarm).
    pub secrets: BTreeSet<String>,
    pub user: Option<String>,
    pub health: Option<HealthRequest>,
    pub memory_bytes: u64,
    pub nano_cpus: u64,
    pub pids: u32,
    pub stop_timeout_secs: u32,
}

impl ContainerRequest {
    /// Whether anything in the request could reach outside the container's own
    /// sandbox. Engines must refuse such a request; `container_request` never builds
    /// one, and this is asserted again right before the engine call.
    pub fn is_confined(&self) -> bool {
        confined(&self.volumes, self.memory_bytes, self.nano_cpus, self.pids)
    }
}

/// Named volumes only (no host path), and every limit set: what every engine request
/// must be before it is carried out.
pub fn confined(volumes: &[(String, String, bool)], memory_bytes: u64, nano_cpus: u64, pids: u32) -> bool {
    volumes.iter().all(|(source, _, _)| !source.starts_with('/') && !source.contains(".."))
        && memory_bytes > 0
        && nano_cpus > 0
        && pids > 0
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRequest {
    pub command: Vec<String>,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub retries: u32,
    pub start_period_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Removing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

/// A container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDetails {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: State,
    pub health: Option<Health>,
    pub exit_code: Option<i32>,
    /// The kernel's out-of-memory killer stopped it (its memory limit was reached).
    pub oom_killed: bool,
    /// The cluster node it runs on (none on a single engine).
    pub node: Option<String>,
    /// (container port, host address, host port)
    pub ports: Vec<(u16, String, u16)>,
    pub address: Option<String>,
}

#[cfg(test)]
impl ContainerDetails {
    /// A container for unit tests: `name` with `labels` in `state`, nothing else.
    pub fn for_test(name: &str, labels: BTreeMap<String, String>, state: State) -> Self {
        ContainerDetails {
            id: format!("id-{name}"),
            name: name.into(),
            image: String::new(),
            labels,
            state,
            health: None,
            exit_code: None,
            oom_killed: false,
            node: None,
            ports: Vec::new(),
            address: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDetails {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub stdin: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The primitive operations. Every call names resources by their full engine name.
/// Calls block; the host runs each hook on its own thread.
pub trait ContainerEngine: Send + Sync {
    /// A short description for messages, e.g. `unix:///var/run/docker.sock`.
    fn describe(&self) -> String;

    /// Create the network if missing (labelled as given); return its name.
    fn ensure_network(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError>;
    fn remove_network(&self, name: &str) -> Result<(), EngineError>;

    fn inspect_volume(&self, name: &str) -> Result<Option<VolumeDetails>, EngineError>;
    fn create_volume(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError>;
    fn remove_volume(&self, name: &str) -> Result<(), EngineError>;
    /// Volumes carrying all of these labels.
    fn list_volumes(&self, labels: &BTreeMap<String, String>) -> Result<Vec<VolumeDetails>, EngineError>;

    /// Make the image available locally, pulling it if needed; `progress` gets
    /// short human-readable updates.
    fn ensure_image(&self, image: &str, progress: &mut dyn FnMut(&str)) -> Result<(), EngineError>;

    fn create_container(&self, request: &ContainerRequest) -> Result<String, EngineError>;
    fn start_container(&self, name: &str) -> Result<(), EngineError>;
    fn stop_container(&self, name: &str, timeout_secs: u32) -> Result<(), EngineError>;
    fn remove_container(&self, name: &str) -> Result<(), EngineError>;
    /// Several containers, as `remove_container` each but with `stop_grace_secs` (when
    /// given) in place of each one's own stop timeout. The Docker engine stops them
    /// side by side, so removing N replicas takes one stop timeout, not N.
    fn remove_containers(&self, names: &[String], stop_grace_secs: Option<u32>) -> Result<(), EngineError> {
        let _ = stop_grace_secs;
        names.iter().try_for_each(|name| self.remove_container(name))
    }
    /// Give a container another name (it keeps running), e.g. to start its
    /// replacement under the old name before it goes.
    fn rename_container(&self, name: &str, new_name: &str) -> Result<(), EngineError>;
    fn inspect_container(&self, name: &str) -> Result<Option<ContainerDetails>, EngineError>;
    /// Containers (running or not) carrying all of these labels.
    fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerDetails>, EngineError>;

    fn exec(&self, name: &str, request: &ExecRequest) -> Result<ExecResult, EngineError>;
    fn write_file(&self, name: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), EngineError>;
    /// `exec` for bulk data: standard input read from `stdin` (when given, in place of
    /// `request.stdin`) as the command takes it, standard output written to `stdout` as
    /// it comes, so neither is ever held whole. The result's `stdout` is empty. The
    /// default buffers both, which only a test engine may do.
    fn exec_streaming(
        &self,
        name: &str,
        request: &ExecRequest,
        stdin: Option<&mut dyn std::io::Read>,
        stdout: &mut dyn std::io::Write,
    ) -> Result<ExecResult, EngineError> {
        let mut request = request.clone();
        if let Some(reader) = stdin {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).map_err(|e| EngineError::Failed(format!("reading the command's input: {e}")))?;
            request.stdin = Some(bytes);
        }
        let mut result = self.exec(name, &request)?;
        stdout.write_all(&result.stdout).map_err(|e| EngineError::Failed(format!("writing the command's output: {e}")))?;
        result.stdout.clear();
        Ok(result)
    }
    /// Send a signal (`SIGHUP`, `HUP`, `1`) to a container's main process.
    fn signal(&self, name: &str, signal: &str) -> Result<(), EngineError> {
        let _ = (name, signal);
        Err(EngineError::Failed(format!("{} cannot send signals", self.describe())))
    }
    /// Several files (path, contents, mode), as `write_file` each. The Docker engine
    /// sends each folder's files in one archive: every upload costs dockerd a re-exec
    /// of itself to unpack it.
    fn write_files(&self, name: &str, files: &[(String, Vec<u8>, u32)]) -> Result<(), EngineError> {
        files.iter().try_for_each(|(path, contents, mode)| self.write_file(name, path, contents, *mode))
    }
    fn logs(&self, name: &str, lines: u32) -> Result<String, EngineError>;
    /// A container's log, line by line with the engine's timestamps, handed to `line`
    /// as it comes; with `follow`, until the container stops or `line` returns false.
    /// Engines without timestamps give an empty one.
    fn stream_logs(&self, name: &str, options: &LogOptions, line: &mut dyn FnMut(LogLine) -> bool) -> Result<(), EngineError> {
        let text = self.logs(name, options.tail.unwrap_or(10_000))?;
        for text in text.lines() {
            if !line(LogLine { timestamp: String::new(), stderr: false, text: text.to_string() }) {
                break;
            }
        }
        Ok(())
    }
}

/// What `stream_logs` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only lines written since this Unix time (seconds).
    pub since: Option<i64>,
    /// Only the last N lines (before following).
    pub tail: Option<u32>,
    pub follow: bool,
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// RFC 3339 with nanoseconds, as the engine stamps it (sorts as text).
    pub timestamp: String,
    pub stderr: bool,
    pub text: String,
}
