//! Plugins as OCI artifacts: `oci://REGISTRY/REPO:TAG` (or `@sha256:…`) in the
//! standard wasm OCI layout that `wkg oci push` writes, so any OCI registry (GHCR,
//! Docker Hub, Harbor, ECR, a `registry:2`) can hold them.
//!
//! ```text
//! manifest  application/vnd.oci.image.manifest.v1+json, annotations: name, version,
//!           WIT version, summary and capabilities (what `plugins inspect oci://…` shows)
//!   config  application/vnd.wasm.config.v0+json
//!   layer   application/wasm                         the component
//! signature an artifact manifest whose `subject` is the plugin's manifest (found through
//!           the referrers API), also tagged `sha256-<hex>.sig` as cosign does, for
//!           registries without that API (distribution 2.x)
//!   layer   application/vnd.provisioner.plugin.signature.v1   the `.sig` text
//! ```
//!
//! The signature is the folder registry's ed25519 signature over the plugin's name,
//! version and the sha256 of the component itself, so the same `[registry]
//! trusted_keys` and `require_signatures` decide, in the same words
//! (`registry::judge_signature`). It binds what runs, not the manifest: the
//! annotations are only a preview, and an install checks them against the
//! component's own `describe`.
//!
//! Credentials come from Docker's config (`DOCKER_CONFIG` or `~/.docker/config.json`,
//! credential helpers included) and are never logged. Plain HTTP is used only for
//! loopback registries and those listed in `[registry] insecure`.

use std::collections::BTreeMap;
use std::path::Path;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::Reference;
use serde::Serialize;

use crate::capabilities::Capability;
use crate::config::RegistrySettings;
use crate::distribution::registry::{self, RegistryError, SignatureStatus, Verified};
use crate::distribution::signing;
use crate::runtime::cache::sha256_hex;
use crate::runtime::PluginRuntime;

mod publish;
mod session;

pub use publish::{push, sign, Pushed};
use session::Session;

pub const SCHEME: &str = "oci://";
pub const WASM_LAYER: &str = "application/wasm";
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The artifact type of a signature, and the media type of its one layer.
pub const SIGNATURE: &str = "application/vnd.provisioner.plugin.signature.v1";
/// The OCI "empty" config of an artifact that has no config: the two bytes `{}`.
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

/// Annotation keys: the OCI ones a registry UI shows, and ours for the rest.
pub const TITLE: &str = "org.opencontainers.image.title";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
pub const WIT_VERSION: &str = "dev.provisioner.plugin.wit-version";
pub const CAPABILITIES: &str = "dev.provisioner.plugin.capabilities";

/// Largest component accepted: plugins are a few MiB at most.
const MAX_COMPONENT: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "`{text}`: not an OCI reference: {reason}. Write oci://REGISTRY/REPOSITORY:TAG or \
         oci://REGISTRY/REPOSITORY@sha256:DIGEST, e.g. oci://ghcr.io/acme/plugins/memcached:0.1.0"
    )]
    BadReference { text: String, reason: String },
    #[error(
        "{registry}: cannot read the credentials for it from {config}: {reason}. Fix the file, or `docker login {registry}` again"
    )]
    Credentials { registry: String, config: String, reason: String },
    #[error("{reference}: {what}: {message}{hint}")]
    Registry { reference: String, what: String, message: String, hint: String },
    #[error("{reference}: not a wasm component artifact: {reason}")]
    NotAComponent { reference: String, reason: String },
    #[error(
        "refusing {reference}: the component blob has sha256 {found}, but the manifest says {expected}. \
         The blob was altered in the registry; nothing was installed"
    )]
    BlobAltered { reference: String, expected: String, found: String },
    #[error("{reference}: the annotations say {annotated}, but the component describes itself as {described}; refusing it")]
    AnnotationsLie { reference: String, annotated: String, described: String },
    #[error("{prefix}: no plugin called `{name}` (no repository {prefix}/{name}: {message})")]
    UnknownPlugin { prefix: String, name: String, message: String },
    #[error("{repository}: no version tag to install (tags: {tags}); name one with NAME@VERSION")]
    NoVersion { repository: String, tags: String },
    #[error(transparent)]
    Verify(#[from] RegistryError),
    #[error("{0}")]
    Runtime(String),
}

/// A parsed `oci://` reference. The registry must be named: a bare `acme/plugins`
/// would silently mean Docker Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    reference: Reference,
}

