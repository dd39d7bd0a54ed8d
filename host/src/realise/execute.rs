//! Carry out a reconcile's operations against a container engine, in order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::reconcile::Operation;
use super::{HostPorts, Observer, Phase};
use crate::engine::{ContainerEngine, ContainerRequest, EngineError, Health, State};
use crate::naming::{self, Scope};

/// How often a replacement is inspected while it comes up.
const UP_POLL: Duration = Duration::from_millis(100);
/// Time a replacement gets beyond what its own health check allows.
const UP_GRACE: Duration = Duration::from_secs(30);

pub struct Executor<'a> {
    pub engine: &'a dyn ContainerEngine,
    pub scope: &'a Scope,
    /// The requests of the workload, by engine name.
    pub requests: BTreeMap<&'a str, &'a ContainerRequest>,
    /// Host ports a container created anew had before, by engine name.
    pub offered: &'a HostPorts,
    pub observer: &'a mut dyn Observer,
}

impl<'a> Executor<'a> {
    pub fn run(&mut self, ops: &[Operation]) -> Result<(), EngineError> {
        for op in ops {
            self.step(op)?;
        }
        Ok(())
    }

    fn request(&self, name: &str) -> Result<&'a ContainerRequest, EngineError> {
        self.requests.get(name).copied().ok_or_else(|| EngineError::Failed(format!("no request for {name}")))
    }

    fn timed<T>(&mut self, phase: Phase, f: impl FnOnce(&dyn ContainerEngine) -> Result<T, EngineError>) -> Result<T, EngineError> {
        let started = Instant::now();
        let result = f(self.engine);
        self.observer.phase(phase, started.elapsed());
        result
    }

    fn step(&mut self, op: &Operation) -> Result<(), EngineError> {
        match op {
            Operation::CreateVolume(volume) => self.engine.create_volume(volume, &naming::service_labels(self.scope)),
            Operation::Pull(image) => {
                let started = Instant::now();
                let observer = &mut *self.observer;
                let result = self.engine.ensure_image(image, &mut |m| observer.note(m));
                self.observer.phase(Phase::Pull, started.elapsed());
                result
            }
            Operation::Create(name) => {
                let offered: Vec<(u16, u16)> =
                    self.offered.get(name.as_str()).into_iter().flatten().map(|p| (p.container, p.host)).collect();
                self.create_and_start_keeping(name, &offered)
            }
            Operation::Start(name) => {
                self.observer.note(&format!("starting {name}"));
                self.timed(Phase::Start, |e| e.start_container(name))
            }
            Operation::Recreate(name) => {
                self.observer.note(&format!("replacing {name}"));
                let published: Vec<(u16, u16)> = match self.engine.inspect_container(name)? {
                    Some(old) => old.ports.iter().map(|(container, _, host)| (*container, *host)).collect(),
                    None => Vec::new(),
                };
                self.engine.remove_container(name)?;
                self.create_and_start_keeping(name, &published)
            }
            Operation::Replace { name, aside } => self.replace(name, aside),
            Operation::RemoveStale(name) => self.engine.remove_container(name),
            Operation::Remove(names) => {
                // Side by side: each may take its whole stop timeout to drain.
                self.observer.note(&format!("stopping {}", names.join(", ")));
                let engine = self.engine;
                let results: Vec<Result<(), EngineError>> = std::thread::scope(|s| {
                    let handles: Vec<_> = names.iter().map(|name| s.spawn(move || engine.remove_container(name))).collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|_| Err(EngineError::Failed("a removal panicked".into()))))
                        .collect()
                });
                results.into_iter().collect()
            }
        }
    }

    fn create_and_start(&mut self, name: &str) -> Result<(), EngineError> {
        self.create_and_start_keeping(name, &[])
    }

    /// Create and start `name`; a port the request leaves to the engine gets the host
    /// port in `keep` (container port, host port) when it has one, so that a container
    /// replaced for a changed spec keeps the address the app was given. If that port
    /// has been taken meanwhile, the engine picks one after all.
    fn create_and_start_keeping(&mut self, name: &str, keep: &[(u16, u16)]) -> Result<(), EngineError> {
        let mut request = self.request(name)?.clone();
        // The policy never builds an unconfined request; this is asserted again right
        // before the engine call, in case one is ever built elsewhere.
        if !request.is_confined() {
            return Err(EngineError::Failed(format!("container {name} would not be confined")));
        }
        let asked = request.ports.clone();
        for (container_port, _, host_port) in request.ports.iter_mut().filter(|(_, _, h)| *h == 0) {
            if let Some((_, kept)) = keep.iter().find(|(c, _)| c == container_port) {
                *host_port = *kept;
            }
        }
        let pinned = request.ports != asked;
        self.observer.note(&format!("creating {name}"));
        self.timed(Phase::Create, |e| {
            e.create_container(&request)?;
            e.write_files(&request.name, &request.files)
        })?;
        self.observer.note(&format!("starting {name}"));
        match self.timed(Phase::Start, |e| e.start_container(name)) {
            Err(error) if pinned => {
                self.observer.note(&format!("its previous host port is taken ({error}); the engine picks another"));
                self.engine.remove_container(name)?;
                self.create_and_start(name)
            }
            result => result,
        }
    }

    /// Start the successor under `name` while the old instance keeps serving as
    /// `aside`; the old one goes once the new one is up, or comes back if it never is.
    fn replace(&mut self, name: &str, aside: &str) -> Result<(), EngineError> {
        let engine = self.engine;
        engine.rename_container(name, aside)?;
        let replaced = self.create_and_start(name).and_then(|()| self.wait_until_up(name));
        match replaced {
            Ok(()) => {
                self.observer.note(&format!("stopping the previous {name}"));
                engine.remove_container(aside)
            }
            Err(error) => {
                let logs = engine.logs(name, 10).unwrap_or_default();
                // Best effort: the successor may not even exist; putting the old one
                // back is what matters.
                let _ = engine.remove_container(name);
                engine.rename_container(aside, name)?;
                let tail = if logs.trim().is_empty() { String::new() } else { format!("; its last log lines:\n{}", logs.trim_end()) };
                Err(EngineError::Failed(format!(
                    "the replacement of {name} did not come up, so the running one was kept: {error}{tail}"
                )))
            }
        }
    }

    /// Wait until the container runs and, when its request has a health check, the
    /// engine reports it healthy; the budget is what the check itself allows plus a grace.
    fn wait_until_up(&mut self, name: &str) -> Result<(), EngineError> {
        let request = self.request(name)?;
        let health = request.health.clone();
        let allowed = health.as_ref().map_or(0, |h| {
            u64::from(h.start_period_ms) + u64::from(h.retries.max(1) + 1) * u64::from(h.interval_ms + h.timeout_ms)
        });
        let budget = Duration::from_millis(allowed) + UP_GRACE;
        let deadline = Instant::now() + budget;
        self.observer.note(&format!("waiting for the new {name} to be up"));
        loop {
            let details =
                self.engine.inspect_container(name)?.ok_or_else(|| EngineError::Failed(format!("{name} vanished after start")))?;
            match (details.state, details.health, health.is_some()) {
                (State::Running, _, false) | (State::Running, Some(Health::Healthy), true) => return Ok(()),
                (State::Running, Some(Health::Unhealthy), true) => {
                    return Err(EngineError::Failed(format!("{name} reports unhealthy")))
                }
                (State::Exited | State::Dead, ..) => {
                    let code = details.exit_code.map_or_else(|| "?".to_string(), |c| c.to_string());
                    return Err(EngineError::Failed(format!("{name} exited with code {code}")));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(EngineError::Failed(format!("{name} not healthy after {} s", budget.as_secs())));
            }
            std::thread::sleep(UP_POLL);
        }
    }
}
