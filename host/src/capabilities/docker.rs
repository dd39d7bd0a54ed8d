//! `docker`: the container engine, scoped to the calling service.
//!
//! The policy lives here, in one place, for every resource the host creates on a
//! plugin's behalf:
//! - names are `<project>-<env>-<service>-<short>`; the plugin only ever says `<short>`;
//! - every resource carries the `provisioner.*` labels of its service, and a plugin
//!   can see or touch only resources carrying its own;
//! - images, published ports, volumes and exec need their capability;
//! - containers join only the project network, publish only on the environment's
//!   bind address, mount only the service's own named volumes, and always get memory,
//!   CPU and pids limits. Privileged mode, added kernel capabilities, devices, host
//!   namespaces and host paths cannot be expressed in a `ContainerRequest` at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;

use crate::engine::{ContainerDetails, ContainerRequest, EngineError, ExecRequest, HealthRequest, State};
use crate::runtime::bindings::v0_1::docker::{
    ContainerInfo, ContainerSpec, ContainerState, Deployment, EnsureOutcome, ExecOptions, ExecOutput, HealthState,
    Host, PublishedPort,
};
use crate::runtime::bindings::v0_1::types::Error;
use crate::runtime::state::{ContainerDefaults, HookState, Scope};

pub const LABEL_PROJECT: &str = "provisioner.project";
pub const LABEL_ENV: &str = "provisioner.env";
pub const LABEL_SERVICE: &str = "provisioner.service";
pub const LABEL_PLUGIN: &str = "provisioner.plugin";
pub const LABEL_WORKLOAD: &str = "provisioner.workload";
pub const LABEL_SPEC_HASH: &str = "provisioner.spec-hash";

const MAX_REPLICAS: u32 = 64;

/// `<project>-<env>`: the project network, and the start of every name.
pub fn network_name(scope: &Scope) -> String {
    format!("{}-{}", scope.project, scope.environment)
}

/// `<project>-<env>-<service>-<short>`.
pub fn engine_name(scope: &Scope, short: &str) -> String {
    format!("{}-{}-{}-{}", scope.project, scope.environment, scope.service, short)
}

/// The labels that mark a resource as this service's.
pub fn service_labels(scope: &Scope) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_PROJECT.to_string(), scope.project.clone()),
        (LABEL_ENV.to_string(), scope.environment.clone()),
        (LABEL_SERVICE.to_string(), scope.service.clone()),
        (LABEL_PLUGIN.to_string(), scope.plugin.clone()),
    ])
}

/// The labels of the project + environment, shared by all of its services.
pub fn environment_labels(project: &str, environment: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_PROJECT.to_string(), project.to_string()),
        (LABEL_ENV.to_string(), environment.to_string()),
    ])
}

