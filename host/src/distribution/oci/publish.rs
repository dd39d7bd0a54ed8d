//! `registry push` and `registry sign`: a component in the wasm OCI layout, with what
//! it declares as annotations, and its signature attached to the manifest's digest.

use std::path::Path;

use oci_client::manifest::OCI_IMAGE_MEDIA_TYPE;
use serde::Serialize;
use serde_json::json;

use super::session::Session;
use super::{digest_hex, resolve, signature_tag, OciError, OciRef};
use super::{CAPABILITIES, DESCRIPTION, EMPTY_CONFIG, SIGNATURE, TITLE, VERSION, WASM_CONFIG, WASM_LAYER, WIT_VERSION};
use crate::distribution::registry::RegistryError;
use crate::distribution::signing;
use crate::runtime::cache::sha256_hex;
use crate::runtime::PluginRuntime;

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
