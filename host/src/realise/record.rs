//! What a run realised, as recorded in state.json: enough for `plan` to reconcile the
//! engine against it later, and nothing secret (no environment, files or commands).

use serde::{Deserialize, Serialize};

use crate::engine::ContainerRequest;
use crate::naming::{self, Scope, LABEL_SPEC_HASH};
use crate::policy::Workload;

/// Host ports to offer a container again when it is created, by engine name.
pub type HostPorts = std::collections::BTreeMap<String, Vec<KeptPort>>;

/// A published port as the engine had bound it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptPort {
    pub container: u16,
    pub host: u16,
}

/// The host ports of `containers` as the engine bound them.
pub fn host_ports(containers: &[crate::engine::ContainerDetails]) -> HostPorts {
    containers
        .iter()
        .filter(|c| !c.ports.is_empty())
        .map(|c| (c.name.clone(), c.ports.iter().map(|(container, _, host)| KeptPort { container: *container, host: *host }).collect()))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedWorkload {
    pub name: String,
    pub replicated: bool,
    pub instances: Vec<RecordedInstance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedInstance {
    pub name: String,
    pub image: String,
    pub spec_hash: String,
    #[serde(default)]
    pub volumes: Vec<String>,
}

impl RecordedWorkload {
    pub fn of(workload: &Workload) -> Self {
        RecordedWorkload {
            name: workload.name.clone(),
            replicated: workload.replicated,
            instances: workload
                .instances
                .iter()
                .map(|r| RecordedInstance {
                    name: r.name.clone(),
                    image: r.image.clone(),
                    spec_hash: r.labels.get(LABEL_SPEC_HASH).cloned().unwrap_or_default(),
                    volumes: r.volumes.iter().map(|(v, _, _)| v.clone()).collect(),
                })
                .collect(),
        }
    }

    /// The workload as reconcile sees it. Only for planning: the requests carry
    /// names, labels, image and volumes, not what a container would be created from.
    pub fn to_workload(&self, scope: &Scope) -> Workload {
        let instances = self
            .instances
            .iter()
            .map(|i| {
                let mut labels = naming::workload_labels(scope, &self.name);
                labels.insert(LABEL_SPEC_HASH.to_string(), i.spec_hash.clone());
                ContainerRequest {
                    name: i.name.clone(),
                    image: i.image.clone(),
                    command: None,
                    entrypoint: None,
                    env: Vec::new(),
                    labels,
                    ports: Vec::new(),
                    volumes: i.volumes.iter().map(|v| (v.clone(), String::new(), false)).collect(),
                    network: naming::network_name(&scope.project, &scope.environment),
                    aliases: Vec::new(),
                    files: Vec::new(),
                    secrets: Default::default(),
                    user: None,
                    health: None,
                    memory_bytes: 0,
                    nano_cpus: 0,
                    pids: 0,
                    stop_timeout_secs: 0,
                }
            })
            .collect();
        Workload { name: self.name.clone(), replicated: self.replicated, instances }
    }
}
