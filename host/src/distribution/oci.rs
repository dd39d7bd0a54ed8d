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

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciErrorCode;
use oci_client::manifest::{OciDescriptor, OciImageManifest, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Serialize;
use serde_json::json;

use crate::capabilities::Capability;
use crate::config::RegistrySettings;
use crate::distribution::registry::{self, RegistryError, SignatureStatus, Verified};
use crate::distribution::signing;
use crate::runtime::cache::sha256_hex;
use crate::runtime::PluginRuntime;

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

/// A client and the credentials for one reference's registry.
struct Session {
    client: Client,
    auth: RegistryAuth,
    reference: OciRef,
    /// Run the client's futures on a runtime of our own: the commands are synchronous.
    runtime: tokio::runtime::Runtime,
}

/// Where Docker keeps its config, as the `docker` CLI finds it.
fn docker_config() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker")))?;
    Some(dir.join("config.json"))
}

/// The credentials Docker has for `registry`: anonymous when there are none.
fn credentials(registry: &str) -> Result<RegistryAuth, OciError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let config = docker_config();
    let shown = config.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "~/.docker/config.json".into());
    let fail = |reason: String| OciError::Credentials { registry: registry.to_string(), config: shown.clone(), reason };
    match docker_credential::get_credential(registry) {
        Ok(DockerCredential::UsernamePassword(user, password)) => Ok(RegistryAuth::Basic(user, password)),
        // An identity token is an OAuth refresh token; the registry's token endpoint
        // takes it in place of a password, under this fixed user name.
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Basic("<token>".into(), token)),
        Err(E::NoCredentialConfigured | E::ConfigNotFound) => Ok(RegistryAuth::Anonymous),
        // The crate says ConfigReadError both for "no file" and "not JSON".
        Err(E::ConfigReadError) if !config.as_ref().is_some_and(|p| p.exists()) => Ok(RegistryAuth::Anonymous),
        Err(E::ConfigReadError) => Err(fail("not valid JSON".into())),
        // The helper's own output may hold a secret: name the helper, not what it said.
        Err(E::HelperFailure { helper, .. }) => Err(fail(format!("credential helper docker-credential-{helper} failed"))),
        Err(other) => Err(fail(other.to_string())),
    }
}

