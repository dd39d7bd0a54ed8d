//! Running a scenario: each step through the same library calls as `provisioner run`
//! and `teardown`, its assertions checked, and the throwaway project torn down at the
//! end whatever happened.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::capabilities::secrets::SecretFile;
use crate::config::Project;
use crate::discovery::{Catalog, Found, Source};
use crate::engine::{ContainerEngine, Docker, ExecRequest, Unavailable};
use crate::lifecycle::{Stack, Status, Summary};
use crate::naming::{self, Scope};
use crate::runtime::{LoadedPlugin, Output, PluginInfo, PluginRuntime};
use crate::text::mask_secrets;

use crate::authoring::check::{needs_engine, nothing_left, project_file, unique_project, verdict, Throwaway};
use super::file::{Action, Exec, Expect, OutputCheck, OutputExpect, Scenario, ScenarioError, Step, Tcp};

const ENVIRONMENT: &str = "test";
/// How long a `tcp` assertion waits to connect, and then for the expected answer.
const TCP_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an answer a `tcp` assertion reads.
const TCP_MAX_ANSWER: usize = 64 * 1024;

/// Where a result stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not run: an earlier step failed.
    Skip,
}

/// One line of the report: a step's action, or one of its assertions.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// 1-based; 0 for the final cleanup.
    pub step: usize,
    /// `step 2 "bigger"`, or `cleanup`.
    pub label: String,
    /// What was done or checked: `run`, `output URL equals "…"`, `tcp URL`, …
    pub check: String,
    pub verdict: Verdict,
    /// Why it failed, or a note (timings, the value seen).
    pub detail: String,
}

impl std::fmt::Display for StepResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        let detail = if self.detail.is_empty() { String::new() } else { format!(" ({})", self.detail) };
        write!(f, "{word}  {}: {}{detail}", self.label, self.check)
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plugin: String,
    pub project: String,
    pub passed: bool,
    pub results: Vec<StepResult>,
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Overrides the scenario's `image`.
    pub image: Option<String>,
}

/// Run `scenario` on the plugin `wasm`, calling `report` as each result comes.
pub fn run(
    runtime: &PluginRuntime,
    wasm: &Path,
    scenario_path: &Path,
    options: &Options,
    report: &mut dyn FnMut(&StepResult),
) -> Result<Report, RunError> {
    let scenario = Scenario::load(scenario_path)?;
    let plugin = runtime.load(wasm).map_err(|e| RunError::Plugin { path: wasm.to_path_buf(), message: e.to_string() })?;
    scenario.check(scenario_path, &plugin.info)?;
    let engine: Arc<dyn ContainerEngine> = if needs_engine(&plugin.info) {
        Arc::new(Docker::connect().map_err(|e| RunError::Engine(e.to_string()))?)
    } else {
        Arc::new(Unavailable { reason: "the plugin declares no container capabilities".into() })
    };
    let dir = tempfile::tempdir().map_err(|e| RunError::Io(format!("a temporary folder: {e}")))?;
    let mut runner = Runner::new(runtime, plugin, engine, dir.path(), &scenario, options);
    let mut results = Vec::new();
    let mut emit = |result: StepResult| {
        report(&result);
        results.push(result);
    };
    runner.steps(&scenario, &mut emit);
    runner.cleanup(&mut emit);
    let passed = results.iter().all(|r| r.verdict == Verdict::Pass);
    Ok(Report { plugin: runner.info.name.clone(), project: runner.project_name.clone(), passed, results })
}

/// Why a scenario could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{}: {message}", path.display())]
    Plugin { path: PathBuf, message: String },
    #[error("the plugin's hooks need a container engine: {0}")]
    Engine(String),
    #[error("{0}")]
    Io(String),
}

struct Runner<'a> {
    runtime: &'a PluginRuntime,
    info: PluginInfo,
    catalog: Catalog,
    engine: Arc<dyn ContainerEngine>,
    dir: &'a Path,
    project_name: String,
    service: String,
    image: Option<String>,
    readiness_timeout_secs: u64,
    /// The config of the latest step that gave one.
    config: serde_json::Value,
    /// The outputs of the latest `run` step, and of the one before it (`unchanged`
    /// compares the two).
    last_outputs: Option<Vec<Output>>,
    previous_outputs: Option<Vec<Output>>,
    /// What `teardown --keep-volumes` kept for the next run, as `provisioner` keeps it.
    host_ports: crate::realise::HostPorts,
}

