//! Small files in the service's own state folder (needs `state-files`).

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
const DIR: &str = "/state";

#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub use crate::testing::imports::state::{read, remove, write};

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
pub fn read(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("{DIR}/{name}")).ok()
}

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
/// Replace the file `name` with `contents`, atomically: staged beside it and renamed
/// over it, so a full disk or a cut-off hook leaves the old contents (or none), never
/// a half-written file that could pass for a marker.
pub fn write(name: &str, contents: &str) -> Result<(), String> {
    let (path, staged) = (format!("{DIR}/{name}"), format!("{DIR}/.{name}.new"));
    let result = std::fs::write(&staged, contents).and_then(|()| std::fs::rename(&staged, &path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        format!("writing {path}: {e}")
    })
}

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
pub fn remove(name: &str) {
    let _ = std::fs::remove_file(format!("{DIR}/{name}"));
}

/// Run `setup` unless it last succeeded with this same `key` and `deployment` left
/// the container as it was; then remember `key` in the file `marker`. So a warm run
/// skips a one-time setup. Put in `key` what the setup depends on (the container's
/// id, the settings it applied, a digest of a password — never the password).
pub fn once(marker: &str, key: &str, deployment: &crate::Deployment, setup: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    if deployment.outcome == crate::EnsureOutcome::Unchanged && read(marker).as_deref() == Some(key) {
        return Ok(());
    }
    setup()?;
    write(marker, key)
}
