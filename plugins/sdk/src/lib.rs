//! The provisioner plugin SDK: the bindings of the WIT package
//! `provisioner:plugin@0.1.0` plus a few helpers, so that a plugin is one short file.
//!
//! ```ignore
//! use provisioner_plugin_sdk::*;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn describe() -> PluginInfo { /* name, version, capabilities … */ }
//!     fn validate(config: String) -> Result<(), Vec<ConfigProblem>> { Ok(()) }
//!     fn provision(ctx: Context) -> Result<Vec<Output>, String> { Ok(vec![]) }
//!     fn ready(ctx: Context) -> Result<Readiness, String> { Ok(Readiness::Ready) }
//!     fn teardown(ctx: Context, keep_volumes: bool) -> Result<(), String> { Ok(()) }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the plugin.

wit_bindgen::generate!({
    path: "../../wit/v0.1.0",
    world: "service-plugin",
    pub_export_macro: true,
    export_macro_name: "export_plugin",
    default_bindings_module: "provisioner_plugin_sdk",
});

pub use exports::provisioner::plugin::hooks::Guest as Plugin;
pub use provisioner::plugin::docker::{
    self, ContainerInfo, ContainerSpec, ContainerState, Deployment, EnsureOutcome, EnvVar,
    ContainerFile, ExecOptions, ExecOutput, HealthCheck, HealthState, Mount, Port, PublishedPort, Resources,
};
pub use provisioner::plugin::log::{self as host_log, Level};
pub use provisioner::plugin::secrets;
pub use provisioner::plugin::types::{
    Capability, ConfigProblem, Context, Error, KeyValue, Output, PluginInfo, Readiness,
};

/// The WIT version this SDK was generated from; put it in `PluginInfo::wit_version`.
pub const WIT_VERSION: &str = "0.1.0";

/// Parse a service's `config` JSON into `T`, naming the offending key on failure.
/// Use `#[serde(deny_unknown_fields)]` on `T` so typos are reported too.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, Vec<ConfigProblem>> {
    let mut de = serde_json::Deserializer::from_str(config);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let key = err.path().to_string();
        let key = if key == "." { String::new() } else { key };
        vec![ConfigProblem { key, message: err.into_inner().to_string() }]
    })
}

/// Log at info level.
pub fn info(message: &str) {
    host_log::log(Level::Info, message);
}

/// Log at warn level.
pub fn warn(message: &str) {
    host_log::log(Level::Warn, message);
}

/// Log at debug level.
pub fn debug(message: &str) {
    host_log::log(Level::Debug, message);
}

/// Show what a long step is doing on the service's progress line.
pub fn progress(message: &str) {
    host_log::progress(message);
}

impl Output {
    /// An output the user may see, e.g. a host name.
    pub fn plain(name: &str, value: impl Into<String>) -> Self {
        Output { name: name.to_string(), value: value.into(), secret: false, network_value: None }
    }

    /// An output holding a credential: written to `.env`, never shown.
    pub fn secret(name: &str, value: impl Into<String>) -> Self {
        Output { name: name.to_string(), value: value.into(), secret: true, network_value: None }
    }

    /// The value as other containers on the project network reach it (see the WIT).
    pub fn on_network(mut self, value: impl Into<String>) -> Self {
        self.network_value = Some(value.into());
        self
    }
}

impl EnvVar {
    pub fn plain(name: &str, value: impl Into<String>) -> Self {
        EnvVar { name: name.to_string(), value: value.into(), secret: false }
    }

    pub fn secret(name: &str, value: impl Into<String>) -> Self {
        EnvVar { name: name.to_string(), value: value.into(), secret: true }
    }
}

impl ContainerSpec {
    /// A spec for one container (not replicated) with everything else empty; fill in
    /// what you need.
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
        }
    }
}

