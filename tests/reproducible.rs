//! Issue 17.1: the first-party plugins build to the same bytes wherever the checkout is,
//! so their digests can be pinned (the example's lockfile is committed) and CI can check
//! that it runs what a reviewer approved. Builds two copies of the sources in differently
//! named folders, with the flags `cargo xtask plugins` uses, and compares every
//! component, and compares them with the host's own folder.
//!
//! Not the Memcached example: it reaches the SDK by a path outside its own workspace,
//! and cargo hashes such a dependency by its absolute path into every symbol, so the
//! linked layout follows the folder. A third-party plugin that depends on the SDK by git
//! or from a registry, as a real one does, has no such path.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

/// What `cargo xtask plugins` passes (xtask's `reproducible_rustflags`) for a
/// checkout at `root`.
fn rustflags(root: &Path) -> String {
    let home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    format!("--remap-path-prefix={}=/src\x1f--remap-path-prefix={home}=/cargo", root.display())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (path, name) = (entry.path(), entry.file_name());
        if name == "target" {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

fn build(checkout: &Path, target: &Path) -> BTreeMap<String, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(checkout.join("plugins/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags(checkout))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("running cargo");
    assert!(out.status.success(), "building the plugins in {}:\n{}", checkout.display(), support::text(&out));
    // The components of this workspace's plugin crates (the folder may hold others).
    let crates: Vec<String> = std::fs::read_dir(checkout.join("plugins"))
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("Cargo.toml")).is_ok_and(|t| t.contains("cdylib")))
        .map(|e| format!("{}.wasm", e.file_name().to_string_lossy().replace('-', "_")))
        .collect();
    let built = target.join("wasm32-wasip2/release");
    std::fs::read_dir(&built)
        .unwrap()
        .flatten()
        .filter(|e| crates.contains(&e.file_name().to_string_lossy().into_owned()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))))
        .collect()
}

#[test]
fn plugins_build_to_the_same_bytes_in_any_folder() {
    let root = support::root();
    // One target folder for both copies: the crates.io dependencies build once, the
    // workspace's own crates again for each folder.
    let target = root.join("target/reproducible");
    let work = tempfile::tempdir().unwrap();
    let mut builds = Vec::new();
    for folder in ["a", "another/checkout-with-a-longer-name"] {
        let checkout = work.path().join(folder);
        for part in ["plugins", "wit"] {
            copy_tree(&root.join(part), &checkout.join(part));
        }
        builds.push(build(&checkout, &target));
    }
    assert!(builds[0].len() >= 6, "{:?}", builds[0]);
    assert_eq!(builds[0], builds[1], "the same sources built in two folders differ");

    // What the host runs (`cargo xtask plugins`, in the checkout itself) is the same too.
    for (file, sha) in &builds[0] {
        let name = file.trim_end_matches(".wasm").replace('_', "-");
        let installed = root.join("target/plugins").join(format!("{name}.wasm"));
        if let Ok(bytes) = std::fs::read(&installed) {
            assert_eq!(&hex::encode(Sha256::digest(bytes)), sha, "{} differs from a clean build", installed.display());
        }
    }
}
