//! Installing a plugin from an OCI registry: cold (nothing on disk: manifest, blob,
//! signature, digest and signature checks, compile, write), cold with the compiled
//! component already cached, and again when the digest is already installed (should
//! be a no-op: under 20 ms). Against a local registry (Debian's `docker-registry`,
//! `tests/images/registry`) started here and removed at the end.
//! `cargo xtask bench` (or `cargo bench -p provisioner --bench oci_install`).

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use provisioner::config::RegistrySettings;
use provisioner::distribution::oci::{self, OciRef};
use provisioner::distribution::signing;
use provisioner::runtime::cache::ComponentCache;
use provisioner::runtime::limits::HookLimits;
use provisioner::runtime::PluginRuntime;

use common::{median, ms};

fn runtime(cache: &std::path::Path) -> PluginRuntime {
    PluginRuntime::new(ComponentCache::new(cache), HookLimits::default()).expect("runtime")
}

fn main() {
    let registry = support::oci_registry::Registry::start(None);
    let wasm = support::example_plugin("memcached");
    let size_kb = std::fs::metadata(&wasm).map(|m| m.len() / 1024).unwrap_or(0);
    let work = tempfile::tempdir().expect("temp dir");
    let key = work.path().join("publisher.key");
    let public = signing::public_key_text(&signing::generate(&key).expect("keygen"));
    let settings = RegistrySettings { trusted_keys: vec![public], ..RegistrySettings::default() };
    // The machine's Docker logins play no part.
    std::env::set_var("DOCKER_CONFIG", work.path());

    let shared_cache = work.path().join("cache");
    let tag = OciRef::parse(&registry.reference("plugins/memcached:0.1.0")).expect("reference");
    let pushed = oci::push(&wasm, &tag, Some(&key), &runtime(&shared_cache), &[]).expect("push");
    let pinned = OciRef::parse(&pushed.reference).expect("pinned reference");
    const COLD_RUNS: usize = 5;
    const WARM_RUNS: usize = 50;

    // Cold: an empty plugins folder and an empty component cache, as on a fresh CI runner.
    let mut cold = Vec::new();
    for _ in 0..COLD_RUNS {
        let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let runtime = runtime(cache.path());
        let started = Instant::now();
        let installed = oci::install(&tag, &settings, &runtime, dir.path()).expect("install");
        cold.push(started.elapsed());
        assert!(installed.changed);
    }
    // Cold download, but the compiled component cached (a developer's machine).
    let mut downloaded = Vec::new();
    for _ in 0..COLD_RUNS {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime(&shared_cache);
        let started = Instant::now();
        oci::install(&tag, &settings, &runtime, dir.path()).expect("install");
        downloaded.push(started.elapsed());
    }
    // Present: the same digest is installed already.
    let dir = tempfile::tempdir().unwrap();
    oci::install(&tag, &settings, &runtime(&shared_cache), dir.path()).expect("install");
    let (mut by_digest, mut by_tag) = (Vec::new(), Vec::new());
    for _ in 0..WARM_RUNS {
        let runtime = runtime(&shared_cache);
        let started = Instant::now();
        let installed = oci::install(&pinned, &settings, &runtime, dir.path()).expect("install");
        by_digest.push(started.elapsed());
        assert!(!installed.changed);
        let started = Instant::now();
        let installed = oci::install(&tag, &settings, &runtime, dir.path()).expect("install");
        by_tag.push(started.elapsed());
        assert!(!installed.changed);
    }
    // The whole command a user types, process start and plugin discovery included.
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("provisioner.toml"),
        format!("[project]\nname = \"bench\"\n\n[registry]\ntrusted_keys = [\"{}\"]\n", settings.trusted_keys[0]),
    )
    .unwrap();
    let command = |reference: &str| {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .args(["plugins", "install", reference])
            .current_dir(project.path())
            .env("DOCKER_CONFIG", work.path())
            .env("PROVISIONER_CACHE_DIR", &shared_cache)
            .output()
            .expect("provisioner");
        assert!(out.status.success(), "{}", support::text(&out));
        started.elapsed()
    };
    let cli_cold = command(&pushed.reference);
    let cli_present = median((0..10).map(|_| command(&pushed.reference)).collect());

    let (cold, downloaded, by_digest, by_tag) = (median(cold), median(downloaded), median(by_digest), median(by_tag));
    println!("plugin install from a local OCI registry, memcached.wasm ({size_kb} KB), signed:");
    println!("  cold, nothing cached (fetch + verify + compile + write), median of {COLD_RUNS}: {}", ms(cold));
    println!("  cold, compiled component cached, median of {COLD_RUNS}:                      {}", ms(downloaded));
    println!("  digest already installed, by @sha256 (no request), median of {WARM_RUNS}:       {}", ms(by_digest));
    println!("  digest already installed, by tag (one manifest request), median of {WARM_RUNS}: {}", ms(by_tag));
    println!("  present / cold = {:.4} by digest, {:.4} by tag  (target: present by digest < 20 ms)", by_digest.as_secs_f64() / cold.as_secs_f64(), by_tag.as_secs_f64() / cold.as_secs_f64());
    println!("  `provisioner plugins install oci://…@sha256:…` as a command: first {}, present {}", ms(cli_cold), ms(cli_present));
    // The pinned install is the no-op a locked project makes; a tag costs one round trip
    // to the registry (and the client's setup) on top.
    assert!(by_digest < Duration::from_millis(20), "an install of a present digest must be a no-op");
}
