//! Drop-in trust: what the host tells an operator about a plugin it did not ship.
//! A `.wasm` copied into the project's `plugins/` runs with nothing granted until
//! `[plugins.NAME.grants]` says otherwise; this module turns what a plugin declares
//! into the exact TOML that grants it, labels each plugin's trust for `plugins list`,
//! and checks installed plugins against the lockfile and the registry
//! (`plugins verify`).

use std::path::PathBuf;

use serde::Serialize;

use crate::capabilities::{Capability, Grants};
use crate::config::{Project, RegistrySettings, FILE_NAME};
use crate::discovery::{Catalog, GrantSource, Source};
use crate::distribution::lock::Lock;
use crate::distribution::registry::{self, Origin};

/// How far the host trusts a plugin, for `plugins list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// A first-party plugin from the host's own folder, under its default policy.
    FirstParty,
    /// The operator granted it in provisioner.toml.
    Granted,
    /// Nobody vouched for it: it runs with nothing granted.
    Unverified,
}

pub fn trust(source: GrantSource) -> Trust {
    match source {
        GrantSource::FirstPartyDefault => Trust::FirstParty,
        GrantSource::ProjectFile => Trust::Granted,
        GrantSource::None => Trust::Unverified,
    }
}

/// The `[plugins.NAME.grants]` table that grants everything `declared`, ready to
/// paste into provisioner.toml.
pub fn grants_toml(plugin: &str, declared: &[Capability]) -> String {
    let grants = Grants::all_of(declared);
    let quoted = |items: &[String]| items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    let mut lines = vec![format!("[plugins.{plugin}.grants]")];
    if !grants.images.is_empty() {
        lines.push(format!("images = [{}]", quoted(&grants.images)));
    }
    if !grants.publish.is_empty() {
        lines.push(format!("publish = [{}]", grants.publish.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")));
    }
    if !grants.volumes.is_empty() {
        lines.push(format!("volumes = [{}]", quoted(&grants.volumes)));
    }
    for (on, key) in [(grants.exec, "exec"), (grants.net_probe, "net_probe"), (grants.state_files, "state_files"), (grants.secrets, "secrets")] {
        if on {
            lines.push(format!("{key} = true"));
        }
    }
    lines.join("\n")
}

/// For each plugin in `plugins` that ran with capabilities it declared but was not
/// granted: what to add to provisioner.toml. Empty when there is nothing to say.
pub fn grant_advice<'a>(catalog: &Catalog, project: &Project, plugins: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = plugins.into_iter().collect();
    names.sort();
    names.dedup();
    let mut out = String::new();
    for name in names {
        let Some(found) = catalog.plugins.get(name) else { continue };
        let (grants, _) = catalog.grants(name, Some(project));
        let missing: Vec<&Capability> = found.plugin.info.capabilities.iter().filter(|c| grants.status(c) != crate::capabilities::GrantStatus::Granted).collect();
        if missing.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\nplugin `{name}` ({}) asked for capabilities it was not granted. To grant everything it declares, \
             put this in {} (and review what each line allows with `provisioner plugins inspect {name}`):\n\n{}\n",
            found.plugin.path.display(),
            project.file.display(),
            grants_toml(name, &found.plugin.info.capabilities)
        ));
    }
    out
}

/// The text `plugins grant` appends to provisioner.toml: what each line allows, as
/// comments, then the table.
pub fn grant_block(plugin: &str, declared: &[Capability]) -> String {
    let mut text = format!("\n# Granted with `provisioner plugins grant {plugin}`: everything it declares, which is:\n");
    for capability in declared {
        text.push_str(&format!("#   {capability}: {}\n", capability.meaning()));
    }
    text.push_str(&grants_toml(plugin, declared));
    text.push('\n');
    text
}

