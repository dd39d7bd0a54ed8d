//! The plain-container realiser: one engine, one container per instance.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::execute::Executor;
use super::reconcile::{self, Observed, Operation};
use super::{Deployment, HostPorts, Observer, Realiser};
use crate::engine::{ContainerDetails, ContainerEngine, EngineError, ExecRequest, ExecResult};
use crate::naming::{self, Scope};
use crate::policy::Workload;

pub struct Containers {
    engine: Arc<dyn ContainerEngine>,
    offered: HostPorts,
    /// Networks this realiser has made sure of: every service of a run needs the same
    /// one, and the engine takes those requests one at a time. Forgotten by `sweep`.
    networks: Mutex<HashSet<String>>,
}

impl Containers {
    pub fn new(engine: Arc<dyn ContainerEngine>) -> Self {
        Containers { engine, offered: HostPorts::new(), networks: Mutex::default() }
    }

    /// Offer a container that is created anew the host ports it had before (what
    /// `teardown --keep-volumes` kept), where the engine would otherwise choose.
    pub fn offering(mut self, ports: HostPorts) -> Self {
        self.offered = ports;
        self
    }

    fn not_found(scope: &Scope, what: &str, short: &str) -> EngineError {
        EngineError::NotFound(format!("{what} `{short}` of service `{}`", scope.service))
    }

    /// One of the service's containers by short name; someone else's is not found.
    fn own(&self, scope: &Scope, short: &str) -> Result<ContainerDetails, EngineError> {
        if !naming::is_valid_short_name(short) {
            return Err(EngineError::Failed(format!("invalid container name `{short}`")));
        }
        match self.engine.inspect_container(&naming::engine_name(scope, short))? {
            Some(details) if naming::owned_by(&details.labels, scope) => Ok(details),
            _ => Err(Self::not_found(scope, "container", short)),
        }
    }

    fn observe(&self, scope: &Scope, workload: &Workload) -> Result<Observed, EngineError> {
        let mut observed = Observed::default();
        for member in self.engine.list_containers(&naming::workload_labels(scope, &workload.name))? {
            observed.containers.insert(member.name.clone(), member);
        }
        for request in &workload.instances {
            for name in [request.name.clone(), naming::retiring_name(&request.name)] {
                if !observed.containers.contains_key(&name) {
                    if let Some(details) = self.engine.inspect_container(&name)? {
                        observed.containers.insert(name, details);
                    }
                }
            }
        }
        if let Some(first) = workload.instances.first() {
            for (volume, _, _) in &first.volumes {
                if let Some(details) = self.engine.inspect_volume(volume)? {
                    observed.volumes.insert(volume.clone(), details);
                }
            }
        }
        Ok(observed)
    }

    fn reconcile(&self, scope: &Scope, workload: &Workload) -> Result<(Observed, Vec<Operation>), EngineError> {
        let observed = self.observe(scope, workload)?;
        let ops = reconcile::reconcile(scope, workload, &observed).map_err(|c| EngineError::Conflict(c.0))?;
        Ok((observed, ops))
    }

    /// A container of the environment by engine name, if it carries its labels.
    fn of_environment(&self, project: &str, environment: &str, name: &str) -> Result<Option<ContainerDetails>, EngineError> {
        let labels = naming::environment_labels(project, environment);
        Ok(self.engine.inspect_container(name)?.filter(|d| labels.iter().all(|(k, v)| d.labels.get(k) == Some(v))))
    }
}

impl Realiser for Containers {
    fn describe(&self) -> String {
        self.engine.describe()
    }

    fn network(&self, scope: &Scope) -> Result<String, EngineError> {
        let name = naming::network_name(&scope.project, &scope.environment);
        if self.networks.lock().unwrap_or_else(PoisonError::into_inner).contains(&name) {
            return Ok(name);
        }
        self.engine.ensure_network(&name, &naming::environment_labels(&scope.project, &scope.environment))?;
        self.networks.lock().unwrap_or_else(PoisonError::into_inner).insert(name.clone());
        Ok(name)
    }

