//! `archive`: the parts of one service's backup, moved between its containers and a
//! folder of files on disk (which `crate::backup` packs into, or unpacked from, the
//! archive). An exec's output goes to its part's file as it comes and a part goes into
//! an exec's input as the command reads it, so no part is ever held whole, neither by
//! the host nor by the plugin.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::service::{HostCalls, HostError};
use crate::engine::{ExecRequest, ExecResult};
use crate::spec::ExecOptions;

/// Most bytes one `archive.read` returns.
pub const MAX_READ: u32 = 4 << 20;
/// What `load-exec` keeps of a command's output, each stream.
const LOAD_OUTPUT_CAP: usize = 1 << 20;

/// One part of a service's backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Whether the session writes a backup or reads one back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Backup,
    Restore,
}

/// The parts of one service during one `backup` or `restore`: the files in `dir`.
pub struct ArchiveSession {
    direction: Direction,
    dir: PathBuf,
    /// Finished parts (backup), or the manifest's parts, each file already verified
    /// against its digest (restore).
    parts: Mutex<BTreeMap<String, Part>>,
    /// Parts being appended to: the digest so far and the length.
    appending: Mutex<BTreeMap<String, (Sha256, u64)>>,
}

impl ArchiveSession {
    /// A session writing parts into `dir` (created).
    pub fn backup(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self::new(Direction::Backup, dir, Vec::new()))
    }

    /// A session reading `parts` from `dir`, whose files the caller has verified.
    pub fn restore(dir: &Path, parts: Vec<Part>) -> Self {
        Self::new(Direction::Restore, dir, parts)
    }

    fn new(direction: Direction, dir: &Path, parts: Vec<Part>) -> Self {
        ArchiveSession {
            direction,
            dir: dir.to_path_buf(),
            parts: Mutex::new(parts.into_iter().map(|p| (p.name.clone(), p)).collect()),
            appending: Mutex::default(),
        }
    }

    /// Every part, the appended ones finished: what the manifest records.
    pub fn finish(&self) -> Vec<Part> {
        let mut parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for (name, (digest, bytes)) in std::mem::take(&mut *self.appending.lock().unwrap_or_else(PoisonError::into_inner)) {
            parts.insert(name.clone(), Part { name, bytes, sha256: hex::encode(digest.finalize()) });
        }
        parts.into_values().collect()
    }

    fn path(&self, part: &str) -> PathBuf {
        self.dir.join(part)
    }
}

/// Lower-case letters, digits, `-`, `_` and `.`, not starting with `.`: a plain file
/// name on every system, never a path.
pub fn is_valid_part_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Hashes and counts what goes through it on the way to a file.
struct HashingWriter {
    file: File,
    digest: Sha256,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        self.digest.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Keeps the first `cap` bytes written to it.
struct CappedBuffer {
    bytes: Vec<u8>,
    cap: usize,
}

impl Write for CappedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn io_error(what: &str, part: &str, error: std::io::Error) -> HostError {
    HostError::Engine(format!("{what} part `{part}`: {error}"))
}

impl HostCalls {
    fn session(&self, direction: Direction, call: &str) -> Result<&ArchiveSession, HostError> {
        let when = match direction {
            Direction::Backup => "inside the `backup` hook",
            Direction::Restore => "inside the `restore` hook",
        };
        match self.host.archive.as_deref() {
            Some(session) if session.direction == direction => Ok(session),
            _ => Err(HostError::Invalid(format!("archive.{call} works only {when}"))),
        }
    }

    fn part_name(name: &str) -> Result<(), HostError> {
        if is_valid_part_name(name) {
            Ok(())
        } else {
            Err(HostError::Invalid(format!(
                "part name `{name}`: use 1 to 64 lower-case letters, digits, `-`, `_` and `.`, not starting with `.`"
            )))
        }
    }

    fn exec_request(&mut self, container: &str, command: Vec<String>, options: ExecOptions) -> Result<ExecRequest, HostError> {
        if let Err(refusal) = self.host.effective.check_exec(container) {
            return Err(self.deny(refusal));
        }
        if !crate::naming::is_valid_short_name(container) {
            return Err(HostError::Invalid(format!("container name `{container}`")));
        }
        if command.is_empty() {
            return Err(HostError::Invalid("an empty command".into()));
        }
        if options.stdin.is_some() {
            return Err(HostError::Invalid("`options.stdin` with an archive exec: the part is the command's input or output".into()));
        }
        for var in options.env.iter().filter(|v| v.secret) {
            self.remember_secret(&var.value);
        }
        Ok(ExecRequest {
            command,
            env: options.env.into_iter().map(|v| (v.name, v.value)).collect(),
            user: options.user,
            workdir: options.workdir,
            stdin: None,
        })
    }

