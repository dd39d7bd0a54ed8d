//! Issue 17.1: the first-party plugins and the Memcached example build to the same bytes
//! wherever the checkout is, so their digests can be pinned (the examples' lockfiles are
//! committed) and CI can check that it runs what a reviewer approved. Builds two copies
//! of the sources in differently named folders, with the flags `cargo xtask plugins`
//! uses, compares every component, and compares them with what the committed
//! lockfiles pin and with the host's own folder.
//!
//! The Memcached example has a workspace of its own and reaches the SDK through a
//! symbolic link inside it (`examples/plugins/memcached/sdk`): cargo names a dependency
//! outside the workspace by its absolute path, and that name reaches every symbol.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (path, name) = (entry.path(), entry.file_name());
        if name == "target" {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&path).unwrap(), to.join(&name)).unwrap();
        } else if kind.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// `cargo build` of the wasm workspace at `manifest` in `checkout`, as xtask does.
fn cargo_build(checkout: &Path, manifest: &Path, target: &Path) {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_ENCODED_RUSTFLAGS", support::reproducible_rustflags(checkout))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("running cargo");
    assert!(out.status.success(), "building {}:\n{}", manifest.display(), support::text(&out));
}

/// Every component a checkout builds (the first-party plugins and the Memcached
/// example): file name → sha256.
fn build(checkout: &Path, target: &Path) -> BTreeMap<String, String> {
    cargo_build(checkout, &checkout.join("plugins/Cargo.toml"), target);
    cargo_build(checkout, &checkout.join("examples/plugins/memcached/Cargo.toml"), target);
    // The components of this workspace's plugin crates (the folder may hold others).
    let mut crates: Vec<String> = std::fs::read_dir(checkout.join("plugins"))
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("Cargo.toml")).is_ok_and(|t| t.contains("cdylib")))
        .map(|e| format!("{}.wasm", e.file_name().to_string_lossy().replace('-', "_")))
        .collect();
    crates.push("memcached.wasm".into());
    let built = target.join("wasm32-wasip2/release");
    std::fs::read_dir(&built)
        .unwrap()
        .flatten()
        .filter(|e| crates.contains(&e.file_name().to_string_lossy().into_owned()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))))
        .collect()
}

/// What a committed lockfile pins: plugin name → sha256.
fn pinned(lockfile: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(lockfile).unwrap_or_else(|e| panic!("{} is committed: {e}", lockfile.display()));
    let lock: toml::Value = toml::from_str(&text).unwrap();
    lock["plugins"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(name, entry)| (name.clone(), entry["sha256"].as_str().unwrap().to_string()))
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
        for part in ["plugins", "wit", "examples/plugins/memcached"] {
            copy_tree(&root.join(part), &checkout.join(part));
        }
        builds.push(build(&checkout, &target));
    }
    assert!(builds[0].len() >= 7 && builds[0].contains_key("memcached.wasm"), "{:?}", builds[0]);
    assert_eq!(builds[0], builds[1], "the same sources built in two folders differ");

    // The committed lockfiles pin exactly these builds.
    for example in ["ticketing", "memcached"] {
        let lockfile = root.join("examples").join(example).join("provisioner.lock");
        let pins = pinned(&lockfile);
        assert!(!pins.is_empty(), "{} pins no plugin", lockfile.display());
        for (plugin, sha) in pins {
            let built = builds[0].get(&format!("{}.wasm", plugin.replace('-', "_")));
            assert_eq!(
                built,
                Some(&sha),
                "{} pins {plugin} at {sha}, a clean build gives {built:?}: rebuild (`cargo xtask plugins`) and review the lock",
                lockfile.display()
            );
        }
    }

    // What the host runs (`cargo xtask plugins`, in the checkout itself) is the same too.
    for (file, sha) in &builds[0] {
        let name = file.trim_end_matches(".wasm").replace('_', "-");
        let installed = root.join("target/plugins").join(format!("{name}.wasm"));
        if let Ok(bytes) = std::fs::read(&installed) {
            assert_eq!(&hex::encode(Sha256::digest(bytes)), sha, "{} differs from a clean build", installed.display());
        }
    }
}
