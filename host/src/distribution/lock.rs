//! `provisioner.lock`: every plugin the project's services use, pinned by version and
//! sha256, with the grants it runs under. `run` rewrites it when it is missing or
//! differs; with `--locked` (implied by `CI=true`) a difference is an error instead,
//! so CI runs exactly what a reviewer approved.
//!
//! The file is TOML with plugins and every list sorted, so that a review diff shows
//! only what really changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::capabilities::Grants;
use crate::config::Project;
use crate::discovery::{Catalog, GrantSource};

pub const FILE_NAME: &str = "provisioner.lock";
const FORMAT: u32 = 1;
const HEADER: &str = "# provisioner.lock: the plugins this project runs, pinned by sha256, and what each is granted.\n\
# Written by `provisioner run`; `--locked` (or CI=true) refuses anything that differs. Review changes like code.\n";

/// One plugin as locked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPlugin {
    pub version: String,
    pub sha256: String,
    /// Where the grants come from: `project-file`, `first-party-default` or `none`.
    pub grants_from: String,
    pub grants: Grants,
    /// Where it can be fetched again, pinned: `oci://REGISTRY/REPO:TAG@sha256:…`.
    /// `provisioner run` and `plugins sync` fetch a missing plugin from here (or, without
    /// it, from `[registry] url` by name and version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The whole lockfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub format: u32,
    #[serde(default)]
    pub plugins: BTreeMap<String, LockedPlugin>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not a valid lockfile: {message}. Delete it and run without --locked to write a new one", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: cannot write: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "--locked: there is no {} yet. Run `provisioner run ENV` without --locked (and with CI unset) to write it, \
         review it and commit it",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "--locked: the plugins or grants differ from {}:\n{}\nIf these changes are intended, run once without --locked \
         (and with CI unset) to accept them into the lockfile, then review and commit it",
        path.display(),
        changes.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n")
    )]
    Differs { path: PathBuf, changes: Vec<Change> },
}

/// One difference between the lockfile and what a run would use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum Change {
    Added { plugin: String, version: String, sha256: String },
    Removed { plugin: String },
    Version { plugin: String, locked: String, found: String },
    Digest { plugin: String, locked: String, found: String, path: PathBuf },
    /// Grant lines added (`+`) or removed (`-`), as they would read in provisioner.toml.
    Grants { plugin: String, widened: Vec<String>, narrowed: Vec<String> },
    /// It now comes from elsewhere (the digest is compared on its own).
    Source { plugin: String, locked: Option<String>, found: String },
}

impl Change {
    /// Whether `--locked` refuses it. A plugin no longer used does not run, so its
    /// stale entry is harmless.
    pub fn refused_when_locked(&self) -> bool {
        // A new source of the same bytes changes nothing that runs.
        !matches!(self, Change::Removed { .. } | Change::Source { .. })
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Added { plugin, version, sha256 } => {
                write!(f, "plugin `{plugin}` {version} (sha256 {sha256}) is not in the lockfile")
            }
            Change::Removed { plugin } => write!(f, "plugin `{plugin}` is locked but no service uses it any more"),
            Change::Version { plugin, locked, found } => {
                write!(f, "plugin `{plugin}`: version {found}, the lockfile has {locked}")
            }
            Change::Digest { plugin, locked, found, path } => write!(
                f,
                "plugin `{plugin}`: {} has sha256 {found}, the lockfile has {locked} (the file was replaced or altered)",
                path.display()
            ),
            Change::Grants { plugin, widened, narrowed } => {
                let mut parts = Vec::new();
                if !widened.is_empty() {
                    parts.push(format!("widened by {}", widened.join(", ")));
                }
                if !narrowed.is_empty() {
                    parts.push(format!("narrowed by {}", narrowed.join(", ")));
                }
                write!(f, "plugin `{plugin}`: grants {}", parts.join("; "))
            }
            Change::Source { plugin, locked, found } => match locked {
                Some(locked) => write!(f, "plugin `{plugin}`: now from {found}, the lockfile has {locked}"),
                None => write!(f, "plugin `{plugin}`: from {found}"),
            },
        }
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock { format: FORMAT, plugins: BTreeMap::new() }
    }
}

/// The lockfile's place: beside provisioner.toml.
pub fn path(project: &Project) -> PathBuf {
    project.root().join(FILE_NAME)
}

fn grant_source_name(source: GrantSource) -> String {
    match source {
        GrantSource::ProjectFile => "project-file",
        GrantSource::FirstPartyDefault => "first-party-default",
        GrantSource::None => "none",
    }
    .to_string()
}

