//! The on-disk cache of precompiled components.
//!
//! An entry is keyed by the wasm's sha256 and the wasmtime engine's compatibility
//! hash, so a new host version or different engine settings never load stale code.
//! Deserialising precompiled code trusts it completely, so each entry carries the
//! sha256 of its own payload and is checked before use; an entry that fails the
//! check (tampered, truncated) is rebuilt, never loaded. Entries are written to a
//! temporary file and renamed into place, so a crash never leaves half an entry.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

const MAGIC: &[u8; 16] = b"provisioner-cw1\n";
const HEADER: usize = MAGIC.len() + 32;

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

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

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

    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8], wasm_sha256: &str) -> Result<(Component, CacheOutcome)> {
        let path = self.entry_path(engine, wasm_sha256);
        let outcome = match fs::read(&path) {
            Ok(entry) => match Self::open_entry(engine, &entry) {
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
        if let Err(e) = self.store(&path, &payload) {
            // A read-only or full cache folder costs speed, not correctness.
            tracing::warn!(entry = %path.display(), error = %format!("{e:#}"), "could not write component cache");
        }
        // SAFETY: `payload` was produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &payload) }.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok((component, outcome))
    }

    fn open_entry(engine: &Engine, entry: &[u8]) -> Result<Component, String> {
        if entry.len() < HEADER || &entry[..MAGIC.len()] != MAGIC {
            return Err("not a provisioner cache entry".into());
        }
        let (checksum, payload) = entry[MAGIC.len()..].split_at(32);
        if Sha256::digest(payload).as_slice() != checksum {
            return Err("checksum mismatch (the entry was modified or truncated)".into());
        }
        // SAFETY: the payload is byte-for-byte what `store` wrote after this host's
        // engine compiled it (checked above); wasmtime additionally checks that it
        // was compiled by a compatible engine.
        unsafe { Component::deserialize(engine, payload) }.map_err(|e| format!("engine refused it: {e}"))
    }

    fn store(&self, path: &Path, payload: &[u8]) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(payload))?;
        file.write_all(payload)?;
        file.as_file().sync_data()?;
        file.persist(path).with_context(|| format!("renaming into {}", path.display()))?;
        Ok(())
    }
}