fn owned_by(labels: &BTreeMap<String, String>, scope: &Scope) -> bool {
    service_labels(scope).iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn valid_short_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

fn engine_error(error: EngineError) -> Error {
    match error {
        EngineError::NotFound(m) => Error::NotFound(m),
        EngineError::Conflict(m) => Error::Conflict(m),
        EngineError::Failed(m) => Error::Engine(m),
    }
}

/// A spec the policy refused, before attribution to a service.
pub enum Refused {
    Denied(crate::capabilities::Refusal),
    Invalid(String),
}

impl From<crate::capabilities::Refusal> for Refused {
    fn from(refusal: crate::capabilities::Refusal) -> Self {
        Refused::Denied(refusal)
    }
}

/// The canonical, hashable form of what a container is created from.
#[derive(Serialize)]
struct HashedSpec<'a> {
    image: &'a str,
    command: &'a Option<Vec<String>>,
    entrypoint: &'a Option<Vec<String>>,
    env: &'a [(String, String)],
    ports: Vec<(u16, String, u16)>,
    volumes: &'a [(String, String, bool)],
    files: Vec<(&'a str, String, u32)>,
    aliases: &'a [String],
    user: &'a Option<String>,
    health: Option<(&'a [String], u32, u32, u32, u32)>,
    limits: (u64, u64, u32, u32),
    labels: &'a BTreeMap<String, String>,
}

fn spec_hash(request: &ContainerRequest) -> String {
    let hashed = HashedSpec {
        image: &request.image,
        command: &request.command,
        entrypoint: &request.entrypoint,
        env: &request.env,
        ports: request.ports.iter().map(|(c, ip, h)| (*c, ip.to_string(), *h)).collect(),
        volumes: &request.volumes,
        files: request.files.iter().map(|(p, c, m)| (p.as_str(), crate::runtime::cache::sha256_hex(c), *m)).collect(),
        aliases: &request.aliases,
        user: &request.user,
        health: request
            .health
            .as_ref()
            .map(|h| (h.command.as_slice(), h.interval_ms, h.timeout_ms, h.retries, h.start_period_ms)),
        limits: (request.memory_bytes, request.nano_cpus, request.pids, request.stop_timeout_secs),
        labels: &request.labels,
    };
    let json = serde_json::to_vec(&hashed).unwrap_or_default();
    crate::runtime::cache::sha256_hex(&json)[..16].to_string()
}

/// The one place a plugin's spec becomes an engine request. Every invariant of the
/// container policy is applied here; `instance` is `None` for a single container and
/// `Some(i)` for replica `i` (1-based) of several.
pub fn container_request(
    scope: &Scope,
    effective: &crate::capabilities::Effective,
    defaults: &ContainerDefaults,
    spec: &ContainerSpec,
    instance: Option<u32>,
) -> Result<ContainerRequest, Refused> {
    if !valid_short_name(&spec.name) {
        return Err(Refused::Invalid(format!(
            "container name `{}`: use 1 to 40 of a-z 0-9 -, starting with a letter or digit",
            spec.name
        )));
    }
    if spec.image.trim().is_empty() {
        return Err(Refused::Invalid(format!("container `{}` has an empty image", spec.name)));
    }
    effective.check_image(&spec.image)?;
    let image = mirrored(&spec.image, defaults.mirror.as_deref());

    let mut ports = Vec::new();
    for port in &spec.ports {
        if port.container_port == 0 {
            return Err(Refused::Invalid("container port 0".into()));
        }
        effective.check_publish(port.container_port)?;
        // Replicas sit behind a load balancer; only single containers are published.
        if instance.is_none() {
            ports.push((port.container_port, defaults.bind_address, port.host_port.unwrap_or(0)));
        }
    }

    let mut volumes = Vec::new();
    for mount in &spec.mounts {
        if !valid_short_name(&mount.volume) {
            return Err(Refused::Invalid(format!("volume name `{}`", mount.volume)));
        }
        effective.check_volume(&mount.volume)?;
        if !mount.target.starts_with('/') || mount.target.split('/').any(|part| part == "..") {
            return Err(Refused::Invalid(format!("mount target `{}` must be an absolute path without `..`", mount.target)));
        }
        volumes.push((engine_name(scope, &mount.volume), mount.target.clone(), mount.read_only));
    }

    let mut env = Vec::new();
    for var in &spec.env {
        let ok = !var.name.is_empty()
            && !var.name.contains('=')
            && !var.name.starts_with(|c: char| c.is_ascii_digit())
            && var.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Refused::Invalid(format!("environment variable name `{}`", var.name)));
        }
        env.push((var.name.clone(), var.value.clone()));
    }

    let mut files = Vec::new();
    for file in &spec.files {
        if !file.path.starts_with('/') || file.path.ends_with('/') || file.path.split('/').any(|p| p == "..") {
            return Err(Refused::Invalid(format!("file path `{}` must be absolute, without `..`", file.path)));
        }
        files.push((file.path.clone(), file.contents.clone(), file.mode & 0o7777));
    }

    let mut labels = BTreeMap::new();
    for label in &spec.labels {
        if label.key.starts_with("provisioner.") {
            return Err(Refused::Invalid(format!("label `{}`: the provisioner.* labels are the host's", label.key)));
        }
        labels.insert(label.key.clone(), label.value.clone());
    }
    labels.extend(service_labels(scope));
    labels.insert(LABEL_WORKLOAD.to_string(), spec.name.clone());

    let mut aliases = vec![scope.service.clone()];
    for alias in &spec.aliases {
        if !valid_short_name(alias) {
            return Err(Refused::Invalid(format!("network alias `{alias}`")));
        }
        aliases.push(alias.clone());
    }

    let resources = spec.resources.as_ref();
    let memory_mb = resources.and_then(|r| r.memory_mb).unwrap_or(defaults.memory_mb).clamp(16, defaults.max_memory_mb);
    let cpu_millis =
        resources.and_then(|r| r.cpu_millis).unwrap_or(defaults.cpu_millis).clamp(10, defaults.max_cpu_millis);
    let pids = resources.and_then(|r| r.pids).unwrap_or(defaults.pids).clamp(16, defaults.max_pids);

    let short = match instance {
        Some(i) => format!("{}-{i}", spec.name),
        None => spec.name.clone(),
    };
    let mut request = ContainerRequest {
        name: engine_name(scope, &short),
        image,
        command: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env,
        labels,
        ports,
        volumes,
        network: network_name(scope),
        aliases,
        files,
        user: spec.user.clone(),
        health: spec.health.as_ref().map(|h| HealthRequest {
            command: h.command.clone(),
            interval_ms: h.interval_ms,
            timeout_ms: h.timeout_ms,
            retries: h.retries,
            start_period_ms: h.start_period_ms,
        }),
        memory_bytes: u64::from(memory_mb) << 20,
        nano_cpus: u64::from(cpu_millis) * 1_000_000,
        pids,
        stop_timeout_secs: spec.stop_timeout_ms.map(|ms| ms.div_ceil(1000)).unwrap_or(10).min(300),
    };
    let hash = spec_hash(&request);
    request.labels.insert(LABEL_SPEC_HASH.to_string(), hash);
    Ok(request)
}

