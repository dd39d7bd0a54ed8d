//! Locked plugins install themselves: before a run (and in `plugins sync`), every
//! plugin that `provisioner.lock` pins and a service uses, but that no plugin folder
//! has, is fetched from where the lock says (`source = "oci://…@sha256:…"`), or from
//! `[registry] url` by name and version, into the project's `plugins/`, after the
//! same digest and signature checks as `plugins install` and a check that its sha256
//! is the locked one. A plugin that is present is left alone: whether it matches the
//! lock is the lockfile check's business (`--locked` refuses a difference).

use std::path::PathBuf;

use serde::Serialize;

use crate::config::Project;
use crate::discovery::Catalog;
use crate::distribution::lock::{self, Lock, LockError};
use crate::distribution::oci::{self, OciError, OciRef};
use crate::distribution::registry::{self, Origin, RegistryError, Source};
use crate::runtime::PluginRuntime;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "plugin `{plugin}` {version} is locked in {} but not installed, and the lock says nowhere to fetch it from. \
         Set `url` under [registry] in provisioner.toml, or install it (`provisioner plugins install …`)",
        lockfile.display()
    )]
    NoSource { plugin: String, version: String, lockfile: PathBuf },
    #[error("fetching plugin `{plugin}` locked in {}: {source}", lockfile.display())]
    Oci { plugin: String, lockfile: PathBuf, source: OciError },
    #[error("fetching plugin `{plugin}` locked in {}: {source}", lockfile.display())]
    Registry { plugin: String, lockfile: PathBuf, source: RegistryError },
    #[error(
        "refusing plugin `{plugin}` from {from}: it is {found_name} {found_version} with sha256 {found}, but {} pins \
         {plugin} {version} with sha256 {locked}. Nothing was installed; if the publisher replaced it on purpose, \
         install it explicitly, review and commit the lockfile",
        lockfile.display()
    )]
    Differs {
        plugin: String,
        version: String,
        from: String,
        locked: String,
        found_name: String,
        found_version: String,
        found: String,
        lockfile: PathBuf,
    },
}

/// One plugin fetched.
#[derive(Debug, Clone, Serialize)]
pub struct Synced {
    pub plugin: String,
    pub version: String,
    pub sha256: String,
    pub from: String,
    pub path: PathBuf,
}

/// Fetch every locked plugin a service uses that `catalog` does not have. Returns
/// what was fetched (empty when there is no lockfile or nothing is missing).
pub fn sync(project: &Project, catalog: &Catalog, runtime: &PluginRuntime) -> Result<Vec<Synced>, SyncError> {
    let lockfile = lock::path(project);
    let Some(locked) = Lock::load(&lockfile)? else { return Ok(Vec::new()) };
    let used: std::collections::BTreeSet<&str> = project.services.values().map(|s| s.plugin.as_str()).collect();
    let plugins_dir = project.root().join("plugins");
    let mut synced = Vec::new();
    for (name, entry) in locked.plugins.iter().filter(|(n, _)| used.contains(n.as_str()) && !catalog.plugins.contains_key(*n)) {
        let (verified, signature, from, source) = match &entry.source {
            Some(text) if OciRef::is_oci(text) => {
                let oci_error = |source| SyncError::Oci { plugin: name.clone(), lockfile: lockfile.clone(), source };
                let reference = OciRef::parse(text).map_err(oci_error)?;
                let fetched = oci::fetch_verified(&reference, &project.registry, runtime).map_err(oci_error)?;
                let source = Source { source: fetched.pinned.to_string(), sha256: fetched.verified.sha256.clone(), version: fetched.verified.version.clone() };
                (fetched.verified, fetched.signature, text.clone(), Some(source))
            }
            _ => {
                let registry_error = |source| SyncError::Registry { plugin: name.clone(), lockfile: lockfile.clone(), source };
                match registry::location(None, &project.registry, project.root()) {
                    Ok(Origin::Index(location)) => {
                        let (verified, signature) = registry::fetch_with_signature(&location, &project.registry, runtime, name, Some(&entry.version))
                            .map_err(registry_error)?;
                        (verified, signature, format!("{location} ({name}@{})", entry.version), None)
                    }
                    Ok(Origin::Oci(prefix)) => {
                        let oci_error = |source| SyncError::Oci { plugin: name.clone(), lockfile: lockfile.clone(), source };
                        let reference = oci::by_name(&prefix, name, Some(&entry.version), &project.registry).map_err(oci_error)?;
                        let fetched = oci::fetch_verified(&reference, &project.registry, runtime).map_err(oci_error)?;
                        let source = Source { source: fetched.pinned.to_string(), sha256: fetched.verified.sha256.clone(), version: fetched.verified.version.clone() };
                        (fetched.verified, fetched.signature, reference.to_string(), Some(source))
                    }
                    Err(RegistryError::NoLocation) => {
                        return Err(SyncError::NoSource { plugin: name.clone(), version: entry.version.clone(), lockfile })
                    }
                    Err(e) => return Err(registry_error(e)),
                }
            }
        };
        // The signature says who published it; only the lock says it is what the
        // project's reviewers approved.
        if verified.sha256 != entry.sha256 || &verified.name != name {
            return Err(SyncError::Differs {
                plugin: name.clone(),
                version: entry.version.clone(),
                from,
                locked: entry.sha256.clone(),
                found_name: verified.name,
                found_version: verified.version,
                found: verified.sha256,
                lockfile,
            });
        }
        let installed = registry::place(verified, signature.as_deref(), source.as_ref(), &plugins_dir)
            .map_err(|source| SyncError::Registry { plugin: name.clone(), lockfile: lockfile.clone(), source })?;
        synced.push(Synced { plugin: name.clone(), version: installed.version, sha256: installed.sha256, from, path: installed.path });
    }
    Ok(synced)
}
