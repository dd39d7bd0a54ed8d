//! Capabilities: what a plugin declares in `describe`, what the operator grants, and
//! the intersection the host enforces. Each capability has one file beside this one
//! holding its checks and the host call that applies them, in the host's own types;
//! the WIT glue of each version (`runtime::wit`) converts at the edge.
//!
//! Effective = declared ∩ granted. A request outside it becomes a [`Denial`]: the
//! guest receives `error::denied(...)`, the host logs it and the run summary lists it.

pub mod archive;
pub mod docker;
pub mod files;
pub mod first_party;
pub mod log;
pub mod monitoring;
pub mod net;
pub mod secrets;
pub mod service;

pub use service::{HostCalls, HostError, ProgressSink, ServiceHost};

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

/// One capability, host-side twin of the WIT `capability` variant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Capability {
    Image(String),
    Publish(u16),
    Volume(String),
    Exec,
    NetProbe,
    StateFiles,
    Secrets,
    /// Read where the environment's other services serve metrics (WIT 0.2).
    ScrapeTargets,
}

impl Capability {
    /// One line saying what granting this means, for `plugins list` and prompts.
    pub fn meaning(&self) -> String {
        match self {
            Capability::Image(p) => format!("run containers from images matching `{p}`"),
            Capability::Publish(p) => format!("publish container port {p} on the host"),
            Capability::Volume(v) => format!("create and mount its own volume `{v}`"),
            Capability::Exec => "run commands inside its own containers".into(),
            Capability::NetProbe => "open TCP connections to its own published ports and its own containers".into(),
            Capability::StateFiles => "read and write its own state folder".into(),
            Capability::Secrets => "generate and read its own secrets".into(),
            Capability::ScrapeTargets => {
                "read where the environment's other services serve metrics (and start after them)".into()
            }
        }
    }

    /// The line to add under `[plugins.NAME.grants]` to grant this capability.
    pub fn grant_line(&self) -> String {
        match self {
            Capability::Image(p) => format!("images = [\"{p}\"]"),
            Capability::Publish(p) => format!("publish = [{p}]"),
            Capability::Volume(v) => format!("volumes = [\"{v}\"]"),
            Capability::Exec => "exec = true".into(),
            Capability::NetProbe => "net_probe = true".into(),
            Capability::StateFiles => "state_files = true".into(),
            Capability::Secrets => "secrets = true".into(),
            Capability::ScrapeTargets => "scrape_targets = true".into(),
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Capability::Image(p) => write!(f, "image {p}"),
            Capability::Publish(p) => write!(f, "publish {p}"),
            Capability::Volume(v) => write!(f, "volume {v}"),
            Capability::Exec => f.write_str("exec"),
            Capability::NetProbe => f.write_str("net-probe"),
            Capability::StateFiles => f.write_str("state-files"),
            Capability::Secrets => f.write_str("secrets"),
            Capability::ScrapeTargets => f.write_str("scrape-targets"),
        }
    }
}

/// What the operator grants one plugin: `[plugins.NAME.grants]` in provisioner.toml,
/// or the default policy of a first-party plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Image patterns (`*` matches any run of characters).
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub publish: Vec<u16>,
    /// Volume short-name patterns.
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub exec: bool,
    #[serde(default)]
    pub net_probe: bool,
    #[serde(default)]
    pub state_files: bool,
    #[serde(default)]
    pub secrets: bool,
    /// Skipped when false, so lockfiles written before WIT 0.2's monitoring read and
    /// write unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scrape_targets: bool,
}

/// How much of a declared capability the grants cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "by")]
pub enum GrantStatus {
    Granted,
    /// Only some values of a pattern capability, e.g. `postgres:16*` of `postgres:*`.
    Partly(Vec<String>),
    NotGranted,
}

fn matches_any(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| WildMatch::new(p).matches(value))
}

impl Grants {
    /// Everything a plugin declares, granted as declared.
    pub fn all_of(declared: &[Capability]) -> Grants {
        let mut grants = Grants::default();
        for capability in declared {
            match capability {
                Capability::Image(p) => grants.images.push(p.clone()),
                Capability::Publish(p) => grants.publish.push(*p),
                Capability::Volume(v) => grants.volumes.push(v.clone()),
                Capability::Exec => grants.exec = true,
                Capability::NetProbe => grants.net_probe = true,
                Capability::StateFiles => grants.state_files = true,
                Capability::Secrets => grants.secrets = true,
                Capability::ScrapeTargets => grants.scrape_targets = true,
            }
        }
        grants
    }

