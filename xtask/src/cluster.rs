//! `cargo xtask cluster up|down`: a Docker Swarm on this machine for the Swarm tests —
//! three Docker engines in containers (one manager, two workers) on a private bridge
//! network, and a registry holding the offline images that every node pulls from, as the
//! nodes of a real cluster would. Test harness only: nothing here is part of the product.
//!
//! The nodes run with every capability but `SYS_RESOURCE` rather than `--privileged`
//! (which this sandbox refuses), seccomp and AppArmor off, a tmpfs `/run`, a volume for
//! `/var/lib/docker` and the host's cgroup tree: that is what an engine in a container
//! needs for overlay2, overlay networks and cgroup limits. This kernel has no IPVS, so
//! Swarm's routing mesh and VIPs do not answer here; the tests use `dnsrr` endpoints and
//! host-mode ports.
//!
//! `up` is idempotent: it starts what is missing, forms the swarm once and pushes the
//! images (a push of unchanged layers is quick). It writes `target/cluster.env`, which
//! the tests read: the manager's engine address and the registry's name on the cluster.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const NETWORK: &str = "provisioner-cluster";
const REGISTRY: &str = "provisioner-cluster-registry";
/// How the nodes reach the registry (its alias on the network), and the mirror the
/// tests configure.
const REGISTRY_ON_CLUSTER: &str = "registry:5000";
/// How this machine pushes to it.
const REGISTRY_ON_HOST: &str = "127.0.0.1:5000";
const NODES: usize = 3;
const NODE_IMAGE: (&str, &str) = ("tests/images/swarm-node", "provisioner-test/swarm-node:dev");
const REGISTRY_IMAGE: (&str, &str) = ("tests/images/registry", "provisioner-test/registry:dev");

fn node_name(i: usize) -> String {
    format!("provisioner-cluster-node-{i}")
}

fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker").args(args).output().with_context(|| format!("running docker {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn exists(kind: &str, name: &str) -> bool {
    Command::new("docker").args([kind, "inspect", name]).output().is_ok_and(|o| o.status.success())
}

fn running(name: &str) -> bool {
    docker(&["inspect", "-f", "{{.State.Running}}", name]).is_ok_and(|s| s == "true")
}

/// A node's address on the cluster network.
fn address(name: &str) -> Result<String> {
    let ip = docker(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{NETWORK}\").IPAddress}}}}"), name])?;
    if ip.is_empty() {
        bail!("{name} has no address on {NETWORK}");
    }
    Ok(ip)
}

/// `docker` against a node's engine.
fn on(ip: &str, args: &[&str]) -> Result<String> {
    let host = format!("tcp://{ip}:2375");
    let mut all = vec!["-H", host.as_str()];
    all.extend_from_slice(args);
    docker(&all)
}

fn build(image: (&str, &str)) -> Result<()> {
    let (dir, tag) = image;
    eprintln!("xtask: building {tag}");
    docker(&["build", "-q", "-t", tag, &crate::root().join(dir).to_string_lossy()])?;
    Ok(())
}

fn start_registry() -> Result<()> {
    if running(REGISTRY) {
        return Ok(());
    }
    if exists("container", REGISTRY) {
        docker(&["rm", "-f", REGISTRY])?;
    }
    docker(&[
        "run", "-d", "--name", REGISTRY, "--network", NETWORK, "--network-alias", "registry",
        "-p", &format!("{REGISTRY_ON_HOST}:5000"), "-v", &format!("{REGISTRY}:/var/lib/docker-registry"), REGISTRY_IMAGE.1,
    ])?;
    Ok(())
}

fn start_node(i: usize) -> Result<()> {
    let name = node_name(i);
    if running(&name) {
        return Ok(());
    }
    if exists("container", &name) {
        docker(&["start", &name])?;
        return Ok(());
    }
    docker(&[
        // --init: the engine inside is not an init and leaves every exited task's shim
        // behind as a zombie; a cluster kept up across benchmarks gathered dozens.
        "run", "-d", "--init", "--name", &name, "--hostname", &format!("node-{i}"), "--network", NETWORK,
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--tmpfs", "/run", "-v", &format!("{name}:/var/lib/docker"),
        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns=host",
        "-e", &format!("CLUSTER_REGISTRY={REGISTRY_ON_CLUSTER}"), NODE_IMAGE.1,
    ])?;
    Ok(())
}

fn wait_for_engine(ip: &str) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if on(ip, &["info", "--format", "{{.Driver}}"]).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    bail!("the engine at {ip} did not answer within 60 s")
}

fn swarm_state(ip: &str) -> Result<String> {
    on(ip, &["info", "--format", "{{.Swarm.LocalNodeState}}"])
}

/// The manager's engine address: `tcp://IP:2375`.
pub fn up() -> Result<String> {
    crate::engine::ensure()?;
    let started = Instant::now();
    build(NODE_IMAGE)?;
    build(REGISTRY_IMAGE)?;
    if !exists("network", NETWORK) {
        docker(&["network", "create", NETWORK])?;
    }
    start_registry()?;
    let mut ips = Vec::new();
    for i in 1..=NODES {
        start_node(i)?;
    }
    for i in 1..=NODES {
        let ip = address(&node_name(i))?;
        wait_for_engine(&ip)?;
        ips.push(ip);
    }
    let manager = &ips[0];
    if swarm_state(manager)? != "active" {
        eprintln!("xtask: forming the swarm (manager node-1)");
        on(manager, &["swarm", "init", "--advertise-addr", manager])?;
    }
    let token = on(manager, &["swarm", "join-token", "-q", "worker"])?;
    for ip in &ips[1..] {
        if swarm_state(ip)? != "active" {
            on(ip, &["swarm", "join", "--token", &token, &format!("{manager}:2377")])?;
        }
    }
    // As a user pushes to their cluster's registry (a push of unchanged layers is quick).
    crate::images::push(REGISTRY_ON_HOST)?;
    let engine = format!("tcp://{manager}:2375");
    let env = crate::root().join("target/cluster.env");
    std::fs::write(
        &env,
        format!("PROVISIONER_TEST_SWARM={engine}\nPROVISIONER_TEST_SWARM_REGISTRY={REGISTRY_ON_CLUSTER}\nPROVISIONER_TEST_SWARM_NODES={}\n", ips.join(",")),
    )
    .with_context(|| format!("writing {}", env.display()))?;
    eprintln!("xtask: cluster up in {:.1} s: manager {engine}, {} nodes; {}", started.elapsed().as_secs_f64(), ips.len(), env.display());
    eprintln!("{}", on(manager, &["node", "ls"])?);
    Ok(engine)
}

/// Remove the nodes (and their engines' volumes), the registry and the network.
pub fn down() -> Result<()> {
    for i in 1..=NODES {
        let name = node_name(i);
        if exists("container", &name) {
            docker(&["rm", "-f", "-v", &name])?;
        }
        if exists("volume", &name) {
            docker(&["volume", "rm", &name])?;
        }
    }
    if exists("container", REGISTRY) {
        docker(&["rm", "-f", REGISTRY])?;
    }
    if exists("volume", REGISTRY) {
        docker(&["volume", "rm", REGISTRY])?;
    }
    if exists("network", NETWORK) {
        docker(&["network", "rm", NETWORK])?;
    }
    let _ = std::fs::remove_file(cluster_env());
    Ok(())
}

fn cluster_env() -> PathBuf {
    crate::root().join("target/cluster.env")
}
