//! The on-disk cache of precompiled components.
//!
//! An entry is keyed by the wasm's sha256 and the wasmtime engine's compatibility
//! hash, so a new host version or different engine settings never load stale code.
//! Deserialising precompiled code trusts it completely, so each entry carries a
//! checksum of its own payload and is checked before use; an entry that fails the
//! check (damaged, truncated, edited) is rebuilt, never loaded. Files are written to
//! temporary names, read back and checked, and renamed into place, so a crash never
//! leaves half an entry.
//!
//! The checksum is xxh3-128, not a cryptographic hash: it is there to catch damage
//! and mix-ups, and a cryptographic one would not stop more. Whoever can write this
//! folder can recompute any unkeyed digest, so it is as trusted as the binary
//! itself (as cargo's `target/` is); a sha256 cost up to a few ms per load, xxh3
//! costs tens of µs.
//!
//! The file name is only where an entry is looked up, not what it was compiled
//! from: another plugin's valid entry copied over this key would pass the checksum.
//! So the header also names the sha256 of the wasm the payload was compiled from,
//! compared with the wasm being loaded (32 bytes, no extra hashing) and covered by
//! the checksum. An entry bound to other wasm is recompiled and overwritten.
//!
//! Layout (`KEY` ends in the layout's version, `v4`): `KEY.cwasm` is the payload
//! exactly as wasmtime wrote it, so it is mapped into memory in place rather than
//! copied; `KEY.check` is its header: `MAGIC` (16) | wasm sha256 (32) | payload length
//! (8, little-endian) | xxh3-128(wasm sha256 ‖ payload) (16). The payload is written
//! first, so a crash between the two leaves a header that does not match, and the entry
//! is rebuilt.
//!
//! Beside them, `KEY.info.json` keeps what the plugin's `describe` answered, bound to
//! the same wasm digest and to this host's version: `describe` is a pure function of
//! the plugin, so a cached load need not instantiate it. A missing, unreadable or
//! mismatched file only means `describe` runs again.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Version 2 added the wasm binding; version 4 moved the header to its own file and
/// the checksum to xxh3. An entry of an older version is simply rebuilt.
const MAGIC: &[u8; 16] = b"provisioner-cw4\n";
/// In the entries' file names.
const LAYOUT: &str = "v4";
const CHECKSUM: usize = 16;
const HEADER: usize = MAGIC.len() + 32 + 8 + CHECKSUM;

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

    /// Where the entry for this wasm lives. The layout's version is in the name, so a
    /// host of another layout sharing the folder keeps its own entries instead of
    /// rejecting and overwriting these (and these then theirs) on every load.
    pub fn entry_path(&self, engine: &Engine, wasm_sha256: &str) -> PathBuf {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(hasher.0.finalize());
        self.dir.join(format!("{wasm_sha256}-{}.{LAYOUT}.cwasm", &engine_key[..16]))
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
        let outcome = match fs::read(path.with_extension("check")) {
            Ok(header) => match Self::open_entry(engine, &path, &header, &wasm_digest) {
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

    fn open_entry(engine: &Engine, path: &Path, header: &[u8], wasm_digest: &[u8]) -> Result<Component, String> {
        if header.len() != HEADER || &header[..MAGIC.len()] != MAGIC {
            return Err("not a provisioner cache entry of this version".into());
        }
        let (bound_to, rest) = header[MAGIC.len()..].split_at(32);
        // First and cheap: a fixed-size compare before hashing the payload.
        if bound_to != wasm_digest {
            return Err(format!(
                "compiled from other wasm (sha256 {}…), not this plugin's (the entry was copied or renamed)",
                &hex::encode(bound_to)[..16]
            ));
        }
        let (length, checksum) = rest.split_at(8);
        let started = std::time::Instant::now();
        let (read, sum) = Self::checksum_file(bound_to, path).map_err(|e| format!("payload unreadable: {e}"))?;
        let length = length.try_into().map(u64::from_le_bytes).unwrap_or(u64::MAX);
        if read != length || sum.as_slice() != checksum {
            return Err("checksum mismatch (the entry was modified or truncated)".into());
        }
        let checked = started.elapsed();
        // SAFETY: the file is byte-for-byte what `store` wrote after this host's
        // engine compiled this very wasm (both checked above); wasmtime additionally
        // checks that it was compiled by a compatible engine. Mapping the file rather
        // than copying `payload` saves a copy; a file replaced in between would be
        // another process's entry for the same wasm and engine, written the same way.
        let component = unsafe { Component::deserialize_file(engine, path) }.map_err(|e| format!("engine refused it: {e}"))?;
        tracing::debug!(bytes = read, checksum_us = checked.as_micros() as u64, deserialize_us = (started.elapsed() - checked).as_micros() as u64, "cache entry opened");
        Ok(component)
    }

    /// Covers the binding too, so editing the header alone is caught like any
    /// other modification.
    fn checksum(wasm_digest: &[u8], payload: &[u8]) -> [u8; CHECKSUM] {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(wasm_digest);
        hasher.update(payload);
        hasher.digest128().to_le_bytes()
    }

    /// The file's length and checksum, hashed where the kernel keeps it (mapped, not
    /// copied: copying costs as much as hashing).
    fn checksum_file(wasm_digest: &[u8], path: &Path) -> std::io::Result<(u64, [u8; CHECKSUM])> {
        let file = fs::File::open(path)?;
        // SAFETY: read-only, private, and dropped before this returns. Entries are
        // replaced by rename, never rewritten in place, so the mapping does not
        // change under us; wasmtime maps the same file the same way to run it.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
        Ok((map.len() as u64, Self::checksum(wasm_digest, &map)))
    }

    fn store(&self, path: &Path, wasm_digest: &[u8], payload: &[u8]) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let checksum = Self::checksum(wasm_digest, payload);
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(payload)?;
        file.as_file().sync_data()?;
        // Checked once as written, so a load that trusts the header reads what was meant.
        let written = fs::read(file.path())?;
        if written.len() != payload.len() || Self::checksum(wasm_digest, &written) != checksum {
            anyhow::bail!("the entry read back differs from what was written");
        }
        file.persist(path).with_context(|| format!("renaming into {}", path.display()))?;
        let mut header = tempfile::NamedTempFile::new_in(&self.dir)?;
        header.write_all(MAGIC)?;
        header.write_all(wasm_digest)?;
        header.write_all(&(payload.len() as u64).to_le_bytes())?;
        header.write_all(&checksum)?;
        header.as_file().sync_data()?;
        let header_path = path.with_extension("check");
        header.persist(&header_path).with_context(|| format!("renaming into {}", header_path.display()))?;
        Ok(())
    }

    fn info_path(&self, engine: &Engine, wasm_sha256: &str) -> PathBuf {
        self.entry_path(engine, wasm_sha256).with_extension("info.json")
    }

    /// What `describe` answered for this wasm, if this host version stored it.
    pub fn load_info<T: for<'de> Deserialize<'de>>(&self, engine: &Engine, wasm_sha256: &str) -> Option<T> {
        let text = fs::read(self.info_path(engine, wasm_sha256)).ok()?;
        let stored: StoredInfo<T> = serde_json::from_slice(&text).ok()?;
        (stored.host == env!("CARGO_PKG_VERSION") && stored.wasm_sha256 == wasm_sha256).then_some(stored.info)
    }

    /// Best effort: a cache that cannot be written costs a `describe` next time.
    pub fn store_info<T: Serialize>(&self, engine: &Engine, wasm_sha256: &str, info: &T) {
        let path = self.info_path(engine, wasm_sha256);
        let stored = StoredInfo { host: env!("CARGO_PKG_VERSION").to_string(), wasm_sha256: wasm_sha256.to_string(), info };
        let written = serde_json::to_vec(&stored).map_err(anyhow::Error::from).and_then(|json| {
            let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
            file.write_all(&json)?;
            file.persist(&path)?;
            Ok(())
        });
        if let Err(e) = written {
            tracing::debug!(entry = %path.display(), error = %format!("{e:#}"), "could not store describe's answer");
        }
    }
}

/// The `….info.json` beside an entry.
#[derive(Serialize, Deserialize)]
struct StoredInfo<T> {
    host: String,
    wasm_sha256: String,
    info: T,
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
        let (check_a, check_b) = (entry_a.with_extension("check"), entry_b.with_extension("check"));
        fs::copy(&entry_a, &entry_b).expect("copy");
        fs::copy(&check_a, &check_b).expect("copy");
        let (loaded, outcome) = cache.load_or_compile(&engine, &b, &sha_b).expect("B again");
        assert_eq!(answer(&engine, &loaded), 2, "B's own code runs, not A's");
        assert!(matches!(&outcome, CacheOutcome::Rebuilt(why) if why.contains("other wasm")), "{outcome:?}");
        // The entry was overwritten with B's own: the next load is a hit, of B.
        let (loaded, outcome) = cache.load_or_compile(&engine, &b, &sha_b).expect("B hit");
        assert_eq!((answer(&engine, &loaded), outcome), (2, CacheOutcome::Hit));

        // Rewriting the binding in A's header to B's digest does not pass either:
        // the checksum covers it.
        fs::copy(&entry_a, &entry_b).expect("copy");
        let mut forged = fs::read(&check_a).expect("read A");
        forged[MAGIC.len()..MAGIC.len() + 32].copy_from_slice(&Sha256::digest(&b));
        fs::write(&check_b, &forged).expect("write");
        let (loaded, outcome) = cache.load_or_compile(&engine, &b, &sha_b).expect("B after forgery");
        assert_eq!(answer(&engine, &loaded), 2);
        assert!(matches!(&outcome, CacheOutcome::Rebuilt(why) if why.contains("checksum")), "{outcome:?}");

        // A still loads its own entry.
        let (loaded, outcome) = cache.load_or_compile(&engine, &a, &sha_a).expect("A hit");
        assert_eq!((answer(&engine, &loaded), outcome), (1, CacheOutcome::Hit));
    }

    #[test]
    fn describes_answer_is_kept_for_this_wasm_and_host_version_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ComponentCache::new(dir.path());
        let engine = Engine::default();
        let sha = sha256_hex(&component(1));
        assert_eq!(cache.load_info::<String>(&engine, &sha), None, "nothing stored yet");
        cache.store_info(&engine, &sha, &"answer".to_string());
        assert_eq!(cache.load_info::<String>(&engine, &sha).as_deref(), Some("answer"));
        assert_eq!(cache.load_info::<String>(&engine, &sha256_hex(&component(2))), None, "another wasm's key");

        let path = cache.info_path(&engine, &sha);
        let stored = fs::read_to_string(&path).expect("stored");
        // Copied under another key, or written by another host version: not used.
        let other = sha256_hex(&component(3));
        fs::write(cache.info_path(&engine, &other), &stored).expect("copy");
        assert_eq!(cache.load_info::<String>(&engine, &other), None, "bound to the wasm it was stored for");
        fs::write(&path, stored.replace(env!("CARGO_PKG_VERSION"), "0.0.0-other")).expect("edit");
        assert_eq!(cache.load_info::<String>(&engine, &sha), None, "another host version's answer");
        fs::write(&path, b"{ not json").expect("damage");
        assert_eq!(cache.load_info::<String>(&engine, &sha), None, "a damaged file means describing again");
    }
}
