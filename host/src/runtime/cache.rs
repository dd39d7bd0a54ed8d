//! The on-disk cache of precompiled components.
//!
//! An entry is keyed by the wasm's sha256 and the wasmtime engine's compatibility
//! hash, so a new host version or different engine settings never load stale code.
//! Deserialising precompiled code trusts it completely, so each entry carries the
//! sha256 of its own payload and is checked before use; an entry that fails the
//! check (tampered, truncated) is rebuilt, never loaded. Entries are written to a
//! temporary file and renamed into place, so a crash never leaves half an entry.
//!
//! The file name is only where an entry is looked up, not what it was compiled
//! from: another plugin's valid entry copied over this key would pass the checksum.
//! So the header also names the sha256 of the wasm the payload was compiled from,
//! compared with the wasm being loaded (32 bytes, no extra hashing) and covered by
//! the checksum. An entry bound to other wasm is recompiled and overwritten.
//!
//! Layout: `MAGIC` (16) | wasm sha256 (32) | sha256(wasm sha256 ‖ payload) (32) |
//! payload.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Version 2 added the wasm binding; a version 1 entry is simply rebuilt.
const MAGIC: &[u8; 16] = b"provisioner-cw2\n";
const HEADER: usize = MAGIC.len() + 32 + 32;

/// What the cache did for one load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled code.
    Hit,
    /// No entry: compiled and stored.
    Miss,
    /// An entry existed but could not be trusted or used; recompiled and replaced.
    Rebuilt(String),
}

pub struct ComponentCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into sha256, for a key that is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

pub use crate::digest::sha256_hex;

