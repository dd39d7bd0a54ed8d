//! The backup archive: one zstd-compressed tar holding `manifest.json` first, then
//! each service's parts as `<service>/<part>`. Packing reads the parts from a folder
//! and unpacking writes them to one, file by file, so an archive of any size passes
//! through a fixed amount of memory. Unpacking checks every part against the manifest
//! (size and sha256) before the caller may touch a service.
//!
//! Encrypted at rest on request: the whole compressed stream is then an age file
//! (age-encryption.org/v1) for one or more X25519 recipients, so the same archive opens
//! with `age -d` or `rage -d` too. The name then ends in `.tar.zst.age`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::capabilities::archive::{is_valid_part_name, Part};

/// The manifest's own format; a reader refuses a newer one.
pub const FORMAT: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// zstd level: 3 is zstd's default, fast enough to keep up with a database's dump.
const LEVEL: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub project: String,
    pub environment: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// The provisioner version that wrote it.
    pub provisioner: String,
    pub services: Vec<ServiceBackup>,
    /// Services of the environment not in the archive, and why.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

/// One service's backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceBackup {
    pub service: String,
    pub plugin: String,
    pub plugin_version: String,
    pub wit_version: String,
    pub method: String,
    #[serde(default)]
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
    pub parts: Vec<Part>,
}

impl ServiceBackup {
    pub fn bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub service: String,
    pub reason: String,
}

/// Why an archive cannot be written or read. Each names the file and, where there is
/// one, the part.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{file} is encrypted (age): pass --identity FILE with the secret key of one of its recipients")]
    Encrypted { file: PathBuf },
    #[error("{file}: cannot decrypt: {reason}")]
    Decrypt { file: PathBuf, reason: String },
    #[error("{0}")]
    Key(String),
    #[error("{file}: {message}")]
    Io { file: PathBuf, message: String },
    #[error("{file}: not a provisioner backup: {reason}")]
    NotABackup { file: PathBuf, reason: String },
    #[error("{file}: part `{part}` is damaged: {reason}; nothing was restored")]
    Damaged { file: PathBuf, part: String, reason: String },
}

fn io(file: &Path, what: &str, error: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Io { file: file.to_path_buf(), message: format!("{what}: {error}") }
}

/// Now, as RFC 3339 UTC to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The default archive name for a backup made at `created` (RFC 3339), sortable by time.
/// An encrypted archive's name ends in `.age`, as age's own tools expect.
pub fn default_file_name(environment: &str, created: &str, encrypted: bool) -> String {
    let stamp: String = created.chars().filter(|c| c.is_ascii_digit()).collect();
    let (date, time) = stamp.split_at(stamp.len().min(8));
    format!("{environment}-{date}-{time}.tar.zst{}", if encrypted { ".age" } else { "" })
}

/// The recipients an archive is encrypted to: age X25519 public keys (`age1…`).
#[derive(Clone, Default)]
pub struct Recipients(Vec<age::x25519::Recipient>);

impl Recipients {
    /// From `age1…` keys given on the command line and recipients files (one key per
    /// line, `#` comments, as `age -R` reads them).
    pub fn parse(keys: &[String], files: &[PathBuf]) -> Result<Self, ArchiveError> {
        let mut found = Vec::new();
        for key in keys {
            found.push(parse_recipient(key).map_err(|reason| ArchiveError::Key(format!("--recipient `{key}`: {reason}")))?);
        }
        for file in files {
            let text = std::fs::read_to_string(file).map_err(|e| io(file, "cannot read the recipients file", e))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                found.push(parse_recipient(line).map_err(|reason| ArchiveError::Key(format!("{}:{}: {reason}", file.display(), n + 1)))?);
            }
            if found.is_empty() {
                return Err(ArchiveError::Key(format!("{}: no recipient in it", file.display())));
            }
        }
        Ok(Self(found))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_recipient(key: &str) -> Result<age::x25519::Recipient, String> {
    if key.starts_with("AGE-SECRET-KEY-") {
        return Err("this is a secret key; give its public key (`age1…`, what `age-keygen -y` prints)".into());
    }
    key.parse::<age::x25519::Recipient>().map_err(|e| format!("not an age X25519 recipient (`age1…`): {e}"))
}

/// The secret keys that may open encrypted archives, from age identity files
/// (`age-keygen -o FILE` writes one).
#[derive(Default)]
pub struct Identities(Vec<Box<dyn age::Identity>>);

impl Identities {
    pub fn load(files: &[PathBuf]) -> Result<Self, ArchiveError> {
        let mut found = Vec::new();
        for file in files {
            let parsed = age::IdentityFile::from_file(file.display().to_string()).map_err(|e| io(file, "cannot read the identity file", e))?;
            let identities = parsed.into_identities().map_err(|e| ArchiveError::Key(format!("{}: {e}", file.display())))?;
            if identities.is_empty() {
                return Err(ArchiveError::Key(format!("{}: no age secret key (`AGE-SECRET-KEY-1…`) in it", file.display())));
            }
            found.extend(identities);
        }
        Ok(Self(found))
    }