/// Append the grants table for everything `plugin` declares to the project file.
/// Refuses when the file already has one (editing it is a human's call), and puts the
/// file back if the result would not load.
pub fn grant_in_file(project: &Project, plugin: &str, declared: &[Capability]) -> anyhow::Result<String> {
    use anyhow::Context as _;
    if project.grants(plugin).is_some() {
        anyhow::bail!(
            "{} already has [plugins.{plugin}.grants]; edit it there. Everything the plugin declares would be:\n\n{}",
            project.file.display(),
            grants_toml(plugin, declared)
        );
    }
    let original = std::fs::read_to_string(&project.file).with_context(|| format!("reading {}", project.file.display()))?;
    let block = grant_block(plugin, declared);
    let separator = if original.ends_with('\n') || original.is_empty() { "" } else { "\n" };
    std::fs::write(&project.file, format!("{original}{separator}{block}")).with_context(|| format!("writing {}", project.file.display()))?;
    if let Err(e) = Project::load(&project.file) {
        std::fs::write(&project.file, &original).with_context(|| format!("restoring {}", project.file.display()))?;
        anyhow::bail!("adding the grants would break {}: {e}; the file is unchanged", project.file.display());
    }
    Ok(block)
}

/// One installed plugin checked against the lockfile and the registry.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRow {
    pub plugin: String,
    pub version: String,
    pub sha256: String,
    pub path: PathBuf,
    /// `matches`, `not locked`, or what differs.
    pub lock: String,
    /// `signed by KEY`, `not checked` (no registry), or why it is not verified.
    pub registry: String,
    pub ok: bool,
}

/// Check every plugin of the project's own `plugins/` folder (and every other plugin
/// the lockfile names) against the lockfile and, when one is configured, the registry.
pub fn verify(project: &Project, catalog: &Catalog, origin: Option<&Origin>, settings: &RegistrySettings) -> Result<Vec<VerifyRow>, crate::distribution::lock::LockError> {
    let lock = Lock::load(&crate::distribution::lock::path(project))?;
    let (location, prefix) = match origin {
        Some(Origin::Index(location)) => (Some(location), None),
        Some(Origin::Oci(prefix)) => (None, Some(prefix.as_str())),
        None => (None, None),
    };
    let index = location.map(|l| l.index());
    let mut rows = Vec::new();
    for (name, found) in &catalog.plugins {
        let locked = lock.as_ref().and_then(|l| l.plugins.get(name));
        if found.source != Source::Project && locked.is_none() {
            continue;
        }
        let plugin = &found.plugin;
        let mut ok = true;
        let lock_status = match locked {
            Some(entry) if entry.sha256 == plugin.sha256 && entry.version == plugin.info.version => "matches".to_string(),
            Some(entry) => {
                ok = false;
                format!("DIFFERS: locked {} sha256 {}", entry.version, entry.sha256)
            }
            None => "not locked (the next `run` that uses it adds it)".to_string(),
        };
        let registry_status = match (&index, location) {
            // The host's own plugins come with the host, not from the project's
            // registry: the lockfile pins their digest, and that is the check.
            _ if found.source == Source::Builtin => {
                "first-party, from the host's own folder (not looked up in the registry; the lock pins its digest)".to_string()
            }
            (Some(Ok(index)), Some(location)) => match index.find(location, name, Some(&plugin.info.version)) {
                Ok((version, entry)) if entry.sha256 == plugin.sha256 => {
                    match registry::check_signature(location, settings, name, &version, &entry) {
                        Ok(registry::SignatureStatus::Trusted(key)) => format!("verified, signed by {key}"),
                        Ok(registry::SignatureStatus::NotRequired) => "digest matches; signature not checked".to_string(),
                        Err(e) => {
                            ok = false;
                            format!("NOT VERIFIED: {e}")
                        }
                    }
                }
                Ok((_, entry)) => {
                    ok = false;
                    format!("DIFFERS from the registry's sha256 {}", entry.sha256)
                }
                Err(e) => {
                    ok = false;
                    format!("NOT VERIFIED: {e}")
                }
            },
            (Some(Err(e)), _) => {
                ok = false;
                format!("registry unreadable: {e}")
            }
            _ => match prefix {
                Some(prefix) => {
                    let (fine, text) = verify_at_prefix(prefix, name, plugin, settings);
                    ok &= fine;
                    text
                }
                None => "not checked (no registry configured)".to_string(),
            },
        };
        rows.push(VerifyRow {
            plugin: name.clone(),
            version: plugin.info.version.clone(),
            sha256: plugin.sha256.clone(),
            path: plugin.path.clone(),
            lock: lock_status,
            registry: registry_status,
            ok,
        });
    }
    // A locked plugin that is nowhere to be found cannot be verified either.
    if let Some(lock) = &lock {
        for (name, entry) in lock.plugins.iter().filter(|(n, _)| !catalog.plugins.contains_key(*n)) {
            rows.push(VerifyRow {
                plugin: name.clone(),
                version: entry.version.clone(),
                sha256: entry.sha256.clone(),
                path: PathBuf::new(),
                lock: format!("MISSING: locked but not found on the plugin search path (install it, or remove its service from {FILE_NAME})"),
                registry: String::new(),
                ok: false,
            });
        }
    }
    Ok(rows)
}

