//! A mock host for native unit tests of a plugin's hooks, without Docker (cargo
//! feature `testing`; native targets only, a wasm32 build never sees it).
//!
//! With the feature on, the SDK's [`docker`](crate::docker), [`secrets`](crate::secrets),
//! [`archive`](crate::archive), [`host_log`](crate::host_log) and [`state`](crate::state)
//! functions and the clock of [`wait`](crate::wait) answer from the [`MockHost`] of the
//! calling thread: an in-memory engine that records what the plugin asked for. The
//! plugin's code is unchanged; a test calls its hooks directly and looks at what the
//! mock saw.
//!
//! ```ignore
//! use provisioner_plugin_sdk::testing::{ctx, MockHost};
//!
//! #[test]
//! fn provision_asks_for_the_server() {
//!     let mock = MockHost::for_plugin::<MyPlugin>(); // denies what describe() did not declare
//!     let outputs = MyPlugin::provision(ctx("cache", serde_json::json!({"memory_mb": 128}))).unwrap();
//!     let spec = mock.spec("server");
//!     assert_eq!(spec.image, "memcached:1.6");
//!     assert_eq!(testing::output(&outputs, "MEMCACHED_SERVERS").value, mock.host_addr("server", 11211));
//! }
//! ```
//!
//! What it does not do: run images. `exec` answers from handlers a test registers
//! ([`MockHost::on_exec`]; by default exit 0 and no output). A published port refuses
//! connections (the engine picked a free port nobody listens on) unless the test
//! serves it ([`MockHost::serve`]): a `ready` that speaks the service's protocol is
//! tested against a canned answer here, and against the real server by a scenario
//! test (`provisioner plugins check`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::docker::{
    ContainerInfo, ContainerSpec, ContainerState, Deployment, EnsureOutcome, ExecOptions, ExecOutput, HealthState,
    PublishedPort,
};
use crate::{Capability, Context, Error, Level, Output, Readiness};

type ExecHandler = Rc<RefCell<dyn FnMut(&[String], &ExecOptions) -> ExecOutput>>;

/// One `exec` (or an archive's `save_exec` / `load_exec`) the plugin ran.
#[derive(Clone, Debug)]
pub struct ExecCall {
    pub container: String,
    pub command: Vec<String>,
    pub options: ExecOptions,
}

/// One `write_file` the plugin made.
#[derive(Clone, Debug)]
pub struct WrittenFile {
    pub container: String,
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl WrittenFile {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.contents).into_owned()
    }
}

#[derive(Default)]
struct State {
    project: String,
    environment: String,
    service: String,
    /// `None`: everything is allowed; else what `describe` declared.
    capabilities: Option<Vec<Capability>>,
    containers: BTreeMap<String, ContainerInfo>,
    specs: BTreeMap<String, ContainerSpec>,
    ensured: Vec<ContainerSpec>,
    volumes: Vec<String>,
    removed: Vec<String>,
    removed_volumes: Vec<String>,
    execs: Vec<ExecCall>,
    handlers: Vec<(String, ExecHandler)>,
    files: Vec<WrittenFile>,
    logs_of: BTreeMap<String, String>,
    signals: Vec<(String, String)>,
    secrets: BTreeMap<String, String>,
    log: Vec<(Level, String)>,
    progress: Vec<String>,
    failures: Vec<(String, Option<String>, Error)>,
    parts: Vec<(String, Vec<u8>)>,
    state_files: BTreeMap<String, String>,
    served: BTreeMap<(String, u16), u16>,
    host_ports: BTreeMap<(String, u16), u16>,
    clock_base: Option<Instant>,
    clock: Duration,
    next_id: u64,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// The in-memory host of the calling thread (each test runs on its own thread).
/// Creating one installs it, replacing any earlier one; clones share it.
#[derive(Clone)]
pub struct MockHost {
    state: Rc<RefCell<State>>,
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost::new()
    }
}

fn current() -> Rc<RefCell<State>> {
    CURRENT.with(|c| c.borrow().clone()).expect(
        "a host import was called with no MockHost on this thread: create one first (provisioner_plugin_sdk::testing::MockHost::new())",
    )
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let state = current();
    let mut state = state.borrow_mut();
    f(&mut state)
}

/// A context for hook `service` with `config` (a JSON value, e.g. `json!({"memory_mb": 128})`),
/// project `test`, environment `local`, one replica and no image override.
pub fn ctx(service: &str, config: serde_json::Value) -> Context {
    Context {
        project: "test".into(),
        environment: "local".into(),
        service: service.into(),
        config: config.to_string(),
        replicas: 1,
        image_override: None,
    }
}

/// The output `name` of `outputs`; panics listing the names there are.
pub fn output<'a>(outputs: &'a [Output], name: &str) -> &'a Output {
    outputs.iter().find(|o| o.name == name).unwrap_or_else(|| {
        panic!("no output {name}; the outputs are {:?}", outputs.iter().map(|o| &o.name).collect::<Vec<_>>())
    })
}

/// Panics unless `answer` (what `ready` returned) is `Ok(Ready)`.
pub fn assert_ready(answer: &Result<Readiness, String>) {
    match answer {
        Ok(Readiness::Ready) => {}
        other => panic!("expected ready, got {other:?}"),
    }
}

