//! The `provisioner` command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;

use provisioner::capabilities::{Capability, GrantStatus};
use provisioner::config::{find_project_file, Project, FILE_NAME};
use provisioner::discovery::{search_path, Catalog, Found, GrantSource};
use provisioner::runtime::cache::ComponentCache;
use provisioner::runtime::limits::HookLimits;
use provisioner::runtime::PluginRuntime;
use provisioner::engine::{ContainerEngine, Docker};
use provisioner::lifecycle::{Action, Stack, Status};
use provisioner::progress::Progress;
use provisioner::state::{EnvLock, Scaled, ServiceState, State};

mod third_party_cli;

#[derive(Parser)]
#[command(name = "provisioner", version, about = "Brings up an application's backing infrastructure on Docker through sandboxed WebAssembly plugins")]
struct Cli {
    /// Extra folder to look for plugins in (repeatable); searched first.
    #[arg(long = "plugins-dir", global = true, value_name = "DIR")]
    plugins_dirs: Vec<PathBuf>,
    /// The project file (default: provisioner.toml here or in a parent folder).
    #[arg(long, global = true, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Refuse plugins or grants that differ from provisioner.lock (implied by CI=true).
    #[arg(long, global = true)]
    locked: bool,
    /// More diagnostics on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring every service of ENV up, ready, and write `.env`.
    Run {
        /// The environment, e.g. `local`.
        env: String,
    },
    /// Each service's containers, endpoints and readiness; exits non-zero if any
    /// service is not ready.
    Status { env: String },
    /// What `run` would create, change or remove, touching nothing.
    Plan { env: String },
    /// Run N instances of a service (e.g. `backend=3`) and bring ENV in line: new
    /// instances join the load balancer once up, surplus ones drain and stop. Lasts
    /// until provisioner.toml's `replicas` for the service changes.
    Scale {
        env: String,
        /// One or more SERVICE=N.
        #[arg(required = true, value_name = "SERVICE=N")]
        services: Vec<String>,
    },
    /// Remove every service of ENV (dependents first) and everything labelled for it.
    Teardown {
        env: String,
        /// Keep the volumes, and with them the data, for the next `run`.
        #[arg(long)]
        keep_volumes: bool,
    },
    /// Inspect, install, verify, scaffold and check plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Maintain a plugin registry: signing keys and publishing.
    Registry {
        #[command(subcommand)]
        command: third_party_cli::RegistryCommand,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Every plugin found: name, version, WIT version, sha256, path, capabilities and
    /// whether each is granted; and every file that failed to load, with the reason.
    List,
    /// One plugin in full.
    Inspect { name: String },
    #[command(flatten)]
    ThirdParty(third_party_cli::PluginsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info,provisioner=debug",
        _ => "debug,provisioner=trace,cranelift=info,wasmtime=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Plugins { command } => plugins(&cli, command),
        Command::Run { env } => run_env(&cli, env),
        Command::Status { env } => status(&cli, env),
        Command::Plan { env } => plan(&cli, env),
        Command::Teardown { env, keep_volumes } => teardown(&cli, env, *keep_volumes),
        Command::Scale { env, services } => scale(&cli, env, services),
        Command::Registry { command } => third_party_cli::registry(&cli, command),
    }
}

/// provisioner.toml if there is one (`--file`, or here or above).
fn project(cli: &Cli, required: bool) -> Result<Option<Project>> {
    let file = match &cli.file {
        Some(file) => Some(file.clone()),
        None => find_project_file(&std::env::current_dir()?),
    };
    match file {
        Some(file) => Ok(Some(Project::load(&file)?)),
        None if required => bail!("no {FILE_NAME} here or in any parent folder; create one (see README.md) or pass --file"),
        None => Ok(None),
    }
}

fn runtime() -> Result<PluginRuntime> {
    PluginRuntime::new(ComponentCache::new(ComponentCache::default_dir()), HookLimits::default())
}

fn catalog(cli: &Cli, runtime: &PluginRuntime, project: Option<&Project>) -> Result<Catalog> {
    let dirs = search_path(&cli.plugins_dirs, project.map(|p| p.root()));
    for dir in &cli.plugins_dirs {
        if !dir.is_dir() {
            bail!("--plugins-dir {}: no such folder", dir.display());
        }
    }
    Ok(Catalog::discover(runtime, &dirs)?)
}

#[derive(Serialize)]
struct CapabilityView {
    capability: Capability,
    meaning: String,
    #[serde(flatten)]
    status: GrantStatus,
}

#[derive(Serialize)]
struct PluginView<'a> {
    name: &'a str,
    version: &'a str,
    wit_version: &'a str,
    summary: &'a str,
    sha256: &'a str,
    path: &'a Path,
    source: provisioner::discovery::Source,
    grants_from: GrantSource,
    trust: provisioner::trust::Trust,
    capabilities: Vec<CapabilityView>,
    outputs: &'a [String],
    defaults: &'a [(String, String)],
    config_schema: &'a str,
}