    /// Run `command` in `container`, its standard output becoming part `part`.
    pub fn archive_save_exec(&mut self, part: &str, container: &str, command: Vec<String>, options: ExecOptions) -> Result<Part, HostError> {
        Self::part_name(part)?;
        let request = self.exec_request(container, command, options)?;
        let session = self.session(Direction::Backup, "save-exec")?;
        let taken = session.parts.lock().unwrap_or_else(PoisonError::into_inner).contains_key(part)
            || session.appending.lock().unwrap_or_else(PoisonError::into_inner).contains_key(part);
        if taken {
            return Err(HostError::Invalid(format!("part `{part}` already exists in this backup")));
        }
        let path = session.path(part);
        let file = File::create(&path).map_err(|e| io_error("creating", part, e))?;
        let mut writer = HashingWriter { file, digest: Sha256::new(), bytes: 0 };
        let realiser = self.host.realiser.clone();
        let result = realiser.exec_streaming(self.scope(), container, &request, None, &mut writer);
        let outcome = match result {
            Ok(out) if out.exit_code == 0 => writer.file.sync_all().map_err(|e| io_error("writing", part, e)),
            Ok(out) => Err(HostError::Engine(format!(
                "`{}` exited with {} after {} bytes: {}",
                request.command[0],
                out.exit_code,
                writer.bytes,
                self.mask(String::from_utf8_lossy(&out.stderr).trim(), 2000, true)
            ))),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = outcome {
            let _ = std::fs::remove_file(&path);
            return Err(error);
        }
        let saved = Part { name: part.to_string(), bytes: writer.bytes, sha256: hex::encode(writer.digest.finalize()) };
        session.parts.lock().unwrap_or_else(PoisonError::into_inner).insert(part.to_string(), saved.clone());
        Ok(saved)
    }

    /// Append `contents` to part `part`.
    pub fn archive_append(&mut self, part: &str, contents: &[u8]) -> Result<(), HostError> {
        Self::part_name(part)?;
        let session = self.session(Direction::Backup, "append")?;
        if session.parts.lock().unwrap_or_else(PoisonError::into_inner).contains_key(part) {
            return Err(HostError::Invalid(format!("part `{part}` was saved by `save-exec`; append to a part of its own")));
        }
        let mut appending = session.appending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut file = OpenOptions::new().create(true).append(true).open(session.path(part)).map_err(|e| io_error("opening", part, e))?;
        file.write_all(contents).map_err(|e| io_error("writing", part, e))?;
        let (digest, bytes) = appending.entry(part.to_string()).or_insert_with(|| (Sha256::new(), 0));
        digest.update(contents);
        *bytes += contents.len() as u64;
        Ok(())
    }

    /// The parts saved so far, or the archive's parts of this service.
    pub fn archive_parts(&mut self) -> Result<Vec<Part>, HostError> {
        match self.host.archive.as_deref() {
            Some(session) => {
                let mut parts: Vec<Part> = session.parts.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
                let appending = session.appending.lock().unwrap_or_else(PoisonError::into_inner);
                // An appended part's digest is known when the backup ends; its size now.
                parts.extend(appending.iter().map(|(name, (_, bytes))| Part { name: name.clone(), bytes: *bytes, sha256: String::new() }));
                parts.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(parts)
            }
            None => Err(HostError::Invalid("archive.parts works only inside the `backup` and `restore` hooks".into())),
        }
    }

    fn restore_part(&self, call: &str, part: &str) -> Result<PathBuf, HostError> {
        let session = self.session(Direction::Restore, call)?;
        if !session.parts.lock().unwrap_or_else(PoisonError::into_inner).contains_key(part) {
            return Err(HostError::NotFound(format!("part `{part}` in this service's backup")));
        }
        Ok(session.path(part))
    }

    /// Run `command` in `container` with part `part` as its standard input.
    pub fn archive_load_exec(&mut self, part: &str, container: &str, command: Vec<String>, options: ExecOptions) -> Result<ExecResult, HostError> {
        Self::part_name(part)?;
        let request = self.exec_request(container, command, options)?;
        let path = self.restore_part("load-exec", part)?;
        let mut file = File::open(&path).map_err(|e| io_error("opening", part, e))?;
        let mut stdout = CappedBuffer { bytes: Vec::new(), cap: LOAD_OUTPUT_CAP };
        let realiser = self.host.realiser.clone();
        let mut result = realiser.exec_streaming(self.scope(), container, &request, Some(&mut file), &mut stdout)?;
        result.stdout = stdout.bytes;
        result.stderr.truncate(LOAD_OUTPUT_CAP);
        Ok(result)
    }

    /// Up to `max` bytes of part `part` from `offset`.
    pub fn archive_read(&mut self, part: &str, offset: u64, max: u32) -> Result<Vec<u8>, HostError> {
        Self::part_name(part)?;
        let path = self.restore_part("read", part)?;
        let mut file = File::open(&path).map_err(|e| io_error("opening", part, e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| io_error("reading", part, e))?;
        let mut bytes = Vec::new();
        file.take(u64::from(max.min(MAX_READ))).read_to_end(&mut bytes).map_err(|e| io_error("reading", part, e))?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_are_plain_file_names() {
        for ok in ["dump", "definitions.json", "objects-0001", "a_b"] {
            assert!(is_valid_part_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "../x", "a/b", "Dump", "x y", &"a".repeat(65)] {
            assert!(!is_valid_part_name(bad), "{bad}");
        }
    }
}
