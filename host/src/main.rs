//! The `provisioner` command: parses the command line and hands each command to its
//! module in `cli/` (`env` for run/status/plan/scale/teardown/logs, `plugins`, `registry`,
//! `authoring`). What the commands do to the project lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(name = "provisioner", version, about = "Brings up an application's backing infrastructure on Docker through sandboxed WebAssembly plugins")]
pub struct Cli {
    /// Extra folder to look for plugins in (repeatable); searched first.
    #[arg(long = "plugins-dir", global = true, value_name = "DIR")]
    pub plugins_dirs: Vec<PathBuf>,
    /// The project file (default: provisioner.toml here or in a parent folder).
    #[arg(long, global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Refuse plugins or grants that differ from provisioner.lock (implied by CI=true).
    #[arg(long, global = true)]
    pub locked: bool,
    /// More diagnostics on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring every service of ENV up, ready, and write `.env`.
    Run {
        /// The environment, e.g. `local`.
        env: String,
        /// Say where the run's timings report is (every run writes it to
        /// .provisioner/ENV/timings.html).
        #[arg(long)]
        timings: bool,
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
    /// The logs of ENV's containers (every replica), interleaved by time, each line
    /// under its service's name; secrets masked.
    Logs {
        env: String,
        /// Only these services (default: all).
        services: Vec<String>,
        /// Keep following new lines, and new instances after a `scale`.
        #[arg(short, long)]
        follow: bool,
        /// Only lines of the last DURATION, e.g. 30s, 10m, 2h, 1d.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only the last N lines of each container.
        #[arg(long, value_name = "N")]
        tail: Option<u32>,
    },
    /// Back up the data of ENV's services (all, or those named) into one archive,
    /// each with its plugin's own consistent method, while the app keeps running.
    Backup {
        env: String,
        /// Only these services (default: every one that holds data).
        services: Vec<String>,
        /// The archive to write (default: .provisioner/ENV/backups/ENV-DATE-TIME.tar.zst).
        #[arg(short, long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// Then keep only the newest N archives in .provisioner/ENV/backups/.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        /// Encrypt the archive to this age recipient (`age1…`, from `age-keygen`);
        /// repeatable. Only the matching secret keys can restore it.
        #[arg(short = 'r', long = "recipient", value_name = "AGE1…")]
        recipients: Vec<String>,
        /// Encrypt to every recipient listed in FILE (one `age1…` per line), as `age -R`.
        #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
        recipients_files: Vec<std::path::PathBuf>,
    },
    /// The archives in .provisioner/ENV/backups/, oldest first: size, age and each
    /// service's plugin and data size (encrypted ones with --identity).
    Backups {
        env: String,
        /// age identity file to read encrypted archives' contents with; repeatable.
        #[arg(short = 'i', long = "identity", value_name = "FILE")]
        identities: Vec<std::path::PathBuf>,
    },
    /// Restore an archive written by `backup` into ENV, which `run` has brought up.
    /// Every part is checked against the manifest first; the environment's own
    /// credentials stay as they are.
    Restore {
        env: String,
        /// The archive, e.g. .provisioner/local/backups/local-20261129-024000.tar.zst.
        /// (Not named `file`: that is the global `--file`, the project file.)
        #[arg(value_name = "ARCHIVE")]
        archive: std::path::PathBuf,
        /// Only these services (default: every service in the archive).
        services: Vec<String>,
        /// Replace data the services hold now (otherwise refused, changing nothing).
        #[arg(long)]
        force: bool,
        /// age identity file (`AGE-SECRET-KEY-1…`) for an encrypted archive; repeatable.
        #[arg(short = 'i', long = "identity", value_name = "FILE")]
        identities: Vec<std::path::PathBuf>,
    },
    /// Inspect, install, verify, scaffold and check plugins.
    Plugins {
        #[command(subcommand)]
        command: cli::plugins::PluginsCommand,
    },
    /// Maintain a plugin registry: signing keys and publishing.
    Registry {
        #[command(subcommand)]
        command: cli::registry::RegistryCommand,
    },
}

fn main() -> ExitCode {
    let _ = cli::STARTED.set(std::time::Instant::now());
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info,provisioner=debug",
        // The engine client's and HTTP stack's debug output holds whole API bodies,
        // containers' environments (passwords) among them: never at any -v.
        _ => "debug,provisioner=trace,cranelift=info,wasmtime=info,bollard=info,hyper=info,hyper_util=info,h2=info,reqwest=info",
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
        Command::Plugins { command } => cli::plugins::plugins(&cli, command),
        Command::Run { env, timings } => cli::env::run(&cli, env, *timings),
        Command::Status { env } => cli::env::status(&cli, env),
        Command::Plan { env } => cli::env::plan(&cli, env),
        Command::Teardown { env, keep_volumes } => cli::env::teardown(&cli, env, *keep_volumes),
        Command::Scale { env, services } => cli::env::scale(&cli, env, services),
        Command::Backup { env, services, output, keep, recipients, recipients_files } => {
            let recipients = provisioner::backup::Recipients::parse(recipients, recipients_files)?;
            cli::backup::backup(&cli, env, services, output.as_deref(), *keep, &recipients)
        }
        Command::Backups { env, identities } => cli::backup::list(&cli, env, &provisioner::backup::Identities::load(identities)?),
        Command::Restore { env, archive, services, force, identities } => {
            cli::backup::restore(&cli, env, archive, services, *force, &provisioner::backup::Identities::load(identities)?)
        }
        Command::Registry { command } => cli::registry::registry(&cli, command),
        Command::Logs { env, services, follow, since, tail } => cli::env::logs(&cli, env, services, *follow, since.as_deref(), *tail),
    }
}