    #[cfg(test)]
    fn of(identity: age::x25519::Identity) -> Self {
        Self(vec![Box::new(identity)])
    }
}

/// Where the compressed stream goes: the file itself, or an age encryptor in front of it.
enum Sink {
    Plain(BufWriter<File>),
    Age(age::stream::StreamWriter<BufWriter<File>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Age(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Age(w) => w.flush(),
        }
    }
}

impl Sink {
    fn new(out: BufWriter<File>, recipients: &Recipients) -> std::io::Result<Self> {
        if recipients.is_empty() {
            return Ok(Sink::Plain(out));
        }
        let encryptor = age::Encryptor::with_recipients(recipients.0.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Sink::Age(encryptor.wrap_output(out)?))
    }

    /// The file, after the last encrypted chunk is written (without it an age file is
    /// truncated and will not decrypt).
    fn finish(self) -> std::io::Result<BufWriter<File>> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Age(w) => w.finish(),
        }
    }
}

/// Write the archive at `file` from `manifest` and the parts under `parts_dir`
/// (`<service>/<part>`): into `file.partial`, then renamed, so a failed or
/// interrupted backup never leaves something that looks like an archive.
/// Encrypted to `recipients` unless there are none.
pub fn pack(file: &Path, manifest: &Manifest, parts_dir: &Path, recipients: &Recipients) -> Result<u64, ArchiveError> {
    let partial = partial_path(file);
    let result = (|| {
        let out = crate::fsutil::create_private(&partial).map_err(|e| io(&partial, "cannot create", e))?;
        let sink = Sink::new(BufWriter::new(out), recipients).map_err(|e| io(&partial, "age", e))?;
        let mut encoder = zstd::Encoder::new(sink, LEVEL).map_err(|e| io(&partial, "zstd", e))?;
        // A frame checksum: damage inside the compressed stream is caught by zstd
        // itself, before the parts' own digests.
        encoder.include_checksum(true).map_err(|e| io(&partial, "zstd", e))?;
        let mut tar = tar::Builder::new(encoder);
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| io(&partial, "manifest", e))?;
        append(&mut tar, MANIFEST, json.len() as u64, &mut json.as_slice()).map_err(|e| io(&partial, "writing", e))?;
        for service in &manifest.services {
            for part in &service.parts {
                let source = parts_dir.join(&service.service).join(&part.name);
                let mut reader = File::open(&source).map_err(|e| io(&source, "cannot read", e))?;
                append(&mut tar, &format!("{}/{}", service.service, part.name), part.bytes, &mut reader)
                    .map_err(|e| io(&partial, "writing", e))?;
            }
        }
        let encoder = tar.into_inner().map_err(|e| io(&partial, "writing", e))?;
        let sink = encoder.finish().map_err(|e| io(&partial, "zstd", e))?;
        let mut out = sink.finish().map_err(|e| io(&partial, "age", e))?;
        out.flush().map_err(|e| io(&partial, "writing", e))?;
        out.get_ref().sync_all().map_err(|e| io(&partial, "writing", e))?;
        Ok(())
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    std::fs::rename(&partial, file).map_err(|e| io(file, "cannot rename the finished archive into place", e))?;
    std::fs::metadata(file).map(|m| m.len()).map_err(|e| io(file, "cannot stat", e))
}

fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    file.with_file_name(name)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, size: u64, reader: &mut dyn Read) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, path, reader.take(size))
}

/// Read the manifest of `file` (the archive's first entry) without unpacking the rest.
pub fn read_manifest(file: &Path, identities: &Identities) -> Result<Manifest, ArchiveError> {
    let mut archive = open(file, identities)?;
    let mut entries = archive.entries().map_err(|e| not_a_backup(file, e))?;
    let mut first = entries.next().ok_or_else(|| not_a_backup(file, "it is empty"))?.map_err(|e| not_a_backup(file, e))?;
    manifest_of(file, &mut first)
}

