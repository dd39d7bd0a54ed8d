//! What `run` and `teardown` leave behind once the hooks are done: state.json built
//! from the summary, and `.env` with the ready services' outputs (or, after a
//! teardown, no `.env` at all).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;

use crate::config::Project;
use crate::discovery::Catalog;
use crate::fsutil::write_private_if_changed;
use crate::lifecycle::{Status, Summary};
use crate::realise::HostPorts;
use crate::runtime::Output;
use crate::state::{dotenv, ignore_in_git, Scaled, ServiceState, State, DOTENV_HEADER};

/// A run's state.json and the outputs that go into `.env`.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub state: State,
    /// The outputs of the services that became ready, by service.
    pub outputs: BTreeMap<String, Vec<Output>>,
}

/// What `summary` says about each service, for `project` in `environment` with the
/// `scale` overrides in force. `plugin_sha256` gives the sha256 of a plugin by name.
pub fn record(
    project: &str,
    environment: &str,
    scale: &BTreeMap<String, Scaled>,
    summary: &Summary,
    plugin_sha256: impl Fn(&str) -> Option<String>,
) -> Recorded {
    let mut state = State { project: project.to_string(), environment: environment.to_string(), scale: scale.clone(), ..State::default() };
    let mut outputs = BTreeMap::new();
    for report in &summary.services {
        let ready = matches!(report.status, Status::Ready);
        if ready {
            outputs.insert(report.service.clone(), report.outputs.clone());
        }
        let entry = ServiceState {
            plugin: report.plugin.clone(),
            plugin_sha256: plugin_sha256(&report.plugin).unwrap_or_default(),
            // A failed service keeps its last good fingerprint, so `plan` still
            // shows it as needing work.
            config_hash: if ready { report.config_hash.clone() } else { String::new() },
            outputs: report.outputs.iter().map(|o| o.name.clone()).collect(),
            ready,
            provision_ms: report.provision_ms,
            ready_ms: report.ready_ms,
            workloads: if ready { report.workloads.clone() } else { Vec::new() },
        };
        state.services.insert(report.service.clone(), entry);
    }
    Recorded { state, outputs }
}

/// The environment that owns `.env`; every other environment writes `.env.<name>`,
/// so that two environments of one project never overwrite or delete each other's.
pub const DEFAULT_ENVIRONMENT: &str = "local";

/// Where `environment`'s outputs go, beside provisioner.toml.
pub fn dotenv_path(project: &Project, environment: &str) -> PathBuf {
    let name = if environment == DEFAULT_ENVIRONMENT { ".env".to_string() } else { format!(".env.{environment}") };
    project.root().join(name)
}

/// After `run`: save `environment`'s state, write its `.env` (mode 0600) beside
/// provisioner.toml and make sure git ignores both. Returns the `.env` path.
pub fn save_run(
    project: &Project,
    environment: &str,
    catalog: &Catalog,
    scale: &BTreeMap<String, Scaled>,
    host_ports: &HostPorts,
    summary: &Summary,
) -> anyhow::Result<DotEnv> {
    let sha256 = |plugin: &str| catalog.plugins.get(plugin).map(|f| f.plugin.sha256.clone());
    let mut recorded = record(&project.name, environment, scale, summary, sha256);
    // Still offered to what this run did not create (a service that failed first, a
    // container removed by hand), until a teardown without --keep-volumes.
    recorded.state.host_ports = host_ports.clone();
    recorded.state.save(&project.state_dir(environment))?;
    let path = dotenv_path(project, environment);
    let changed = write_private_if_changed(&path, dotenv(&recorded.outputs).as_bytes())?;
    ignore_in_git(project.root())?;
    Ok(DotEnv { path, changed })
}

/// The app's `.env` after a run, and whether the run changed it.
pub struct DotEnv {
    pub path: PathBuf,
    pub changed: bool,
}

