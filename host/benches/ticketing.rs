//! The example stack (examples/ticketing: PostgreSQL, S3, Redis, RabbitMQ, the backend
//! and nginx in front), cold, from nothing to `GET /health` answering 200 through the
//! load balancer; median of 3 each, in one run:
//! P: `provisioner run local`;
//! D: the seed's own way — Debian's docker-compose on the same images, a compose file
//!    with healthchecks and `depends_on: condition: service_healthy`
//!    (examples/ticketing/compose, driven by compose_up.sh).
//! Prints P/D. Needs what `cargo xtask test` prepares; run it with `cargo xtask bench`.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::median;

const RUNS: usize = 3;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Poll `url` until it answers 200; panics after 180 s.
fn until_healthy(url: &str) {
    if let Err(last) = support::until_ok(url, Duration::from_secs(180)) {
        panic!("{url} did not answer 200 within 180 s (last: {last})");
    }
}

fn ok(command: &mut Command) {
    let out = command.output().expect("starting a benchmark command");
    assert!(out.status.success(), "{command:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn provisioner_cold() -> Duration {
    let port = free_port();
    let stack = support::Stack::from_file("bench-p", &support::root().join("examples/ticketing/provisioner.toml"));
    stack.edit("port = 3000", &format!("port = {port}"));
    let started = Instant::now();
    let out = stack.run(&["run", "local"]);
    assert!(out.status.success(), "provisioner run local: {}", support::text(&out));
    until_healthy(&format!("http://127.0.0.1:{port}/health"));
    let took = started.elapsed();
    drop(stack); // tears down, volumes included
    took
}

fn compose_cold() -> Duration {
    let port = free_port();
    let name = support::unique_name("bench-d").replace('-', "");
    let script = support::root().join("host/benches/compose_up.sh");
    let started = Instant::now();
    ok(Command::new("bash").arg(&script).args(["up", &name, &port.to_string()]));
    until_healthy(&format!("http://127.0.0.1:{port}/health"));
    let took = started.elapsed();
    ok(Command::new("bash").arg(&script).args(["down", &name]));
    took
}

fn main() {
    let (mut p, mut d) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        p.push(provisioner_cold());
        d.push(compose_cold());
    }
    let show = |v: &[Duration]| v.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ");
    println!("example stack (examples/ticketing), cold to GET /health 200 through the load balancer:");
    println!("  P  provisioner run local:        runs [{}] s", show(&p));
    println!("  D  docker-compose (healthchecks, service_healthy): runs [{}] s", show(&d));
    let (p, d) = (median(p), median(d));
    println!("  median P {:.2} s, D {:.2} s;  P / D = {:.2}  (target <= 0.50)", p.as_secs_f64(), d.as_secs_f64(), p.as_secs_f64() / d.as_secs_f64());
}