impl<'a> Runner<'a> {
    fn new(
        runtime: &'a PluginRuntime,
        plugin: LoadedPlugin,
        engine: Arc<dyn ContainerEngine>,
        dir: &'a Path,
        scenario: &Scenario,
        options: &Options,
    ) -> Runner<'a> {
        let info = plugin.info.clone();
        let catalog = Catalog { plugins: BTreeMap::from([(info.name.clone(), Found { plugin: Arc::new(plugin), source: Source::Flag })]), broken: Vec::new() };
        Runner {
            runtime,
            service: scenario.service.clone().unwrap_or_else(|| info.name.clone()),
            info,
            catalog,
            engine,
            dir,
            project_name: unique_project("test"),
            image: options.image.clone().or_else(|| scenario.image.clone()),
            readiness_timeout_secs: scenario.readiness_timeout_secs.unwrap_or(crate::config::DEFAULT_READINESS_TIMEOUT_SECS),
            config: serde_json::json!({}),
            last_outputs: None,
            previous_outputs: None,
            host_ports: Default::default(),
        }
    }

    /// The throwaway project as of now (the current config), written and loaded.
    fn project(&self) -> Result<Project, String> {
        let throwaway = Throwaway {
            project: &self.project_name,
            environment: ENVIRONMENT,
            service: &self.service,
            config: &self.config,
            image: self.image.as_deref(),
            readiness_timeout_secs: self.readiness_timeout_secs,
        };
        project_file(self.dir, &self.info, &throwaway)
    }

    fn stack<'s>(&'s self, project: &'s Project) -> Stack<'s> {
        Stack {
            project,
            environment: ENVIRONMENT,
            catalog: &self.catalog,
            runtime: self.runtime,
            realiser: Arc::new(crate::realise::Containers::new(self.engine.clone()).offering(self.host_ports.clone())),
            progress: None,
        }
    }

    fn scope(&self) -> Scope {
        Scope {
            project: self.project_name.clone(),
            environment: ENVIRONMENT.to_string(),
            service: self.service.clone(),
            plugin: self.info.name.clone(),
        }
    }

    fn steps(&mut self, scenario: &Scenario, emit: &mut dyn FnMut(StepResult)) {
        let mut failed_at = None;
        for (index, step) in scenario.steps.iter().enumerate() {
            let number = index + 1;
            let label = match &step.name {
                Some(name) => format!("step {number} \"{name}\""),
                None => format!("step {number}"),
            };
            let line = |check: String, verdict: Verdict, detail: String| StepResult { step: number, label: label.clone(), check, verdict, detail };
            if let Some(failed) = failed_at {
                emit(line(step.action.word().to_string(), Verdict::Skip, format!("step {failed} failed")));
                continue;
            }
            if let Some(config) = &step.config {
                self.config = config.clone();
            }
            let action = self.act(step.action);
            let mut ok = match (&action, &step.expect.error_contains) {
                (Ok(note), None) => {
                    emit(line(self.describe_action(step), Verdict::Pass, note.clone()));
                    true
                }
                (Err(message), None) => {
                    emit(line(self.describe_action(step), Verdict::Fail, message.clone()));
                    false
                }
                (Err(message), Some(wanted)) if message.contains(wanted.as_str()) => {
                    emit(line(format!("{} fails with \"{wanted}\"", self.describe_action(step)), Verdict::Pass, message.clone()));
                    true
                }
                (Err(message), Some(wanted)) => {
                    let detail = format!("it failed otherwise: {message}");
                    emit(line(format!("{} fails with \"{wanted}\"", self.describe_action(step)), Verdict::Fail, detail));
                    false
                }
                (Ok(_), Some(wanted)) => {
                    emit(line(format!("{} fails with \"{wanted}\"", self.describe_action(step)), Verdict::Fail, "it succeeded".into()));
                    false
                }
            };
            // Assertions need what the action made; a step expected to fail has only
            // its error to check.
            if ok && action.is_ok() {
                let secrets = self.secret_values();
                for (check, outcome) in self.assertions(&step.expect) {
                    let (verdict, detail) = match outcome {
                        Ok(note) => (Verdict::Pass, note),
                        Err(why) => {
                            ok = false;
                            (Verdict::Fail, why)
                        }
                    };
                    emit(line(mask_secrets(&check, &secrets), verdict, mask_secrets(&detail, &secrets)));
                }
            }
            if !ok {
                failed_at = Some(number);
            }
        }
    }

    fn describe_action(&self, step: &Step) -> String {
        match (step.action, &step.config) {
            (Action::Run, Some(config)) => format!("run with config {config}"),
            (action, _) => action.word().to_string(),
        }
    }

    /// Do what `provisioner run` / `teardown` do; a note on success, else why not.
    fn act(&mut self, action: Action) -> Result<String, String> {
        let project = self.project()?;
        let stack = self.stack(&project);
        match action {
            Action::Run => {
                stack.remove_orphans().map_err(|e| e.to_string())?;
                let summary = stack.run().map_err(|e| e.to_string())?;
                // Recorded as `run` records it: state.json and .env in the throwaway folder.
                crate::outcome::save_run(&project, ENVIRONMENT, &self.catalog, &BTreeMap::new(), &self.host_ports, &summary)
                    .map_err(|e| format!("{e:#}"))?;
                let report = verdict(&summary, |s| matches!(s, Status::Ready))?;
                let note = format!("provision {} ms, ready {} ms", report.provision_ms.unwrap_or(0), report.ready_ms.unwrap_or(0));
                self.previous_outputs = self.last_outputs.replace(report.outputs.clone());
                Ok(note)
            }
            Action::Teardown | Action::TeardownKeepVolumes => {
                let keep = action == Action::TeardownKeepVolumes;
                let host_ports: crate::realise::HostPorts = match keep {
                    true => self.host_ports.clone().into_iter().chain(stack.host_ports().map_err(|e| e.to_string())?).collect(),
                    false => Default::default(),
                };
                let summary = stack.teardown(keep).map_err(|e| e.to_string())?;
                let swept = stack.sweep(keep).map_err(|e| e.to_string())?;
                crate::outcome::save_teardown(&project, ENVIRONMENT, host_ports.clone()).map_err(|e| format!("{e:#}"))?;
                self.host_ports = host_ports;
                torn_down(&summary)?;
                Ok(if swept > 0 { format!("the sweep removed {swept} leftover resource(s)") } else { String::new() })
            }
        }
    }

    /// Every assertion of `expect`, each as (what was checked, outcome).
    fn assertions(&self, expect: &Expect) -> Vec<(String, Result<String, String>)> {
        let mut results = Vec::new();
        let current = self.last_outputs.clone().unwrap_or_default();
        let value = |key: &str| current.iter().find(|o| o.name == key).map(|o| o.value.clone());
        for (key, wanted) in &expect.outputs {
            let check = match wanted {
                OutputExpect::Equals(text) => OutputCheck { equals: Some(text.clone()), ..OutputCheck::default() },
                OutputExpect::Table(check) => check.clone(),
            };
            results.extend(self.output_assertions(key, value(key), &check));
        }
        for tcp in expect.tcp.items() {
            let key = tcp.output();
            let what = match tcp {
                Tcp::Output(_) => format!("tcp {key}"),
                Tcp::Table(t) => match &t.expect {
                    Some(answer) => format!("tcp {key} answers \"{}\"", answer.escape_debug()),
                    None => format!("tcp {key}"),
                },
            };
            let outcome = match value(key) {
                None => Err(format!("the run returned no output `{key}`")),
                Some(v) => tcp_check(&v, tcp),
            };
            results.push((what, outcome));
        }
        for exec in expect.exec.items() {
            let container = exec.container.as_deref().unwrap_or("");
            let what = format!("exec {}{}", if container.is_empty() { String::new() } else { format!("in {container}: ") }, exec.cmd.join(" "));
            results.push((what, self.exec_check(exec)));
        }
        let labels = naming::service_labels(&self.scope());
        if let Some(wanted) = expect.containers {
            let outcome = self.engine.list_containers(&labels).map_err(|e| e.to_string()).and_then(|found| {
                let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
                if found.len() == wanted {
                    Ok(names.join(", "))
                } else {
                    Err(format!("{} found: {}", found.len(), if names.is_empty() { "none".to_string() } else { names.join(", ") }))
                }
            });
            results.push((format!("{wanted} container(s)"), outcome));
        }
        if !expect.volumes.is_empty() {
            let scope = self.scope();
            let found = self.engine.list_volumes(&labels).map(|volumes| {
                volumes.iter().filter_map(|v| naming::short_name(&scope, &v.name).map(str::to_string)).collect::<Vec<_>>()
            });
            for volume in &expect.volumes {
                let outcome = match &found {
                    Ok(found) if found.contains(volume) => Ok(String::new()),
                    Ok(found) => Err(format!("not there (the service has: {})", if found.is_empty() { "no volumes".to_string() } else { found.join(", ") })),
                    Err(e) => Err(e.to_string()),
                };
                results.push((format!("volume {volume} exists"), outcome));
            }
        }
        results
    }

    fn output_assertions(&self, key: &str, value: Option<String>, check: &OutputCheck) -> Vec<(String, Result<String, String>)> {
        let mut results = Vec::new();
        let Some(value) = value else {
            results.push((format!("output {key}"), Err("the run returned no such output".to_string())));
            return results;
        };
        if let Some(wanted) = &check.equals {
            let outcome = if value == *wanted { Ok(String::new()) } else { Err(format!("it is \"{value}\"")) };
            results.push((format!("output {key} equals \"{wanted}\""), outcome));
        }
        if let Some(pattern) = &check.matches {
            let outcome = if wildmatch::WildMatch::new(pattern).matches(&value) { Ok(value.clone()) } else { Err(format!("it is \"{value}\"")) };
            results.push((format!("output {key} matches \"{pattern}\""), outcome));
        }
        if let Some(unchanged) = check.unchanged {
            let what = format!("output {key} {}", if unchanged { "unchanged" } else { "changed" });
            let before = self.previous_outputs.iter().flatten().find(|o| o.name == key).map(|o| o.value.clone());
            let outcome = match before {
                None => Err("no earlier run step returned it".to_string()),
                Some(before) if (before == value) == unchanged => Ok(value.clone()),
                Some(before) => Err(format!("was \"{before}\", now \"{value}\"")),
            };
            results.push((what, outcome));
        }
        results
    }

    fn exec_check(&self, exec: &Exec) -> Result<String, String> {
        let scope = self.scope();
        let container = match &exec.container {
            Some(short) => short.clone(),
            None => {
                let found = self.engine.list_containers(&naming::service_labels(&scope)).map_err(|e| e.to_string())?;
                let names: Vec<&str> = found.iter().filter_map(|c| naming::short_name(&scope, &c.name)).collect();
                match names.as_slice() {
                    [one] => one.to_string(),
                    [] => return Err("the service has no container".into()),
                    many => return Err(format!("the service has {} containers ({}); name one with container = \"…\"", many.len(), many.join(", "))),
                }
            }
        };
        let name = naming::engine_name(&scope, &container);
        let request = ExecRequest { command: exec.cmd.clone(), ..ExecRequest::default() };
        let result = self.engine.exec(&name, &request).map_err(|e| format!("in {container}: {e}"))?;
        let (stdout, stderr) = (String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
        let shown = |text: &str| crate::text::printable(text.trim(), 200, false);
        if result.exit_code != exec.exit_code {
            return Err(format!("exit code {} instead of {}; stderr: {}", result.exit_code, exec.exit_code, shown(&stderr)));
        }
        if let Some(wanted) = &exec.stdout_contains {
            if !stdout.contains(wanted.as_str()) {
                return Err(format!("stdout does not contain \"{wanted}\"; it is: {}", shown(&stdout)));
            }
        }
        if let Some(wanted) = &exec.stderr_contains {
            if !stderr.contains(wanted.as_str()) {
                return Err(format!("stderr does not contain \"{wanted}\"; it is: {}", shown(&stderr)));
            }
        }
        Ok(format!("exit {}", result.exit_code))
    }

    /// The service's generated secrets, never to be shown.
    fn secret_values(&self) -> Vec<String> {
        let dir = self.dir.join(".provisioner").join(ENVIRONMENT).join("secrets");
        let mut values: Vec<String> = SecretFile::new(&dir, &self.service).read_all().map(|s| s.into_values().collect()).unwrap_or_default();
        values.extend(self.last_outputs.iter().flatten().filter(|o| o.secret).map(|o| o.value.clone()));
        values.retain(|v| !v.is_empty());
        values
    }

    /// Tear everything down, whatever happened, and check nothing is left.
    fn cleanup(&mut self, emit: &mut dyn FnMut(StepResult)) {
        let line = |check: &str, outcome: Result<String, String>| {
            let (verdict, detail) = match outcome {
                Ok(note) => (Verdict::Pass, note),
                Err(why) => (Verdict::Fail, why),
            };
            StepResult { step: 0, label: "cleanup".into(), check: check.into(), verdict, detail }
        };
        emit(line("teardown", self.act(Action::Teardown)));
        if needs_engine(&self.info) {
            emit(line("nothing is left", nothing_left(self.engine.as_ref(), &self.project_name, ENVIRONMENT)));
        }
    }
}

