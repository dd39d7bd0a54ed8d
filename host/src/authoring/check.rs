//! `provisioner plugins check FILE.wasm`: the conformance suite a plugin should pass
//! before anyone runs it. Each check prints pass or fail with the reason:
//!
//! 1. it loads: a component built against a WIT version this host serves;
//! 2. `describe` is sane: valid name and semver version, a summary, a config schema
//!    that is JSON, output names fit for `.env`, capabilities that make sense, and the
//!    same answer twice;
//! 3. `validate` accepts the test config and rejects garbage with a message;
//! 4. against a real engine (only when the plugin declares container capabilities):
//!    `provision` then `ready` within the sandbox limits and the readiness timeout,
//!    using nothing it did not declare and returning only declared outputs; a second
//!    `provision` changes nothing; `teardown` twice (it must be idempotent) leaves
//!    nothing of the service behind.
//!
//! The hooks run in a throwaway project with a unique name, with everything the
//! plugin declares granted, and whatever is left is removed at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::naming::environment_labels;
use crate::capabilities::Capability;
use crate::config::Project;
use crate::discovery::{Catalog, Found, Source};
use crate::engine::{ContainerEngine, Docker, Unavailable};
use crate::lifecycle::{Stack, Status, Summary};
use crate::runtime::{bindings, is_valid_name, LoadedPlugin, PluginInfo, PluginRuntime};

const ENVIRONMENT: &str = "check";

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub check: String,
    pub passed: bool,
    /// Why it failed, or a short note (timings) when it passed.
    pub detail: String,
}

/// What to run the hooks with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The service's `config` table, as JSON (`{}` by default).
    pub config: serde_json::Value,
    /// An image override, as `[environments.NAME.images]` would give.
    pub image: Option<String>,
    pub readiness_timeout_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { config: serde_json::json!({}), image: None, readiness_timeout_secs: crate::config::DEFAULT_READINESS_TIMEOUT_SECS }
    }
}

/// Inputs `validate` must refuse: not JSON, not an object, and an unknown key.
const GARBAGE: &[&str] = &["this is not json", "[1, 2, 3]", "42", r#"{"surely-not-a-real-key-7f3a": true}"#];

/// Run every check on `wasm`, calling `report` as each finishes.
pub fn run(runtime: &PluginRuntime, wasm: &Path, options: &Options, report: &mut dyn FnMut(&CheckResult)) -> Vec<CheckResult> {
    let mut results = Vec::new();
    let mut record = |check: &str, outcome: Result<String, String>| {
        let (passed, detail) = match outcome {
            Ok(note) => (true, note),
            Err(why) => (false, why),
        };
        let result = CheckResult { check: check.to_string(), passed, detail };
        report(&result);
        results.push(result);
        passed
    };
    let plugin = match runtime.load(wasm) {
        Ok(plugin) => {
            record("loads as a component of a supported WIT version", Ok(format!("WIT {}", plugin.info.wit_version)));
            plugin
        }
        Err(e) => {
            record("loads as a component of a supported WIT version", Err(e.to_string()));
            return results;
        }
    };
    record("describe is sane", describe_problems(runtime, &plugin).map(|notes| {
        let who = format!("{} {}", plugin.info.name, plugin.info.version);
        if notes.is_empty() { who } else { format!("{who}; note: {}", notes.join("; ")) }
    }));
    let config_json = options.config.to_string();
    let accepted = record(
        "validate accepts the test config",
        match runtime.validate(&plugin, &config_json) {
            Ok(problems) if problems.is_empty() => Ok(config_json.clone()),
            Ok(problems) => Err(format!(
                "{config_json} was refused: {}; pass a config it accepts with --config",
                problems.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; ")
            )),
            Err(failure) => Err(failure.to_string()),
        },
    );
    record("validate rejects garbage with a message", garbage_refused(runtime, &plugin));
    if accepted {
        hooks(runtime, plugin, options, &mut record);
    }
    results
}

/// Problems fail the check; notes (things an operator should look at twice) do not.
fn describe_problems(runtime: &PluginRuntime, plugin: &LoadedPlugin) -> Result<Vec<String>, String> {
    let info = &plugin.info;
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if !is_semver(&info.version) {
        problems.push(format!("version `{}` is not semver (MAJOR.MINOR.PATCH)", info.version));
    }
    if !bindings::is_supported(&info.wit_version) {
        problems.push(format!("wit-version `{}` is not one this host serves", info.wit_version));
    }
    if info.summary.trim().is_empty() || info.summary.contains('\n') {
        problems.push("summary should be one non-empty line".into());
    }
    match serde_json::from_str::<serde_json::Value>(&info.config_schema) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => problems.push("config-schema is JSON but not an object (a JSON Schema is an object)".into()),
        Err(e) => problems.push(format!("config-schema is not JSON: {e}")),
    }
    for output in &info.outputs {
        let fits = output.starts_with(|c: char| c.is_ascii_uppercase()) && output.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !fits {
            problems.push(format!("output `{output}` is not an environment variable name (A-Z, 0-9, _)"));
        }
    }
    for capability in &info.capabilities {
        match capability {
            Capability::Image(p) if p.trim().is_empty() || p.contains(char::is_whitespace) => problems.push(format!("image pattern `{p}` is empty or has spaces")),
            // Legitimate for a plugin that runs the user's own images, but worth a look.
            Capability::Image(p) if p == "*" => notes.push("image pattern `*` asks for any image at all".to_string()),
            Capability::Publish(0) => problems.push("publish 0 is not a port".into()),
            Capability::Volume(v) if !is_valid_name(v) && !v.contains('*') => problems.push(format!("volume `{v}` is not a valid short name")),
            _ => {}
        }
    }
    let mut sorted = info.capabilities.clone();
    sorted.sort();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        problems.push("a capability is declared twice".into());
    }
    match runtime.describe(plugin, &info.name) {
        Ok(again) if again == *info => {}
        Ok(_) => problems.push("describe answered differently the second time; it must be a constant".into()),
        Err(e) => problems.push(format!("describe failed the second time: {e}")),
    }
    if problems.is_empty() {
        Ok(notes)
    } else {
        Err(problems.join("; "))
    }
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn garbage_refused(runtime: &PluginRuntime, plugin: &LoadedPlugin) -> Result<String, String> {
    for input in GARBAGE {
        match runtime.validate(plugin, input) {
            Ok(problems) if problems.is_empty() => return Err(format!("accepted `{input}`")),
            Ok(problems) if problems.iter().any(|(_, m)| m.trim().is_empty()) => {
                return Err(format!("refused `{input}` without saying why (empty message)"))
            }
            Ok(_) => {}
            Err(failure) => return Err(format!("crashed on `{input}` instead of returning problems: {failure}")),
        }
    }
    Ok(format!("{} inputs refused", GARBAGE.len()))
}

