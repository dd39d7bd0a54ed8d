//! Shared by the test suites: building the fixture plugins for wasm32-wasip2, and
//! throwaway project folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Build the crates of a wasm workspace (`manifest`) and return the folder holding
/// their `.wasm` files. Built once per test process; cargo makes it a no-op when
/// nothing changed.
fn build_wasm(manifest: &Path) -> PathBuf {
    let target_dir = root().join("target").join("wasm");
    let status = Command::new(cargo())
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("running cargo");
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed; is the target installed? (rustup target add wasm32-wasip2)",
        manifest.display()
    );
    target_dir.join("wasm32-wasip2").join("release")
}

/// The folder with the fixture plugins `misbehave.wasm` and `future_wit.wasm`.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_wasm(&root().join("tests/fixtures/Cargo.toml")))
}

pub fn fixture(name: &str) -> PathBuf {
    let path = fixtures().join(format!("{name}.wasm"));
    assert!(path.is_file(), "fixture {} was not built", path.display());
    path
}

/// A fresh folder holding `provisioner.toml` with `contents` and a `plugins/` folder
/// with the given fixture plugins.
pub fn project(contents: &str, plugins: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("provisioner.toml"), contents).expect("writing provisioner.toml");
    std::fs::create_dir(dir.path().join("plugins")).expect("plugins dir");
    for plugin in plugins {
        std::fs::copy(fixture(plugin), dir.path().join("plugins").join(format!("{plugin}.wasm"))).expect("copying fixture");
    }
    dir
}

/// A project name no other test run uses.
pub fn unique_name(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % 0xfffff)
}
