//! What monitoring costs the example stack (examples/ticketing), cold, from nothing to
//! `GET /health` answering 200 through the load balancer; median of 3 each, interleaved
//! in one run:
//! P: `provisioner run local` of the example as it is;
//! M: the same with `[services.metrics] plugin = "prometheus"` added (Prometheus,
//!    Alertmanager, the PostgreSQL and Redis exporters, RabbitMQ's endpoint).
//! Prints M/P (target <= 1.10) and the memory the monitoring containers use once the
//! first scrapes are in (`docker stats`). Needs what `cargo xtask test` prepares; run it
//! with `cargo bench -p provisioner --bench monitoring`.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::median;

const RUNS: usize = 3;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn until_healthy(url: &str) {
    if let Err(last) = support::until_ok(url, Duration::from_secs(180)) {
        panic!("{url} did not answer 200 within 180 s (last: {last})");
    }
}

/// Memory use in MiB of each container of `project` that monitoring adds.
fn monitoring_memory(project: &str) -> Vec<(String, f64)> {
    let names = support::docker(&["ps", "--format", "{{.Names}}", "--filter", &format!("label=provisioner.project={project}")]);
    let ours: Vec<&str> = names.lines().filter(|n| n.contains("-metrics-") || n.ends_with("-exporter")).collect();
    if ours.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"];
    args.extend(ours.iter().copied());
    support::docker(&args)
        .lines()
        .filter_map(|line| {
            let (name, usage) = line.split_once(' ')?;
            let used = usage.split('/').next()?.trim();
            let (number, unit) = used.split_at(used.find(|c: char| c.is_ascii_alphabetic())?);
            let number: f64 = number.parse().ok()?;
            let mib = match unit {
                "KiB" => number / 1024.0,
                "MiB" => number,
                "GiB" => number * 1024.0,
                _ => number / (1024.0 * 1024.0),
            };
            Some((name.strip_prefix(&format!("{project}-local-")).unwrap_or(name).to_string(), mib))
        })
        .collect()
}

/// One cold run to /health; with `monitored`, also the monitoring containers' memory
/// once Prometheus has scraped for a few intervals.
fn cold(monitored: bool) -> (Duration, Vec<(String, f64)>) {
    let port = free_port();
    let stack = support::Stack::from_file(if monitored { "bench-m" } else { "bench-p" }, &support::root().join("examples/ticketing/provisioner.toml"));
    stack.edit("port = 3000", &format!("port = {port}"));
    if monitored {
        let file = stack.path().join("provisioner.toml");
        let mut toml = std::fs::read_to_string(&file).expect("provisioner.toml");
        toml.push_str("\n[services.metrics]\nplugin = \"prometheus\"\n");
        std::fs::write(&file, toml).expect("writing provisioner.toml");
    }
    let started = Instant::now();
    let out = stack.run(&["run", "local"]);
    assert!(out.status.success(), "provisioner run local: {}", support::text(&out));
    until_healthy(&format!("http://127.0.0.1:{port}/health"));
    let took = started.elapsed();
    let memory = if monitored {
        std::thread::sleep(Duration::from_secs(35));
        monitoring_memory(&stack.name)
    } else {
        Vec::new()
    };
    drop(stack); // tears down, volumes included
    (took, memory)
}

fn main() {
    let leftovers = support::docker(&["ps", "-aq"]);
    if !leftovers.trim().is_empty() {
        eprintln!("warning: {} containers exist already; they skew the timings", leftovers.lines().count());
    }
    let (mut p, mut m, mut memory) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        p.push(cold(false).0);
        let (took, used) = cold(true);
        m.push(took);
        memory = used;
    }
    let show = |v: &[Duration]| v.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ");
    println!("example stack (examples/ticketing), cold to GET /health 200 through the load balancer:");
    println!("  P  without monitoring:           runs [{}] s", show(&p));
    println!("  M  with plugin = \"prometheus\":   runs [{}] s", show(&m));
    let (p, m) = (median(p), median(m));
    println!("  median P {:.2} s, M {:.2} s;  M / P = {:.2}  (target <= 1.10)", p.as_secs_f64(), m.as_secs_f64(), m.as_secs_f64() / p.as_secs_f64());
    let total: f64 = memory.iter().map(|(_, mib)| mib).sum();
    println!("  monitoring's memory after 35 s of scraping (docker stats), {total:.0} MiB in all:");
    for (name, mib) in &memory {
        println!("    {name:<24} {mib:>7.1} MiB");
    }
}
