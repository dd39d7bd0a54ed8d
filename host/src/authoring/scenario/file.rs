//! The scenario file: its format as written, read and checked against the plugin
//! before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::PluginInfo;

/// A scenario file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The service's name in the throwaway project (default: the plugin's name).
    pub service: Option<String>,
    /// An image override for the service, as `[environments.NAME.images]` gives.
    pub image: Option<String>,
    /// How long `ready` may take in each run (default: the host's default).
    pub readiness_timeout_secs: Option<u64>,
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: Option<String>,
    #[serde(default)]
    pub action: Action,
    /// The service's `config` table from this step on; the previous step's when absent
    /// (`{}` for the first).
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `provisioner run`: provision, then wait until ready.
    #[default]
    Run,
    /// `provisioner teardown`: everything goes, the volumes too.
    Teardown,
    /// `provisioner teardown --keep-volumes`.
    TeardownKeepVolumes,
}

impl Action {
    pub(super) fn word(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Teardown => "teardown",
            Action::TeardownKeepVolumes => "teardown --keep-volumes",
        }
    }
}

/// What must hold after a step.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The step fails, and its message contains this (a config the plugin must refuse,
    /// say). Without it, the step must succeed.
    pub error_contains: Option<String>,
    /// Per output name: the value it must have (a string), or a table.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputExpect>,
    /// TCP to the `host:port` in an output (or the host and port of a URL in it).
    #[serde(default)]
    pub tcp: OneOrMany<Tcp>,
    /// A command run in one of the service's containers.
    #[serde(default)]
    pub exec: OneOrMany<Exec>,
    /// How many containers the service has (any state).
    pub containers: Option<usize>,
    /// Volumes of the service (short names, as the plugin names them) that must exist.
    #[serde(default)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl<T> OneOrMany<T> {
    pub(super) fn items(&self) -> &[T] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OutputExpect {
    Equals(String),
    Table(OutputCheck),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputCheck {
    pub equals: Option<String>,
    /// A pattern: `*` any run of characters, `?` one character.
    pub matches: Option<String>,
    /// The same value as after the previous `run` step (true), or a different one (false).
    pub unchanged: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Tcp {
    /// Connect only.
    Output(String),
    Table(TcpCheck),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    pub output: String,
    /// Sent once connected (`\r\n` as TOML writes it: "version\r\n").
    pub send: Option<String>,
    /// The answer must contain this.
    pub expect: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The container's short name (as the plugin names it); may be left out when the
    /// service has one container.
    pub container: Option<String>,
    pub cmd: Vec<String>,
    #[serde(default)]
    pub exit_code: i32,
    pub stdout_contains: Option<String>,
    pub stderr_contains: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: step {step}: {message}", path.display())]
    Invalid { path: PathBuf, step: usize, message: String },
}

impl Scenario {
    /// Read and parse `path`; the step-by-step checks need the plugin ([`Scenario::check`]).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
        let scenario: Scenario =
            toml::from_str(&text).map_err(|e| ScenarioError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        if scenario.steps.is_empty() {
            return Err(ScenarioError::Parse { path: path.to_path_buf(), message: "no steps: add at least one [[step]]".into() });
        }
        Ok(scenario)
    }

    /// What can be checked before anything starts: every output named is one the plugin
    /// declares, every config is a table, every command has a program.
    pub fn check(&self, path: &Path, info: &PluginInfo) -> Result<(), ScenarioError> {
        for (index, step) in self.steps.iter().enumerate() {
            let invalid = |message: String| ScenarioError::Invalid { path: path.to_path_buf(), step: index + 1, message };
            let declared = |key: &str, what: &str| {
                if info.outputs.iter().any(|o| o == key) {
                    Ok(())
                } else {
                    Err(invalid(format!(
                        "{what}: `{key}` is not an output of plugin `{}` (it declares: {})",
                        info.name,
                        if info.outputs.is_empty() { "none".to_string() } else { info.outputs.join(", ") }
                    )))
                }
            };
            if step.config.as_ref().is_some_and(|c| !c.is_object()) {
                return Err(invalid("config: must be a table, e.g. config = { key = \"value\" }".into()));
            }
            for key in step.expect.outputs.keys() {
                declared(key, "expect.outputs")?;
            }
            for tcp in step.expect.tcp.items() {
                declared(tcp.output(), "expect.tcp")?;
            }
            if step.expect.exec.items().iter().any(|e| e.cmd.is_empty()) {
                return Err(invalid("expect.exec: cmd is empty; give the program and its arguments, e.g. cmd = [\"sh\", \"-c\", \"…\"]".into()));
            }
            let has_output_checks = !step.expect.outputs.is_empty() || !step.expect.tcp.items().is_empty();
            if step.action != Action::Run && has_output_checks {
                return Err(invalid(format!("expect.outputs and expect.tcp need outputs, which a `{}` step has none of", step.action.word())));
            }
        }
        Ok(())
    }
}

impl Tcp {
    pub(super) fn output(&self) -> &str {
        match self {
            Tcp::Output(key) => key,
            Tcp::Table(check) => &check.output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        toml::from_str::<Scenario>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_small_scenario_reads_as_written() {
        let scenario = parse(
            r#"
            service = "cache"
            [[step]]
            config = { memory_mb = 64 }
            expect.outputs = { URL = "x", OTHER = { matches = "127.0.0.1:*", unchanged = true } }
            expect.tcp = "URL"
            expect.exec = { cmd = ["sh", "-c", "true"], stdout_contains = "" }
            [[step]]
            action = "teardown-keep-volumes"
            expect.volumes = ["data"]
            [[step]]
            expect.tcp = [{ output = "URL", send = "version\r\n", expect = "VERSION" }]
            "#,
        )
        .unwrap();
        assert_eq!(scenario.steps.len(), 3);
        assert_eq!(scenario.steps[1].action, Action::TeardownKeepVolumes);
        assert_eq!(scenario.steps[0].expect.exec.items()[0].cmd, ["sh", "-c", "true"]);
        assert!(matches!(&scenario.steps[0].expect.outputs["URL"], OutputExpect::Equals(v) if v == "x"));
        assert!(scenario.steps[2].config.is_none(), "a step without config keeps the previous one");
        let err = parse("[[step]]\nactoin = \"run\"\n").unwrap_err();
        assert!(err.contains("unknown field `actoin`"), "{err}");
        let err = parse("[[step]]\naction = \"destroy\"\n").unwrap_err();
        assert!(err.contains("destroy"), "{err}");
    }

    #[test]
    fn checks_name_the_step_and_the_key() {
        let info = PluginInfo {
            name: "memcached".into(),
            version: "0.1.0".into(),
            wit_version: "0.2.0".into(),
            summary: String::new(),
            capabilities: Vec::new(),
            config_schema: "{}".into(),
            outputs: vec!["MEMCACHED_SERVERS".into()],
            defaults: Vec::new(),
            backup: None,
            metrics: Vec::new(),
        };
        let path = Path::new("scenario.toml");
        let scenario = parse("[[step]]\n[[step]]\nexpect.tcp = \"SERVERS\"\n").unwrap();
        let err = scenario.check(path, &info).unwrap_err().to_string();
        assert_eq!(err, "scenario.toml: step 2: expect.tcp: `SERVERS` is not an output of plugin `memcached` (it declares: MEMCACHED_SERVERS)");
        let scenario = parse("[[step]]\naction = \"teardown\"\nexpect.outputs = { MEMCACHED_SERVERS = \"x\" }\n").unwrap();
        assert!(scenario.check(path, &info).unwrap_err().to_string().starts_with("scenario.toml: step 1: expect.outputs and expect.tcp need outputs"));
        let scenario = parse("[[step]]\nexpect.exec = { cmd = [] }\n").unwrap();
        assert!(scenario.check(path, &info).unwrap_err().to_string().contains("cmd is empty"));
    }
}
