//! Secrets: deterministic values, the same name and length giving the same value in
//! every run (the WIT `secrets` interface).

use super::MockHost;

impl MockHost {
    /// Set the secret `name` (as an earlier run generated it).
    pub fn set_secret(&self, name: &str, value: &str) -> &Self {
        self.with(|s| s.secrets.insert(name.to_string(), value.to_string()));
        self
    }

    /// The secret `name`, if the plugin created it (or a test set it).
    pub fn secret(&self, name: &str) -> Option<String> {
        self.with(|s| s.secrets.get(name).cloned())
    }
}

pub mod imports {
    use crate::testing::{fnv, with};
    use crate::{Capability, Error};

    /// Deterministic: the same name and length give the same value in every run.
    pub fn get_or_create(name: &str, length: u32) -> Result<String, Error> {
        with(|s| {
            s.failure("get-or-create", name)?;
            s.allows(|c| matches!(c, Capability::Secrets), format!("secret {name}"))?;
            if !(1..=4096).contains(&length) {
                return Err(Error::Invalid(format!("secret length {length}")));
            }
            let value = s.secrets.entry(name.to_string()).or_insert_with(|| {
                const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                let mut h = fnv(name.as_bytes());
                (0..length)
                    .map(|_| {
                        h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        CHARS[(h >> 33) as usize % CHARS.len()] as char
                    })
                    .collect()
            });
            Ok(value.clone())
        })
    }

    pub fn get(name: &str) -> Result<Option<String>, Error> {
        with(|s| {
            s.failure("get", name)?;
            s.allows(|c| matches!(c, Capability::Secrets), format!("secret {name}"))?;
            Ok(s.secrets.get(name).cloned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MockHost;

    #[test]
    fn secrets_are_deterministic_across_mocks() {
        MockHost::new();
        let first = crate::secrets::get_or_create("password", 16).unwrap();
        let mock = MockHost::new();
        assert_eq!(crate::secrets::get("password").unwrap(), None);
        assert_eq!(crate::secrets::get_or_create("password", 16).unwrap(), first);
        assert_eq!(mock.secret("password"), Some(first));
    }
}
