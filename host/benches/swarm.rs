//! The example stack on the 3-node test swarm (`cargo xtask cluster up`), cold, from
//! nothing to `GET /health` answering 200 through the load balancer; median of 3 each,
//! in one run, on the same cluster and images:
//! P: `provisioner run swarm` (the example's provisioner.toml with a Swarm environment);
//! D: `docker stack deploy` of examples/ticketing/compose/docker-stack.yml, the compose
//!    file with healthchecks as a Swarm user deploys it (driven by stack_deploy.sh);
//! W: a warm no-op `provisioner run swarm` (everything up and unchanged), 3 after each P.
//! Prints P/D and W. Run it with `cargo xtask bench`.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::median;

const RUNS: usize = 3;
const DATA_NODE: &str = "node-3";

struct Cluster {
    manager: String,
    registry: String,
    nodes: Vec<String>,
}

fn cluster() -> Cluster {
    let file = support::root().join("target/cluster.env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask cluster up` first", file.display()));
    let values: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    Cluster {
        manager: values["PROVISIONER_TEST_SWARM"].to_string(),
        registry: values["PROVISIONER_TEST_SWARM_REGISTRY"].to_string(),
        nodes: values["PROVISIONER_TEST_SWARM_NODES"].split(',').map(str::to_string).collect(),
    }
}

fn until_healthy(url: &str) {
    if let Err(last) = support::until_ok(url, Duration::from_secs(180)) {
        panic!("{url} did not answer 200 within 180 s (last: {last})");
    }
}

fn ok(command: &mut Command) -> String {
    let out = command.output().expect("starting a benchmark command");
    assert!(out.status.success(), "{command:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn provisioner(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provisioner"));
    command.args(args).current_dir(dir).env_remove("CI").env_remove("DOCKER_HOST").env_remove("PROVISIONER_PLUGIN_PATH");
    command
}

/// A cold run to /health 200, then `warm` no-op runs; (cold, the machine's CPU during
/// cold, warm times).
fn provisioner_cold(cluster: &Cluster, port: u16, warm: usize) -> (Duration, Option<Duration>, Vec<Duration>) {
    let name = support::unique_name("bench-ps");
    let example = std::fs::read_to_string(support::root().join("examples/ticketing/provisioner.toml")).unwrap();
    let services = &example[example.find("[services.db]").unwrap()..];
    let placement = ["db", "cache", "files", "queue", "web"].map(|s| format!("{s} = \"node.hostname=={DATA_NODE}\"")).join(", ");
    let toml = format!(
        "[project]\nname = \"{name}\"\n\n[environments.swarm]\ntarget = \"swarm\"\nengine = \"{}\"\nmirror = \"{}\"\nrouting = \"host\"\n\
         encrypted_network = false\nplacement = {{ {placement} }}\nimages = {{ db = \"provisioner-offline/postgres:15\", cache = \"provisioner-offline/redis:7\", \
         files = \"provisioner-offline/garage:2.5.0\", queue = \"provisioner-offline/rabbitmq:3\", web = \"provisioner-offline/nginx:1.22\", \
         backend = \"provisioner-example/ticketing-backend:dev\" }}\n\n{}",
        cluster.manager,
        cluster.registry,
        services.replace("port = 3000", &format!("port = {port}"))
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("provisioner.toml"), toml).unwrap();
    let data_node = &cluster.nodes[2];
    let busy = common::machine_busy();
    let started = Instant::now();
    ok(&mut provisioner(dir.path(), &["run", "swarm"]));
    until_healthy(&format!("http://{data_node}:{port}/health"));
    let cold = started.elapsed();
    let cpu = busy.zip(common::machine_busy()).map(|(before, after)| after.saturating_sub(before));
    let warm = (0..warm)
        .map(|_| {
            let started = Instant::now();
            ok(&mut provisioner(dir.path(), &["run", "swarm"]));
            started.elapsed()
        })
        .collect();
    ok(&mut provisioner(dir.path(), &["teardown", "swarm"]));
    (cold, cpu, warm)
}

