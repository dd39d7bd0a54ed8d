//! `provisioner.toml`: parsing and every check that can be made before anything
//! starts. Errors name the file, the line and the key.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::capabilities::Grants;
use crate::runtime::is_valid_name;
use crate::runtime::limits::HookLimits;
use crate::runtime::state::ContainerDefaults;

pub const FILE_NAME: &str = "provisioner.toml";

/// The most instances one service may run, from `replicas` or `provisioner scale`.
pub const MAX_REPLICAS: u32 = 64;

/// How long a service may take to become ready unless its environment says
/// otherwise; `plugins check` waits as long by default.
pub const DEFAULT_READINESS_TIMEOUT_SECS: u64 = 120;

/// The longest project, environment, service or plugin name. `runtime::is_valid_name`
/// enforces it; the messages here and in `authoring::scaffold` quote it.
pub const MAX_NAME_LEN: usize = 40;

/// The smallest container limits the host sets: below these a container cannot
/// even start its init, so a smaller value is refused in provisioner.toml instead of
/// being raised behind the operator's back.
pub const MIN_MEMORY_MB: u32 = 16;
pub const MIN_CPU_MILLIS: u32 = 10;
pub const MIN_PIDS: u32 = 16;

/// How many characters of a value a message quotes: a 10 MB string in the file
/// must not become a 10 MB error message.
const QUOTE_LIMIT: usize = 80;

/// A problem in provisioner.toml. Shown as `FILE:LINE: KEY: MESSAGE`; an error that
/// belongs to no key (a syntax error) is shown without one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}{}: {}{message}",
    file.display(),
    line.map(|l| format!(":{l}")).unwrap_or_default(),
    if key.is_empty() { String::new() } else { format!("{key}: ") }
)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    project: RawProject,
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    plugins: BTreeMap<String, PluginSettings>,
    #[serde(default)]
    registry: RegistrySettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    plugin: Spanned<String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    wait_for: Option<Spanned<String>>,
    replicas: Option<Spanned<u32>>,
    #[serde(default)]
    config: toml::Table,
}

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
}

impl Default for ResourceDefaults {
    /// The CPU ceiling is this machine's CPUs: a fixed 8000m would promise eight
    /// CPUs on a two-core laptop. The default share stays within it.
    fn default() -> Self {
        let d = ContainerDefaults::default();
        let max_cpu_millis = machine_cpu_millis().unwrap_or(d.max_cpu_millis);
        ResourceDefaults {
            memory_mb: d.memory_mb,
            cpu_millis: d.cpu_millis.min(max_cpu_millis),
            pids: d.pids,
            max_memory_mb: d.max_memory_mb,
            max_cpu_millis,
            max_pids: d.max_pids,
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
    fn below_minimum(&self) -> Vec<(&'static str, u32, u32, &'static str)> {
        [
            ("memory_mb", self.memory_mb, MIN_MEMORY_MB, "MB"),
            ("max_memory_mb", self.max_memory_mb, MIN_MEMORY_MB, "MB"),
            ("cpu_millis", self.cpu_millis, MIN_CPU_MILLIS, "millis"),
            ("max_cpu_millis", self.max_cpu_millis, MIN_CPU_MILLIS, "millis"),
            ("pids", self.pids, MIN_PIDS, "pids"),
            ("max_pids", self.max_pids, MIN_PIDS, "pids"),
        ]
        .into_iter()
        .filter(|(_, value, min, _)| value < min)
        .collect()
    }
}

impl Environment {
    pub fn container_defaults(&self) -> ContainerDefaults {
        let r = &self.resources;
        ContainerDefaults {
            bind_address: self.bind_address,
            memory_mb: r.memory_mb,
            cpu_millis: r.cpu_millis,
            pids: r.pids,
            max_memory_mb: r.max_memory_mb,
            max_cpu_millis: r.max_cpu_millis,
            max_pids: r.max_pids,
            mirror: self.mirror.clone(),
            other_services: Vec::new(),
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
}

fn yes() -> bool {
    true
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings { url: None, trusted_keys: Vec::new(), require_signatures: true }
    }
}

/// `[plugins.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// What the operator grants this plugin, replacing any default policy.
    pub grants: Option<Grants>,
}

/// What a service waits for from the services in its `depends_on` before it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitFor {
    /// `wait_for = "ready"` (the default): until they work for the application.
    #[default]
    Ready,
    /// `wait_for = "outputs"`: only until their outputs (addresses, credentials) exist,
    /// so the service boots while they do. For apps that retry their connections; the
    /// service still counts as ready only once its dependencies are.
    Outputs,
}

/// `[services.NAME]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub plugin: String,
    pub depends_on: Vec<String>,
    pub wait_for: WaitFor,
    pub replicas: u32,
    /// The `config` table as JSON, for the plugin.
    pub config: serde_json::Value,
    /// Line of the `plugin = …` key, for messages.
    pub line: usize,
    /// Line of each value under `config`, by its path inside it (`env.DATABASE_URL`,
    /// `command[0]`), for messages about one value.
    pub config_lines: BTreeMap<String, usize>,
}

