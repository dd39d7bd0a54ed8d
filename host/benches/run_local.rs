//! `provisioner run local` with PostgreSQL and Redis on the real engine:
//! cold (new volumes), warm (nothing to do) and teardown, median of 3 each, with
//! per-service times from the run's own JSON summary.
//! Needs what `cargo xtask test` prepares (Docker, the offline images, the plugins);
//! run it with `cargo xtask bench`.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{median, whole_ms};

const RUNS: usize = 3;

fn provisioner(dir: &Path, args: &[&str]) -> (Duration, serde_json::Value) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_provisioner")).args(args).current_dir(dir).output().expect("provisioner");
    let elapsed = started.elapsed();
    assert!(out.status.success(), "provisioner {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (elapsed, serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
}

fn main() {
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut down = Vec::new();
    let mut per_service: std::collections::BTreeMap<String, (Vec<u64>, Vec<u64>)> = Default::default();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let name = support::unique_name("bench");
        std::fs::write(
            dir.path().join("provisioner.toml"),
            format!(
                "[project]\nname = \"{name}\"\n[environments.local]\nimages = {{ db = \"provisioner-offline/postgres:15\", cache = \"provisioner-offline/redis:7\" }}\n\
                 [services.db]\nplugin = \"postgres\"\n[services.cache]\nplugin = \"redis\"\n"
            ),
        )
        .unwrap();
        let (t, summary) = provisioner(dir.path(), &["run", "local", "--json"]);
        cold.push(t);
        for s in summary["services"].as_array().into_iter().flatten() {
            let entry = per_service.entry(s["service"].as_str().unwrap_or("?").to_string()).or_default();
            entry.0.push(s["provision_ms"].as_u64().unwrap_or(0));
            entry.1.push(s["ready_ms"].as_u64().unwrap_or(0));
        }
        for _ in 0..RUNS {
            warm.push(provisioner(dir.path(), &["run", "local", "--json"]).0);
        }
        down.push(provisioner(dir.path(), &["teardown", "local", "--json"]).0);
    }
    let (cold, warm, down) = (median(cold), median(warm), median(down));
    println!("run local, PostgreSQL + Redis, median of {RUNS} (whole command, wall clock):");
    println!("  cold run (new volumes):    {}", whole_ms(cold));
    for (service, (provision, ready)) in per_service {
        println!("    {service:<6} provision {} ms, ready {} ms", median(provision), median(ready));
    }
    println!("  warm run (nothing to do):  {}   (target <= 150 ms; warm / cold = {:.3})", whole_ms(warm), warm.as_secs_f64() / cold.as_secs_f64());
    println!("  teardown:                  {}   (target <= 2 s)", whole_ms(down));
}