/// `plugins verify` of one installed plugin against `[registry] url = "oci://PREFIX"`:
/// the repository of its name, at its version. Whether it is fine, and what to show.
fn verify_at_prefix(prefix: &str, name: &str, plugin: &crate::runtime::LoadedPlugin, settings: &RegistrySettings) -> (bool, String) {
    use crate::distribution::oci::{self, Checked};
    let checked = oci::by_name(prefix, name, Some(&plugin.info.version), settings)
        .and_then(|reference| oci::check(&reference, settings, name, &plugin.info.version, &plugin.sha256).map(|c| (reference, c)));
    match checked {
        Ok((reference, Checked::Matches(registry::SignatureStatus::Trusted(key)))) => (true, format!("verified against {reference}, signed by {key}")),
        Ok((reference, Checked::Matches(registry::SignatureStatus::NotRequired))) => (true, format!("digest matches {reference}; signature not checked")),
        Ok((reference, Checked::Differs(sha256))) => (false, format!("DIFFERS from {reference}, whose sha256 is {sha256}")),
        Err(e) => (false, format!("NOT VERIFIED: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_tables_are_exact_toml() {
        let declared = vec![
            Capability::Image("memcached:1*".into()),
            Capability::Image("*/memcached:1*".into()),
            Capability::Publish(11211),
            Capability::NetProbe,
            Capability::Secrets,
        ];
        let text = grants_toml("memcached", &declared);
        assert_eq!(
            text,
            "[plugins.memcached.grants]\nimages = [\"memcached:1*\", \"*/memcached:1*\"]\npublish = [11211]\nnet_probe = true\nsecrets = true"
        );
        // It parses as exactly the grants that cover every declared capability.
        let table: toml::Table = toml::from_str(&text).unwrap();
        let grants: Grants = table["plugins"]["memcached"]["grants"].clone().try_into().unwrap();
        for capability in &declared {
            assert_eq!(grants.status(capability), crate::capabilities::GrantStatus::Granted, "{capability}");
        }
        assert_eq!(grants_toml("x", &[]), "[plugins.x.grants]");
    }

    #[test]
    fn granting_appends_once_and_the_file_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, "[project]\nname = \"p\"").unwrap();
        let declared = vec![Capability::Image("m:1*".into()), Capability::Exec];
        let project = Project::load(&file).unwrap();
        let block = grant_in_file(&project, "m", &declared).unwrap();
        assert!(block.contains("#   exec: run commands inside its own containers"), "{block}");
        let project = Project::load(&file).unwrap();
        assert_eq!(project.grants("m"), Some(&Grants::all_of(&declared)));
        let again = grant_in_file(&project, "m", &declared).unwrap_err().to_string();
        assert!(again.contains("already has [plugins.m.grants]"), "{again}");
    }

    #[test]
    fn trust_follows_the_grant_source() {
        for (source, expected) in [
            (GrantSource::None, Trust::Unverified),
            (GrantSource::ProjectFile, Trust::Granted),
            (GrantSource::FirstPartyDefault, Trust::FirstParty),
        ] {
            assert_eq!(trust(source), expected);
        }
    }
}