fn view<'a>(catalog: &Catalog, project: Option<&Project>, found: &'a Found) -> PluginView<'a> {
    let info = &found.plugin.info;
    let (grants, grants_from) = catalog.grants(&info.name, project);
    PluginView {
        name: &info.name,
        version: &info.version,
        wit_version: &info.wit_version,
        summary: &info.summary,
        sha256: &found.plugin.sha256,
        path: &found.plugin.path,
        source: found.source,
        grants_from,
        trust: provisioner::trust::trust(grants_from),
        capabilities: info
            .capabilities
            .iter()
            .map(|c| CapabilityView { capability: c.clone(), meaning: c.meaning(), status: grants.status(c) })
            .collect(),
        outputs: &info.outputs,
        defaults: &info.defaults,
        config_schema: &info.config_schema,
    }
}

fn print_capabilities(name: &str, view: &PluginView) {
    let from = match view.grants_from {
        GrantSource::ProjectFile => format!("granted by [plugins.{name}.grants]"),
        GrantSource::FirstPartyDefault => "granted by the first-party default policy".into(),
        GrantSource::None => format!("UNVERIFIED: nothing granted; add [plugins.{name}.grants] to {FILE_NAME}"),
    };
    println!("  capabilities ({from}):");
    for c in &view.capabilities {
        let (mark, note) = match &c.status {
            GrantStatus::Granted => ("granted", String::new()),
            GrantStatus::Partly(by) => ("partly ", format!(" (granted only: {})", by.join(", "))),
            GrantStatus::NotGranted => ("DENIED ", format!("  → to grant: {}", c.capability.grant_line())),
        };
        println!("    {mark}  {:<24} {}{note}", c.capability.to_string(), c.meaning);
    }
}

