//! The provisioner plugin SDK: the bindings of the WIT package
//! `provisioner:plugin@0.2.0` plus a few helpers, so that a plugin is one short file.
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
//! A plugin written against the 0.1 SDK builds unchanged against this one: the five
//! hooks of WIT 0.1 are the required methods of [`Plugin`], and the hooks WIT 0.2
//! added (`backup`, `data_summary`, `restore`) have defaults for a service with no
//! backup support. To support `provisioner backup`, set [`Plugin::BACKUP`] and
//! implement the three (see the [`archive`] interface).
//!
//! Build with `cargo build --target wasm32-wasip2 --release`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the plugin.

wit_bindgen::generate!({
    path: "../../wit/v0.2.0",
    world: "service-plugin",
    pub_export_macro: true,
    // The generated macro exports a type implementing the generated `Guest` trait;
    // `export_plugin!` (below) wraps a `Plugin` into one and calls it.
    export_macro_name: "__export_plugin_guest",
    default_bindings_module: "provisioner_plugin_sdk",
    // Our own `Error`, so that its `Display` reads as a sentence (the generated one
    // prints the Debug form).
    with: { "provisioner:plugin/types@0.2.0/error": crate::Error },
});

pub use docker::{
    ContainerFile, ContainerInfo, ContainerSpec, ContainerState, Deployment, EnsureOutcome, EnvVar, ExecOptions,
    ExecOutput, HealthCheck, HealthState, HttpEndpoint, Mount, Port, PublishedPort, Resources,
};
pub use host_log::Level;
/// `#[derive(JsonSchema)]` on a plugin's `Config` (with serde's `Deserialize`) gives
/// [`PluginInfo::config`] its schema; `use provisioner_plugin_sdk::*;` is all a plugin
/// needs (the derive finds `schemars` through this re-export).
pub use schemars::{self, JsonSchema};
pub use provisioner::plugin::types::{BackupReport, Capability, ConfigProblem, Context, KeyValue, MetricsEndpoint, Output, Readiness};

/// A plugin: the hooks the host calls (see the WIT's `hooks` interface). Implement it
/// and export the type with [`export_plugin!`].
///
/// The five hooks of WIT 0.1 are required. `backup`, `data_summary` and `restore`
/// (WIT 0.2) are called only for a plugin that sets [`Plugin::BACKUP`]; their defaults
/// say there is no backup support.
pub trait Plugin {
    /// How `backup` saves the service's data, in a few words, e.g. `pg_dump (custom
    /// format)`: the WIT's `plugin-info.backup`. `None` (the default): the service
    /// holds no data of its own, `provisioner backup` says "nothing to back up" and
    /// never calls `backup`, `data_summary` or `restore`.
    const BACKUP: Option<&'static str> = None;

    /// Who the plugin is and what it needs. Must not call any import.
    fn describe() -> PluginInfo;

    /// Check a service's `config` (a JSON object); every problem found. Must not call
    /// any import.
    fn validate(config: String) -> Result<(), Vec<ConfigProblem>>;

    /// Create or update the service so that it matches `ctx`; idempotent.
    fn provision(ctx: Context) -> Result<Vec<Output>, String>;

    /// Whether the service works for the application over its real protocol.
    fn ready(ctx: Context) -> Result<Readiness, String>;

    /// Remove what `provision` created; with `keep_volumes`, leave the volumes.
    fn teardown(ctx: Context, keep_volumes: bool) -> Result<(), String>;

    /// Save the service's data into the archive being written, as named parts (see
    /// [`archive`]), consistent as of one moment while the application keeps writing.
    fn backup(ctx: Context) -> Result<BackupReport, String> {
        let _ = ctx;
        Err("this plugin has no backup support".into())
    }

    /// What data the service holds now, in a few words (e.g. `2 tables, 10000 rows`),
    /// or `None` when it holds nothing a restore would replace.
    fn data_summary(ctx: Context) -> Result<Option<String>, String> {
        let _ = ctx;
        Ok(None)
    }

