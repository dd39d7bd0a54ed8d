//! The sandboxed component runtime: one wasmtime `Engine` for the process, a fresh
//! `Store` per hook call with a memory cap, a fuel budget and an epoch deadline, and
//! an on-disk cache of precompiled components.

pub mod cache;
pub mod limits;
pub mod state;
pub mod stderr;
pub mod wit;

/// The WIT glue, under its former name.
pub use self::wit as bindings;
pub use crate::naming::is_valid_name;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use self::cache::{sha256_hex, CacheOutcome, ComponentCache};
use self::limits::HookLimits;
use self::state::{HookState, ServiceHost};
use self::stderr::StderrTail;
use crate::capabilities::{Capability, Denial};

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// How long past its deadline a hook blocked in a host call is waited for.
const HOST_CALL_GRACE: Duration = Duration::from_secs(1);
/// Limits of `describe` and `validate`.
const INSPECTION_FUEL: u64 = 5_000_000_000;
const INSPECTION_TIMEOUT_MS: u64 = 5_000;
/// Lines of guest stderr shown with a failure.
const STDERR_LINES: usize = 20;

/// The hooks of the WIT `hooks` interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hook {
    Describe,
    Validate,
    Provision,
    Ready,
    Teardown,
    Backup,
    DataSummary,
    Restore,
    Notices,
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hook::Describe => "describe",
            Hook::Validate => "validate",
            Hook::Provision => "provision",
            Hook::Ready => "ready",
            Hook::Teardown => "teardown",
            Hook::Backup => "backup",
            Hook::DataSummary => "data-summary",
            Hook::Restore => "restore",
            Hook::Notices => "notices",
        })
    }
}

/// What a plugin says about itself in `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub wit_version: String,
    pub summary: String,
    pub capabilities: Vec<Capability>,
    pub config_schema: String,
    pub outputs: Vec<String>,
    pub defaults: Vec<(String, String)>,
    /// How `backup` saves the service's data; none when there is nothing to back up
    /// (or the plugin is built against WIT 0.1).
    pub backup: Option<String>,
    /// The metrics endpoints the service serves while the environment is monitored
    /// (WIT 0.2; none before).
    #[serde(default)]
    pub metrics: Vec<crate::capabilities::monitoring::MetricsEndpoint>,
}

/// A plugin ready to be called: compiled, linked and described.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub sha256: String,
    pub info: PluginInfo,
    pub cache: CacheOutcome,
    pre: Arc<wit::PluginPre>,
}

/// Why a file could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a WebAssembly file")]
    NotWasm { path: PathBuf },
    #[error(
        "{path}: is a core WebAssembly module, not a component. Build the plugin as a `cdylib` \
         with `cargo build --target wasm32-wasip2` (which makes a component), or wrap a module \
         with `wasm-tools component new`"
    )]
    CoreModule { path: PathBuf },
    #[error("{path}: not a valid component: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{path}: does not export `{export}@…`; it was not built against the provisioner WIT \
         (see wit/ and plugins/sdk)"
    )]
    NotAPlugin { path: PathBuf, export: &'static str },
    #[error(
        "{path}: built against WIT provisioner:plugin@{found}, but this provisioner serves {supported}. \
         Rebuild the plugin against a supported WIT version, or use a provisioner release that serves {found}"
    )]
    UnsupportedWit { path: PathBuf, found: String, supported: String },
    #[error("{path}: needs imports this host does not provide: {reason}")]
    Link { path: PathBuf, reason: String },
    #[error("{path}: {failure}")]
    Describe { path: PathBuf, failure: Box<HookFailure> },
    #[error("{path}: describe() returned {problem}")]
    BadInfo { path: PathBuf, problem: String },
}

/// A hook that did not complete: it trapped, ran out of a limit, or could not start.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("plugin `{plugin}`{} failed in `{hook}`: {reason}{}", service_part(.service), stderr_suffix(.stderr_tail))]
pub struct HookFailure {
    pub plugin: String,
    pub service: String,
    pub hook: Hook,
    pub reason: String,
    pub stderr_tail: String,
    pub denials: Vec<Denial>,
}

