//! What monitoring costs the example stack (examples/ticketing), cold, from nothing to
//! `GET /health` answering 200 through the load balancer; median of 3 each, interleaved
//! in one run:
//! P: `provisioner run local` of the example as it is;
//! M: the same with `[services.metrics] plugin = "prometheus"` added (Prometheus,
//!    Alertmanager, the PostgreSQL, Redis and nginx exporters, RabbitMQ's endpoint,
//!    and the blackbox exporter probing the backend's instance): the collector starts
//!    alongside the other services (the default);
//! D: M with `depends_on = ["web"]` on the collector: it starts once the app answers.
//! Each run is timed twice: to the first `GET /health` 200 (polled while `run` works:
//! when the app is usable) and to `run` returning. Prints M/P of both (the target,
//! <= 1.10, is for /health) and the memory the monitoring containers use once the
//! first scrapes are in (`docker stats`). Needs what `cargo xtask test` prepares; run it
//! with `cargo bench -p provisioner --bench monitoring`.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::median;

const RUNS: usize = 3;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
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

/// How a run is monitored.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    P,
    M,
    D,
}

/// One cold run: (H) from its start to the first `GET /health` 200, polled while it
/// runs, and (R) to `run` returning; monitored, also the monitoring containers'
/// memory once Prometheus has scraped for a while.
fn cold(variant: Variant) -> (Duration, Duration, Option<Duration>, Vec<(String, f64)>) {
    let port = free_port();
    let prefix = match variant {
        Variant::P => "bench-p",
        Variant::M => "bench-m",
        Variant::D => "bench-d",
    };
    let stack = support::Stack::from_file(prefix, &support::root().join("examples/ticketing/provisioner.toml"));
    stack.edit("port = 3000", &format!("port = {port}"));
    let monitored = variant != Variant::P;
    if monitored {
        let file = stack.path().join("provisioner.toml");
        let mut toml = std::fs::read_to_string(&file).expect("provisioner.toml");
        toml.push_str("\n[services.metrics]\nplugin = \"prometheus\"\n");
        if variant == Variant::D {
            toml.push_str("depends_on = [\"web\"]\n");
        }
        std::fs::write(&file, toml).expect("writing provisioner.toml");
    }
    // Output to a file: an unread pipe could stall the run.
    let log = std::fs::File::create(stack.path().join("run.log")).expect("run.log");
    let busy_before = common::machine_busy();
    let started = Instant::now();
    let mut run = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["run", "local"])
        .current_dir(stack.path())
        .env_remove("PROVISIONER_PLUGIN_PATH")
        .env_remove("CI")
        .stdout(log.try_clone().expect("run.log"))
        .stderr(log)
        .spawn()
        .expect("starting provisioner run");
    let url = format!("http://127.0.0.1:{port}/health");
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
    let (mut healthy, mut returned, mut busy) = (None, None, None);
    while healthy.is_none() || returned.is_none() {
        if returned.is_none() {
            if let Some(status) = run.try_wait().expect("waiting for provisioner run") {
                let log = std::fs::read_to_string(stack.path().join("run.log")).unwrap_or_default();
                assert!(status.success(), "provisioner run local: {log}");
                returned = Some(started.elapsed());
            }
        }
        if healthy.is_none() && agent.get(&url).call().is_ok_and(|r| r.status() == 200) {
            healthy = Some(started.elapsed());
            busy = common::machine_busy().zip(busy_before).map(|(after, before)| after.saturating_sub(before));
        }
        assert!(started.elapsed() < Duration::from_secs(180), "no /health 200 or no end of run within 180 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let memory = if variant == Variant::M {
        std::thread::sleep(Duration::from_secs(35));
        monitoring_memory(&stack.name)
    } else {
        Vec::new()
    };
    drop(stack); // tears down, volumes included
    (healthy.expect("healthy"), returned.expect("returned"), busy, memory)
}

fn main() {
    let leftovers = support::docker(&["ps", "-aq"]);
    if !leftovers.trim().is_empty() {
        eprintln!("warning: {} containers exist already; they skew the timings", leftovers.lines().count());
    }
    let (mut ph, mut pr, mut mh, mut mr, mut memory) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut dh, mut dr) = (Vec::new(), Vec::new());
    let (mut p_cpu, mut m_cpu) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (h, r, cpu, _) = cold(Variant::P);
        ph.push(h);
        pr.push(r);
        p_cpu.extend(cpu);
        let (h, r, cpu, used) = cold(Variant::M);
        mh.push(h);
        mr.push(r);
        m_cpu.extend(cpu);
        memory = used;
        let (h, r, _, _) = cold(Variant::D);
        dh.push(h);
        dr.push(r);
    }
    let show = |v: &[Duration]| v.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ");
    println!("example stack (examples/ticketing), cold; H: first GET /health 200 through the load balancer (polled during the run), R: `run` returns:");
    println!("  P  without monitoring:           H [{}] s   R [{}] s", show(&ph), show(&pr));
    println!("  M  with plugin = \"prometheus\":   H [{}] s   R [{}] s", show(&mh), show(&mr));
    println!("  D  M, collector after the app:   H [{}] s   R [{}] s", show(&dh), show(&dr));
    let ratio = |name: &str, m: &[Duration], p: &[Duration]| {
        let (m, p) = (median(m.to_vec()).as_secs_f64(), median(p.to_vec()).as_secs_f64());
        format!("median {name} {m:.2} s, P {p:.2} s, {name} / P = {:.2}", m / p)
    };
    let p_health = median(ph.clone()).as_secs_f64();
    println!("  to /health 200: {}; {}  (target <= 1.10)", ratio("M", &mh, &ph), ratio("D", &dh, &ph));
    if !p_cpu.is_empty() && !m_cpu.is_empty() {
        // The cold start is CPU-bound on a small machine: M's run cannot reach /health
        // before the machine has done its work up to then, spread over every core.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let (p_cpu, m_cpu) = (median(p_cpu).as_secs_f64(), median(m_cpu).as_secs_f64());
        let floor = m_cpu / cores;
        println!(
            "  machine CPU until /health 200: P {p_cpu:.1} CPU-s, M {m_cpu:.1} CPU-s; on {cores} cores M cannot beat {floor:.2} s = {:.2} x P",
            floor / p_health
        );
    }
    println!(
        "  to run's end:   {}; {}  (Prometheus is ready once its scrapers hold every target: at least 5 s after it starts)",
        ratio("M", &mr, &pr),
        ratio("D", &dr, &pr)
    );
    let total: f64 = memory.iter().map(|(_, mib)| mib).sum();
    println!("  monitoring's memory after 35 s of scraping (docker stats), {total:.0} MiB in all:");
    for (name, mib) in &memory {
        println!("    {name:<24} {mib:>7.1} MiB");
    }
}
