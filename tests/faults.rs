//! Faults a new user meets, on the real engine with the real plugins: a server killed
//! during its first-start initialisation and after it was ready, the host interrupted
//! mid-run, two environments at once, damaged state, a full disk, a missing image and a
//! busy port. Each asserts what the user would check: the rerun converges, nothing is
//! orphaned, data is kept, and the message names the service, the cause and the fix.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::Stack;

const PG_DATA: &str = "/var/lib/postgresql/data";

fn ok(out: &std::process::Output) -> String {
    let text = support::text(out);
    assert!(out.status.success(), "expected success:\n{text}");
    text
}

fn refused(out: &std::process::Output) -> String {
    let text = support::text(out);
    assert!(!out.status.success(), "expected a failure:\n{text}");
    text
}

/// `provisioner run local` in the background.
fn spawn_run(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["run", "local"])
        .current_dir(dir)
        .env_remove("PROVISIONER_PLUGIN_PATH")
        .env_remove("CI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting provisioner")
}

/// Poll `check` every 20 ms for up to `limit`.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn running(name: &str) -> bool {
    support::docker(&["inspect", "-f", "{{.State.Running}}", name]) == "true"
}

fn write_and_read(url: &str, value: &str) -> Vec<String> {
    let mut pg = postgres::Client::connect(url, postgres::NoTls).expect("the app role logs in");
    pg.batch_execute("CREATE TABLE IF NOT EXISTS kept (v text)").unwrap();
    if !value.is_empty() {
        pg.execute("INSERT INTO kept VALUES ($1)", &[&value]).unwrap();
    }
    pg.query("SELECT v FROM kept ORDER BY v", &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

/// Issue 13.1 and 13.2: killed in the middle of initdb on a fresh volume, the next run
/// initialises again; killed after it was ready, the next run (the first one) comes up
/// through crash recovery with the data.
#[test]
fn postgres_comes_back_from_a_kill_during_initialisation_and_after_ready() {
    let stack = Stack::new("pgkill", "[services.db]\nplugin = \"postgres\"\n");
    let server = format!("{}-local-db-server", stack.name);
    let marker = format!("{PG_DATA}/.pgdata.initialising");

    let child = spawn_run(stack.path());
    let caught = eventually(Duration::from_secs(60), || {
        running(&server) && Command::new("docker").args(["exec", &server, "test", "-e", &marker]).status().is_ok_and(|s| s.success())
    });
    assert!(caught, "never saw the first-start initialisation under way");
    support::docker(&["kill", &server]);
    let out = child.wait_with_output().unwrap();
    let text = refused(&out);
    assert!(text.contains("service `db` failed") && text.contains("(code 137, killed)"), "{text}");

    let text = ok(&stack.run(&["run", "local"]));
    let logs = Command::new("docker").args(["logs", &server]).output().unwrap();
    assert!(support::text(&logs).contains("was interrupted; starting it again"), "{}", support::text(&logs));
    let url = stack.dotenv()["DATABASE_URL"].clone();
    assert_eq!(write_and_read(&url, "before the kill"), ["before the kill"], "{text}");

    support::docker(&["kill", &server]);
    ok(&stack.run(&["run", "local"]));
    // The engine picks the host port afresh when a container starts again.
    assert_eq!(write_and_read(&stack.dotenv()["DATABASE_URL"], ""), ["before the kill"]);
}

/// Issue 13: the host stopped mid-run (Ctrl-C, then a SIGKILL) leaves what the next run
/// adopts; nothing is orphaned.
#[test]
fn an_interrupted_host_leaves_what_the_next_run_adopts() {
    let stack = Stack::new("interrupt", "[services.db]\nplugin = \"postgres\"\n\n[services.cache]\nplugin = \"redis\"\n");
    for signal in ["INT", "KILL"] {
        let child = spawn_run(stack.path());
        let server = format!("{}-local-db-server", stack.name);
        assert!(eventually(Duration::from_secs(60), || running(&server)), "db never started");
        Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        let _ = child.wait_with_output();
        let text = ok(&stack.run(&["run", "local"]));
        assert!(stack.dotenv().contains_key("DATABASE_URL") && stack.dotenv().contains_key("REDIS_URL"), "{text}");
        let mut labelled = stack.labelled();
        labelled.sort();
        let expected = [
            format!("container {}-local-cache-server", stack.name),
            format!("container {}-local-db-server", stack.name),
            format!("network {}-local", stack.name),
            format!("volume {}-local-cache-data", stack.name),
            format!("volume {}-local-db-data", stack.name),
        ];
        assert_eq!(labelled, expected, "after SIG{signal}: {text}");
        ok(&stack.run(&["teardown", "local"]));
    }
}

/// Issue 13.3 and damaged state: two environments side by side each own their output;
/// a damaged state file neither stops a run nor a teardown.
#[test]
fn two_environments_at_once_and_damaged_state() {
    let stack = Stack::new("twoenv", "[services.cache]\nplugin = \"redis\"\n\n[environments.ci]\nimages = { cache = \"provisioner-offline/redis:7\" }\n");
    let mut ci = Command::new(env!("CARGO_BIN_EXE_provisioner"));
    let ci = ci.args(["run", "ci"]).current_dir(stack.path()).env_remove("PROVISIONER_PLUGIN_PATH").env_remove("CI");
    let ci = ci.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    ok(&stack.run(&["run", "local"]));
    ok(&ci.wait_with_output().unwrap());
    let local_env = std::fs::read_to_string(stack.path().join(".env")).unwrap();
    let ci_env = std::fs::read_to_string(stack.path().join(".env.ci")).unwrap();
    assert_ne!(local_env, ci_env, "each environment its own output");

    // A damaged state file holds the run (it may hold scale overrides), names itself
    // and the fix, and changes nothing; moved away, the run adopts what runs.
    let state = stack.path().join(".provisioner/local/state.json");
    std::fs::write(&state, "{ not json").unwrap();
    let text = refused(&stack.run(&["run", "local"]));
    assert!(text.contains(&state.display().to_string()) && text.contains("move it away"), "{text}");
    assert!(running(&format!("{}-local-cache-server", stack.name)));
    std::fs::rename(&state, state.with_extension("damaged")).unwrap();
    let text = ok(&stack.run(&["run", "local"]));
    assert!(text.contains("unchanged") || text.contains("ready"), "{text}");
    std::fs::write(stack.path().join(".provisioner/ci/state.json"), "\0\0\0").unwrap();
    ok(&stack.run(&["teardown", "ci"]));
    assert!(!stack.path().join(".env.ci").exists());
    assert_eq!(std::fs::read_to_string(stack.path().join(".env")).unwrap(), local_env, "teardown ci leaves local's .env");
    assert!(running(&format!("{}-local-cache-server", stack.name)), "teardown ci leaves local running");
}

/// Issue 13.5: with the project's disk full the summary still says what is up, the
/// error names the file, and the next run with space records everything.
#[test]
fn a_full_disk_does_not_hide_the_outcome() {
    let stack = Stack::new("fulldisk", "[services.cache]\nplugin = \"redis\"\n");
    let disk = stack.path().join(".provisioner");
    std::fs::create_dir_all(&disk).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&disk).status();
    assert!(mounted.is_ok_and(|s| s.success()), "mounting a 1 MiB tmpfs at {} (the suite runs as root)", disk.display());
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&disk);
    ok(&stack.run(&["run", "local"]));
    let filler = disk.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 2 << 20]);
    std::fs::remove_file(stack.path().join(".env")).unwrap();

    let out = stack.run(&["run", "local"]);
    let text = refused(&out);
    assert!(text.contains("cache") && text.contains("ready"), "the summary is shown:\n{text}");
    assert!(text.contains("state.json") && text.contains("No space left on device"), "the file is named:\n{text}");
    assert!(text.contains("nothing was stopped or removed") && text.contains("run `provisioner run local` again"), "{text}");
    assert!(running(&format!("{}-local-cache-server", stack.name)));
    let leftovers: Vec<_> = std::fs::read_dir(disk.join("local")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "no staged files left: {leftovers:?}");

    std::fs::remove_file(&filler).unwrap();
    ok(&stack.run(&["run", "local"]));
    assert!(stack.dotenv().contains_key("REDIS_URL"));
}