/// `describe` and `validate` run for no service.
fn service_part(service: &str) -> String {
    if service.is_empty() {
        String::new()
    } else {
        format!(" (service `{service}`)")
    }
}

fn stderr_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n  plugin stderr (last lines):\n    {}", tail.trim_end().replace('\n', "\n    "))
    }
}

/// A hook that completed, with what it reported along the way.
#[derive(Debug)]
pub struct HookCall<R> {
    pub value: R,
    pub denials: Vec<Denial>,
    pub elapsed: Duration,
    /// Time spent pulling, creating and starting containers within `elapsed`.
    pub phases: state::Phases,
    /// The workloads the call realised.
    pub workloads: Vec<crate::realise::RecordedWorkload>,
    /// The host calls made, in order, each with how it ended.
    pub trace: Vec<String>,
    /// The last lines the plugin wrote to stderr.
    pub stderr_tail: String,
}

impl<R> HookCall<R> {
    /// The same call with its value turned into another.
    pub fn map<U>(self, f: impl FnOnce(R) -> U) -> HookCall<U> {
        HookCall {
            value: f(self.value),
            denials: self.denials,
            elapsed: self.elapsed,
            phases: self.phases,
            workloads: self.workloads,
            trace: self.trace,
            stderr_tail: self.stderr_tail,
        }
    }
}

pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<HookState>,
    cache: ComponentCache,
    limits: HookLimits,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl PluginRuntime {
    pub fn new(cache: ComponentCache, limits: HookLimits) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:?}"))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        wit::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("{e:?}"))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                ticker_engine.increment_epoch();
            }
        })?;
        Ok(PluginRuntime { engine, linker, cache, limits, ticker_stop })
    }

    pub fn limits(&self) -> HookLimits {
        self.limits
    }

    pub fn cache(&self) -> &ComponentCache {
        &self.cache
    }

    /// Read, check, compile (or fetch from the cache), link and describe one plugin.
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let wasm = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
        self.load_bytes(path, &wasm)
    }

    pub fn load_bytes(&self, path: &Path, wasm: &[u8]) -> Result<LoadedPlugin, LoadError> {
        let path_buf = path.to_path_buf();
        if wasmparser::Parser::is_core_wasm(wasm) {
            return Err(LoadError::CoreModule { path: path_buf });
        }
        if !wasmparser::Parser::is_component(wasm) {
            return Err(LoadError::NotWasm { path: path_buf });
        }
        // Where a load's time goes, for `-vv` (the cached-load budget is a few ms).
        let started = Instant::now();
        let sha256 = sha256_hex(wasm);
        let hashed = started.elapsed();
        let (component, cache) = self
            .cache
            .load_or_compile(&self.engine, wasm, &sha256)
            .map_err(|e| LoadError::Invalid { path: path_buf.clone(), reason: format!("{e:#}") })?;
        let compiled = started.elapsed();
        let version = self.check_wit_version(path, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link { path: path_buf.clone(), reason: format!("{e}") })?;
        let pre = wit::PluginPre::new(&version, pre)
            .map(Arc::new)
            .map_err(|e| LoadError::Link { path: path_buf.clone(), reason: format!("{e}") })?;
        let linked = started.elapsed();
        let mut plugin = LoadedPlugin {
            path: path_buf.clone(),
            sha256,
            cache,
            pre,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                wit_version: String::new(),
                summary: String::new(),
                capabilities: Vec::new(),
                config_schema: String::new(),
                outputs: Vec::new(),
                defaults: Vec::new(),
                backup: None,
                metrics: Vec::new(),
            },
        };
        // Only beside a hit: a new or rebuilt entry is described afresh. Checked again
        // as if the plugin had just answered, which costs nothing.
        let cached = matches!(plugin.cache, CacheOutcome::Hit)
            .then(|| self.cache.load_info::<PluginInfo>(&self.engine, &plugin.sha256))
            .flatten()
            .filter(|info| check_info(info).is_ok());
        let described = cached.is_some();
        let info = match cached {
            Some(info) => info,
            None => {
                let label = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let info = self
                    .describe(&plugin, &label)
                    .map_err(|failure| LoadError::Describe { path: path_buf.clone(), failure: Box::new(failure) })?;
                check_info(&info).map_err(|problem| LoadError::BadInfo { path: path_buf, problem })?;
                self.cache.store_info(&self.engine, &plugin.sha256, &info);
                info
            }
        };
        tracing::debug!(
            plugin = %path.display(),
            cache = ?plugin.cache,
            sha256_us = hashed.as_micros() as u64,
            cache_us = (compiled - hashed).as_micros() as u64,
            link_us = (linked - compiled).as_micros() as u64,
            describe_us = (started.elapsed() - linked).as_micros() as u64,
            describe_cached = described,
            "plugin loaded"
        );
        plugin.info = info;
        Ok(plugin)
    }

    /// The WIT version the component exports its hooks at, if this host serves it.
    fn check_wit_version(&self, path: &Path, component: &Component) -> Result<String, LoadError> {
        let ty = component.component_type();
        let found = ty
            .exports(&self.engine)
            .find_map(|(name, _)| name.strip_prefix(wit::HOOKS_EXPORT)?.strip_prefix('@').map(str::to_string));
        match found {
            None => Err(LoadError::NotAPlugin { path: path.to_path_buf(), export: wit::HOOKS_EXPORT }),
            Some(version) if !wit::is_supported(&version) => Err(LoadError::UnsupportedWit {
                path: path.to_path_buf(),
                found: version,
                supported: wit::SUPPORTED.iter().map(|v| format!("{v}.x")).collect::<Vec<_>>().join(", "),
            }),
            Some(version) => Ok(version),
        }
    }

    /// Run one hook in a fresh store with `limits`, on a thread of its own: the
    /// epoch deadline stops the guest's own code, and waiting at most the deadline
    /// (plus a grace) for the thread stops a hook blocked in a host call (an exec, a
    /// WASI sleep). Such a call is abandoned: it finishes on its own, and its guest
    /// traps as soon as it runs again.
    fn call<R: Send + 'static>(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        hook: Hook,
        limits: HookLimits,
        f: impl FnOnce(&wit::PluginPre, &mut Store<HookState>) -> wasmtime::Result<R> + Send + 'static,
    ) -> Result<HookCall<R>, HookFailure> {
        let started = Instant::now();
        let stderr = StderrTail::new(16 * 1024);
        let plugin_name = if plugin.info.name.is_empty() { host.scope.plugin.clone() } else { plugin.info.name.clone() };
        let fail = |reason: String, stderr: &StderrTail, denials: Vec<Denial>| HookFailure {
            plugin: plugin_name.clone(),
            service: host.scope.service.clone(),
            hook,
            reason,
            stderr_tail: stderr.tail(STDERR_LINES),
            denials,
        };
        let state = HookState::new(host.clone(), stderr.clone(), &limits)
            .map_err(|e| fail(format!("could not prepare the sandbox: {e:#}"), &stderr, Vec::new()))?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(limits.fuel).map_err(|e| fail(format!("{e}"), &stderr, Vec::new()))?;
        let ticks = (limits.deadline().as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        let pre = plugin.pre.clone();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("{hook}-{}", host.scope.service))
            .spawn(move || {
                let result = f(&pre, &mut store);
                // The caller may have given up waiting; then nobody needs the result.
                let _ = done.send((result, store));
            })
            .map_err(|e| fail(format!("could not start the hook's thread: {e}"), &stderr, Vec::new()))?;
        let (result, mut store) = match finished.recv_timeout(limits.deadline() + HOST_CALL_GRACE) {
            Ok(finished) => finished,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let reason = format!(
                    "deadline of {:.1} s exceeded while the plugin waited in a host call (the call was abandoned)",
                    limits.deadline().as_secs_f64()
                );
                return Err(fail(reason, &stderr, Vec::new()));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(fail("the host failed while running the hook (see the log)".into(), &stderr, Vec::new()))
            }
        };
        let denials = std::mem::take(&mut store.data_mut().calls.denials);
        let phases = store.data().calls.phases;
        let workloads = std::mem::take(&mut store.data_mut().calls.workloads);
        let trace = std::mem::take(&mut store.data_mut().calls.trace);
        match result {
            Ok(value) => Ok(HookCall { value, denials, elapsed: started.elapsed(), phases, workloads, trace, stderr_tail: stderr.tail(STDERR_LINES) }),
            Err(error) => {
                let reason = explain_trap(&error, &store, &limits);
                Err(fail(reason, &stderr, denials))
            }
        }
    }

    /// `describe` and `validate` may use no capability and should take no time: they
    /// get a short deadline and a small fuel budget, so a broken drop-in costs seconds.
    fn inspection_limits(&self) -> HookLimits {
        Self::inspection_within(&self.limits)
    }

    /// The inspection caps within `limits` (an environment's, when one is known: a
    /// tighter `[limits]` applies to `validate` too).
    fn inspection_within(limits: &HookLimits) -> HookLimits {
        HookLimits {
            fuel: limits.fuel.min(INSPECTION_FUEL),
            hook_timeout_ms: limits.hook_timeout_ms.min(INSPECTION_TIMEOUT_MS),
            ..*limits
        }
    }

    /// `describe`, with no capabilities at all.
    pub fn describe(&self, plugin: &LoadedPlugin, label: &str) -> Result<PluginInfo, HookFailure> {
        let limits = self.inspection_limits();
        let host = Arc::new(ServiceHost::sealed(label, limits));
        let call = self.call(plugin, host, Hook::Describe, limits, |pre, store| pre.describe(store))?;
        Ok(call.value)
    }

    /// `validate`, with no capabilities at all. `Ok(problems)`; empty means valid.
    pub fn validate(&self, plugin: &LoadedPlugin, config_json: &str) -> Result<Vec<(String, String)>, HookFailure> {
        self.validate_within(plugin, config_json, &self.limits)
    }

    /// `validate` under an environment's `[limits]` (capped as for inspection).
    pub fn validate_within(&self, plugin: &LoadedPlugin, config_json: &str, limits: &HookLimits) -> Result<Vec<(String, String)>, HookFailure> {
        let limits = Self::inspection_within(limits);
        let host = Arc::new(ServiceHost::sealed(&plugin.info.name, limits));
        let config = config_json.to_string();
        let call = self.call(plugin, host, Hook::Validate, limits, move |pre, store| pre.validate(store, &config))?;
        Ok(call.value.err().unwrap_or_default())
    }

    /// A hook of a service, under the service's own limits.
    fn service_hook<R: Send + 'static>(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        hook: Hook,
        context: &HookContext,
        f: impl FnOnce(&wit::PluginPre, &mut Store<HookState>, &HookContext) -> wasmtime::Result<R> + Send + 'static,
    ) -> Result<HookCall<R>, HookFailure> {
        let (limits, context) = (host.limits, context.clone());
        self.call(plugin, host, hook, limits, move |pre, store| f(pre, store, &context))
    }

    pub fn provision(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        context: &HookContext,
    ) -> Result<HookCall<Result<Vec<Output>, String>>, HookFailure> {
        self.service_hook(plugin, host, Hook::Provision, context, |pre, store, ctx| pre.provision(store, ctx))
    }

    /// `ready`: `Ok(None)` when ready, `Ok(Some(reason))` when not yet.
    pub fn ready(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        context: &HookContext,
    ) -> Result<HookCall<Result<Option<String>, String>>, HookFailure> {
        self.service_hook(plugin, host, Hook::Ready, context, |pre, store, ctx| pre.ready(store, ctx))
    }

    /// `teardown`, within `deadline` when that is shorter than the service's hook
    /// deadline: a teardown as a whole is bounded (see `lifecycle`).
    pub fn teardown(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        context: &HookContext,
        keep_volumes: bool,
        deadline: Duration,
    ) -> Result<HookCall<Result<(), String>>, HookFailure> {
        let mut limits = host.limits;
        limits.hook_timeout_ms = limits.hook_timeout_ms.min(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX));
        let context = context.clone();
        self.call(plugin, host, Hook::Teardown, limits, move |pre, store| pre.teardown(store, &context, keep_volumes))
    }
}

