//! `provisioner backup`, `backups` and `restore`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use provisioner::backup::{self, ArchiveError, Identities, Manifest, Recipients};
use provisioner::progress::Progress;
use provisioner::state::EnvLock;
use provisioner::text;

use super::env::Session;
use crate::Cli;

/// Where an environment's archives go by default.
fn backups_dir(session: &Session, env: &str) -> std::path::PathBuf {
    session.project.state_dir(env).join("backups")
}

/// A scratch folder for parts, beside `near` so that nothing crosses file systems,
/// removed when dropped (also when the command fails).
fn scratch(near: &Path) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(near).with_context(|| format!("cannot create {}", near.display()))?;
    tempfile::Builder::new().prefix(".parts-").tempdir_in(near).with_context(|| format!("cannot create a scratch folder in {}", near.display()))
}

/// `provisioner backup ENV [SERVICE…] [-o FILE] [--keep N]`.
pub fn backup(cli: &Cli, env: &str, services: &[String], output: Option<&Path>, keep: Option<usize>, recipients: &Recipients) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
    session.checked(env)?;
    let _lock = EnvLock::acquire(&session.project.state_dir(env))?;
    let dir = backups_dir(&session, env);
    let target_dir = output.and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()).unwrap_or(&dir).to_path_buf();
    let parts = scratch(&target_dir)?;

    let progress = Progress::new(cli.json);
    let manifest = session.stack(env, Some(&progress)).backup(services, parts.path());
    progress.finish();
    let manifest = manifest?;
    if manifest.services.is_empty() {
        anyhow::bail!(
            "nothing to back up in {env}: {}",
            manifest.skipped.iter().map(|s| format!("{} ({})", s.service, s.reason)).collect::<Vec<_>>().join("; ")
        );
    }
    let file = match output {
        Some(path) => path.to_path_buf(),
        None => dir.join(backup::default_file_name(env, &manifest.created, !recipients.is_empty())),
    };
    let size = backup::pack(&file, &manifest, parts.path(), recipients)?;
    let pruned = match keep {
        Some(keep) => backup::prune(&dir, env, keep).with_context(|| format!("pruning {}", dir.display()))?,
        None => Vec::new(),
    };
    if cli.json {
        println!("{}", serde_json::json!({ "file": file, "bytes": size, "manifest": manifest, "pruned": pruned }));
    } else {
        print_manifest(&manifest);
        let encrypted = if recipients.is_empty() { "" } else { ", encrypted (age)" };
        println!("wrote {} ({} compressed{encrypted})", file.display(), text::bytes(size));
        for path in pruned {
            println!("removed {} (--keep)", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_manifest(manifest: &Manifest) {
    println!("{:<16} {:<12} {:>10} {:>8}  {}", "service", "plugin", "size", "time", "method");
    for s in &manifest.services {
        println!("{:<16} {:<12} {:>10} {:>7.1}s  {}", s.service, s.plugin, text::bytes(s.bytes()), s.elapsed_ms as f64 / 1000.0, s.method);
        for note in &s.notes {
            println!("{:<16} note: {note}", "");
        }
    }
    for s in &manifest.skipped {
        println!("{:<16} skipped: {}", s.service, s.reason);
    }
}

/// `provisioner restore ENV FILE [SERVICE…] [--force]`.
pub fn restore(cli: &Cli, env: &str, file: &Path, services: &[String], force: bool, identities: &Identities) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
    session.checked(env)?;
    let manifest = backup::read_manifest(file, identities)?;
    if !cli.json {
        println!(
            "{}: backup of {}/{} made {} by provisioner {}",
            file.display(),
            manifest.project,
            manifest.environment,
            manifest.created,
            manifest.provisioner
        );
    }
    let _lock = EnvLock::acquire(&session.project.state_dir(env))?;
    let parts = scratch(&backups_dir(&session, env))?;
    // Every part is read and checked before any service is touched.
    let checking = std::time::Instant::now();
    let manifest = backup::unpack(file, parts.path(), services, identities)?;
    if !cli.json {
        println!("checked every part against the manifest (sha256) in {:.1} s", checking.elapsed().as_secs_f64());
    }
    let progress = Progress::new(cli.json);
    let restored = session.stack(env, Some(&progress)).restore(&manifest, parts.path(), services, force);
    progress.finish();
    let restored = restored?;
    if !cli.json {
        for r in &restored {
            println!("restored {} in {:.1} s", r.service, r.elapsed_ms as f64 / 1000.0);
        }
        println!("checking every service with the restored data, as `run` does:");
    }
    // A restore may restart a server (Redis loads a snapshot only at boot), and a
    // restarted container can get another host port: `run` finds each service as it
    // is now, checks it over its real protocol with this environment's credentials,
    // and rewrites .env.
    super::env::bring_up(cli, &session, env, false)
}

/// One archive as `backups` lists it.
#[derive(serde::Serialize)]
struct Listed {
    file: std::path::PathBuf,
    bytes: u64,
    encrypted: bool,
    /// Seconds since it was made (the manifest's time, else the file's).
    age_s: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<Manifest>,
    /// Why the contents are not shown (encrypted without a key, damaged).
    #[serde(skip_serializing_if = "Option::is_none")]
    unreadable: Option<String>,
}

/// `provisioner backups ENV [--identity FILE]`.
pub fn list(cli: &Cli, env: &str, identities: &Identities) -> Result<ExitCode> {
    let session = Session::open(cli, env)?;
    let dir = backups_dir(&session, env);
    let now = std::time::SystemTime::now();
    let mut listed = Vec::new();
    for file in backup::archives(&dir, env) {
        let meta = std::fs::metadata(&file).with_context(|| format!("cannot stat {}", file.display()))?;
        let encrypted = backup::is_encrypted(&file).unwrap_or(false);
        let (manifest, unreadable) = match backup::read_manifest(&file, identities) {
            Ok(m) => (Some(m), None),
            Err(ArchiveError::Encrypted { .. }) => (None, Some("encrypted: pass --identity FILE to list its contents".to_string())),
            Err(e) => (None, Some(e.to_string())),
        };
        let made = manifest
            .as_ref()
            .and_then(|m| humantime::parse_rfc3339(&m.created).ok())
            .or_else(|| meta.modified().ok())
            .unwrap_or(now);
        let age_s = now.duration_since(made).map(|d| d.as_secs()).unwrap_or(0);
        listed.push(Listed { file, bytes: meta.len(), encrypted, age_s, manifest, unreadable });
    }
    if cli.json {
        println!("{}", serde_json::json!({ "environment": env, "folder": dir, "archives": listed }));
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        println!("no archives in {} (`provisioner backup {env}` writes one there)", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<36} {:>10} {:>10}  contents", "archive", "size", "age");
    for item in &listed {
        let name = item.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let contents = match (&item.manifest, &item.unreadable) {
            (Some(m), _) => m.services.iter().map(|s| format!("{} ({} {})", s.service, s.plugin, text::bytes(s.bytes()))).collect::<Vec<_>>().join(", "),
            (None, Some(why)) => why.clone(),
            (None, None) => String::new(),
        };
        println!("{name:<36} {:>10} {:>10}  {contents}", text::bytes(item.bytes), format!("{} ago", age(item.age_s)));
    }
    println!("in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// A duration as a person reads an age: `40 s`, `12 min`, `3 h`, `5 d`.
fn age(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86400 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86400),
    }
}
