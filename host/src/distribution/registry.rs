//! The plugin registry: a static layout that works the same from a folder or an
//! http(s) base URL, so any file server (or a git checkout) can host one.
//!
//! ```text
//! index.json                       every plugin, version, sha256 and file
//! NAME/VERSION/NAME.wasm           the artifact
//! NAME/VERSION/NAME.wasm.sig       `ed25519:PUBLIC SIGNATURE` over name, version, sha256
//! ```
//!
//! The index is not trusted: an install checks the downloaded bytes against the
//! index's sha256 *and* a signature by one of `[registry] trusted_keys` over the
//! name, version and sha256, then checks that the component's own `describe` says the
//! same name and version. Anything else refuses the install and says why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::capabilities::Capability;
use crate::config::RegistrySettings;
use crate::runtime::cache::sha256_hex;
use crate::runtime::{is_valid_name, PluginRuntime};
use crate::distribution::signing::{self, SignatureProblem};
use crate::fsutil;

pub const INDEX: &str = "index.json";
const FORMAT: u32 = 1;
/// Largest artifact or index accepted from a registry: plugins are a few MiB at most.
const MAX_DOWNLOAD: u64 = 64 * 1024 * 1024;

/// `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub format: u32,
    pub plugins: BTreeMap<String, IndexPlugin>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPlugin {
    pub versions: BTreeMap<String, IndexVersion>,
}

/// One published version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexVersion {
    pub sha256: String,
    /// Artifact path relative to the registry root.
    pub file: String,
    /// Signature path relative to the registry root; absent when published unsigned.
    pub signature: Option<String>,
    pub wit_version: String,
    pub summary: String,
    /// What the plugin declares, so a user can judge it before installing.
    pub capabilities: Vec<Capability>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no registry given: pass --registry URL or set `url` under [registry] in provisioner.toml")]
    NoLocation,
    #[error("{location}: cannot fetch {what}: {message}")]
    Fetch { location: String, what: String, message: String },
    #[error("{location}: {INDEX} is not a valid registry index: {message}")]
    BadIndex { location: String, message: String },
    #[error("{location}: no plugin called `{name}` (the registry has: {available})")]
    UnknownPlugin { location: String, name: String, available: String },
    #[error("{location}: plugin `{name}` has no version {version} (published: {available})")]
    UnknownVersion { location: String, name: String, version: String, available: String },
    #[error(
        "refusing {name}@{version}: the downloaded {file} has sha256 {found}, but the index says {expected}. \
         The artifact was altered or the index is stale; nothing was installed"
    )]
    DigestMismatch { name: String, version: String, file: String, expected: String, found: String },
    #[error(
        "refusing {name}@{version}: it is not signed, and [registry] require_signatures is on. Ask the publisher \
         for a signed release, or set require_signatures = false in provisioner.toml to accept unsigned plugins"
    )]
    Unsigned { name: String, version: String },
    #[error(
        "refusing {name}@{version}: no [registry] trusted_keys in provisioner.toml, so no signature can be accepted. \
         Add the publisher's public key (ed25519:…) to trusted_keys"
    )]
    NoTrustedKeys { name: String, version: String },
    #[error("refusing {name}@{version}: {problem}")]
    BadSignature { name: String, version: String, problem: SignatureProblem },
    #[error("refusing {name}@{version}: the component is not a usable plugin: {message}")]
    NotAPlugin { name: String, version: String, message: String },
    #[error("refusing {name}@{version}: the component describes itself as {found}, not as the index says")]
    Mismatch { name: String, version: String, found: String },
    #[error("cannot publish: {0}")]
    Unpublishable(String),
    #[error("`{0}`: write NAME or NAME@VERSION, with NAME in lower-case letters, digits and `-`")]
    BadSpec(String),
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error(transparent)]
    Key(#[from] signing::KeyError),
    #[error(
        "{}: {name} {version} is already published with sha256 {existing}; published versions never change. \
         Bump the plugin's version",
        dir.display()
    )]
    Immutable { dir: PathBuf, name: String, version: String, existing: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RegistryError + '_ {
    move |e| RegistryError::Io { path: path.to_path_buf(), message: e.to_string() }
}

