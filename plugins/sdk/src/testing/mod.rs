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

use crate::docker::{ContainerInfo, ContainerSpec};
use crate::{Capability, Context, Error, Level, Output, Readiness};

// One file per import interface the mock stands in for; each holds its part of the
// mock's state handling, the `MockHost` methods that arrange and look at it, and the
// import functions themselves.
mod archive;
mod clock;
mod docker;
mod exec;
mod log;
mod monitoring;
mod secrets;
mod state;

pub use docker::WrittenFile;
use exec::ExecHandler;
pub use exec::ExecCall;

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
    scrape_targets: Vec<crate::monitoring::ScrapeTarget>,
    probe_targets: Vec<crate::monitoring::ProbeTarget>,
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
        monitored: false,
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

/// What `P::describe` declares for monitoring: each metrics endpoint as (container,
/// port, path), and every image pattern it may run.
pub fn declared_metrics_and_images<P: crate::Plugin>() -> (Vec<(String, u16, String)>, Vec<String>) {
    let info = crate::__private::describe::<P>();
    let metrics = info.metrics.iter().map(|m| (m.container.clone(), m.port, m.path.clone())).collect();
    let images = info
        .capabilities
        .iter()
        .filter_map(|c| if let crate::Capability::Image(p) = c { Some(p.clone()) } else { None })
        .collect();
    (metrics, images)
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

    /// Make the next call of the import `function` (its WIT name, e.g. `ensure`,
    /// `exec`, `get-or-create`, `save-exec`) fail with `error`; with `name`, only a
    /// call about that container, volume, secret or part.
    pub fn fail_next(&self, function: &str, name: Option<&str>, error: Error) -> &Self {
        self.with(|s| s.failures.push((function.to_string(), name.map(str::to_string), error)));
        self
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
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}

/// The mock's side of the SDK's import modules: the same functions, with the
/// signatures wit-bindgen generates.
#[doc(hidden)]
pub mod imports {
    pub use super::archive::imports as archive;
    pub use super::clock::imports as clock;
    pub use super::docker::imports as docker;
    pub use super::log::imports as log;
    pub use super::monitoring::imports as monitoring;
    pub use super::secrets::imports as secrets;
    pub use super::state::imports as state;

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
        let _ = [wit::monitoring::scrape_targets, monitoring::scrape_targets];
        let _ = [wit::monitoring::probe_targets, monitoring::probe_targets];
        let _ = [wit::log::log, log::log];
        let _ = [wit::log::progress, log::progress];
    }
}

#[cfg(test)]
mod tests {
    // Not `super::*`: this module's children are named after the SDK's modules
    // (`docker`, `secrets`, …), which the tests mean.
    use super::{assert_ready, ctx, env, not_yet, output, MockHost};
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