/// The reason of a `ready` that answered `Ok(NotYet(reason))`; panics otherwise.
pub fn not_yet(answer: Result<Readiness, String>) -> String {
    match answer {
        Ok(Readiness::NotYet(reason)) => reason,
        other => panic!("expected not yet, got {other:?}"),
    }
}

/// The keys of `validate`'s problems, in order (panics when it passed).
pub fn problem_keys(result: &Result<(), Vec<crate::ConfigProblem>>) -> Vec<String> {
    match result {
        Ok(()) => panic!("expected config problems, the config passed"),
        Err(problems) => problems.iter().map(|p| p.key.clone()).collect(),
    }
}

/// The value of the environment variable `name` in `spec`, if it sets it.
pub fn env<'a>(spec: &'a ContainerSpec, name: &str) -> Option<&'a str> {
    spec.env.iter().find(|e| e.name == name).map(|e| e.value.as_str())
}

impl ExecOutput {
    /// An exec that exited 0 and printed `stdout`.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        ExecOutput { exit_code: 0, stdout: stdout.into(), stderr: Vec::new() }
    }

    /// An exec that exited `code` and printed `stderr`.
    pub fn failed(code: i32, stderr: impl Into<Vec<u8>>) -> Self {
        ExecOutput { exit_code: code, stdout: Vec::new(), stderr: stderr.into() }
    }
}

impl MockHost {
    /// An empty engine (no containers, volumes, secrets), every capability allowed,
    /// installed for this thread. Its clock starts at zero.
    pub fn new() -> Self {
        let state = State {
            project: "test".into(),
            environment: "local".into(),
            service: "svc".into(),
            clock_base: Some(Instant::now()),
            ..State::default()
        };
        let state = Rc::new(RefCell::new(state));
        CURRENT.with(|c| *c.borrow_mut() = Some(state.clone()));
        MockHost { state }
    }

