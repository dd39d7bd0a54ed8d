//! An in-memory engine for tests: the crate's unit tests of policy, and, through the
//! `test-support` feature, suites that drive whole stacks without Docker
//! (`tests/lifecycle.rs`). Never used by the end-to-end suites.
//!
//! Every operation that changes the engine is appended to an ordered log,
//! [`Fake::events`], one line each in the words of the engine, so a test can assert
//! the order things happened in:
//!
//! | line | operation |
//! |---|---|
//! | `pull IMAGE` | make an image available |
//! | `create NAME` / `start NAME` / `stop NAME` / `remove NAME` | a container |
//! | `rename OLD → NEW` | a container renamed (it keeps running) |
//! | `write NAME PATH` / `exec NAME COMMAND…` | into a container |
//! | `create volume NAME` / `remove volume NAME` | a volume |
//! | `create network NAME` / `remove network NAME` | a network |
//!
//! Only operations that succeeded and changed something are logged (ensuring a
//! network that exists, or removing one that does not, is not an event). Reads
//! (inspect, list, logs) never are.
//!
//! Failures on request: [`Fake::crash_on_start`] (containers of an image exit with
//! code 1 when started), [`Fake::never_healthy`] (containers of an image with a health
//! check report unhealthy), [`Fake::fail`] (one operation on one name fails).
//! Containers with a health check otherwise report healthy as soon as they start.
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::*;

#[derive(Default)]
pub struct Fake {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    containers: BTreeMap<String, (ContainerRequest, ContainerDetails)>,
    volumes: BTreeMap<String, VolumeDetails>,
    networks: BTreeMap<String, BTreeMap<String, String>>,
    next_id: u32,
    next_port: u16,
    /// Images whose containers exit with code 1 as soon as they start.
    crashing: Vec<String>,
    /// Images whose containers, when they have a health check, report unhealthy.
    unhealthy: Vec<String>,
    /// (operation, name) pairs that fail, each as often as listed.
    failing: Vec<(String, String)>,
    events: Vec<String>,
}

impl Inner {
    fn log(&mut self, event: String) {
        self.events.push(event);
    }

    /// A removal's result: logged if something went, not found otherwise.
    fn removal(&mut self, gone: bool, event: String, missing: String) -> Result<(), EngineError> {
        if gone {
            self.log(event);
            Ok(())
        } else {
            Err(EngineError::NotFound(missing))
        }
    }

    /// Fail if `operation` on `name` was set to fail (once per time it was set).
    fn injected(&mut self, operation: &str, name: &str) -> Result<(), EngineError> {
        match self.failing.iter().position(|(o, n)| o == operation && n == name) {
            Some(at) => {
                self.failing.remove(at);
                Err(EngineError::Failed(format!("{operation} {name}: failed on purpose (fake engine)")))
            }
            None => Ok(()),
        }
    }
}

