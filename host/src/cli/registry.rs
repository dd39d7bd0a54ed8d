//! The commands for third-party plugins: `plugins install|inspect oci://…|sync|verify`,
//! `registry publish|push|sign|keygen`, and what `run` adds for them (missing locked
//! plugins and the lockfile before, the grant advice after).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;

use provisioner::config::Project;
use provisioner::discovery::Catalog;
use provisioner::distribution::lock::{self, Outcome};
use provisioner::distribution::oci::{self, OciRef};
use provisioner::distribution::registry::{self, Origin, SignatureStatus};
use provisioner::distribution::sync;
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
    /// Push a plugin file to an OCI registry as oci://REGISTRY/REPO:TAG, in the wasm OCI
    /// layout (`wkg` reads it), with what it declares as annotations and its signature
    /// by KEY attached. Credentials come from the Docker config (`docker login`).
    Push {
        /// The plugin's .wasm. (Not named `file`: that is the global `--file`.)
        #[arg(value_name = "FILE.wasm")]
        wasm: PathBuf,
        /// oci://REGISTRY/REPOSITORY:TAG, e.g. oci://ghcr.io/acme/plugins/memcached:0.1.0
        reference: String,
        /// Private key file made by `registry keygen`.
        #[arg(long, value_name = "KEY", required_unless_present = "unsigned")]
        key: Option<PathBuf>,
        /// Push without a signature (installs refuse it unless require_signatures = false).
        #[arg(long)]
        unsigned: bool,
        /// Allow plain HTTP to this registry (loopback registries always may).
        #[arg(long)]
        insecure: bool,
    },
    /// Sign a plugin already in an OCI registry (pushed with `wkg oci push`, say): checks
    /// it is a plugin, then attaches the signature by KEY to its manifest.
    Sign {
        reference: String,
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        #[arg(long)]
        insecure: bool,
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
    // command fail on the duplicate; say so now instead. (An OCI reference names no
    // plugin: its name is known once fetched, and checked below.)
    let name = if OciRef::is_oci(spec) { None } else { Some(registry::parse_spec(spec)?.0) };
    let runtime = runtime()?;
    let catalog_before = catalog(cli, &runtime, Some(&project))?;
    let elsewhere = |name: &str| {
        let target = project.root().join("plugins").join(format!("{name}.wasm"));
        catalog_before.plugins.get(name).filter(|f| f.plugin.path != target).map(|f| (f.plugin.path.clone(), f.source))
    };
    if let Some((path, source)) = name.as_deref().and_then(elsewhere) {
        let name = name.as_deref().unwrap_or_default();
        bail!(
            "a plugin called `{name}` is already found at {} ({}); remove it first, or install under another project",
            path.display(),
            serde_json::to_value(source)?.as_str().unwrap_or("elsewhere")
        );
    }
    let plugins_dir = project.root().join("plugins");
    let installed = if OciRef::is_oci(spec) {
        oci::install(&OciRef::parse(spec)?, &project.registry, &runtime, &plugins_dir)?
    } else {
        match registry::location(flag, &project.registry, project.root())? {
            Origin::Index(location) => registry::install(&location, &project.registry, &runtime, spec, &plugins_dir)?,
            Origin::Oci(prefix) => {
                let (name, version) = registry::parse_spec(spec)?;
                let reference = oci::by_name(&prefix, &name, version.as_deref(), &project.registry)?;
                let installed = oci::install(&reference, &project.registry, &runtime, &plugins_dir)?;
                if installed.name != name {
                    // Verified and signed, so kept; but not what was asked for.
                    bail!(
                        "{reference} is the plugin `{}`, not `{name}` (it was installed as {}); the registry's repository names are wrong",
                        installed.name,
                        installed.path.display()
                    );
                }
                installed
            }
        }
    };
    if let Some((path, source)) = elsewhere(&installed.name) {
        // Fetched from an OCI reference: only now is its name known.
        let _ = std::fs::remove_file(&installed.path);
        bail!(
            "{spec} is the plugin `{}`, which is already found at {} ({}); removed it again. Remove that one first",
            installed.name,
            path.display(),
            serde_json::to_value(source)?.as_str().unwrap_or("elsewhere")
        );
    }
    if cli.json {
        return json_success(&installed);
    }
    let signature = match &installed.signature {
        SignatureStatus::Trusted(key) => format!("signed by {key}"),
        SignatureStatus::NotRequired => "signature not checked (require_signatures = false)".into(),
    };
    let what = if installed.changed { "installed" } else { "already installed" };
    if let Some(source) = registry::installed_source(&installed.path, &installed.sha256) {
        println!("from {source}");
    }
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
        RegistryCommand::Push { wasm, reference, key, unsigned, insecure } => {
            if key.is_some() && *unsigned {
                bail!("--key and --unsigned contradict each other");
            }
            let reference = OciRef::parse(reference)?;
            let pushed = oci::push(wasm, &reference, key.as_deref(), &runtime()?, &insecure_list(cli, &reference, *insecure)?)?;
            print_pushed(cli, "pushed", &pushed)?;
        }
        RegistryCommand::Sign { reference, key, insecure } => {
            let reference = OciRef::parse(reference)?;
            let signed = oci::sign(&reference, key, &runtime()?, &insecure_list(cli, &reference, *insecure)?)?;
            print_pushed(cli, "signed", &signed)?;
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

/// The registries that may be spoken to over plain HTTP: the project's `[registry]
/// insecure` (when there is a project), and this one with `--insecure`.
fn insecure_list(cli: &Cli, reference: &OciRef, flag: bool) -> Result<Vec<String>> {
    let mut list = super::project(cli, false)?.map(|p| p.registry.insecure).unwrap_or_default();
    if flag {
        list.push(reference.registry().to_string());
    }
    Ok(list)
}

fn print_pushed(cli: &Cli, what: &str, pushed: &oci::Pushed) -> Result<()> {
    if cli.json {
        return print_json(pushed);
    }
    let signed = match (&pushed.signed_by, &pushed.signature_tag) {
        (Some(key), Some(tag)) => format!("signed by {key}, signature tagged {tag}"),
        _ => "UNSIGNED".into(),
    };
    println!("{what} {} {} as {}
  sha256 {} ({signed})", pushed.name, pushed.version, pushed.reference, pushed.sha256);
    Ok(())
}

/// `plugins inspect oci://…`: what a plugin in a registry asks for, before installing it.
pub fn inspect_oci(cli: &Cli, text: &str) -> Result<ExitCode> {
    let project = super::project(cli, false)?;
    let settings = project.as_ref().map(|p| p.registry.clone()).unwrap_or_default();
    let remote = oci::inspect(&OciRef::parse(text)?, &settings)?;
    if cli.json {
        return json_success(&remote);
    }
    match (&remote.name, &remote.version) {
        (Some(name), Some(version)) => println!("{name} {version} — {}", remote.summary.clone().unwrap_or_default()),
        _ => println!("a wasm component without provisioner's annotations (pushed by another tool, such as `wkg oci push`)"),
    }
    println!("  reference  {}", remote.reference);
    match &remote.wit_version {
        Some(wit) => println!("  WIT        provisioner:plugin@{wit}"),
        None => println!("  WIT        not annotated; `plugins install` reads it from the component"),
    }
    println!("  sha256     {} ({} bytes)", remote.sha256, remote.size);
    println!("  signature  {}", remote.signature);
    let name = remote.name.clone().unwrap_or_default();
    let grants = project.as_ref().and_then(|p| p.grants(&name).cloned()).unwrap_or_default();
    match &remote.capabilities {
        Some(capabilities) => {
            println!("  asks for (from the annotations; `plugins install` checks them against the component):");
            for c in capabilities {
                let mark = match grants.status(c) {
                    provisioner::capabilities::GrantStatus::Granted => "granted",
                    provisioner::capabilities::GrantStatus::Partly(_) => "partly ",
                    provisioner::capabilities::GrantStatus::NotGranted => "not granted",
                };
                println!("    {mark:<11}  {:<24} {}", c.to_string(), c.meaning());
            }
        }
        None => println!("  asks for: not annotated (pushed by another tool); `plugins install` shows it from the component"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `plugins sync`: fetch the locked plugins that are missing.
pub fn sync(cli: &Cli) -> Result<ExitCode> {
    let project = required_project(cli)?;
    let runtime = runtime()?;
    let catalog = catalog(cli, &runtime, Some(&project))?;
    let synced = sync::sync(&project, &catalog, &runtime)?;
    if cli.json {
        return json_success(&synced);
    }
    if synced.is_empty() {
        println!("every plugin in {} is installed", lock::FILE_NAME);
    }
    report_synced(cli, &synced);
    Ok(ExitCode::SUCCESS)
}

fn report_synced(cli: &Cli, synced: &[sync::Synced]) {
    for s in synced {
        say(cli, &format!("fetched {} {} from {} into {} (sha256 {}, as locked)", s.plugin, s.version, s.from, s.path.display(), s.sha256));
    }
}

/// Before a run: fetch the locked plugins that are missing; the catalog to run with
/// (found again when something was fetched).
pub fn sync_before_run(cli: &Cli, project: &Project, runtime: &provisioner::runtime::PluginRuntime, found: Catalog) -> Result<Catalog> {
    let synced = sync::sync(project, &found, runtime)?;
    if synced.is_empty() {
        return Ok(found);
    }
    report_synced(cli, &synced);
    catalog(cli, runtime, Some(project))
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