/// How every age file begins.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";

/// Whether `file` is an encrypted archive (it begins as an age file does).
pub fn is_encrypted(file: &Path) -> Result<bool, ArchiveError> {
    let mut reader = BufReader::new(File::open(file).map_err(|e| io(file, "cannot open", e))?);
    let head = reader.fill_buf().map_err(|e| io(file, "cannot read", e))?;
    Ok(head.starts_with(AGE_MAGIC))
}

type Archive = tar::Archive<zstd::Decoder<'static, BufReader<Box<dyn Read>>>>;

fn open(file: &Path, identities: &Identities) -> Result<Archive, ArchiveError> {
    let mut reader = BufReader::new(File::open(file).map_err(|e| io(file, "cannot open", e))?);
    let head = reader.fill_buf().map_err(|e| io(file, "cannot read", e))?;
    let source: Box<dyn Read> = if head.starts_with(AGE_MAGIC) {
        if identities.0.is_empty() {
            return Err(ArchiveError::Encrypted { file: file.to_path_buf() });
        }
        let decryptor = age::Decryptor::new_buffered(reader).map_err(|e| ArchiveError::Decrypt { file: file.to_path_buf(), reason: e.to_string() })?;
        let decrypted = decryptor.decrypt(identities.0.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| {
            let reason = match e {
                age::DecryptError::NoMatchingKeys => "none of the --identity keys is one of its recipients".to_string(),
                other => other.to_string(),
            };
            ArchiveError::Decrypt { file: file.to_path_buf(), reason }
        })?;
        Box::new(decrypted)
    } else {
        Box::new(reader)
    };
    let decoder = zstd::Decoder::new(source).map_err(|e| not_a_backup(file, e))?;
    Ok(tar::Archive::new(decoder))
}

fn not_a_backup(file: &Path, reason: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::NotABackup { file: file.to_path_buf(), reason: reason.to_string() }
}

fn manifest_of(file: &Path, entry: &mut tar::Entry<'_, impl Read>) -> Result<Manifest, ArchiveError> {
    if entry.path().map(|p| p.as_ref() != Path::new(MANIFEST)).unwrap_or(true) {
        return Err(not_a_backup(file, format!("its first entry is not `{MANIFEST}`")));
    }
    let mut json = Vec::new();
    entry.take(16 << 20).read_to_end(&mut json).map_err(|e| not_a_backup(file, e))?;
    let manifest: Manifest = serde_json::from_slice(&json).map_err(|e| not_a_backup(file, format!("{MANIFEST}: {e}")))?;
    if manifest.format > FORMAT {
        return Err(not_a_backup(file, format!("written in format {} by a newer provisioner (this one reads {FORMAT})", manifest.format)));
    }
    for service in &manifest.services {
        if !crate::naming::is_valid_short_name(&service.service) {
            return Err(not_a_backup(file, format!("{MANIFEST}: service name `{}`", service.service)));
        }
        if let Some(bad) = service.parts.iter().find(|p| !is_valid_part_name(&p.name)) {
            return Err(not_a_backup(file, format!("{MANIFEST}: part name `{}`", bad.name)));
        }
    }
    Ok(manifest)
}