    /// [`MockHost::new`], allowing only what `P::describe()` declares, as the host does
    /// when the operator grants everything: an image, a published port, a volume, exec,
    /// secrets or state files not declared is `Error::Denied`.
    pub fn for_plugin<P: crate::Plugin>() -> Self {
        let mock = MockHost::new();
        mock.state.borrow_mut().capabilities = Some(P::describe().capabilities);
        mock
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.borrow_mut())
    }

    // --- Arranging ---------------------------------------------------------------

    /// Answer `exec`s in `container` (`"*"`: in any container) with `handler`, given
    /// the command. The latest handler registered for a container wins.
    pub fn on_exec(&self, container: &str, mut handler: impl FnMut(&[String]) -> ExecOutput + 'static) -> &Self {
        self.on_exec_with(container, move |command, _| handler(command))
    }

    /// [`MockHost::on_exec`], the handler also getting the options (env, user, stdin…).
    pub fn on_exec_with(&self, container: &str, handler: impl FnMut(&[String], &ExecOptions) -> ExecOutput + 'static) -> &Self {
        let handler: ExecHandler = Rc::new(RefCell::new(handler));
        self.with(|s| s.handlers.push((container.to_string(), handler)));
        self
    }

    /// Serve `container`'s `container_port` on a real local TCP port: each connection
    /// gets `answer(what the client sent first)` and is then closed. `ensure`
    /// publishes the port there, so `probe::tcp` and friends reach it.
    pub fn serve(&self, container: &str, container_port: u16, answer: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> &Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a local port for MockHost::serve");
        let port = listener.local_addr().expect("local address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = vec![0u8; 64 * 1024];
                let n = stream.read(&mut buf).unwrap_or(0);
                let _ = stream.write_all(&answer(&buf[..n]));
            }
        });
        self.with(|s| {
            s.served.insert((container.to_string(), container_port), port);
            // A container already running picks the port up at once.
            if let Some(info) = s.containers.get_mut(container) {
                for p in info.ports.iter_mut().filter(|p| p.container_port == container_port) {
                    p.host_port = port;
                }
            }
        });
        self
    }

    /// Put a container there before the hook runs (as a previous run left it):
    /// running, with `spec`'s ports published. Returns what `inspect` will say.
    pub fn given_container(&self, spec: &ContainerSpec) -> ContainerInfo {
        self.with(|s| {
            let info = s.start_container(&spec.name, spec);
            s.specs.insert(spec.name.clone(), spec.clone());
            info
        })
    }

    /// Put the volume `name` there.
    pub fn given_volume(&self, name: &str) -> &Self {
        self.with(|s| {
            if !s.volumes.iter().any(|v| v == name) {
                s.volumes.push(name.to_string())
            }
        });
        self
    }

    /// Set the secret `name` (as an earlier run generated it).
    pub fn set_secret(&self, name: &str, value: &str) -> &Self {
        self.with(|s| s.secrets.insert(name.to_string(), value.to_string()));
        self
    }

    /// Put `contents` in the service's state file `name` (see [`crate::state`]).
    pub fn set_state_file(&self, name: &str, contents: &str) -> &Self {
        self.with(|s| s.state_files.insert(name.to_string(), contents.to_string()));
        self
    }

    /// Put the part `name` in the archive, for a `restore` test.
    pub fn set_part(&self, name: &str, contents: impl Into<Vec<u8>>) -> &Self {
        let contents = contents.into();
        self.with(|s| match s.parts.iter_mut().find(|(n, _)| n == name) {
            Some(part) => part.1 = contents,
            None => s.parts.push((name.to_string(), contents)),
        });
        self
    }

    /// What `docker::logs(container, …)` returns.
    pub fn set_logs(&self, container: &str, text: &str) -> &Self {
        self.with(|s| s.logs_of.insert(container.to_string(), text.to_string()));
        self
    }

    /// Change `container`'s state, e.g. `ContainerState::Exited` to simulate a crash
    /// (a stopped container publishes nothing and has no address; its exit code is
    /// set to 1 unless [`MockHost::exit`] set one).
    pub fn set_state(&self, container: &str, state: ContainerState) -> &Self {
        self.with(|s| {
            let info = s.containers.get_mut(container).unwrap_or_else(|| panic!("set_state: no container {container}"));
            info.state = state;
            if matches!(state, ContainerState::Exited | ContainerState::Dead) {
                info.ports.clear();
                info.address = None;
                info.exit_code.get_or_insert(1);
            }
        });
        self
    }

    /// The container `container` exited with `code`.
    pub fn exit(&self, container: &str, code: i32) -> &Self {
        self.with(|s| {
            if let Some(info) = s.containers.get_mut(container) {
                info.exit_code = Some(code)
            }
        });
        self.set_state(container, ContainerState::Exited)
    }

    /// Set the engine health of `container`.
    pub fn set_health(&self, container: &str, health: Option<HealthState>) -> &Self {
        self.with(|s| s.containers.get_mut(container).unwrap_or_else(|| panic!("set_health: no container {container}")).health = health);
        self
    }

    /// Make the next call of the import `function` (its WIT name, e.g. `ensure`,
    /// `exec`, `get-or-create`, `save-exec`) fail with `error`; with `name`, only a
    /// call about that container, volume, secret or part.
    pub fn fail_next(&self, function: &str, name: Option<&str>, error: Error) -> &Self {
        self.with(|s| s.failures.push((function.to_string(), name.map(str::to_string), error)));
        self
    }

    /// Move the manual clock on (what `wait::until` reads).
    pub fn advance(&self, by: Duration) -> &Self {
        self.with(|s| s.clock += by);
        self
    }

    // --- Looking -----------------------------------------------------------------

    /// Every spec `ensure` got, in order.
    pub fn ensured(&self) -> Vec<ContainerSpec> {
        self.with(|s| s.ensured.clone())
    }

    /// The last spec `ensure` got for `name`; panics naming those it got.
    pub fn spec(&self, name: &str) -> ContainerSpec {
        self.with(|s| {
            s.ensured.iter().rev().find(|spec| spec.name == name).cloned().unwrap_or_else(|| {
                panic!("ensure was not called for {name}; it was for {:?}", s.ensured.iter().map(|s| &s.name).collect::<Vec<_>>())
            })
        })
    }

    /// The container `name` as the engine has it now, if it exists.
    pub fn container(&self, name: &str) -> Option<ContainerInfo> {
        self.with(|s| s.containers.get(name).cloned())
    }

    /// The names of the containers that exist now.
    pub fn containers(&self) -> Vec<String> {
        self.with(|s| s.containers.keys().cloned().collect())
    }

    /// `host:port` where `container`'s `container_port` is published now; panics if
    /// it is not.
    pub fn host_addr(&self, container: &str, container_port: u16) -> String {
        self.container(container)
            .and_then(|c| c.published(container_port))
            .unwrap_or_else(|| panic!("port {container_port} of {container} is not published"))
    }

    /// The volumes that exist now.
    pub fn volumes(&self) -> Vec<String> {
        self.with(|s| s.volumes.clone())
    }

    /// The containers `remove` removed, in order.
    pub fn removed(&self) -> Vec<String> {
        self.with(|s| s.removed.clone())
    }

    /// The volumes `remove_volume` removed, in order.
    pub fn removed_volumes(&self) -> Vec<String> {
        self.with(|s| s.removed_volumes.clone())
    }

    /// Every exec (including an archive's), in order.
    pub fn execs(&self) -> Vec<ExecCall> {
        self.with(|s| s.execs.clone())
    }

    /// The commands run in `container`, in order.
    pub fn commands_in(&self, container: &str) -> Vec<Vec<String>> {
        self.with(|s| s.execs.iter().filter(|e| e.container == container).map(|e| e.command.clone()).collect())
    }

    /// Every `write_file`, in order.
    pub fn written_files(&self) -> Vec<WrittenFile> {
        self.with(|s| s.files.clone())
    }

    /// The signals sent, as (container, signal).
    pub fn signals(&self) -> Vec<(String, String)> {
        self.with(|s| s.signals.clone())
    }

    /// The secret `name`, if the plugin created it (or a test set it).
    pub fn secret(&self, name: &str) -> Option<String> {
        self.with(|s| s.secrets.get(name).cloned())
    }

    /// The state file `name`, if there is one.
    pub fn state_file(&self, name: &str) -> Option<String> {
        self.with(|s| s.state_files.get(name).cloned())
    }

    /// The archive's part `name`, if there is one.
    pub fn part(&self, name: &str) -> Option<Vec<u8>> {
        self.with(|s| s.parts.iter().find(|(n, _)| n == name).map(|(_, c)| c.clone()))
    }

    /// Every message logged, with its level.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.with(|s| s.log.clone())
    }

    /// Every progress line shown.
    pub fn progress(&self) -> Vec<String> {
        self.with(|s| s.progress.clone())
    }

    /// How far the manual clock has moved (what the plugin's waits would have taken).
    pub fn elapsed(&self) -> Duration {
        self.with(|s| s.clock)
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(text) = text.strip_prefix(head) else { return false };
            (0..=text.len()).filter(|i| text.is_char_boundary(*i)).any(|i| glob(rest, &text[i..]))
        }
    }
}