    pub fn status(&self, capability: &Capability) -> GrantStatus {
        let flag = |on: bool| if on { GrantStatus::Granted } else { GrantStatus::NotGranted };
        let pattern = |granted: &[String], declared: &str| {
            // A granted pattern that matches the declared pattern's text covers all of
            // it (`*` covers `postgres:*`); others cover only part of it.
            if matches_any(granted, declared) {
                GrantStatus::Granted
            } else if granted.is_empty() {
                GrantStatus::NotGranted
            } else {
                GrantStatus::Partly(granted.to_vec())
            }
        };
        match capability {
            Capability::Image(p) => pattern(&self.images, p),
            Capability::Volume(v) => pattern(&self.volumes, v),
            Capability::Publish(p) => flag(self.publish.contains(p)),
            Capability::Exec => flag(self.exec),
            Capability::NetProbe => flag(self.net_probe),
            Capability::StateFiles => flag(self.state_files),
            Capability::Secrets => flag(self.secrets),
            Capability::ScrapeTargets => flag(self.scrape_targets),
        }
    }
}

/// A refused request, as logged and listed in the run summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub plugin: String,
    pub service: String,
    /// The capability that would have allowed it, e.g. `image`.
    pub capability: String,
    /// What was asked for, e.g. `forbidden:latest`.
    pub argument: String,
    /// The message the guest received.
    pub message: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "service `{}` (plugin `{}`): {}", self.service, self.plugin, self.message)
    }
}

/// The capabilities one plugin may use for one service: declared ∩ granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub plugin: String,
    pub declared: Vec<Capability>,
    pub grants: Grants,
}

/// Why a check failed, before it is attributed to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub capability: &'static str,
    pub argument: String,
    pub message: String,
}

impl Effective {
    pub fn new(plugin: &str, declared: Vec<Capability>, grants: Grants) -> Self {
        Effective { plugin: plugin.to_string(), declared, grants }
    }

    fn refuse(&self, capability: &'static str, argument: &str, declared: bool, wanted: Capability) -> Refusal {
        let message = if declared {
            format!(
                "{capability} `{argument}` is declared by plugin `{}` but not granted; to grant it add \
                 `{}` under [plugins.{}.grants] in provisioner.toml",
                self.plugin,
                wanted.grant_line(),
                self.plugin
            )
        } else {
            format!(
                "{capability} `{argument}` is not among the capabilities plugin `{}` declares ({})",
                self.plugin,
                if self.declared.is_empty() {
                    "none".to_string()
                } else {
                    self.declared.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                }
            )
        };
        Refusal { capability, argument: argument.to_string(), message }
    }

