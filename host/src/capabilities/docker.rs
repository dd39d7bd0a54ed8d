//! `docker`: the container engine, scoped to the calling service. The rules of what
//! a spec may become are in [`crate::policy`]; how a workload is run is the service's
//! [`crate::realise::Realiser`]. This file checks each call against the plugin's
//! capabilities and keeps the `net-probe` targets in step with what the plugin sees.

use std::net::SocketAddr;

use super::service::{HostCalls, HostError};
use crate::engine::{ContainerDetails, ExecRequest, ExecResult};
use crate::naming;
use crate::policy::{self, Refused};
use crate::realise::{Deployment, Observer, Phase, RecordedWorkload};
use crate::spec::{ContainerSpec, ExecOptions};

/// Most log lines a plugin may ask for at once.
const MAX_LOG_LINES: u32 = 10_000;

/// Tells the service's progress line and the call's timings what the realiser does.
struct CallObserver<'a>(&'a mut HostCalls);

impl Observer for CallObserver<'_> {
    fn note(&mut self, message: &str) {
        self.0.host.note(message);
    }

    fn phase(&mut self, phase: Phase, elapsed: std::time::Duration) {
        self.0.phases.add(phase, elapsed);
    }
}

impl HostCalls {
    fn refused(&mut self, refused: Refused) -> HostError {
        match refused {
            Refused::Denied(refusal) => self.deny(refusal),
            Refused::Invalid(message) => HostError::Invalid(message),
        }
    }

    fn short_name(name: &str, what: &str) -> Result<(), HostError> {
        if naming::is_valid_short_name(name) {
            Ok(())
        } else {
            Err(HostError::Invalid(format!("{what} name `{name}`")))
        }
    }

    /// Remember a container's published ports and its address on the project network
    /// as `net-probe` targets: the plugin has seen them, and they are its own.
    pub fn learn_targets(&self, details: &ContainerDetails) {
        let Ok(mut targets) = self.host.probe_targets.lock() else { return };
        for (_, ip, port) in &details.ports {
            let ip = if ip == "0.0.0.0" || ip.is_empty() { "127.0.0.1" } else { ip.as_str() };
            if let Ok(addr) = format!("{ip}:{port}").parse::<SocketAddr>() {
                targets.insert(addr);
            }
        }
        if let Some(ip) = details.address.as_deref().and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
            targets.insert(SocketAddr::new(ip, 0));
        }
    }

    pub fn network(&mut self) -> Result<String, HostError> {
        Ok(self.host.realiser.network(self.scope())?)
    }

    pub fn create_volume(&mut self, name: &str) -> Result<String, HostError> {
        policy::check_short_name(self.scope(), &self.host.defaults, "volume", name).map_err(HostError::Invalid)?;
        if let Err(refusal) = self.host.effective.check_volume(name) {
            return Err(self.deny(refusal));
        }
        Ok(self.host.realiser.create_volume(self.scope(), name)?)
    }

    pub fn remove_volume(&mut self, name: &str) -> Result<(), HostError> {
        Self::short_name(name, "volume")?;
        Ok(self.host.realiser.remove_volume(self.scope(), name)?)
    }

    pub fn list_volumes(&mut self) -> Result<Vec<String>, HostError> {
        Ok(self.host.realiser.list_volumes(self.scope())?)
    }

    pub fn ensure(&mut self, spec: &ContainerSpec) -> Result<Deployment, HostError> {
        let workload = policy::workload(self.scope(), &self.host.effective, &self.host.defaults, spec)
            .map_err(|refused| self.refused(refused))?;
        self.host.totals.claim(&self.host.scope, &workload, &self.host.defaults.resources).map_err(HostError::Invalid)?;
        let host = self.host.clone();
        let deployment = host.realiser.ensure(&host.scope, &workload, &mut CallObserver(self))?;
        deployment.containers.iter().for_each(|d| self.learn_targets(d));
        self.workloads.retain(|w| w.name != workload.name);
        self.workloads.push(RecordedWorkload::of(&workload));
        Ok(deployment)
    }

    pub fn list_containers(&mut self) -> Result<Vec<ContainerDetails>, HostError> {
        let list = self.host.realiser.list(self.scope())?;
        list.iter().for_each(|d| self.learn_targets(d));
        Ok(list)
    }

    pub fn inspect(&mut self, name: &str) -> Result<ContainerDetails, HostError> {
        Self::short_name(name, "container")?;
        let details = self.host.realiser.inspect(self.scope(), name)?;
        self.learn_targets(&details);
        Ok(details)
    }

    pub fn start(&mut self, name: &str) -> Result<(), HostError> {
        Self::short_name(name, "container")?;
        Ok(self.host.realiser.start(self.scope(), name)?)
    }

    pub fn stop(&mut self, name: &str, timeout_ms: u32) -> Result<(), HostError> {
        Self::short_name(name, "container")?;
        Ok(self.host.realiser.stop(self.scope(), name, policy::stop_timeout_secs(Some(timeout_ms)))?)
    }

    pub fn remove(&mut self, name: &str) -> Result<(), HostError> {
        Self::short_name(name, "container")?;
        Ok(self.host.realiser.remove(self.scope(), name, self.host.stop_grace_secs)?)
    }

    pub fn exec(&mut self, name: &str, command: Vec<String>, options: ExecOptions) -> Result<ExecResult, HostError> {
        if let Err(refusal) = self.host.effective.check_exec(name) {
            return Err(self.deny(refusal));
        }
        Self::short_name(name, "container")?;
        if command.is_empty() {
            return Err(HostError::Invalid("exec with an empty command".into()));
        }
        for var in options.env.iter().filter(|v| v.secret) {
            self.remember_secret(&var.value);
        }
        let request = ExecRequest {
            command,
            env: options.env.into_iter().map(|v| (v.name, v.value)).collect(),
            user: options.user,
            workdir: options.workdir,
            stdin: options.stdin,
        };
        Ok(self.host.realiser.exec(self.scope(), name, &request)?)
    }

    pub fn write_file(&mut self, name: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), HostError> {
        if let Err(refusal) = self.host.effective.check_exec(name) {
            return Err(self.deny(refusal));
        }
        Self::short_name(name, "container")?;
        policy::check_container_path("file path", path).map_err(HostError::Invalid)?;
        Ok(self.host.realiser.write_file(self.scope(), name, path, contents, mode & 0o7777)?)
    }

    /// Send `signal` to a container's main process: what `exec` allows, without a shell.
    pub fn signal(&mut self, name: &str, signal: &str) -> Result<(), HostError> {
        if let Err(refusal) = self.host.effective.check_exec(name) {
            return Err(self.deny(refusal));
        }
        Self::short_name(name, "container")?;
        if !is_valid_signal(signal) {
            return Err(HostError::Invalid(format!("signal `{signal}`: a name such as `SIGHUP` or `HUP`, or a number from 1 to 64")));
        }
        Ok(self.host.realiser.signal(self.scope(), name, signal)?)
    }

    pub fn logs(&mut self, name: &str, lines: u32) -> Result<String, HostError> {
        Self::short_name(name, "container")?;
        Ok(self.host.realiser.logs(self.scope(), name, lines.min(MAX_LOG_LINES))?)
    }
}