impl OciRef {
    pub fn parse(text: &str) -> Result<OciRef, OciError> {
        let bad = |reason: &str| OciError::BadReference { text: text.to_string(), reason: reason.to_string() };
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| bad("it does not start with oci://"))?;
        let (registry, path) = rest.split_once('/').ok_or_else(|| bad("no repository after the registry"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad("the first part must be a registry host (with a dot or a port, or localhost)"));
        }
        if path.is_empty() {
            return Err(bad("no repository after the registry"));
        }
        // The parser would quietly add `latest`; a plugin reference names its version.
        let last = path.rsplit('/').next().unwrap_or(path);
        if !(last.contains(':') || last.contains('@')) {
            return Err(bad("no :TAG or @sha256:DIGEST (there is no implicit `latest`)"));
        }
        let reference: Reference = rest.parse().map_err(|e: oci_client::ParseError| bad(&e.to_string()))?;
        Ok(OciRef { reference })
    }

    pub fn is_oci(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    pub fn registry(&self) -> &str {
        self.reference.resolve_registry()
    }

    pub fn digest(&self) -> Option<&str> {
        self.reference.digest()
    }

    /// The same repository and tag, pinned to `digest`.
    pub fn pinned(&self, digest: &str) -> OciRef {
        let r = &self.reference;
        let reference = match r.tag() {
            Some(tag) => Reference::with_tag_and_digest(r.registry().into(), r.repository().into(), tag.into(), digest.into()),
            None => Reference::with_digest(r.registry().into(), r.repository().into(), digest.into()),
        };
        OciRef { reference }
    }

    /// The repository at another tag (the signature's `sha256-<hex>.sig`).
    fn at_tag(&self, tag: &str) -> OciRef {
        let r = &self.reference;
        OciRef { reference: Reference::with_tag(r.registry().into(), r.repository().into(), tag.into()) }
    }

    /// What to fetch: by digest when pinned, so a moved tag cannot change it.
    fn fetchable(&self) -> Reference {
        match self.reference.digest() {
            Some(digest) => Reference::with_digest(self.reference.registry().into(), self.reference.repository().into(), digest.into()),
            None => self.reference.clone(),
        }
    }
}

impl std::fmt::Display for OciRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}", self.reference.whole())
    }
}

/// The cosign-style tag that holds the signature of the manifest `digest`.
fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// Whether `registry` may be spoken to over plain HTTP: loopback, or listed in
/// `[registry] insecure` (a registry on a private network without TLS).
pub fn allows_http(registry: &str, insecure: &[String]) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || insecure.iter().any(|i| i == registry || i == host)
}

/// What a plugin artifact says about itself, before anything is downloaded but the
/// manifest and its signatures.
#[derive(Debug, Clone, Serialize)]
pub struct Remote {
    /// The reference, pinned to the manifest's digest.
    pub reference: String,
    pub manifest_digest: String,
    /// The component's sha256 (hex), from the manifest's layer descriptor.
    pub sha256: String,
    pub size: i64,
    pub name: Option<String>,
    pub version: Option<String>,
    pub wit_version: Option<String>,
    pub summary: Option<String>,
    /// From the annotations: what it will ask for. `None` when it was pushed without
    /// them (by `wkg`, say); the install still checks its `describe`.
    pub capabilities: Option<Vec<Capability>>,
    pub annotations: BTreeMap<String, String>,
    /// How its signature turned out against this project's `[registry]`.
    pub signature: String,
}