impl ExecOptions {
    pub fn none() -> Self {
        ExecOptions { env: Vec::new(), user: None, workdir: None, stdin: None }
    }
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl ContainerInfo {
    /// The exit code (-1 when the engine has none) if the container has stopped:
    /// a server in that state will not come up by waiting.
    pub fn stopped(&self) -> Option<i32> {
        matches!(self.state, ContainerState::Exited | ContainerState::Dead).then(|| self.exit_code.unwrap_or(-1))
    }

    /// `host:port` where `container_port` is published, if it is.
    pub fn published(&self, container_port: u16) -> Option<String> {
        self.ports
            .iter()
            .find(|p| p.container_port == container_port)
            .map(|p| format!("{}:{}", p.host_ip, p.host_port))
    }
}

/// Waiting and probing helpers for `provision` and `ready`.
pub mod wait {
    use std::time::{Duration, Instant};

    /// Call `attempt` every `every` until it succeeds or `timeout` passes; the error
    /// is the last attempt's.
    pub fn until<T>(timeout: Duration, every: Duration, mut attempt: impl FnMut() -> Result<T, String>) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(e) if Instant::now() >= deadline => return Err(format!("gave up after {timeout:?}: {e}")),
                Err(_) => std::thread::sleep(every),
            }
        }
    }

    /// [`until`], for a server that must stay up meanwhile: when an attempt fails and
    /// the service's container `name` has stopped, give up at once, with its exit code
    /// (a server that exited will not come up by waiting).
    pub fn until_up(name: &str, timeout: Duration, every: Duration, mut attempt: impl FnMut() -> Result<(), String>) -> Result<(), String> {
        let mut exited = None;
        until(timeout, every, || match attempt() {
            Ok(()) => Ok(()),
            Err(e) => match crate::docker::inspect(name).ok().and_then(|info| info.stopped()) {
                Some(code) => {
                    exited = Some(code);
                    Ok(())
                }
                None => Err(e),
            },
        })?;
        match exited {
            Some(code) => Err(format!("the server exited with code {code} during start-up")),
            None => Ok(()),
        }
    }
}

/// TCP to the service's own published ports (needs the `net-probe` capability).
pub mod probe {
    use std::io;
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    /// Connect to `addr` (`host:port`) with read and write timeouts, so a server
    /// that accepts but never answers cannot hang the hook.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
        let addr: SocketAddr = addr.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
        let stream = match TcpStream::connect_timeout(&addr, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => TcpStream::connect(addr)?,
            other => other?,
        };
        for result in [stream.set_read_timeout(Some(timeout)), stream.set_write_timeout(Some(timeout))] {
            match result {
                Err(e) if e.kind() != io::ErrorKind::Unsupported => return Err(e),
                _ => {}
            }
        }
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// `GET path` over HTTP/1.1 at `addr` (`host:port`); the answer's status code.
    pub fn http_status(addr: &str, path: &str, timeout: Duration) -> Result<u16, String> {
        use std::io::{Read, Write};
        let mut stream = connect(addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: provisioner\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).map_err(|e| format!("send to {addr}: {e}"))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).map_err(|e| format!("receive from {addr}: {e}"))?;
            if n == 0 {
                return Err(format!("{addr} closed the connection without answering"));
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > 8192 {
                return Err(format!("{addr} sent no HTTP status line"));
            }
        }
        let text = String::from_utf8_lossy(&head);
        let line = text.lines().next().unwrap_or("");
        line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("not an HTTP answer from {addr}: {line}"))
    }
}

/// Small files in the service's own state folder (needs `state-files`).
pub mod state {
    const DIR: &str = "/state";

    pub fn read(name: &str) -> Option<String> {
        std::fs::read_to_string(format!("{DIR}/{name}")).ok()
    }

    pub fn write(name: &str, contents: &str) -> Result<(), String> {
        std::fs::write(format!("{DIR}/{name}"), contents).map_err(|e| format!("writing {DIR}/{name}: {e}"))
    }

    pub fn remove(name: &str) {
        let _ = std::fs::remove_file(format!("{DIR}/{name}"));
    }
}

/// `Ok` when `result` succeeded or failed only because the thing was already gone.
pub fn gone_is_fine(result: Result<(), Error>) -> Result<(), String> {
    match result {
        Ok(()) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
