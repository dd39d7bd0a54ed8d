//! `secrets`: stable generated secrets, one JSON file per service under
//! `.provisioner/<env>/secrets/<service>.json`, mode 0600 in a 0700 folder. A value,
//! once made, is returned on every later run, so a kept volume keeps working.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::distr::Alphanumeric;
use rand::RngExt;

use super::service::{HostCalls, HostError};

/// The secrets of one service.
pub struct SecretFile {
    path: PathBuf,
}

fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl SecretFile {
    pub fn new(dir: &Path, service: &str) -> Self {
        SecretFile { path: dir.join(format!("{service}.json")) }
    }

    pub fn read_all(&self) -> anyhow::Result<BTreeMap<String, String>> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    pub fn get(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self.read_all()?.remove(name))
    }

    pub fn get_or_create(&self, name: &str, length: usize) -> anyhow::Result<String> {
        let mut all = self.read_all()?;
        if let Some(value) = all.get(name) {
            return Ok(value.clone());
        }
        let value: String = rand::rng().sample_iter(&Alphanumeric).take(length).map(char::from).collect();
        all.insert(name.to_string(), value.clone());
        self.write_all(&all)?;
        Ok(value)
    }

    fn write_all(&self, all: &BTreeMap<String, String>) -> anyhow::Result<()> {
        crate::fsutil::write_private_in_private_dir(&self.path, &serde_json::to_vec_pretty(all)?)?;
        Ok(())
    }
}

impl HostCalls {
    fn secret_file(&mut self, name: &str) -> Result<SecretFile, HostError> {
        if let Err(refusal) = self.host.effective.check_secrets(name) {
            return Err(self.deny(refusal));
        }
        if !valid_secret_name(name) {
            return Err(HostError::Invalid(format!("secret name `{name}`: use 1 to 64 of a-z 0-9 - _")));
        }
        let dir = self.host.secrets_dir.as_ref().ok_or_else(|| HostError::Denied("this hook has no secrets".into()))?;
        Ok(SecretFile::new(dir, &self.host.scope.service))
    }

    pub fn get_or_create_secret(&mut self, name: &str, length: u32) -> Result<String, HostError> {
        if !(16..=128).contains(&length) {
            return Err(HostError::Invalid(format!("secret length {length}: must be 16 to 128")));
        }
        let file = self.secret_file(name)?;
        let value = file.get_or_create(name, length as usize).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        self.remember_secret(&value);
        Ok(value)
    }

    pub fn get_secret(&mut self, name: &str) -> Result<Option<String>, HostError> {
        let file = self.secret_file(name)?;
        let value = file.get(name).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        if let Some(value) = &value {
            self.remember_secret(value);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_private_and_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let secrets_dir = dir.path().join("secrets");
        let file = SecretFile::new(&secrets_dir, "db");
        let first = file.get_or_create("admin", 32).unwrap();
        assert_eq!(first.len(), 32);
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(SecretFile::new(&secrets_dir, "db").get_or_create("admin", 32).unwrap(), first);
        assert_ne!(file.get_or_create("app", 32).unwrap(), first);
        assert_eq!(file.get("missing").unwrap(), None);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&secrets_dir.join("db.json")), 0o600);
        assert_eq!(mode(&secrets_dir), 0o700);
    }

    #[test]
    fn names() {
        for (name, ok) in [("admin", true), ("app_password", true), ("a-1", true), ("", false), ("../x", false), ("A", false)] {
            assert_eq!(valid_secret_name(name), ok, "{name}");
        }
    }
}
