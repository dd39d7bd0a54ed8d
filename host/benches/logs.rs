//! `provisioner logs -f` against `docker logs -f` on the same four busy containers
//! (four `container` services running busybox, each printing lines as fast as the
//! engine takes them), in one run: each follows for a few seconds from now on, in the
//! order D P P D, and the bench counts the lines it read.
//! D: `docker logs -f --tail 0` of the four containers side by side (four processes);
//! P: `provisioner logs local -f --tail 0`: the same containers, interleaved by time,
//!    prefixed and masked.
//! Prints lines/s of each and P/D (target >= 0.80). Needs the engine and the plugins
//! (`cargo xtask test` prepares them); run it with `cargo bench -p provisioner --bench logs`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SERVICES: usize = 4;
const WINDOW: Duration = Duration::from_secs(5);

/// Counts the lines `child` writes to its stdout until it ends.
fn count_lines(child: &mut Child) -> JoinHandle<u64> {
    let mut out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        let (mut lines, mut buf) = (0u64, vec![0u8; 1 << 16]);
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
        lines
    })
}

/// Lines per second that `commands` read together in one window.
fn follow(commands: Vec<Command>) -> f64 {
    let mut children: Vec<Child> = commands
        .into_iter()
        .map(|mut c| c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("starting a follower"))
        .collect();
    let counters: Vec<JoinHandle<u64>> = children.iter_mut().map(count_lines).collect();
    let started = Instant::now();
    std::thread::sleep(WINDOW);
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let lines: u64 = counters.into_iter().map(|c| c.join().expect("a counter")).sum();
    lines as f64 / elapsed
}

fn main() {
    let image = support::busybox_image();
    let mut services = String::new();
    for i in 1..=SERVICES {
        services.push_str(&format!(
            "[services.busy{i}]\nplugin = \"container\"\nconfig = {{ image = \"{image}\", port = 8000, health_path = \"\", \
             command = \"while true; do seq 1000 | sed 's/^/busy{i} line /'; done\" }}\n\n"
        ));
    }
    let stack = support::Stack::with_images("bench-logs", &[], &services);
    let run = stack.run(&["run", "local"]);
    assert!(run.status.success(), "provisioner run local: {}", support::text(&run));
    let names: Vec<String> = (1..=SERVICES).map(|i| format!("{}-local-busy{i}-app-1", stack.name)).collect();
    let listed = support::docker(&["ps", "--format", "{{.Names}}", "--filter", &format!("label=provisioner.project={}", stack.name)]);
    for name in &names {
        assert!(listed.lines().any(|l| l == name), "no container {name} among {listed}");
    }
    let docker = || {
        names
            .iter()
            .map(|name| {
                let mut c = Command::new("docker");
                c.args(["logs", "-f", "--tail", "0", name]);
                c
            })
            .collect::<Vec<_>>()
    };
    let provisioner = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_provisioner"));
        c.args(["logs", "local", "-f", "--tail", "0"]).current_dir(stack.path()).env_remove("PROVISIONER_PLUGIN_PATH");
        vec![c]
    };
    let d1 = follow(docker());
    let p1 = follow(provisioner());
    let p2 = follow(provisioner());
    let d2 = follow(docker());
    let (d, p) = ((d1 + d2) / 2.0, (p1 + p2) / 2.0);
    println!("{SERVICES} busy containers, each followed for {} s, in the order D P P D:", WINDOW.as_secs());
    println!("  D  docker logs -f (one per container): {d1:.0}, {d2:.0} lines/s");
    println!("  P  provisioner logs local -f:           {p1:.0}, {p2:.0} lines/s");
    println!("  mean D {d:.0} lines/s, P {p:.0} lines/s;  P / D = {:.2}  (target >= 0.80)", p / d);
}