    /// Load the parts `backup` saved into the service, keeping the target
    /// environment's own credentials.
    fn restore(ctx: Context) -> Result<(), String> {
        let _ = ctx;
        Err("this plugin has no backup support".into())
    }

    /// The metrics endpoints the service serves while the environment is monitored
    /// (`ctx.monitored`): the WIT's `plugin-info.metrics`. Default: none. Build each
    /// with [`MetricsEndpoint::new`].
    fn metrics() -> Vec<MetricsEndpoint> {
        Vec::new()
    }

    /// What the user should know about the service now, one line each, for
    /// `provisioner status` (WIT 0.2's `notices`). Default: nothing.
    fn notices(ctx: Context) -> Result<Vec<String>, String> {
        let _ = ctx;
        Ok(Vec::new())
    }
}

impl MetricsEndpoint {
    /// `port` and `path` of the service's container `container` (its short name).
    pub fn new(container: &str, port: u16, path: &str) -> Self {
        MetricsEndpoint { container: container.into(), port, path: path.into() }
    }
}

/// Export `T`, a [`Plugin`], as the component's `hooks`: `export_plugin!(MyPlugin);`
/// once, at the crate's top level.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        struct __provisioner_plugin_export;

        impl $crate::__private::Guest for __provisioner_plugin_export {
            fn describe() -> $crate::__private::WitPluginInfo {
                $crate::__private::describe::<$ty>()
            }
            fn validate(config: ::std::string::String) -> ::std::result::Result<(), ::std::vec::Vec<$crate::ConfigProblem>> {
                <$ty as $crate::Plugin>::validate(config)
            }
            fn provision(ctx: $crate::Context) -> ::std::result::Result<::std::vec::Vec<$crate::Output>, ::std::string::String> {
                <$ty as $crate::Plugin>::provision(ctx)
            }
            fn ready(ctx: $crate::Context) -> ::std::result::Result<$crate::Readiness, ::std::string::String> {
                <$ty as $crate::Plugin>::ready(ctx)
            }
            fn teardown(ctx: $crate::Context, keep_volumes: bool) -> ::std::result::Result<(), ::std::string::String> {
                <$ty as $crate::Plugin>::teardown(ctx, keep_volumes)
            }
            fn backup(ctx: $crate::Context) -> ::std::result::Result<$crate::BackupReport, ::std::string::String> {
                <$ty as $crate::Plugin>::backup(ctx)
            }
            fn data_summary(ctx: $crate::Context) -> ::std::result::Result<::std::option::Option<::std::string::String>, ::std::string::String> {
                <$ty as $crate::Plugin>::data_summary(ctx)
            }
            fn restore(ctx: $crate::Context) -> ::std::result::Result<(), ::std::string::String> {
                <$ty as $crate::Plugin>::restore(ctx)
            }
            fn notices(ctx: $crate::Context) -> ::std::result::Result<::std::vec::Vec<::std::string::String>, ::std::string::String> {
                <$ty as $crate::Plugin>::notices(ctx)
            }
        }

        $crate::__export_plugin_guest!(__provisioner_plugin_export);
    };
}

/// What [`export_plugin!`] expands to needs; not part of the SDK's API.
#[doc(hidden)]
pub mod __private {
    pub use crate::exports::provisioner::plugin::hooks::Guest;
    pub use crate::provisioner::plugin::types::PluginInfo as WitPluginInfo;

    /// `T::describe()` with `T::BACKUP` and `T::metrics()`, as the WIT's `plugin-info`.
    pub fn describe<T: crate::Plugin>() -> WitPluginInfo {
        let info = T::describe();
        WitPluginInfo {
            name: info.name,
            version: info.version,
            wit_version: info.wit_version,
            summary: info.summary,
            capabilities: info.capabilities,
            config_schema: info.config_schema,
            outputs: info.outputs,
            defaults: info.defaults,
            backup: T::BACKUP.map(str::to_string),
            metrics: T::metrics(),
        }
    }
}