impl State {
    fn allows(&self, wanted: impl Fn(&Capability) -> bool, what: String) -> Result<(), Error> {
        match &self.capabilities {
            Some(declared) if !declared.iter().any(wanted) => Err(Error::Denied(format!("{what}: not declared in describe()"))),
            _ => Ok(()),
        }
    }

    fn failure(&mut self, function: &str, name: &str) -> Result<(), Error> {
        let at = self.failures.iter().position(|(f, n, _)| f == function && n.as_deref().is_none_or(|n| n == name));
        match at {
            Some(at) => Err(self.failures.remove(at).2),
            None => Ok(()),
        }
    }

    fn engine_name(&self, name: &str) -> String {
        format!("{}-{}-{}-{name}", self.project, self.environment, self.service)
    }

    fn host_port(&mut self, container: &str, container_port: u16, wanted: Option<u16>) -> u16 {
        if let Some(port) = self.served.get(&(container.to_string(), container_port)) {
            return *port;
        }
        if let Some(port) = wanted {
            return port;
        }
        // Like the engine: a free port, kept while the container is there. Bound and
        // let go, so nothing listens on it: a probe is refused.
        *self.host_ports.entry((container.to_string(), container_port)).or_insert_with(|| {
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(1)
        })
    }

    fn start_container(&mut self, name: &str, spec: &ContainerSpec) -> ContainerInfo {
        self.next_id += 1;
        let published = spec.replicas.is_none();
        let ports = if published {
            spec.ports
                .iter()
                .map(|p| PublishedPort { container_port: p.container_port, host_ip: "127.0.0.1".into(), host_port: self.host_port(name, p.container_port, p.host_port) })
                .collect()
        } else {
            Vec::new()
        };
        let info = ContainerInfo {
            name: name.to_string(),
            engine_name: self.engine_name(name),
            id: format!("{:012x}", 0xc0ffee000000u64 + self.next_id),
            image: spec.image.clone(),
            state: ContainerState::Running,
            health: spec.health.as_ref().map(|_| HealthState::Healthy),
            exit_code: None,
            ports,
            address: Some(format!("172.30.0.{}", 1 + self.next_id % 250)),
            spec_hash: format!("{:016x}", fnv(format!("{spec:?}").as_bytes())),
        };
        for mount in &spec.mounts {
            if !self.volumes.contains(&mount.volume) {
                self.volumes.push(mount.volume.clone());
            }
        }
        self.containers.insert(name.to_string(), info.clone());
        info
    }

    fn exec(&mut self, container: &str, command: &[String], options: &ExecOptions) -> Result<ExecHandlerCall, Error> {
        self.allows(|c| matches!(c, Capability::Exec), format!("exec in {container}"))?;
        let info = self.containers.get(container).ok_or_else(|| Error::NotFound(format!("container {container}")))?;
        if info.state != ContainerState::Running {
            return Err(Error::Conflict(format!("container {container} is not running")));
        }
        self.execs.push(ExecCall { container: container.to_string(), command: command.to_vec(), options: options.clone() });
        let handler = self.handlers.iter().rev().find(|(c, _)| c == container).or_else(|| self.handlers.iter().rev().find(|(c, _)| c == "*"));
        Ok(handler.map(|(_, h)| h.clone()))
    }
}

type ExecHandlerCall = Option<ExecHandler>;