/// `image` as pulled through `mirror`: only images that name no registry move
/// (Docker Hub's official images live under `library/`).
pub fn mirrored(image: &str, mirror: Option<&str>) -> String {
    let Some(mirror) = mirror.map(|m| m.trim_end_matches('/')).filter(|m| !m.is_empty()) else {
        return image.to_string();
    };
    let first = image.split('/').next().unwrap_or_default();
    let names_registry = image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if names_registry {
        image.to_string()
    } else if image.contains('/') {
        format!("{mirror}/{image}")
    } else {
        format!("{mirror}/library/{image}")
    }
}

fn to_state(state: State) -> ContainerState {
    match state {
        State::Created => ContainerState::Created,
        State::Running => ContainerState::Running,
        State::Paused => ContainerState::Paused,
        State::Restarting => ContainerState::Restarting,
        State::Exited => ContainerState::Exited,
        State::Dead => ContainerState::Dead,
        State::Removing => ContainerState::Removing,
    }
}

impl HookState {
    fn scope(&self) -> &Scope {
        &self.host.scope
    }

    fn refused(&mut self, refused: Refused) -> Error {
        match refused {
            Refused::Denied(refusal) => Error::Denied(self.deny(refusal)),
            Refused::Invalid(message) => invalid(message),
        }
    }

    /// The container's info for the guest; remembers its published ports and its
    /// address on the project network as `net-probe` targets.
    fn container_info(&self, details: &ContainerDetails) -> ContainerInfo {
        let prefix = format!("{}-", engine_name(self.scope(), "").trim_end_matches('-'));
        if let Ok(mut targets) = self.host.probe_targets.lock() {
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
        ContainerInfo {
            name: details.name.strip_prefix(&prefix).unwrap_or(&details.name).to_string(),
            engine_name: details.name.clone(),
            id: details.id.clone(),
            image: details.image.clone(),
            state: to_state(details.state),
            health: details.health.map(|h| match h {
                crate::engine::Health::Starting => HealthState::Starting,
                crate::engine::Health::Healthy => HealthState::Healthy,
                crate::engine::Health::Unhealthy => HealthState::Unhealthy,
            }),
            exit_code: details.exit_code,
            ports: details
                .ports
                .iter()
                .map(|(c, ip, h)| PublishedPort { container_port: *c, host_ip: ip.clone(), host_port: *h })
                .collect(),
            address: details.address.clone(),
            spec_hash: details.labels.get(LABEL_SPEC_HASH).cloned().unwrap_or_default(),
        }
    }

    /// One of this service's containers by short name; someone else's is `not-found`.
    fn own_container(&self, short: &str) -> Result<ContainerDetails, Error> {
        if !valid_short_name(short) {
            return Err(invalid(format!("container name `{short}`")));
        }
        let name = engine_name(self.scope(), short);
        match self.host.engine.inspect_container(&name).map_err(engine_error)? {
            Some(details) if owned_by(&details.labels, self.scope()) => Ok(details),
            _ => Err(Error::NotFound(format!("container `{short}` of service `{}`", self.scope().service))),
        }
    }

    fn ensure_volume(&self, engine_volume: &str) -> Result<(), Error> {
        let engine = &self.host.engine;
        match engine.inspect_volume(engine_volume).map_err(engine_error)? {
            Some(v) if owned_by(&v.labels, self.scope()) => Ok(()),
            Some(_) => Err(Error::Conflict(format!("volume {engine_volume} exists and belongs to something else"))),
            None => engine.create_volume(engine_volume, &service_labels(self.scope())).map_err(engine_error),
        }
    }

    fn progress_note(&self, message: &str) {
        if let Some(sink) = &self.host.progress {
            sink(self.scope(), message);
        }
    }

    /// Bring one container in line with its request. Returns what was done.
    fn converge(&mut self, request: &ContainerRequest, pulled: &mut bool) -> Result<(EnsureOutcome, ContainerDetails), Error> {
        let engine = self.host.engine.clone();
        let existing = engine.inspect_container(&request.name).map_err(engine_error)?;
        let wanted_hash = request.labels.get(LABEL_SPEC_HASH);
        let outcome = match &existing {
            Some(d) if !owned_by(&d.labels, self.scope()) => {
                return Err(Error::Conflict(format!(
                    "a container named {} exists and does not belong to service `{}`; remove or rename it",
                    request.name,
                    self.scope().service
                )))
            }
            Some(d) if d.labels.get(LABEL_SPEC_HASH) == wanted_hash => {
                if d.state == State::Running {
                    return Ok((EnsureOutcome::Unchanged, d.clone()));
                }
                self.progress_note(&format!("starting {}", request.name));
                let started = std::time::Instant::now();
                engine.start_container(&request.name).map_err(engine_error)?;
                self.phases.start += started.elapsed();
                EnsureOutcome::Started
            }
            other => {
                if !*pulled {
                    let sink = self.host.progress.clone();
                    let scope = self.scope().clone();
                    let mut report = |m: &str| {
                        if let Some(sink) = &sink {
                            sink(&scope, m);
                        }
                    };
                    let started = std::time::Instant::now();
                    engine.ensure_image(&request.image, &mut report).map_err(engine_error)?;
                    self.phases.pull += started.elapsed();
                    *pulled = true;
                }
                let outcome = if other.is_some() {
                    self.progress_note(&format!("replacing {}", request.name));
                    engine.remove_container(&request.name).map_err(engine_error)?;
                    EnsureOutcome::Recreated
                } else {
                    EnsureOutcome::Created
                };
                if !request.is_confined() {
                    return Err(Error::Denied(format!("container {} would not be confined", request.name)));
                }
                self.progress_note(&format!("creating {}", request.name));
                let started = std::time::Instant::now();
                engine.create_container(request).map_err(engine_error)?;
                engine.write_files(&request.name, &request.files).map_err(engine_error)?;
                self.phases.create += started.elapsed();
                self.progress_note(&format!("starting {}", request.name));
                let started = std::time::Instant::now();
                engine.start_container(&request.name).map_err(engine_error)?;
                self.phases.start += started.elapsed();
                outcome
            }
        };
        let details = engine
            .inspect_container(&request.name)
            .map_err(engine_error)?
            .ok_or_else(|| Error::Engine(format!("container {} vanished after start", request.name)))?;
        Ok((outcome, details))
    }
}

impl HookState {
    /// Converge one instance of a replicated workload without a gap: a running
    /// instance whose spec changed is renamed aside and keeps serving while its
    /// replacement starts under its name; the old one goes only once the new one is
    /// up. If the new one never comes up it is removed and the old one put back.
    fn converge_replica(&mut self, request: &ContainerRequest, pulled: &mut bool) -> Result<(EnsureOutcome, ContainerDetails), Error> {
        let engine = self.host.engine.clone();
        let changed_and_running = engine.inspect_container(&request.name).map_err(engine_error)?.is_some_and(|d| {
            owned_by(&d.labels, self.scope())
                && d.labels.get(LABEL_SPEC_HASH) != request.labels.get(LABEL_SPEC_HASH)
                && d.state == State::Running
        });
        if !changed_and_running {
            return self.converge(request, pulled);
        }

        let aside = format!("{}-retiring", request.name);
        // Left over from an interrupted replacement: the instance under the name won.
        match engine.inspect_container(&aside).map_err(engine_error)? {
            Some(stale) if owned_by(&stale.labels, self.scope()) => engine.remove_container(&aside).map_err(engine_error)?,
            Some(_) => return Err(Error::Conflict(format!("a container named {aside} exists and is not this service's"))),
            None => {}
        }
        engine.rename_container(&request.name, &aside).map_err(engine_error)?;
        let replaced = self.converge(request, pulled).and_then(|_| self.wait_until_up(request));
        match replaced {
            Ok(details) => {
                self.progress_note(&format!("stopping the previous {}", request.name));
                engine.remove_container(&aside).map_err(engine_error)?;
                Ok((EnsureOutcome::Recreated, details))
            }
            Err(error) => {
                let logs = engine.logs(&request.name, 10).unwrap_or_default();
                let _ = engine.remove_container(&request.name);
                engine.rename_container(&aside, &request.name).map_err(engine_error)?;
                let message = match error {
                    Error::Engine(m) | Error::Conflict(m) | Error::Invalid(m) | Error::Denied(m) | Error::NotFound(m) => m,
                };
                let tail = if logs.trim().is_empty() { String::new() } else { format!("; its last log lines:\n{}", logs.trim_end()) };
                Err(Error::Engine(format!(
                    "the replacement of {} did not come up, so the running one was kept: {message}{tail}",
                    request.name
                )))
            }
        }
    }