/// Where a registry is: a folder or an http(s) base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Folder(PathBuf),
    Http(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Folder(path) => write!(f, "{}", path.display()),
            Location::Http(url) => f.write_str(url),
        }
    }
}

impl Location {
    /// `text` as given on the command line or in provisioner.toml; a relative folder
    /// is taken relative to `base` (the project's folder).
    pub fn parse(text: &str, base: &Path) -> Location {
        if text.starts_with("http://") || text.starts_with("https://") {
            return Location::Http(text.trim_end_matches('/').to_string());
        }
        let path = Path::new(text.strip_prefix("file://").unwrap_or(text));
        Location::Folder(if path.is_absolute() { path.to_path_buf() } else { base.join(path) })
    }

    /// The file at `relative`, or `None` when the registry has no such file.
    pub fn fetch(&self, relative: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        // Index entries are relative paths inside the registry; never follow one out.
        if relative.split('/').any(|part| part == ".." || part.is_empty()) || relative.starts_with('/') {
            return Err(RegistryError::Fetch {
                location: self.to_string(),
                what: relative.to_string(),
                message: "not a plain relative path inside the registry".into(),
            });
        }
        let fail = |message: String| RegistryError::Fetch { location: self.to_string(), what: relative.to_string(), message };
        match self {
            Location::Folder(dir) => match std::fs::read(dir.join(relative)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(fail(e.to_string())),
            },
            Location::Http(base) => {
                let url = format!("{base}/{relative}");
                match ureq::get(&url).call() {
                    Ok(response) => {
                        let mut bytes = Vec::new();
                        std::io::Read::read_to_end(&mut std::io::Read::take(response.into_reader(), MAX_DOWNLOAD + 1), &mut bytes)
                            .map_err(|e| fail(e.to_string()))?;
                        if bytes.len() as u64 > MAX_DOWNLOAD {
                            return Err(fail(format!("larger than {} MiB", MAX_DOWNLOAD >> 20)));
                        }
                        Ok(Some(bytes))
                    }
                    Err(ureq::Error::Status(404, _)) => Ok(None),
                    Err(e) => Err(fail(e.to_string())),
                }
            }
        }
    }

    pub fn index(&self) -> Result<Index, RegistryError> {
        let bytes = self.fetch(INDEX)?.ok_or_else(|| RegistryError::Fetch {
            location: self.to_string(),
            what: INDEX.into(),
            message: "not found (is this a registry? `provisioner registry publish` creates one)".into(),
        })?;
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadIndex { location: self.to_string(), message: e.to_string() })?;
        if index.format != FORMAT {
            return Err(RegistryError::BadIndex { location: self.to_string(), message: format!("format {} (this provisioner reads {FORMAT})", index.format) });
        }
        Ok(index)
    }
}

/// Where plugins are looked up by name: a registry with an index (a folder or an
/// HTTP tree), or an OCI registry prefix under which each plugin is a repository of its
/// own name (`oci://ghcr.io/acme/plugins` holds `oci://ghcr.io/acme/plugins/memcached:0.1.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Index(Location),
    Oci(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Index(location) => location.fmt(f),
            Origin::Oci(prefix) => f.write_str(prefix),
        }
    }
}

/// The registry to use: `--registry` (a folder relative to the current folder, like
/// any command-line path), else `[registry] url` (a folder relative to the file);
/// either may be an `oci://REGISTRY/PREFIX`.
pub fn location(flag: Option<&str>, settings: &RegistrySettings, project_root: &Path) -> Result<Origin, RegistryError> {
    let oci = |text: &str| crate::distribution::oci::OciRef::is_oci(text).then(|| Origin::Oci(text.trim_end_matches('/').to_string()));
    if let Some(text) = flag {
        if let Some(origin) = oci(text) {
            return Ok(origin);
        }
        let here = std::env::current_dir().map_err(|e| RegistryError::Io { path: PathBuf::from("."), message: e.to_string() })?;
        return Ok(Origin::Index(Location::parse(text, &here)));
    }
    let text = settings.url.as_deref().ok_or(RegistryError::NoLocation)?;
    Ok(oci(text).unwrap_or_else(|| Origin::Index(Location::parse(text, project_root))))
}