/// After `teardown`: nothing is left, so neither are services or scale overrides in
/// the state, and `.env` goes too when provisioner wrote it (a hand-written one stays).
/// `host_ports` are what `--keep-volumes` keeps for the next run (empty otherwise).
pub fn save_teardown(project: &Project, environment: &str, host_ports: HostPorts) -> anyhow::Result<()> {
    State { project: project.name.clone(), environment: environment.to_string(), host_ports, ..State::default() }
        .save(&project.state_dir(environment))?;
    let dotenv = dotenv_path(project, environment);
    if std::fs::read_to_string(&dotenv).is_ok_and(|t| t.starts_with(DOTENV_HEADER)) {
        std::fs::remove_file(&dotenv).with_context(|| format!("removing {}", dotenv.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::ServiceReport;

    fn report(service: &str, plugin: &str, status: Status, outputs: &[&str]) -> ServiceReport {
        ServiceReport {
            service: service.into(),
            plugin: plugin.into(),
            status,
            outputs: outputs.iter().map(|n| Output { name: n.to_string(), value: "v".into(), secret: false, network_value: None }).collect(),
            started_at_ms: 0,
            provision_ms: Some(10),
            pull_ms: 0,
            create_ms: 0,
            start_ms: 0,
            ready_ms: Some(20),
            total_ms: 30,
            denials: Vec::new(),
            config_hash: format!("hash-{service}"),
            workloads: Vec::new(),
        }
    }

    #[test]
    fn a_summary_becomes_state_and_outputs() {
        let summary = Summary {
            environment: "local".into(),
            services: vec![
                report("db", "postgres", Status::Ready, &["DATABASE_URL"]),
                report("api", "container", Status::Skipped { because: "db".into() }, &["API_URL"]),
            ],
            elapsed_ms: 30,
            critical_path: Vec::new(),
        };
        let scale = BTreeMap::from([("api".to_string(), Scaled { replicas: 3, config_replicas: 1 })]);
        let sha = |plugin: &str| (plugin == "postgres").then(|| "abc".to_string());
        let recorded = record("p", "local", &scale, &summary, sha);

        let state = &recorded.state;
        assert_eq!((state.project.as_str(), state.environment.as_str()), ("p", "local"));
        assert_eq!(state.scale, scale);
        let db = &state.services["db"];
        assert_eq!(
            db,
            &ServiceState {
                plugin: "postgres".into(),
                plugin_sha256: "abc".into(),
                config_hash: "hash-db".into(),
                outputs: vec!["DATABASE_URL".into()],
                ready: true,
                provision_ms: Some(10),
                ready_ms: Some(20),
                workloads: Vec::new(),
            }
        );
        let api = &state.services["api"];
        // Not ready: no fingerprint (so `plan` shows work), no sha256 known, but its
        // output names are still listed.
        assert_eq!((api.ready, api.config_hash.as_str(), api.plugin_sha256.as_str()), (false, "", ""));
        assert_eq!(api.outputs, vec!["API_URL"]);
        // Only ready services' outputs reach `.env`.
        assert_eq!(recorded.outputs.keys().collect::<Vec<_>>(), vec!["db"]);
    }

    #[test]
    fn teardown_resets_the_state_and_removes_only_our_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("provisioner.toml");
        let project = Project::parse(&file, "[project]\nname = \"p\"\n").unwrap();
        let state_dir = project.state_dir("local");
        let mut before = State { project: "p".into(), environment: "local".into(), ..State::default() };
        before.services.insert("db".into(), ServiceState::default());
        before.scale.insert("db".into(), Scaled { replicas: 2, config_replicas: 1 });
        before.save(&state_dir).unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, format!("{DOTENV_HEADER}\nA=1\n")).unwrap();

        save_teardown(&project, "local", HostPorts::new()).unwrap();
        assert_eq!(State::load(&state_dir).unwrap(), State { project: "p".into(), environment: "local".into(), ..State::default() });
        assert!(!dotenv.exists());

        std::fs::write(&dotenv, "MINE=1\n").unwrap();
        save_teardown(&project, "local", HostPorts::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&dotenv).unwrap(), "MINE=1\n");

        // Another environment's teardown never touches local's `.env`.
        std::fs::write(&dotenv, format!("{DOTENV_HEADER}\nA=1\n")).unwrap();
        let ci = dir.path().join(".env.ci");
        std::fs::write(&ci, format!("{DOTENV_HEADER}\nB=2\n")).unwrap();
        save_teardown(&project, "ci", HostPorts::new()).unwrap();
        assert!(dotenv.exists() && !ci.exists());
        assert_eq!(dotenv_path(&project, "local"), dotenv);
    }
}