/// Whether the hooks need a container engine: any capability that acts on one.
pub(super) fn needs_engine(info: &PluginInfo) -> bool {
    info.capabilities.iter().any(|c| matches!(c, Capability::Image(_) | Capability::Publish(_) | Capability::Volume(_) | Capability::Exec))
}

/// A project name no other check or scenario uses: `PREFIX-PID-RANDOM`.
pub(super) fn unique_project(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % 0xfffff)
}

/// What a throwaway project holds: one service of the plugin, everything it declares
/// granted.
pub(super) struct Throwaway<'a> {
    pub project: &'a str,
    pub environment: &'a str,
    pub service: &'a str,
    pub config: &'a serde_json::Value,
    pub image: Option<&'a str>,
    pub readiness_timeout_secs: u64,
}

/// Write the throwaway project's provisioner.toml into `dir` and load it.
pub(super) fn project_file(dir: &Path, info: &PluginInfo, project: &Throwaway) -> Result<Project, String> {
    let name = &info.name;
    let config = toml::Value::try_from(project.config).map_err(|e| format!("the config cannot be a TOML table: {e}"))?;
    let mut environment = toml::Table::new();
    environment.insert("readiness_timeout_secs".into(), toml::Value::Integer(project.readiness_timeout_secs as i64));
    if let Some(image) = project.image {
        let images = toml::Table::from_iter([(project.service.to_string(), toml::Value::String(image.to_string()))]);
        environment.insert("images".into(), toml::Value::Table(images));
    }
    let service = toml::Table::from_iter([("plugin".to_string(), toml::Value::String(name.clone())), ("config".to_string(), config)]);
    let doc = toml::Table::from_iter([
        ("project".to_string(), toml::Value::Table(toml::Table::from_iter([("name".to_string(), toml::Value::String(project.project.to_string()))]))),
        ("environments".to_string(), toml::Value::Table(toml::Table::from_iter([(project.environment.to_string(), toml::Value::Table(environment))]))),
        ("services".to_string(), toml::Value::Table(toml::Table::from_iter([(project.service.to_string(), toml::Value::Table(service))]))),
    ]);
    let grants = crate::distribution::trust::grants_toml(name, &info.capabilities);
    let text = format!("{}\n{grants}\n", toml::to_string(&doc).map_err(|e| e.to_string())?);
    let file = dir.join(crate::config::FILE_NAME);
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    Project::load(&file).map_err(|e| e.to_string())
}

/// `Ok` when no container or volume carries the project's and environment's labels;
/// else what is still there.
pub(super) fn nothing_left(engine: &dyn ContainerEngine, project: &str, environment: &str) -> Result<String, String> {
    let labels = environment_labels(project, environment);
    let left = engine.list_containers(&labels).map(|c| c.into_iter().map(|c| format!("container {}", c.name)).collect::<Vec<_>>()).and_then(|mut left| {
        left.extend(engine.list_volumes(&labels)?.into_iter().map(|v| format!("volume {}", v.name)));
        Ok(left)
    });
    match left {
        Ok(left) if left.is_empty() => Ok(String::new()),
        Ok(left) => Err(format!("still there: {}", left.join(", "))),
        Err(e) => Err(format!("cannot list what is left: {e}")),
    }
}