impl Service {
    /// The line of a value under `config`, else of the service.
    pub fn config_line(&self, path: &str) -> usize {
        self.config_lines.get(path).copied().unwrap_or(self.line)
    }
}

/// A loaded, checked provisioner.toml.
#[derive(Debug, Clone)]
pub struct Project {
    pub file: PathBuf,
    pub name: String,
    pub environments: BTreeMap<String, Environment>,
    pub services: BTreeMap<String, Service>,
    pub plugins: BTreeMap<String, PluginSettings>,
    pub registry: RegistrySettings,
}

fn line_of(source: &str, offset: usize) -> usize {
    source.as_bytes()[..offset.min(source.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// 1-based column of a byte offset, in characters.
fn column_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    let line_start = source.as_bytes()[..offset].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    source.get(line_start..offset).map_or(offset - line_start, |s| s.chars().count()) + 1
}

/// `text` as a message may quote it: whole if short, else its first characters and
/// its size.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…({} bytes)", &text[..cut], text.len()),
    }
}

/// Clip every quoted stretch ("…" with escapes, or `…`) of a message from a parser or
/// deserializer, which quote the offending value whatever its size.
fn clip_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open];
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        // The closing quote, skipping backslash escapes inside "…".
        let mut close = None;
        let mut escaped = false;
        for (i, b) in body.bytes().enumerate() {
            if escaped {
                escaped = false;
            } else if b == b'\\' && quote == b'"' {
                escaped = true;
            } else if b == quote {
                close = Some(i);
                break;
            }
        }
        let end = close.unwrap_or(body.len());
        out.push_str(&clip(&body[..end]));
        match close {
            Some(end) => {
                out.push(quote as char);
                rest = &body[end + 1..];
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// `prefix.key`, quoting a key that is not a bare TOML key so the path reads back
/// unambiguously (`env."a.b"`).
pub fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare { clip(key) } else { format!("{:?}", clip(key)) };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

fn span_holds(span: &std::ops::Range<usize>, offset: usize) -> bool {
    span.start <= offset && (offset < span.end || span.is_empty() && offset == span.start)
}

/// The key path (`services.web.replicas`, `a.b[0]`) of the innermost key or value
/// at `offset` in a parsed document, for deserializer errors, which know the
/// span of what they refused but do not tell its key.
fn key_at(table: &DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (key, value) in table.iter() {
        let path = join_key(prefix, key.get_ref());
        // Deepest first: a header table's own span can cover its whole section.
        if let Some(found) = value_key_at(value, offset, &path) {
            return Some(found);
        }
        if span_holds(&key.span(), offset) {
            return Some(path);
        }
    }
    None
}

fn value_key_at(value: &Spanned<DeValue<'_>>, offset: usize, path: &str) -> Option<String> {
    let inner = match value.get_ref() {
        DeValue::Table(table) => key_at(table, offset, path),
        DeValue::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| value_key_at(item, offset, &format!("{path}[{i}]")))
        }
        _ => None,
    };
    inner.or_else(|| span_holds(&value.span(), offset).then(|| path.to_string()))
}

/// The value at a key path given as segments, in a parsed document.
fn lookup<'d, 'i>(table: &'d DeTable<'i>, path: &[&str]) -> Option<&'d Spanned<DeValue<'i>>> {
    let (first, rest) = path.split_first()?;
    let value = table.iter().find(|(k, _)| k.get_ref() == first).map(|(_, v)| v)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value.get_ref() {
        DeValue::Table(inner) => lookup(inner, rest),
        _ => None,
    }
}

/// The line of every value under a service's `config`, by its path inside `config`
/// (`env.DATABASE_URL`, `command[0]`), so checks of the config can name the line of
/// the key itself rather than the service's.
fn value_lines(value: &Spanned<DeValue<'_>>, path: &str, source: &str, lines: &mut BTreeMap<String, usize>) {
    if !path.is_empty() {
        lines.insert(path.to_string(), line_of(source, value.span().start));
    }
    match value.get_ref() {
        DeValue::Table(table) => {
            for (key, inner) in table.iter() {
                value_lines(inner, &join_key(path, key.get_ref()), source, lines);
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                value_lines(item, &format!("{path}[{i}]"), source, lines);
            }
        }
        _ => {}
    }
}

