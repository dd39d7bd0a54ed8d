//! The run lifecycle: which hook runs when.
//!
//! `run`: check every service's config with its plugin's `validate` (nothing starts
//! if any is wrong), then start each service as soon as everything it depends on is
//! ready — independent services in parallel, one thread each — with `provision`
//! followed by `ready` polled every few tens of milliseconds. A service that fails
//! stops its dependents, never its siblings.
//!
//! `teardown`: the same graph backwards — a service goes once all of its dependents
//! have gone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::capabilities::docker::{environment_labels, service_labels, LABEL_SERVICE};
use crate::capabilities::secrets::SecretFile;
use crate::capabilities::{Denial, Effective};
use crate::config::{ConfigError, Environment, Project, Service, WaitFor};
use crate::discovery::Catalog;
use crate::engine::ContainerEngine;
use crate::references::resolve_references;
use crate::runtime::state::{Phases, ProgressSink, Scope, ServiceHost};
use crate::runtime::{Hook, HookCall, HookContext, HookFailure, LoadedPlugin, Output, PluginRuntime};

/// How often `ready` is asked while a service comes up.
mod schedule;

use schedule::{did_not_succeed, schedule, Gate};

const READY_POLL: Duration = Duration::from_millis(40);
/// Container log lines shown with a failed service.
const LOG_TAIL_LINES: u32 = 20;

/// What a run acts on.
pub struct Stack<'a> {
    pub project: &'a Project,
    pub environment: &'a str,
    pub catalog: &'a Catalog,
    pub runtime: &'a PluginRuntime,
    pub engine: Arc<dyn ContainerEngine>,
    pub progress: Option<ProgressSink>,
}

/// What happened to one service.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Status {
    Ready,
    TornDown,
    Failed {
        hook: Hook,
        message: String,
        /// The last lines of the service's container logs, when it has containers.
        log_tail: String,
    },
    /// Not attempted because a service it needs failed.
    Skipped { because: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub plugin: String,
    #[serde(flatten)]
    pub status: Status,
    #[serde(skip)]
    pub outputs: Vec<Output>,
    /// When the service started, counted from the start of the run.
    pub started_at_ms: u128,
    /// The `provision` hook, and within it the engine's pull / create / start.
    pub provision_ms: Option<u128>,
    pub pull_ms: u128,
    pub create_ms: u128,
    pub start_ms: u128,
    /// From the end of `provision` until `ready` said so.
    pub ready_ms: Option<u128>,
    pub total_ms: u128,
    pub denials: Vec<Denial>,
    /// Fingerprint of what the service was provisioned from (plugin, resolved
    /// config, replicas, image override), for `plan` and state.json.
    #[serde(skip)]
    pub config_hash: String,
}

