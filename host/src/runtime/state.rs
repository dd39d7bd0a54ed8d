//! What one hook call can reach: the service it acts for, the capabilities it has,
//! and what it reported. A fresh `HookState` (and `Store`) is made for every call.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::{HookLimits, Limiter};
use super::stderr::StderrTail;
use crate::capabilities::{Denial, Effective, Refusal};
use crate::engine::{ContainerEngine, Unavailable};

/// The service a hook acts for: the names every resource it makes is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub project: String,
    pub environment: String,
    pub service: String,
    pub plugin: String,
}

/// Container defaults and ceilings from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDefaults {
    /// Where published ports listen on the host.
    pub bind_address: IpAddr,
    pub memory_mb: u32,
    pub cpu_millis: u32,
    pub pids: u32,
    pub max_memory_mb: u32,
    pub max_cpu_millis: u32,
    pub max_pids: u32,
    /// Registry that stands in for Docker Hub (`registry.local:5000`), for machines
    /// that cannot reach it.
    pub mirror: Option<String>,
}

impl Default for ContainerDefaults {
    fn default() -> Self {
        ContainerDefaults {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            memory_mb: 1024,
            cpu_millis: 2000,
            pids: 1024,
            max_memory_mb: 8192,
            max_cpu_millis: 8000,
            max_pids: 8192,
            mirror: None,
        }
    }
}

/// Called with each progress message of a hook.
pub type ProgressSink = Arc<dyn Fn(&Scope, &str) + Send + Sync>;

/// Everything about one service that outlives a single hook call.
pub struct ServiceHost {
    pub scope: Scope,
    pub effective: Effective,
    pub engine: Arc<dyn ContainerEngine>,
    pub defaults: ContainerDefaults,
    /// The service's own folder, preopened as `/state` with `state-files`.
    pub state_dir: Option<PathBuf>,
    /// Where the service's secrets are kept, with `secrets`.
    pub secrets_dir: Option<PathBuf>,
    /// Host addresses of the service's own published ports, and its own containers'
    /// addresses with port 0 (any port): the only places `net-probe` may connect to.
    /// Filled in as containers are inspected.
    pub probe_targets: Arc<Mutex<HashSet<SocketAddr>>>,
    pub progress: Option<ProgressSink>,
    /// Sandbox limits of each hook call for this service.
    pub limits: HookLimits,
}

impl ServiceHost {
    /// A host for calls that must not touch anything, such as `describe` and
    /// `validate`: no capabilities, no engine, no files.
    pub fn sealed(plugin: &str, limits: HookLimits) -> Self {
        ServiceHost {
            scope: Scope { project: String::new(), environment: String::new(), service: String::new(), plugin: plugin.to_string() },
            effective: Effective::new(plugin, Vec::new(), Default::default()),
            engine: Arc::new(Unavailable { reason: "this hook may not use the container engine".into() }),
            defaults: ContainerDefaults::default(),
            state_dir: None,
            secrets_dir: None,
            probe_targets: Arc::default(),
            progress: None,
            limits,
        }
    }
}

/// Where a hook's time went inside the container engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    pub pull: std::time::Duration,
    pub create: std::time::Duration,
    pub start: std::time::Duration,
}

pub struct HookState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) host: Arc<ServiceHost>,
    pub(crate) denials: Vec<Denial>,
    pub(crate) phases: Phases,
    secret_values: Vec<String>,
}

impl HookState {
    pub fn new(host: Arc<ServiceHost>, stderr: StderrTail, limits: &HookLimits) -> anyhow::Result<Self> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr);
        crate::capabilities::files::configure(&mut wasi, &host)?;
        crate::capabilities::net::configure(&mut wasi, &host);
        Ok(HookState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits),
            host,
            denials: Vec::new(),
            phases: Phases::default(),
            secret_values: Vec::new(),
        })
    }

    /// Remember a secret this hook has seen, so it is masked in anything logged.
    pub(crate) fn remember_secret(&mut self, value: &str) {
        if !value.is_empty() && !self.secret_values.iter().any(|v| v == value) {
            self.secret_values.push(value.to_string());
        }
    }

    /// `text` with every secret this hook has seen replaced by `***`, cut to `max` bytes.
    pub(crate) fn mask(&self, text: &str, max: usize) -> String {
        let mut text = text.to_string();
        for secret in &self.secret_values {
            text = text.replace(secret.as_str(), "***");
        }
        if text.len() > max {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        text
    }

    /// Record a refusal against this service and turn it into the guest's error.
    pub(crate) fn deny(&mut self, refusal: Refusal) -> String {
        let scope = &self.host.scope;
        tracing::warn!(
            plugin = %scope.plugin,
            service = %scope.service,
            capability = refusal.capability,
            argument = %refusal.argument,
            "denied: {}",
            refusal.message
        );
        self.denials.push(Denial {
            plugin: scope.plugin.clone(),
            service: scope.service.clone(),
            capability: refusal.capability.to_string(),
            argument: refusal.argument,
            message: refusal.message.clone(),
        });
        refusal.message
    }
}

impl WasiView for HookState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl crate::runtime::bindings::v0_1::types::Host for HookState {}