/// `NAME` or `NAME@VERSION`.
pub fn parse_spec(spec: &str) -> Result<(String, Option<String>), RegistryError> {
    let (name, version) = match spec.split_once('@') {
        Some((name, version)) if !version.is_empty() => (name, Some(version.to_string())),
        Some(_) => return Err(RegistryError::BadSpec(spec.into())),
        None => (spec, None),
    };
    if !is_valid_name(name) {
        return Err(RegistryError::BadSpec(spec.into()));
    }
    Ok((name.to_string(), version))
}

/// Versions compared by their numeric parts (`0.10.0` > `0.9.1`), then as text.
pub(crate) fn version_key(version: &str) -> (Vec<u64>, String) {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    (core.split('.').map(|p| p.parse().unwrap_or(0)).collect(), version.to_string())
}

impl Index {
    /// The entry for `name` at `version`, or at its newest version.
    pub fn find(&self, location: &Location, name: &str, version: Option<&str>) -> Result<(String, IndexVersion), RegistryError> {
        let plugin = self.plugins.get(name).ok_or_else(|| RegistryError::UnknownPlugin {
            location: location.to_string(),
            name: name.to_string(),
            available: if self.plugins.is_empty() { "nothing".into() } else { self.plugins.keys().cloned().collect::<Vec<_>>().join(", ") },
        })?;
        let chosen = match version {
            Some(v) => plugin.versions.get_key_value(v),
            None => plugin.versions.iter().max_by_key(|(v, _)| version_key(v)),
        };
        chosen.map(|(v, entry)| (v.clone(), entry.clone())).ok_or_else(|| RegistryError::UnknownVersion {
            location: location.to_string(),
            name: name.to_string(),
            version: version.unwrap_or("any").to_string(),
            available: plugin.versions.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

/// How an artifact's signature turned out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "signature", content = "by")]
pub enum SignatureStatus {
    /// Signed by this trusted key.
    Trusted(String),
    /// Unsigned or unchecked, accepted because require_signatures is off.
    NotRequired,
}

/// A fetched artifact that passed every check.
pub struct Verified {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
    pub signature: SignatureStatus,
}

/// Fetch `name` (at `version`, or the newest) and check digest, signature and identity.
pub fn fetch_verified(
    location: &Location,
    settings: &RegistrySettings,
    runtime: &PluginRuntime,
    name: &str,
    version: Option<&str>,
) -> Result<Verified, RegistryError> {
    let index = location.index()?;
    let (version, entry) = index.find(location, name, version)?;
    let bytes = location.fetch(&entry.file)?.ok_or_else(|| RegistryError::Fetch {
        location: location.to_string(),
        what: entry.file.clone(),
        message: "listed in the index but missing".into(),
    })?;
    let sha256 = sha256_hex(&bytes);
    if sha256 != entry.sha256 {
        return Err(RegistryError::DigestMismatch {
            name: name.into(),
            version,
            file: entry.file.clone(),
            expected: entry.sha256.clone(),
            found: sha256,
        });
    }
    let signature = check_signature(location, settings, name, &version, &entry)?;
    // The index is only a pointer: the component itself must say it is what we asked for.
    let plugin = runtime
        .load_bytes(Path::new(&entry.file), &bytes)
        .map_err(|e| RegistryError::NotAPlugin { name: name.into(), version: version.clone(), message: e.to_string() })?;
    if plugin.info.name != name || plugin.info.version != version {
        return Err(RegistryError::Mismatch {
            name: name.into(),
            version,
            found: format!("{} {}", plugin.info.name, plugin.info.version),
        });
    }
    Ok(Verified { name: name.into(), version, sha256, bytes, signature })
}

pub fn check_signature(
    location: &Location,
    settings: &RegistrySettings,
    name: &str,
    version: &str,
    entry: &IndexVersion,
) -> Result<SignatureStatus, RegistryError> {
    let sig_file = match &entry.signature {
        Some(path) => location.fetch(path)?,
        None => None,
    };
    judge_signature(settings, name, version, &entry.sha256, sig_file.as_deref())
}

/// The one signature policy, whatever the registry: `sig_file` (the `.sig` text, if
/// the artifact has one) against `[registry] trusted_keys` and `require_signatures`.
pub fn judge_signature(
    settings: &RegistrySettings,
    name: &str,
    version: &str,
    sha256: &str,
    sig_file: Option<&[u8]>,
) -> Result<SignatureStatus, RegistryError> {
    let trusted = settings.trusted_keys.iter().map(|k| signing::parse_public_key(k)).collect::<Result<Vec<_>, _>>()?;
    match sig_file {
        None if settings.require_signatures => Err(RegistryError::Unsigned { name: name.into(), version: version.into() }),
        None => {
            tracing::warn!(plugin = name, version, "installing an unsigned plugin: [registry] require_signatures is off");
            Ok(SignatureStatus::NotRequired)
        }
        Some(_) if trusted.is_empty() && settings.require_signatures => {
            Err(RegistryError::NoTrustedKeys { name: name.into(), version: version.into() })
        }
        Some(_) if trusted.is_empty() => {
            tracing::warn!(plugin = name, version, "signature not checked: no [registry] trusted_keys");
            Ok(SignatureStatus::NotRequired)
        }
        Some(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            // A present but bad signature is refused even when signatures are optional:
            // it means someone tampered with something.
            signing::verify(&text, &trusted, name, version, sha256)
                .map(SignatureStatus::Trusted)
                .map_err(|problem| RegistryError::BadSignature { name: name.into(), version: version.into(), problem })
        }
    }
}

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub path: PathBuf,
    pub signature: SignatureStatus,
    /// False when the same file was already there.
    pub changed: bool,
}

/// Install `name[@version]` from `location` into `plugins_dir` as `NAME.wasm`.
pub fn install(
    location: &Location,
    settings: &RegistrySettings,
    runtime: &PluginRuntime,
    spec: &str,
    plugins_dir: &Path,
) -> Result<Installed, RegistryError> {
    let (name, version) = parse_spec(spec)?;
    let (verified, signature) = fetch_with_signature(location, settings, runtime, &name, version.as_deref())?;
    place(verified, signature.as_deref(), None, plugins_dir)
}

/// `fetch_verified`, and the signature that vouched for it (to keep beside it).
pub fn fetch_with_signature(
    location: &Location,
    settings: &RegistrySettings,
    runtime: &PluginRuntime,
    name: &str,
    version: Option<&str>,
) -> Result<(Verified, Option<Vec<u8>>), RegistryError> {
    let verified = fetch_verified(location, settings, runtime, name, version)?;
    let signature = match (&verified.signature, location.index()?.find(location, name, Some(&verified.version))) {
        (SignatureStatus::Trusted(_), Ok((_, entry))) => match entry.signature.as_deref().map(|f| location.fetch(f)) {
            Some(Ok(Some(sig))) => Some(sig),
            _ => None,
        },
        _ => None,
    };
    Ok((verified, signature))
}

/// Put a verified plugin into `plugins_dir` as `NAME.wasm`, with its signature (kept
/// only when it was trusted) and where it came from beside it.
pub fn place(verified: Verified, signature: Option<&[u8]>, source: Option<&Source>, plugins_dir: &Path) -> Result<Installed, RegistryError> {
    let path = plugins_dir.join(format!("{}.wasm", verified.name));
    let changed = std::fs::read(&path).map(|old| sha256_hex(&old) != verified.sha256).unwrap_or(true);
    if changed {
        std::fs::create_dir_all(plugins_dir).map_err(io(plugins_dir))?;
        write_atomically(&path, &verified.bytes)?;
    }
    // The signature goes beside the plugin, so `plugins list` can say who signed it
    // long after the install, without the registry.
    let sig_path = signature_path(&path);
    match (&verified.signature, signature) {
        (SignatureStatus::Trusted(_), Some(sig)) => write_atomically(&sig_path, sig)?,
        _ => {
            let _ = std::fs::remove_file(&sig_path);
        }
    }
    // Where it came from goes beside it too, so the next run can record it in
    // provisioner.lock and a fresh clone can fetch it again.
    let source_path = source_path(&path);
    match source {
        Some(source) => {
            let text = serde_json::to_string_pretty(source).map_err(|e| RegistryError::Io { path: source_path.clone(), message: e.to_string() })?;
            write_atomically(&source_path, format!("{text}\n").as_bytes())?;
        }
        None => {
            let _ = std::fs::remove_file(&source_path);
        }
    }
    Ok(Installed { name: verified.name, version: verified.version, sha256: verified.sha256, path, signature: verified.signature, changed })
}

/// Where an installed plugin came from, kept beside it as `NAME.wasm.source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The reference it was fetched by, pinned: `oci://REGISTRY/REPO:TAG@sha256:…`.
    pub source: String,
    /// The sha256 of the `.wasm` it describes: a file replaced since has no source.
    pub sha256: String,
    pub version: String,
}

pub fn source_path(plugin: &Path) -> PathBuf {
    let mut name = plugin.as_os_str().to_os_string();
    name.push(".source");
    PathBuf::from(name)
}

/// Where the plugin file `plugin` (whose sha256 is `sha256`) came from, if `install`
/// recorded it and the file is still the one installed.
pub fn installed_source(plugin: &Path, sha256: &str) -> Option<String> {
    let bytes = std::fs::read(source_path(plugin)).ok()?;
    let source: Source = serde_json::from_slice(&bytes).ok()?;
    (source.sha256 == sha256).then_some(source.source)
}

/// Where `install` keeps the signature of an installed plugin: `NAME.wasm.sig`.
pub fn signature_path(plugin: &Path) -> PathBuf {
    let mut name = plugin.as_os_str().to_os_string();
    name.push(".sig");
    PathBuf::from(name)
}

/// Who signed an installed plugin, from the signature `install` kept beside it, checked
/// against `trusted_keys`: `Ok(Some(key))`, `Ok(None)` when it has none, or why the one
/// it has does not hold (another key, other bytes).
pub fn installed_signature(plugin: &Path, trusted_keys: &[String], name: &str, version: &str, sha256: &str) -> Result<Option<String>, String> {
    let Ok(text) = std::fs::read_to_string(signature_path(plugin)) else { return Ok(None) };
    let trusted = trusted_keys.iter().filter_map(|k| signing::parse_public_key(k).ok()).collect::<Vec<_>>();
    signing::verify(&text, &trusted, name, version, sha256).map(Some).map_err(|problem| problem.to_string())
}

/// Artifacts and plugins are meant to be read by others (a web server, the host
/// under another user), hence shared rather than private.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    fsutil::write_atomic(path, bytes, fsutil::SHARED_FILE, fsutil::Parent::Create)
        .map_err(|e| RegistryError::Io { path: e.path, message: e.source.to_string() })
}

/// What `publish` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub file: String,
    pub signed_by: Option<String>,
}