fn has_labels(have: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

impl Fake {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock leaves consistent data behind:
        // every operation completes before it releases it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every change made to the engine so far, in order (see the module docs).
    pub fn events(&self) -> Vec<String> {
        self.lock().events.clone()
    }

    /// The events so far, emptying the log: what the next step does starts afresh.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().events)
    }

    /// The request a container was created from.
    pub fn request(&self, name: &str) -> Option<ContainerRequest> {
        self.lock().containers.get(name).map(|(r, _)| r.clone())
    }

    /// A container as the engine would report it.
    pub fn container(&self, name: &str) -> Option<ContainerDetails> {
        self.lock().containers.get(name).map(|(_, d)| d.clone())
    }

    /// Put a container on the engine as if someone else had made it.
    pub fn plant_container(&self, name: &str, labels: BTreeMap<String, String>) {
        let mut inner = self.lock();
        let details = ContainerDetails {
            id: format!("planted-{name}"),
            name: name.to_string(),
            image: "other:1".into(),
            labels,
            state: State::Running,
            health: None,
            exit_code: None,
            oom_killed: false,
            node: None,
            ports: vec![],
            address: None,
        };
        let request = ContainerRequest {
            name: name.into(),
            image: "other:1".into(),
            command: None,
            entrypoint: None,
            env: vec![],
            labels: details.labels.clone(),
            ports: vec![],
            volumes: vec![],
            network: String::new(),
            aliases: vec![],
            files: vec![],
            secrets: Default::default(),
            user: None,
            health: None,
            memory_bytes: 1,
            nano_cpus: 1,
            pids: 1,
            stop_timeout_secs: 1,
        };
        inner.containers.insert(name.to_string(), (request, details));
    }

    pub fn container_names(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    pub fn volume_names(&self) -> Vec<String> {
        self.lock().volumes.keys().cloned().collect()
    }

    pub fn network_names(&self) -> Vec<String> {
        self.lock().networks.keys().cloned().collect()
    }

    /// Containers of `image` will exit with code 1 right after starting.
    pub fn crash_on_start(&self, image: &str) {
        self.lock().crashing.push(image.to_string());
    }

    /// Containers of `image` that have a health check will report unhealthy once
    /// started, instead of healthy.
    pub fn never_healthy(&self, image: &str) {
        self.lock().unhealthy.push(image.to_string());
    }

    /// The next `operation` (`create`, `start`, `stop`, `remove`, `rename`, `pull`,
    /// `create volume`, `remove volume`) on `name` (a container, volume or image;
    /// for `rename`, the current name) fails with an engine error. Call it twice to
    /// fail twice.
    pub fn fail(&self, operation: &str, name: &str) {
        self.lock().failing.push((operation.to_string(), name.to_string()));
    }

    pub fn set_state(&self, name: &str, state: State) {
        if let Some((_, d)) = self.lock().containers.get_mut(name) {
            d.state = state;
        }
    }
}

impl ContainerEngine for Fake {
    fn describe(&self) -> String {
        "fake engine".into()
    }

    fn ensure_network(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let mut inner = self.lock();
        if !inner.networks.contains_key(name) {
            inner.networks.insert(name.into(), labels.clone());
            inner.log(format!("create network {name}"));
        }
        Ok(())
    }

    fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let mut inner = self.lock();
        if inner.networks.remove(name).is_some() {
            inner.log(format!("remove network {name}"));
        }
        Ok(())
    }

    fn inspect_volume(&self, name: &str) -> Result<Option<VolumeDetails>, EngineError> {
        Ok(self.lock().volumes.get(name).cloned())
    }

    fn create_volume(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let mut inner = self.lock();
        inner.injected("create volume", name)?;
        if !inner.volumes.contains_key(name) {
            inner.volumes.insert(name.into(), VolumeDetails { name: name.into(), labels: labels.clone() });
            inner.log(format!("create volume {name}"));
        }
        Ok(())
    }

    fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let mut inner = self.lock();
        inner.injected("remove volume", name)?;
        let gone = inner.volumes.remove(name).is_some();
        inner.removal(gone, format!("remove volume {name}"), format!("volume {name}"))
    }

    fn list_volumes(&self, labels: &BTreeMap<String, String>) -> Result<Vec<VolumeDetails>, EngineError> {
        let inner = self.lock();
        Ok(inner.volumes.values().filter(|v| has_labels(&v.labels, labels)).cloned().collect())
    }

    fn ensure_image(&self, image: &str, progress: &mut dyn FnMut(&str)) -> Result<(), EngineError> {
        if image.starts_with("missing") {
            return Err(EngineError::NotFound(format!("image {image}")));
        }
        {
            let mut inner = self.lock();
            inner.injected("pull", image)?;
            inner.log(format!("pull {image}"));
        }
        progress("image present");
        Ok(())
    }

    fn create_container(&self, request: &ContainerRequest) -> Result<String, EngineError> {
        let mut inner = self.lock();
        inner.injected("create", &request.name)?;
        if inner.containers.contains_key(&request.name) {
            return Err(EngineError::Conflict(format!("name {} in use", request.name)));
        }
        inner.next_id += 1;
        if inner.next_port == 0 {
            inner.next_port = 40000;
        }
        let mut ports = Vec::new();
        for (container_port, ip, host_port) in &request.ports {
            inner.next_port += 1;
            let host_port = if *host_port == 0 { inner.next_port } else { *host_port };
            ports.push((*container_port, ip.to_string(), host_port));
        }
        let id = format!("id{}", inner.next_id);
        let details = ContainerDetails {
            id: id.clone(),
            name: request.name.clone(),
            image: request.image.clone(),
            labels: request.labels.clone(),
            state: State::Created,
            health: None,
            exit_code: None,
            oom_killed: false,
            node: None,
            ports,
            address: None,
        };
        inner.containers.insert(request.name.clone(), (request.clone(), details));
        inner.log(format!("create {}", request.name));
        Ok(id)
    }

    fn start_container(&self, name: &str) -> Result<(), EngineError> {
        let mut inner = self.lock();
        inner.injected("start", name)?;
        let (crashing, unhealthy) = (inner.crashing.clone(), inner.unhealthy.clone());
        let (request, d) = inner.containers.get_mut(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        if crashing.contains(&d.image) {
            d.state = State::Exited;
            d.exit_code = Some(1);
            d.health = None;
        } else {
            d.state = State::Running;
            d.exit_code = None;
            d.address = Some("172.30.0.2".into());
            d.health = request.health.as_ref().map(|_| if unhealthy.contains(&d.image) { Health::Unhealthy } else { Health::Healthy });
        }
        inner.log(format!("start {name}"));
        Ok(())
    }

    fn stop_container(&self, name: &str, _timeout_secs: u32) -> Result<(), EngineError> {
        let mut inner = self.lock();
        inner.injected("stop", name)?;
        let (_, d) = inner.containers.get_mut(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        d.state = State::Exited;
        d.exit_code = Some(0);
        d.health = None;
        inner.log(format!("stop {name}"));
        Ok(())
    }

    fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        let mut inner = self.lock();
        inner.injected("remove", name)?;
        let gone = inner.containers.remove(name).is_some();
        inner.removal(gone, format!("remove {name}"), name.to_string())
    }

    /// Logs the grace given, before each removal: `stop NAME within N s`.
    fn remove_containers(&self, names: &[String], stop_grace_secs: Option<u32>) -> Result<(), EngineError> {
        names.iter().try_for_each(|name| {
            if let Some(grace) = stop_grace_secs {
                self.lock().log(format!("stop {name} within {grace} s"));
            }
            self.remove_container(name)
        })
    }

    fn rename_container(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        let mut inner = self.lock();
        inner.injected("rename", name)?;
        if inner.containers.contains_key(new_name) {
            return Err(EngineError::Conflict(format!("name {new_name} is taken")));
        }
        let (mut request, mut details) = inner.containers.remove(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        request.name = new_name.to_string();
        details.name = new_name.to_string();
        inner.containers.insert(new_name.to_string(), (request, details));
        inner.log(format!("rename {name} → {new_name}"));
        Ok(())
    }

    fn inspect_container(&self, name: &str) -> Result<Option<ContainerDetails>, EngineError> {
        Ok(self.lock().containers.get(name).map(|(_, d)| d.clone()))
    }

    fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerDetails>, EngineError> {
        let inner = self.lock();
        Ok(inner
            .containers
            .values()
            .filter(|(_, d)| has_labels(&d.labels, labels))
            .map(|(_, d)| d.clone())
            .collect())
    }

    fn exec(&self, name: &str, request: &ExecRequest) -> Result<ExecResult, EngineError> {
        let mut inner = self.lock();
        inner.containers.get(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        let input = request.stdin.as_ref().map(|bytes| format!(" <{}", String::from_utf8_lossy(bytes))).unwrap_or_default();
        inner.log(format!("exec {name} {}{input}", request.command.join(" ")));
        Ok(ExecResult { exit_code: 0, stdout: request.command.join(" ").into_bytes(), stderr: vec![] })
    }

    fn signal(&self, name: &str, signal: &str) -> Result<(), EngineError> {
        let mut inner = self.lock();
        inner.containers.get(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        inner.log(format!("signal {name} {signal}"));
        Ok(())
    }

    fn write_file(&self, name: &str, path: &str, _: &[u8], _: u32) -> Result<(), EngineError> {
        let mut inner = self.lock();
        inner.containers.get(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        inner.log(format!("write {name} {path}"));
        Ok(())
    }

    fn logs(&self, name: &str, _lines: u32) -> Result<String, EngineError> {
        let inner = self.lock();
        inner.containers.get(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        Ok("fake log line\n".into())
    }
}
