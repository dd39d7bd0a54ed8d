//! `backup` and `restore`: each service's backup hooks, one service at a time, with
//! the service's own grants, limits and secrets as `run` uses them. Nothing here knows
//! a database: the plugins say how, the host moves the bytes (`capabilities::archive`)
//! and packs them (`crate::backup`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::{Prepared, PreflightError, Stack};
use crate::backup::{Manifest, ServiceBackup, Skipped, FORMAT};
use crate::capabilities::archive::ArchiveSession;
use crate::capabilities::ServiceHost;
use crate::runtime::HookFailure;

/// Why a backup or a restore stopped. Each names the service.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Hook(#[from] HookFailure),
    #[error("service `{service}`: {message}")]
    Service { service: String, message: String },
    #[error("{0}")]
    Refused(String),
}

fn service_error(service: &str, message: impl Into<String>) -> BackupError {
    BackupError::Service { service: service.to_string(), message: message.into() }
}

/// Whether a plugin serves the backup hooks: built against WIT 0.2 or later.
fn has_backup_hooks(wit_version: &str) -> bool {
    !wit_version.starts_with("0.1.")
}

/// Left in the environment's state folder by a restore that failed part-way, until a
/// restore of that service succeeds: `status` reports it, so a partial restore is never
/// silent.
pub const RESTORE_MARKER: &str = "restore-incomplete.json";

/// What [`RESTORE_MARKER`] holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IncompleteRestore {
    pub service: String,
    /// The backup's project, environment and time.
    pub backup: String,
    pub message: String,
}