/// `docker stack deploy` to /health 200; (time, the machine's CPU meanwhile).
fn stack_cold(cluster: &Cluster, port: u16) -> (Duration, Option<Duration>) {
    let name = support::unique_name("benchd").replace('-', "");
    let script = support::root().join("host/benches/stack_deploy.sh");
    let env = |c: &mut Command| {
        c.env("DOCKER_HOST", &cluster.manager)
            .env("REGISTRY", &cluster.registry)
            .env("DATA_NODE", DATA_NODE)
            .env("DATA_NODE_ADDR", &cluster.nodes[2])
            .env("NODE_ADDRS", cluster.nodes.join(" "));
    };
    let mut up = Command::new("bash");
    up.arg(&script).args(["up", &name, &port.to_string()]);
    env(&mut up);
    let busy = common::machine_busy();
    let started = Instant::now();
    ok(&mut up);
    let took = started.elapsed();
    let cpu = busy.zip(common::machine_busy()).map(|(before, after)| after.saturating_sub(before));
    let mut down = Command::new("bash");
    down.arg(&script).args(["down", &name]);
    env(&mut down);
    ok(&mut down);
    (took, cpu)
}

/// Every node pulls the example's images before the first round, unmeasured: otherwise
/// the first deployment also pays the pulls and the ones after it do not.
fn pull_everywhere(cluster: &Cluster) {
    let images: Vec<&str> = support::OFFLINE_IMAGES
        .iter()
        .map(|(_, image)| *image)
        .chain(["provisioner-offline/nginx:1.22", "provisioner-example/ticketing-backend:dev"])
        .collect();
    for node in &cluster.nodes {
        for image in &images {
            ok(Command::new("docker").args(["-H", &format!("tcp://{node}:2375"), "pull", "-q", &format!("{}/{image}", cluster.registry)]));
        }
    }
}

fn main() {
    let cluster = cluster();
    pull_everywhere(&cluster);
    let (mut p, mut d, mut w) = (Vec::new(), Vec::new(), Vec::new());
    let (mut p_cpu, mut d_cpu) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        // A port per run: a host-mode port is freed a moment after its task.
        let port = 3600 + u16::try_from(i).unwrap_or(0) * 2;
        let (cold, cpu, warm) = provisioner_cold(&cluster, port, 3);
        p.push(cold);
        p_cpu.extend(cpu);
        w.extend(warm);
        let (cold, cpu) = stack_cold(&cluster, port + 1);
        d.push(cold);
        d_cpu.extend(cpu);
    }
    let show = |v: &[Duration]| v.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ");
    println!("example stack on the 3-node test swarm, cold to GET /health 200 through the load balancer:");
    println!("  P  provisioner run swarm:        runs [{}] s", show(&p));
    println!("  D  docker stack deploy (healthchecks): runs [{}] s", show(&d));
    let (pm, dm) = (median(p), median(d));
    println!("  median P {:.2} s, D {:.2} s;  P / D = {:.2}  (target <= 0.60)", pm.as_secs_f64(), dm.as_secs_f64(), pm.as_secs_f64() / dm.as_secs_f64());
    // Every node is a container on this one machine: both deployments share its cores,
    // so the CPU each keeps busy bounds how fast it can be here. On a real cluster each
    // node brings its own cores.
    if !p_cpu.is_empty() && !d_cpu.is_empty() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let (pc, dc) = (median(p_cpu).as_secs_f64(), median(d_cpu).as_secs_f64());
        println!(
            "  CPU busy (whole machine, all nodes): P {pc:.2} s, D {dc:.2} s;  P's floor on {cores} cores {:.2} s = {:.2} x D's time",
            pc / cores,
            pc / cores / dm.as_secs_f64()
        );
    }
    println!("  W  warm no-op provisioner run swarm: runs [{}] s; median {} ms (target <= 300 ms)", show(&w), median(w).as_millis());
}