fn plugins(cli: &Cli, command: &PluginsCommand) -> Result<ExitCode> {
    if let PluginsCommand::ThirdParty(command) = command {
        return third_party_cli::plugins(cli, command);
    }
    let project = project(cli, false)?;
    let runtime = runtime()?;
    let catalog = catalog(cli, &runtime, project.as_ref())?;
    match command {
        PluginsCommand::List => {
            let views: Vec<PluginView> = catalog.plugins.values().map(|f| view(&catalog, project.as_ref(), f)).collect();
            if cli.json {
                #[derive(Serialize)]
                struct Listing<'a> {
                    plugins: &'a [PluginView<'a>],
                    broken: &'a [provisioner::discovery::Broken],
                }
                println!("{}", serde_json::to_string_pretty(&Listing { plugins: &views, broken: &catalog.broken })?);
            } else {
                if views.is_empty() && catalog.broken.is_empty() {
                    println!("no plugins found (searched --plugins-dir, $PROVISIONER_PLUGIN_PATH, ./plugins and the host's own folder)");
                }
                for v in &views {
                    let unverified = if v.trust == provisioner::trust::Trust::Unverified { "  [unverified]" } else { "" };
                    println!("{} {} (WIT {}) — {}{unverified}", v.name, v.version, v.wit_version, v.summary);
                    println!("  sha256 {}", v.sha256);
                    println!("  from   {} ({})", v.path.display(), serde_json::to_value(v.source)?.as_str().unwrap_or(""));
                    print_capabilities(v.name, v);
                }
                for b in &catalog.broken {
                    println!("BROKEN {}\n  {}", b.path.display(), b.reason);
                }
            }
        }
        PluginsCommand::Inspect { name } => {
            let found = catalog.plugins.get(name).with_context(|| {
                format!(
                    "no plugin called `{name}` (found: {})",
                    catalog.plugins.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            let v = view(&catalog, project.as_ref(), found);
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{} {} — {}", v.name, v.version, v.summary);
                println!("  WIT     provisioner:plugin@{}", v.wit_version);
                println!("  sha256  {}", v.sha256);
                println!("  path    {}", v.path.display());
                println!("  outputs {}", v.outputs.join(", "));
                for (key, value) in v.defaults {
                    println!("  default {key} = {value}");
                }
                print_capabilities(v.name, &v);
                println!("  config schema: {}", v.config_schema);
            }
        }
        // Handled before discovery: these commands find their plugins themselves.
        PluginsCommand::ThirdParty(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// What every environment command needs: the project, its plugins and the engine.
struct Session {
    /// The project with `provisioner scale` overrides applied.
    project: Project,
    runtime: PluginRuntime,
    catalog: Catalog,
    engine: std::sync::Arc<dyn ContainerEngine>,
    /// Each service's `replicas` as provisioner.toml says it.
    configured: BTreeMap<String, u32>,
    /// The scale overrides in force.
    scale: BTreeMap<String, Scaled>,
}

impl Session {
    fn open(cli: &Cli, env: &str) -> Result<Session> {
        let mut project = project(cli, true)?.context("a project file is required")?;
        project.environment(env)?;
        let configured: BTreeMap<String, u32> = project.services.iter().map(|(n, s)| (n.clone(), s.replicas)).collect();
        let scale = State::load(&project.state_dir(env))?.live_scale(&configured);
        for (service, scaled) in &scale {
            if let Some(s) = project.services.get_mut(service) {
                s.replicas = scaled.replicas;
            }
        }
        let runtime = runtime()?;
        let catalog = catalog(cli, &runtime, Some(&project))?;
        let engine = Docker::connect()?;
        Ok(Session { project, runtime, catalog, engine: std::sync::Arc::new(engine), configured, scale })
    }

    fn stack<'a>(&'a self, env: &'a str, progress: Option<&std::sync::Arc<Progress>>) -> Stack<'a> {
        Stack {
            project: &self.project,
            environment: env,
            catalog: &self.catalog,
            runtime: &self.runtime,
            engine: self.engine.clone(),
            progress: progress.map(|p| p.sink()),
        }
    }
}

fn run_env(cli: &Cli, env: &str) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
    third_party_cli::enforce_lock(cli, &session.project, &session.catalog)?;
    let state_dir = session.project.state_dir(env);
    let _lock = EnvLock::acquire(&state_dir)?;
    bring_up(cli, &session, env)
}

/// `provisioner scale ENV SERVICE=N…`: record the overrides, then bring ENV in line.
fn scale(cli: &Cli, env: &str, assignments: &[String]) -> Result<ExitCode> {
    let mut session = Session::open(cli, env)?;
    let file = session.project.file.display().to_string();
    let mut wanted = BTreeMap::new();
    for assignment in assignments {
        let (service, count) =
            assignment.split_once('=').with_context(|| format!("`{assignment}`: write SERVICE=N, e.g. backend=3"))?;
        let replicas: u32 = count
            .parse()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .with_context(|| format!("`{assignment}`: N must be a whole number from 1 to 64"))?;
        let Some(svc) = session.project.services.get(service) else {
            let known: Vec<&str> = session.project.services.keys().map(String::as_str).collect();
            bail!("{file}: no service `{service}` (services: {})", known.join(", "));
        };
        let scalable = session.catalog.plugins.get(&svc.plugin).is_some_and(|f| f.plugin.info.defaults.iter().any(|(k, _)| k == "replicas"));
        if !scalable {
            bail!(
                "service `{service}` runs plugin `{}`, which runs a single instance; scale applies to services whose plugin runs replicas (e.g. `container`)",
                svc.plugin
            );
        }
        wanted.insert(service.to_string(), replicas);
    }
    third_party_cli::enforce_lock(cli, &session.project, &session.catalog)?;

    let state_dir = session.project.state_dir(env);
    let _lock = EnvLock::acquire(&state_dir)?;
    for (service, replicas) in wanted {
        let config_replicas = session.configured.get(&service).copied().unwrap_or(1);
        let before = session.project.services.get(&service).map_or(config_replicas, |s| s.replicas);
        tracing::info!(service = %service, from = before, to = replicas, "scaling");
        if !cli.json {
            println!("{service}: {before} → {replicas} instance(s)");
        }
        if let Some(s) = session.project.services.get_mut(&service) {
            s.replicas = replicas;
        }
        session.scale.insert(service, Scaled { replicas, config_replicas });
    }
    // Recorded before the run, so an interrupted scale is finished by the next `run`.
    let mut state = State::load(&state_dir)?;
    state.scale = session.scale.clone();
    state.save(&state_dir)?;
    bring_up(cli, &session, env)
}

/// Run the stack of `session` and record the result (the caller holds the lock).
fn bring_up(cli: &Cli, session: &Session, env: &str) -> Result<ExitCode> {
    let state_dir = session.project.state_dir(env);
    let progress = Progress::new(cli.json);
    let stack = session.stack(env, Some(&progress));
    let removed = stack.remove_orphans()?;
    let summary = stack.run()?;
    progress.finish();

    let mut state = State {
        project: session.project.name.clone(),
        environment: env.to_string(),
        scale: session.scale.clone(),
        ..State::default()
    };
    let mut outputs = std::collections::BTreeMap::new();
    for report in &summary.services {
        let ready = matches!(report.status, Status::Ready);
        if ready {
            outputs.insert(report.service.clone(), report.outputs.clone());
        }
        let plugin_sha256 = session.catalog.plugins.get(&report.plugin).map(|f| f.plugin.sha256.clone()).unwrap_or_default();
        let entry = ServiceState {
            plugin: report.plugin.clone(),
            plugin_sha256,
            // A failed service keeps its last good fingerprint, so `plan` still
            // shows it as needing work.
            config_hash: if ready { report.config_hash.clone() } else { String::new() },
            outputs: report.outputs.iter().map(|o| o.name.clone()).collect(),
            ready,
            provision_ms: report.provision_ms,
            ready_ms: report.ready_ms,
            workloads: if ready { report.workloads.clone() } else { Vec::new() },
        };
        state.services.insert(report.service.clone(), entry);
    }
    state.save(&state_dir)?;
    let root = session.project.root();
    provisioner::state::write_private(&root.join(".env"), provisioner::state::dotenv(&outputs).as_bytes())?;
    provisioner::state::ignore_in_git(root)?;

    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        if !removed.is_empty() {
            println!("removed services no longer in {FILE_NAME}: {} (volumes kept)", removed.join(", "));
        }
        println!("{summary}");
        if summary.succeeded() {
            println!("wrote {}", root.join(".env").display());
        }
    }
    third_party_cli::after_run(cli, &session.project, &session.catalog, &summary);
    Ok(if summary.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn status(cli: &Cli, env: &str) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
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
            if let Some(reason) = &s.reason {
                println!("  {reason}");
            }
        }
    }
    Ok(if all_ready { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn plan(cli: &Cli, env: &str) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
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

fn teardown(cli: &Cli, env: &str, keep_volumes: bool) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
    let state_dir = session.project.state_dir(env);
    let _lock = EnvLock::acquire(&state_dir)?;
    let progress = Progress::new(cli.json);
    let stack = session.stack(env, Some(&progress));
    let summary = stack.teardown(keep_volumes)?;
    progress.finish();
    let swept = stack.sweep(keep_volumes)?;
    State { project: session.project.name.clone(), environment: env.to_string(), ..State::default() }.save(&state_dir)?;
    let dotenv = session.project.root().join(".env");
    if std::fs::read_to_string(&dotenv).is_ok_and(|t| t.starts_with(provisioner::state::DOTENV_HEADER)) {
        std::fs::remove_file(&dotenv).with_context(|| format!("removing {}", dotenv.display()))?;
    }
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
