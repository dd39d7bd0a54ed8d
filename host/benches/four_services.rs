//! The four data services to ready, in one benchmark run, median of 3 each:
//! A: `provisioner run local`, cold, all four (started in parallel);
//! B: the baseline — the same four started one after another by `sequential.sh`, in
//!    the style of the seed's provision.sh (start, wait until ready, next);
//! C: each service alone with `provisioner run local` (the slowest is the floor).
//! Prints A/B and A/slowest C, the warm no-op run of the four, and how much CPU the
//! machine spent during A (the floor A cannot beat on this many cores), and A against
//! the larger of that floor and the slowest C.
//! Needs what `cargo xtask test` prepares; run it with `cargo xtask bench`.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::median;

const RUNS: usize = 3;

const SERVICES: &[(&str, &str, &str, &str)] = &[
    ("db", "postgres", "provisioner-offline/postgres:15", "{ database = \"shop\" }"),
    ("cache", "redis", "provisioner-offline/redis:7", "{}"),
    ("files", "s3", "provisioner-offline/garage:2.5.0", "{ buckets = [\"attachments\"] }"),
    ("queue", "rabbitmq", "provisioner-offline/rabbitmq:3", "{ vhost = \"shop\" }"),
];

fn project(name: &str, services: &[(&str, &str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let images: Vec<String> = services.iter().map(|(s, _, image, _)| format!("{s} = \"{image}\"")).collect();
    let mut toml = format!("[project]\nname = \"{name}\"\n[environments.local]\nimages = {{ {} }}\n", images.join(", "));
    for (service, plugin, _, config) in services {
        toml.push_str(&format!("[services.{service}]\nplugin = \"{plugin}\"\nconfig = {config}\n"));
    }
    std::fs::write(dir.path().join("provisioner.toml"), toml).unwrap();
    dir
}

fn timed(mut command: Command) -> Duration {
    let started = Instant::now();
    let out = command.output().expect("starting a benchmark command");
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{command:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    elapsed
}

fn provisioner(dir: &Path, args: &[&str]) -> Duration {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provisioner"));
    command.args(args).current_dir(dir);
    timed(command)
}

/// Remove everything labelled for `name`.
fn clean(name: &str) {
    let filter = format!("label=provisioner.project={name}");
    for (list, remove) in [
        (vec!["ps", "-aq", "--filter", filter.as_str()], vec!["rm", "-f", "-v"]),
        (vec!["volume", "ls", "-q", "--filter", filter.as_str()], vec!["volume", "rm", "-f"]),
        (vec!["network", "ls", "-q", "--filter", filter.as_str()], vec!["network", "rm"]),
    ] {
        let out = Command::new("docker").args(&list).output().expect("docker");
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("docker").args(&remove).arg(id).output();
        }
    }
}

fn s(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    let (mut a, mut b, mut warm, mut a_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut c: Vec<Vec<Duration>> = vec![Vec::new(); SERVICES.len()];
    for _ in 0..RUNS {
        // A, then the warm no-op run on the same stack.
        let name = support::unique_name("bench-a");
        let dir = project(&name, SERVICES);
        let busy_before = common::machine_busy();
        a.push(provisioner(dir.path(), &["run", "local"]));
        if let (Some(before), Some(after)) = (busy_before, common::machine_busy()) {
            a_cpu.push(after.saturating_sub(before));
        }
        warm.push(provisioner(dir.path(), &["run", "local"]));
        provisioner(dir.path(), &["teardown", "local"]);
        clean(&name);

        // B
        let name = support::unique_name("bench-b");
        let mut script = Command::new("bash");
        script.arg(support::root().join("host/benches/sequential.sh")).arg(&name);
        b.push(timed(script));
        clean(&name);

        // C
        for (i, service) in SERVICES.iter().enumerate() {
            let name = support::unique_name("bench-c");
            let dir = project(&name, std::slice::from_ref(service));
            c[i].push(provisioner(dir.path(), &["run", "local"]));
            provisioner(dir.path(), &["teardown", "local"]);
            clean(&name);
        }
    }
    let (a, b, warm) = (median(a), median(b), median(warm));
    let c: Vec<Duration> = c.into_iter().map(median).collect();
    let (slowest, slowest_c) = c.iter().enumerate().max_by_key(|(_, d)| **d).map(|(i, d)| (SERVICES[i].0, *d)).unwrap();
    println!("four data services to ready (PostgreSQL, Redis, S3/Garage, RabbitMQ), median of {RUNS}:");
    println!("  A  provisioner run local, cold:            {}", s(a));
    println!("  B  one after another (sequential.sh):      {}", s(b));
    for (i, d) in c.iter().enumerate() {
        println!("  C  {:<6} alone:                          {}", SERVICES[i].0, s(*d));
    }
    println!("  A / B            = {:.2}  (target <= 0.60)", a.as_secs_f64() / b.as_secs_f64());
    println!("  A / slowest C    = {:.2}  (slowest: {slowest}; target <= 1.15)", a.as_secs_f64() / slowest_c.as_secs_f64());
    println!("  warm no-op run of the four: {:.0} ms  (target <= 150 ms)", warm.as_secs_f64() * 1e3);
    // A runs the four boots at once: when together they need more CPU than the cores
    // give in the slowest one's time, A cannot come near C. Shown so that is visible.
    if !a_cpu.is_empty() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let cpu = median(a_cpu);
        println!(
            "  CPU busy during A (whole machine): {}  = {:.2} s of {cores} cores' time, {:.2} x slowest C",
            s(cpu),
            cpu.as_secs_f64() / cores as f64,
            cpu.as_secs_f64() / cores as f64 / slowest_c.as_secs_f64()
        );
        let floor = slowest_c.as_secs_f64().max(cpu.as_secs_f64() / cores as f64);
        println!("  A / max(slowest C, CPU floor) = {:.2}  (target <= 1.10)", a.as_secs_f64() / floor);
    }
}
