//! Realisers: how a target turns policed requests into engine resources.
//!
//! Plugins describe workloads (`container-spec`); the policy turns each into a
//! [`Workload`] of fully named, labelled, limited requests; a [`Realiser`] makes the
//! target match it. [`Containers`] realises workloads as plain containers on one
//! engine: observe → [`reconcile`] (pure) → [`execute`]. Another target (a cluster's
//! services) is another implementation of the trait; plugins, the WIT glue and the
//! policy do not change. See `docs/architecture.md`.

mod containers;
pub mod execute;
pub mod reconcile;
mod record;
mod swarm;

pub use containers::Containers;
pub use reconcile::{Operation, Outcome};
pub use record::{host_ports, HostPorts, KeptPort, RecordedInstance, RecordedWorkload};
pub use swarm::{Swarm, SwarmSettings};

use std::net::SocketAddr;
use std::time::Duration;

use crate::engine::{ContainerDetails, EngineError, ExecRequest, ExecResult};
use crate::naming::Scope;
use crate::policy::Workload;

/// Where a realiser's time goes, for the run's timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pull,
    Create,
    Start,
}

/// Time spent pulling, creating and starting, summed over a hook call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    pub pull: Duration,
    pub create: Duration,
    pub start: Duration,
}

impl Phases {
    pub fn add(&mut self, phase: Phase, elapsed: Duration) {
        match phase {
            Phase::Pull => self.pull += elapsed,
            Phase::Create => self.create += elapsed,
            Phase::Start => self.start += elapsed,
        }
    }
}

/// Told what a realiser is doing while it works.
pub trait Observer {
    /// A short progress message (`creating …`, a pull's progress).
    fn note(&mut self, message: &str);
    fn phase(&mut self, phase: Phase, elapsed: Duration);
}

/// An observer that keeps nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn note(&mut self, _: &str) {}
    fn phase(&mut self, _: Phase, _: Duration) {}
}

/// A workload after `ensure`: what was done, and its instances as they now are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub outcome: Outcome,
    pub containers: Vec<ContainerDetails>,
}

/// How long the sweep after a teardown lets each leftover container stop before it
/// is killed (Docker Compose's default stop timeout).
pub const SWEEP_STOP_GRACE_SECS: u32 = 10;

/// One target's way of running a service's workloads. Every call is scoped to one
/// service: it sees and touches only resources that carry the service's labels
/// (someone else's is `NotFound`, or a `Conflict` where its name is wanted).
pub trait Realiser: Send + Sync {
    /// For messages, e.g. `unix:///var/run/docker.sock`.
    fn describe(&self) -> String;

    /// Make sure the project network exists; its name.
    fn network(&self, scope: &Scope) -> Result<String, EngineError>;
    /// Make sure the service's volume `short` exists; its engine name.
    fn create_volume(&self, scope: &Scope, short: &str) -> Result<String, EngineError>;
    fn remove_volume(&self, scope: &Scope, short: &str) -> Result<(), EngineError>;
    /// The service's volumes, by short name.
    fn list_volumes(&self, scope: &Scope) -> Result<Vec<String>, EngineError>;

    /// What `ensure` would do now, without doing it.
    fn plan(&self, scope: &Scope, workload: &Workload) -> Result<Vec<Operation>, EngineError>;
    /// Bring the workload in line: observe, reconcile, execute.
    fn ensure(&self, scope: &Scope, workload: &Workload, observer: &mut dyn Observer) -> Result<Deployment, EngineError>;

    /// The service's containers.
    fn list(&self, scope: &Scope) -> Result<Vec<ContainerDetails>, EngineError>;
    /// One of the service's containers by short name.
    fn inspect(&self, scope: &Scope, short: &str) -> Result<ContainerDetails, EngineError>;
    fn start(&self, scope: &Scope, short: &str) -> Result<(), EngineError>;
    fn stop(&self, scope: &Scope, short: &str, timeout_secs: u32) -> Result<(), EngineError>;
    /// Remove a container by short name, or every instance of the workload so named.
    /// `stop_grace_secs` replaces each container's own stop timeout when given (0: at
    /// once, as a full teardown stops what has nothing left to drain).
    fn remove(&self, scope: &Scope, short: &str, stop_grace_secs: Option<u32>) -> Result<(), EngineError>;
    fn exec(&self, scope: &Scope, short: &str, request: &ExecRequest) -> Result<ExecResult, EngineError>;
    /// `exec` with streamed input and output (see [`ContainerEngine::exec_streaming`]).
    fn exec_streaming(
        &self,
        scope: &Scope,
        short: &str,
        request: &ExecRequest,
        stdin: Option<&mut dyn std::io::Read>,
        stdout: &mut dyn std::io::Write,
    ) -> Result<ExecResult, EngineError>;
    fn signal(&self, scope: &Scope, short: &str, signal: &str) -> Result<(), EngineError>;
    fn write_file(&self, scope: &Scope, short: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), EngineError>;
    fn logs(&self, scope: &Scope, short: &str, lines: u32) -> Result<String, EngineError>;
    /// Make `addr`, an address this realiser gave one of the service's containers,
    /// answer on this machine before a readiness probe connects to it (a cluster's
    /// port-forward). Addresses of a single engine answer already.
    fn open_route(&self, scope: &Scope, addr: SocketAddr) -> Result<(), EngineError> {
        let _ = (scope, addr);
        Ok(())
    }

    /// Every container of a project's environment, whichever service it belongs to.
    fn environment(&self, project: &str, environment: &str) -> Result<Vec<ContainerDetails>, EngineError>;
    /// Remove one container of the environment by engine name (orphans, sweeping).
    fn remove_from_environment(&self, project: &str, environment: &str, name: &str) -> Result<(), EngineError>;
    /// Remove whatever is still labelled for the environment: containers (stopped side
    /// by side within [`SWEEP_STOP_GRACE_SECS`]), the volumes unless kept, the network.
    /// How many resources went.
    fn sweep(&self, project: &str, environment: &str, keep_volumes: bool) -> Result<usize, EngineError>;
    /// The last log lines of a container of the environment, by engine name.
    fn environment_logs(&self, project: &str, environment: &str, name: &str, lines: u32) -> Result<String, EngineError>;
}
