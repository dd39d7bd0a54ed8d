//! What one service's hooks can reach ([`ServiceHost`]), and what one hook call
//! reports along the way ([`HostCalls`]). The WIT glue of every version calls into
//! [`HostCalls`]; the runtime makes a fresh one for every call.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime_wasi::WasiCtxBuilder;

use super::{Denial, Effective, Refusal};
use crate::engine::{EngineError, Unavailable};
use crate::limits::HookLimits;
use crate::naming::Scope;
use crate::policy::ContainerDefaults;
use crate::realise::{Containers, Phases, Realiser, RecordedWorkload};

/// Called with each progress message of a hook.
pub type ProgressSink = Arc<dyn Fn(&Scope, &str) + Send + Sync>;

/// Everything about one service that outlives a single hook call.
#[derive(Clone)]
pub struct ServiceHost {
    pub scope: Scope,
    pub effective: Effective,
    /// The target the service's workloads are realised on.
    pub realiser: Arc<dyn Realiser>,
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
    /// What the operation's services have asked for so far, shared by all of them.
    pub totals: Arc<crate::totals::Totals>,
    /// The backup being written or read, during `backup` and `restore` only.
    pub archive: Option<Arc<super::archive::ArchiveSession>>,
    /// The other services' metrics endpoints, for a plugin holding `scrape-targets`.
    pub scrape_targets: Arc<Vec<super::monitoring::ScrapeTarget>>,
    /// The probe targets last answered to this service's `monitoring.probe-targets`
    /// in this operation (`None`: it did not ask).
    pub probes_seen: Arc<Mutex<Option<Vec<super::monitoring::ProbeTarget>>>>,
    /// Replaces the stop timeout of the containers the plugin removes (`None`: each
    /// container's own). A full teardown sets 0 for a service nothing can reach any more.
    pub stop_grace_secs: Option<u32>,
}

impl ServiceHost {
    /// A host for calls that must not touch anything, such as `describe` and
    /// `validate`: no capabilities, no engine, no files.
    pub fn sealed(plugin: &str, limits: HookLimits) -> Self {
        let engine = Arc::new(Unavailable { reason: "this hook may not use the container engine".into() });
        ServiceHost {
            scope: Scope { project: String::new(), environment: String::new(), service: String::new(), plugin: plugin.to_string() },
            effective: Effective::new(plugin, Vec::new(), Default::default()),
            realiser: Arc::new(Containers::new(engine)),
            defaults: ContainerDefaults::default(),
            state_dir: None,
            secrets_dir: None,
            probe_targets: Arc::default(),
            progress: None,
            limits,
            totals: Arc::default(),
            archive: None,
            scrape_targets: Arc::default(),
            probes_seen: Arc::default(),
            stop_grace_secs: None,
        }
    }

    /// Each capability pushes its own WASI configuration (preopens, socket checks)
    /// into the builder of a hook call's sandbox.
    pub fn configure_wasi(&self, wasi: &mut WasiCtxBuilder) -> anyhow::Result<()> {
        super::files::configure(wasi, self)?;
        super::net::configure(wasi, self);
        Ok(())
    }

    pub fn note(&self, message: &str) {
        if let Some(sink) = &self.progress {
            sink(&self.scope, message);
        }
    }
}

/// Why a host call failed, in the host's terms; each WIT version's glue maps it to its
/// own `error` variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Engine(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

impl From<EngineError> for HostError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::NotFound(m) => HostError::NotFound(m),
            EngineError::Conflict(m) => HostError::Conflict(m),
            EngineError::Failed(m) => HostError::Engine(m),
        }
    }
}

/// The host side of one hook call: the service's capabilities, and what the call
/// reported (denials, where its engine time went, the secrets it has seen).
pub struct HostCalls {
    pub host: Arc<ServiceHost>,
    pub denials: Vec<Denial>,
    pub phases: Phases,
    /// Every workload `ensure` realised, for state.json and `plan`.
    pub workloads: Vec<RecordedWorkload>,
    secret_values: Vec<String>,
    log_bytes: usize,
    /// Log messages dropped once the budget was spent.
    pub log_dropped: u64,
    /// The host calls made, each with how it ended (`plugins call` shows them).
    pub trace: Vec<String>,
}

/// Most host calls a hook's trace keeps.
const MAX_TRACE: usize = 500;

/// What one hook call may write to the host's log.
const LOG_BUDGET_BYTES: usize = 1 << 20;

impl HostCalls {
    /// Note one host call and how it ended. Never a secret: calls are named by their
    /// arguments' names, and outcomes by kind.
    pub fn trace<T>(&mut self, call: impl FnOnce() -> String, result: &Result<T, HostError>, outcome: impl FnOnce(&T) -> String) {
        if self.trace.len() < MAX_TRACE {
            let ended = match result {
                Ok(value) => outcome(value),
                Err(error) => format!("error: {}", crate::text::printable(&error.to_string(), 300, false)),
            };
            self.trace.push(format!("{} → {ended}", call()));
        }
    }

    pub fn new(host: Arc<ServiceHost>) -> Self {
        HostCalls {
            host,
            denials: Vec::new(),
            phases: Phases::default(),
            workloads: Vec::new(),
            secret_values: Vec::new(),
            log_bytes: 0,
            log_dropped: 0,
            trace: Vec::new(),
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.host.scope
    }

    /// Remember a secret this hook has seen, so it is masked in anything logged.
    pub fn remember_secret(&mut self, value: &str) {
        if !value.is_empty() && !self.secret_values.iter().any(|v| v == value) {
            self.secret_values.push(value.to_string());
        }
    }

    /// `text` with every secret this hook has seen replaced by `***`, without control
    /// characters (newlines kept when `multiline`), cut to `max` bytes.
    pub fn mask(&self, text: &str, max: usize, multiline: bool) -> String {
        crate::text::printable(&crate::text::mask_secrets(text, &self.secret_values), max, multiline)
    }

    /// Whether a log message of `bytes` still fits the call's log budget; the first
    /// one that does not says so, and the call's end reports how much was dropped.
    pub fn within_log_budget(&mut self, bytes: usize) -> bool {
        if self.log_bytes.saturating_add(bytes) <= LOG_BUDGET_BYTES {
            self.log_bytes += bytes;
            return true;
        }
        if self.log_dropped == 0 {
            let scope = &self.host.scope;
            tracing::warn!(plugin = %scope.plugin, service = %scope.service, "log budget of {LOG_BUDGET_BYTES} bytes per hook call reached; further messages are dropped");
        }
        self.log_dropped += 1;
        false
    }

    /// Record a refusal against this service and turn it into the guest's error.
    pub fn deny(&mut self, refusal: Refusal) -> HostError {
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
        HostError::Denied(refusal.message)
    }
}