/// Unpack the parts of `services` (all when empty) from `file` into `dir`
/// (`<service>/<part>`), checking each against the manifest's size and sha256; any
/// part missing, truncated, altered or unexpected is an error naming it. Returns the
/// manifest.
pub fn unpack(file: &Path, dir: &Path, services: &[String], identities: &Identities) -> Result<Manifest, ArchiveError> {
    let mut archive = open(file, identities)?;
    let mut entries = archive.entries().map_err(|e| not_a_backup(file, e))?;
    let mut first = entries.next().ok_or_else(|| not_a_backup(file, "it is empty"))?.map_err(|e| not_a_backup(file, e))?;
    let manifest = manifest_of(file, &mut first)?;
    drop(first);
    let wanted = |service: &str| services.is_empty() || services.iter().any(|s| s == service);
    let mut expected: std::collections::BTreeMap<String, &Part> = manifest
        .services
        .iter()
        .filter(|s| wanted(&s.service))
        .flat_map(|s| s.parts.iter().map(move |p| (format!("{}/{}", s.service, p.name), p)))
        .collect();
    let damaged = |part: &str, reason: String| ArchiveError::Damaged { file: file.to_path_buf(), part: part.to_string(), reason };
    let mut last = MANIFEST.to_string();
    for entry in entries {
        // A truncated or corrupted stream fails here or while reading an entry.
        let mut entry = entry.map_err(|e| damaged(&format!("(the entry after `{last}`)"), e.to_string()))?;
        let path = entry.path().map_err(|e| not_a_backup(file, e))?.to_string_lossy().into_owned();
        let Some((service, part_name)) = path.split_once('/') else {
            return Err(not_a_backup(file, format!("unexpected entry `{path}`")));
        };
        let known = manifest.services.iter().any(|s| s.service == service && s.parts.iter().any(|p| p.name == part_name));
        if !known {
            return Err(damaged(&path, "the manifest does not list it".into()));
        }
        last.clone_from(&path);
        let Some(part) = expected.remove(&path) else {
            continue;
        };
        let folder = dir.join(service);
        std::fs::create_dir_all(&folder).map_err(|e| io(&folder, "cannot create", e))?;
        let target = folder.join(part_name);
        let mut out = BufWriter::new(File::create(&target).map_err(|e| io(&target, "cannot create", e))?);
        let mut digest = Sha256::new();
        let mut buffer = vec![0u8; 256 << 10];
        let mut bytes = 0u64;
        loop {
            let read = entry.read(&mut buffer).map_err(|e| damaged(&path, e.to_string()))?;
            if read == 0 {
                break;
            }
            digest.update(&buffer[..read]);
            out.write_all(&buffer[..read]).map_err(|e| io(&target, "cannot write", e))?;
            bytes += read as u64;
        }
        out.flush().map_err(|e| io(&target, "cannot write", e))?;
        if bytes != part.bytes {
            return Err(damaged(&path, format!("{bytes} bytes where the manifest says {}", part.bytes)));
        }
        let sha256 = hex::encode(digest.finalize());
        if sha256 != part.sha256 {
            return Err(damaged(&path, format!("sha256 {sha256} where the manifest says {}", part.sha256)));
        }
    }
    if let Some(path) = expected.keys().next() {
        return Err(damaged(path, "missing from the archive (truncated?)".into()));
    }
    Ok(manifest)
}

/// The archives in `dir` (`*.tar.zst`, `*.tar.zst.age`), oldest first by name, which
/// starts with the environment and sorts by time.
pub fn archives(dir: &Path, environment: &str) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    let prefix = format!("{environment}-");
    let mut found: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && (n.ends_with(".tar.zst") || n.ends_with(".tar.zst.age")))
        })
        .collect();
    found.sort();
    found
}

