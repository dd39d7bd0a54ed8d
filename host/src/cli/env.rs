//! The environment commands: `run`, `status`, `plan`, `scale` and `teardown`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use provisioner::config::{Project, FILE_NAME};
use provisioner::discovery::Catalog;
use provisioner::config::{Environment, Target};
use provisioner::engine::{Docker, EngineAddress, EngineError, Unavailable};
use provisioner::realise::{Containers, HostPorts, Realiser, Swarm, SwarmSettings};
use provisioner::lifecycle::{Action, Stack};
use provisioner::outcome;
use provisioner::progress::Progress;
use provisioner::runtime::PluginRuntime;
use provisioner::scale::{self, Overrides};
use provisioner::state::{EnvLock, State};

use super::registry::{after_run, enforce_lock, sync_before_run};
use super::{catalog, required_project, runtime};
use crate::Cli;

/// What every environment command needs: the project, its plugins and the engine.
pub(super) struct Session {
    /// The project with `provisioner scale` overrides applied.
    pub(super) project: Project,
    runtime: PluginRuntime,
    catalog: Catalog,
    realiser: Arc<dyn Realiser>,
    /// Why the engine cannot be reached, if it cannot.
    engine_error: Option<String>,
    overrides: Overrides,
    /// Host ports kept by `teardown --keep-volumes`, offered again to what is created.
    host_ports: HostPorts,
}

/// The environment's engine and how to reach it (`engine` or `DOCKER_HOST`, TLS
/// settings), or why that cannot be used.
fn engine_address(project: &Project, name: &str, env: &Environment) -> Result<Option<EngineAddress>, EngineError> {
    env.engine_address(name, project.root(), &|key| std::env::var(key).ok()).map_err(|e| EngineError::Failed(e.to_string()))
}

fn swarm_settings(env: &Environment) -> SwarmSettings {
    SwarmSettings { routing: env.routing, placement: env.placement.clone(), encrypted_network: env.encrypted_network }
}

/// A swarm manager's address is not guessed.
fn no_manager() -> EngineError {
    EngineError::Failed("target = \"swarm\" needs a manager's address: set `engine` in the environment or DOCKER_HOST".into())
}

/// The environment's target (one Docker engine or a swarm), or one that says why it
/// cannot be reached: plugins are loaded and configs checked first, so an engine that
/// is down is reported last. On one engine, a container created anew is offered the
/// host ports in `host_ports`; a swarm publishes the ports the specs fix, or lets the
/// ingress mesh choose, so it has nothing to offer.
fn realiser(project: &Project, name: &str, env: &Environment, host_ports: &HostPorts) -> (Arc<dyn Realiser>, Option<String>) {
    let connected = engine_address(project, name, env).and_then(|address| match env.target {
        Target::Docker => match &address {
            Some(address) => Docker::connect_with(address),
            None => Docker::connect(),
        }
        .map(|docker| Arc::new(Containers::new(Arc::new(docker)).offering(host_ports.clone())) as Arc<dyn Realiser>),
        Target::Swarm => match &address {
            Some(address) => Swarm::connect(address, swarm_settings(env)).map(|swarm| Arc::new(swarm) as Arc<dyn Realiser>),
            None => Err(no_manager()),
        },
    });
    match connected {
        Ok(realiser) => (realiser, None),
        Err(error) => {
            let unavailable = Unavailable { reason: error.to_string() };
            (Arc::new(Containers::new(Arc::new(unavailable))), Some(error.to_string()))
        }
    }
}

impl Session {
    pub(super) fn open(cli: &Cli, env: &str) -> Result<Session> {
        let mut project = required_project(cli)?;
        project.environment(env)?;
        let state = State::load(&project.state_dir(env))?;
        let overrides = Overrides::apply(&mut project, &state);
        super::phase("project read");
        let environment = project.environment(env)?;
        // The engine's handshake is a few round trips of waiting: it runs while the
        // plugins load.
        let (runtime, catalog, (realiser, engine_error)) = std::thread::scope(|scope| {
            let connecting = scope.spawn(|| {
                let connected = realiser(&project, env, &environment, &state.host_ports);
                super::phase("engine connected");
                connected
            });
            let loaded = runtime().and_then(|runtime| catalog(cli, &runtime, Some(&project)).map(|catalog| (runtime, catalog)));
            super::phase("plugins loaded");
            let connected = connecting.join().map_err(|_| anyhow::anyhow!("connecting to the engine panicked"));
            loaded.and_then(|(runtime, catalog)| Ok((runtime, catalog, connected?)))
        })?;
        Ok(Session { project, runtime, catalog, realiser, engine_error, overrides, host_ports: state.host_ports })
    }