/// What `describe` returns: who the plugin is and what it needs (the WIT's
/// `plugin-info`, but for `backup`, which is [`Plugin::BACKUP`]). The SDK's own type
/// rather than the generated one so that a plugin that builds it field by field, as
/// one written against the 0.1 SDK does, builds unchanged; build it with
/// [`PluginInfo::new`] and the methods after it.
#[derive(Clone, Debug)]
pub struct PluginInfo {
    /// Lower-case letters, digits and `-`; services refer to it as `plugin = "NAME"`.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// [`WIT_VERSION`].
    pub wit_version: String,
    /// One line for `provisioner plugins list`.
    pub summary: String,
    /// Everything the plugin may ask for. Asking for anything else is denied.
    pub capabilities: Vec<Capability>,
    /// JSON Schema of the service's `config`, for documentation (`validate` decides).
    pub config_schema: String,
    /// Names of the outputs `provision` returns.
    pub outputs: Vec<String>,
    /// Defaults a user may want to know or override, e.g. `image = postgres:16`.
    pub defaults: Vec<KeyValue>,
}

/// The `docker` interface: this service's containers and volumes.
///
/// With the cargo feature `testing`, on a native target, the functions answer from
/// the thread's [`testing::MockHost`] instead of the host (same names, same
/// signatures, same types), so a plugin's hooks run in a plain `cargo test`.
pub mod docker {
    #[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
    pub use crate::provisioner::plugin::docker::*;
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::provisioner::plugin::docker::{
        ContainerFile, ContainerInfo, ContainerSpec, ContainerState, Deployment, EnsureOutcome, EnvVar, ExecOptions,
        ExecOutput, HealthCheck, HealthState, HttpEndpoint, KeyValue, Mount, Port, PublishedPort, Resources,
    };
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::testing::imports::docker::*;
    pub use crate::Error;
}

/// The `secrets` interface: this service's generated secrets.
pub mod secrets {
    #[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
    pub use crate::provisioner::plugin::secrets::*;
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::testing::imports::secrets::*;
    pub use crate::Error;
}

/// The `archive` interface (WIT 0.2): the parts of the service's backup. `save_exec`
/// and `append` work inside `backup`, `load_exec` and `read` inside `restore`.
pub mod archive {
    #[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
    pub use crate::provisioner::plugin::archive::*;
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::provisioner::plugin::archive::Part;
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::testing::imports::archive::*;
    pub use crate::Error;
    pub use crate::{ExecOptions, ExecOutput};
}

/// The `monitoring` interface (WIT 0.2): where the environment's other services serve
/// metrics, and their instances' health endpoints, for a collector holding
/// `scrape-targets`.
pub mod monitoring {
    #[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
    pub use crate::provisioner::plugin::monitoring::*;
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::provisioner::plugin::monitoring::{ProbeTarget, ScrapeTarget};
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::testing::imports::monitoring::*;
    pub use crate::Error;
}

/// The `log` interface: messages and the progress line.
pub mod host_log {
    #[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
    pub use crate::provisioner::plugin::log::*;
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::provisioner::plugin::log::Level;
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub use crate::testing::imports::log::*;
}

/// A mock host for native unit tests of a plugin's hooks (cargo feature `testing`):
/// see [`testing::MockHost`].
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;

/// What every fallible host import returns (the WIT's `error`). A refusal is a value,
/// never a trap. `?` turns it into a hook's `String` error.
#[derive(Clone, PartialEq, Eq)]
pub enum Error {
    /// A capability not declared or not granted; names the capability and argument.
    Denied(String),
    /// The named resource does not exist (or is not this service's).
    NotFound(String),
    /// The resource's state prevents the operation, e.g. a name taken by another owner.
    Conflict(String),
    /// The container engine failed; its own message.
    Engine(String),
    /// A malformed argument.
    Invalid(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Denied(m) => write!(f, "denied: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Conflict(m) => write!(f, "conflict: {m}"),
            Error::Engine(m) => write!(f, "container engine: {m}"),
            Error::Invalid(m) => write!(f, "invalid: {m}"),
        }
    }
}

