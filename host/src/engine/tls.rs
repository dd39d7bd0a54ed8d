//! An engine behind TLS, verified both ways as Docker's own client does it
//! (`docker --tlsverify`): the CA that signed the engine's certificate, and this
//! client's certificate and key, signed by the CA the engine trusts.
//!
//! Docker reads them from `DOCKER_TLS_VERIFY` (any non-empty value) and
//! `DOCKER_CERT_PATH` (a folder with `ca.pem`, `cert.pem` and `key.pem`; `~/.docker`
//! when unset); an environment of `provisioner.toml` may name them instead
//! (`tls = { cert_path = "…" }`, or `ca`, `cert`, `key` one by one), which
//! `config::Environment::engine_address` turns into the same `TlsFiles`.

use std::path::{Path, PathBuf};

/// One of the three files, and the setting that named it (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFile {
    pub path: PathBuf,
    /// `DOCKER_CERT_PATH`, `tls.ca of [environments.prod]`, …
    pub named_by: String,
}

/// The files of a TLS-verified connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the engine's certificate (`ca.pem`, `--tlscacert`).
    pub ca: TlsFile,
    /// This client's certificate (`cert.pem`, `--tlscert`) and key (`key.pem`, `--tlskey`).
    pub cert: TlsFile,
    pub key: TlsFile,
}

/// How to reach an engine: its address and, when it is behind TLS, the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAddress {
    pub address: String,
    pub tls: Option<TlsFiles>,
}

/// A TLS setting that cannot be used; each names the file or setting and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} {} (named by {named_by}): {reason}; {fix}", path.display())]
    Unreadable { what: &'static str, path: PathBuf, named_by: String, reason: String, fix: &'static str },
    #[error("{named_by} is set, but the engine {address} is not a tcp:// address: TLS applies only to an engine reached over TCP")]
    NotTcp { address: String, named_by: String },
    #[error("the TLS files are named by {named_by}, but neither DOCKER_CERT_PATH nor HOME is set to find them in")]
    NoFolder { named_by: String },
}

const FIX: &str = "make it (e.g. with `openssl`, as Docker's \"Protect the Docker daemon socket\" guide shows) or point the setting at the right file";

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in a folder, as Docker names them.
    pub fn in_folder(folder: &Path, named_by: &str) -> TlsFiles {
        let file = |name: &str| TlsFile { path: folder.join(name), named_by: named_by.to_string() };
        TlsFiles { ca: file("ca.pem"), cert: file("cert.pem"), key: file("key.pem") }
    }

    /// Each file there, and in PEM: a CA and a client certificate, and one private
    /// key. Checked up front because a client certificate that cannot be read is
    /// otherwise left out of the handshake silently, and the engine's refusal then
    /// names no file.
    pub fn check(&self) -> Result<(), TlsError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let unreadable = |what: &'static str, file: &TlsFile, reason: String| TlsError::Unreadable {
            what,
            path: file.path.clone(),
            named_by: file.named_by.clone(),
            reason,
            fix: FIX,
        };
        for (what, file) in [("CA certificate", &self.ca), ("client certificate", &self.cert)] {
            let bytes = std::fs::read(&file.path).map_err(|e| unreadable(what, file, e.to_string()))?;
            let certificates = CertificateDer::pem_slice_iter(&bytes).filter(Result::is_ok).count();
            if certificates == 0 {
                return Err(unreadable(what, file, "it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into()));
            }
        }
        let bytes = std::fs::read(&self.key.path).map_err(|e| unreadable("client key", &self.key, e.to_string()))?;
        PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|_| unreadable("client key", &self.key, "it holds no PEM private key (`-----BEGIN … PRIVATE KEY-----`)".into()))?;
        Ok(())
    }
}

/// Whether TLS can apply to this address at all (`tcp://`, `https://`).
pub fn is_tcp(address: &str) -> bool {
    address.starts_with("tcp://") || address.starts_with("https://")
}

/// Where Docker looks for the files when nothing names a folder: `DOCKER_CERT_PATH`,
/// else `~/.docker`.
pub fn default_folder(var: &dyn Fn(&str) -> Option<String>) -> Option<(PathBuf, String)> {
    match var("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        Some(path) => Some((PathBuf::from(path), "DOCKER_CERT_PATH".to_string())),
        None => var("HOME").filter(|h| !h.is_empty()).map(|home| (Path::new(&home).join(".docker"), "~/.docker (DOCKER_CERT_PATH unset)".to_string())),
    }
}

/// The TLS files for `address` from Docker's own environment variables, as the
/// `docker` client reads them: TLS when `DOCKER_TLS_VERIFY` is set to anything but
/// the empty string (or the address says `https://`), with the files of
/// `DOCKER_CERT_PATH` (`~/.docker` when unset). `var` reads a variable.
pub fn from_docker_env(address: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Option<TlsFiles>, TlsError> {
    let verify = var("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
    if !(verify || address.starts_with("https://")) || !is_tcp(address) {
        return Ok(None);
    }
    let (folder, named_by) = default_folder(var).ok_or_else(|| TlsError::NoFolder { named_by: "DOCKER_TLS_VERIFY".into() })?;
    Ok(Some(TlsFiles::in_folder(&folder, &named_by)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn docker_s_variables_turn_tls_on_as_the_docker_client_reads_them() {
        let on = vars(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/certs"), ("HOME", "/home/me")]);
        let files = from_docker_env("tcp://10.0.0.5:2376", &on).unwrap().expect("TLS");
        assert_eq!(files.ca.path, Path::new("/certs/ca.pem"));
        assert_eq!(files.cert.path, Path::new("/certs/cert.pem"));
        assert_eq!(files.key.path, Path::new("/certs/key.pem"));
        assert_eq!(files.key.named_by, "DOCKER_CERT_PATH");
        // Not for a local socket, whatever the variables say.
        assert_eq!(from_docker_env("unix:///var/run/docker.sock", &on).unwrap(), None);

        let home = vars(&[("DOCKER_TLS_VERIFY", "1"), ("HOME", "/home/me")]);
        let files = from_docker_env("tcp://10.0.0.5:2376", &home).unwrap().expect("TLS");
        assert_eq!(files.ca.path, Path::new("/home/me/.docker/ca.pem"));
        assert!(files.ca.named_by.contains("~/.docker"), "{}", files.ca.named_by);

        // Unset or empty: plain TCP, as `docker` does.
        assert_eq!(from_docker_env("tcp://10.0.0.5:2375", &vars(&[("DOCKER_CERT_PATH", "/certs")])).unwrap(), None);
        assert_eq!(from_docker_env("tcp://10.0.0.5:2375", &vars(&[("DOCKER_TLS_VERIFY", "")])).unwrap(), None);
    }

    #[test]
    fn a_missing_or_wrong_file_is_named_with_the_setting_that_named_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::in_folder(dir.path(), "DOCKER_CERT_PATH");
        let err = files.check().unwrap_err().to_string();
        assert!(err.starts_with(&format!("cannot read the CA certificate {}", dir.path().join("ca.pem").display())), "{err}");
        assert!(err.contains("(named by DOCKER_CERT_PATH)") && err.contains("No such file"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");

        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        let err = files.check().unwrap_err().to_string();
        assert!(err.contains("ca.pem") && err.contains("no PEM certificate"), "{err}");
    }
}
