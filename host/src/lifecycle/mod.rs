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

use crate::capabilities::secrets::SecretFile;
use crate::capabilities::{Effective, ProgressSink, ServiceHost};
use crate::config::{ConfigError, Environment, Project, Service, WaitFor};
use crate::discovery::Catalog;
use crate::naming::Scope;
use crate::policy::ContainerDefaults;
use crate::realise::{Phases, Realiser};
use crate::references::resolve_references;
use crate::runtime::{Hook, HookCall, HookContext, HookFailure, LoadedPlugin, Output, PluginRuntime};

mod backup;
mod inspect;
mod schedule;
mod summary;

pub use backup::{BackupError, IncompleteRestore, Restored, RESTORE_MARKER};
pub use inspect::{Action, ContainerStatus, PlanItem, ServiceStatus};
pub use summary::{ServiceReport, Status, Summary};

use schedule::{did_not_succeed, schedule, Gate};
use summary::critical_path;

/// How often `ready` is asked while a service comes up.
const READY_POLL: Duration = Duration::from_millis(40);
/// Container log lines shown with a failed service.
const LOG_TAIL_LINES: u32 = 20;
/// The longest the plugins' teardown hooks may take together. A hook gets what is left
/// of it (or its own deadline, if shorter); once it is spent the remaining hooks are
/// skipped and the sweep removes their resources by label, stopping containers side by
/// side within `realise::SWEEP_STOP_GRACE_SECS`. So a teardown ends within about two
/// and a half minutes whatever the plugins do.
pub const TEARDOWN_BUDGET: Duration = Duration::from_secs(120);
/// A hook with less time than this left is not started.
const SHORTEST_TEARDOWN_HOOK: Duration = Duration::from_secs(1);

/// What a run acts on.
pub struct Stack<'a> {
    pub project: &'a Project,
    pub environment: &'a str,
    pub catalog: &'a Catalog,
    pub runtime: &'a PluginRuntime,
    /// The target the environment's workloads are realised on.
    pub realiser: Arc<dyn Realiser>,
    pub progress: Option<ProgressSink>,
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

/// What one hook did, for `provisioner plugins call`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HookReport {
    /// What it returned (outputs with secret values masked), or its error.
    pub result: Result<String, String>,
    /// The host calls it made, in order, each with how it ended.
    pub trace: Vec<String>,
    pub denials: Vec<crate::capabilities::Denial>,
    pub stderr_tail: String,
    pub elapsed_ms: u128,
}

/// One service, ready to have its hooks called.
struct Prepared {
    service: Service,
    plugin: Arc<LoadedPlugin>,
    host: Arc<ServiceHost>,
    /// The plugin collects the environment's metrics (`scrape-targets`, granted).
    collector: bool,
    /// A service of the environment collects metrics: this one serves its own.
    monitored: bool,
}

/// Who goes before `name` in a teardown: its dependents, and every collector of
/// metrics (so a service going away does not fire alerts on the way out). A collector
/// starts with everything else in a run: its targets' addresses are known beforehand,
/// and it scrapes each one once it answers.
///
/// A service that itself depends on a collector (a dashboard on Prometheus) keeps the
/// order its `depends_on` gives: it goes first, and the collector after it.
fn dependents(project: &Project, prepared: &BTreeMap<String, Prepared>, name: &str) -> Vec<String> {
    let mut dependents = project.dependents(name);
    if prepared.get(name).is_some_and(|p| !p.collector) {
        let collectors: Vec<String> = prepared
            .values()
            .filter(|o| o.collector && !dependents.contains(&o.service.name) && !depends_on(project, name, &o.service.name))
            .map(|o| o.service.name.clone())
            .collect();
        dependents.extend(collectors);
    }
    dependents
}

/// Whether `service` depends on `other`, directly or through others.
fn depends_on(project: &Project, service: &str, other: &str) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    let mut next = vec![service.to_string()];
    while let Some(name) = next.pop() {
        for dep in project.services.get(&name).map(|s| s.depends_on.as_slice()).unwrap_or_default() {
            if dep == other {
                return true;
            }
            if seen.insert(dep.clone()) {
                next.push(dep.clone());
            }
        }
    }
    false
}

/// A plugin's answer to `validate`: its problems as (key, message), or how it failed.
type Validation = Result<Vec<(String, String)>, crate::runtime::HookFailure>;