impl Session {
    fn open(reference: &OciRef, insecure: &[String]) -> Result<Session, OciError> {
        // reqwest is built without a TLS provider of its own; use ring, which ureq
        // already brings. Installing twice is harmless (the first one stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = reference.registry().to_string();
        let protocol = if allows_http(&registry, insecure) { ClientProtocol::HttpsExcept(vec![registry.clone()]) } else { ClientProtocol::Https };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| OciError::Runtime(format!("cannot set up an OCI client: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| OciError::Runtime(format!("cannot start the async runtime for the OCI client: {e}")))?;
        Ok(Session { client, auth: credentials(&registry)?, reference: reference.clone(), runtime })
    }

    fn error(&self, what: &str, error: oci_client::errors::OciDistributionError) -> OciError {
        use oci_client::errors::OciDistributionError as E;
        let message = error.to_string();
        let unauthorized = matches!(&error, E::AuthenticationFailure(_) | E::UnauthorizedError { .. })
            || message.contains("401")
            || message.to_ascii_lowercase().contains("unauthorized");
        let hint = if unauthorized {
            let user = match &self.auth {
                RegistryAuth::Anonymous => "no credentials were found for it".to_string(),
                _ => "the credentials in the Docker config were refused".to_string(),
            };
            format!(
                " ({user}: `docker login {}` or an `auths` entry in $DOCKER_CONFIG/config.json gives them)",
                self.reference.registry()
            )
        } else if message.contains("error sending request") || message.contains("connect") {
            format!(" (is the registry {} up and reachable? plain HTTP is only used for loopback and [registry] insecure)", self.reference.registry())
        } else {
            String::new()
        };
        OciError::Registry { reference: self.reference.to_string(), what: what.to_string(), message, hint }
    }

    /// Every tag of the session's repository, page by page; `None` when the registry
    /// has no such repository.
    fn tags(&self) -> Result<Option<Vec<String>>, OciError> {
        use oci_client::errors::OciDistributionError as E;
        const PAGE: usize = 100;
        let mut tags: Vec<String> = Vec::new();
        loop {
            let last = tags.last().cloned();
            let page = match self.runtime.block_on(self.client.list_tags(&self.reference.reference, &self.auth, Some(PAGE), last.as_deref())) {
                Ok(page) => page,
                Err(E::RegistryError { envelope, .. }) if envelope.errors.iter().any(|e| e.code == OciErrorCode::NameUnknown) => {
                    return Ok(None)
                }
                Err(e) => return Err(self.error("listing its tags", e)),
            };
            let full = page.tags.len() >= PAGE;
            tags.extend(page.tags);
            if !full || tags.last() == last.as_ref() {
                return Ok(Some(tags));
            }
        }
    }

    /// The manifest at `reference` (a tag or a digest) and its digest.
    fn manifest(&self, reference: &Reference) -> Result<Option<(OciImageManifest, String, usize)>, OciError> {
        use oci_client::errors::OciDistributionError as E;
        let accepted = [OCI_IMAGE_MEDIA_TYPE, oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE];
        let pulled = self.runtime.block_on(self.client.pull_manifest_raw(reference, &self.auth, &accepted));
        let (bytes, _) = match pulled {
            Ok(found) => found,
            Err(E::ImageManifestNotFoundError(_)) => return Ok(None),
            Err(E::RegistryError { envelope, .. })
                if envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown)) =>
            {
                return Ok(None)
            }
            Err(E::ServerError { code: 404, .. }) => return Ok(None),
            Err(e) => return Err(self.error("cannot read the manifest", e)),
        };
        // What the registry says the digest is counts only if the bytes agree.
        let computed = format!("sha256:{}", sha256_hex(&bytes));
        if let Some(expected) = reference.digest().filter(|d| *d != computed) {
            return Err(OciError::BlobAltered { reference: self.reference.to_string(), expected: expected.to_string(), found: computed });
        }
        let manifest: OciImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::NotAComponent { reference: self.reference.to_string(), reason: format!("its manifest is not an OCI image manifest: {e}") })?;
        Ok(Some((manifest, computed, bytes.len())))
    }

    fn blob(&self, reference: &Reference, descriptor: &OciDescriptor) -> Result<Vec<u8>, OciError> {
        use oci_client::errors::OciDistributionError as E;
        if descriptor.size < 0 || descriptor.size as u64 > MAX_COMPONENT {
            return Err(OciError::NotAComponent {
                reference: self.reference.to_string(),
                reason: format!("its blob is {} bytes (at most {} MiB are accepted)", descriptor.size, MAX_COMPONENT >> 20),
            });
        }
        let mut out = Vec::with_capacity(descriptor.size as usize);
        match self.runtime.block_on(self.client.pull_blob(reference, descriptor, &mut out)) {
            Ok(()) => Ok(out),
            // The client checks the digest as it reads; say so in the user's terms.
            Err(E::DigestError(oci_client::errors::DigestError::VerificationError { expected, actual })) => {
                Err(OciError::BlobAltered { reference: self.reference.to_string(), expected, found: actual })
            }
            Err(e) => Err(self.error(&format!("cannot read the blob {}", descriptor.digest), e)),
        }
    }

    fn push_blob(&self, bytes: Vec<u8>, digest: &str) -> Result<(), OciError> {
        self.runtime
            .block_on(self.client.push_blob(&self.reference.reference, bytes, digest))
            .map(drop)
            .map_err(|e| self.error(&format!("cannot push the blob {digest}"), e))
    }

    fn push_manifest(&self, reference: &Reference, manifest: &serde_json::Value) -> Result<String, OciError> {
        let bytes = serde_json::to_vec(manifest).map_err(|e| OciError::Runtime(e.to_string()))?;
        let digest = format!("sha256:{}", sha256_hex(&bytes));
        let content_type = http_header(OCI_IMAGE_MEDIA_TYPE);
        self.runtime
            .block_on(self.client.push_manifest_raw(reference, bytes, content_type))
            .map_err(|e| self.error("cannot push the manifest", e))?;
        Ok(digest)
    }

    /// Before any push: the registry's answer to an authenticated `/v2/`, so a missing
    /// login fails first and clearly.
    fn authenticate(&self, operation: oci_client::RegistryOperation) -> Result<(), OciError> {
        self.runtime
            .block_on(self.client.auth(&self.reference.reference, &self.auth, operation))
            .map(drop)
            .map_err(|e| self.error("cannot log in", e))
    }

    /// Every signature attached to the manifest `digest`: through the referrers API
    /// when the registry has it, and the `sha256-<hex>.sig` tag either way.
    fn signatures(&self, digest: &str) -> Result<Vec<Vec<u8>>, OciError> {
        let subject = self.reference.pinned(digest).fetchable();
        let mut manifests = Vec::new();
        // A registry without the API answers 404, or an error the client turns into
        // an empty list: the tag below is the fallback, so neither is fatal.
        if let Ok(index) = self.runtime.block_on(self.client.pull_referrers(&subject, Some(SIGNATURE))) {
            for entry in &index.manifests {
                let at = Reference::with_digest(subject.registry().into(), subject.repository().into(), entry.digest.clone());
                if let Some(found) = self.manifest(&at)? {
                    manifests.push((at, found.0));
                }
            }
        }
        let tagged = self.reference.at_tag(&signature_tag(digest)).reference;
        if let Some((manifest, tagged_digest, _)) = self.manifest(&tagged)? {
            let at = Reference::with_digest(tagged.registry().into(), tagged.repository().into(), tagged_digest);
            if !manifests.iter().any(|(r, _)| r.digest() == at.digest()) {
                manifests.push((at, manifest));
            }
        }
        let mut signatures = Vec::new();
        for (at, manifest) in manifests {
            // A signature manifest must point at this plugin; one that names another
            // subject (or is another kind of referrer) was not made for it.
            if manifest.subject.as_ref().is_some_and(|s| s.digest != digest) || manifest.artifact_type.as_deref() != Some(SIGNATURE) {
                continue;
            }
            for layer in manifest.layers.iter().filter(|l| l.media_type == SIGNATURE) {
                signatures.push(self.blob(&at, layer)?);
            }
        }
        Ok(signatures)
    }
}