/// The sentence, as `Display` gives it: an error that reaches a run summary through
/// `{:?}` reads the same as through `{}`, never as `Denied("…")`.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// The WIT version this SDK was generated from; put it in `PluginInfo::wit_version`.
pub const WIT_VERSION: &str = "0.2.0";

/// Parse a service's `config` JSON into `T`. On failure, every problem found, each
/// with the key it is about (as the user wrote it in provisioner.toml, the host adds
/// where) and never a position in the JSON the host generated. Use
/// `#[serde(deny_unknown_fields)]` on `T` so typos are reported too.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, Vec<ConfigProblem>> {
    let mut value: serde_json::Value =
        serde_json::from_str(config).map_err(|e| vec![ConfigProblem { key: String::new(), message: e.to_string() }])?;
    let mut problems: Vec<ConfigProblem> = Vec::new();
    // serde stops at the first problem. To report them all, look past each one and try
    // again: an unknown key is taken out; a bad or missing value is stood in for by a
    // value of whichever type the field takes. Bounded, and a key is reported once.
    for _ in 0..32 {
        let (path, message) = match problem_in::<T>(&value) {
            None if problems.is_empty() => return serde_json::from_value(value).map_err(|e| vec![ConfigProblem { key: String::new(), message: e.to_string() }]),
            None => break,
            Some(problem) => problem,
        };
        let key = path.join(".");
        if problems.iter().any(|p| p.key == key) {
            break;
        }
        problems.push(ConfigProblem { key: key.clone(), message: message.clone() });
        if message.starts_with("unknown field") {
            if !remove_key(&mut value, &path) {
                break;
            }
            continue;
        }
        let stand_ins = [serde_json::json!(null), serde_json::json!(0), serde_json::json!(""), serde_json::json!(false), serde_json::json!([]), serde_json::json!({})];
        let past = stand_ins.into_iter().find_map(|stand_in| {
            let mut tried = value.clone();
            let moved_on = set_key(&mut tried, &path, stand_in) && problem_in::<T>(&tried).is_none_or(|(p, _)| p != path);
            moved_on.then_some(tried)
        });
        match past {
            Some(tried) => value = tried,
            None => break,
        }
    }
    Err(problems)
}

/// The first problem deserializing `value` as `T` meets: the key path (including a
/// missing or unknown field's own name) and serde's message.
fn problem_in<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Option<(Vec<String>, String)> {
    let err = serde_path_to_error::deserialize::<_, T>(value.clone()).err()?;
    let mut path: Vec<String> = err.path().iter().filter_map(segment_key).collect();
    let message = err.into_inner().to_string();
    let named = ["unknown field `", "missing field `"].iter().find_map(|p| message.strip_prefix(p)).and_then(|rest| rest.split('`').next());
    if let Some(field) = named {
        if path.last().map(String::as_str) != Some(field) {
            path.push(field.to_string());
        }
    }
    Some((path, message))
}

/// Put `new` at `path` in `value` (creating the last key); false when a parent is not
/// there.
fn set_key(value: &mut serde_json::Value, path: &[String], new: serde_json::Value) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let Some(at) = walk(value, parents) else { return false };
    match at {
        serde_json::Value::Object(map) => {
            map.insert(last.clone(), new);
            true
        }
        serde_json::Value::Array(items) => match last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
            Some(slot) => {
                *slot = new;
                true
            }
            None => false,
        },
        _ => false,
    }
}

