//! `plugins list|inspect|grant`, and the `plugins` subcommands that live elsewhere
//! (`install`, `verify` in `registry`; `new`, `check`, `test` in `authoring`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;

use provisioner::capabilities::{Capability, GrantStatus};
use provisioner::config::{Project, DEFAULT_READINESS_TIMEOUT_SECS, FILE_NAME};
use provisioner::discovery::{Broken, Catalog, Found, GrantSource, Source};
use provisioner::distribution::lock;
use provisioner::distribution::oci::OciRef;
use provisioner::distribution::trust::{self, Trust};

use super::{catalog, project, required_project, runtime};
use crate::Cli;

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Every plugin found: name, version, WIT version, sha256, path, capabilities and
    /// whether each is granted; and every file that failed to load, with the reason.
    List,
    /// One plugin in full, its config as a table; or, given oci://REGISTRY/REPO:TAG,
    /// what a plugin in an OCI registry asks for and who signed it, before installing.
    Inspect { name: String },
    /// A plugin's README section in Markdown (config table, outputs, capabilities),
    /// from what it declares.
    Docs { name: String },
    /// Install NAME or NAME@VERSION from a registry, or oci://REGISTRY/REPO:TAG (or
    /// @sha256:…) from an OCI registry, into the project's plugins/ folder, after
    /// checking its sha256 and its signature by a trusted key.
    Install {
        spec: String,
        /// A registry folder or http(s) base URL (default: [registry] url).
        #[arg(long, value_name = "URL")]
        registry: Option<String>,
    },
    /// Fetch every plugin provisioner.lock pins that is not installed, from where the
    /// lock says (or [registry] url), checking digest and signature. `run` does this first.
    Sync,
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
    /// Run one hook (validate, provision, ready or teardown) of one SERVICE of the
    /// project, as `run` would (same grants, limits, state and secrets), and show what
    /// it returned, the host calls it made and its stderr. Records nothing (no
    /// state.json, no .env).
    Call {
        service: String,
        #[arg(value_parser = ["validate", "provision", "ready", "teardown"])]
        hook: String,
        /// The environment (default: local).
        #[arg(long, default_value = "local")]
        env: String,
        /// The service's config as JSON, in place of provisioner.toml's.
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
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
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_READINESS_TIMEOUT_SECS)]
        readiness_timeout: u64,
    },
    /// Run a scenario of steps on a plugin file against a real engine (run with a
    /// config, check outputs, TCP and commands, change the config, tear down keeping
    /// volumes, …); exits non-zero if any step or assertion fails. Always tears down.
    Test {
        file: PathBuf,
        scenario: PathBuf,
        /// Run this image instead of the plugin's default (wins over the scenario's `image`).
        #[arg(long, value_name = "IMAGE")]
        image: Option<String>,
    },
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
    source: Source,
    grants_from: GrantSource,
    trust: Trust,
    /// Who signed it, shown apart from whether it is granted: `first-party`, `signed by
    /// KEY`, `unsigned`, or why its signature does not hold.
    signature: String,
    capabilities: Vec<CapabilityView>,
    outputs: &'a [String],
    defaults: &'a [(String, String)],
    config_schema: &'a str,
    /// How `backup` saves a service's data; none when there is nothing to back up or
    /// the plugin has no backup hooks (WIT 0.1).
    backup: String,
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
        trust: trust::trust(grants_from),
        backup: backup_support(info),
        signature: signature(project, found),
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

fn signature(project: Option<&Project>, found: &Found) -> String {
    if found.source == Source::Builtin {
        return "first-party".into();
    }
    let (info, plugin) = (&found.plugin.info, &found.plugin);
    let keys = project.map(|p| p.registry.trusted_keys.as_slice()).unwrap_or_default();
    match provisioner::distribution::registry::installed_signature(&plugin.path, keys, &info.name, &info.version, &plugin.sha256) {
        Ok(Some(key)) => format!("signed by {key}"),
        Ok(None) => "unsigned".into(),
        Err(problem) => format!("signature does not hold: {problem}"),
    }
}