/// The component layer of a plugin manifest.
fn component_layer<'m>(reference: &OciRef, manifest: &'m OciImageManifest) -> Result<&'m OciDescriptor, OciError> {
    let not = |reason: String| OciError::NotAComponent { reference: reference.to_string(), reason };
    if manifest.config.media_type != WASM_CONFIG {
        return Err(not(format!("its config is {}, not {WASM_CONFIG} (is this a container image?)", manifest.config.media_type)));
    }
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == WASM_LAYER => Ok(layer),
        layers => Err(not(format!(
            "expected one {WASM_LAYER} layer, found {}",
            layers.iter().map(|l| l.media_type.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn resolve(session: &Session) -> Result<(OciImageManifest, String, OciDescriptor), OciError> {
    let reference = &session.reference;
    let (manifest, digest, _) = session.manifest(&reference.fetchable())?.ok_or_else(|| OciError::Registry {
        reference: reference.to_string(),
        what: "not found".into(),
        message: "the registry has no such tag or digest".into(),
        hint: String::new(),
    })?;
    let layer = component_layer(reference, &manifest)?.clone();
    Ok((manifest, digest, layer))
}

fn annotation(manifest: &OciImageManifest, key: &str) -> Option<String> {
    manifest.annotations.as_ref().and_then(|a| a.get(key)).cloned()
}

/// Pick the signature to judge: one by a trusted key that verifies if there is one,
/// else the first (so its problem is what the user is told).
fn chosen_signature<'s>(signatures: &'s [Vec<u8>], settings: &RegistrySettings, name: &str, version: &str, sha256: &str) -> Option<&'s [u8]> {
    let trusted: Vec<_> = settings.trusted_keys.iter().filter_map(|k| signing::parse_public_key(k).ok()).collect();
    signatures
        .iter()
        .find(|s| signing::verify(&String::from_utf8_lossy(s), &trusted, name, version, sha256).is_ok())
        .or_else(|| signatures.first())
        .map(Vec::as_slice)
}

fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// `plugins inspect oci://…`: the manifest, its annotations and its signature.
pub fn inspect(reference: &OciRef, settings: &RegistrySettings) -> Result<Remote, OciError> {
    let session = Session::open(reference, &settings.insecure)?;
    let (manifest, digest, layer) = resolve(&session)?;
    let sha256 = digest_hex(&layer.digest).to_string();
    let name = annotation(&manifest, TITLE);
    let version = annotation(&manifest, VERSION);
    let signatures = session.signatures(&digest)?;
    let signature = match (&name, &version) {
        (Some(name), Some(version)) => {
            let sig = chosen_signature(&signatures, settings, name, version, &sha256);
            match registry::judge_signature(settings, name, version, &sha256, sig) {
                Ok(SignatureStatus::Trusted(key)) => format!("signed by {key}"),
                Ok(SignatureStatus::NotRequired) if sig.is_some() => "signed, not checked (no [registry] trusted_keys)".into(),
                Ok(SignatureStatus::NotRequired) => "unsigned (accepted: require_signatures = false)".into(),
                Err(e) => format!("REFUSED: {e}"),
            }
        }
        _ if signatures.is_empty() => "unsigned".into(),
        _ => "signed; checked on install (no name and version annotations)".into(),
    };
    let capabilities = annotation(&manifest, CAPABILITIES).and_then(|text| serde_json::from_str(&text).ok());
    Ok(Remote {
        reference: reference.pinned(&digest).to_string(),
        manifest_digest: digest,
        sha256,
        size: layer.size,
        name,
        version,
        wit_version: annotation(&manifest, WIT_VERSION),
        summary: annotation(&manifest, DESCRIPTION),
        capabilities,
        annotations: manifest.annotations.clone().unwrap_or_default(),
        signature,
    })
}

/// What `plugins verify` finds at a reference for an installed plugin.
#[derive(Debug)]
pub enum Checked {
    /// The registry holds another component under that reference (its sha256).
    Differs(String),
    /// The same component; how its signature turned out.
    Matches(SignatureStatus),
}

/// `plugins verify`: whether the component at `reference` is the installed one
/// (`sha256`), and if so, whether its signature holds, from the manifest and the
/// signatures alone (the component itself is not downloaded). The digests are compared
/// first: a different build is reported as that, not as a signature that does not fit.
pub fn check(reference: &OciRef, settings: &RegistrySettings, name: &str, version: &str, sha256: &str) -> Result<Checked, OciError> {
    let session = Session::open(reference, &settings.insecure)?;
    let (_, digest, layer) = resolve(&session)?;
    let remote = digest_hex(&layer.digest);
    if remote != sha256 {
        return Ok(Checked::Differs(remote.to_string()));
    }
    let signatures = session.signatures(&digest)?;
    let status = registry::judge_signature(settings, name, version, sha256, chosen_signature(&signatures, settings, name, version, sha256))?;
    Ok(Checked::Matches(status))
}

/// A plugin fetched from an OCI registry that passed every check, the signature
/// that vouched for it, and the reference pinned to the manifest's digest.
pub struct Fetched {
    pub verified: Verified,
    pub signature: Option<Vec<u8>>,
    pub pinned: OciRef,
}

/// Fetch the component at `reference` and check it: the blob against the manifest's
/// digest, the signature against `[registry]`, and `describe` against the annotations.
pub fn fetch_verified(reference: &OciRef, settings: &RegistrySettings, runtime: &PluginRuntime) -> Result<Fetched, OciError> {
    let session = Session::open(reference, &settings.insecure)?;
    let resolved = resolve(&session)?;
    fetch_resolved(&session, resolved, settings, runtime)
}

fn fetch_resolved(
    session: &Session,
    (manifest, digest, layer): (OciImageManifest, String, OciDescriptor),
    settings: &RegistrySettings,
    runtime: &PluginRuntime,
) -> Result<Fetched, OciError> {
    let reference = &session.reference;
    let bytes = session.blob(&reference.fetchable(), &layer)?;
    let sha256 = sha256_hex(&bytes);
    if sha256 != digest_hex(&layer.digest) {
        return Err(OciError::BlobAltered { reference: reference.to_string(), expected: layer.digest.clone(), found: format!("sha256:{sha256}") });
    }
    let annotated = (annotation(&manifest, TITLE), annotation(&manifest, VERSION));
    let signatures = session.signatures(&digest)?;
    // Judge the signature on the annotations first when there are some, as the folder
    // registry does on its index: nothing unsigned is even compiled.
    if let (Some(name), Some(version)) = &annotated {
        let sig = chosen_signature(&signatures, settings, name, version, &sha256);
        registry::judge_signature(settings, name, version, &sha256, sig)?;
    }
    let origin = reference.pinned(&digest).to_string();
    let plugin = runtime
        .load_bytes(Path::new(&origin), &bytes)
        .map_err(|e| RegistryError::NotAPlugin { name: reference.to_string(), version: digest.clone(), message: e.to_string() })?;
    let (name, version) = (plugin.info.name.clone(), plugin.info.version.clone());
    if let (Some(a_name), Some(a_version)) = &annotated {
        if (a_name, a_version) != (&name, &version) {
            return Err(OciError::AnnotationsLie { reference: origin, annotated: format!("{a_name} {a_version}"), described: format!("{name} {version}") });
        }
    }
    let sig = chosen_signature(&signatures, settings, &name, &version, &sha256).map(<[u8]>::to_vec);
    let status = registry::judge_signature(settings, &name, &version, &sha256, sig.as_deref())?;
    Ok(Fetched {
        verified: Verified { name, version, sha256, bytes, signature: status },
        signature: sig,
        pinned: reference.pinned(&digest),
    })
}

/// The reference of the plugin `name` under an OCI registry prefix (`[registry] url =
/// "oci://REGISTRY/PREFIX"`): `PREFIX/NAME:VERSION`, or, without a version, the
/// repository's newest version tag (numeric parts compared, as the folder registry
/// picks the newest; signatures' and other non-version tags are skipped).
pub fn by_name(prefix: &str, name: &str, version: Option<&str>, settings: &RegistrySettings) -> Result<OciRef, OciError> {
    let base = prefix.trim_end_matches('/');
    if let Some(version) = version {
        return OciRef::parse(&format!("{base}/{name}:{version}"));
    }
    let probe = OciRef::parse(&format!("{base}/{name}:latest"))?;
    let session = Session::open(&probe, &settings.insecure)?;
    let tags = session.tags()?.ok_or_else(|| OciError::UnknownPlugin {
        prefix: base.to_string(),
        name: name.to_string(),
        message: "the registry does not know that repository".into(),
    })?;
    let newest = tags
        .iter()
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()) && !t.ends_with(".sig"))
        .max_by_key(|t| registry::version_key(t));
    match newest {
        Some(tag) => Ok(probe.at_tag(tag)),
        None => Err(OciError::NoVersion {
            repository: format!("{base}/{name}"),
            tags: if tags.is_empty() { "none".into() } else { tags.join(", ") },
        }),
    }
}