/// Add `wasm` to the registry folder `dir`, signed with the private key in `key`
/// (unsigned when `None`). Published versions are immutable: republishing the same
/// bytes is a no-op apart from the signature, different bytes are refused.
pub fn publish(dir: &Path, wasm: &Path, key: Option<&Path>, runtime: &PluginRuntime) -> Result<Published, RegistryError> {
    let bytes = std::fs::read(wasm).map_err(io(wasm))?;
    // LoadError already names the file.
    let plugin = runtime.load_bytes(wasm, &bytes).map_err(|e| RegistryError::Unpublishable(e.to_string()))?;
    let info = &plugin.info;
    let index_path = dir.join(INDEX);
    let mut index = match std::fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice::<Index>(&bytes)
            .map_err(|e| RegistryError::BadIndex { location: dir.display().to_string(), message: e.to_string() })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index { format: FORMAT, plugins: BTreeMap::new() },
        Err(e) => return Err(io(&index_path)(e)),
    };
    if let Some(existing) = index.plugins.get(&info.name).and_then(|p| p.versions.get(&info.version)) {
        if existing.sha256 != plugin.sha256 {
            return Err(RegistryError::Immutable {
                dir: dir.to_path_buf(),
                name: info.name.clone(),
                version: info.version.clone(),
                existing: existing.sha256.clone(),
            });
        }
    }
    let file = format!("{0}/{1}/{0}.wasm", info.name, info.version);
    let target = dir.join(&file);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    write_atomically(&target, &bytes)?;
    let (signature, signed_by) = match key {
        Some(key) => {
            let secret = signing::load_secret(key)?;
            let sig_file = format!("{file}.sig");
            write_atomically(&dir.join(&sig_file), signing::sign(&secret, &info.name, &info.version, &plugin.sha256).as_bytes())?;
            (Some(sig_file), Some(signing::public_key_text(&secret.verifying_key())))
        }
        None => (None, None),
    };
    index.plugins.entry(info.name.clone()).or_default().versions.insert(
        info.version.clone(),
        IndexVersion {
            sha256: plugin.sha256.clone(),
            file: file.clone(),
            signature,
            wit_version: info.wit_version.clone(),
            summary: info.summary.clone(),
            capabilities: info.capabilities.clone(),
        },
    );
    let text = serde_json::to_string_pretty(&index).map_err(|e| RegistryError::Io { path: index_path.clone(), message: e.to_string() })?;
    write_atomically(&index_path, format!("{text}\n").as_bytes())?;
    Ok(Published { name: info.name.clone(), version: info.version.clone(), sha256: plugin.sha256.clone(), file, signed_by })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_locations() {
        let cases = [
            ("memcached", Some(("memcached", None))),
            ("memcached@0.2.0", Some(("memcached", Some("0.2.0")))),
            ("memcached@", None),
            ("Mem", None),
            ("", None),
        ];
        for (spec, expected) in cases {
            let parsed = parse_spec(spec).ok();
            let expected = expected.map(|(n, v): (&str, Option<&str>)| (n.to_string(), v.map(str::to_string)));
            assert_eq!(parsed, expected, "{spec}");
        }
        let base = Path::new("/project");
        assert_eq!(Location::parse("registry", base), Location::Folder("/project/registry".into()));
        assert_eq!(Location::parse("/srv/reg", base), Location::Folder("/srv/reg".into()));
        assert_eq!(Location::parse("file:///srv/reg", base), Location::Folder("/srv/reg".into()));
        assert_eq!(Location::parse("https://x.test/reg/", base), Location::Http("https://x.test/reg".into()));
        let folder = Location::Folder("/nonexistent".into());
        assert!(folder.fetch("../etc/passwd").unwrap_err().to_string().contains("plain relative path"));
        assert_eq!(folder.fetch("a/b.wasm").unwrap(), None);
    }

    #[test]
    fn the_newest_version_wins_numerically() {
        let entry = IndexVersion {
            sha256: String::new(),
            file: String::new(),
            signature: None,
            wit_version: "0.1.0".into(),
            summary: String::new(),
            capabilities: Vec::new(),
        };
        let versions = ["0.9.1", "0.10.0", "0.2.0"].iter().map(|v| (v.to_string(), entry.clone())).collect();
        let index = Index { format: FORMAT, plugins: [("m".to_string(), IndexPlugin { versions })].into() };
        let at = Location::Folder("/r".into());
        assert_eq!(index.find(&at, "m", None).unwrap().0, "0.10.0");
        assert_eq!(index.find(&at, "m", Some("0.2.0")).unwrap().0, "0.2.0");
        assert!(index.find(&at, "m", Some("1.0.0")).unwrap_err().to_string().contains("published: 0.10.0, 0.2.0, 0.9.1"));
        assert!(index.find(&at, "x", None).unwrap_err().to_string().contains("has: m"));
    }
}
