//! The sandboxed component runtime: one wasmtime `Engine` for the process, a fresh
//! `Store` per hook call with a memory cap, a fuel budget and an epoch deadline, and
//! an on-disk cache of precompiled components.

pub mod bindings;
pub mod cache;
pub mod limits;
pub mod state;
pub mod stderr;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use self::bindings::v0_1;
use self::cache::{sha256_hex, CacheOutcome, ComponentCache};
use self::limits::HookLimits;
use self::state::{HookState, ServiceHost};
use self::stderr::StderrTail;
use crate::capabilities::{Capability, Denial};

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
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
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hook::Describe => "describe",
            Hook::Validate => "validate",
            Hook::Provision => "provision",
            Hook::Ready => "ready",
            Hook::Teardown => "teardown",
        })
    }
}

/// What a plugin says about itself in `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub wit_version: String,
    pub summary: String,
    pub capabilities: Vec<Capability>,
    pub config_schema: String,
    pub outputs: Vec<String>,
    pub defaults: Vec<(String, String)>,
}

/// A plugin ready to be called: compiled, linked and described.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub sha256: String,
    pub info: PluginInfo,
    pub cache: CacheOutcome,
    pre: v0_1::ServicePluginPre<HookState>,
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
#[error("plugin `{plugin}` (service `{service}`) failed in `{hook}`: {reason}{}", stderr_suffix(.stderr_tail))]
pub struct HookFailure {
    pub plugin: String,
    pub service: String,
    pub hook: Hook,
    pub reason: String,
    pub stderr_tail: String,
    pub denials: Vec<Denial>,
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
        v0_1::ServicePlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;

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
        let sha256 = sha256_hex(wasm);
        let (component, cache) = self
            .cache
            .load_or_compile(&self.engine, wasm, &sha256)
            .map_err(|e| LoadError::Invalid { path: path_buf.clone(), reason: format!("{e:#}") })?;
        self.check_wit_version(path, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link { path: path_buf.clone(), reason: format!("{e}") })?;
        let pre = v0_1::ServicePluginPre::new(pre)
            .map_err(|e| LoadError::Link { path: path_buf.clone(), reason: format!("{e}") })?;
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
            },
        };
        let label = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let info = self
            .describe(&plugin, &label)
            .map_err(|failure| LoadError::Describe { path: path_buf.clone(), failure: Box::new(failure) })?;
        check_info(&info).map_err(|problem| LoadError::BadInfo { path: path_buf, problem })?;
        plugin.info = info;
        Ok(plugin)
    }

    fn check_wit_version(&self, path: &Path, component: &Component) -> Result<(), LoadError> {
        let ty = component.component_type();
        let found = ty
            .exports(&self.engine)
            .find_map(|(name, _)| name.strip_prefix(bindings::HOOKS_EXPORT)?.strip_prefix('@').map(str::to_string));
        match found {
            None => Err(LoadError::NotAPlugin { path: path.to_path_buf(), export: bindings::HOOKS_EXPORT }),
            Some(version) if !bindings::is_supported(&version) => Err(LoadError::UnsupportedWit {
                path: path.to_path_buf(),
                found: version,
                supported: bindings::SUPPORTED.iter().map(|v| format!("{v}.x")).collect::<Vec<_>>().join(", "),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Run one hook in a fresh store with the service's limits.
    pub fn call<R>(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        hook: Hook,
        f: impl FnOnce(&v0_1::hooks::Guest, &mut Store<HookState>) -> wasmtime::Result<R>,
    ) -> Result<HookCall<R>, HookFailure> {
        let started = Instant::now();
        let stderr = StderrTail::new(16 * 1024);
        let limits = host.limits;
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

        let result = self.pre_instantiate(plugin, &mut store).and_then(|instance| f(instance.provisioner_plugin_hooks(), &mut store));
        let denials = std::mem::take(&mut store.data_mut().denials);
        let phases = store.data().phases;
        match result {
            Ok(value) => Ok(HookCall { value, denials, elapsed: started.elapsed(), phases }),
            Err(error) => {
                let reason = explain_trap(&error, &store, &limits);
                Err(fail(reason, &stderr, denials))
            }
        }
    }

    fn pre_instantiate(&self, plugin: &LoadedPlugin, store: &mut Store<HookState>) -> wasmtime::Result<v0_1::ServicePlugin> {
        plugin.pre.instantiate(store)
    }

    /// `describe`, with no capabilities at all.
    pub fn describe(&self, plugin: &LoadedPlugin, label: &str) -> Result<PluginInfo, HookFailure> {
        let host = Arc::new(ServiceHost::sealed(label, self.limits));
        let call = self.call(plugin, host, Hook::Describe, |hooks, store| hooks.call_describe(store))?;
        Ok(PluginInfo::from(call.value))
    }

    /// `validate`, with no capabilities at all. `Ok(problems)`; empty means valid.
    pub fn validate(&self, plugin: &LoadedPlugin, config_json: &str) -> Result<Vec<(String, String)>, HookFailure> {
        let host = Arc::new(ServiceHost::sealed(&plugin.info.name, self.limits));
        let call = self.call(plugin, host, Hook::Validate, |hooks, store| hooks.call_validate(store, config_json))?;
        Ok(match call.value {
            Ok(()) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| (p.key, p.message)).collect(),
        })
    }

    pub fn provision(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        context: &HookContext,
    ) -> Result<HookCall<Result<Vec<Output>, String>>, HookFailure> {
        let ctx = context.to_wit();
        let call = self.call(plugin, host, Hook::Provision, |hooks, store| hooks.call_provision(store, &ctx))?;
        Ok(HookCall {
            value: call.value.map(|outputs| {
                outputs.into_iter().map(|o| Output { name: o.name, value: o.value, secret: o.secret, network_value: o.network_value }).collect()
            }),
            denials: call.denials,
            elapsed: call.elapsed,
            phases: call.phases,
        })
    }

    /// `ready`: `Ok(None)` when ready, `Ok(Some(reason))` when not yet.
    pub fn ready(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        context: &HookContext,
    ) -> Result<HookCall<Result<Option<String>, String>>, HookFailure> {
        let ctx = context.to_wit();
        let call = self.call(plugin, host, Hook::Ready, |hooks, store| hooks.call_ready(store, &ctx))?;
        Ok(HookCall {
            value: call.value.map(|r| match r {
                v0_1::types::Readiness::Ready => None,
                v0_1::types::Readiness::NotYet(reason) => Some(reason),
            }),
            denials: call.denials,
            elapsed: call.elapsed,
            phases: call.phases,
        })
    }

    pub fn teardown(
        &self,
        plugin: &LoadedPlugin,
        host: Arc<ServiceHost>,
        context: &HookContext,
        keep_volumes: bool,
    ) -> Result<HookCall<Result<(), String>>, HookFailure> {
        let ctx = context.to_wit();
        self.call(plugin, host, Hook::Teardown, |hooks, store| hooks.call_teardown(store, &ctx, keep_volumes))
    }
}

/// The context handed to the service hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookContext {
    pub project: String,
    pub environment: String,
    pub service: String,
    pub config_json: String,
    pub replicas: u32,
    pub image_override: Option<String>,
}

impl HookContext {
    fn to_wit(&self) -> v0_1::types::Context {
        v0_1::types::Context {
            project: self.project.clone(),
            environment: self.environment.clone(),
            service: self.service.clone(),
            config: self.config_json.clone(),
            replicas: self.replicas,
            image_override: self.image_override.clone(),
        }
    }
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

impl From<v0_1::types::PluginInfo> for PluginInfo {
    fn from(info: v0_1::types::PluginInfo) -> Self {
        use v0_1::types::Capability as C;
        PluginInfo {
            name: info.name,
            version: info.version,
            wit_version: info.wit_version,
            summary: info.summary,
            capabilities: info
                .capabilities
                .into_iter()
                .map(|c| match c {
                    C::Image(p) => Capability::Image(p),
                    C::Publish(p) => Capability::Publish(p),
                    C::Volume(v) => Capability::Volume(v),
                    C::Exec => Capability::Exec,
                    C::NetProbe => Capability::NetProbe,
                    C::StateFiles => Capability::StateFiles,
                    C::Secrets => Capability::Secrets,
                })
                .collect(),
            config_schema: info.config_schema,
            outputs: info.outputs,
            defaults: info.defaults.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        }
    }
}

/// Plugin and service names: what may appear in resource names and file names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn check_info(info: &PluginInfo) -> Result<(), String> {
    if !is_valid_name(&info.name) {
        return Err(format!(
            "the name `{}`; a plugin name is 1 to 40 lower-case letters, digits and `-`, starting with a letter",
            info.name
        ));
    }
    if !bindings::is_supported(&info.wit_version) {
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
        None => format!("{error:#}"),
    }
}
