//! The `provisioner` command.

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
    /// More diagnostics on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect the plugins on the search path.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Every plugin found: name, version, WIT version, sha256, path, capabilities and
    /// whether each is granted; and every file that failed to load, with the reason.
    List,
    /// One plugin in full.
    Inspect { name: String },
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
        GrantSource::None => format!("nothing granted; add [plugins.{name}.grants] to {FILE_NAME}"),
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
                    println!("{} {} (WIT {}) — {}", v.name, v.version, v.wit_version, v.summary);
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
    }
    Ok(ExitCode::SUCCESS)
}