/// A missing image and a busy port: the service, the cause and the fix, and the
/// siblings provisioned.
#[test]
fn a_missing_image_and_a_busy_port_are_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = listener.local_addr().unwrap().port();
    let services = format!(
        "[services.cache]\nplugin = \"redis\"\n\n[services.web]\nplugin = \"loadbalancer\"\nconfig = {{ port = {busy}, upstream = \"cache:6379\" }}\n"
    );
    let images = [("cache", "provisioner-offline/nope:1"), ("web", "provisioner-offline/nginx:1.22")];
    let stack = Stack::with_images("missing", &images, &services);
    let text = refused(&stack.run(&["run", "local"]));
    assert!(text.contains("service `cache` failed") && text.contains("provisioner-offline/nope:1"), "{text}");
    stack.edit("provisioner-offline/nope:1", "provisioner-offline/redis:7");
    let text = refused(&stack.run(&["run", "local"]));
    assert!(text.contains("service `web` failed") && text.contains(&busy.to_string()), "{text}");
    assert!(text.contains("already in use") || text.contains("address already in use"), "{text}");
    assert!(stack.dotenv().contains_key("REDIS_URL"), "the sibling is provisioned:\n{text}");
    drop(listener);
}

/// Issue 13.2 for the other data services: each killed early in its first start (on a
/// fresh volume), then again once ready; the next run converges each time.
#[test]
fn redis_garage_and_rabbitmq_come_back_from_kills_in_their_first_start_and_after() {
    let services = "[services.cache]\nplugin = \"redis\"\n\n[services.files]\nplugin = \"s3\"\nconfig = { buckets = [\"kept\"] }\n\n[services.queue]\nplugin = \"rabbitmq\"\n";
    let stack = Stack::new("datakill", services);
    let servers: Vec<String> = ["cache", "files", "queue"].iter().map(|s| format!("{}-local-{s}-server", stack.name)).collect();
    let child = spawn_run(stack.path());
    for server in &servers {
        assert!(eventually(Duration::from_secs(60), || running(server)), "{server} never started");
    }
    // Early in the first start: the broker is still booting, Garage's layout and keys
    // are being set up.
    std::thread::sleep(Duration::from_millis(700));
    for server in &servers {
        support::docker(&["kill", server]);
    }
    let _ = child.wait_with_output();
    let text = ok(&stack.run(&["run", "local"]));
    for key in ["REDIS_URL", "S3_ENDPOINT", "AMQP_URL"] {
        assert!(stack.dotenv().contains_key(key), "{key}:\n{text}");
    }
    for server in &servers {
        support::docker(&["kill", server]);
    }
    let text = ok(&stack.run(&["run", "local"]));
    assert!(!text.contains("FAILED"), "{text}");
}

/// Issue 13: a container the kernel's out-of-memory killer stops is reported as such,
/// with the setting to raise, not as a bare exit code 137.
#[test]
fn an_out_of_memory_kill_is_named() {
    let services = "[services.app]\nplugin = \"container\"\nconfig = { port = 8000, health_command = [\"true\"], health_interval_ms = 1000, memory_mb = 16, command = \"x=$(yes | head -c 400000000); sleep 600\" }\n";
    let stack = Stack::with_images("oom", &[("app", support::busybox_image())], services);
    let text = refused(&stack.run(&["run", "local"]));
    assert!(text.contains("service `app` failed"), "{text}");
    assert!(text.contains("ran out of memory and was killed by the kernel") && text.contains("memory_mb"), "{text}");
}