    fn create_volume(&self, scope: &Scope, short: &str) -> Result<String, EngineError> {
        let name = naming::engine_name(scope, short);
        match self.engine.inspect_volume(&name)? {
            Some(v) if naming::owned_by(&v.labels, scope) => {}
            Some(_) => return Err(EngineError::Conflict(format!("volume {name} exists and belongs to something else"))),
            None => self.engine.create_volume(&name, &naming::service_labels(scope))?,
        }
        Ok(name)
    }

    fn remove_volume(&self, scope: &Scope, short: &str) -> Result<(), EngineError> {
        let name = naming::engine_name(scope, short);
        match self.engine.inspect_volume(&name)? {
            Some(v) if naming::owned_by(&v.labels, scope) => self.engine.remove_volume(&name),
            _ => Err(Self::not_found(scope, "volume", short)),
        }
    }

    fn list_volumes(&self, scope: &Scope) -> Result<Vec<String>, EngineError> {
        let volumes = self.engine.list_volumes(&naming::service_labels(scope))?;
        Ok(volumes.iter().filter_map(|v| naming::short_name(scope, &v.name).map(str::to_string)).collect())
    }

    fn plan(&self, scope: &Scope, workload: &Workload) -> Result<Vec<Operation>, EngineError> {
        self.reconcile(scope, workload).map(|(_, ops)| ops)
    }

    fn ensure(&self, scope: &Scope, workload: &Workload, observer: &mut dyn Observer) -> Result<Deployment, EngineError> {
        self.network(scope)?;
        let (mut observed, ops) = self.reconcile(scope, workload)?;
        let requests: BTreeMap<&str, _> = workload.instances.iter().map(|r| (r.name.as_str(), r)).collect();
        Executor { engine: self.engine.as_ref(), scope, requests, offered: &self.offered, observer }.run(&ops)?;
        let mut containers = Vec::new();
        for request in &workload.instances {
            // With nothing done, what was just observed is what there is.
            let unchanged = if ops.is_empty() { observed.containers.remove(&request.name) } else { None };
            let details = match unchanged {
                Some(details) => details,
                None => self
                    .engine
                    .inspect_container(&request.name)?
                    .ok_or_else(|| EngineError::Failed(format!("container {} vanished after start", request.name)))?,
            };
            containers.push(details);
        }
        Ok(Deployment { outcome: reconcile::outcome(&ops), containers })
    }

    fn list(&self, scope: &Scope) -> Result<Vec<ContainerDetails>, EngineError> {
        self.engine.list_containers(&naming::service_labels(scope))
    }

    fn inspect(&self, scope: &Scope, short: &str) -> Result<ContainerDetails, EngineError> {
        self.own(scope, short)
    }

    fn start(&self, scope: &Scope, short: &str) -> Result<(), EngineError> {
        self.engine.start_container(&self.own(scope, short)?.name)
    }

    fn stop(&self, scope: &Scope, short: &str, timeout_secs: u32) -> Result<(), EngineError> {
        self.engine.stop_container(&self.own(scope, short)?.name, timeout_secs)
    }

    fn remove(&self, scope: &Scope, short: &str, stop_grace_secs: Option<u32>) -> Result<(), EngineError> {
        if let Ok(details) = self.own(scope, short) {
            return self.engine.remove_containers(&[details.name], stop_grace_secs);
        }
        let instances = self.engine.list_containers(&naming::workload_labels(scope, short))?;
        if instances.is_empty() {
            return Err(Self::not_found(scope, "container", short));
        }
        self.engine.remove_containers(&instances.into_iter().map(|i| i.name).collect::<Vec<_>>(), stop_grace_secs)
    }

    fn exec(&self, scope: &Scope, short: &str, request: &ExecRequest) -> Result<ExecResult, EngineError> {
        self.engine.exec(&self.own(scope, short)?.name, request)
    }

    fn exec_streaming(
        &self,
        scope: &Scope,
        short: &str,
        request: &ExecRequest,
        stdin: Option<&mut dyn std::io::Read>,
        stdout: &mut dyn std::io::Write,
    ) -> Result<ExecResult, EngineError> {
        self.engine.exec_streaming(&self.own(scope, short)?.name, request, stdin, stdout)
    }

    fn signal(&self, scope: &Scope, short: &str, signal: &str) -> Result<(), EngineError> {
        self.engine.signal(&self.own(scope, short)?.name, signal)
    }

    fn write_file(&self, scope: &Scope, short: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), EngineError> {
        self.engine.write_file(&self.own(scope, short)?.name, path, contents, mode)
    }