impl Project {
    /// The folder holding provisioner.toml.
    pub fn root(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// `.provisioner/<env>/`: state, secrets and service folders of one environment.
    pub fn state_dir(&self, environment: &str) -> PathBuf {
        self.root().join(".provisioner").join(environment)
    }

    pub fn load(file: &Path) -> Result<Project, ConfigError> {
        let source = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Project::parse(file, &source)
    }

    pub fn parse(file: &Path, source: &str) -> Result<Project, ConfigError> {
        let error = |line: Option<usize>, key: &str, message: String| ConfigError {
            file: file.to_path_buf(),
            line,
            key: key.to_string(),
            message,
        };
        // Parsed once for its spans (which key is at which line), then deserialized.
        // A syntax error belongs to no key: it is named by line and column.
        let doc = DeTable::parse(source).map_err(|e| {
            let at = e.span().map(|s| s.start);
            let column = at.map(|at| format!(" (column {})", column_of(source, at))).unwrap_or_default();
            error(at.map(|at| line_of(source, at)), "", format!("{}{column}", clip_quoted(e.message().trim())))
        })?;
        let doc = doc.get_ref();
        // The deserializer knows the span of what it refused, not its key: the key
        // comes from the spans of the parsed document.
        let raw: RawFile = toml::from_str(source).map_err(|e| {
            let at = e.span().map(|s| s.start);
            let key = at.and_then(|at| key_at(doc, at, "")).unwrap_or_default();
            error(at.map(|at| line_of(source, at)), &key, clip_quoted(e.message().trim()))
        })?;

        let name_line = line_of(source, raw.project.name.span().start);
        let name = raw.project.name.into_inner();
        if !is_valid_name(&name) {
            return Err(error(
                Some(name_line),
                "project.name",
                format!("`{}`: use 1 to {MAX_NAME_LEN} lower-case letters, digits and `-`, starting with a letter", clip(&name)),
            ));
        }
        for env in raw.environments.keys() {
            if !is_valid_name(env) {
                let line = lookup(doc, &["environments", env.as_str()]).map(|v| line_of(source, v.span().start));
                return Err(error(line, &join_key("environments", env), "environment names are lower-case letters, digits and `-`".into()));
            }
        }

        // Refused, not raised to the minimum: a container given less than asked for
        // dies with no stated cause.
        for (env_name, env) in &raw.environments {
            if let Some((field, value, min, unit)) = env.resources.below_minimum().into_iter().next() {
                let line = lookup(doc, &["environments", env_name.as_str(), "resources", field]).map(|v| line_of(source, v.span().start));
                return Err(error(
                    line,
                    &join_key(&join_key(&join_key("environments", env_name), "resources"), field),
                    format!("{value} {unit} is below the minimum of {min} {unit} the host gives a container; set at least {min}"),
                ));
            }
        }

        let mut services = BTreeMap::new();
        for (service_name, raw_service) in &raw.services {
            let line = line_of(source, raw_service.plugin.span().start);
            let key = join_key("services", service_name);
            if !is_valid_name(service_name) {
                return Err(error(
                    Some(line),
                    &key,
                    format!("service names are 1 to {MAX_NAME_LEN} lower-case letters, digits and `-`, starting with a letter"),
                ));
            }
            let mut depends_on = Vec::new();
            for dep in &raw_service.depends_on {
                let dep_line = Some(line_of(source, dep.span().start));
                let dep_name = dep.get_ref();
                if dep_name == service_name {
                    return Err(error(dep_line, &format!("{key}.depends_on"), format!("`{service_name}` depends on itself")));
                }
                if !raw.services.contains_key(dep_name) {
                    return Err(error(
                        dep_line,
                        &format!("{key}.depends_on"),
                        format!(
                            "`{}` is not a service here (services: {})",
                            clip(dep_name),
                            raw.services.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                depends_on.push(dep_name.clone());
            }
            let replicas = match &raw_service.replicas {
                Some(r) if !(1..=MAX_REPLICAS).contains(r.get_ref()) => {
                    return Err(error(Some(line_of(source, r.span().start)), &format!("{key}.replicas"), format!("must be 1 to {MAX_REPLICAS}")))
                }
                Some(r) => *r.get_ref(),
                None => 1,
            };
            let wait_for = match raw_service.wait_for.as_ref().map(|w| (w.get_ref().as_str(), w.span().start)) {
                None | Some(("ready", _)) => WaitFor::Ready,
                Some(("outputs", _)) => WaitFor::Outputs,
                Some((other, at)) => {
                    return Err(error(
                        Some(line_of(source, at)),
                        &format!("{key}.wait_for"),
                        format!("`{}`: \"ready\" (the default) or \"outputs\"", clip(other)),
                    ))
                }
            };
            let config = serde_json::to_value(&raw_service.config)
                .map_err(|e| error(Some(line), &format!("{key}.config"), clip_quoted(&e.to_string())))?;
            let mut config_lines = BTreeMap::new();
            if let Some(table) = lookup(doc, &["services", service_name.as_str(), "config"]) {
                value_lines(table, "", source, &mut config_lines);
            }
            services.insert(
                service_name.clone(),
                Service {
                    name: service_name.clone(),
                    plugin: raw_service.plugin.get_ref().clone(),
                    depends_on,
                    wait_for,
                    replicas,
                    config,
                    line,
                    config_lines,
                },
            );
        }

        for (env_name, env) in &raw.environments {
            for service in env.images.keys() {
                if !services.contains_key(service) {
                    let line = lookup(doc, &["environments", env_name.as_str(), "images", service.as_str()]).map(|v| line_of(source, v.span().start));
                    let key = join_key(&join_key(&join_key("environments", env_name), "images"), service);
                    return Err(error(line, &key, format!("`{}` is not a service here", clip(service))));
                }
            }
        }

        // A mistyped key would otherwise surface only at the next install.
        for key in &raw.registry.trusted_keys {
            if let Err(e) = crate::distribution::signing::parse_public_key(key) {
                let line = source.find(key.as_str()).map(|o| line_of(source, o));
                return Err(error(line, "registry.trusted_keys", e.to_string()));
            }
        }

        let project = Project { file: file.to_path_buf(), name, environments: raw.environments, services, plugins: raw.plugins, registry: raw.registry };
        if let Some(cycle) = project.find_cycle() {
            let first = &project.services[&cycle[0]];
            return Err(error(
                Some(first.line),
                &format!("services.{}.depends_on", cycle[0]),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ));
        }
        Ok(project)
    }

    /// The environment called `name`. `local` and `ci` exist with defaults even when
    /// the file does not mention them.
    pub fn environment(&self, name: &str) -> Result<Environment, ConfigError> {
        match self.environments.get(name) {
            Some(env) => Ok(env.clone()),
            None if name == "local" || name == "ci" => Ok(Environment::default()),
            None => Err(ConfigError {
                file: self.file.clone(),
                line: None,
                key: format!("environments.{name}"),
                message: format!(
                    "no such environment (defined: {}); add a [environments.{name}] table",
                    if self.environments.is_empty() {
                        "none".to_string()
                    } else {
                        self.environments.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            }),
        }
    }

    /// Check that every service's plugin is known. `available` are the plugin names
    /// found on the search path.
    pub fn check_plugins(&self, available: &BTreeSet<String>) -> Result<(), ConfigError> {
        for service in self.services.values() {
            if !available.contains(&service.plugin) {
                return Err(ConfigError {
                    file: self.file.clone(),
                    line: Some(service.line),
                    key: format!("services.{}.plugin", service.name),
                    message: format!(
                        "no plugin called `{}` was found (found: {}); see `provisioner plugins list`",
                        service.plugin,
                        if available.is_empty() {
                            "none".to_string()
                        } else {
                            available.iter().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                });
            }
        }
        Ok(())
    }

    /// A dependency cycle, as the path of service names that closes it.
    fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        fn visit(project: &Project, name: &str, marks: &mut BTreeMap<String, Mark>, path: &mut Vec<String>) -> Option<Vec<String>> {
            match marks.get(name).copied().unwrap_or(Mark::New) {
                Mark::Done => return None,
                Mark::Active => {
                    let start = path.iter().position(|p| p == name).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(name.to_string());
                    return Some(cycle);
                }
                Mark::New => {}
            }
            marks.insert(name.to_string(), Mark::Active);
            path.push(name.to_string());
            for dep in &project.services[name].depends_on {
                if let Some(cycle) = visit(project, dep, marks, path) {
                    return Some(cycle);
                }
            }
            path.pop();
            marks.insert(name.to_string(), Mark::Done);
            None
        }
        let mut marks = BTreeMap::new();
        for name in self.services.keys() {
            if let Some(cycle) = visit(self, name, &mut marks, &mut Vec::new()) {
                return Some(cycle);
            }
        }
        None
    }

    /// Services that depend on `name`, directly.
    pub fn dependents(&self, name: &str) -> Vec<String> {
        self.services.values().filter(|s| s.depends_on.iter().any(|d| d == name)).map(|s| s.name.clone()).collect()
    }

    /// The operator's explicit grants for a plugin, if any.
    pub fn grants(&self, plugin: &str) -> Option<&Grants> {
        self.plugins.get(plugin).and_then(|p| p.grants.as_ref())
    }
}

/// Find provisioner.toml in `dir` or the nearest parent.
pub fn find_project_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join(FILE_NAME)).find(|f| f.is_file())
}

#[cfg(test)]
mod tests;
