//! `provisioner.toml`: parsing and every check that can be made before anything
//! starts. Errors name the file, the line and the key.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
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

/// A problem in provisioner.toml.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {key}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
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
    fn default() -> Self {
        let d = ContainerDefaults::default();
        ResourceDefaults {
            memory_mb: d.memory_mb,
            cpu_millis: d.cpu_millis,
            pids: d.pids,
            max_memory_mb: d.max_memory_mb,
            max_cpu_millis: d.max_cpu_millis,
            max_pids: d.max_pids,
        }
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
    source[..offset.min(source.len())].matches('\n').count() + 1
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
        let raw: RawFile = toml::from_str(source).map_err(|e| {
            let span = e.span();
            let key = span
                .clone()
                .and_then(|s| source.get(s))
                .map(|k| k.trim().trim_matches(['[', ']', '"']).to_string())
                .unwrap_or_default();
            error(span.map(|s| line_of(source, s.start)), &key, e.message().trim().to_string())
        })?;

        let name_line = line_of(source, raw.project.name.span().start);
        let name = raw.project.name.into_inner();
        if !is_valid_name(&name) {
            return Err(error(
                Some(name_line),
                "project.name",
                format!("`{name}`: use 1 to {MAX_NAME_LEN} lower-case letters, digits and `-`, starting with a letter"),
            ));
        }
        for env in raw.environments.keys() {
            if !is_valid_name(env) {
                let line = source.find(&format!("environments.{env}")).map(|o| line_of(source, o));
                return Err(error(line, &format!("environments.{env}"), "environment names are lower-case letters, digits and `-`".into()));
            }
        }

        let mut services = BTreeMap::new();
        for (service_name, raw_service) in &raw.services {
            let line = line_of(source, raw_service.plugin.span().start);
            let key = format!("services.{service_name}");
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
                            "`{dep_name}` is not a service here (services: {})",
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
                        format!("`{other}`: \"ready\" (the default) or \"outputs\""),
                    ))
                }
            };
            let config = serde_json::to_value(&raw_service.config)
                .map_err(|e| error(Some(line), &format!("{key}.config"), e.to_string()))?;
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
                },
            );
        }

        for (env_name, env) in &raw.environments {
            for service in env.images.keys() {
                if !services.contains_key(service) {
                    let line = source.find(&format!("{service} =")).map(|o| line_of(source, o));
                    return Err(error(line, &format!("environments.{env_name}.images.{service}"), format!("`{service}` is not a service here")));
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
