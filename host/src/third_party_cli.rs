//! The commands for third-party plugins: `plugins install|verify|new|check`,
//! `registry publish|keygen`, and what `run` adds for them (the lockfile before, the
//! grant advice after). Kept out of main.rs so each command is one dispatch line there.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use provisioner::config::Project;
use provisioner::discovery::Catalog;
use provisioner::lifecycle::Summary;
use provisioner::lock::{self, Outcome};
use provisioner::registry::{self, SignatureStatus};
use provisioner::scaffold::{self, SdkSource};
use provisioner::{check, signing, trust};

use super::{catalog, project, runtime, Cli};

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Install NAME or NAME@VERSION from a registry into the project's plugins/ folder,
    /// after checking its sha256 and its signature by a trusted key.
    Install {
        spec: String,
        /// A registry folder or http(s) base URL (default: [registry] url).
        #[arg(long, value_name = "URL")]
        registry: Option<String>,
    },
    /// Check the project's plugins against provisioner.lock and the registry; exits
    /// non-zero if any is altered, unsigned or not verified.
    Verify {
        #[arg(long, value_name = "URL")]
        registry: Option<String>,
    },
    /// Grant NAME everything it declares: appends [plugins.NAME.grants] to
    /// provisioner.toml, each line explained (refuses if the table exists).
    Grant {
        name: String,
        /// Print what would be added, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Make a new plugin crate that builds for wasm32-wasip2 and passes `plugins check`.
    New {
        name: String,
        /// Where to put it (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The SDK as a path dependency (default: the checkout this binary was built from).
        #[arg(long, value_name = "PATH", conflicts_with = "sdk_git")]
        sdk: Option<PathBuf>,
        /// The SDK as a git dependency: the provisioner repository's URL.
        #[arg(long, value_name = "URL")]
        sdk_git: Option<String>,
        /// With --sdk-git: the tag to pin.
        #[arg(long, value_name = "TAG", requires = "sdk_git")]
        sdk_tag: Option<String>,
    },
    /// Run the conformance suite on a plugin file; exits non-zero if any check fails.
    Check {
        file: PathBuf,
        /// The service config to test with, as JSON (default `{}`).
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
        /// Run this image instead of the plugin's default (an environment image override).
        #[arg(long, value_name = "IMAGE")]
        image: Option<String>,
        /// How long `ready` may take.
        #[arg(long, value_name = "SECS", default_value_t = 120)]
        readiness_timeout: u64,
    },
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Add a plugin file to a registry folder (created if missing), signed with KEY.
    Publish {
        registry_dir: PathBuf,
        file: PathBuf,
        /// Private key file made by `registry keygen`.
        #[arg(long, value_name = "KEY", required_unless_present = "unsigned")]
        key: Option<PathBuf>,
        /// Publish without a signature (installs refuse it unless require_signatures = false).
        #[arg(long)]
        unsigned: bool,
    },
    /// Make a signing key pair: the private key goes to KEYFILE (mode 0600), the public
    /// key is printed for [registry] trusted_keys.
    Keygen { keyfile: PathBuf },
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn required_project(cli: &Cli) -> Result<Project> {
    project(cli, true)?.context("a project file is required")
}

pub fn plugins(cli: &Cli, command: &PluginsCommand) -> Result<ExitCode> {
    match command {
        PluginsCommand::Install { spec, registry } => install(cli, spec, registry.as_deref()),
        PluginsCommand::Verify { registry } => verify(cli, registry.as_deref()),
        PluginsCommand::Grant { name, dry_run } => grant(cli, name, *dry_run),
        PluginsCommand::New { name, dir, sdk, sdk_git, sdk_tag } => {
            let sdk = match (sdk, sdk_git) {
                (Some(path), _) => SdkSource::Path(path.canonicalize().with_context(|| format!("--sdk {}", path.display()))?),
                (None, Some(url)) => SdkSource::Git { url: url.clone(), tag: sdk_tag.clone() },
                (None, None) => scaffold::default_sdk().ok_or(scaffold::ScaffoldError::NoSdk)?,
            };
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from(name));
            let written = scaffold::create(&dir, name, &sdk)?;
            if cli.json {
                return print_json(&written).map(|()| ExitCode::SUCCESS);
            }
            for path in &written {
                println!("created {}", path.display());
            }
            let wasm = format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
            println!("\nnext:\n  cd {}\n  cargo build --release\n  provisioner plugins check {wasm}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Check { file, config, image, readiness_timeout } => {
            let config = match config {
                Some(text) => serde_json::from_str(text).with_context(|| format!("--config {text}: not JSON"))?,
                None => serde_json::json!({}),
            };
            let options = check::Options { config, image: image.clone(), readiness_timeout_secs: *readiness_timeout };
            let json = cli.json;
            let results = check::run(&runtime()?, file, &options, &mut |r| {
                if !json {
                    let detail = if r.detail.is_empty() { String::new() } else { format!(" ({})", r.detail) };
                    println!("{}  {}{detail}", if r.passed { "pass" } else { "FAIL" }, r.check);
                }
            });
            let failed = results.iter().filter(|r| !r.passed).count();
            if json {
                print_json(&results)?;
            } else {
                println!("\n{} of {} checks passed", results.len() - failed, results.len());
            }
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn grant(cli: &Cli, name: &str, dry_run: bool) -> Result<ExitCode> {
    let project = required_project(cli)?;
    let runtime = runtime()?;
    let catalog = catalog(cli, &runtime, Some(&project))?;
    let found = catalog.plugins.get(name).with_context(|| format!("no plugin called `{name}` (see `provisioner plugins list`)"))?;
    let declared = &found.plugin.info.capabilities;
    if dry_run {
        print!("{}", trust::grant_block(name, declared));
        return Ok(ExitCode::SUCCESS);
    }
    let block = trust::grant_in_file(&project, name, declared)?;
    println!("added to {}:{block}", project.file.display());
    println!("The next `provisioner run` records these grants in {}.", lock::FILE_NAME);
    Ok(ExitCode::SUCCESS)
}

fn install(cli: &Cli, spec: &str, flag: Option<&str>) -> Result<ExitCode> {
    let project = required_project(cli)?;
    // Installing beside a plugin of the same name elsewhere would make every later
    // command fail on the duplicate; say so now instead.
    let (name, _) = registry::parse_spec(spec)?;
    let target = project.root().join("plugins").join(format!("{name}.wasm"));
    let runtime = runtime()?;
    if let Some(existing) = catalog(cli, &runtime, Some(&project))?.plugins.get(&name).filter(|f| f.plugin.path != target) {
        bail!(
            "a plugin called `{name}` is already found at {} ({}); remove it first, or install under another project",
            existing.plugin.path.display(),
            serde_json::to_value(existing.source)?.as_str().unwrap_or("elsewhere")
        );
    }
    let location = registry::location(flag, &project.registry, project.root())?;
    let installed = registry::install(&location, &project.registry, &runtime, spec, &project.root().join("plugins"))?;
    if cli.json {
        return print_json(&installed).map(|()| ExitCode::SUCCESS);
    }
    let signature = match &installed.signature {
        SignatureStatus::Trusted(key) => format!("signed by {key}"),
        SignatureStatus::NotRequired => "signature not checked (require_signatures = false)".into(),
    };
    let what = if installed.changed { "installed" } else { "already installed" };
    println!("{what} {} {} into {} (sha256 {}, {signature})", installed.name, installed.version, installed.path.display(), installed.sha256);
    if project.grants(&installed.name).is_none() {
        let plugin = runtime.load(&installed.path)?;
        println!(
            "\nNothing is granted to it yet. What it asks for (`provisioner plugins inspect {}` explains each line; \
             `provisioner plugins grant {}` adds it for you); to grant it, add to {}:\n\n{}",
            installed.name,
            installed.name,
            project.file.display(),
            trust::grants_toml(&installed.name, &plugin.info.capabilities)
        );
    }
    println!("\nThe next `provisioner run` records it in {}.", lock::FILE_NAME);
    Ok(ExitCode::SUCCESS)
}

fn verify(cli: &Cli, flag: Option<&str>) -> Result<ExitCode> {
    let project = required_project(cli)?;
    let location = match registry::location(flag, &project.registry, project.root()) {
        Ok(location) => Some(location),
        Err(registry::RegistryError::NoLocation) => None,
        Err(e) => return Err(e.into()),
    };
    let runtime = runtime()?;
    let catalog = catalog(cli, &runtime, Some(&project))?;
    let rows = trust::verify(&project, &catalog, location.as_ref(), &project.registry)?;
    let ok = rows.iter().all(|r| r.ok);
    if cli.json {
        print_json(&rows)?;
    } else {
        if rows.is_empty() {
            println!("nothing to verify: no plugins in {} and no {}", project.root().join("plugins").display(), lock::FILE_NAME);
        }
        for row in &rows {
            println!("{} {} {} — {}", if row.ok { "ok  " } else { "FAIL" }, row.plugin, row.version, row.path.display());
            println!("  lock:     {}", row.lock);
            if !row.registry.is_empty() {
                println!("  registry: {}", row.registry);
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn registry(cli: &Cli, command: &RegistryCommand) -> Result<ExitCode> {
    match command {
        RegistryCommand::Keygen { keyfile } => {
            let public = signing::generate(keyfile)?;
            let public = signing::public_key_text(&public);
            if cli.json {
                print_json(&serde_json::json!({ "public_key": public, "private_key_file": keyfile }))?;
            } else {
                println!("{public}");
                eprintln!(
                    "private key written to {} (mode 0600; keep it out of version control). Users trust this publisher with:\n  [registry]\n  trusted_keys = [\"{public}\"]",
                    keyfile.display()
                );
            }
        }
        RegistryCommand::Publish { registry_dir, file, key, unsigned } => {
            if key.is_some() && *unsigned {
                bail!("--key and --unsigned contradict each other");
            }
            let published = registry::publish(registry_dir, file, key.as_deref(), &runtime()?)?;
            if cli.json {
                print_json(&published)?;
            } else {
                let signed = published.signed_by.as_deref().map(|k| format!("signed by {k}")).unwrap_or_else(|| "UNSIGNED".into());
                println!("published {} {} as {}/{} (sha256 {}, {signed})", published.name, published.version, registry_dir.display(), published.file, published.sha256);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Before a run: hold the plugins and grants to provisioner.lock, and say what
/// happened to the file (on stderr with --json, so stdout stays JSON).
pub fn enforce_lock(cli: &Cli, project: &Project, catalog: &Catalog) -> Result<()> {
    for service in project.services.values() {
        let (_, source) = catalog.grants(&service.plugin, Some(project));
        if trust::trust(source) == trust::Trust::Unverified {
            tracing::warn!(plugin = %service.plugin, service = %service.name, "plugin is unverified: nothing is granted to it");
        }
    }
    let path = lock::path(project);
    let note = match lock::enforce(project, catalog, lock::locked_requested(cli.locked, std::env::var("CI").ok().as_deref()))? {
        Outcome::Unchanged => None,
        Outcome::Written { created: true, .. } => Some(format!("wrote {} (review and commit it)", path.display())),
        Outcome::Written { created: false, changes } => Some(format!(
            "updated {}:\n{}",
            path.display(),
            changes.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n")
        )),
        Outcome::KeptLocked { changes } => Some(format!(
            "--locked: left {} as it is; not refused:\n{}",
            path.display(),
            changes.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n")
        )),
    };
    if let Some(note) = note {
        say(cli, &note);
    }
    Ok(())
}

/// User-facing text beside a command's output: stdout, or stderr under --json.
fn say(cli: &Cli, text: &str) {
    if cli.json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// After a run: for each plugin that was denied something it declared, the exact
/// grants table to add.
pub fn after_run(cli: &Cli, project: &Project, catalog: &Catalog, summary: &Summary) {
    let advice = trust::grant_advice(catalog, project, summary.denials().map(|d| d.plugin.as_str()));
    if !advice.is_empty() {
        say(cli, &advice);
    }
}