fn http_header(value: &'static str) -> http::HeaderValue {
    http::HeaderValue::from_static(value)
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

/// `plugins verify` of an installed plugin against `reference`: the component sha256
/// the registry holds there, and its signature judged for the installed plugin's own
/// name, version and digest. Nothing is downloaded but the manifest and signatures.
pub fn check(reference: &OciRef, settings: &RegistrySettings, name: &str, version: &str, sha256: &str) -> Result<(String, SignatureStatus), OciError> {
    let session = Session::open(reference, &settings.insecure)?;
    let (_, digest, layer) = resolve(&session)?;
    let signatures = session.signatures(&digest)?;
    let status = registry::judge_signature(settings, name, version, sha256, chosen_signature(&signatures, settings, name, version, sha256))?;
    Ok((digest_hex(&layer.digest).to_string(), status))
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

/// What `registry push` did.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// The reference pinned to the manifest's digest: what to put in a lockfile or a CI file.
    pub reference: String,
    pub signed_by: Option<String>,
    pub signature_tag: Option<String>,
}

/// `registry push FILE.wasm oci://…`: the component in the wasm OCI layout, with
/// what it declares as annotations, then its signature attached (unless `key` is `None`).
pub fn push(wasm: &Path, reference: &OciRef, key: Option<&Path>, runtime: &PluginRuntime, insecure: &[String]) -> Result<Pushed, OciError> {
    let bytes = std::fs::read(wasm).map_err(|e| RegistryError::Io { path: wasm.to_path_buf(), message: e.to_string() })?;
    let plugin = runtime.load_bytes(wasm, &bytes).map_err(|e| RegistryError::Unpublishable(e.to_string()))?;
    let secret = key.map(signing::load_secret).transpose().map_err(RegistryError::from)?;
    let info = &plugin.info;
    let session = Session::open(reference, insecure)?;
    session.authenticate(oci_client::RegistryOperation::Push)?;

    let layer_digest = format!("sha256:{}", plugin.sha256);
    // No timestamp: pushing the same component twice gives the same manifest digest.
    let config = serde_json::to_vec(&json!({ "architecture": "wasm", "os": "wasip2", "layerDigests": [layer_digest] }))
        .map_err(|e| OciError::Runtime(e.to_string()))?;
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    let capabilities = serde_json::to_string(&info.capabilities).map_err(|e| OciError::Runtime(e.to_string()))?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "config": { "mediaType": WASM_CONFIG, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": WASM_LAYER, "digest": layer_digest, "size": bytes.len() }],
        "annotations": {
            TITLE: info.name, VERSION: info.version, DESCRIPTION: info.summary,
            WIT_VERSION: info.wit_version, CAPABILITIES: capabilities,
        },
    });
    let size = bytes.len();
    session.push_blob(bytes, &layer_digest)?;
    session.push_blob(config, &config_digest)?;
    let digest = session.push_manifest(&reference.fetchable(), &manifest)?;
    let manifest_size = serde_json::to_vec(&manifest).map(|b| b.len()).unwrap_or(0);
    tracing::debug!(%digest, size, "pushed the component");

    let (signed_by, signature_tag) = match &secret {
        Some(secret) => {
            let tag = attach_signature(&session, &digest, manifest_size, &signing::sign(secret, &info.name, &info.version, &plugin.sha256))?;
            (Some(signing::public_key_text(&secret.verifying_key())), Some(tag))
        }
        None => (None, None),
    };
    Ok(Pushed {
        name: info.name.clone(),
        version: info.version.clone(),
        sha256: plugin.sha256.clone(),
        reference: reference.pinned(&digest).to_string(),
        signed_by,
        signature_tag,
    })
}