impl ServiceReport {
    /// A report with no timings, outputs or denials yet.
    fn new(service: &str, plugin: &str, status: Status) -> Self {
        ServiceReport {
            service: service.to_string(),
            plugin: plugin.to_string(),
            status,
            outputs: Vec::new(),
            started_at_ms: 0,
            provision_ms: None,
            pull_ms: 0,
            create_ms: 0,
            start_ms: 0,
            ready_ms: None,
            total_ms: 0,
            denials: Vec::new(),
            config_hash: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub environment: String,
    pub services: Vec<ServiceReport>,
    pub elapsed_ms: u128,
    /// The chain of dependencies that decided how long the run took.
    pub critical_path: Vec<String>,
}

impl Summary {
    pub fn succeeded(&self) -> bool {
        self.services.iter().all(|s| matches!(s.status, Status::Ready | Status::TornDown))
    }

    pub fn denials(&self) -> impl Iterator<Item = &Denial> {
        self.services.iter().flat_map(|s| s.denials.iter())
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<u128>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
        writeln!(
            f,
            "{:<16} {:<14} {:<8} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9}",
            "service", "plugin", "status", "pull", "create", "start", "provision", "ready", "total"
        )?;
        for s in &self.services {
            let status = match &s.status {
                Status::Ready => "ready",
                Status::TornDown => "removed",
                Status::Failed { .. } => "FAILED",
                Status::Skipped { .. } => "skipped",
            };
            let engine_ms = |v: u128| if s.provision_ms.is_some() { format!("{v} ms") } else { "-".into() };
            writeln!(
                f,
                "{:<16} {:<14} {:<8} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9}",
                s.service,
                s.plugin,
                status,
                engine_ms(s.pull_ms),
                engine_ms(s.create_ms),
                engine_ms(s.start_ms),
                ms(s.provision_ms),
                ms(s.ready_ms),
                format!("{} ms", s.total_ms)
            )?;
        }
        for s in &self.services {
            match &s.status {
                Status::Failed { hook, message, log_tail } => {
                    writeln!(f, "\nservice `{}` failed in `{hook}`: {message}", s.service)?;
                    if !log_tail.trim().is_empty() {
                        writeln!(f, "  container log (last lines):\n    {}", log_tail.trim_end().replace('\n', "\n    "))?;
                    }
                }
                Status::Skipped { because } => writeln!(f, "\nservice `{}` skipped: {because}", s.service)?,
                _ => {}
            }
        }
        if !self.critical_path.is_empty() {
            let steps: Vec<String> = self
                .critical_path
                .iter()
                .filter_map(|name| self.services.iter().find(|s| &s.service == name))
                // Run-relative spans, not durations: with `wait_for = "outputs"` a
                // service overlaps the ones before it, so durations would not add up.
                .map(|s| {
                    let secs = |ms: u128| ms as f64 / 1000.0;
                    format!("{} ({:.1}–{:.1} s)", s.service, secs(s.started_at_ms), secs(s.started_at_ms + s.total_ms))
                })
                .collect();
            writeln!(f, "\ncritical path: {}", steps.join(" -> "))?;
        }
        let denials: Vec<&Denial> = self.denials().collect();
        if !denials.is_empty() {
            writeln!(f, "\ndenied ({}):", denials.len())?;
            for d in denials {
                writeln!(f, "  {d}")?;
            }
        }
        write!(f, "\n{} in {} ms", if self.succeeded() { "done" } else { "failed" }, self.elapsed_ms)
    }
}

/// Problems found before anything started.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    InvalidConfig(Vec<ConfigError>),
    #[error(transparent)]
    Hook(#[from] HookFailure),
    #[error("container engine: {0}")]
    Engine(String),
}

/// One service, ready to have its hooks called.
struct Prepared {
    service: Service,
    plugin: Arc<LoadedPlugin>,
    host: Arc<ServiceHost>,
}

impl Stack<'_> {
    fn environment(&self) -> Result<Environment, ConfigError> {
        self.project.environment(self.environment)
    }

    /// Check everything that can be checked without touching the engine.
    fn prepare(&self) -> Result<(Environment, BTreeMap<String, Prepared>), PreflightError> {
        let env = self.environment()?;
        let names = self.catalog.plugins.keys().cloned().collect();
        self.project.check_plugins(&names)?;

        let state_dir = self.project.state_dir(self.environment);
        let mut problems = crate::references::check(self.project, self.catalog);
        let mut prepared = BTreeMap::new();
        for service in self.project.services.values() {
            let plugin = self.catalog.plugins[&service.plugin].plugin.clone();
            let config_json = service.config.to_string();
            for (key, message) in self.runtime.validate(&plugin, &config_json)? {
                let key = if key.is_empty() { String::new() } else { format!(".{key}") };
                problems.push(ConfigError {
                    file: self.project.file.clone(),
                    line: Some(service.line),
                    key: format!("services.{}.config{key}", service.name),
                    message: format!("{message} (checked by plugin `{}`)", service.plugin),
                });
            }
            let (grants, _) = self.catalog.grants(&service.plugin, Some(self.project));
            let host = ServiceHost {
                scope: Scope {
                    project: self.project.name.clone(),
                    environment: self.environment.to_string(),
                    service: service.name.clone(),
                    plugin: service.plugin.clone(),
                },
                effective: Effective::new(&service.plugin, plugin.info.capabilities.clone(), grants),
                engine: self.engine.clone(),
                defaults: env.container_defaults(),
                state_dir: Some(state_dir.join("services").join(&service.name)),
                secrets_dir: Some(state_dir.join("secrets")),
                probe_targets: Arc::default(),
                progress: self.progress.clone(),
                limits: env.limits,
            };
            prepared.insert(service.name.clone(), Prepared { service: service.clone(), plugin, host: Arc::new(host) });
        }
        if !problems.is_empty() {
            return Err(PreflightError::InvalidConfig(problems));
        }
        Ok((env, prepared))
    }

    fn context(&self, env: &Environment, service: &Service, config: &serde_json::Value) -> HookContext {
        HookContext {
            project: self.project.name.clone(),
            environment: self.environment.to_string(),
            service: service.name.clone(),
            config_json: config.to_string(),
            replicas: service.replicas,
            image_override: env.images.get(&service.name).cloned(),
        }
    }

    fn note(&self, host: &ServiceHost, message: &str) {
        if let Some(sink) = &self.progress {
            sink(&host.scope, message);
        }
    }

    /// Bring every service up. `Err` only for problems found before anything started.
    pub fn run(&self) -> Result<Summary, PreflightError> {
        let started = Instant::now();
        let (env, prepared) = self.prepare()?;
        let deps = |name: &str| prepared[name].service.depends_on.clone();
        let outputs_suffice = |name: &str| prepared[name].service.wait_for == WaitFor::Outputs;
        let mut results = schedule(prepared.keys().cloned().collect(), deps, outputs_suffice, |name, inputs, gate| {
            self.bring_up(&env, &prepared[name], inputs, gate, started)
        });
        for report in results.iter_mut().filter(|r| r.plugin.is_empty()) {
            // Skipped services never reached their plugin; name it anyway.
            report.plugin = prepared[&report.service].service.plugin.clone();
        }
        let critical_path = critical_path(&results, |name| prepared[name].service.depends_on.clone());
        Ok(Summary {
            environment: self.environment.to_string(),
            services: results,
            elapsed_ms: started.elapsed().as_millis(),
            critical_path,
        })
    }

    fn bring_up(
        &self,
        env: &Environment,
        p: &Prepared,
        inputs: &HashMap<String, Vec<Output>>,
        gate: &Gate,
        run_started: Instant,
    ) -> ServiceReport {
        let started = Instant::now();
        let mut report = ServiceReport::new(&p.service.name, &p.service.plugin, Status::Ready);
        report.started_at_ms = started.duration_since(run_started).as_millis();
        let fail = |report: &mut ServiceReport, hook: Hook, message: String| {
            report.status = Status::Failed { hook, message: self.mask(p, &message), log_tail: self.log_tail(p) };
            report.total_ms = started.elapsed().as_millis();
        };
        let config = match resolve_references(&p.service.config, inputs) {
            Ok(config) => config,
            Err(message) => {
                fail(&mut report, Hook::Provision, format!("config: {message}"));
                return report;
            }
        };
        let ctx = self.context(env, &p.service, &config);
        report.config_hash = config_hash(&p.plugin.sha256, &self.context(env, &p.service, &p.service.config));

        self.note(&p.host, "provisioning");
        match settle(&mut report, self.runtime.provision(&p.plugin, p.host.clone(), &ctx)) {
            Ok((outputs, elapsed, phases)) => {
                report.provision_ms = Some(elapsed.as_millis());
                report.pull_ms = phases.pull.as_millis();
                report.create_ms = phases.create.as_millis();
                report.start_ms = phases.start.as_millis();
                report.outputs = outputs;
                gate.publish(&report.outputs);
            }
            Err(message) => {
                fail(&mut report, Hook::Provision, message);
                return report;
            }
        }
        // Started on its dependencies' outputs alone (`wait_for = "outputs"`): it cannot
        // be ready if one of them never is.
        let skip = |report: &mut ServiceReport, failed: &[String]| {
            report.status = Status::Skipped { because: format!("{} (it had started on their outputs)", did_not_succeed(failed)) };
            report.total_ms = started.elapsed().as_millis();
        };

        self.note(&p.host, "waiting until ready");
        let ready_started = Instant::now();
        let deadline = ready_started + Duration::from_secs(env.readiness_timeout_secs);
        let mut last_reason: String;
        loop {
            let failed = gate.failed();
            if !failed.is_empty() {
                skip(&mut report, &failed);
                return report;
            }
            match settle(&mut report, self.runtime.ready(&p.plugin, p.host.clone(), &ctx)) {
                Ok((None, ..)) => break,
                Ok((Some(reason), ..)) => last_reason = reason,
                Err(message) => {
                    fail(&mut report, Hook::Ready, message);
                    return report;
                }
            }
            if Instant::now() >= deadline {
                let message = format!("not ready after {} s: {last_reason}", env.readiness_timeout_secs);
                fail(&mut report, Hook::Ready, message);
                return report;
            }
            std::thread::sleep(READY_POLL);
        }
        let failed = gate.wait_finished();
        if !failed.is_empty() {
            skip(&mut report, &failed);
            return report;
        }
        report.ready_ms = Some(ready_started.elapsed().as_millis());
        report.total_ms = started.elapsed().as_millis();
        self.note(&p.host, "ready");
        report
    }

    /// Remove every service, dependents first.
    pub fn teardown(&self, keep_volumes: bool) -> Result<Summary, PreflightError> {
        let started = Instant::now();
        let (env, prepared) = self.prepare()?;
        let dependents = |name: &str| self.project.dependents(name);
        let results = schedule(prepared.keys().cloned().collect(), dependents, |_| false, |name, _, _| {
            let p = &prepared[name];
            let started = Instant::now();
            let ctx = self.context(&env, &p.service, &p.service.config);
            self.note(&p.host, "tearing down");
            let (status, denials) = match self.runtime.teardown(&p.plugin, p.host.clone(), &ctx, keep_volumes) {
                Ok(call) => match call.value {
                    Ok(()) => (Status::TornDown, call.denials),
                    Err(message) => {
                        (Status::Failed { hook: Hook::Teardown, message: self.mask(p, &message), log_tail: String::new() }, call.denials)
                    }
                },
                Err(failure) => {
                    let denials = failure.denials.clone();
                    (Status::Failed { hook: Hook::Teardown, message: self.mask(p, &failure.to_string()), log_tail: String::new() }, denials)
                }
            };
            ServiceReport {
                total_ms: started.elapsed().as_millis(),
                denials,
                ..ServiceReport::new(&p.service.name, &p.service.plugin, status)
            }
        });
        Ok(Summary {
            environment: self.environment.to_string(),
            services: results,
            elapsed_ms: started.elapsed().as_millis(),
            critical_path: Vec::new(),
        })
    }

    /// `text` with the service's secrets replaced by `***`.
    fn mask(&self, p: &Prepared, text: &str) -> String {
        let Some(dir) = &p.host.secrets_dir else { return text.to_string() };
        let mut text = text.to_string();
        if let Ok(secrets) = SecretFile::new(dir, &p.service.name).read_all() {
            for value in secrets.values().filter(|v| !v.is_empty()) {
                text = text.replace(value.as_str(), "***");
            }
        }
        text
    }

    /// The last log lines of the service's containers.
    fn log_tail(&self, p: &Prepared) -> String {
        let Ok(containers) = self.engine.list_containers(&service_labels(&p.host.scope)) else { return String::new() };
        let mut tail = String::new();
        for container in containers {
            if let Ok(logs) = self.engine.logs(&container.name, LOG_TAIL_LINES) {
                if !logs.trim().is_empty() {
                    tail.push_str(&format!("[{}]\n{}", container.name, logs));
                }
            }
        }
        self.mask(p, &tail)
    }
}

/// A hook call's value with its denials added to `report`; any failure, of the hook
/// or of the sandbox, as the message to show.
fn settle<T>(
    report: &mut ServiceReport,
    call: Result<HookCall<Result<T, String>>, HookFailure>,
) -> Result<(T, Duration, Phases), String> {
    match call {
        Ok(call) => {
            report.denials.extend(call.denials);
            call.value.map(|value| (value, call.elapsed, call.phases))
        }
        Err(failure) => {
            report.denials.extend(failure.denials.iter().cloned());
            Err(failure.to_string())
        }
    }
}

/// The dependency chain that ended last: from the service that finished last, step
/// back each time to the prerequisite that finished last.
fn critical_path(reports: &[ServiceReport], depends_on: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let end = |r: &ServiceReport| r.started_at_ms + r.total_ms;
    let by_name: HashMap<&str, &ServiceReport> = reports.iter().map(|r| (r.service.as_str(), r)).collect();
    let mut path = Vec::new();
    let mut current = reports.iter().filter(|r| matches!(r.status, Status::Ready)).max_by_key(|r| end(r));
    while let Some(report) = current {
        path.push(report.service.clone());
        current = depends_on(&report.service).iter().filter_map(|d| by_name.get(d.as_str()).copied()).max_by_key(|r| end(r));
    }
    path.reverse();
    path
}

/// What a service is provisioned from, as a short fingerprint.
fn config_hash(plugin_sha256: &str, ctx: &HookContext) -> String {
    let text = format!("{plugin_sha256}\n{}\n{}\n{:?}", ctx.config_json, ctx.replicas, ctx.image_override);
    crate::runtime::cache::sha256_hex(text.as_bytes())[..16].to_string()
}

/// One service as `status` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub plugin: String,
    pub containers: Vec<ContainerStatus>,
    pub ready: bool,
    /// Why not, when not ready.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    pub state: String,
    /// `host:port` of each published port.
    pub endpoints: Vec<String>,
}