impl PluginRuntime {
    /// The limits of a backup hook: as the service's, with a deadline long enough to
    /// move a large database (the bytes stream while the hook waits in a host call).
    fn archive_limits(host: &ServiceHost) -> HookLimits {
        HookLimits { hook_timeout_ms: host.limits.hook_timeout_ms.max(ARCHIVE_HOOK_TIMEOUT_MS), ..host.limits }
    }

    /// `backup`: the method used and its notes. The host's `archive` must be a backup.
    pub fn backup(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        context: &HookContext,
    ) -> Result<HookCall<Result<(String, Vec<String>), String>>, HookFailure> {
        let (limits, context) = (Self::archive_limits(&host), context.clone());
        self.call(plugin, host, Hook::Backup, limits, move |pre, store| pre.backup(store, &context))
    }

    /// `data-summary`: what the service holds now, none when nothing.
    pub fn data_summary(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        context: &HookContext,
    ) -> Result<HookCall<Result<Option<String>, String>>, HookFailure> {
        self.service_hook(plugin, host, Hook::DataSummary, context, |pre, store, ctx| pre.data_summary(store, ctx))
    }

    /// `restore`. The host's `archive` must be a restore of verified parts.
    pub fn restore(&self, plugin: &LoadedPlugin, host: Arc<ServiceHost>, context: &HookContext) -> Result<HookCall<Result<(), String>>, HookFailure> {
        let (limits, context) = (Self::archive_limits(&host), context.clone());
        self.call(plugin, host, Hook::Restore, limits, move |pre, store| pre.restore(store, &context))
    }