/// `plugins list`'s bracket: signature and grants, each for itself.
fn standing(view: &PluginView) -> String {
    let grants = match view.trust {
        Trust::FirstParty => return "  [first-party · default grants]".into(),
        Trust::Granted => "granted",
        Trust::Unverified => "not granted",
    };
    format!("  [{} · {grants}]", view.signature)
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

pub fn plugins(cli: &Cli, command: &PluginsCommand) -> Result<ExitCode> {
    match command {
        PluginsCommand::List => list(cli),
        PluginsCommand::Inspect { name } if OciRef::is_oci(name) => super::registry::inspect_oci(cli, name),
        PluginsCommand::Inspect { name } => inspect(cli, name),
        PluginsCommand::Sync => super::registry::sync(cli),
        PluginsCommand::Install { spec, registry } => super::registry::install(cli, spec, registry.as_deref()),
        PluginsCommand::Docs { name } => docs(cli, name),
        PluginsCommand::Call { service, hook, env, config } => super::env::call(cli, env, service, hook, config.as_deref()),
        PluginsCommand::Verify { registry } => super::registry::verify(cli, registry.as_deref()),
        PluginsCommand::Grant { name, dry_run } => grant(cli, name, *dry_run),
        PluginsCommand::New { name, dir, sdk, sdk_git, sdk_tag } => {
            super::authoring::new(cli, name, dir.as_deref(), sdk.as_deref(), sdk_git.as_deref(), sdk_tag.as_deref())
        }
        PluginsCommand::Check { file, config, image, readiness_timeout } => {
            super::authoring::check(cli, file, config.as_deref(), image.as_deref(), *readiness_timeout)
        }
        PluginsCommand::Test { file, scenario, image } => super::authoring::test(cli, file, scenario, image.as_deref()),
    }
}

/// `plugins list`.
fn list(cli: &Cli) -> Result<ExitCode> {
    let project = project(cli, false)?;
    let runtime = runtime()?;
    let catalog = catalog(cli, &runtime, project.as_ref())?;
    let views: Vec<PluginView> = catalog.plugins.values().map(|f| view(&catalog, project.as_ref(), f)).collect();
    if cli.json {
        #[derive(Serialize)]
        struct Listing<'a> {
            plugins: &'a [PluginView<'a>],
            broken: &'a [Broken],
        }
        println!("{}", serde_json::to_string_pretty(&Listing { plugins: &views, broken: &catalog.broken })?);
    } else {
        if views.is_empty() && catalog.broken.is_empty() {
            println!("no plugins found (searched --plugins-dir, $PROVISIONER_PLUGIN_PATH, ./plugins and the host's own folder)");
        }
        for v in &views {
            println!("{} {} (WIT {}) — {}{}", v.name, v.version, v.wit_version, v.summary, standing(v));
            println!("  sha256 {}", v.sha256);
            println!("  from   {} ({})", v.path.display(), serde_json::to_value(v.source)?.as_str().unwrap_or(""));
            print_capabilities(v.name, v);
        }
        for b in &catalog.broken {
            println!("BROKEN {}\n  {}", b.path.display(), b.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `plugins inspect NAME`.
/// What `backup` does for a service of this plugin, in a few words.
fn backup_support(info: &provisioner::runtime::PluginInfo) -> String {
    match &info.backup {
        _ if info.wit_version.starts_with("0.1.") => format!("no backup support (built against WIT {})", info.wit_version),
        Some(method) => method.clone(),
        None => "nothing to back up".into(),
    }
}

fn inspect(cli: &Cli, name: &str) -> Result<ExitCode> {
    let project = project(cli, false)?;
    let runtime = runtime()?;
    let catalog = catalog(cli, &runtime, project.as_ref())?;
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
        println!("  backup  {}", v.backup);
        for (key, value) in v.defaults {
            println!("  default {key} = {value}");
        }
        print_capabilities(v.name, &v);
        let rows = provisioner::authoring::schema::rows(v.config_schema);
        if rows.is_empty() {
            println!("  config schema: {}", v.config_schema);
        } else {
            println!("  config ([services.NAME] config = {{ … }}):");
            let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(3).max(3);
            let kinds = rows.iter().map(|r| r.kind.chars().count()).max().unwrap_or(4).max(4);
            println!("    {:<width$}  {:<kinds$}  {:<12}  description", "key", "type", "default");
            for row in &rows {
                let default = row.default.clone().unwrap_or_else(|| if row.required { "required".into() } else { "–".into() });
                println!("    {:<width$}  {:<kinds$}  {:<12}  {}", row.key, row.kind, default, row.description);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `plugins docs NAME`: the plugin's README section in Markdown, from what it declares.
fn docs(cli: &Cli, name: &str) -> Result<ExitCode> {
    let project = project(cli, false)?;
    let runtime = runtime()?;
    let catalog = catalog(cli, &runtime, project.as_ref())?;
    let found = catalog.plugins.get(name).with_context(|| format!("no plugin called `{name}` (see `provisioner plugins list`)"))?;
    let info = &found.plugin.info;
    let mut out = format!("# {} {}

{}

WIT `provisioner:plugin@{}`.

", info.name, info.version, info.summary, info.wit_version);
    out.push_str(&format!("```toml
[services.NAME]
plugin = \"{}\"
config = {{ }}
```

", info.name));
    let rows = provisioner::authoring::schema::rows(&info.config_schema);
    if !rows.is_empty() {
        out.push_str("## Config

");
        out.push_str(&provisioner::authoring::schema::markdown_table(&rows));
        out.push('\n');
    }
    if !info.outputs.is_empty() {
        out.push_str("## Outputs

");
        for output in &info.outputs {
            out.push_str(&format!("- `{output}`\n"));
        }
        out.push('\n');
    }
    out.push_str("## Capabilities

What it asks for (grant with `provisioner plugins grant`):

");
    for capability in &info.capabilities {
        out.push_str(&format!("- `{}`: {}\n", capability.grant_line(), capability.meaning()));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `plugins grant NAME [--dry-run]`.
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