/// What `run` would do to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Start,
    Unchanged,
    Remove,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub service: String,
    pub action: Action,
    pub detail: String,
}

impl Stack<'_> {
    /// Each service's containers and whether its plugin says it is ready.
    pub fn status(&self) -> Result<Vec<ServiceStatus>, PreflightError> {
        let (env, prepared) = self.prepare()?;
        let statuses = std::thread::scope(|threads| {
            let handles: Vec<_> = prepared
                .values()
                .map(|p| {
                    let env = &env;
                    threads.spawn(move || {
                        let containers = self
                            .engine
                            .list_containers(&service_labels(&p.host.scope))
                            .unwrap_or_default()
                            .into_iter()
                            .map(|c| ContainerStatus {
                                name: c.name,
                                state: format!("{:?}", c.state).to_lowercase(),
                                endpoints: c.ports.iter().map(|(_, ip, port)| format!("{ip}:{port}")).collect(),
                            })
                            .collect::<Vec<_>>();
                        let ctx = self.context(env, &p.service, &p.service.config);
                        let (ready, reason) = if containers.is_empty() {
                            (false, Some("not provisioned".to_string()))
                        } else {
                            match self.runtime.ready(&p.plugin, p.host.clone(), &ctx) {
                                Ok(call) => match call.value {
                                    Ok(None) => (true, None),
                                    Ok(Some(reason)) | Err(reason) => (false, Some(self.mask(p, &reason))),
                                },
                                Err(failure) => (false, Some(self.mask(p, &failure.to_string()))),
                            }
                        };
                        ServiceStatus { service: p.service.name.clone(), plugin: p.service.plugin.clone(), containers, ready, reason }
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        Ok(statuses)
    }

    /// What `run` would create, change or remove. Reads the engine; changes nothing.
    pub fn plan(&self, state: &crate::state::State) -> Result<Vec<PlanItem>, PreflightError> {
        let (env, prepared) = self.prepare()?;
        let labels = environment_labels(&self.project.name, self.environment);
        let existing = self.engine.list_containers(&labels).map_err(|e| engine_preflight(self.engine.as_ref(), e))?;
        let mut items = Vec::new();
        for p in prepared.values() {
            let name = &p.service.name;
            let mine: Vec<_> =
                existing.iter().filter(|c| c.labels.get(LABEL_SERVICE).map(String::as_str) == Some(name.as_str())).collect();
            let hash = config_hash(&p.plugin.sha256, &self.context(&env, &p.service, &p.service.config));
            let recorded = state.services.get(name).map(|s| s.config_hash.as_str());
            let (action, detail) = if mine.is_empty() {
                (Action::Create, format!("new {} service", p.service.plugin))
            } else if recorded != Some(hash.as_str()) {
                (Action::Update, "config, plugin or image changed; containers are replaced, volumes kept".to_string())
            } else if mine.iter().any(|c| c.state != crate::engine::State::Running) {
                (Action::Start, "stopped containers are started".to_string())
            } else {
                (Action::Unchanged, format!("{} container(s) running", mine.len()))
            };
            items.push(PlanItem { service: name.clone(), action, detail });
        }
        for orphan in self.orphans(&existing) {
            items.push(PlanItem {
                service: orphan.clone(),
                action: Action::Remove,
                detail: "no longer in provisioner.toml; containers removed, volumes kept".into(),
            });
        }
        Ok(items)
    }

    /// Services with containers on the engine that the file no longer names.
    fn orphans(&self, existing: &[crate::engine::ContainerDetails]) -> Vec<String> {
        let mut names: Vec<String> = existing
            .iter()
            .filter_map(|c| c.labels.get(LABEL_SERVICE))
            .filter(|s| !self.project.services.contains_key(*s))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Remove the containers of services the file no longer names (volumes stay).
    pub fn remove_orphans(&self) -> Result<Vec<String>, crate::engine::EngineError> {
        let labels = environment_labels(&self.project.name, self.environment);
        let existing = self.engine.list_containers(&labels)?;
        let orphans = self.orphans(&existing);
        for container in &existing {
            if container.labels.get(LABEL_SERVICE).is_some_and(|s| orphans.contains(s)) {
                self.engine.remove_container(&container.name)?;
            }
        }
        Ok(orphans)
    }

    /// After the plugins' teardown: remove whatever is still labelled for this project
    /// and environment (containers, volumes unless kept, the network). Nothing
    /// without those labels is touched.
    pub fn sweep(&self, keep_volumes: bool) -> Result<usize, crate::engine::EngineError> {
        let labels = environment_labels(&self.project.name, self.environment);
        let mut removed = 0;
        for container in self.engine.list_containers(&labels)? {
            self.engine.remove_container(&container.name)?;
            removed += 1;
        }
        if !keep_volumes {
            for volume in self.engine.list_volumes(&labels)? {
                self.engine.remove_volume(&volume.name)?;
                removed += 1;
            }
        }
        let network = format!("{}-{}", self.project.name, self.environment);
        self.engine.remove_network(&network)?;
        Ok(removed)
    }
}

fn engine_preflight(engine: &dyn ContainerEngine, error: crate::engine::EngineError) -> PreflightError {
    PreflightError::Engine(format!("{} ({})", error, engine.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, status: Status) -> ServiceReport {
        let outputs = vec![Output { name: "URL".into(), value: format!("{name}://x"), secret: false, network_value: None }];
        ServiceReport { outputs, ..ServiceReport::new(name, "p", status) }
    }

    #[test]
    fn the_critical_path_follows_the_latest_prerequisite() {
        // db (0..900) and cache (0..300) feed backend (900..1400); lb after backend.
        let timed = |name: &str, at: u128, total: u128| ServiceReport { started_at_ms: at, total_ms: total, ..report(name, Status::Ready) };
        let reports = vec![timed("db", 0, 900), timed("cache", 0, 300), timed("backend", 900, 500), timed("lb", 1400, 50)];
        let deps: HashMap<&str, Vec<String>> = HashMap::from([
            ("db", vec![]),
            ("cache", vec![]),
            ("backend", vec!["db".to_string(), "cache".to_string()]),
            ("lb", vec!["backend".to_string()]),
        ]);
        assert_eq!(critical_path(&reports, |n| deps[n].clone()), ["db", "backend", "lb"]);
        // Independent services: the path is just the slowest one.
        let alone = vec![timed("db", 0, 900), timed("cache", 0, 300)];
        assert_eq!(critical_path(&alone, |_| vec![]), ["db"]);
    }

    #[test]
    fn references_resolve_from_dependencies_only() {
        let inputs = HashMap::from([(
            "db".to_string(),
            vec![Output { name: "DATABASE_URL".into(), value: "postgres://app@h/db".into(), secret: true, network_value: None }],
        )]);
        let config = serde_json::json!({ "env": { "DATABASE_URL": "${db.DATABASE_URL}", "X": "a${db.DATABASE_URL}b" }, "n": 3 });
        let resolved = resolve_references(&config, &inputs).unwrap();
        assert_eq!(resolved["env"]["DATABASE_URL"], "postgres://app@h/db");
        assert_eq!(resolved["env"]["X"], "apostgres://app@h/dbb");
        assert_eq!(resolved["n"], 3);
        for (bad, says) in [("${cache.URL}", "not in depends_on"), ("${db.NOPE}", "no output"), ("${db", "unclosed"), ("${db}", "service.OUTPUT")] {
            let err = resolve_references(&serde_json::json!(bad), &inputs).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