fn run_handler(handler: ExecHandlerCall, command: &[String], options: &ExecOptions) -> ExecOutput {
    match handler {
        Some(handler) => (handler.borrow_mut())(command, options),
        None => ExecOutput::ok(Vec::new()),
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}

/// The mock's side of the SDK's import modules: the same functions, with the
/// signatures wit-bindgen generates.
#[doc(hidden)]
pub mod imports {
    pub mod docker {
        use super::super::*;

        pub fn network() -> Result<String, Error> {
            with(|s| {
                s.failure("network", "")?;
                Ok(format!("{}-{}", s.project, s.environment))
            })
        }

        pub fn create_volume(name: &str) -> Result<String, Error> {
            with(|s| {
                s.failure("create-volume", name)?;
                s.allows(|c| matches!(c, Capability::Volume(v) if v == name), format!("volume {name}"))?;
                if !s.volumes.iter().any(|v| v == name) {
                    s.volumes.push(name.to_string());
                }
                Ok(s.engine_name(name))
            })
        }

        pub fn remove_volume(name: &str) -> Result<(), Error> {
            with(|s| {
                s.failure("remove-volume", name)?;
                let at = s.volumes.iter().position(|v| v == name).ok_or_else(|| Error::NotFound(format!("volume {name}")))?;
                s.volumes.remove(at);
                s.removed_volumes.push(name.to_string());
                Ok(())
            })
        }

        pub fn list_volumes() -> Result<Vec<String>, Error> {
            with(|s| {
                s.failure("list-volumes", "")?;
                Ok(s.volumes.clone())
            })
        }

        pub fn ensure(spec: &ContainerSpec) -> Result<Deployment, Error> {
            with(|s| {
                s.ensured.push(spec.clone());
                s.failure("ensure", &spec.name)?;
                if spec.name.is_empty() || spec.image.is_empty() {
                    return Err(Error::Invalid("a container spec needs a name and an image".into()));
                }
                s.allows(|c| matches!(c, Capability::Image(p) if glob(p, &spec.image)), format!("image {}", spec.image))?;
                if spec.replicas.is_none() {
                    for port in &spec.ports {
                        s.allows(|c| matches!(c, Capability::Publish(p) if *p == port.container_port), format!("publish {}", port.container_port))?;
                    }
                }
                for mount in &spec.mounts {
                    s.allows(|c| matches!(c, Capability::Volume(v) if *v == mount.volume), format!("volume {}", mount.volume))?;
                }
                let names: Vec<String> = match spec.replicas {
                    None => vec![spec.name.clone()],
                    Some(n) => (1..=n).map(|i| format!("{}-{i}", spec.name)).collect(),
                };
                let same = s.specs.get(&spec.name).is_some_and(|old| format!("{old:?}") == format!("{spec:?}"));
                let existed = names.iter().all(|n| s.containers.contains_key(n));
                let running = names.iter().all(|n| s.containers.get(n).is_some_and(|c| c.state == ContainerState::Running));
                let outcome = match (existed, same, running) {
                    (true, true, true) => EnsureOutcome::Unchanged,
                    (true, true, false) => EnsureOutcome::Started,
                    (true, false, _) => EnsureOutcome::Recreated,
                    (false, _, _) if s.specs.contains_key(&spec.name) => EnsureOutcome::Recreated,
                    (false, _, _) => EnsureOutcome::Created,
                };
                // Scaling down removes the highest-numbered instances.
                if let Some(n) = spec.replicas {
                    let prefix = format!("{}-", spec.name);
                    let extra: Vec<String> = s
                        .containers
                        .keys()
                        .filter(|k| k.strip_prefix(&prefix).and_then(|i| i.parse::<u32>().ok()).is_some_and(|i| i > n))
                        .cloned()
                        .collect();
                    for name in extra {
                        s.containers.remove(&name);
                    }
                }
                let containers = names
                    .iter()
                    .map(|name| match (&outcome, s.containers.get_mut(name)) {
                        (EnsureOutcome::Unchanged, Some(info)) => info.clone(),
                        _ => s.start_container(name, spec),
                    })
                    .collect();
                s.specs.insert(spec.name.clone(), spec.clone());
                Ok(Deployment { outcome, containers })
            })
        }

        pub fn list_containers() -> Result<Vec<ContainerInfo>, Error> {
            with(|s| {
                s.failure("list-containers", "")?;
                Ok(s.containers.values().cloned().collect())
            })
        }

        pub fn inspect(name: &str) -> Result<ContainerInfo, Error> {
            with(|s| {
                s.failure("inspect", name)?;
                s.containers.get(name).cloned().ok_or_else(|| Error::NotFound(format!("container {name}")))
            })
        }

        pub fn start(name: &str) -> Result<(), Error> {
            let spec = with(|s| {
                s.failure("start", name)?;
                s.containers.get(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
                let base = name.rsplit_once('-').filter(|(_, i)| i.parse::<u32>().is_ok()).map(|(b, _)| b).unwrap_or(name);
                Ok::<_, Error>(s.specs.get(name).or_else(|| s.specs.get(base)).cloned())
            })?;
            with(|s| {
                let fallback = ContainerSpec::new(name, &s.containers[name].image);
                let info = s.start_container(name, spec.as_ref().unwrap_or(&fallback));
                let _ = info;
                Ok(())
            })
        }

        pub fn stop(name: &str, timeout_ms: u32) -> Result<(), Error> {
            let _ = timeout_ms;
            with(|s| {
                s.failure("stop", name)?;
                let info = s.containers.get_mut(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
                info.state = ContainerState::Exited;
                info.exit_code = Some(0);
                info.ports.clear();
                info.address = None;
                Ok(())
            })
        }

        pub fn remove(name: &str) -> Result<(), Error> {
            with(|s| {
                s.failure("remove", name)?;
                // A workload's name removes all its replicas.
                let prefix = format!("{name}-");
                let replicas: Vec<String> = s
                    .containers
                    .keys()
                    .filter(|k| k.strip_prefix(&prefix).is_some_and(|i| i.parse::<u32>().is_ok()) && s.specs.get(name).is_some_and(|sp| sp.replicas.is_some()))
                    .cloned()
                    .collect();
                let gone: Vec<String> = if s.containers.contains_key(name) { vec![name.to_string()] } else { replicas };
                if gone.is_empty() {
                    return Err(Error::NotFound(format!("container {name}")));
                }
                for g in gone {
                    s.containers.remove(&g);
                    s.host_ports.retain(|(c, _), _| *c != g);
                }
                s.specs.remove(name);
                s.removed.push(name.to_string());
                Ok(())
            })
        }

        pub fn exec(name: &str, command: &[String], options: &ExecOptions) -> Result<ExecOutput, Error> {
            let handler = with(|s| {
                s.failure("exec", name)?;
                s.exec(name, command, options)
            })?;
            Ok(run_handler(handler, command, options))
        }

        pub fn write_file(name: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), Error> {
            with(|s| {
                s.failure("write-file", name)?;
                s.containers.get(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
                s.files.push(WrittenFile { container: name.to_string(), path: path.to_string(), contents: contents.to_vec(), mode });
                Ok(())
            })
        }

        pub fn logs(name: &str, lines: u32) -> Result<String, Error> {
            with(|s| {
                s.failure("logs", name)?;
                s.containers.get(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
                let text = s.logs_of.get(name).cloned().unwrap_or_default();
                let all: Vec<&str> = text.lines().collect();
                Ok(all[all.len().saturating_sub(lines as usize)..].join("\n"))
            })
        }

        pub fn signal(name: &str, signal: &str) -> Result<(), Error> {
            with(|s| {
                s.failure("signal", name)?;
                s.containers.get(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
                s.signals.push((name.to_string(), signal.to_string()));
                Ok(())
            })
        }
    }

    pub mod secrets {
        use super::super::*;

        /// Deterministic: the same name and length give the same value in every run.
        pub fn get_or_create(name: &str, length: u32) -> Result<String, Error> {
            with(|s| {
                s.failure("get-or-create", name)?;
                s.allows(|c| matches!(c, Capability::Secrets), format!("secret {name}"))?;
                if !(1..=4096).contains(&length) {
                    return Err(Error::Invalid(format!("secret length {length}")));
                }
                let value = s.secrets.entry(name.to_string()).or_insert_with(|| {
                    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                    let mut h = fnv(name.as_bytes());
                    (0..length)
                        .map(|_| {
                            h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            CHARS[(h >> 33) as usize % CHARS.len()] as char
                        })
                        .collect()
                });
                Ok(value.clone())
            })
        }

        pub fn get(name: &str) -> Result<Option<String>, Error> {
            with(|s| {
                s.failure("get", name)?;
                s.allows(|c| matches!(c, Capability::Secrets), format!("secret {name}"))?;
                Ok(s.secrets.get(name).cloned())
            })
        }
    }

    pub mod archive {
        use super::super::*;
        use crate::archive::Part;

        fn part(name: &str, contents: &[u8]) -> Part {
            // Not a real sha256: a stand-in digest, stable for the same bytes.
            let h = fnv(contents);
            Part { name: name.to_string(), bytes: contents.len() as u64, sha256: format!("{h:016x}").repeat(4) }
        }

        pub fn save_exec(part_name: &str, container: &str, command: &[String], options: &ExecOptions) -> Result<Part, Error> {
            let handler = with(|s| {
                s.failure("save-exec", part_name)?;
                if s.parts.iter().any(|(n, _)| n == part_name) {
                    return Err(Error::Invalid(format!("part {part_name} exists")));
                }
                s.exec(container, command, options)
            })?;
            let out = run_handler(handler, command, options);
            if out.exit_code != 0 {
                return Err(Error::Engine(format!("{} exited {}: {}", command.join(" "), out.exit_code, out.stderr_text().trim())));
            }
            with(|s| s.parts.push((part_name.to_string(), out.stdout.clone())));
            Ok(part(part_name, &out.stdout))
        }

        pub fn append(part_name: &str, contents: &[u8]) -> Result<(), Error> {
            with(|s| {
                s.failure("append", part_name)?;
                match s.parts.iter_mut().find(|(n, _)| n == part_name) {
                    Some(p) => p.1.extend_from_slice(contents),
                    None => s.parts.push((part_name.to_string(), contents.to_vec())),
                }
                Ok(())
            })
        }

        pub fn parts() -> Result<Vec<Part>, Error> {
            with(|s| {
                s.failure("parts", "")?;
                Ok(s.parts.iter().map(|(n, c)| part(n, c)).collect())
            })
        }

        /// Runs the command with the part as its standard input (`options.stdin`).
        pub fn load_exec(part_name: &str, container: &str, command: &[String], options: &ExecOptions) -> Result<ExecOutput, Error> {
            let (handler, options) = with(|s| {
                s.failure("load-exec", part_name)?;
                let contents = s.parts.iter().find(|(n, _)| n == part_name).map(|(_, c)| c.clone()).ok_or_else(|| Error::NotFound(format!("part {part_name}")))?;
                let options = ExecOptions { stdin: Some(contents), ..options.clone() };
                Ok::<_, Error>((s.exec(container, command, &options)?, options))
            })?;
            Ok(run_handler(handler, command, &options))
        }

        pub fn read(part_name: &str, offset: u64, max: u32) -> Result<Vec<u8>, Error> {
            with(|s| {
                s.failure("read", part_name)?;
                let contents = s.parts.iter().find(|(n, _)| n == part_name).map(|(_, c)| c).ok_or_else(|| Error::NotFound(format!("part {part_name}")))?;
                let start = (offset as usize).min(contents.len());
                let end = start.saturating_add(max as usize).min(contents.len());
                Ok(contents[start..end].to_vec())
            })
        }
    }

    pub mod log {
        use super::super::*;

        pub fn log(level: Level, message: &str) {
            with(|s| s.log.push((level, message.to_string())));
        }

        pub fn progress(message: &str) {
            with(|s| s.progress.push(message.to_string()));
        }
    }

    pub mod state {
        use super::super::*;

        pub fn read(name: &str) -> Option<String> {
            with(|s| s.state_files.get(name).cloned())
        }

        pub fn write(name: &str, contents: &str) -> Result<(), String> {
            with(|s| {
                s.allows(|c| matches!(c, Capability::StateFiles), format!("state file {name}")).map_err(|e| e.to_string())?;
                s.state_files.insert(name.to_string(), contents.to_string());
                Ok(())
            })
        }

        pub fn remove(name: &str) {
            with(|s| s.state_files.remove(name));
        }
    }

    /// The manual clock: a sleep moves it on at once. With no mock installed, the real one.
    pub mod clock {
        use super::super::*;

        pub fn now() -> Instant {
            match CURRENT.with(|c| c.borrow().clone()) {
                Some(state) => {
                    let s = state.borrow();
                    s.clock_base.unwrap_or_else(Instant::now) + s.clock
                }
                None => Instant::now(),
            }
        }

        pub fn sleep(by: Duration) {
            match CURRENT.with(|c| c.borrow().clone()) {
                Some(state) => state.borrow_mut().clock += by,
                None => std::thread::sleep(by),
            }
        }
    }

    /// The mock's functions have the generated imports' signatures, so that a plugin
    /// builds the same against either.
    #[allow(dead_code)]
    fn same_signatures() {
        use crate::provisioner::plugin as wit;
        let _ = [wit::docker::ensure, docker::ensure];
        let _ = [wit::docker::inspect, docker::inspect, docker::inspect];
        let _ = [wit::docker::exec, docker::exec];
        let _ = [wit::docker::write_file, docker::write_file];
        let _ = [wit::docker::list_containers, docker::list_containers];
        let _ = [wit::docker::network, docker::network];
        let _ = [wit::docker::create_volume, docker::create_volume];
        let _ = [wit::docker::remove_volume, docker::remove_volume, docker::remove, docker::start];
        let _ = [wit::docker::start, wit::docker::remove];
        let _ = [wit::docker::list_volumes, docker::list_volumes];
        let _ = [wit::docker::stop, docker::stop];
        let _ = [wit::docker::logs, docker::logs];
        let _ = [wit::docker::signal, docker::signal];
        let _ = [wit::secrets::get_or_create, secrets::get_or_create];
        let _ = [wit::secrets::get, secrets::get];
        let _ = [wit::archive::save_exec, archive::save_exec, archive::save_exec];
        let _ = [wit::archive::append, archive::append];
        let _ = [wit::archive::parts, archive::parts];
        let _ = [wit::archive::load_exec, archive::load_exec];
        let _ = [wit::archive::read, archive::read];
        let _ = [wit::log::log, log::log];
        let _ = [wit::log::progress, log::progress];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    struct Cache;

    impl Plugin for Cache {
        fn describe() -> PluginInfo {
            PluginInfo::new("cache", "0.1.0", "a test plugin").image_and_mirrors("cache:*").publish(7000).volume("data").exec().secrets().state_files().net_probe()
        }
        fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
            parse_config::<serde_json::Value>(&config).map(|_| ())
        }
        fn provision(ctx: Context) -> Result<Vec<Output>, String> {
            let password = secrets::get_or_create("password", 24)?;
            let mut spec = ContainerSpec::new("server", &image(&ctx, "cache:1"));
            spec.ports = vec![Port::any(7000)];
            spec.mounts = vec![Mount::volume("data", "/data")];
            spec.env = vec![EnvVar::secret("PASSWORD", password.clone())];
            let deployment = docker::ensure(&spec)?;
            let server = deployment.container()?;
            wait::until_port_up(server, 7000, std::time::Duration::from_secs(30), |addr| probe::tcp(addr).map(drop))?;
            state::once("setup", &server.id, &deployment, || {
                let out = docker::exec("server", &["cache-cli".into(), "init".into()], &ExecOptions::none())?;
                out.success().then_some(()).ok_or_else(|| out.stderr_text())
            })?;
            info("provisioned");
            Ok(vec![Output::plain("CACHE_ADDR", server.host_addr(7000)?), Output::secret("CACHE_PASSWORD", password)])
        }
        fn ready(_ctx: Context) -> Result<Readiness, String> {
            probe::ready("server", 7000, |addr| probe::tcp(addr).map(drop))
        }
        fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
            crate::teardown(&["server"], &["data"], keep_volumes)
        }
    }

    #[test]
    fn provision_records_the_spec_and_answers_like_an_engine() {
        let mock = MockHost::for_plugin::<Cache>();
        mock.serve("server", 7000, |_| b"hello".to_vec());
        let outputs = Cache::provision(ctx("cache", serde_json::json!({}))).unwrap();
        let spec = mock.spec("server");
        assert_eq!(spec.image, "cache:1");
        let password = mock.secret("password").unwrap();
        assert_eq!(password.len(), 24);
        assert_eq!(env(&spec, "PASSWORD"), Some(password.as_str()));
        assert_eq!(output(&outputs, "CACHE_ADDR").value, mock.host_addr("server", 7000));
        assert_eq!(mock.commands_in("server"), [["cache-cli", "init"]]);
        assert_eq!(mock.volumes(), ["data"]);
        assert_eq!(mock.state_file("setup").as_deref(), Some(mock.container("server").unwrap().id.as_str()));
        assert!(mock.logs().iter().any(|(l, m)| *l == Level::Info && m == "provisioned"));
        assert_ready(&Cache::ready(ctx("cache", serde_json::json!({}))));

        // A second run: unchanged, so the one-time setup is skipped; the secret is the same.
        Cache::provision(ctx("cache", serde_json::json!({}))).unwrap();
        assert_eq!(mock.commands_in("server").len(), 1);
        assert_eq!(mock.ensured().len(), 2);
        assert_eq!(mock.secret("password").unwrap(), password);

        // Teardown keeping volumes, then removing them; a second teardown is fine.
        Cache::teardown(ctx("cache", serde_json::json!({})), true).unwrap();
        assert_eq!((mock.removed(), mock.volumes()), (vec!["server".to_string()], vec!["data".to_string()]));
        Cache::teardown(ctx("cache", serde_json::json!({})), false).unwrap();
        assert!(mock.volumes().is_empty() && mock.containers().is_empty());
    }

    #[test]
    fn secrets_are_deterministic_across_mocks() {
        MockHost::new();
        let first = secrets::get_or_create("password", 16).unwrap();
        let mock = MockHost::new();
        assert_eq!(secrets::get("password").unwrap(), None);
        assert_eq!(secrets::get_or_create("password", 16).unwrap(), first);
        assert_eq!(mock.secret("password"), Some(first));
    }

    #[test]
    fn undeclared_capabilities_are_denied() {
        let mock = MockHost::for_plugin::<Cache>();
        let mut ctx = ctx("cache", serde_json::json!({}));
        ctx.image_override = Some("mirror.example/cache:2".into());
        mock.serve("server", 7000, |_| Vec::new());
        assert!(Cache::provision(ctx.clone()).is_ok(), "a mirror of a declared image is allowed");
        ctx.image_override = Some("evil:1".into());
        let err = Cache::provision(ctx).unwrap_err();
        assert!(err.starts_with("denied: image evil:1"), "{err}");
    }

    #[test]
    fn a_crash_stops_the_wait_and_ready_says_so_without_waiting_for_real() {
        let mock = MockHost::new();
        // Nobody serves port 7000: refused, and the wait gives up on the manual clock.
        let err = Cache::provision(ctx("cache", serde_json::json!({}))).unwrap_err();
        assert!(err.starts_with("gave up after 30s"), "{err}");
        assert!(mock.elapsed() >= std::time::Duration::from_secs(30));
        assert!(not_yet(Cache::ready(ctx("cache", serde_json::json!({})))).starts_with("connect 127.0.0.1:"));
        mock.exit("server", 137);
        let err = Cache::ready(ctx("cache", serde_json::json!({}))).unwrap_err();
        assert_eq!(err, "the server exited (code 137, killed)");
    }

    #[test]
    fn failures_exec_handlers_and_archive_parts() {
        let mock = MockHost::new();
        mock.given_container(&ContainerSpec::new("server", "cache:1"));
        mock.on_exec("server", |cmd| match cmd[0].as_str() {
            "dump" => ExecOutput::ok("DATA"),
            _ => ExecOutput::failed(2, "no such command"),
        });
        let part = archive::save_exec("dump", "server", &["dump".into()], &ExecOptions::none()).unwrap();
        assert_eq!((part.name.as_str(), part.bytes), ("dump", 4));
        assert_eq!(mock.part("dump").unwrap(), b"DATA");
        let err = archive::save_exec("other", "server", &["nope".into()], &ExecOptions::none()).unwrap_err();
        assert!(matches!(err, Error::Engine(ref m) if m.contains("no such command")), "{err}");
        mock.on_exec_with("server", |_, options| ExecOutput::ok(options.stdin.clone().unwrap_or_default()));
        let out = archive::load_exec("dump", "server", &["restore".into()], &ExecOptions::none()).unwrap();
        assert_eq!(out.stdout, b"DATA");
        assert_eq!(archive::read("dump", 1, 2).unwrap(), b"AT");

        mock.fail_next("ensure", Some("server"), Error::Engine("disk full".into()));
        assert_eq!(docker::ensure(&ContainerSpec::new("server", "cache:1")).unwrap_err(), Error::Engine("disk full".into()));
        assert!(docker::ensure(&ContainerSpec::new("server", "cache:1")).is_ok(), "only the next call fails");
        assert!(matches!(docker::inspect("nothing"), Err(Error::NotFound(_))));
        docker::write_file("server", "/etc/x.conf", b"x=1", 0o600).unwrap();
        assert_eq!(mock.written_files()[0].text(), "x=1");

        let mut workers = ContainerSpec::new("worker", "cache:1");
        workers.replicas = Some(3);
        assert_eq!(docker::ensure(&workers).unwrap().containers.len(), 3);
        workers.replicas = Some(1);
        docker::ensure(&workers).unwrap();
        assert_eq!(mock.containers(), ["server", "worker-1"]);
        docker::remove("worker").unwrap();
        assert_eq!(mock.containers(), ["server"]);
    }
}
