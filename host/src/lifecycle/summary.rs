//! What a run or teardown reports: each service's status and timings, the summary
//! table, and the critical path.

use std::collections::HashMap;

use serde::Serialize;

use crate::capabilities::Denial;
use crate::realise::RecordedWorkload;
use crate::runtime::{Hook, Output};

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
    /// What `provision` realised, for state.json and `plan`.
    #[serde(skip)]
    pub workloads: Vec<RecordedWorkload>,
}

impl ServiceReport {
    /// A report with no timings, outputs or denials yet.
    pub(crate) fn new(service: &str, plugin: &str, status: Status) -> Self {
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
            workloads: Vec::new(),
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


/// The dependency chain that ended last: from the service that finished last, step
/// back each time to the prerequisite that finished last.
pub(super) fn critical_path(reports: &[ServiceReport], depends_on: impl Fn(&str) -> Vec<String>) -> Vec<String> {
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
}