fn walk<'v>(value: &'v mut serde_json::Value, path: &[String]) -> Option<&'v mut serde_json::Value> {
    let mut at = value;
    for key in path {
        at = match at {
            serde_json::Value::Object(map) => map.get_mut(key)?,
            serde_json::Value::Array(items) => items.get_mut(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn segment_key(segment: &serde_path_to_error::Segment) -> Option<String> {
    match segment {
        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
        serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
        _ => None,
    }
}

/// Take the key `path` out of `value`; false when it is not there.
fn remove_key(value: &mut serde_json::Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    match walk(value, parents) {
        Some(serde_json::Value::Object(map)) => map.remove(last).is_some(),
        _ => false,
    }
}

/// The JSON Schema of a config type `T` that derives [`JsonSchema`] (schemars 1,
/// draft 2020-12): doc comments become descriptions, `#[serde(default = …)]` defaults,
/// `Option` fields are not required, `#[serde(deny_unknown_fields)]` gives
/// `additionalProperties: false`, and `#[schemars(range(min = 16, max = 4096))]` a
/// `minimum` and `maximum`. The host's `plugins inspect` and `plugins docs` show it as
/// a table.
pub fn schema_for<T: JsonSchema>() -> String {
    serde_json::to_string(&schemars::schema_for!(T)).unwrap_or_else(|_| r#"{"type":"object"}"#.to_string())
}

/// `validate`'s problems as one error for a hook: `config.KEY: MESSAGE`, joined by `; `.
/// For `Config::parse(&ctx.config).map_err(config_error)?` in `provision` and `ready`.
pub fn config_error(problems: Vec<ConfigProblem>) -> String {
    let each = problems.iter().map(|p| if p.key.is_empty() { p.message.clone() } else { format!("config.{}: {}", p.key, p.message) });
    each.collect::<Vec<_>>().join("; ")
}

/// `Ok(value)` when `problems` is empty, else the problems: the end of a `Config::parse`
/// that collects every problem before it answers.
pub fn no_problems<T>(value: T, problems: Vec<ConfigProblem>) -> Result<T, Vec<ConfigProblem>> {
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(problems)
    }
}

impl ConfigProblem {
    /// A problem with the config key `key` (dotted, e.g. `buckets.0`; empty for the whole table).
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem { key: key.into(), message: message.into() }
    }
}

/// The image to run: the environment's override for this service when it sets one
/// (`ctx.image_override`), else `default`, e.g. `config.image.as_deref().unwrap_or(DEFAULT_IMAGE)`.
pub fn image(ctx: &Context, default: &str) -> String {
    ctx.image_override.clone().unwrap_or_else(|| default.to_string())
}

impl BackupReport {
    /// What `backup` saved, by `method` (e.g. `pg_dump -Fc of database app`), with no
    /// notes yet.
    pub fn new(method: impl Into<String>) -> Self {
        BackupReport { method: method.into(), notes: Vec::new() }
    }

    /// Add a note: what the backup leaves out or a restore will not bring back.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

impl PluginInfo {
    /// What `describe` returns, for `version` (pass `env!("CARGO_PKG_VERSION")`) and
    /// this SDK's WIT version, with nothing declared yet: add capabilities, the schema,
    /// outputs and defaults with the methods below.
    pub fn new(name: &str, version: &str, summary: &str) -> Self {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            wit_version: WIT_VERSION.to_string(),
            summary: summary.to_string(),
            capabilities: Vec::new(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            outputs: Vec::new(),
            defaults: Vec::new(),
        }
    }

    /// Declare `capability`.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Publishing the container port `port` on the host.
    pub fn publish(self, port: u16) -> Self {
        self.capability(Capability::Publish(port))
    }

    /// The service's own volume `name`.
    pub fn volume(self, name: &str) -> Self {
        self.capability(Capability::Volume(name.to_string()))
    }

    /// Running commands inside its own containers.
    pub fn exec(self) -> Self {
        self.capability(Capability::Exec)
    }

    /// TCP to its own published ports and containers (for `ready`'s probes).
    pub fn net_probe(self) -> Self {
        self.capability(Capability::NetProbe)
    }

    /// Its own state folder, `/state`.
    pub fn state_files(self) -> Self {
        self.capability(Capability::StateFiles)
    }

    /// Its own generated secrets.
    /// `scrape-targets`: read where the other services serve metrics (a collector).
    pub fn scrape_targets(self) -> Self {
        self.capability(Capability::ScrapeTargets)
    }

    pub fn secrets(self) -> Self {
        self.capability(Capability::Secrets)
    }

    /// Images matching `pattern` (`*` matches any run of characters).
    pub fn image(self, pattern: &str) -> Self {
        self.capability(Capability::Image(pattern.to_string()))
    }

    /// Images matching `pattern` (e.g. `postgres:*`), and the same repository from any
    /// registry or mirror (`*/postgres:*`; for `dxflrs/garage:*`, `*/garage:*`).
    pub fn image_and_mirrors(self, pattern: &str) -> Self {
        let last = pattern.rsplit('/').next().unwrap_or(pattern);
        self.image(pattern).image(&format!("*/{last}"))
    }

    /// The JSON Schema of `config`, for documentation (`validate` decides).
    pub fn schema(mut self, json: &str) -> Self {
        self.config_schema = json.to_string();
        self
    }

    /// The JSON Schema of `config`, derived from the type `T` it is parsed into (see
    /// [`schema_for`]): `.config::<Config>()`.
    pub fn config<T: JsonSchema>(self) -> Self {
        self.schema(&schema_for::<T>())
    }

    /// The schema derived from `T`, as JSON: [`PluginInfo::config`] without the builder.
    pub fn schema_for<T: JsonSchema>() -> String {
        schema_for::<T>()
    }

    /// The names `provision` returns outputs for.
    pub fn outputs(mut self, names: &[&str]) -> Self {
        self.outputs = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// A default shown by `plugins list`, e.g. `("image", DEFAULT_IMAGE)`.
    pub fn default(mut self, key: &str, value: impl Into<String>) -> Self {
        self.defaults.push(KeyValue { key: key.to_string(), value: value.into() });
        self
    }
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
            answers_for_service: true,
            labels: Vec::new(),
            replicas: None,
            stop_timeout_ms: None,
            http_health: None,
        }
    }

    /// Each instance answers 2xx on `path` at `port` while it is healthy: a collector
    /// in the environment probes every instance there (`monitoring::probe_targets`).
    pub fn http_health(mut self, port: u16, path: &str) -> Self {
        self.http_health = Some(HttpEndpoint { port, path: path.to_string() });
        self
    }
}

impl Port {
    /// `container_port`, published on a host port the engine picks (read it back with
    /// [`ContainerInfo::host_addr`]).
    pub fn any(container_port: u16) -> Self {
        Port { container_port, host_port: None }
    }
}

impl Mount {
    /// The service's volume `name` (created if missing), mounted read-write at `target`.
    pub fn volume(name: &str, target: &str) -> Self {
        Mount { volume: name.to_string(), target: target.to_string(), read_only: false }
    }
}

impl ContainerFile {
    /// A file written into the container before its first start.
    pub fn new(path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        ContainerFile { path: path.to_string(), contents: contents.into(), mode, secret: false }
    }

    /// The same, holding a credential: masked in plans, logs and errors.
    pub fn secret(path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        ContainerFile { secret: true, ..ContainerFile::new(path, contents, mode) }
    }
}

impl Deployment {
    /// The container of a spec without `replicas`: the one `ensure` returns.
    pub fn container(&self) -> Result<&ContainerInfo, String> {
        self.containers.first().ok_or_else(|| "the engine reported no container".to_string())
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

/// How a container ended, from its exit code: `exited (code 1)`, or for a signal
/// (128 + n) which one, e.g. `exited (code 137, killed)`. Nothing about when: a
/// server may have been up for hours. (Whether the kernel's out-of-memory killer was
/// the one is in the engine's record; the host adds it to a failed service's report.)
pub fn exited(code: i32) -> String {
    let signal = match code {
        137 => Some("killed"),
        143 => Some("terminated"),
        130 => Some("interrupted"),
        134 => Some("aborted"),
        139 => Some("segmentation fault"),
        _ => None,
    };
    match signal {
        Some(signal) => format!("exited (code {code}, {signal})"),
        None => format!("exited (code {code})"),
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

    /// `Ok` unless the container has stopped; then an error naming its exit code (the
    /// host shows its last log lines with a failed service).
    pub fn alive(&self) -> Result<(), String> {
        match self.stopped() {
            // `server`, the usual name of a service's one container, reads as a noun.
            Some(code) if self.name == "server" => Err(format!("the server {}", exited(code))),
            Some(code) => Err(format!("{} {}", self.name, exited(code))),
            None => Ok(()),
        }
    }

    /// `host:port` where `container_port` is published; an error if it is not, saying
    /// why when the container has stopped (a stopped container publishes nothing).
    pub fn host_addr(&self, container_port: u16) -> Result<String, String> {
        self.alive()?;
        self.published(container_port).ok_or_else(|| format!("port {container_port} of {} is not published", self.name))
    }
}

pub mod exporter;

pub mod wait;

pub mod probe;

pub mod state;

/// `Ok` when `result` succeeded or failed only because the thing was already gone.
pub fn gone_is_fine(result: Result<(), Error>) -> Result<(), String> {
    match result {
        Ok(()) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// What `teardown` usually does: remove the service's `containers` (workloads: all
/// their replicas), then its `volumes` unless `keep_volumes`. Whatever is already gone
/// is fine, so a second teardown succeeds too.
pub fn teardown(containers: &[&str], volumes: &[&str], keep_volumes: bool) -> Result<(), String> {
    for name in containers {
        gone_is_fine(docker::remove(name))?;
    }
    if !keep_volumes {
        for name in volumes {
            gone_is_fine(docker::remove_volume(name))?;
        }
    }
    Ok(())
}

// Last, so that adding it moved no line of the code above (panic locations are part
// of a plugin's bytes, and the lockfiles pin those).
mod limits;
pub use limits::parse_config_checked;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        port: u16,
        #[serde(default)]
        users: Vec<User>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct User {
        name: String,
    }

    #[test]
    fn every_problem_by_key_and_no_json_positions() {
        let problems = parse_config::<Config>(r#"{"port":"x","colour":"red","users":[{"name":1},{"nmae":"b"}]}"#).unwrap_err();
        let mut keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["colour", "port", "users.0.name", "users.1.name", "users.1.nmae"], "{problems:?}");
        assert!(problems.iter().all(|p| !p.message.contains("line 1")), "{problems:?}");
        assert!(parse_config::<Config>(r#"{"port":5}"#).is_ok());
        let missing = parse_config::<Config>("{}").unwrap_err();
        assert_eq!((missing[0].key.as_str(), missing[0].message.as_str()), ("port", "missing field `port`"));
    }

    #[derive(Debug, serde::Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Ranged {
        #[schemars(range(min = 1, max = 65535))]
        port: u32,
        #[schemars(length(min = 1, max = 8))]
        name: Option<String>,
        #[serde(default)]
        users: Vec<RangedUser>,
    }

    #[derive(Debug, serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct RangedUser {
        #[schemars(range(max = 10))]
        quota: u8,
    }

    #[test]
    fn derived_limits_are_problems_beside_serde_ones() {
        let problems = parse_config_checked::<Ranged>(r#"{"port":70000,"name":"","colour":1,"users":[{"quota":3},{"quota":11}]}"#).unwrap_err();
        let found: Vec<(&str, &str)> = problems.iter().map(|p| (p.key.as_str(), p.message.as_str())).collect();
        assert_eq!(
            found,
            [
                ("colour", "unknown field `colour`, expected one of `port`, `name`, `users`"),
                ("name", "must be from 1 to 8 characters long (it has 0)"),
                ("port", "must be from 1 to 65535 (it is 70000)"),
                ("users.1.quota", "must be from 0 to 10 (it is 11)"),
            ]
        );
        assert_eq!(parse_config_checked::<Ranged>(r#"{"port":80,"name":"web"}"#).unwrap().port, 80);
        // What serde refuses is said once, in serde's words.
        let problems = parse_config_checked::<Ranged>(r#"{"port":-1}"#).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.starts_with("invalid value: integer `-1`"), "{problems:?}");
        assert_eq!(parse_config_checked::<Ranged>("not json").unwrap_err().len(), 1);
    }

    #[test]
    fn errors_read_as_sentences_in_debug_too() {
        let e = Error::Denied("secrets: not granted".into());
        assert_eq!(format!("{e:?}"), "denied: secrets: not granted");
        assert_eq!(format!("{e:?}"), e.to_string());
    }
}