/// `plugins install oci://…` into `plugins_dir`, recording where it came from. When
/// the file there already is this reference's digest, nothing is downloaded: a
/// pinned reference asks the registry nothing, a tag only for its manifest.
pub fn install(reference: &OciRef, settings: &RegistrySettings, runtime: &PluginRuntime, plugins_dir: &Path) -> Result<registry::Installed, OciError> {
    if let Some(installed) = already_installed(reference, plugins_dir, settings) {
        return Ok(installed);
    }
    let session = Session::open(reference, &settings.insecure)?;
    let resolved = resolve(&session)?;
    if let Some(installed) = already_installed(&reference.pinned(&resolved.1), plugins_dir, settings) {
        return Ok(installed);
    }
    let fetched = fetch_resolved(&session, resolved, settings, runtime)?;
    let source = registry::Source {
        source: fetched.pinned.to_string(),
        sha256: fetched.verified.sha256.clone(),
        version: fetched.verified.version.clone(),
    };
    Ok(registry::place(fetched.verified, fetched.signature.as_deref(), Some(&source), plugins_dir)?)
}

/// A reference pinned by digest whose install is on disk, intact: nothing to do.
/// (A tag is not enough: it may have moved.)
fn already_installed(reference: &OciRef, plugins_dir: &Path, settings: &RegistrySettings) -> Option<registry::Installed> {
    let digest = reference.digest()?;
    let entries = std::fs::read_dir(plugins_dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.extension().is_some_and(|x| x == "source") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Ok(source) = serde_json::from_slice::<registry::Source>(&bytes) else { continue };
        let Ok(recorded) = OciRef::parse(&source.source) else { continue };
        if recorded.digest() != Some(digest)
            || recorded.registry() != reference.registry()
            || recorded.reference.repository() != reference.reference.repository()
        {
            continue;
        }
        let wasm = path.with_extension("");
        let Ok(bytes) = std::fs::read(&wasm) else { continue };
        if sha256_hex(&bytes) != source.sha256 {
            continue;
        }
        let name = wasm.file_stem()?.to_string_lossy().to_string();
        // The signature kept beside it must still hold for today's trusted keys;
        // otherwise the full install judges it again (and says why).
        let trusted = registry::installed_signature(&wasm, &settings.trusted_keys, &name, &source.version, &source.sha256).ok().flatten();
        if trusted.is_none() && settings.require_signatures {
            return None;
        }
        return Some(registry::Installed {
            name,
            version: source.version,
            sha256: source.sha256,
            path: wasm,
            signature: trusted.map(SignatureStatus::Trusted).unwrap_or(SignatureStatus::NotRequired),
            changed: false,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_registry_and_a_tag_or_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let ok = [
            ("oci://ghcr.io/acme/plugins/memcached:0.1.0", "ghcr.io"),
            ("oci://127.0.0.1:5000/plugins/memcached:0.1.0", "127.0.0.1:5000"),
            ("oci://localhost/memcached:1", "localhost"),
        ];
        for (text, registry) in ok {
            let parsed = OciRef::parse(text).unwrap();
            assert_eq!(parsed.registry(), registry, "{text}");
            assert_eq!(parsed.to_string(), text);
        }
        let pinned = OciRef::parse(&format!("oci://ghcr.io/acme/m@{digest}")).unwrap();
        assert_eq!(pinned.digest(), Some(digest.as_str()));
        let tagged = OciRef::parse("oci://ghcr.io/acme/m:0.1.0").unwrap().pinned(&digest);
        assert_eq!(tagged.to_string(), format!("oci://ghcr.io/acme/m:0.1.0@{digest}"));
        assert_eq!(OciRef::parse(&tagged.to_string()).unwrap(), tagged, "a pinned reference reads back");
        for (text, reason) in [
            ("ghcr.io/acme/m:1", "oci://"),
            ("oci://acme/m:1", "registry host"),
            ("oci://ghcr.io/acme/m", "no :TAG"),
            ("oci://ghcr.io", "no repository"),
            ("oci://ghcr.io/Acme/M:1", "oci://"),
        ] {
            let err = OciRef::parse(text).unwrap_err().to_string();
            assert!(err.contains(reason) || err.contains("not an OCI reference"), "{text}: {err}");
        }
        assert_eq!(signature_tag(&digest), format!("sha256-{}.sig", "a".repeat(64)));
    }

    #[test]
    fn plain_http_only_for_loopback_or_when_listed() {
        let insecure = vec!["registry.lan:5000".to_string()];
        for (registry, allowed) in [
            ("127.0.0.1:5000", true),
            ("localhost:5000", true),
            ("localhost", true),
            ("[::1]:5000", true),
            ("registry.lan:5000", true),
            ("registry.lan:5001", false),
            ("ghcr.io", false),
            ("127.example.com", false),
        ] {
            assert_eq!(allows_http(registry, &insecure), allowed, "{registry}");
        }
    }
}