/// Attach `signature` to the manifest `digest`: an artifact whose `subject` is that
/// manifest (the referrers API indexes it), tagged `sha256-<hex>.sig` for registries
/// without that API. Returns the tag.
fn attach_signature(session: &Session, digest: &str, manifest_size: usize, signature: &str) -> Result<String, OciError> {
    const EMPTY: &[u8] = b"{}";
    let empty_digest = format!("sha256:{}", sha256_hex(EMPTY));
    let sig_digest = format!("sha256:{}", sha256_hex(signature.as_bytes()));
    session.push_blob(EMPTY.to_vec(), &empty_digest)?;
    session.push_blob(signature.as_bytes().to_vec(), &sig_digest)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "artifactType": SIGNATURE,
        "config": { "mediaType": EMPTY_CONFIG, "digest": empty_digest, "size": EMPTY.len() },
        "layers": [{ "mediaType": SIGNATURE, "digest": sig_digest, "size": signature.len() }],
        "subject": { "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": digest, "size": manifest_size },
    });
    let tag = signature_tag(digest);
    session.push_manifest(&session.reference.at_tag(&tag).reference, &manifest)?;
    Ok(tag)
}

/// `registry sign oci://… --key KEY`: sign a component already in a registry (pushed
/// by `wkg oci push`, say) after checking it is the plugin it claims to be.
pub fn sign(reference: &OciRef, key: &Path, runtime: &PluginRuntime, insecure: &[String]) -> Result<Pushed, OciError> {
    let secret = signing::load_secret(key).map_err(RegistryError::from)?;
    let session = Session::open(reference, insecure)?;
    let (_, digest, layer) = resolve(&session)?;
    let bytes = session.blob(&reference.fetchable(), &layer)?;
    let sha256 = sha256_hex(&bytes);
    if sha256 != digest_hex(&layer.digest) {
        return Err(OciError::BlobAltered { reference: reference.to_string(), expected: layer.digest.clone(), found: format!("sha256:{sha256}") });
    }
    let plugin = runtime.load_bytes(Path::new(&reference.to_string()), &bytes).map_err(|e| RegistryError::Unpublishable(e.to_string()))?;
    let (manifest, _, size) = session.manifest(&reference.pinned(&digest).fetchable())?.ok_or_else(|| OciError::Registry {
        reference: reference.to_string(),
        what: "not found".into(),
        message: "the manifest went away while signing".into(),
        hint: String::new(),
    })?;
    drop(manifest);
    session.authenticate(oci_client::RegistryOperation::Push)?;
    let tag = attach_signature(&session, &digest, size, &signing::sign(&secret, &plugin.info.name, &plugin.info.version, &sha256))?;
    Ok(Pushed {
        name: plugin.info.name.clone(),
        version: plugin.info.version.clone(),
        sha256,
        reference: reference.pinned(&digest).to_string(),
        signed_by: Some(signing::public_key_text(&secret.verifying_key())),
        signature_tag: Some(tag),
    })
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