    fn logs(&self, scope: &Scope, short: &str, lines: u32) -> Result<String, EngineError> {
        self.engine.logs(&self.own(scope, short)?.name, lines)
    }

    fn environment(&self, project: &str, environment: &str) -> Result<Vec<ContainerDetails>, EngineError> {
        self.engine.list_containers(&naming::environment_labels(project, environment))
    }

    fn remove_from_environment(&self, project: &str, environment: &str, name: &str) -> Result<(), EngineError> {
        match self.of_environment(project, environment, name)? {
            Some(details) => self.engine.remove_container(&details.name),
            None => Err(EngineError::NotFound(format!("container {name} of {project}-{environment}"))),
        }
    }

    fn sweep(&self, project: &str, environment: &str, keep_volumes: bool) -> Result<usize, EngineError> {
        let labels = naming::environment_labels(project, environment);
        let containers: Vec<String> = self.engine.list_containers(&labels)?.into_iter().map(|c| c.name).collect();
        // What is left after the plugins' teardown hooks: they had their chance at a
        // clean stop.
        self.engine.remove_containers(&containers, Some(super::SWEEP_STOP_GRACE_SECS))?;
        let mut removed = containers.len();
        if !keep_volumes {
            for volume in self.engine.list_volumes(&labels)? {
                self.engine.remove_volume(&volume.name)?;
                removed += 1;
            }
        }
        let network = naming::network_name(project, environment);
        self.networks.lock().unwrap_or_else(PoisonError::into_inner).remove(&network);
        self.engine.remove_network(&network)?;
        Ok(removed)
    }

    fn environment_logs(&self, project: &str, environment: &str, name: &str, lines: u32) -> Result<String, EngineError> {
        match self.of_environment(project, environment, name)? {
            Some(details) => self.engine.logs(&details.name, lines),
            None => Err(EngineError::NotFound(format!("container {name} of {project}-{environment}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{Capability, Effective, Grants};
    use crate::engine::fake::Fake;
    use crate::policy::{self, ContainerDefaults};
    use crate::realise::{KeptPort, Quiet};
    use crate::spec::{ContainerSpec, Port};

    fn scope() -> Scope {
        Scope { project: "shop".into(), environment: "local".into(), service: "db".into(), plugin: "postgres".into() }
    }

    fn published_db() -> Workload {
        let declared = vec![Capability::Image("*".into()), Capability::Publish(5432)];
        let effective = Effective::new("postgres", declared.clone(), Grants::all_of(&declared));
        let spec = ContainerSpec { ports: vec![Port { container_port: 5432, host_port: None }], ..ContainerSpec::new("server", "postgres:16") };
        policy::workload(&scope(), &effective, &ContainerDefaults::default(), &spec).expect("allowed")
    }

    fn host_port(engine: &Fake, name: &str) -> u16 {
        engine.container(name).expect("created").ports[0].2
    }

    /// Issue 18.2: what `teardown --keep-volumes` kept is offered again to a container
    /// created anew; when that port cannot be had, the engine chooses, and the run goes on.
    #[test]
    fn a_container_created_anew_is_offered_its_kept_host_port() {
        let workload = published_db();
        let name = workload.instances[0].name.clone();
        let kept = HostPorts::from([(name.clone(), vec![KeptPort { container: 5432, host: 45432 }])]);

        let engine = Arc::new(Fake::default());
        Containers::new(engine.clone()).offering(kept.clone()).ensure(&scope(), &workload, &mut Quiet).expect("realised");
        assert_eq!(host_port(&engine, &name), 45432);

        let engine = Arc::new(Fake::default());
        Containers::new(engine.clone()).ensure(&scope(), &workload, &mut Quiet).expect("realised");
        assert_ne!(host_port(&engine, &name), 45432, "nothing kept: the engine chooses");

        let engine = Arc::new(Fake::default());
        engine.fail("start", &name);
        Containers::new(engine.clone()).offering(kept).ensure(&scope(), &workload, &mut Quiet).expect("realised after all");
        assert_ne!(host_port(&engine, &name), 45432, "the kept port was taken: the engine chose another");
        assert_eq!(engine.container(&name).map(|c| c.state), Some(crate::engine::State::Running));
    }
}