/// A signal as Docker takes it: a name (`SIGHUP`, `HUP`) or a number.
fn is_valid_signal(signal: &str) -> bool {
    match signal.parse::<u32>() {
        Ok(number) => (1..=64).contains(&number),
        Err(_) => (1..=16).contains(&signal.len()) && signal.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-'),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::policy::tests::{declared, scope, spec};
    use crate::capabilities::service::ServiceHost;
    use crate::capabilities::{Effective, Grants};
    use crate::engine::fake::Fake;
    use crate::engine::State;
    use crate::limits::HookLimits;
    use crate::naming::LABEL_SERVICE;
    use crate::realise::{Containers, Outcome};

    fn calls(engine: Arc<Fake>, grants: Grants) -> HostCalls {
        let host = ServiceHost {
            scope: scope(),
            effective: Effective::new("postgres", declared(), grants),
            realiser: Arc::new(Containers::new(engine)),
            ..ServiceHost::sealed("postgres", HookLimits::default())
        };
        HostCalls::new(Arc::new(host))
    }

    #[test]
    fn ensure_is_idempotent_and_notices_changes() {
        let engine = Arc::new(Fake::default());
        let mut st = calls(engine.clone(), Grants::all_of(&declared()));
        let first = st.ensure(&spec("postgres:16")).unwrap();
        assert_eq!(first.outcome, Outcome::Created);
        assert_eq!(first.containers[0].name, "shop-local-db-server");
        assert!(first.containers[0].ports[0].2 > 0);
        let again = st.ensure(&spec("postgres:16")).unwrap();
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert_eq!(again.containers[0].id, first.containers[0].id);

        engine.set_state("shop-local-db-server", State::Exited);
        assert_eq!(st.ensure(&spec("postgres:16")).unwrap().outcome, Outcome::Started);

        let changed = st.ensure(&spec("postgres:16.4")).unwrap();
        assert_eq!(changed.outcome, Outcome::Recreated);
        assert_ne!(changed.containers[0].id, first.containers[0].id);
        assert_eq!(st.list_volumes().unwrap(), vec!["data".to_string()]);
    }

    /// An engine, the capability on it, and an unpublished spec of `n` replicas.
    fn replicated(n: u32) -> (Arc<Fake>, HostCalls, ContainerSpec) {
        let engine = Arc::new(Fake::default());
        let st = calls(engine.clone(), Grants::all_of(&declared()));
        let s = ContainerSpec { ports: Vec::new(), replicas: Some(n), ..spec("postgres:16") };
        (engine, st, s)
    }

    #[test]
    fn replicas_scale_up_and_down() {
        let (engine, mut st, mut s) = replicated(3);
        st.ensure(&s).unwrap();
        let names = engine.container_names();
        assert_eq!(names, vec!["shop-local-db-server-1", "shop-local-db-server-2", "shop-local-db-server-3"]);
        s.replicas = Some(1);
        st.ensure(&s).unwrap();
        assert_eq!(engine.container_names(), vec!["shop-local-db-server-1"], "scaling down keeps the lowest numbers");
        s.replicas = None;
        st.ensure(&s).unwrap();
        assert_eq!(engine.container_names(), vec!["shop-local-db-server"]);
        assert!(matches!(st.ensure(&ContainerSpec { replicas: Some(0), ..spec("postgres:16") }), Err(HostError::Invalid(_))));
    }

    #[test]
    fn a_changed_replica_is_replaced_only_once_its_successor_is_up() {
        let (engine, mut st, mut s) = replicated(2);
        let before = st.ensure(&s).unwrap();

        s.image = "postgres:16.4".into();
        let after = st.ensure(&s).unwrap();
        assert_eq!(after.outcome, Outcome::Recreated);
        assert_eq!(engine.container_names(), vec!["shop-local-db-server-1", "shop-local-db-server-2"], "nothing retiring is left");
        for (old, new) in before.containers.iter().zip(&after.containers) {
            assert_ne!(old.id, new.id);
        }

        // A successor that crashes: the running instance is put back, untouched.
        engine.crash_on_start("postgres:17");
        s.image = "postgres:17".into();
        let Err(HostError::Engine(message)) = st.ensure(&s) else { panic!("a crashing replacement must fail") };
        assert!(message.contains("kept") && message.contains("exited with code 1"), "{message}");
        assert_eq!(engine.container_names(), vec!["shop-local-db-server-1", "shop-local-db-server-2"]);
        assert_eq!(st.inspect("server-1").unwrap().id, after.containers[0].id);
        assert_eq!(st.inspect("server-2").unwrap().id, after.containers[1].id);
    }

    #[test]
    fn other_peoples_resources_are_out_of_reach() {
        let engine = Arc::new(Fake::default());
        let mut others = naming::service_labels(&scope());
        others.insert(LABEL_SERVICE.into(), "cache".into());
        engine.plant_container("shop-local-db-server", others.clone());
        engine.plant_container("shop-local-db-stranger", BTreeMap::new());
        let mut st = calls(engine.clone(), Grants::all_of(&declared()));
        assert!(matches!(st.ensure(&spec("postgres:16")), Err(HostError::Conflict(_))));
        assert!(matches!(st.inspect("stranger"), Err(HostError::NotFound(_))));
        assert!(matches!(st.remove("stranger"), Err(HostError::NotFound(_))));
        assert!(matches!(st.logs("stranger", 10), Err(HostError::NotFound(_))));
        assert!(matches!(st.exec("stranger", vec!["id".into()], ExecOptions::default()), Err(HostError::NotFound(_))));
        assert!(st.list_containers().unwrap().is_empty());
        assert_eq!(engine.container_names().len(), 2, "nothing of theirs was touched");
    }

    #[test]
    fn denials_are_values_and_recorded() {
        let engine = Arc::new(Fake::default());
        let mut st = calls(engine.clone(), Grants::default());
        let err = st.ensure(&spec("postgres:16")).unwrap_err();
        assert!(matches!(&err, HostError::Denied(m) if m.contains("images = [\"postgres:16\"]")), "{err:?}");
        let err = st.exec("server", vec!["id".into()], ExecOptions::default()).unwrap_err();
        assert!(matches!(err, HostError::Denied(_)));
        assert_eq!(st.denials.len(), 2);
        assert_eq!(st.denials[0].capability, "image");
        assert_eq!(st.denials[0].argument, "postgres:16");
        assert_eq!(st.denials[1].capability, "exec");
        assert!(engine.container_names().is_empty());
    }
}