/// Grants with every list sorted and deduplicated, so equal grants compare and print equal.
fn normalised(grants: &Grants) -> Grants {
    let sorted = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    Grants {
        images: sorted(&grants.images),
        publish: grants.publish.iter().copied().collect::<BTreeSet<_>>().into_iter().collect(),
        volumes: sorted(&grants.volumes),
        ..grants.clone()
    }
}

/// Every grant as the line items of provisioner.toml (`images "x"`, `exec`), to diff.
fn grant_items(grants: &Grants) -> BTreeSet<String> {
    let mut items = BTreeSet::new();
    items.extend(grants.images.iter().map(|i| format!("images \"{i}\"")));
    items.extend(grants.publish.iter().map(|p| format!("publish {p}")));
    items.extend(grants.volumes.iter().map(|v| format!("volumes \"{v}\"")));
    for (on, name) in [
        (grants.exec, "exec"),
        (grants.net_probe, "net_probe"),
        (grants.state_files, "state_files"),
        (grants.secrets, "secrets"),
        (grants.scrape_targets, "scrape_targets"),
    ] {
        if on {
            items.insert(name.to_string());
        }
    }
    items
}

impl Lock {
    /// What the project's services use now: each plugin they name, with the grants it
    /// would run under. Plugins nobody uses are left out.
    pub fn of(project: &Project, catalog: &Catalog) -> Lock {
        let mut lock = Lock::default();
        for service in project.services.values() {
            let Some(found) = catalog.plugins.get(&service.plugin) else { continue };
            let (grants, source) = catalog.grants(&service.plugin, Some(project));
            lock.plugins.insert(
                service.plugin.clone(),
                LockedPlugin {
                    version: found.plugin.info.version.clone(),
                    sha256: found.plugin.sha256.clone(),
                    grants_from: grant_source_name(source),
                    grants: normalised(&grants),
                    source: crate::distribution::registry::installed_source(&found.plugin.path, &found.plugin.sha256),
                },
            );
        }
        lock
    }

    /// The lockfile at `path`, or `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Lock>, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LockError::Read { path: path.to_path_buf(), source }),
        };
        let lock: Lock = toml::from_str(&text).map_err(|e| LockError::Parse { path: path.to_path_buf(), message: e.message().to_string() })?;
        if lock.format != FORMAT {
            return Err(LockError::Parse { path: path.to_path_buf(), message: format!("format {} (this provisioner writes {FORMAT})", lock.format) });
        }
        Ok(Some(lock))
    }

    pub fn to_toml(&self) -> String {
        // Serialising plain strings, numbers and tables cannot fail.
        let body = toml::to_string(self).unwrap_or_default();
        format!("{HEADER}\n{body}")
    }

    /// Write atomically, so a crash never leaves half a lockfile.
    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        crate::fsutil::write_private(path, self.to_toml().as_bytes())
            .map_err(|e| LockError::Write { path: path.to_path_buf(), source: e.source })
    }

    /// What differs between `self` (the lockfile) and `now` (what a run would use).
    pub fn changes(&self, now: &Lock, catalog: &Catalog) -> Vec<Change> {
        let mut changes = Vec::new();
        for (name, current) in &now.plugins {
            let Some(locked) = self.plugins.get(name) else {
                changes.push(Change::Added { plugin: name.clone(), version: current.version.clone(), sha256: current.sha256.clone() });
                continue;
            };
            if locked.version != current.version {
                changes.push(Change::Version { plugin: name.clone(), locked: locked.version.clone(), found: current.version.clone() });
            }
            if locked.sha256 != current.sha256 {
                let path = catalog.plugins.get(name).map(|f| f.plugin.path.clone()).unwrap_or_default();
                changes.push(Change::Digest { plugin: name.clone(), locked: locked.sha256.clone(), found: current.sha256.clone(), path });
            }
            let (before, after) = (grant_items(&locked.grants), grant_items(&current.grants));
            let widened: Vec<String> = after.difference(&before).cloned().collect();
            let narrowed: Vec<String> = before.difference(&after).cloned().collect();
            if !widened.is_empty() || !narrowed.is_empty() {
                changes.push(Change::Grants { plugin: name.clone(), widened, narrowed });
            }
            if let Some(found) = current.source.as_ref().filter(|s| locked.source.as_ref() != Some(*s)) {
                changes.push(Change::Source { plugin: name.clone(), locked: locked.source.clone(), found: found.clone() });
            }
        }
        for name in self.plugins.keys().filter(|n| !now.plugins.contains_key(*n)) {
            changes.push(Change::Removed { plugin: name.clone() });
        }
        changes
    }
}

