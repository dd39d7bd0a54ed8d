//! ed25519 keys and artifact signatures for the plugin registry.
//!
//! A signature covers the plugin's name, version and sha256 together, so a valid
//! signature cannot be moved onto another plugin or version. Public keys are written
//! `ed25519:BASE64` (what `[registry] trusted_keys` holds); a private key file holds
//! `ed25519-secret:BASE64` and is created with mode 0600. Private keys are never printed.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: cannot read the key: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    BadSecret { path: PathBuf, message: String },
    #[error("{}: already exists; refusing to overwrite a key (delete it first if you mean to replace it)", path.display())]
    Exists { path: PathBuf },
    #[error("{}: cannot write the key: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("public key `{key}`: {message} (expected `ed25519:` followed by 32 bytes in base64)")]
    BadPublic { key: String, message: String },
}

/// The bytes a signature covers.
fn message(name: &str, version: &str, sha256: &str) -> Vec<u8> {
    format!("provisioner-plugin-signature-v1\n{name}\n{version}\n{sha256}\n").into_bytes()
}

/// A public key as written in provisioner.toml.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", B64.encode(key.as_bytes()))
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let bad = |message: &str| KeyError::BadPublic { key: text.to_string(), message: message.to_string() };
    let encoded = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(|| bad("no `ed25519:` prefix"))?;
    let bytes = B64.decode(encoded).map_err(|e| bad(&format!("not base64: {e}")))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad("not 32 bytes long"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| bad(&format!("not a valid ed25519 point: {e}")))
}

/// Make a key pair, write the private half to `path` (mode 0600, never overwriting)
/// and return the public half.
pub fn generate(path: &Path) -> Result<VerifyingKey, KeyError> {
    if path.exists() {
        return Err(KeyError::Exists { path: path.to_path_buf() });
    }
    // The OS-seeded CSPRNG the secrets capability uses too.
    let seed: [u8; 32] = rand::RngExt::random(&mut rand::rng());
    let key = SigningKey::from_bytes(&seed);
    let text = format!("{SECRET_PREFIX}{}\n", B64.encode(seed));
    crate::fsutil::write_private(path, text.as_bytes()).map_err(|e| KeyError::Write { path: path.to_path_buf(), source: e.source })?;
    Ok(key.verifying_key())
}

pub fn load_secret(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
    let bad = |message: &str| KeyError::BadSecret { path: path.to_path_buf(), message: message.to_string() };
    let encoded = text
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| bad("not a private key made by `provisioner registry keygen` (no `ed25519-secret:` prefix)"))?;
    let seed = B64.decode(encoded).map_err(|_| bad("the private key is not valid base64"))?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| bad("the private key is not 32 bytes long"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The contents of a `.sig` file: the signer's public key and the signature.
pub fn sign(key: &SigningKey, name: &str, version: &str, sha256: &str) -> String {
    let signature = key.sign(&message(name, version, sha256));
    format!("{} {}\n", public_key_text(&key.verifying_key()), B64.encode(signature.to_bytes()))
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("the signature file is malformed ({0})")]
    Malformed(String),
    #[error("signed by {0}, which is not among [registry] trusted_keys")]
    UntrustedSigner(String),
    #[error("the signature by {0} does not match this plugin's name, version and sha256 (altered artifact or index)")]
    Invalid(String),
}

/// Check a `.sig` file against the plugin's identity and the trusted keys; the
/// accepted signer's key on success.
pub fn verify(sig_file: &str, trusted: &[VerifyingKey], name: &str, version: &str, sha256: &str) -> Result<String, SignatureProblem> {
    let mut parts = sig_file.split_whitespace();
    let (Some(signer), Some(signature), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SignatureProblem::Malformed("expected `ed25519:KEY SIGNATURE`".into()));
    };
    let signer_key = parse_public_key(signer).map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
    if !trusted.contains(&signer_key) {
        return Err(SignatureProblem::UntrustedSigner(signer.to_string()));
    }
    let bytes = B64.decode(signature).map_err(|e| SignatureProblem::Malformed(format!("signature not base64: {e}")))?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureProblem::Malformed("signature not 64 bytes long".into()))?;
    signer_key
        .verify(&message(name, version, sha256), &Signature::from_bytes(&bytes))
        .map(|()| signer.to_string())
        .map_err(|_| SignatureProblem::Invalid(signer.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_name_version_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let public = generate(&path).unwrap();
        assert!(matches!(generate(&path), Err(KeyError::Exists { .. })), "never overwrites");
        let secret = load_secret(&path).unwrap();
        assert_eq!(secret.verifying_key(), public);
        assert_eq!(parse_public_key(&public_key_text(&public)).unwrap(), public);

        let other = generate(&dir.path().join("other")).unwrap();
        let sig = sign(&secret, "memcached", "0.1.0", "aa");
        // (trusted keys, name, version, sha256, accepted, problem contains)
        type Case<'a> = (Vec<VerifyingKey>, &'a str, &'a str, &'a str, bool, &'a str);
        let cases: Vec<Case> = vec![
            (vec![public], "memcached", "0.1.0", "aa", true, ""),
            (vec![other, public], "memcached", "0.1.0", "aa", true, ""),
            (vec![public], "memcached", "0.1.0", "ab", false, "does not match"),
            (vec![public], "memcached", "0.2.0", "aa", false, "does not match"),
            (vec![public], "redis", "0.1.0", "aa", false, "does not match"),
            (vec![other], "memcached", "0.1.0", "aa", false, "not among [registry] trusted_keys"),
            (vec![], "memcached", "0.1.0", "aa", false, "not among"),
        ];
        for (i, (trusted, name, version, sha, accepted, problem)) in cases.into_iter().enumerate() {
            let result = verify(&sig, &trusted, name, version, sha);
            assert_eq!(result.is_ok(), accepted, "case {i}: {result:?}");
            if let Err(e) = result {
                assert!(e.to_string().contains(problem), "case {i}: {e}");
            }
        }
        assert!(matches!(verify("garbage", &[public], "m", "1", "aa"), Err(SignatureProblem::Malformed(_))));
    }

    #[test]
    fn bad_public_keys_say_what_is_wrong() {
        for (text, problem) in [("abc", "prefix"), ("ed25519:!!", "base64"), ("ed25519:AAAA", "32 bytes")] {
            let err = parse_public_key(text).unwrap_err().to_string();
            assert!(err.contains(problem), "{text}: {err}");
        }
    }
}
