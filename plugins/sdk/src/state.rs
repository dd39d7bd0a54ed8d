//! Small files in the service's own state folder (needs `state-files`).

const DIR: &str = "/state";

pub fn read(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("{DIR}/{name}")).ok()
}

pub fn write(name: &str, contents: &str) -> Result<(), String> {
    std::fs::write(format!("{DIR}/{name}"), contents).map_err(|e| format!("writing {DIR}/{name}: {e}"))
}

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
