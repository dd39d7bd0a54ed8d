//! One registry conversation: the client, the credentials Docker has for the
//! registry, and the calls the plugin commands make, each error named by what was
//! being done.

use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciErrorCode;
use oci_client::manifest::{OciDescriptor, OciImageManifest, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::{allows_http, signature_tag, OciError, OciRef, MAX_COMPONENT, SIGNATURE};
use crate::runtime::cache::sha256_hex;

/// A client and the credentials for one reference's registry.
pub(super) struct Session {
    client: Client,
    auth: RegistryAuth,
    pub(super) reference: OciRef,
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
    pub(super) fn open(reference: &OciRef, insecure: &[String]) -> Result<Session, OciError> {
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

    pub(super) fn error(&self, what: &str, error: oci_client::errors::OciDistributionError) -> OciError {
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
    pub(super) fn tags(&self) -> Result<Option<Vec<String>>, OciError> {
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
    pub(super) fn manifest(&self, reference: &Reference) -> Result<Option<(OciImageManifest, String, usize)>, OciError> {
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

    pub(super) fn blob(&self, reference: &Reference, descriptor: &OciDescriptor) -> Result<Vec<u8>, OciError> {
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

    pub(super) fn push_blob(&self, bytes: Vec<u8>, digest: &str) -> Result<(), OciError> {
        self.runtime
            .block_on(self.client.push_blob(&self.reference.reference, bytes, digest))
            .map(drop)
            .map_err(|e| self.error(&format!("cannot push the blob {digest}"), e))
    }

    pub(super) fn push_manifest(&self, reference: &Reference, manifest: &serde_json::Value) -> Result<String, OciError> {
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
    pub(super) fn authenticate(&self, operation: oci_client::RegistryOperation) -> Result<(), OciError> {
        self.runtime
            .block_on(self.client.auth(&self.reference.reference, &self.auth, operation))
            .map(drop)
            .map_err(|e| self.error("cannot log in", e))
    }

    /// Every signature attached to the manifest `digest`: through the referrers API
    /// when the registry has it, and the `sha256-<hex>.sig` tag either way.
    pub(super) fn signatures(&self, digest: &str) -> Result<Vec<Vec<u8>>, OciError> {
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
