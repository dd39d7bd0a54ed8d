//! The commands for third-party plugins: `plugins install|verify`,
//! `registry publish|keygen`, and what `run` adds for them (the lockfile before, the
//! grant advice after).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;

use provisioner::config::Project;
use provisioner::discovery::Catalog;
use provisioner::distribution::lock::{self, Outcome};
use provisioner::distribution::registry::{self, SignatureStatus};
use provisioner::distribution::{signing, trust};
use provisioner::lifecycle::Summary;

use super::{catalog, json_success, print_json, required_project, runtime, say};
use crate::Cli;

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
    /// Print the public key of a private key file made by `registry keygen`, for
    /// [registry] trusted_keys.
    Pubkey { keyfile: PathBuf },
}

/// `plugins install NAME[@VERSION]`.
pub fn install(cli: &Cli, spec: &str, flag: Option<&str>) -> Result<ExitCode> {
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
        return json_success(&installed);
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

/// `plugins verify`.
pub fn verify(cli: &Cli, flag: Option<&str>) -> Result<ExitCode> {
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
        RegistryCommand::Pubkey { keyfile } => {
            let public = signing::public_key_text(&signing::load_secret(keyfile)?.verifying_key());
            if cli.json {
                print_json(&serde_json::json!({ "public_key": public, "private_key_file": keyfile }))?;
            } else {
                println!("{public}");
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

/// After a run: for each plugin that was denied something it declared, the exact
/// grants table to add.
pub fn after_run(cli: &Cli, project: &Project, catalog: &Catalog, summary: &Summary) {
    let advice = trust::grant_advice(catalog, project, summary.denials().map(|d| d.plugin.as_str()));
    if !advice.is_empty() {
        say(cli, &advice);
    }
}