impl Stack<'_> {
    /// The target the environment's workloads are realised on.
    pub fn realiser(&self) -> Arc<dyn Realiser> {
        self.realiser.clone()
    }

    fn environment(&self) -> Result<Environment, ConfigError> {
        self.project.environment(self.environment)
    }

    /// Every check `run` makes before it starts anything (plugins, configs through
    /// their plugins' `validate`, references), without touching the engine.
    pub fn check(&self) -> Result<(), PreflightError> {
        self.prepare().map(|_| ())
    }

    /// Check everything that can be checked without touching the engine.
    fn prepare(&self) -> Result<(Environment, BTreeMap<String, Prepared>), PreflightError> {
        let names = self.catalog.plugins.keys().cloned().collect();
        self.project.check_plugins(&names)?;
        self.prepare_services(true)
    }

    /// Every service's config through its plugin's `validate`, all at once (each is its
    /// own sandboxed call), by service name.
    fn validate_all(&self, limits: &crate::limits::HookLimits) -> BTreeMap<&str, Validation> {
        std::thread::scope(|scope| {
            let calls: Vec<_> = self
                .project
                .services
                .values()
                .filter_map(|service| self.catalog.plugins.get(&service.plugin).map(|found| (service, found.plugin.clone())))
                .map(|(service, plugin)| {
                    let config_json = service.config.to_string();
                    (service.name.as_str(), scope.spawn(move || self.runtime.validate_within(&plugin, &config_json, limits)))
                })
                .collect();
            calls.into_iter().map(|(name, call)| (name, call.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))).collect()
        })
    }

    /// Each service whose plugin is loaded, with its host; with `validate`, every
    /// config checked by its plugin first (nothing is prepared if one is wrong).
    fn prepare_services(&self, validate: bool) -> Result<(Environment, BTreeMap<String, Prepared>), PreflightError> {
        let env = self.environment()?;
        let state_dir = self.project.state_dir(self.environment);
        let mut problems = if validate { crate::references::check(self.project, self.catalog) } else { Vec::new() };
        let mut prepared = BTreeMap::new();
        let totals = Arc::new(crate::totals::Totals::default());
        let mut validated = if validate { self.validate_all(&env.limits) } else { BTreeMap::new() };
        for service in self.project.services.values() {
            let Some(found) = self.catalog.plugins.get(&service.plugin) else { continue };
            let plugin = found.plugin.clone();
            // Taken in the services' order: the first failure is the one reported.
            let checked = validated.remove(service.name.as_str()).transpose()?.unwrap_or_default();
            for (key, message) in checked {
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
                realiser: self.realiser(),
                defaults: ContainerDefaults {
                    other_services: self.project.services.keys().filter(|n| **n != service.name).cloned().collect(),
                    ..env.container_defaults()
                },
                state_dir: Some(state_dir.join("services").join(&service.name)),
                secrets_dir: Some(state_dir.join("secrets")),
                probe_targets: Arc::default(),
                progress: self.progress.clone(),
                limits: env.limits,
                totals: totals.clone(),
                archive: None,
                scrape_targets: Arc::default(),
                probes_seen: Arc::default(),
                stop_grace_secs: None,
            };
            let collector = host.effective.collects_metrics();
            prepared.insert(service.name.clone(), Prepared { service: service.clone(), plugin, host: Arc::new(host), collector, monitored: false });
        }
        if !problems.is_empty() {
            return Err(PreflightError::InvalidConfig(problems));
        }
        Self::monitor(&mut prepared);
        Ok((env, prepared))
    }

    /// With a collector of metrics in the environment, tell every service it is
    /// monitored and give each collector the others' endpoints.
    fn monitor(prepared: &mut BTreeMap<String, Prepared>) {
        if !prepared.values().any(|p| p.collector) {
            return;
        }
        let targets = Arc::new(crate::capabilities::monitoring::targets(
            prepared.values().filter(|p| !p.collector).map(|p| (&p.host.scope, p.plugin.info.metrics.as_slice())),
        ));
        for p in prepared.values_mut() {
            p.monitored = true;
            if p.collector {
                p.host = Arc::new(ServiceHost { scrape_targets: targets.clone(), ..(*p.host).clone() });
            }
        }
    }

    fn context(&self, env: &Environment, p: &Prepared, config: &serde_json::Value) -> HookContext {
        let service = &p.service;
        HookContext {
            project: self.project.name.clone(),
            environment: self.environment.to_string(),
            service: service.name.clone(),
            config_json: config.to_string(),
            replicas: service.replicas,
            image_override: env.images.get(&service.name).cloned(),
            monitored: p.monitored,
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
        let mut results = schedule(Hook::Provision, prepared.keys().cloned().collect(), deps, outputs_suffice, |name, inputs, gate| {
            self.bring_up(&env, &prepared[name], inputs, gate, started)
        });
        for report in results.iter_mut().filter(|r| r.plugin.is_empty()) {
            // Skipped services never reached their plugin; name it anyway.
            report.plugin = prepared[&report.service].service.plugin.clone();
        }
        self.refresh_collectors(&env, &prepared, &mut results, started);
        let critical_path = critical_path(&results, |name| prepared[name].service.depends_on.clone());
        Ok(Summary {
            environment: self.environment.to_string(),
            services: results,
            elapsed_ms: started.elapsed().as_millis(),
            critical_path,
        })
    }

    /// A collector that asked for the instances to probe during its `provision` is
    /// called again once the others are up, when the engine's instances differ from
    /// what it was told (a replicated workload started alongside it, a `scale`), so
    /// its probes follow them without polling. Nothing is called when they match, as
    /// on a run with nothing to do. Its `ready` is not awaited again: the collector
    /// was ready for the metrics, and waiting for the new probes' first scrape
    /// (Prometheus hands new targets to its scrapers every 5 s) would hold the whole
    /// command for them.
    fn refresh_collectors(&self, env: &Environment, prepared: &BTreeMap<String, Prepared>, results: &mut [ServiceReport], run_started: Instant) {
        let outputs: HashMap<String, Vec<Output>> = results.iter().map(|r| (r.service.clone(), r.outputs.clone())).collect();
        for report in results.iter_mut() {
            let Some(p) = prepared.get(&report.service).filter(|p| p.collector && matches!(report.status, Status::Ready)) else { continue };
            let Some(seen) = p.host.probes_seen.lock().ok().and_then(|seen| seen.clone()) else { continue };
            let now = match p.host.probe_targets_now() {
                Ok(now) => now,
                Err(error) => {
                    tracing::warn!(service = %p.service.name, "cannot list the instances to probe: {error}");
                    continue;
                }
            };
            if now == seen {
                continue;
            }
            let Ok(config) = resolve_references(&p.service.config, &outputs) else { continue };
            self.note(&p.host, &format!("probing {} instance(s)", now.len()));
            let ctx = self.context(env, p, &config);
            if let Err(message) = settle(report, self.runtime.provision(&p.plugin, p.host.clone(), &ctx)) {
                let message = format!("called again for the instances to probe: {message}");
                report.status = Status::Failed { hook: Hook::Provision, message: self.mask(p, &message), log_tail: self.log_tail(p) };
            }
            report.total_ms = run_started.elapsed().as_millis().saturating_sub(report.started_at_ms);
        }
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
        // Start and end on one clock, rounded once each: a service that waited for
        // another never appears to finish before it.
        report.started_at_ms = started.duration_since(run_started).as_millis();
        let fail = |report: &mut ServiceReport, hook: Hook, message: String| {
            let message = format!("{message}{}", self.out_of_memory(p));
            report.status = Status::Failed { hook, message: self.mask(p, &message), log_tail: self.log_tail(p) };
            report.total_ms = run_started.elapsed().as_millis().saturating_sub(report.started_at_ms);
        };
        let config = match resolve_references(&p.service.config, inputs) {
            Ok(config) => config,
            Err(message) => {
                fail(&mut report, Hook::Provision, format!("config: {message}"));
                return report;
            }
        };
        let ctx = self.context(env, p, &config);
        report.config_hash = config_hash(&p.plugin.sha256, &self.context(env, p, &p.service.config));

        self.note(&p.host, "provisioning");
        match settle(&mut report, self.runtime.provision(&p.plugin, p.host.clone(), &ctx)) {
            Ok((outputs, elapsed, phases)) => {
                if let Err(message) = crate::outputs::check(&p.service.plugin, &p.plugin.info.outputs, &outputs) {
                    fail(&mut report, Hook::Provision, message);
                    return report;
                }
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
            report.total_ms = run_started.elapsed().as_millis().saturating_sub(report.started_at_ms);
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
        report.total_ms = run_started.elapsed().as_millis().saturating_sub(report.started_at_ms);
        self.note(&p.host, "ready");
        report
    }

    /// Remove every service, dependents first.
    ///
    /// On a full teardown (the volumes go too), a service that others of the project
    /// depend on is stopped at once when its turn comes: its dependents are gone, so
    /// no request reaches it through them any more, and its data is being removed. The
    /// services nothing depends on (the entry points, such as the load balancer, whose
    /// clients are outside the project) drain within their stop timeout as before, and
    /// nginx, for one, finishes the requests it is proxying. `--keep-volumes` stops
    /// everything within its own timeout: the data stays, so every server shuts down
    /// cleanly.
    pub fn teardown(&self, keep_volumes: bool) -> Result<Summary, PreflightError> {
        let started = Instant::now();
        // Teardown must never be held up by a plugin: configs are not validated (a
        // plugin's validate may be the broken part), and a service whose plugin is
        // missing is reported and left to the sweep, which removes by label.
        let (env, prepared) = self.prepare_services(false)?;
        let dependents = |name: &str| dependents(self.project, &prepared, name);
        let budget_ends = started + TEARDOWN_BUDGET;
        let mut results = schedule(Hook::Teardown, prepared.keys().cloned().collect(), dependents, |_| false, |name, _, _| {
            let p = &prepared[name];
            let started = Instant::now();
            let left = budget_ends.saturating_duration_since(started);
            if left < SHORTEST_TEARDOWN_HOOK {
                let because = format!(
                    "the teardown hooks' budget of {} s was spent before this one could run; its resources are removed by label",
                    TEARDOWN_BUDGET.as_secs()
                );
                return ServiceReport::new(&p.service.name, &p.service.plugin, Status::Skipped { because });
            }
            let ctx = self.context(&env, p, &p.service.config);
            self.note(&p.host, "tearing down");
            let host = match keep_volumes || self.project.dependents(name).is_empty() {
                true => p.host.clone(),
                false => Arc::new(ServiceHost { stop_grace_secs: Some(0), ..(*p.host).clone() }),
            };
            let (status, denials) = match self.runtime.teardown(&p.plugin, host, &ctx, keep_volumes, left) {
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
        for report in results.iter_mut().filter(|r| r.plugin.is_empty()) {
            report.plugin = prepared[&report.service].service.plugin.clone();
        }
        for service in self.project.services.values().filter(|s| !prepared.contains_key(&s.name)) {
            let message = format!(
                "plugin `{}` is not found, so its teardown hook did not run; its resources are removed by label",
                service.plugin
            );
            let status = Status::Failed { hook: Hook::Teardown, message, log_tail: String::new() };
            results.push(ServiceReport::new(&service.name, &service.plugin, status));
        }
        Ok(Summary {
            environment: self.environment.to_string(),
            services: results,
            elapsed_ms: started.elapsed().as_millis(),
            critical_path: Vec::new(),
        })
    }

    /// One hook of one service, as `run` calls it (the same grants, limits, state and
    /// secrets), reporting what it did: `provisioner plugins call`. A service that
    /// takes values from other services (`${…}`) is refused: only `run` resolves those.
    pub fn call(&self, service: &str, hook: Hook) -> Result<HookReport, PreflightError> {
        let config_error = |message: String| {
            PreflightError::Config(ConfigError { file: self.project.file.clone(), line: None, key: format!("services.{service}"), message })
        };
        let (env, prepared) = self.prepare_services(false)?;
        let Some(p) = prepared.get(service) else {
            let known = self.project.services.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(config_error(format!("no such service, or its plugin is not found (services: {known})")));
        };
        if p.service.config.to_string().contains("${") {
            return Err(config_error("it takes values from other services (`${…}`), which only `run` resolves".into()));
        }
        if hook == Hook::Validate {
            let problems = self.runtime.validate_within(&p.plugin, &p.service.config.to_string(), &env.limits)?;
            let result = if problems.is_empty() {
                Ok("valid".to_string())
            } else {
                Err(problems.iter().map(|(k, m)| if k.is_empty() { m.clone() } else { format!("{k}: {m}") }).collect::<Vec<_>>().join("; "))
            };
            return Ok(HookReport { result, trace: Vec::new(), denials: Vec::new(), stderr_tail: String::new(), elapsed_ms: 0 });
        }
        let ctx = self.context(&env, p, &p.service.config);
        let report = |call: Result<crate::runtime::HookCall<Result<String, String>>, HookFailure>| match call {
            Ok(call) => Ok(HookReport {
                result: call.value.map(|v| self.mask(p, &v)).map_err(|e| self.mask(p, &e)),
                trace: call.trace.iter().map(|t| self.mask(p, t)).collect(),
                denials: call.denials,
                stderr_tail: self.mask(p, &call.stderr_tail),
                elapsed_ms: call.elapsed.as_millis(),
            }),
            Err(failure) => Err(PreflightError::Hook(failure)),
        };
        match hook {
            Hook::Provision => report(self.runtime.provision(&p.plugin, p.host.clone(), &ctx).map(|call| {
                call.map(|v| v.map(|outputs| outputs.iter().map(|o| format!("{}={}", o.name, if o.secret { "***" } else { o.value.as_str() })).collect::<Vec<_>>().join("\n")))
            })),
            Hook::Ready => report(self.runtime.ready(&p.plugin, p.host.clone(), &ctx).map(|call| {
                call.map(|v| v.map(|r| r.map_or_else(|| "ready".to_string(), |why| format!("not yet: {why}"))))
            })),
            Hook::Teardown => report(
                self.runtime.teardown(&p.plugin, p.host.clone(), &ctx, false, TEARDOWN_BUDGET).map(|call| call.map(|v| v.map(|()| "torn down".to_string()))),
            ),
            other => Err(config_error(format!("`{other}` is not a hook `plugins call` runs for a service"))),
        }
    }

    /// What a plugin or a container said, fit for the terminal: the service's secrets
    /// masked, control characters replaced, cut to a readable length.
    fn mask(&self, p: &Prepared, text: &str) -> String {
        // An unreadable secrets file masks nothing rather than hiding the text: what a
        // plugin said is what explains the failure being shown.
        let secrets = p.host.secrets_dir.as_ref().and_then(|dir| SecretFile::new(dir, &p.service.name).read_all().ok()).unwrap_or_default();
        crate::text::printable(&crate::text::mask_secrets(text, secrets.values()), crate::text::MAX_SHOWN, true)
    }

    /// What the engine knows and a plugin cannot say: which of the service's containers
    /// the kernel's out-of-memory killer stopped (then the exit code 137 is no mystery).
    fn out_of_memory(&self, p: &Prepared) -> String {
        let Ok(containers) = p.host.realiser.list(&p.host.scope) else { return String::new() };
        let killed: Vec<&str> = containers.iter().filter(|c| c.oom_killed).map(|c| c.name.as_str()).collect();
        if killed.is_empty() {
            return String::new();
        }
        format!(
            " ({} ran out of memory and was killed by the kernel: give it more with the plugin's memory setting or \
             `memory_mb` under [environments.{}.resources])",
            killed.join(", "),
            self.environment
        )
    }

    /// The last log lines of the service's containers.
    fn log_tail(&self, p: &Prepared) -> String {
        let realiser = &p.host.realiser;
        let Ok(containers) = realiser.list(&p.host.scope) else { return String::new() };
        let mut tail = String::new();
        for container in containers {
            if let Ok(logs) = realiser.environment_logs(&self.project.name, self.environment, &container.name, LOG_TAIL_LINES) {
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
            for workload in call.workloads {
                report.workloads.retain(|w| w.name != workload.name);
                report.workloads.push(workload);
            }
            call.value.map(|value| (value, call.elapsed, call.phases))
        }
        Err(failure) => {
            report.denials.extend(failure.denials.iter().cloned());
            Err(failure.to_string())
        }
    }
}

/// What a service is provisioned from, as a short fingerprint.
pub(super) fn config_hash(plugin_sha256: &str, ctx: &HookContext) -> String {
    let text = format!("{plugin_sha256}\n{}\n{}\n{:?}", ctx.config_json, ctx.replicas, ctx.image_override);
    crate::runtime::cache::sha256_hex(text.as_bytes())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_on_follows_the_graph() {
        let toml = "[project]\nname = \"x\"\n[services.db]\nplugin = \"p\"\n[services.metrics]\nplugin = \"p\"\n\
                    [services.dash]\nplugin = \"p\"\ndepends_on = [\"metrics\"]\n[services.panel]\nplugin = \"p\"\ndepends_on = [\"dash\"]\n";
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("provisioner.toml");
        std::fs::write(&file, toml).unwrap();
        let project = Project::load(&file).unwrap();
        assert!(super::depends_on(&project, "panel", "metrics"), "through dash");
        assert!(super::depends_on(&project, "dash", "metrics"));
        assert!(!super::depends_on(&project, "metrics", "dash"));
        assert!(!super::depends_on(&project, "db", "metrics"));
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