    /// The checks that need no engine, then the engine itself.
    pub(super) fn checked(&self, env: &str) -> Result<()> {
        self.stack(env, None).check()?;
        match &self.engine_error {
            Some(error) => anyhow::bail!("{error}"),
            None => Ok(()),
        }
    }

    /// Like `open`, but nothing that teardown does not need may stop it: a damaged
    /// state.json or a plugin folder that does not load only loses the plugins'
    /// teardown hooks; the sweep still removes everything by label.
    fn open_for_teardown(cli: &Cli, env: &str) -> Result<Session> {
        let mut project = required_project(cli)?;
        project.environment(env)?;
        let (overrides, host_ports) = match State::load(&project.state_dir(env)) {
            Ok(state) => (Overrides::apply(&mut project, &state), state.host_ports),
            Err(error) => {
                eprintln!("warning: {error:#}; tearing down without it");
                (Overrides::default(), HostPorts::new())
            }
        };
        let runtime = runtime()?;
        let catalog = catalog(cli, &runtime, Some(&project)).unwrap_or_else(|error| {
            eprintln!("warning: {error:#}; the plugins' teardown hooks are skipped, their resources are removed by label");
            provisioner::discovery::Catalog { plugins: Default::default(), broken: Vec::new() }
        });
        let (realiser, engine_error) = realiser(&project, env, &project.environment(env)?, &host_ports);
        if let Some(error) = engine_error {
            anyhow::bail!("{error}");
        }
        Ok(Session { project, runtime, catalog, realiser, engine_error: None, overrides, host_ports })
    }

    pub(super) fn stack<'a>(&'a self, env: &'a str, progress: Option<&Arc<Progress>>) -> Stack<'a> {
        Stack {
            project: &self.project,
            environment: env,
            catalog: &self.catalog,
            runtime: &self.runtime,
            realiser: self.realiser.clone(),
            progress: progress.map(|p| p.sink()),
        }
    }
}

/// `provisioner run ENV`.
pub fn run(cli: &Cli, env: &str, timings: bool) -> Result<ExitCode> {
    let mut session = Session::open(cli, env)?;
    // A fresh clone has the lockfile but not the plugins it pins: fetch them first.
    let found = std::mem::take(&mut session.catalog);
    session.catalog = sync_before_run(cli, &session.project, &session.runtime, found)?;
    super::phase("plugins synced");
    // A file that does not validate changes nothing: not the lock, not the engine.
    session.checked(env)?;
    super::phase("validated");
    enforce_lock(cli, &session.project, &session.catalog)?;
    super::phase("lock enforced");
    let state_dir = session.project.state_dir(env);
    let _lock = EnvLock::acquire(&state_dir)?;
    bring_up(cli, &session, env, timings)
}

/// `provisioner scale ENV SERVICE=N…`: record the overrides, then bring ENV in line.
pub fn scale(cli: &Cli, env: &str, assignments: &[String]) -> Result<ExitCode> {
    let mut session = Session::open(cli, env)?;
    let wanted = scale::check(&session.project, assignments, |plugin| scale::runs_replicas(&session.catalog, plugin))?;
    session.checked(env)?;
    enforce_lock(cli, &session.project, &session.catalog)?;

    let state_dir = session.project.state_dir(env);
    let _lock = EnvLock::acquire(&state_dir)?;
    for change in session.overrides.set(&mut session.project, wanted) {
        if !cli.json {
            println!("{}: {} → {} instance(s)", change.service, change.from, change.to);
        }
    }
    session.overrides.save(&state_dir)?;
    bring_up(cli, &session, env, false)
}

