//! `provisioner logs` on a swarm: a task's log is on the node that runs it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{lock, Swarm};
use crate::engine::{ContainerDetails, ContainerEngine, ContainerRequest, Docker, EngineError, ExecRequest, ExecResult, State};
use crate::naming::LABEL_REPLICATED;

/// The containers of a swarm's tasks, on every node, as one read-only engine for
/// `provisioner logs`: each is listed under its instance's name (`…-db-server`,
/// `…-backend-app-2`), the one of its slot that runs (or ran last) only.
pub struct NodeLogs {
    engines: Vec<Arc<Docker>>,
    /// Instance name → (engine index, container id).
    names: Mutex<HashMap<String, (usize, String)>>,
}

impl Swarm {
    /// The swarm's nodes as one engine for reading logs.
    pub fn log_engine(&self) -> Result<Arc<dyn ContainerEngine>, EngineError> {
        let engines = self.node_engines()?.into_iter().map(|(_, engine)| engine).collect();
        Ok(Arc::new(NodeLogs { engines, names: Mutex::new(HashMap::new()) }))
    }
}

impl NodeLogs {
    fn located(&self, name: &str) -> Result<(Arc<Docker>, String), EngineError> {
        let names = lock(&self.names);
        let (index, id) = names.get(name).ok_or_else(|| EngineError::NotFound(format!("container {name}")))?;
        Ok((self.engines[*index].clone(), id.clone()))
    }

    fn read_only() -> EngineError {
        EngineError::Failed("the swarm's node engines are read here for logs only".into())
    }
}

impl ContainerEngine for NodeLogs {
    fn describe(&self) -> String {
        format!("{} swarm node engine(s)", self.engines.len())
    }

    fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerDetails>, EngineError> {
        let mut chosen: BTreeMap<String, (usize, ContainerDetails)> = BTreeMap::new();
        for (index, engine) in self.engines.iter().enumerate() {
            for mut details in engine.list_containers(labels)? {
                // `<service>.<slot>.<task id>`, or `<service>.<node id>.<task id>`.
                let Some((service, rest)) = details.name.split_once('.') else { continue };
                let replicated = details.labels.get(LABEL_REPLICATED).is_some_and(|v| v == "true");
                let slot = rest.split('.').next().unwrap_or("");
                let name = if replicated { format!("{service}-{slot}") } else { service.to_string() };
                let id = details.id.clone();
                details.name = name.clone();
                let better = chosen.get(&name).is_none_or(|(_, c)| c.state != State::Running && details.state == State::Running);
                if better {
                    chosen.insert(name.clone(), (index, details));
                    lock(&self.names).insert(name, (index, id));
                }
            }
        }
        Ok(chosen.into_values().map(|(_, details)| details).collect())
    }

    fn logs(&self, name: &str, lines: u32) -> Result<String, EngineError> {
        let (engine, id) = self.located(name)?;
        engine.logs(&id, lines)
    }

    fn stream_logs(&self, name: &str, options: &crate::engine::LogOptions, line: &mut dyn FnMut(crate::engine::LogLine) -> bool) -> Result<(), EngineError> {
        let (engine, id) = self.located(name)?;
        engine.stream_logs(&id, options, line)
    }

    fn ensure_network(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn remove_network(&self, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn inspect_volume(&self, _: &str) -> Result<Option<crate::engine::VolumeDetails>, EngineError> {
        Err(Self::read_only())
    }
    fn create_volume(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn remove_volume(&self, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn list_volumes(&self, _: &BTreeMap<String, String>) -> Result<Vec<crate::engine::VolumeDetails>, EngineError> {
        Err(Self::read_only())
    }
    fn ensure_image(&self, _: &str, _: &mut dyn FnMut(&str)) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn create_container(&self, _: &ContainerRequest) -> Result<String, EngineError> {
        Err(Self::read_only())
    }
    fn start_container(&self, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn stop_container(&self, _: &str, _: u32) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn remove_container(&self, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn rename_container(&self, _: &str, _: &str) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
    fn inspect_container(&self, name: &str) -> Result<Option<ContainerDetails>, EngineError> {
        let (engine, id) = self.located(name)?;
        Ok(engine.inspect_container_id(&id)?.map(|mut d| {
            d.name = name.to_string();
            d
        }))
    }
    fn exec(&self, _: &str, _: &ExecRequest) -> Result<ExecResult, EngineError> {
        Err(Self::read_only())
    }
    fn write_file(&self, _: &str, _: &str, _: &[u8], _: u32) -> Result<(), EngineError> {
        Err(Self::read_only())
    }
}
