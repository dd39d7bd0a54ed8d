//! The commands, one file per group: `env` (run, status, plan, scale, teardown),
//! `plugins` (list, inspect, grant), `registry` (install, verify, publish, keygen and
//! the lockfile around `run`), `authoring` (new, check). Each turns the command line
//! into library calls and prints the result; here is what they share.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use provisioner::config::{find_project_file, Project, FILE_NAME};
use provisioner::discovery::{search_path, Catalog};
use provisioner::runtime::cache::ComponentCache;
use provisioner::runtime::limits::HookLimits;
use provisioner::runtime::PluginRuntime;

use crate::Cli;

pub mod authoring;
pub mod backup;
pub mod env;
pub mod plugins;
pub mod registry;

/// When the process started, for the phase times `-vv` shows.
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// At `-vv`: how long after the process started a phase of a command ended.
fn phase(name: &str) {
    if let Some(started) = STARTED.get() {
        tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, "phase: {name}");
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

fn required_project(cli: &Cli) -> Result<Project> {
    project(cli, true)?.context("a project file is required")
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

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `print_json`, then success: the ending of most `--json` branches.
fn json_success(value: &impl serde::Serialize) -> Result<ExitCode> {
    print_json(value).map(|()| ExitCode::SUCCESS)
}

/// User-facing text beside a command's output: stdout, or stderr under --json.
fn say(cli: &Cli, text: &str) {
    if cli.json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}