    /// `notices`: what the user should know about the service now, for `status`.
    pub fn notices(&self, plugin: &LoadedPlugin, host: Arc<ServiceHost>, context: &HookContext) -> Result<HookCall<Result<Vec<String>, String>>, HookFailure> {
        self.service_hook(plugin, host, Hook::Notices, context, |pre, store, ctx| pre.notices(store, ctx))
    }
}

/// How long a `backup` or `restore` hook may take at least.
const ARCHIVE_HOOK_TIMEOUT_MS: u64 = 60 * 60 * 1000;

/// The context handed to the service hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookContext {
    pub project: String,
    pub environment: String,
    pub service: String,
    pub config_json: String,
    pub replicas: u32,
    pub image_override: Option<String>,
    /// A service of the environment collects metrics (WIT 0.2's `context.monitored`).
    pub monitored: bool,
}

/// A value a service hands to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    pub value: String,
    pub secret: bool,
    /// What containers on the project network use instead of `value`.
    pub network_value: Option<String>,
}

impl Output {
    /// An output with the same value on the host and on the project network.
    pub fn new(name: &str, value: &str, secret: bool) -> Self {
        Output { name: name.to_string(), value: value.to_string(), secret, network_value: None }
    }
}

fn check_info(info: &PluginInfo) -> Result<(), String> {
    if !is_valid_name(&info.name) {
        return Err(format!(
            "the name `{}`; a plugin name is 1 to 40 lower-case letters, digits and `-`, starting with a letter",
            info.name
        ));
    }
    if !wit::is_supported(&info.wit_version) {
        return Err(format!("wit-version `{}`, which does not match the WIT it exports", info.wit_version));
    }
    Ok(())
}

/// Say why a hook stopped, in terms of the limit it hit.
fn explain_trap(error: &wasmtime::Error, store: &Store<HookState>, limits: &HookLimits) -> String {
    if let Some(reason) = &store.data().limiter.refused {
        return reason.clone();
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!("deadline of {:.1} s exceeded", limits.deadline().as_secs_f64()),
        Some(Trap::OutOfFuel) => format!("fuel budget of {} exhausted", limits.fuel),
        Some(Trap::UnreachableCodeReached) => {
            "the plugin aborted (wasm `unreachable`; a Rust plugin panics this way)".to_string()
        }
        Some(trap) => format!("trapped: {trap}"),
        None => match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => format!("the plugin called exit({}) inside the hook; a hook must return its result instead", exit.0),
            None => format!("{error:#}"),
        },
    }
}
