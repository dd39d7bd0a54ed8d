//! An in-memory engine for unit tests of policy. Never used by the end-to-end suite.
use std::collections::BTreeMap;
use std::sync::Mutex;

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
}

fn has_labels(have: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

impl Fake {
    /// The request a container was created from.
    pub fn request(&self, name: &str) -> Option<ContainerRequest> {
        self.inner.lock().unwrap().containers.get(name).map(|(r, _)| r.clone())
    }

    /// Put a container on the engine as if someone else had made it.
    pub fn plant_container(&self, name: &str, labels: BTreeMap<String, String>) {
        let mut inner = self.inner.lock().unwrap();
        let details = ContainerDetails {
            id: format!("planted-{name}"),
            name: name.to_string(),
            image: "other:1".into(),
            labels,
            state: State::Running,
            health: None,
            exit_code: None,
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
        self.inner.lock().unwrap().containers.keys().cloned().collect()
    }

    /// Containers of `image` will exit with code 1 right after starting.
    pub fn crash_on_start(&self, image: &str) {
        self.inner.lock().unwrap().crashing.push(image.to_string());
    }

    pub fn set_state(&self, name: &str, state: State) {
        if let Some((_, d)) = self.inner.lock().unwrap().containers.get_mut(name) {
            d.state = state;
        }
    }
}

impl ContainerEngine for Fake {
    fn describe(&self) -> String {
        "fake engine".into()
    }

    fn ensure_network(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        self.inner.lock().unwrap().networks.entry(name.into()).or_insert_with(|| labels.clone());
        Ok(())
    }

    fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.inner.lock().unwrap().networks.remove(name);
        Ok(())
    }

    fn inspect_volume(&self, name: &str) -> Result<Option<VolumeDetails>, EngineError> {
        Ok(self.inner.lock().unwrap().volumes.get(name).cloned())
    }

    fn create_volume(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let details = VolumeDetails { name: name.into(), labels: labels.clone() };
        self.inner.lock().unwrap().volumes.entry(name.into()).or_insert(details);
        Ok(())
    }

    fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        match self.inner.lock().unwrap().volumes.remove(name) {
            Some(_) => Ok(()),
            None => Err(EngineError::NotFound(format!("volume {name}"))),
        }
    }

    fn list_volumes(&self, labels: &BTreeMap<String, String>) -> Result<Vec<VolumeDetails>, EngineError> {
        let inner = self.inner.lock().unwrap();
        Ok(inner.volumes.values().filter(|v| has_labels(&v.labels, labels)).cloned().collect())
    }

    fn ensure_image(&self, image: &str, progress: &mut dyn FnMut(&str)) -> Result<(), EngineError> {
        if image.starts_with("missing") {
            return Err(EngineError::NotFound(format!("image {image}")));
        }
        progress("image present");
        Ok(())
    }

    fn create_container(&self, request: &ContainerRequest) -> Result<String, EngineError> {
        let mut inner = self.inner.lock().unwrap();
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
            ports,
            address: None,
        };
        inner.containers.insert(request.name.clone(), (request.clone(), details));
        Ok(id)
    }

    fn start_container(&self, name: &str) -> Result<(), EngineError> {
        let mut inner = self.inner.lock().unwrap();
        let crashing = inner.crashing.clone();
        let (_, d) = inner.containers.get_mut(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        if crashing.contains(&d.image) {
            d.state = State::Exited;
            d.exit_code = Some(1);
            return Ok(());
        }
        d.state = State::Running;
        d.address = Some("172.30.0.2".into());
        Ok(())
    }

    fn stop_container(&self, name: &str, _timeout_secs: u32) -> Result<(), EngineError> {
        let mut inner = self.inner.lock().unwrap();
        let (_, d) = inner.containers.get_mut(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        d.state = State::Exited;
        d.exit_code = Some(0);
        Ok(())
    }

    fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        match self.inner.lock().unwrap().containers.remove(name) {
            Some(_) => Ok(()),
            None => Err(EngineError::NotFound(name.into())),
        }
    }

    fn rename_container(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        let mut inner = self.inner.lock().unwrap();
        if inner.containers.contains_key(new_name) {
            return Err(EngineError::Conflict(format!("name {new_name} is taken")));
        }
        let (mut request, mut details) = inner.containers.remove(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        request.name = new_name.to_string();
        details.name = new_name.to_string();
        inner.containers.insert(new_name.to_string(), (request, details));
        Ok(())
    }

    fn inspect_container(&self, name: &str) -> Result<Option<ContainerDetails>, EngineError> {
        Ok(self.inner.lock().unwrap().containers.get(name).map(|(_, d)| d.clone()))
    }

    fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerDetails>, EngineError> {
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .containers
            .values()
            .filter(|(_, d)| has_labels(&d.labels, labels))
            .map(|(_, d)| d.clone())
            .collect())
    }

    fn exec(&self, name: &str, request: &ExecRequest) -> Result<ExecResult, EngineError> {
        let inner = self.inner.lock().unwrap();
        inner.containers.get(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        Ok(ExecResult { exit_code: 0, stdout: request.command.join(" ").into_bytes(), stderr: vec![] })
    }

    fn write_file(&self, name: &str, _: &str, _: &[u8], _: u32) -> Result<(), EngineError> {
        let inner = self.inner.lock().unwrap();
        inner.containers.get(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        Ok(())
    }

    fn logs(&self, name: &str, _lines: u32) -> Result<String, EngineError> {
        let inner = self.inner.lock().unwrap();
        inner.containers.get(name).ok_or_else(|| EngineError::NotFound(name.into()))?;
        Ok("fake log line\n".into())
    }
}