    /// A value of a pattern capability (`image`, `volume`): declared by a pattern and
    /// granted by one.
    fn check_pattern(&self, wanted: Capability) -> Result<(), Refusal> {
        let (name, value, granted) = match &wanted {
            Capability::Image(v) => ("image", v, &self.grants.images),
            Capability::Volume(v) => ("volume", v, &self.grants.volumes),
            _ => return Err(self.refuse("capability", &wanted.to_string(), false, wanted.clone())),
        };
        let declared: Vec<String> = self
            .declared
            .iter()
            .filter(|c| std::mem::discriminant(*c) == std::mem::discriminant(&wanted))
            .filter_map(|c| match c {
                Capability::Image(p) | Capability::Volume(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        let is_declared = matches_any(&declared, value);
        if is_declared && matches_any(granted, value) {
            Ok(())
        } else {
            Err(self.refuse(name, value, is_declared, wanted.clone()))
        }
    }

    pub fn check_image(&self, image: &str) -> Result<(), Refusal> {
        self.check_pattern(Capability::Image(image.to_string()))
    }

    pub fn check_volume(&self, volume: &str) -> Result<(), Refusal> {
        self.check_pattern(Capability::Volume(volume.to_string()))
    }

    pub fn check_publish(&self, port: u16) -> Result<(), Refusal> {
        let is_declared = self.declared.contains(&Capability::Publish(port));
        if is_declared && self.grants.publish.contains(&port) {
            Ok(())
        } else {
            Err(self.refuse("publish", &port.to_string(), is_declared, Capability::Publish(port)))
        }
    }

    fn check_flag(&self, capability: Capability, name: &'static str, granted: bool, argument: &str) -> Result<(), Refusal> {
        let is_declared = self.declared.contains(&capability);
        if is_declared && granted {
            Ok(())
        } else {
            Err(self.refuse(name, argument, is_declared, capability))
        }
    }

    pub fn check_exec(&self, container: &str) -> Result<(), Refusal> {
        self.check_flag(Capability::Exec, "exec", self.grants.exec, container)
    }

    pub fn check_secrets(&self, name: &str) -> Result<(), Refusal> {
        self.check_flag(Capability::Secrets, "secrets", self.grants.secrets, name)
    }

    pub fn check_scrape_targets(&self) -> Result<(), Refusal> {
        self.check_flag(Capability::ScrapeTargets, "scrape-targets", self.grants.scrape_targets, "the environment's metrics endpoints")
    }

    /// Whether the plugin collects the environment's metrics: its service starts after
    /// every other one and the others are told to serve theirs.
    pub fn collects_metrics(&self) -> bool {
        self.declared.contains(&Capability::ScrapeTargets) && self.grants.scrape_targets
    }

    pub fn allows_net_probe(&self) -> bool {
        self.declared.contains(&Capability::NetProbe) && self.grants.net_probe
    }

    pub fn allows_state_files(&self) -> bool {
        self.declared.contains(&Capability::StateFiles) && self.grants.state_files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effective(declared: Vec<Capability>, grants: Grants) -> Effective {
        Effective::new("p", declared, grants)
    }

    #[test]
    fn image_needs_both_declaration_and_grant() {
        let declared = vec![Capability::Image("postgres:*".into())];
        let narrow = Grants { images: vec!["postgres:16*".into()], ..Grants::default() };
        // (declared, granted, image, allowed, message mentions)
        let cases: Vec<(Vec<Capability>, Grants, &str, bool, &str)> = vec![
            (declared.clone(), narrow.clone(), "postgres:16", true, ""),
            (declared.clone(), narrow.clone(), "postgres:16.4-bookworm", true, ""),
            (declared.clone(), narrow.clone(), "postgres:15", false, "not granted"),
            (declared.clone(), narrow.clone(), "nginx:1", false, "not among"),
            (declared.clone(), Grants::default(), "postgres:16", false, "images = [\"postgres:16\"]"),
            (vec![], Grants::all_of(&declared), "postgres:16", false, "declares (none)"),
            (declared.clone(), Grants { images: vec!["*".into()], ..Grants::default() }, "postgres:9", true, ""),
        ];
        for (declared, grants, image, allowed, mention) in cases {
            let result = effective(declared, grants).check_image(image);
            assert_eq!(result.is_ok(), allowed, "image {image}: {result:?}");
            if let Err(refusal) = result {
                assert!(refusal.message.contains(mention), "{image}: {}", refusal.message);
                assert_eq!(refusal.argument, image);
            }
        }
    }

    #[test]
    fn flags_and_ports() {
        let declared = vec![Capability::Exec, Capability::Publish(5432), Capability::Secrets];
        let granted = Grants { exec: true, publish: vec![5432, 6379], ..Grants::default() };
        let e = effective(declared, granted);
        let cases: Vec<(Result<(), Refusal>, bool)> = vec![
            (e.check_exec("server"), true),
            (e.check_publish(5432), true),
            (e.check_publish(6379), false), // granted but never declared
            (e.check_secrets("admin"), false), // declared but not granted
        ];
        for (i, (result, allowed)) in cases.into_iter().enumerate() {
            assert_eq!(result.is_ok(), allowed, "case {i}: {result:?}");
        }
        assert!(!e.allows_net_probe());
        assert!(!e.allows_state_files());
    }

    #[test]
    fn grant_status_for_listing() {
        let grants = Grants { images: vec!["postgres:16*".into()], exec: true, ..Grants::default() };
        let cases = [
            (Capability::Image("postgres:16*".into()), GrantStatus::Granted),
            (Capability::Image("postgres:*".into()), GrantStatus::Partly(vec!["postgres:16*".into()])),
            (Capability::Exec, GrantStatus::Granted),
            (Capability::Secrets, GrantStatus::NotGranted),
            (Capability::Volume("data".into()), GrantStatus::NotGranted),
        ];
        for (capability, status) in cases {
            assert_eq!(grants.status(&capability), status, "{capability}");
        }
    }
}
