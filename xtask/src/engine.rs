//! The Docker engine the end-to-end tests run against. On a fresh machine (as root,
//! with apt) this installs Debian's `docker.io`, `debootstrap` (for the offline
//! images), `busybox-static` (for the engine tests' tiny image) and the Python S3 and
//! AMQP clients the tests check with, and starts `dockerd` when no engine answers, so
//! `cargo xtask test` needs no manual step.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const DOCKERD_LOG: &str = "/tmp/provisioner-dockerd.log";

fn quiet(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn found(program: &str) -> bool {
    quiet(Command::new("sh").args(["-c", &format!("command -v {program}")]))
}

fn engine_answers() -> bool {
    quiet(Command::new("docker").arg("info"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Install what is missing, then make sure an engine answers.
pub fn ensure() -> Result<()> {
    let mut packages = Vec::new();
    if !found("dockerd") && !engine_answers() {
        packages.push("docker.io");
    }
    if !found("debootstrap") {
        packages.push("debootstrap");
    }
    if !found("curl") {
        packages.push("curl"); // `cargo xtask demo` ends with curl, as the README does
    }
    if !found("docker-compose") {
        packages.push("docker-compose"); // the benchmark's baseline, host/benches/compose_up.sh
    }
    if !Path::new("/bin/busybox").exists() {
        packages.push("busybox-static");
    }
    for (module, package) in [("boto3", "python3-boto3"), ("pika", "python3-pika")] {
        if !quiet(Command::new("/usr/bin/python3").args(["-c", &format!("import {module}")])) {
            packages.push(package);
        }
    }
    install(&packages)?;
    if engine_answers() {
        return Ok(());
    }
    start_engine()
}

/// What only the tests need: a headless browser that checks the timings report.
pub fn ensure_test_tools() -> Result<()> {
    if !found("chromium") {
        install(&["chromium"])?;
    }
    ensure_wkg()
}

/// The version of wasm-pkg-tools' `wkg` the OCI interop test runs when the machine has
/// none (any recent `wkg` will do).
const WKG_VERSION: &str = "0.16.1";

/// `wkg`, for tests/oci.rs's interop test: on PATH, or in cargo's own bin folder, or
/// installed there from crates.io (once per machine, a few minutes on 2 cores).
fn ensure_wkg() -> Result<()> {
    if found("wkg") || cargo_bin().join("wkg").is_file() {
        return Ok(());
    }
    eprintln!("xtask: cargo install wkg {WKG_VERSION} (wasm-pkg-tools, for the OCI interop test; once per machine)…");
    let started = std::time::Instant::now();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "wkg", "--version", WKG_VERSION, "--locked", "--quiet"])
        .status()?;
    if !status.success() {
        bail!("cargo install wkg {WKG_VERSION} failed");
    }
    eprintln!("xtask: wkg built in {:.0?}", started.elapsed());
    Ok(())
}

/// Where `cargo install` puts programs: `$CARGO_HOME/bin`, by default `~/.cargo/bin`.
fn cargo_bin() -> std::path::PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("bin")
}

/// Install `packages` with apt-get (as root), or say how.
fn install(packages: &[&str]) -> Result<()> {
    if !packages.is_empty() {
        if !is_root() || !found("apt-get") {
            bail!("the tests need {}: install them (e.g. `sudo apt-get install {}`) and retry", packages.join(", "), packages.join(" "));
        }
        eprintln!("xtask: installing {} with apt-get", packages.join(", "));
        let update = Command::new("apt-get").args(["update", "-qq"]).status()?;
        if !update.success() {
            bail!("apt-get update failed");
        }
        let install = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        if !install.success() {
            bail!("apt-get install {} failed", packages.join(" "));
        }
    }
    Ok(())
}

/// Start dockerd (as root), and wait until it answers.
fn start_engine() -> Result<()> {
    if !is_root() {
        bail!("no Docker engine answers: start dockerd (e.g. `sudo systemctl start docker`) and retry");
    }
    eprintln!("xtask: starting dockerd (log: {DOCKERD_LOG})");
    let log = std::fs::File::create(DOCKERD_LOG).with_context(|| format!("creating {DOCKERD_LOG}"))?;
    use std::os::unix::process::CommandExt;
    Command::new("dockerd")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C of the test run must not take the engine down.
        .process_group(0)
        .spawn()
        .context("starting dockerd")?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if engine_answers() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let tail = std::fs::read_to_string(DOCKERD_LOG).unwrap_or_default();
    let tail: Vec<&str> = tail.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
    bail!("dockerd did not answer within 60 s; the end of its log:\n{}", tail.join("\n"))
}
