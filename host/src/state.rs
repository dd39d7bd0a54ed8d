//! What a run leaves behind in `.provisioner/<env>/`: `state.json` (what exists,
//! config hashes, timings; written atomically) guarded by `lock` so two runs of one
//! environment never interleave, and the `.env` file the application reads.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::fsutil::{create_private_dir, write_private_if_changed};
use crate::realise::HostPorts;
use crate::runtime::Output;

/// One service as the last run left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub plugin: String,
    pub plugin_sha256: String,
    /// sha256 of the service's resolved config, replicas and image override.
    pub config_hash: String,
    /// Names of the outputs it produced (values live only in `.env`).
    pub outputs: Vec<String>,
    pub ready: bool,
    pub provision_ms: Option<u128>,
    pub ready_ms: Option<u128>,
    /// What `provision` realised (names, images, spec hashes; nothing secret), so that
    /// `plan` can reconcile the engine against it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<crate::realise::RecordedWorkload>,
}

/// `.provisioner/<env>/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub project: String,
    pub environment: String,
    pub services: BTreeMap<String, ServiceState>,
    /// `provisioner scale` overrides, by service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scale: BTreeMap<String, Scaled>,
    /// The host ports the engine had chosen for each container, by engine name, kept by
    /// `teardown --keep-volumes` so that the next `run` offers them again and the app's
    /// `.env` stays as it was while the data does.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_ports: HostPorts,
}

/// A `provisioner scale` override: run `replicas` instances for as long as
/// provisioner.toml still says `config_replicas`. Editing the file's `replicas`
/// afterwards is the newer decision, so it wins and the override lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaled {
    pub replicas: u32,
    pub config_replicas: u32,
}

impl State {
    /// The overrides that still apply to a config whose services ask for
    /// `configured` replicas each.
    pub fn live_scale(&self, configured: &BTreeMap<String, u32>) -> BTreeMap<String, Scaled> {
        self.scale
            .iter()
            .filter(|(service, scaled)| configured.get(*service) == Some(&scaled.config_replicas))
            .map(|(service, scaled)| (service.clone(), *scaled))
            .collect()
    }
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// The state in `dir`, or an empty one when there is none yet.
    pub fn load(dir: &Path) -> anyhow::Result<State> {
        let path = Self::path(dir);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged; move it away and run again", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Write atomically: a crash leaves the old file or the new one, never half. The
    /// same state is not written again.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        write_private_if_changed(&Self::path(dir), serde_json::to_string_pretty(self)?.as_bytes())?;
        Ok(())
    }
}

/// An exclusive hold on one environment, released on drop.
pub struct EnvLock {
    _file: File,
}

impl EnvLock {
    /// Take the environment's lock, waiting (and saying so once) while another
    /// provisioner holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<EnvLock> {
        create_private_dir(dir)?;
        let path = dir.join("lock");
        let file = File::options().create(true).truncate(false).write(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                eprintln!("another provisioner is working on this environment ({}); waiting for it to finish…", path.display());
                file.lock().with_context(|| format!("locking {}", path.display()))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
        }
        Ok(EnvLock { _file: file })
    }
}

pub const DOTENV_HEADER: &str = "# Written by provisioner; regenerated on every run. Do not edit or commit.";

/// The `.env` lines for all services' outputs. A name produced by more than one
/// service is written once per service, prefixed with the service's name
/// (`DB_DATABASE_URL`).
pub fn dotenv(outputs: &BTreeMap<String, Vec<Output>>) -> String {
    let mut producers: BTreeMap<&str, usize> = BTreeMap::new();
    for list in outputs.values() {
        for output in list {
            *producers.entry(output.name.as_str()).or_default() += 1;
        }
    }
    let mut text = format!("{DOTENV_HEADER}\n");
    for (service, list) in outputs {
        for output in list {
            let name = if producers[output.name.as_str()] > 1 {
                format!("{}_{}", service.to_uppercase().replace('-', "_"), output.name)
            } else {
                output.name.clone()
            };
            text.push_str(&format!("{name}={}\n", quote(&output.value)));
        }
    }
    text
}

/// Quote a value for `.env` readers (docker compose, dotenv libraries, `set -a; .`).
fn quote(value: &str) -> String {
    if value.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c)) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Make sure `.gitignore` in `root` lists `.env` and `.provisioner/`.
pub fn ignore_in_git(root: &Path) -> anyhow::Result<()> {
    let path = root.join(".gitignore");
    let existing = fs::read_to_string(&path).unwrap_or_default();
    let mut missing = Vec::new();
    for entry in [".env", ".env.*", ".provisioner/"] {
        if !existing.lines().any(|l| l.trim() == entry || l.trim() == format!("/{entry}")) {
            missing.push(entry);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for entry in missing {
        text.push_str(entry);
        text.push('\n');
    }
    fs::write(&path, text).with_context(|| format!("updating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_override_lapses_when_the_file_changes_its_replicas() {
        let scaled = |replicas, config_replicas| Scaled { replicas, config_replicas };
        let state = State {
            scale: BTreeMap::from([("api".to_string(), scaled(3, 1)), ("web".to_string(), scaled(2, 1)), ("gone".to_string(), scaled(2, 1))]),
            ..State::default()
        };
        let configured = BTreeMap::from([("api".to_string(), 1), ("web".to_string(), 4)]);
        let live = state.live_scale(&configured);
        assert_eq!(live, BTreeMap::from([("api".to_string(), scaled(3, 1))]));
    }

    #[test]
    fn clashing_names_are_prefixed_by_service() {
        let outputs = BTreeMap::from([
            ("db".to_string(), vec![Output::new("DATABASE_URL", "postgres://a:b@h:1/d", true)]),
            ("audit-db".to_string(), vec![Output::new("DATABASE_URL", "postgres://c@h:2/e", true)]),
            ("cache".to_string(), vec![Output::new("REDIS_URL", "redis://x y", true)]),
        ]);
        let text = dotenv(&outputs);
        assert!(text.starts_with(DOTENV_HEADER));
        assert!(text.contains("\nDB_DATABASE_URL=postgres://a:b@h:1/d\n"), "{text}");
        assert!(text.contains("\nAUDIT_DB_DATABASE_URL=postgres://c@h:2/e\n"), "{text}");
        assert!(text.contains("\nREDIS_URL='redis://x y'\n"), "{text}");
    }

    #[test]
    fn state_round_trips_privately_and_gitignore_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let env_dir = dir.path().join(".provisioner/local");
        assert_eq!(State::load(&env_dir).unwrap(), State::default());
        let mut state = State { project: "p".into(), environment: "local".into(), ..State::default() };
        state.services.insert("db".into(), ServiceState { plugin: "postgres".into(), ready: true, ..Default::default() });
        state.save(&env_dir).unwrap();
        assert_eq!(State::load(&env_dir).unwrap(), state);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(State::path(&env_dir)).unwrap().permissions().mode() & 0o777, 0o600);

        fs::write(dir.path().join(".gitignore"), "target").unwrap();
        ignore_in_git(dir.path()).unwrap();
        ignore_in_git(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join(".gitignore")).unwrap(), "target\n.env\n.env.*\n.provisioner/\n");
    }

    #[test]
    fn the_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let held = EnvLock::acquire(dir.path()).unwrap();
        let file = File::options().write(true).open(dir.path().join("lock")).unwrap();
        assert!(matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock)));
        drop(held);
        assert!(file.try_lock().is_ok());
    }
}
