//! `provisioner.toml`: parsing and every check that can be made before anything
//! starts. Errors name the file, the line and the key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::DeTable;
use toml::Spanned;

use crate::capabilities::Grants;
use crate::runtime::is_valid_name;

mod environment;
mod spans;

pub use environment::{Environment, RegistrySettings, ResourceDefaults, Target, TlsSettings};

pub use spans::{clip, join_key};
use spans::*;

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

        // A placement for a service the file does not have is a typo that would
        // otherwise place nothing, silently.
        for (env_name, env) in &raw.environments {
            for service in env.placement.keys() {
                if !raw.services.contains_key(service) {
                    let line = lookup(doc, &["environments", env_name.as_str(), "placement"]).map(|v| line_of(source, v.span().start));
                    let known: Vec<&str> = raw.services.keys().map(String::as_str).collect();
                    return Err(error(
                        line,
                        &join_key(&join_key(&join_key("environments", env_name), "placement"), service),
                        format!("no service `{service}` (services: {})", known.join(", ")),
                    ));
                }
            }
            if env.target != Target::Swarm && !env.placement.is_empty() {
                let line = lookup(doc, &["environments", env_name.as_str(), "placement"]).map(|v| line_of(source, v.span().start));
                return Err(error(
                    line,
                    &join_key(&join_key("environments", env_name), "placement"),
                    "placement applies to a cluster: add `target = \"swarm\"` to the environment, or remove it".into(),
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