    /// Wait until the container runs and, when its spec has a health check, the
    /// engine reports it healthy; the budget is what the check itself allows plus 30 s.
    fn wait_until_up(&self, request: &ContainerRequest) -> Result<ContainerDetails, Error> {
        use crate::engine::Health;
        let allowed = request.health.as_ref().map_or(0, |h| {
            u64::from(h.start_period_ms) + u64::from(h.retries.max(1) + 1) * u64::from(h.interval_ms + h.timeout_ms)
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(allowed) + std::time::Duration::from_secs(30);
        self.progress_note(&format!("waiting for the new {} to be up", request.name));
        loop {
            let details = self
                .host
                .engine
                .inspect_container(&request.name)
                .map_err(engine_error)?
                .ok_or_else(|| Error::Engine(format!("{} vanished after start", request.name)))?;
            match (details.state, details.health, request.health.is_some()) {
                (State::Running, _, false) | (State::Running, Some(Health::Healthy), true) => return Ok(details),
                (State::Running, Some(Health::Unhealthy), true) => {
                    return Err(Error::Engine(format!("{} reports unhealthy", request.name)))
                }
                (State::Exited | State::Dead, ..) => {
                    let code = details.exit_code.map_or_else(|| "?".to_string(), |c| c.to_string());
                    return Err(Error::Engine(format!("{} exited with code {code}", request.name)));
                }
                _ => {}
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Engine(format!("{} not healthy after {} s", request.name, (allowed / 1000) + 30)));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// How several per-instance outcomes sum up.
fn combine(a: EnsureOutcome, b: EnsureOutcome) -> EnsureOutcome {
    use EnsureOutcome::*;
    let rank = |o: EnsureOutcome| match o {
        Unchanged => 0,
        Started => 1,
        Recreated => 2,
        Created => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

impl Host for HookState {
    fn network(&mut self) -> Result<String, Error> {
        let scope = self.scope().clone();
        let name = network_name(&scope);
        let labels = environment_labels(&scope.project, &scope.environment);
        self.host.engine.ensure_network(&name, &labels).map_err(engine_error)?;
        Ok(name)
    }

    fn create_volume(&mut self, name: String) -> Result<String, Error> {
        if !valid_short_name(&name) {
            return Err(invalid(format!("volume name `{name}`")));
        }
        if let Err(refusal) = self.host.effective.check_volume(&name) {
            return Err(Error::Denied(self.deny(refusal)));
        }
        let engine_volume = engine_name(self.scope(), &name);
        self.ensure_volume(&engine_volume)?;
        Ok(engine_volume)
    }

    fn remove_volume(&mut self, name: String) -> Result<(), Error> {
        if !valid_short_name(&name) {
            return Err(invalid(format!("volume name `{name}`")));
        }
        let engine_volume = engine_name(self.scope(), &name);
        match self.host.engine.inspect_volume(&engine_volume).map_err(engine_error)? {
            Some(v) if owned_by(&v.labels, self.scope()) => {
                self.host.engine.remove_volume(&engine_volume).map_err(engine_error)
            }
            _ => Err(Error::NotFound(format!("volume `{name}` of service `{}`", self.scope().service))),
        }
    }

    fn list_volumes(&mut self) -> Result<Vec<String>, Error> {
        let prefix = format!("{}-", engine_name(self.scope(), "").trim_end_matches('-'));
        let volumes = self.host.engine.list_volumes(&service_labels(self.scope())).map_err(engine_error)?;
        Ok(volumes.into_iter().filter_map(|v| v.name.strip_prefix(&prefix).map(str::to_string)).collect())
    }

    fn ensure(&mut self, spec: ContainerSpec) -> Result<Deployment, Error> {
        let instances: Vec<Option<u32>> = match spec.replicas {
            None => vec![None],
            Some(n) if (1..=MAX_REPLICAS).contains(&n) => (1..=n).map(Some).collect(),
            Some(n) => return Err(invalid(format!("replicas {n}: must be 1 to {MAX_REPLICAS}"))),
        };
        let mut requests = Vec::new();
        for instance in instances {
            let request = container_request(self.scope(), &self.host.effective, &self.host.defaults, &spec, instance)
                .map_err(|refused| self.refused(refused))?;
            requests.push(request);
        }

        self.network()?;
        for (volume, _, _) in &requests[0].volumes {
            self.ensure_volume(volume)?;
        }

        let mut outcome = EnsureOutcome::Unchanged;
        let mut pulled = false;
        let mut containers = Vec::new();
        for request in &requests {
            let (done, details) = if spec.replicas.is_some() {
                self.converge_replica(request, &mut pulled)?
            } else {
                self.converge(request, &mut pulled)?
            };
            outcome = combine(outcome, done);
            containers.push(self.container_info(&details));
        }

        // Instances of this workload that the spec no longer asks for (scale down, or
        // a switch between one container and replicas), stopped side by side: each
        // may take its whole stop timeout to drain.
        let wanted: Vec<&str> = requests.iter().map(|r| r.name.as_str()).collect();
        let mut labels = service_labels(self.scope());
        labels.insert(LABEL_WORKLOAD.to_string(), spec.name.clone());
        let extras: Vec<String> = self
            .host
            .engine
            .list_containers(&labels)
            .map_err(engine_error)?
            .into_iter()
            .map(|d| d.name)
            .filter(|name| !wanted.contains(&name.as_str()))
            .collect();
        if !extras.is_empty() {
            self.progress_note(&format!("stopping {}", extras.join(", ")));
            let engine = &self.host.engine;
            let removed: Vec<Result<(), EngineError>> = std::thread::scope(|s| {
                let handles: Vec<_> = extras.iter().map(|name| s.spawn(move || engine.remove_container(name))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(EngineError::Failed("panicked".into())))).collect()
            });
            for result in removed {
                result.map_err(engine_error)?;
            }
            outcome = combine(outcome, EnsureOutcome::Recreated);
        }
        Ok(Deployment { outcome, containers })
    }

    fn list_containers(&mut self) -> Result<Vec<ContainerInfo>, Error> {
        let list = self.host.engine.list_containers(&service_labels(self.scope())).map_err(engine_error)?;
        Ok(list.iter().map(|d| self.container_info(d)).collect())
    }

    fn inspect(&mut self, name: String) -> Result<ContainerInfo, Error> {
        let details = self.own_container(&name)?;
        Ok(self.container_info(&details))
    }

    fn start(&mut self, name: String) -> Result<(), Error> {
        let details = self.own_container(&name)?;
        self.host.engine.start_container(&details.name).map_err(engine_error)
    }

    fn stop(&mut self, name: String, timeout_ms: u32) -> Result<(), Error> {
        let details = self.own_container(&name)?;
        self.host.engine.stop_container(&details.name, timeout_ms.div_ceil(1000).min(300)).map_err(engine_error)
    }

    fn remove(&mut self, name: String) -> Result<(), Error> {
        if let Ok(details) = self.own_container(&name) {
            return self.host.engine.remove_container(&details.name).map_err(engine_error);
        }
        let mut labels = service_labels(self.scope());
        labels.insert(LABEL_WORKLOAD.to_string(), name.clone());
        let instances = self.host.engine.list_containers(&labels).map_err(engine_error)?;
        if instances.is_empty() {
            return Err(Error::NotFound(format!("container `{name}` of service `{}`", self.scope().service)));
        }
        for instance in instances {
            self.host.engine.remove_container(&instance.name).map_err(engine_error)?;
        }
        Ok(())
    }

    fn exec(&mut self, name: String, command: Vec<String>, options: ExecOptions) -> Result<ExecOutput, Error> {
        if let Err(refusal) = self.host.effective.check_exec(&name) {
            return Err(Error::Denied(self.deny(refusal)));
        }
        if command.is_empty() {
            return Err(invalid("exec with an empty command".into()));
        }
        let details = self.own_container(&name)?;
        for var in &options.env {
            if var.secret {
                self.remember_secret(&var.value);
            }
        }
        let request = ExecRequest {
            command,
            env: options.env.into_iter().map(|v| (v.name, v.value)).collect(),
            user: options.user,
            workdir: options.workdir,
            stdin: options.stdin,
        };
        let result = self.host.engine.exec(&details.name, &request).map_err(engine_error)?;
        Ok(ExecOutput { exit_code: result.exit_code, stdout: result.stdout, stderr: result.stderr })
    }

    fn write_file(&mut self, name: String, path: String, contents: Vec<u8>, mode: u32) -> Result<(), Error> {
        if let Err(refusal) = self.host.effective.check_exec(&name) {
            return Err(Error::Denied(self.deny(refusal)));
        }
        if !path.starts_with('/') || path.ends_with('/') || path.split('/').any(|p| p == "..") {
            return Err(invalid(format!("file path `{path}` must be absolute, without `..`")));
        }
        let details = self.own_container(&name)?;
        self.host.engine.write_file(&details.name, &path, &contents, mode & 0o7777).map_err(engine_error)
    }

    fn logs(&mut self, name: String, lines: u32) -> Result<String, Error> {
        let details = self.own_container(&name)?;
        self.host.engine.logs(&details.name, lines.min(10_000)).map_err(engine_error)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::capabilities::{Capability, Effective, Grants};
    use crate::engine::fake::Fake;
    use crate::runtime::bindings::v0_1::docker::{EnvVar, Mount, Port, Resources};
    use crate::runtime::bindings::v0_1::types::KeyValue;
    use crate::runtime::limits::HookLimits;
    use crate::runtime::state::ServiceHost;
    use crate::runtime::stderr::StderrTail;

    fn scope() -> Scope {
        Scope { project: "shop".into(), environment: "local".into(), service: "db".into(), plugin: "postgres".into() }
    }

    fn declared() -> Vec<Capability> {
        vec![
            Capability::Image("postgres:*".into()),
            Capability::Publish(5432),
            Capability::Volume("data".into()),
            Capability::Exec,
        ]
    }

    fn state(engine: Arc<Fake>, grants: Grants) -> HookState {
        let host = ServiceHost {
            scope: scope(),
            effective: Effective::new("postgres", declared(), grants),
            engine,
            ..ServiceHost::sealed("postgres", HookLimits::default())
        };
        HookState::new(Arc::new(host), StderrTail::new(64), &HookLimits::default()).unwrap()
    }

    fn spec(image: &str) -> ContainerSpec {
        ContainerSpec {
            name: "server".into(),
            image: image.into(),
            command: None,
            entrypoint: None,
            env: vec![EnvVar { name: "POSTGRES_PASSWORD".into(), value: "s3cret".into(), secret: true }],
            ports: vec![Port { container_port: 5432, host_port: None }],
            mounts: vec![Mount { volume: "data".into(), target: "/var/lib/postgresql/data".into(), read_only: false }],
            files: vec![],
            health: None,
            resources: None,
            user: None,
            aliases: vec![],
            labels: vec![],
            replicas: None,
            stop_timeout_ms: None,
        }
    }

    #[test]
    fn every_request_is_named_labelled_confined_and_limited() {
        let defaults = ContainerDefaults::default();
        let effective = Effective::new("postgres", declared(), Grants::all_of(&declared()));
        let request = container_request(&scope(), &effective, &defaults, &spec("postgres:16"), None).ok().unwrap();
        assert_eq!(request.name, "shop-local-db-server");
        assert_eq!(request.network, "shop-local");
        for (k, v) in service_labels(&scope()) {
            assert_eq!(request.labels.get(&k), Some(&v), "label {k}");
        }
        assert_eq!(request.ports, vec![(5432, "127.0.0.1".parse().unwrap(), 0)]);
        assert_eq!(request.volumes, vec![("shop-local-db-data".into(), "/var/lib/postgresql/data".into(), false)]);
        assert_eq!(request.memory_bytes, 1024 << 20);
        assert!(request.nano_cpus > 0 && request.pids > 0);
        assert!(request.is_confined());
        assert!(request.aliases.contains(&"db".to_string()));

        let replica = container_request(&scope(), &effective, &defaults, &spec("postgres:16"), Some(2)).ok().unwrap();
        assert_eq!(replica.name, "shop-local-db-server-2");
        assert!(replica.ports.is_empty(), "replicas are never published");
    }

    #[test]
    fn policy_table() {
        let defaults = ContainerDefaults::default();
        let all = Grants::all_of(&declared());
        let no_publish = Grants { publish: vec![], ..all.clone() };
        type Edit = fn(&mut ContainerSpec);
        // (what, grants, edit, expect: None = allowed, Some(substring of the refusal))
        let cases: Vec<(&str, Grants, Edit, Option<&str>)> = vec![
            ("plain", all.clone(), |_| {}, None),
            ("undeclared image", all.clone(), |s| s.image = "nginx:1".into(), Some("not among")),
            ("ungranted port", no_publish, |_| {}, Some("publish = [5432]")),
            ("undeclared port", all.clone(), |s| s.ports[0].container_port = 22, Some("publish `22`")),
            ("host path as volume", all.clone(), |s| s.mounts[0].volume = "/etc".into(), Some("volume name")),
            ("docker socket", all.clone(), |s| s.mounts[0].volume = "/var/run/docker.sock".into(), Some("volume name")),
            ("undeclared volume", all.clone(), |s| s.mounts[0].volume = "other".into(), Some("not among")),
            ("relative target", all.clone(), |s| s.mounts[0].target = "data".into(), Some("absolute")),
            ("escaping target", all.clone(), |s| s.mounts[0].target = "/a/../..".into(), Some("absolute")),
            ("reserved label", all.clone(), |s| s.labels.push(KeyValue { key: "provisioner.service".into(), value: "x".into() }), Some("the host's")),
            ("bad env name", all.clone(), |s| s.env[0].name = "A=B".into(), Some("environment variable")),
            ("bad name", all.clone(), |s| s.name = "../x".into(), Some("container name")),
            ("empty image", all.clone(), |s| s.image = " ".into(), Some("empty image")),
        ];
        for (what, grants, edit, expect) in cases {
            let effective = Effective::new("postgres", declared(), grants);
            let mut s = spec("postgres:16");
            edit(&mut s);
            let result = container_request(&scope(), &effective, &defaults, &s, None);
            match (result, expect) {
                (Ok(_), None) => {}
                (Ok(_), Some(want)) => panic!("{what}: allowed, expected refusal with `{want}`"),
                (Err(Refused::Denied(r)), Some(want)) => assert!(r.message.contains(want), "{what}: {}", r.message),
                (Err(Refused::Invalid(m)), Some(want)) => assert!(m.contains(want), "{what}: {m}"),
                (Err(_), None) => panic!("{what}: refused"),
            }
        }
    }

    #[test]
    fn images_move_to_the_mirror_unless_they_name_a_registry() {
        let cases = [
            ("postgres:16", None, "postgres:16"),
            ("postgres:16", Some("mirror.local:5000"), "mirror.local:5000/library/postgres:16"),
            ("dxflrs/garage:v1", Some("mirror.local:5000/"), "mirror.local:5000/dxflrs/garage:v1"),
            ("ghcr.io/x/y:1", Some("mirror.local:5000"), "ghcr.io/x/y:1"),
            ("localhost/y:1", Some("m"), "localhost/y:1"),
            ("postgres:16", Some(""), "postgres:16"),
        ];
        for (image, mirror, expected) in cases {
            assert_eq!(mirrored(image, mirror), expected, "{image} via {mirror:?}");
        }
    }

    #[test]
    fn limits_are_capped_by_the_environment() {
        let defaults = ContainerDefaults { max_memory_mb: 2048, ..ContainerDefaults::default() };
        let effective = Effective::new("postgres", declared(), Grants::all_of(&declared()));
        let mut s = spec("postgres:16");
        s.resources = Some(Resources { memory_mb: Some(1 << 20), cpu_millis: None, pids: Some(0) });
        let request = container_request(&scope(), &effective, &defaults, &s, None).ok().unwrap();
        assert_eq!(request.memory_bytes, 2048 << 20);
        assert_eq!(request.pids, 16);
    }

    #[test]
    fn ensure_is_idempotent_and_notices_changes() {
        let engine = Arc::new(Fake::default());
        let mut st = state(engine.clone(), Grants::all_of(&declared()));
        let first = st.ensure(spec("postgres:16")).unwrap();
        assert_eq!(first.outcome, EnsureOutcome::Created);
        assert_eq!(first.containers[0].name, "server");
        assert!(first.containers[0].ports[0].host_port > 0);
        let again = st.ensure(spec("postgres:16")).unwrap();
        assert_eq!(again.outcome, EnsureOutcome::Unchanged);
        assert_eq!(again.containers[0].id, first.containers[0].id);

        engine.set_state("shop-local-db-server", State::Exited);
        assert_eq!(st.ensure(spec("postgres:16")).unwrap().outcome, EnsureOutcome::Started);

        let changed = st.ensure(spec("postgres:16.4")).unwrap();
        assert_eq!(changed.outcome, EnsureOutcome::Recreated);
        assert_ne!(changed.containers[0].id, first.containers[0].id);
        assert_eq!(st.list_volumes().unwrap(), vec!["data".to_string()]);
    }

    #[test]
    fn replicas_scale_up_and_down() {
        let engine = Arc::new(Fake::default());
        let mut st = state(engine.clone(), Grants::all_of(&declared()));
        let mut s = spec("postgres:16");
        s.ports.clear();
        s.replicas = Some(3);
        st.ensure(s.clone()).unwrap();
        let names = engine.container_names();
        assert_eq!(names, vec!["shop-local-db-server-1", "shop-local-db-server-2", "shop-local-db-server-3"]);
        s.replicas = Some(1);
        st.ensure(s.clone()).unwrap();
        assert_eq!(engine.container_names(), vec!["shop-local-db-server-1"], "scaling down keeps the lowest numbers");
        s.replicas = None;
        st.ensure(s).unwrap();
        assert_eq!(engine.container_names(), vec!["shop-local-db-server"]);
        assert!(matches!(st.ensure(ContainerSpec { replicas: Some(0), ..spec("postgres:16") }), Err(Error::Invalid(_))));
    }

    #[test]
    fn a_changed_replica_is_replaced_only_once_its_successor_is_up() {
        let engine = Arc::new(Fake::default());
        let mut st = state(engine.clone(), Grants::all_of(&declared()));
        let mut s = spec("postgres:16");
        s.ports.clear();
        s.replicas = Some(2);
        let before = st.ensure(s.clone()).unwrap();

        s.image = "postgres:16.4".into();
        let after = st.ensure(s.clone()).unwrap();
        assert_eq!(after.outcome, EnsureOutcome::Recreated);
        assert_eq!(engine.container_names(), vec!["shop-local-db-server-1", "shop-local-db-server-2"], "nothing retiring is left");
        for (old, new) in before.containers.iter().zip(&after.containers) {
            assert_ne!(old.id, new.id);
        }

        // A successor that crashes: the running instance is put back, untouched.
        engine.crash_on_start("postgres:17");
        s.image = "postgres:17".into();
        let Err(Error::Engine(message)) = st.ensure(s) else { panic!("a crashing replacement must fail") };
        assert!(message.contains("kept") && message.contains("exited with code 1"), "{message}");
        assert_eq!(engine.container_names(), vec!["shop-local-db-server-1", "shop-local-db-server-2"]);
        assert_eq!(st.inspect("server-1".into()).unwrap().id, after.containers[0].id);
        assert_eq!(st.inspect("server-2".into()).unwrap().id, after.containers[1].id);
    }

    #[test]
    fn other_peoples_resources_are_out_of_reach() {
        let engine = Arc::new(Fake::default());
        let mut others = service_labels(&scope());
        others.insert(LABEL_SERVICE.into(), "cache".into());
        engine.plant_container("shop-local-db-server", others.clone());
        engine.plant_container("shop-local-db-stranger", BTreeMap::new());
        let mut st = state(engine.clone(), Grants::all_of(&declared()));
        assert!(matches!(st.ensure(spec("postgres:16")), Err(Error::Conflict(_))));
        assert!(matches!(st.inspect("stranger".into()), Err(Error::NotFound(_))));
        assert!(matches!(st.remove("stranger".into()), Err(Error::NotFound(_))));
        assert!(matches!(st.logs("stranger".into(), 10), Err(Error::NotFound(_))));
        assert!(matches!(st.exec("stranger".into(), vec!["id".into()], ExecOptions { env: vec![], user: None, workdir: None, stdin: None }), Err(Error::NotFound(_))));
        assert!(st.list_containers().unwrap().is_empty());
        assert_eq!(engine.container_names().len(), 2, "nothing of theirs was touched");
    }

    #[test]
    fn denials_are_values_and_recorded() {
        let engine = Arc::new(Fake::default());
        let mut st = state(engine.clone(), Grants::default());
        let err = st.ensure(spec("postgres:16")).unwrap_err();
        assert!(matches!(&err, Error::Denied(m) if m.contains("images = [\"postgres:16\"]")), "{err:?}");
        let err = st.exec("server".into(), vec!["id".into()], ExecOptions { env: vec![], user: None, workdir: None, stdin: None }).unwrap_err();
        assert!(matches!(err, Error::Denied(_)));
        assert_eq!(st.denials.len(), 2);
        assert_eq!(st.denials[0].capability, "image");
        assert_eq!(st.denials[0].argument, "postgres:16");
        assert_eq!(st.denials[1].capability, "exec");
        assert!(engine.container_names().is_empty());
    }
}
