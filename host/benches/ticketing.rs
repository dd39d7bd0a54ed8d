//! The example stack (examples/ticketing: PostgreSQL, S3, Redis, RabbitMQ, the backend
//! and nginx in front), cold, from nothing to `GET /health` answering 200 through the
//! load balancer; median of 3 each, in one run:
//! P: `provisioner run local`;
//! D: the seed's own way — Debian's docker-compose on the same images, a compose file
//!    with healthchecks and `depends_on: condition: service_healthy`
//!    (examples/ticketing/compose, driven by compose_up.sh).
//! Prints P/D and P's peak RSS. Then, in the same rounds, each tool's no-op (provisioner `run local`
//! again; compose `up -d` again with the same secrets) and its teardown of the whole
//! stack, volumes included (provisioner's `--keep-volumes` too), with the ratios.
//! Needs what `cargo xtask test` prepares; run it with `cargo xtask bench`.

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

/// One round of each tool on the stack: cold to healthy, then nothing to do (three
/// times), then the teardowns.
#[derive(Default)]
struct Round {
    cold: Duration,
    /// Peak RSS of the cold `run local` (provisioner only), bytes.
    cold_rss: u64,
    warm: Vec<Duration>,
    /// `teardown --keep-volumes` (provisioner only; compose has no such measure here).
    keep: Option<Duration>,
    /// Everything gone, volumes included.
    down: Duration,
}

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

fn provisioner_round() -> Round {
    let port = free_port();
    let stack = support::Stack::from_file("bench-p", &support::root().join("examples/ticketing/provisioner.toml"));
    stack.edit("port = 3000", &format!("port = {port}"));
    let health = format!("http://127.0.0.1:{port}/health");
    let run = |args: &[&str]| {
        let out = stack.run(args);
        assert!(out.status.success(), "provisioner {args:?}: {}", support::text(&out));
    };
    let mut rss = 0;
    let cold = timed(|| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .args(["run", "local"])
            .current_dir(stack.path())
            .env_remove("CI")
            .env_remove("PROVISIONER_PLUGIN_PATH")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting provisioner");
        let (status, peak) = common::wait_with_peak_rss(&mut child);
        assert!(status.success(), "the cold `provisioner run local` failed (rerun it by hand in {})", stack.path().display());
        rss = peak;
        until_healthy(&health);
    });
    let mut round = Round { cold, cold_rss: rss, ..Round::default() };
    round.warm = (0..3).map(|_| timed(|| run(&["run", "local"]))).collect();
    round.keep = Some(timed(|| run(&["teardown", "local", "--keep-volumes"])));
    run(&["run", "local"]);
    until_healthy(&health);
    round.down = timed(|| run(&["teardown", "local"]));
    round
}

fn compose_round() -> Round {
    let port = free_port().to_string();
    let name = support::unique_name("bench-d").replace('-', "");
    let script = support::root().join("host/benches/compose_up.sh");
    let compose = |args: &[&str]| ok(Command::new("bash").arg(&script).args(args));
    let health = format!("http://127.0.0.1:{port}/health");
    let mut round = Round { cold: timed(|| (compose(&["up", &name, &port]), until_healthy(&health)).1), ..Round::default() };
    round.warm = (0..3).map(|_| timed(|| compose(&["again", &name, &port]))).collect();
    round.down = timed(|| compose(&["down", &name]));
    round
}

fn main() {
    let (mut p, mut d) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        p.push(provisioner_round());
        d.push(compose_round());
    }
    let show = |v: &[Duration]| v.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ");
    let cold = |rounds: &[Round]| rounds.iter().map(|r| r.cold).collect::<Vec<_>>();
    let warm = |rounds: &[Round]| median(rounds.iter().flat_map(|r| r.warm.clone()).collect());
    let down = |rounds: &[Round]| median(rounds.iter().map(|r| r.down).collect());
    println!("example stack (examples/ticketing), cold to GET /health 200 through the load balancer:");
    println!("  P  provisioner run local:        runs [{}] s", show(&cold(&p)));
    println!("  D  docker-compose (healthchecks, service_healthy): runs [{}] s", show(&cold(&d)));
    let (pc, dc) = (median(cold(&p)), median(cold(&d)));
    println!("  median P {:.2} s, D {:.2} s;  P / D = {:.2}  (target <= 0.50)", pc.as_secs_f64(), dc.as_secs_f64(), pc.as_secs_f64() / dc.as_secs_f64());
    let rss = p.iter().map(|r| r.cold_rss).max().unwrap_or(0);
    println!("  P's peak RSS (the cold run, largest of {RUNS}): {:.1} MB  (target <= 60 MB)", rss as f64 / 1e6);
    let (pw, dw) = (warm(&p), warm(&d));
    println!("nothing to do, median of {} each (whole command, wall clock):", 3 * RUNS);
    println!(
        "  P  run local {:.0} ms;  D  docker-compose up -d {:.0} ms;  P / D = {:.3}  (target P <= 50 ms)",
        pw.as_secs_f64() * 1e3,
        dw.as_secs_f64() * 1e3,
        pw.as_secs_f64() / dw.as_secs_f64()
    );
    let (pd, dd) = (down(&p), down(&d));
    let keep = median(p.iter().filter_map(|r| r.keep).collect());
    println!("teardown of the whole stack, median of {RUNS}:");
    println!(
        "  P  teardown {:.2} s (--keep-volumes {:.2} s);  D  docker-compose down --volumes {:.2} s;  P / D = {:.2}  (target P <= 2 s)",
        pd.as_secs_f64(),
        keep.as_secs_f64(),
        dd.as_secs_f64(),
        pd.as_secs_f64() / dd.as_secs_f64()
    );
}