/// The teardown summary's one service, torn down; else why not.
fn torn_down(summary: &Summary) -> Result<(), String> {
    verdict(summary, |s| matches!(s, Status::TornDown)).map(|_| ())
}

/// `host:port` from an output value: the value itself, or the authority of a URL
/// (`scheme://user:password@host:port/path`).
fn address(value: &str) -> &str {
    let rest = value.split_once("://").map_or(value, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

fn tcp_check(value: &str, tcp: &Tcp) -> Result<String, String> {
    let addr = address(value);
    let resolved = addr.to_socket_addrs().map_err(|e| format!("`{addr}` is not host:port: {e}"))?.next();
    let target = resolved.ok_or_else(|| format!("`{addr}` resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, TCP_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    let Tcp::Table(check) = tcp else { return Ok(format!("connected to {addr}")) };
    let _ = stream.set_read_timeout(Some(TCP_TIMEOUT));
    if let Some(send) = &check.send {
        stream.write_all(send.as_bytes()).map_err(|e| format!("send to {addr}: {e}"))?;
    }
    let Some(wanted) = &check.expect else { return Ok(format!("connected to {addr}")) };
    // Read until the answer holds what is wanted, the server stops or the timeout.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains(wanted.as_str()) && answer.len() < TCP_MAX_ANSWER {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    if text.contains(wanted.as_str()) {
        Ok(format!("{addr} answered"))
    } else {
        let shown = crate::text::printable(text.trim(), 200, false);
        Err(format!("{addr} answered: {}", if shown.is_empty() { "nothing".into() } else { shown }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authoring::scenario::TcpCheck;

    #[test]
    fn addresses_from_outputs() {
        assert_eq!(address("127.0.0.1:11211"), "127.0.0.1:11211");
        assert_eq!(address("http://127.0.0.1:8080/"), "127.0.0.1:8080");
        assert_eq!(address("redis://app:s3cret@127.0.0.1:6379/0"), "127.0.0.1:6379");
        assert_eq!(address("postgres://a:b@c@localhost:5432/db?x=1"), "localhost:5432");
    }

    #[test]
    fn tcp_sends_and_expects() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten().take(2) {
                let mut stream = stream;
                let mut buf = [0u8; 64];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"VERSION 1.6.18\r\n");
            }
        });
        let check = |expect: &str| Tcp::Table(TcpCheck { output: "X".into(), send: Some("version\r\n".into()), expect: Some(expect.into()) });
        assert!(tcp_check(&addr, &check("VERSION 1.6")).is_ok());
        let err = tcp_check(&addr, &check("VERSION 9")).unwrap_err();
        assert!(err.ends_with("answered: VERSION 1.6.18"), "{err}");
    }
}