/// What `run` did with the lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Written { created: bool, changes: Vec<Change> },
    /// `--locked` and only harmless differences: the file was left as it is.
    KeptLocked { changes: Vec<Change> },
}

/// What to do about the lockfile, given the one on disk (if any) and what the run
/// will use. Pure, so the policy is testable on its own.
fn decide(existing: Option<&Lock>, now: &Lock, catalog: &Catalog, locked: bool, path: &Path) -> Result<(Outcome, bool), LockError> {
    let Some(existing) = existing else {
        if locked {
            return Err(LockError::Missing { path: path.to_path_buf() });
        }
        return Ok((Outcome::Written { created: true, changes: Vec::new() }, true));
    };
    let changes = existing.changes(now, catalog);
    if changes.is_empty() {
        return Ok((Outcome::Unchanged, false));
    }
    if locked {
        let refused: Vec<Change> = changes.iter().filter(|c| c.refused_when_locked()).cloned().collect();
        if !refused.is_empty() {
            return Err(LockError::Differs { path: path.to_path_buf(), changes: refused });
        }
        return Ok((Outcome::KeptLocked { changes }, false));
    }
    Ok((Outcome::Written { created: false, changes }, true))
}

/// Compare the project's lockfile with what the run will use. Without `locked`,
/// write it when it is missing or differs; with `locked`, refuse any difference a
/// reviewer has not seen.
pub fn enforce(project: &Project, catalog: &Catalog, locked: bool) -> Result<Outcome, LockError> {
    let path = path(project);
    let mut now = Lock::of(project, catalog);
    let existing = Lock::load(&path)?;
    // A plugin with no recorded source (copied in, say) keeps the one the lock has for
    // the same bytes, so a fresh clone can still fetch it.
    for (name, plugin) in now.plugins.iter_mut().filter(|(_, p)| p.source.is_none()) {
        if let Some(locked) = existing.as_ref().and_then(|l| l.plugins.get(name)).filter(|l| l.sha256 == plugin.sha256) {
            plugin.source = locked.source.clone();
        }
    }
    let (outcome, write) = decide(existing.as_ref(), &now, catalog, locked, &path)?;
    if write {
        now.save(&path)?;
    }
    Ok(outcome)
}

