//! Looking without touching: `status` (each service's containers and readiness) and
//! `plan` (what `run` would do, from the same reconcile `run` uses).

use serde::Serialize;

use super::{config_hash, PreflightError, Stack};
use crate::engine::ContainerDetails;
use crate::naming::{self, LABEL_SERVICE};
use crate::state::State;
use crate::realise::{Operation, Realiser};

/// One service as `status` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub plugin: String,
    pub containers: Vec<ContainerStatus>,
    pub ready: bool,
    /// Why not, when not ready.
    pub reason: Option<String>,
    /// What the plugin says the user should know now (its `notices` hook, asked once
    /// the service is ready), e.g. the alerts a collector sees firing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    pub state: String,
    /// `host:port` of each published port.
    pub endpoints: Vec<String>,
    /// The cluster node it runs on (a cluster target only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// What `run` would do to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Start,
    /// Containers exist but no record of the run that made them: `provision` runs and
    /// keeps each one whose spec is unchanged.
    Adopt,
    Unchanged,
    Remove,
}

impl Action {
    /// The word `plan` prints.
    pub fn word(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Start => "start",
            Action::Adopt => "adopt",
            Action::Unchanged => "unchanged",
            Action::Remove => "remove",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub service: String,
    pub action: Action,
    pub detail: String,
    /// The engine operations `run` will carry out, where they are known before
    /// `provision` runs (the same reconcile `run` uses, on the recorded workloads).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
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
                        let containers = p
                            .host
                            .realiser
                            .list(&p.host.scope)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|c| ContainerStatus {
                                name: c.name,
                                state: format!("{:?}", c.state).to_lowercase(),
                                endpoints: c.ports.iter().map(|(_, ip, port)| format!("{ip}:{port}")).collect(),
                                node: c.node,
                            })
                            .collect::<Vec<_>>();
                        let ctx = self.context(env, p, &p.service.config);
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
                        let notices = if ready { self.notices(p, &ctx) } else { Vec::new() };
                        ServiceStatus {
                            service: p.service.name.clone(),
                            plugin: p.service.plugin.clone(),
                            containers,
                            ready,
                            reason,
                            notices,
                        }
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        Ok(statuses)
    }

    /// A ready service's notices, masked; a failed call is one notice saying so.
    fn notices(&self, p: &super::Prepared, ctx: &crate::runtime::HookContext) -> Vec<String> {
        let answer = match self.runtime.notices(&p.plugin, p.host.clone(), ctx) {
            Ok(call) => call.value,
            Err(failure) => Err(failure.to_string()),
        };
        match answer {
            Ok(notices) => notices.iter().map(|n| self.mask(p, n)).collect(),
            Err(message) => vec![format!("its plugin could not say what is going on: {}", self.mask(p, &message))],
        }
    }

    /// What `run` would create, change or remove. Reads the engine; changes nothing.
    pub fn plan(&self, state: &State) -> Result<Vec<PlanItem>, PreflightError> {
        let (env, prepared) = self.prepare()?;
        let realiser = self.realiser();
        let existing =
            realiser.environment(&self.project.name, self.environment).map_err(|e| engine_preflight(realiser.as_ref(), e))?;
        let mut items = Vec::new();
        for p in prepared.values() {
            let name = &p.service.name;
            let mine: Vec<&ContainerDetails> =
                existing.iter().filter(|c| naming::service_of(&c.labels) == Some(name.as_str())).collect();
            let hash = config_hash(&p.plugin.sha256, &self.context(&env, p, &p.service.config));
            let record = state.services.get(name);
            let item = |action, detail: String, operations| PlanItem { service: name.clone(), action, detail, operations };
            let item = match record {
                None if mine.is_empty() => item(Action::Create, format!("new {} service", p.service.plugin), vec![]),
                None => item(
                    Action::Adopt,
                    format!(
                        "{} container(s) exist but no record of the run that made them; provision runs and keeps each one whose spec is unchanged",
                        mine.len()
                    ),
                    vec![],
                ),
                Some(r) if r.config_hash.is_empty() => {
                    item(Action::Update, "the last run did not finish this service; provision runs again".into(), vec![])
                }
                Some(r) if r.config_hash != hash => item(
                    Action::Update,
                    "config, plugin or image changed; provision runs again, instances whose spec changes are replaced (replicas one at a time), volumes kept".into(),
                    vec![],
                ),
                Some(r) if r.workloads.is_empty() => {
                    if mine.is_empty() {
                        item(Action::Create, "its containers are gone; provision runs again".into(), vec![])
                    } else if mine.iter().any(|c| c.state != crate::engine::State::Running) {
                        item(Action::Start, "stopped containers are started".into(), vec![])
                    } else {
                        item(Action::Unchanged, format!("{} container(s) running", mine.len()), vec![])
                    }
                }
                Some(r) => {
                    let mut ops = Vec::new();
                    for workload in &r.workloads {
                        let planned = p.host.realiser.plan(&p.host.scope, &workload.to_workload(&p.host.scope));
                        ops.extend(planned.map_err(|e| engine_preflight(realiser.as_ref(), e))?);
                    }
                    let action = if ops.is_empty() {
                        Action::Unchanged
                    } else if ops.iter().all(|op| matches!(op, Operation::Start(_))) {
                        Action::Start
                    } else {
                        Action::Update
                    };
                    let detail = if ops.is_empty() {
                        format!("{} container(s) running as provisioned", mine.len())
                    } else {
                        "config unchanged; the engine differs from what the last run made".to_string()
                    };
                    item(action, detail, ops.iter().map(|op| op.to_string()).collect())
                }
            };
            items.push(item);
        }
        for orphan in self.orphans(&existing) {
            items.push(PlanItem {
                service: orphan.clone(),
                action: Action::Remove,
                detail: "no longer in provisioner.toml; containers removed, volumes kept".into(),
                operations: vec![],
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
        let realiser = self.realiser();
        let existing = realiser.environment(&self.project.name, self.environment)?;
        let orphans = self.orphans(&existing);
        for container in &existing {
            if naming::service_of(&container.labels).is_some_and(|s| orphans.iter().any(|o| o == s)) {
                realiser.remove_from_environment(&self.project.name, self.environment, &container.name)?;
            }
        }
        Ok(orphans)
    }

    /// The host ports the engine bound for the environment's containers, by engine name.
    pub fn host_ports(&self) -> Result<crate::realise::HostPorts, crate::engine::EngineError> {
        Ok(crate::realise::host_ports(&self.realiser().environment(&self.project.name, self.environment)?))
    }

    /// After the plugins' teardown: remove whatever is still labelled for this project
    /// and environment (containers, volumes unless kept, the network). Nothing
    /// without those labels is touched.
    pub fn sweep(&self, keep_volumes: bool) -> Result<usize, crate::engine::EngineError> {
        self.realiser().sweep(&self.project.name, self.environment, keep_volumes)
    }
}

fn engine_preflight(realiser: &dyn Realiser, error: crate::engine::EngineError) -> PreflightError {
    PreflightError::Engine(format!("{} ({})", error, realiser.describe()))
}