/// Remove all but the newest `keep` archives of `environment` in `dir`; the removed.
pub fn prune(dir: &Path, environment: &str, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let all = archives(dir, environment);
    let excess = all.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = all.into_iter().take(excess).collect();
    for path in &removed {
        std::fs::remove_file(path)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Manifest {
        let parts = dir.join("parts");
        std::fs::create_dir_all(parts.join("db")).unwrap();
        let dump: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        std::fs::write(parts.join("db").join("dump"), &dump).unwrap();
        Manifest {
            format: FORMAT,
            project: "shop".into(),
            environment: "local".into(),
            created: "2026-11-29T02:40:00Z".into(),
            provisioner: "0.1.0".into(),
            services: vec![ServiceBackup {
                service: "db".into(),
                plugin: "postgres".into(),
                plugin_version: "0.1.0".into(),
                wit_version: "0.2.0".into(),
                method: "pg_dump".into(),
                notes: vec![],
                elapsed_ms: 1,
                parts: vec![Part { name: "dump".into(), bytes: dump.len() as u64, sha256: crate::digest::sha256_hex(&dump) }],
            }],
            skipped: vec![],
        }
    }

    #[test]
    fn a_packed_archive_unpacks_to_the_same_parts() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = sample(dir.path());
        let file = dir.path().join("local-20261129-024000.tar.zst");
        pack(&file, &manifest, &dir.path().join("parts"), &Recipients::default()).unwrap();
        assert!(!partial_path(&file).exists());
        assert!(!is_encrypted(&file).unwrap());
        assert_eq!(read_manifest(&file, &Identities::default()).unwrap(), manifest);
        let out = dir.path().join("out");
        assert_eq!(unpack(&file, &out, &[], &Identities::default()).unwrap(), manifest);
        assert_eq!(std::fs::read(out.join("db/dump")).unwrap(), std::fs::read(dir.path().join("parts/db/dump")).unwrap());
    }

    #[test]
    fn truncated_or_altered_archives_are_refused_naming_the_part() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = sample(dir.path());
        let file = dir.path().join("a.tar.zst");
        pack(&file, &manifest, &dir.path().join("parts"), &Recipients::default()).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let cut = dir.path().join("cut.tar.zst");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let error = unpack(&cut, &dir.path().join("o1"), &[], &Identities::default()).unwrap_err().to_string();
        assert!(error.contains("db/dump") || error.contains("the entry after `manifest.json`"), "{error}");

        // The same bytes under a manifest that expects others: the digest check.
        manifest.services[0].parts[0].sha256 = "0".repeat(64);
        let lying = dir.path().join("lying.tar.zst");
        pack(&lying, &manifest, &dir.path().join("parts"), &Recipients::default()).unwrap();
        let error = unpack(&lying, &dir.path().join("o2"), &[], &Identities::default()).unwrap_err().to_string();
        assert!(error.contains("part `db/dump` is damaged: sha256"), "{error}");

        let junk = dir.path().join("junk.tar.zst");
        std::fs::write(&junk, b"not an archive").unwrap();
        assert!(matches!(unpack(&junk, &dir.path().join("o3"), &[], &Identities::default()), Err(ArchiveError::NotABackup { .. })));
    }

    #[test]
    fn default_names_sort_by_time_and_prune_keeps_the_newest() {
        assert_eq!(default_file_name("local", "2026-11-29T02:40:07Z", false), "local-20261129-024007.tar.zst");
        assert_eq!(default_file_name("local", "2026-11-29T02:40:07Z", true), "local-20261129-024007.tar.zst.age");
        let dir = tempfile::tempdir().unwrap();
        for name in ["local-20261129-010000.tar.zst", "local-20261129-020000.tar.zst.age", "local-20261130-000000.tar.zst", "ci-20261101-000000.tar.zst"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let removed = prune(dir.path(), "local", 2).unwrap();
        assert_eq!(removed, vec![dir.path().join("local-20261129-010000.tar.zst")]);
        assert_eq!(archives(dir.path(), "local").len(), 2);
        assert_eq!(archives(dir.path(), "ci").len(), 1);
    }

    #[test]
    fn an_encrypted_archive_opens_only_with_a_recipients_key() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = sample(dir.path());
        let key = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let recipients = Recipients::parse(&[key.to_public().to_string()], &[]).unwrap();
        let file = dir.path().join("local-20261129-024000.tar.zst.age");
        pack(&file, &manifest, &dir.path().join("parts"), &recipients).unwrap();
        assert!(is_encrypted(&file).unwrap());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        // Nothing of the parts or the manifest is readable in the file.
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(8).any(|w| w == b"postgres"), "the manifest shows through");

        let error = read_manifest(&file, &Identities::default()).unwrap_err().to_string();
        assert!(error.contains("is encrypted (age): pass --identity"), "{error}");
        let error = unpack(&file, &dir.path().join("o1"), &[], &Identities::of(other)).unwrap_err().to_string();
        assert!(error.contains("none of the --identity keys is one of its recipients"), "{error}");
        assert!(!dir.path().join("o1").exists());

        let out = dir.path().join("out");
        assert_eq!(unpack(&file, &out, &[], &Identities::of(key.clone())).unwrap(), manifest);
        assert_eq!(std::fs::read(out.join("db/dump")).unwrap(), std::fs::read(dir.path().join("parts/db/dump")).unwrap());

        // A cut file fails authentication, naming no part it could not check.
        let cut = dir.path().join("cut.tar.zst.age");
        std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
        assert!(unpack(&cut, &dir.path().join("o2"), &[], &Identities::of(key)).is_err());
    }

    #[test]
    fn keys_in_the_wrong_place_are_named() {
        let key = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let secret = key.to_string().expose_secret().to_string();
        let error = Recipients::parse(&[secret], &[]).err().unwrap().to_string();
        assert!(error.contains("this is a secret key"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recipients.txt");
        std::fs::write(&file, format!("# team\n{}\nnot-a-key\n", key.to_public())).unwrap();
        let error = Recipients::parse(&[], &[file.clone()]).err().unwrap().to_string();
        assert!(error.contains("recipients.txt:3"), "{error}");
    }
}