/// The service's one report in a summary: its status and what went wrong.
pub(super) fn verdict(summary: &Summary, want: fn(&Status) -> bool) -> Result<&crate::lifecycle::ServiceReport, String> {
    let report = summary.services.first().ok_or("no service ran")?;
    if let Some(denial) = report.denials.first() {
        return Err(format!("asked for something it did not declare: {}", denial.message));
    }
    match &report.status {
        status if want(status) => Ok(report),
        Status::Failed { hook, message, log_tail } => {
            let tail = if log_tail.trim().is_empty() { String::new() } else { format!("\n    container log:\n    {}", log_tail.trim_end().replace('\n', "\n    ")) };
            Err(format!("`{hook}` failed: {message}{tail}"))
        }
        other => Err(format!("ended as {other:?}")),
    }
}

fn hooks(runtime: &PluginRuntime, plugin: LoadedPlugin, options: &Options, record: &mut dyn FnMut(&str, Result<String, String>) -> bool) {
    let info = plugin.info.clone();
    let engine: Arc<dyn ContainerEngine> = if needs_engine(&info) {
        match Docker::connect() {
            Ok(docker) => Arc::new(docker),
            Err(e) => {
                record("provision and ready against a real engine", Err(format!("the plugin's hooks need a container engine: {e}")));
                return;
            }
        }
    } else {
        Arc::new(Unavailable { reason: "the plugin declares no container capabilities".into() })
    };
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            record("provision and ready against a real engine", Err(format!("no temporary folder: {e}")));
            return;
        }
    };
    let name = unique_project("check");
    let throwaway = Throwaway {
        project: &name,
        environment: ENVIRONMENT,
        service: &info.name,
        config: &options.config,
        image: options.image.as_deref(),
        readiness_timeout_secs: options.readiness_timeout_secs,
    };
    let project = match project_file(dir.path(), &info, &throwaway) {
        Ok(project) => project,
        Err(e) => {
            record("provision and ready against a real engine", Err(e));
            return;
        }
    };
    let catalog = Catalog { plugins: BTreeMap::from([(info.name.clone(), Found { plugin: Arc::new(plugin), source: Source::Flag })]), broken: Vec::new() };
    let stack = Stack { project: &project, environment: ENVIRONMENT, catalog: &catalog, runtime, realiser: Arc::new(crate::realise::Containers::new(engine.clone())), progress: None };
    let ready = |s: &Status| matches!(s, Status::Ready);
    let torn_down = |s: &Status| matches!(s, Status::TornDown);

    let first = stack.run().map_err(|e| e.to_string()).and_then(|summary| {
        let report = verdict(&summary, ready)?;
        let undeclared: Vec<&str> = report.outputs.iter().map(|o| o.name.as_str()).filter(|n| !info.outputs.iter().any(|d| d == n)).collect();
        if !undeclared.is_empty() {
            return Err(format!("returned outputs it does not declare: {}", undeclared.join(", ")));
        }
        let outputs: Vec<(String, String)> = report.outputs.iter().map(|o| (o.name.clone(), o.value.clone())).collect();
        Ok((format!("provision {} ms, ready {} ms", report.provision_ms.unwrap_or(0), report.ready_ms.unwrap_or(0)), outputs))
    });
    let first_outputs = first.as_ref().ok().map(|(_, outputs)| outputs.clone());
    let env_name = if needs_engine(&info) { "a real engine" } else { "no engine (none needed)" };
    if record(&format!("provision and ready within the limits, against {env_name}"), first.map(|(note, _)| note)) {
        let second = stack.run().map_err(|e| e.to_string()).and_then(|summary| {
            let report = verdict(&summary, ready)?;
            let outputs: Vec<(String, String)> = report.outputs.iter().map(|o| (o.name.clone(), o.value.clone())).collect();
            if Some(&outputs) != first_outputs.as_ref() {
                return Err("the second provision returned different outputs".into());
            }
            Ok(format!("provision {} ms", report.provision_ms.unwrap_or(0)))
        });
        record("provision again is idempotent (same outputs, still ready)", second);
    }
    for (attempt, check) in [(1, "teardown succeeds"), (2, "teardown again succeeds (idempotent)")] {
        let outcome = stack.teardown(false).map_err(|e| e.to_string()).and_then(|summary| verdict(&summary, torn_down).map(|r| format!("{} ms", r.total_ms)));
        if !record(check, outcome) && attempt == 1 {
            tracing::debug!("first teardown failed; trying the second anyway");
        }
    }
    if needs_engine(&info) {
        record("teardown leaves nothing of the service behind", nothing_left(engine.as_ref(), &project.name, ENVIRONMENT));
        // Whatever happened, leave the engine as it was.
        if let Err(e) = stack.sweep(false) {
            tracing::warn!(project = %project.name, "cleaning up after the check: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_versions() {
        for (version, ok) in [("0.1.0", true), ("1.2.3-beta.1", true), ("1.2", false), ("v1.2.3", false), ("1.2.x", false), ("", false)] {
            assert_eq!(is_semver(version), ok, "{version}");
        }
    }
}