impl ComponentCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ComponentCache { dir: dir.into() }
    }

    /// `PROVISIONER_CACHE_DIR`, else `$XDG_CACHE_HOME/provisioner/components`, else
    /// `~/.cache/provisioner/components`, else a folder in the system temp dir.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("PROVISIONER_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("provisioner").join("components")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for this wasm lives.
    pub fn entry_path(&self, engine: &Engine, wasm_sha256: &str) -> PathBuf {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(hasher.0.finalize());
        self.dir.join(format!("{wasm_sha256}-{}.cwasm", &engine_key[..16]))
    }

    /// `wasm_sha256` is the hex sha256 of `wasm`, as the caller computed it for its
    /// own use.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8], wasm_sha256: &str) -> Result<(Component, CacheOutcome)> {
        let path = self.entry_path(engine, wasm_sha256);
        let wasm_digest = match hex::decode(wasm_sha256) {
            Ok(digest) if digest.len() == 32 => digest,
            // Not a sha256 in hex: bind to the real digest rather than trust it.
            _ => Sha256::digest(wasm).to_vec(),
        };
        let outcome = match fs::read(&path) {
            Ok(entry) => match Self::open_entry(engine, &entry, &wasm_digest) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(reason) => {
                    tracing::warn!(entry = %path.display(), %reason, "cached component rejected; recompiling");
                    CacheOutcome::Rebuilt(reason)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CacheOutcome::Miss,
            Err(e) => CacheOutcome::Rebuilt(format!("unreadable: {e}")),
        };
        let payload = engine.precompile_component(wasm).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if let Err(e) = self.store(&path, &wasm_digest, &payload) {
            // A read-only or full cache folder costs speed, not correctness.
            tracing::warn!(entry = %path.display(), error = %format!("{e:#}"), "could not write component cache");
        }
        // SAFETY: `payload` was produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &payload) }.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok((component, outcome))
    }

    fn open_entry(engine: &Engine, entry: &[u8], wasm_digest: &[u8]) -> Result<Component, String> {
        if entry.len() < HEADER || &entry[..MAGIC.len()] != MAGIC {
            return Err("not a provisioner cache entry of this version".into());
        }
        let (bound_to, rest) = entry[MAGIC.len()..].split_at(32);
        // First and cheap: a fixed-size compare before hashing the payload.
        if bound_to != wasm_digest {
            return Err(format!(
                "compiled from other wasm (sha256 {}…), not this plugin's (the entry was copied or renamed)",
                &hex::encode(bound_to)[..16]
            ));
        }
        let (checksum, payload) = rest.split_at(32);
        let started = std::time::Instant::now();
        if Self::checksum(bound_to, payload).as_slice() != checksum {
            return Err("checksum mismatch (the entry was modified or truncated)".into());
        }
        let checked = started.elapsed();
        // SAFETY: the payload is byte-for-byte what `store` wrote after this host's
        // engine compiled this very wasm (both checked above); wasmtime additionally
        // checks that it was compiled by a compatible engine.
        let component = unsafe { Component::deserialize(engine, payload) }.map_err(|e| format!("engine refused it: {e}"))?;
        tracing::debug!(bytes = entry.len(), checksum_us = checked.as_micros() as u64, deserialize_us = (started.elapsed() - checked).as_micros() as u64, "cache entry opened");
        Ok(component)
    }

    /// Covers the binding too, so editing the header alone is caught like any
    /// other modification.
    fn checksum(wasm_digest: &[u8], payload: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(wasm_digest);
        hasher.update(payload);
        let mut sum = [0u8; 32];
        sum.copy_from_slice(&hasher.finalize());
        sum
    }

    fn store(&self, path: &Path, wasm_digest: &[u8], payload: &[u8]) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(MAGIC)?;
        file.write_all(wasm_digest)?;
        file.write_all(&Self::checksum(wasm_digest, payload))?;
        file.write_all(payload)?;
        file.as_file().sync_data()?;
        file.persist(path).with_context(|| format!("renaming into {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::Linker;
    use wasmtime::Store;

    /// A tiny component whose one export answers `answer`: two of them differ only
    /// in the code, which is what a wrongly loaded entry would swap.
    fn component(answer: u32) -> Vec<u8> {
        format!(
            r#"(component
                 (core module $m (func (export "f") (result i32) i32.const {answer}))
                 (core instance $i (instantiate $m))
                 (func (export "answer") (result u32) (canon lift (core func $i "f"))))"#
        )
        .into_bytes()
    }

    fn answer(engine: &Engine, component: &Component) -> u32 {
        let mut store = Store::new(engine, ());
        let instance = Linker::new(engine).instantiate(&mut store, component).expect("instantiate");
        let f = instance.get_typed_func::<(), (u32,)>(&mut store, "answer").expect("export");
        f.call(&mut store, ()).expect("call").0
    }

    #[test]
    fn an_entry_copied_over_another_wasms_key_is_rebuilt_not_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ComponentCache::new(dir.path());
        let engine = Engine::default();
        let (a, b) = (component(1), component(2));
        let (sha_a, sha_b) = (sha256_hex(&a), sha256_hex(&b));
        let (loaded, outcome) = cache.load_or_compile(&engine, &a, &sha_a).expect("A");
        assert_eq!((answer(&engine, &loaded), outcome), (1, CacheOutcome::Miss));
        let (loaded, outcome) = cache.load_or_compile(&engine, &b, &sha_b).expect("B");
        assert_eq!((answer(&engine, &loaded), outcome), (2, CacheOutcome::Miss));

        // A's entry, valid in itself, copied over B's key.
        let (entry_a, entry_b) = (cache.entry_path(&engine, &sha_a), cache.entry_path(&engine, &sha_b));
        fs::copy(&entry_a, &entry_b).expect("copy");
        let (loaded, outcome) = cache.load_or_compile(&engine, &b, &sha_b).expect("B again");
        assert_eq!(answer(&engine, &loaded), 2, "B's own code runs, not A's");
        assert!(matches!(&outcome, CacheOutcome::Rebuilt(why) if why.contains("other wasm")), "{outcome:?}");
        // The entry was overwritten with B's own: the next load is a hit, of B.
        let (loaded, outcome) = cache.load_or_compile(&engine, &b, &sha_b).expect("B hit");
        assert_eq!((answer(&engine, &loaded), outcome), (2, CacheOutcome::Hit));

        // Rewriting the binding in A's header to B's digest does not pass either:
        // the checksum covers it.
        let mut forged = fs::read(&entry_a).expect("read A");
        forged[MAGIC.len()..MAGIC.len() + 32].copy_from_slice(&Sha256::digest(&b));
        fs::write(&entry_b, &forged).expect("write");
        let (loaded, outcome) = cache.load_or_compile(&engine, &b, &sha_b).expect("B after forgery");
        assert_eq!(answer(&engine, &loaded), 2);
        assert!(matches!(&outcome, CacheOutcome::Rebuilt(why) if why.contains("checksum")), "{outcome:?}");

        // A still loads its own entry.
        let (loaded, outcome) = cache.load_or_compile(&engine, &a, &sha_a).expect("A hit");
        assert_eq!((answer(&engine, &loaded), outcome), (1, CacheOutcome::Hit));
    }
}