/// `--locked`, or the CI variable (`$CI`) set to `true` or `1`, as CI services set it.
pub fn locked_requested(flag: bool, ci: Option<&str>) -> bool {
    flag || ci.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(sha: &str, grants: Grants) -> LockedPlugin {
        LockedPlugin { version: "0.1.0".into(), sha256: sha.into(), grants_from: "project-file".into(), grants, source: None }
    }

    fn lock(entries: &[(&str, LockedPlugin)]) -> Lock {
        Lock { format: FORMAT, plugins: entries.iter().map(|(n, p)| (n.to_string(), p.clone())).collect() }
    }

    #[test]
    fn changes_name_what_differs() {
        let base = Grants { images: vec!["memcached:1*".into()], publish: vec![11211], ..Grants::default() };
        let wider = Grants { exec: true, images: vec!["memcached:1*".into(), "*".into()], ..base.clone() };
        let narrower = Grants { publish: vec![], ..base.clone() };
        let catalog = Catalog::default();
        // (locked, now, expected change descriptions, refused under --locked)
        let cases: Vec<(Lock, Lock, Vec<&str>, bool)> = vec![
            (lock(&[("m", plugin("aa", base.clone()))]), lock(&[("m", plugin("aa", base.clone()))]), vec![], false),
            (lock(&[]), lock(&[("m", plugin("aa", base.clone()))]), vec!["plugin `m` 0.1.0 (sha256 aa) is not in the lockfile"], true),
            (
                lock(&[("m", plugin("aa", base.clone()))]),
                lock(&[("m", plugin("bb", base.clone()))]),
                vec!["plugin `m`:  has sha256 bb, the lockfile has aa (the file was replaced or altered)"],
                true,
            ),
            (
                lock(&[("m", plugin("aa", base.clone()))]),
                lock(&[("m", plugin("aa", wider))]),
                vec!["plugin `m`: grants widened by exec, images \"*\""],
                true,
            ),
            (
                lock(&[("m", plugin("aa", base.clone()))]),
                lock(&[("m", plugin("aa", narrower))]),
                vec!["plugin `m`: grants narrowed by publish 11211"],
                true,
            ),
            (lock(&[("m", plugin("aa", base.clone()))]), lock(&[]), vec!["plugin `m` is locked but no service uses it any more"], false),
            // Where it comes from is recorded, but the same bytes from elsewhere run the same.
            (
                lock(&[("m", plugin("aa", base.clone()))]),
                lock(&[("m", LockedPlugin { source: Some("oci://r.test/m:1@sha256:ff".into()), ..plugin("aa", base.clone()) })]),
                vec!["plugin `m`: from oci://r.test/m:1@sha256:ff"],
                false,
            ),
        ];
        for (i, (locked, now, expected, refused)) in cases.into_iter().enumerate() {
            let changes = locked.changes(&now, &catalog);
            let shown: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
            assert_eq!(shown, expected, "case {i}");
            assert_eq!(changes.iter().any(|c| c.refused_when_locked()), refused, "case {i}");
        }
    }

    #[test]
    fn the_file_round_trips_and_is_sorted() {
        let grants = normalised(&Grants { images: vec!["b:*".into(), "a:*".into(), "a:*".into()], publish: vec![2, 1], ..Grants::default() });
        assert_eq!(grants.images, vec!["a:*", "b:*"]);
        assert_eq!(grants.publish, vec![1, 2]);
        let sourced = LockedPlugin { source: Some("oci://r.test/zeta:1@sha256:ab".into()), ..plugin("11", grants.clone()) };
        let lock = lock(&[("zeta", sourced), ("alpha", plugin("22", grants))]);
        let text = lock.to_toml();
        assert!(text.find("[plugins.alpha]").unwrap() < text.find("[plugins.zeta]").unwrap(), "{text}");
        assert!(text.contains("source = \"oci://r.test/zeta:1@sha256:ab\"") && text.matches("source =").count() == 1, "{text}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        lock.save(&file).unwrap();
        assert_eq!(Lock::load(&file).unwrap(), Some(lock.clone()));
        assert_eq!(Lock::load(&dir.path().join("none")).unwrap(), None);
        std::fs::write(&file, "format = 9\n").unwrap();
        assert!(Lock::load(&file).unwrap_err().to_string().contains("format 9"));
    }

    #[test]
    fn when_to_write_and_when_to_refuse() {
        let catalog = Catalog::default();
        let base = Grants { exec: true, ..Grants::default() };
        let current = lock(&[("m", plugin("aa", base.clone()))]);
        let changed = lock(&[("m", plugin("bb", base.clone()))]);
        let extra = lock(&[("m", plugin("aa", base.clone())), ("old", plugin("cc", base))]);
        let path = Path::new("provisioner.lock");
        // (on disk, --locked, outcome or error, written)
        let cases: Vec<(Option<&Lock>, bool, &str, bool)> = vec![
            (None, false, "Written { created: true", true),
            (None, true, "there is no", false),
            (Some(&current), false, "Unchanged", false),
            (Some(&current), true, "Unchanged", false),
            (Some(&changed), false, "Written { created: false", true),
            (Some(&changed), true, "the lockfile has bb", false),
            // A plugin no longer used is harmless: not refused, but not rewritten either.
            (Some(&extra), true, "KeptLocked", false),
            (Some(&extra), false, "Written { created: false", true),
        ];
        for (i, (existing, locked, expected, written)) in cases.into_iter().enumerate() {
            match decide(existing, &current, &catalog, locked, path) {
                Ok((outcome, write)) => {
                    assert!(format!("{outcome:?}").contains(expected), "case {i}: {outcome:?}");
                    assert_eq!(write, written, "case {i}");
                }
                Err(e) => assert!(e.to_string().contains(expected) && !written, "case {i}: {e}"),
            }
        }
    }

    #[test]
    fn ci_implies_locked() {
        for (flag, ci, locked) in [
            (false, None, false),
            (true, None, true),
            (false, Some("true"), true),
            (false, Some("TRUE"), true),
            (false, Some("1"), true),
            (false, Some("false"), false),
            (false, Some(""), false),
        ] {
            assert_eq!(locked_requested(flag, ci), locked, "{flag} {ci:?}");
        }
    }

    #[test]
    fn locked_errors_say_how_to_accept() {
        let err = LockError::Differs {
            path: "provisioner.lock".into(),
            changes: vec![Change::Removed { plugin: "m".into() }],
        };
        let text = err.to_string();
        assert!(text.contains("without --locked") && text.contains("CI unset") && text.contains("  - plugin `m`"), "{text}");
    }
}