impl IncompleteRestore {
    /// The environment's marker, if a restore left one.
    pub fn read(state_dir: &Path) -> Option<IncompleteRestore> {
        let text = std::fs::read_to_string(state_dir.join(RESTORE_MARKER)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// How one restore went, service by service.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub service: String,
    pub elapsed_ms: u64,
}

impl Stack<'_> {
    /// The prepared services named in `wanted` (every one when empty), in name order;
    /// an unknown name is an error listing the known ones.
    fn selected(&self, prepared: &std::collections::BTreeMap<String, Prepared>, wanted: &[String]) -> Result<Vec<String>, BackupError> {
        for name in wanted {
            if !prepared.contains_key(name) {
                let known = prepared.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err(BackupError::Refused(format!("no service `{name}` in {} (services: {known})", self.project.file.display())));
            }
        }
        Ok(prepared.keys().filter(|n| wanted.is_empty() || wanted.contains(n)).cloned().collect())
    }

    /// The service answers `ready` now: backups and restores act on a running service.
    fn check_ready(&self, p: &Prepared, ctx: &crate::runtime::HookContext) -> Result<(), BackupError> {
        let call = self.runtime.ready(&p.plugin, p.host.clone(), ctx)?;
        match call.value {
            Ok(None) => Ok(()),
            Ok(Some(reason)) | Err(reason) => Err(service_error(
                &p.service.name,
                format!("is not ready ({}); run `provisioner run {}` first", self.mask(p, &reason), self.environment),
            )),
        }
    }

    fn with_archive(p: &Prepared, session: Arc<ArchiveSession>) -> Arc<ServiceHost> {
        Arc::new(ServiceHost { archive: Some(session), ..(*p.host).clone() })
    }

    /// Back up `services` (all when empty) into `parts_dir` (`<service>/<part>`),
    /// one after the other. Returns the manifest to pack with the parts.
    pub fn backup(&self, services: &[String], parts_dir: &Path) -> Result<Manifest, BackupError> {
        let (env, prepared) = self.prepare_services(false)?;
        let mut manifest = Manifest {
            format: FORMAT,
            project: self.project.name.clone(),
            environment: self.environment.to_string(),
            created: crate::backup::now_rfc3339(),
            provisioner: env!("CARGO_PKG_VERSION").to_string(),
            services: Vec::new(),
            skipped: Vec::new(),
        };
        for name in self.selected(&prepared, services)? {
            let p = &prepared[&name];
            let info = &p.plugin.info;
            let skip = if !has_backup_hooks(&info.wit_version) {
                Some(format!("no backup support: plugin `{}` is built against WIT {}", info.name, info.wit_version))
            } else if info.backup.is_none() {
                Some(format!("nothing to back up (plugin `{}` keeps no data)", info.name))
            } else {
                None
            };
            if let Some(reason) = skip {
                self.note(&p.host, &reason);
                manifest.skipped.push(Skipped { service: name, reason });
                continue;
            }
            let ctx = self.context(&env, p, &p.service.config);
            self.check_ready(p, &ctx)?;
            let session = Arc::new(
                ArchiveSession::backup(&parts_dir.join(&name)).map_err(|e| service_error(&name, format!("cannot create its parts folder: {e}")))?,
            );
            self.note(&p.host, &format!("backing up: {}", info.backup.as_deref().unwrap_or_default()));
            let started = Instant::now();
            let call = self.runtime.backup(&p.plugin, Self::with_archive(p, session.clone()), &ctx)?;
            let (method, notes) = call.value.map_err(|e| service_error(&name, format!("backup failed: {}", self.mask(p, &e))))?;
            let parts = session.finish();
            if parts.is_empty() {
                return Err(service_error(&name, format!("plugin `{}` reported a backup but saved no parts", info.name)));
            }
            let backup = ServiceBackup {
                service: name.clone(),
                plugin: info.name.clone(),
                plugin_version: info.version.clone(),
                wit_version: info.wit_version.clone(),
                method: self.mask(p, &method),
                notes: notes.iter().map(|n| self.mask(p, n)).collect(),
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                parts,
            };
            self.note(&p.host, &format!("backed up: {} in {:.1} s", crate::text::bytes(backup.bytes()), started.elapsed().as_secs_f64()));
            manifest.services.push(backup);
        }
        Ok(manifest)
    }

    /// Restore `services` (all of the archive's when empty) from the verified parts in
    /// `parts_dir`. Every check comes before the first change: each service exists
    /// with the plugin that made its backup and is ready, and (unless `force`) holds no
    /// data. Stops at the first service that fails; the error says which were restored.
    pub fn restore(&self, manifest: &Manifest, parts_dir: &Path, services: &[String], force: bool) -> Result<Vec<Restored>, BackupError> {
        let (env, prepared) = self.prepare_services(false)?;
        for name in services {
            if !manifest.services.iter().any(|s| &s.service == name) {
                let held = manifest.services.iter().map(|s| s.service.as_str()).collect::<Vec<_>>().join(", ");
                return Err(BackupError::Refused(format!("the archive has no backup of service `{name}` (it has: {held})")));
            }
        }
        let chosen: Vec<&ServiceBackup> =
            manifest.services.iter().filter(|s| services.is_empty() || services.contains(&s.service)).collect();
        let mut checked = Vec::new();
        for backup in &chosen {
            let name = &backup.service;
            let Some(p) = prepared.get(name) else {
                return Err(service_error(name, format!("is in the archive but not in {}", self.project.file.display())));
            };
            if p.plugin.info.name != backup.plugin {
                return Err(service_error(
                    name,
                    format!("was backed up by plugin `{}` but uses plugin `{}` here; a backup restores only with its own plugin", backup.plugin, p.plugin.info.name),
                ));
            }
            if !has_backup_hooks(&p.plugin.info.wit_version) || p.plugin.info.backup.is_none() {
                return Err(service_error(name, format!("plugin `{}` {} has no restore", p.plugin.info.name, p.plugin.info.version)));
            }
            let ctx = self.context(&env, p, &p.service.config);
            self.check_ready(p, &ctx)?;
            checked.push((p, ctx, *backup));
        }
        if !force {
            let mut holding = Vec::new();
            for (p, ctx, _) in &checked {
                let call = self.runtime.data_summary(&p.plugin, p.host.clone(), ctx)?;
                match call.value {
                    Ok(None) => {}
                    Ok(Some(summary)) => holding.push(format!("`{}` holds {}", p.service.name, self.mask(p, &summary))),
                    Err(e) => return Err(service_error(&p.service.name, format!("cannot tell what data it holds: {}", self.mask(p, &e)))),
                }
            }
            if !holding.is_empty() {
                return Err(BackupError::Refused(format!(
                    "{}; a restore replaces it. Nothing was changed. Pass --force to replace it, or restore into a fresh environment",
                    holding.join(", ")
                )));
            }
        }
        let mut restored = Vec::new();
        for (p, ctx, backup) in checked {
            let name = &p.service.name;
            self.note(&p.host, &format!("restoring {} ({})", crate::text::bytes(backup.bytes()), backup.method));
            let started = Instant::now();
            let session = Arc::new(ArchiveSession::restore(&parts_dir.join(name), backup.parts.clone()));
            let outcome = match self.runtime.restore(&p.plugin, Self::with_archive(p, session), &ctx) {
                Ok(call) => call.value.map_err(|e| self.mask(p, &e)),
                Err(failure) => Err(failure.to_string()),
            };
            let marker = self.project.state_dir(self.environment).join(RESTORE_MARKER);
            if let Err(message) = outcome {
                let done = restored.iter().map(|r: &Restored| format!("`{}`", r.service)).collect::<Vec<_>>();
                let done = if done.is_empty() { "none".to_string() } else { done.join(", ") };
                let incomplete = IncompleteRestore {
                    service: name.clone(),
                    backup: format!("{}/{} of {}", manifest.project, manifest.environment, manifest.created),
                    message: message.clone(),
                };
                let kept = serde_json::to_vec_pretty(&incomplete)
                    .map_err(|e| e.to_string())
                    .and_then(|json| crate::fsutil::write_private(&marker, &json).map_err(|e| e.to_string()));
                let kept = match kept {
                    Ok(()) => String::new(),
                    Err(e) => format!(" (and {} could not be written: {e})", marker.display()),
                };
                return Err(service_error(
                    name,
                    format!("restore failed: {message}. Its data may be incomplete: restore it again with --force. Restored before it: {done}{kept}"),
                ));
            }
            if IncompleteRestore::read(marker.parent().unwrap_or(Path::new("."))).is_some_and(|m| &m.service == name) {
                let _ = std::fs::remove_file(&marker);
            }
            self.note(&p.host, &format!("restored in {:.1} s", started.elapsed().as_secs_f64()));
            restored.push(Restored { service: name.clone(), elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX) });
        }
        Ok(restored)
    }
}
