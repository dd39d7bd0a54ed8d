//! Platform benchmarks: plugin load (cold vs cached; a test fixture, then every
//! first-party plugin `cargo xtask plugins` built) and host-import overhead.
//! `cargo xtask bench` (or `cargo bench -p provisioner --bench platform`).
//! Each number is a median over repeated runs in this process; each is printed next
//! to the baseline it is compared with, measured in the same run.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioner::capabilities::{Effective, Grants};
use provisioner::runtime::cache::ComponentCache;
use provisioner::runtime::limits::HookLimits;
use provisioner::runtime::state::{Scope, ServiceHost};
use provisioner::runtime::{HookContext, PluginRuntime};

use common::{median, ms};

fn main() {
    let wasm = support::fixture("misbehave");
    let size_kb = std::fs::metadata(&wasm).map(|m| m.len() / 1024).unwrap_or(0);
    const RUNS: usize = 15;

    // Cold: an empty cache folder each time, so every load compiles.
    let mut cold = Vec::new();
    for _ in 0..RUNS {
        let cache = tempfile::tempdir().expect("temp dir");
        let runtime = PluginRuntime::new(ComponentCache::new(cache.path()), HookLimits::default()).expect("runtime");
        let started = Instant::now();
        let plugin = runtime.load(&wasm).expect("load");
        cold.push(started.elapsed());
        assert_eq!(plugin.cache, provisioner::runtime::cache::CacheOutcome::Miss);
    }

    // Cached: the same cache folder, a new runtime per load (as a new process would).
    let cache = tempfile::tempdir().expect("temp dir");
    PluginRuntime::new(ComponentCache::new(cache.path()), HookLimits::default()).unwrap().load(&wasm).unwrap();
    let mut cached = Vec::new();
    for _ in 0..RUNS {
        let runtime = PluginRuntime::new(ComponentCache::new(cache.path()), HookLimits::default()).expect("runtime");
        let started = Instant::now();
        let plugin = runtime.load(&wasm).expect("load");
        cached.push(started.elapsed());
        assert_eq!(plugin.cache, provisioner::runtime::cache::CacheOutcome::Hit);
    }
    let (cold, cached) = (median(cold), median(cached));
    println!("plugin load, misbehave.wasm ({size_kb} KB), median of {RUNS}:");
    println!("  cold   (compile + link + instantiate + describe): {}", ms(cold));
    println!("  cached (verify + map + link; describe answered from the cache): {}", ms(cached));
    println!("  cached / cold = {:.3}  (target: cached <= 2 ms)", cached.as_secs_f64() / cold.as_secs_f64());

    first_party_loads();

    // Host-import overhead: a hook making N no-op imports (log at a filtered-out
    // level) against the same hook making none.
    let runtime = PluginRuntime::new(ComponentCache::new(cache.path()), HookLimits::default()).unwrap();
    let plugin = runtime.load(&wasm).unwrap();
    let host = Arc::new(ServiceHost {
        scope: Scope { project: "bench".into(), environment: "local".into(), service: "calls".into(), plugin: "misbehave".into() },
        effective: Effective::new("misbehave", plugin.info.capabilities.clone(), Grants::default()),
        ..ServiceHost::sealed("misbehave", HookLimits::default())
    });
    let hook = |count: u32| {
        let ctx = HookContext {
            project: "bench".into(),
            environment: "local".into(),
            service: "calls".into(),
            config_json: format!(r#"{{"do":"calls","count":{count}}}"#),
            replicas: 1,
            image_override: None,
            monitored: false,
        };
        let started = Instant::now();
        let call = runtime.provision(&plugin, host.clone(), &ctx).expect("hook runs");
        call.value.expect("hook succeeds");
        started.elapsed()
    };
    const CALLS: u32 = 100_000;
    let baseline = median((0..RUNS).map(|_| hook(0)).collect());
    let with_calls = median((0..RUNS).map(|_| hook(CALLS)).collect());
    let per_call = (with_calls.saturating_sub(baseline)).as_secs_f64() * 1e9 / f64::from(CALLS);
    println!("host-import overhead, median of {RUNS}:");
    println!("  hook with 0 imports (baseline, fresh store + instantiate + call): {}", ms(baseline));
    println!("  hook with {CALLS} no-op imports: {}", ms(with_calls));
    println!("  per import call: {per_call:.1} ns  (hook with imports / baseline = {:.2})", with_calls.as_secs_f64() / baseline.as_secs_f64());
}

/// The cached load of every first-party plugin `cargo xtask plugins` built, as `run`
/// loads them (a new runtime per load, as a new process would), against compiling it.
/// Skipped, saying so, when they are not built.
fn first_party_loads() {
    const RUNS: usize = 15;
    let folder = support::root().join("target/plugins");
    let mut plugins: Vec<_> = std::fs::read_dir(&folder)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "wasm")).collect())
        .unwrap_or_default();
    plugins.sort();
    if plugins.is_empty() {
        println!("first-party plugins: none in {} (run `cargo xtask plugins`); skipped", folder.display());
        return;
    }
    println!("cached load of each first-party plugin, median of {RUNS} (cold: one compile):");
    let mut slowest = Duration::ZERO;
    for wasm in &plugins {
        let cache = tempfile::tempdir().expect("temp dir");
        let runtime = PluginRuntime::new(ComponentCache::new(cache.path()), HookLimits::default()).expect("runtime");
        let started = Instant::now();
        runtime.load(wasm).expect("load");
        let cold = started.elapsed();
        let cached = median(
            (0..RUNS)
                .map(|_| {
                    let runtime = PluginRuntime::new(ComponentCache::new(cache.path()), HookLimits::default()).expect("runtime");
                    let started = Instant::now();
                    let plugin = runtime.load(wasm).expect("load");
                    let took = started.elapsed();
                    assert_eq!(plugin.cache, provisioner::runtime::cache::CacheOutcome::Hit);
                    took
                })
                .collect(),
        );
        slowest = slowest.max(cached);
        let name = wasm.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let kb = std::fs::metadata(wasm).map(|m| m.len() / 1024).unwrap_or(0);
        println!("  {name:<14} {kb:>5} KB  cached {:>9}  cold {:>10}  cached / cold = {:.4}", ms(cached), ms(cold), cached.as_secs_f64() / cold.as_secs_f64());
    }
    println!("  slowest cached load: {}  (target <= 2 ms)", ms(slowest));
}
