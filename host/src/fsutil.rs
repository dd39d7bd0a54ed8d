//! Writing files so that a crash leaves the old contents or the new, never half:
//! the one place that stages a temporary file beside the target, sets its mode,
//! fsyncs it and renames it over the target. State, `.env`, the lockfile, signing
//! keys and installed plugins all go through here.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Mode of files only their owner may read: state, `.env`, secrets, keys, the lockfile.
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of folders only their owner may enter: `.provisioner/<env>/` and its secrets.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of files meant to be read by others: registry artifacts, installed plugins
/// (a web server or the host under another user reads them).
pub const SHARED_FILE: u32 = 0o644;

/// A file or folder that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct WriteError {
    /// What was being done: "creating", "writing", "chmod".
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl WriteError {
    fn new<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WriteError + 'a {
        move |source| WriteError { action, path: path.to_path_buf(), source }
    }
}

/// What to do about the target's folder when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// Create it (and its parents) with the default mode.
    Create,
    /// Create it if missing and make it `PRIVATE_DIR`, even when it existed.
    Private,
}

/// Write `bytes` to `path` atomically with mode 0600, creating its folder if missing.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, bytes, PRIVATE_FILE, Parent::Create)
}

/// `write_private`, unless `path` already holds exactly `bytes` with mode 0600: a
/// run that changed nothing leaves `.env` and the state untouched, so a dev server
/// watching `.env` is not restarted by every `run`. Whether it wrote.
pub fn write_private_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, WriteError> {
    use std::os::unix::fs::PermissionsExt;
    let same = fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64 && m.permissions().mode() & 0o777 == PRIVATE_FILE)
        && fs::read(path).is_ok_and(|held| held == bytes);
    if same {
        return Ok(false);
    }
    write_private(path, bytes).map(|()| true)
}

/// Like `write_private`, and the folder is made 0700 too (secrets, state).
pub fn write_private_in_private_dir(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, bytes, PRIVATE_FILE, Parent::Private)
}

/// `write_private` of `parts` one after another, so a header and a large payload need
/// not be copied into one buffer first (the component cache).
pub fn write_private_parts(path: &Path, parts: &[&[u8]]) -> Result<(), WriteError> {
    write_parts(path, parts, PRIVATE_FILE, Parent::Create)
}

/// Write `bytes` to `path` atomically with `mode`: staged in a temporary file in the
/// same folder (a rename is atomic only within one file system), synced to disk,
/// then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, parent: Parent) -> Result<(), WriteError> {
    write_parts(path, &[bytes], mode, parent)
}

fn write_parts(path: &Path, parts: &[&[u8]], mode: u32, parent: Parent) -> Result<(), WriteError> {
    // A bare file name has the current folder as its parent.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match parent {
        Parent::Create => fs::create_dir_all(dir).map_err(WriteError::new("creating", dir))?,
        Parent::Private => create_private_dir(dir)?,
    }
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(WriteError::new("writing", path))?;
    // Set before the contents go in, so they are never readable by others.
    set_mode(file.path(), mode)?;
    for part in parts {
        file.write_all(part).map_err(WriteError::new("writing", path))?;
    }
    file.as_file().sync_data().map_err(WriteError::new("writing", path))?;
    file.persist(path).map_err(|e| WriteError { action: "writing", path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Create (or truncate) `path` for writing with mode 0600 from the start: for large
/// files written as a stream, such as backup archives, which hold an app's data.
pub fn create_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(PRIVATE_FILE).open(path)?;
    // A file that existed keeps its old mode through `open`.
    file.set_permissions(<fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(PRIVATE_FILE))?;
    Ok(file)
}

/// Create `dir` (and parents) and make it readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), WriteError> {
    fs::create_dir_all(dir).map_err(WriteError::new("creating", dir))?;
    set_mode(dir, PRIVATE_DIR)
}

pub fn set_mode(path: &Path, mode: u32) -> Result<(), WriteError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(WriteError::new("chmod", path))
}

#[cfg(test)]
mod tests {
    #[test]
    fn unchanged_contents_are_not_rewritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        assert!(write_private_if_changed(&path, b"A=1\n").unwrap(), "a new file is written");
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let first = inode(&path);
        assert!(!write_private_if_changed(&path, b"A=1\n").unwrap(), "the same contents are left alone");
        assert_eq!(inode(&path), first, "not replaced");
        assert!(write_private_if_changed(&path, b"A=2\n").unwrap(), "new contents are written");
        assert_eq!(fs::read(&path).unwrap(), b"A=2\n");
        // The same contents with a looser mode are written again, which fixes the mode.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(write_private_if_changed(&path, b"A=2\n").unwrap());
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, PRIVATE_FILE);
    }

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replaces_the_file_with_the_asked_modes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/f");
        write_private(&file, b"one").unwrap();
        write_private(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        assert_eq!(mode(&file), PRIVATE_FILE);
        // Nothing left behind but the file itself.
        assert_eq!(fs::read_dir(dir.path().join("a/b")).unwrap().count(), 1);

        let secret = dir.path().join("s/f");
        write_private_in_private_dir(&secret, b"x").unwrap();
        assert_eq!((mode(&secret), mode(&dir.path().join("s"))), (PRIVATE_FILE, PRIVATE_DIR));

        let parts = dir.path().join("parts");
        write_private_parts(&parts, &[b"head", b"", b"body"]).unwrap();
        assert_eq!(fs::read(&parts).unwrap(), b"headbody");

        let shared = dir.path().join("p.wasm");
        write_atomic(&shared, b"x", SHARED_FILE, Parent::Create).unwrap();
        assert_eq!(mode(&shared), SHARED_FILE);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "").unwrap();
        let err = write_private(&dir.path().join("file/inside"), b"x").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