/// Run the stack of `session` and record the result (the caller holds the lock).
pub(super) fn bring_up(cli: &Cli, session: &Session, env: &str, timings: bool) -> Result<ExitCode> {
    let progress = Progress::new(cli.json);
    let stack = session.stack(env, Some(&progress));
    let removed = stack.remove_orphans()?;
    super::phase("orphans removed");
    let summary = stack.run()?;
    progress.finish();
    super::phase("stack run");

    // Recorded before the summary is shown, but never instead of it: a full disk must
    // not hide which services are up.
    let saved = outcome::save_run(&session.project, env, &session.catalog, &session.overrides.scale, &session.host_ports, &summary);
    super::phase("outcome saved");

    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        if !removed.is_empty() {
            println!("removed services no longer in {FILE_NAME}: {} (volumes kept)", removed.join(", "));
        }
        println!("{summary}");
        if let (Ok(dotenv), true) = (&saved, summary.succeeded()) {
            match dotenv.changed {
                true => println!("wrote {}", dotenv.path.display()),
                false => println!("{} is up to date", dotenv.path.display()),
            }
        }
    }
    // The timings report, kept for the last run; a failure to write it is only said.
    let report = session.project.state_dir(env).join(provisioner::timings::FILE_NAME);
    match provisioner::fsutil::write_private(&report, provisioner::timings::html(&session.project, &summary).as_bytes()) {
        Ok(()) if timings && !cli.json => println!("timings: {}", report.display()),
        Ok(()) => {}
        Err(error) => eprintln!("warning: the timings report was not written: {error}"),
    }
    if let Err(error) = saved {
        eprintln!(
            "error: {error:#}\n\
             The services stand as the summary shows: nothing was stopped or removed, but the outcome is not recorded \
             (`plan`, `status` and the app's .env may be out of date). Fix the cause (free disk space?) and run \
             `provisioner run {env}` again: it adopts what runs and writes the files."
        );
        return Ok(ExitCode::FAILURE);
    }
    after_run(cli, &session.project, &session.catalog, &summary);
    super::phase("done");
    Ok(if summary.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `provisioner status ENV`: fails unless every service is ready.
pub fn status(cli: &Cli, env: &str) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
    session.checked(env)?;
    let statuses = session.stack(env, None).status()?;
    let all_ready = statuses.iter().all(|s| s.ready);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        println!("{:<16} {:<14} {:<10} {:<10} {}", "service", "plugin", "state", "ready", "endpoints");
        for s in &statuses {
            let state = if s.containers.is_empty() {
                "absent".to_string()
            } else {
                let mut states: Vec<&str> = s.containers.iter().map(|c| c.state.as_str()).collect();
                states.dedup();
                states.join(",")
            };
            let endpoints: Vec<&str> = s.containers.iter().flat_map(|c| c.endpoints.iter().map(String::as_str)).collect();
            println!(
                "{:<16} {:<14} {:<10} {:<10} {}",
                s.service,
                s.plugin,
                state,
                if s.ready { "yes" } else { "no" },
                endpoints.join(" ")
            );
            // On a cluster: where each task runs.
            let mut per_node: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
            for c in &s.containers {
                if let Some(node) = &c.node {
                    let short = c.name.strip_prefix(&format!("{}-{env}-{}-", session.project.name, s.service)).unwrap_or(&c.name);
                    per_node.entry(node.as_str()).or_default().push(short);
                }
            }
            if !per_node.is_empty() {
                let tasks: Vec<String> = per_node.iter().map(|(node, names)| format!("{node}: {}", names.join(", "))).collect();
                println!("  tasks on {}", tasks.join("; "));
            }
            if let Some(reason) = &s.reason {
                println!("  {reason}");
            }
            for notice in &s.notices {
                println!("  ! {notice}");
            }
        }
    }
    if let Some(incomplete) = provisioner::lifecycle::IncompleteRestore::read(&session.project.state_dir(env)) {
        eprintln!(
            "warning: the restore of `{}` from the backup {} did not finish ({}); its data may be incomplete. \
             Restore it again with `provisioner restore {env} ARCHIVE {} --force`",
            incomplete.service, incomplete.backup, incomplete.message, incomplete.service
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(if all_ready { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `provisioner plan ENV`: what `run` would do, touching nothing.
pub fn plan(cli: &Cli, env: &str) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
    session.checked(env)?;
    let state = State::load(&session.project.state_dir(env))?;
    let items = session.stack(env, None).plan(&state)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        for item in &items {
            println!("{:<10} {:<16} {}", item.action.word(), item.service, item.detail);
            for op in &item.operations {
                println!("{:<10} {:<16}   {op}", "", "");
            }
        }
        let changes = items.iter().filter(|i| i.action != Action::Unchanged).count();
        println!("{changes} change(s)");
    }
    Ok(ExitCode::SUCCESS)
}

/// `provisioner teardown ENV [--keep-volumes]`.
pub fn teardown(cli: &Cli, env: &str, keep_volumes: bool) -> Result<ExitCode> {
    let session = Session::open_for_teardown(cli, env)?;
    let state_dir = session.project.state_dir(env);
    let _lock = EnvLock::acquire(&state_dir)?;
    let progress = Progress::new(cli.json);
    let stack = session.stack(env, Some(&progress));
    // Read before anything goes: the next run offers these ports again (and those a
    // teardown before this one kept, for containers that are gone already).
    let host_ports = match keep_volumes {
        true => session.host_ports.clone().into_iter().chain(stack.host_ports()?).collect(),
        false => HostPorts::new(),
    };
    let summary = stack.teardown(keep_volumes)?;
    progress.finish();
    let swept = stack.sweep(keep_volumes)?;
    outcome::save_teardown(&session.project, env, host_ports)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
        if swept > 0 {
            println!("also removed {swept} leftover resource(s) labelled for {}-{env}", session.project.name);
        }
        println!("{}", if keep_volumes { "volumes kept" } else { "volumes removed" });
    }
    Ok(if summary.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `provisioner logs ENV [SERVICE…]`: needs the project and the engine, no plugins.
pub fn logs(cli: &Cli, env: &str, services: &[String], follow: bool, since: Option<&str>, tail: Option<u32>) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let project = required_project(cli)?;
    let environment = project.environment(env)?;
    let since = since.map(provisioner::logs::parse_duration).transpose().map_err(|e| anyhow::anyhow!("--since {e}"))?;
    let address = engine_address(&project, env, &environment)?;
    let engine: Arc<dyn provisioner::engine::ContainerEngine> = match environment.target {
        Target::Docker => Arc::new(match &address {
            Some(address) => Docker::connect_with(address),
            None => Docker::connect(),
        }?),
        // Every node's engine: a task's log is on the node that runs it.
        Target::Swarm => Swarm::connect(address.as_ref().ok_or_else(no_manager)?, swarm_settings(&environment))?.log_engine()?,
    };
    let stdout = std::io::stdout();
    let colour = !cli.json && stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let options = provisioner::logs::Options { services: services.to_vec(), follow, since, tail, json: cli.json, colour };
    provisioner::logs::show(&project, env, engine, &options, &mut stdout.lock())?;
    Ok(ExitCode::SUCCESS)
}

/// `provisioner plugins call SERVICE HOOK`.
pub fn call(cli: &Cli, env: &str, service: &str, hook: &str, config: Option<&str>) -> Result<ExitCode> {
    use provisioner::runtime::Hook;
    let hook = match hook {
        "validate" => Hook::Validate,
        "provision" => Hook::Provision,
        "ready" => Hook::Ready,
        _ => Hook::Teardown,
    };
    let mut session = Session::open(cli, env)?;
    if let Some(json) = config {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| anyhow::anyhow!("--config is not JSON: {e}"))?;
        let Some(entry) = session.project.services.get_mut(service) else {
            anyhow::bail!("{}: no service `{service}`", session.project.file.display());
        };
        entry.config = value;
    }
    session.checked(env)?;
    let _lock = EnvLock::acquire(&session.project.state_dir(env))?;
    let report = session.stack(env, None).call(service, hook)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.result {
            Ok(value) => println!("{hook} of `{service}` returned ({} ms):\n  {}", report.elapsed_ms, value.replace('\n', "\n  ")),
            Err(error) => println!("{hook} of `{service}` failed ({} ms): {error}", report.elapsed_ms),
        }
        if !report.trace.is_empty() {
            println!("host calls:");
            for call in &report.trace {
                println!("  {call}");
            }
        }
        for denial in &report.denials {
            println!("denied: {}", denial.message);
        }
        if !report.stderr_tail.trim().is_empty() {
            println!("plugin stderr (last lines):\n  {}", report.stderr_tail.trim_end().replace('\n', "\n  "));
        }
    }
    Ok(if report.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

