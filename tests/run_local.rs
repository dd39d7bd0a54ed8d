//! `provisioner run local` end to end: the real binary, the real first-party plugins
//! compiled to wasm (`cargo xtask plugins`), a real Docker engine and real PostgreSQL
//! and Redis servers (the offline images of `cargo xtask images`). Every test uses its
//! own project name and removes what it made.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use support::{docker, text, Stack};

const POSTGRES_IMAGE: &str = "provisioner-offline/postgres:15";
const REDIS_IMAGE: &str = "provisioner-offline/redis:7";

/// A stack for these tests, after checking what they need is there.
fn stack(prefix: &str, services: &str) -> Stack {
    support::require(&["postgres", "redis"], &[POSTGRES_IMAGE, REDIS_IMAGE]);
    Stack::new(prefix, services)
}

const DB_AND_CACHE: &str = "[services.db]\nplugin = \"postgres\"\nconfig = { database = \"shop\" }\n\n[services.cache]\nplugin = \"redis\"\n";

fn secrets_of(dir: &Path) -> Vec<String> {
    let secrets = dir.join(".provisioner/local/secrets");
    let mut values = Vec::new();
    for entry in std::fs::read_dir(secrets).expect("secrets folder") {
        let map: BTreeMap<String, String> = serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        values.extend(map.into_values());
    }
    values
}

#[test]
fn postgres_and_redis_up_least_privileged_idempotent_and_kept_across_teardown() {
    let stack = stack("pgredis", DB_AND_CACHE);
    let first = stack.run(&["run", "local", "-v"]);
    assert!(first.status.success(), "run failed:\n{}", text(&first));

    let env = stack.dotenv();
    let database_url = env.get("DATABASE_URL").expect("DATABASE_URL in .env").clone();
    let redis_url = env.get("REDIS_URL").expect("REDIS_URL in .env").clone();
    assert!(database_url.starts_with("postgres://app:") && database_url.contains("@127.0.0.1:"), "{database_url}");

    // Secrets are in .env and the 0600 secrets folder, never on the terminal.
    let secrets = secrets_of(stack.path());
    assert!(secrets.len() >= 4, "admin and app passwords of both services");
    let shown = text(&first);
    for secret in &secrets {
        assert!(!shown.contains(secret.as_str()), "a secret was printed:\n{shown}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(stack.path().join(".env")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(stack.path().join(".gitignore")).unwrap().lines().any(|l| l == ".env"));

    // SQL round trip as the app role, which cannot create roles or databases.
    let mut pg = postgres::Client::connect(&database_url, postgres::NoTls).expect("app role logs in");
    pg.batch_execute("CREATE TABLE tickets (id serial PRIMARY KEY, title text); INSERT INTO tickets (title) VALUES ('kept')")
        .expect("the app owns its database");
    let title: String = pg.query_one("SELECT title FROM tickets", &[]).unwrap().get(0);
    assert_eq!(title, "kept");
    for forbidden in ["CREATE ROLE intruder", "CREATE DATABASE other", "ALTER ROLE app SUPERUSER"] {
        let err = pg.batch_execute(forbidden).expect_err(forbidden);
        let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_else(|| err.to_string());
        assert!(message.contains("permission denied") || message.contains("must be"), "{forbidden}: {message}");
    }
    drop(pg);

    // Redis round trip as the ACL user; the default user is refused.
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = client.get_connection().expect("app user authenticates");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut conn).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    assert_eq!(v, "v");
    let flush: redis::RedisResult<()> = redis::cmd("FLUSHALL").query(&mut conn);
    assert!(flush.is_err(), "the app user may not run dangerous commands");
    let port = redis_url.rsplit_once(':').unwrap().1.trim_end_matches("/0");
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let ping: redis::RedisResult<String> = anonymous.get_connection().and_then(|mut c| redis::cmd("PING").query(&mut c));
    assert!(ping.is_err(), "the default user must be refused, got {ping:?}");

    // A second run changes nothing.
    let ids = stack.container_ids();
    assert_eq!(ids.lines().count(), 2, "{ids}");
    // It runs with `-vv`, whose engine traces would show each container's environment
    // (the passwords) if the engine client's debug output were let through.
    let second = stack.run(&["run", "local", "-vv"]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("DEBUG"), "-vv shows debug output");
    for secret in &secrets {
        assert!(!text(&second).contains(secret.as_str()), "a secret was printed with -vv");
    }
    assert_eq!(stack.container_ids(), ids, "containers were recreated by a no-op run");
    let plan = stack.run(&["plan", "local"]);
    assert!(text(&plan).contains("0 change(s)"), "{}", text(&plan));
    let status = stack.run(&["status", "local", "--json"]);
    assert!(status.status.success(), "{}", text(&status));

    // Keep the volumes across a teardown: the row survives.
    let down = stack.run(&["teardown", "local", "--keep-volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(stack.labelled().iter().all(|r| r.starts_with("volume ")), "{:?}", stack.labelled());
    let again = stack.run(&["run", "local"]);
    assert!(again.status.success(), "{}", text(&again));
    let mut pg = postgres::Client::connect(&stack.dotenv()["DATABASE_URL"], postgres::NoTls).expect("same password");
    let title: String = pg.query_one("SELECT title FROM tickets", &[]).unwrap().get(0);
    assert_eq!(title, "kept");
    drop(pg);

    // A full teardown leaves nothing labelled for the project.
    let gone = stack.run(&["teardown", "local"]);
    assert!(gone.status.success(), "{}", text(&gone));
    assert_eq!(stack.labelled(), Vec::<String>::new());
}

#[test]
fn a_container_removed_by_hand_is_recreated() {
    let stack = stack("recreate", "[services.cache]\nplugin = \"redis\"\n");
    let first = stack.run(&["run", "local"]);
    assert!(first.status.success(), "{}", text(&first));
    docker(&["rm", "-f", &format!("{}-local-cache-server", stack.name)]);
    let status = stack.run(&["status", "local"]);
    assert!(!status.status.success(), "status must fail while a service is missing:\n{}", text(&status));
    let plan = stack.run(&["plan", "local"]);
    assert!(text(&plan).contains("create"), "{}", text(&plan));
    let again = stack.run(&["run", "local"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(stack.container_ids().lines().count(), 1);
}

#[test]
fn an_unreachable_engine_is_one_clear_line() {
    let stack = stack("noengine", DB_AND_CACHE);
    let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["run", "local"])
        .current_dir(stack.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock: is dockerd running?"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// With the engine down, a mistake in the file is still the first thing said.
#[test]
fn a_bad_file_is_reported_before_an_unreachable_engine() {
    let stack = stack("noengine-badfile", "[services.db]\nplugin = \"postgress\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["plan", "local"])
        .current_dir(stack.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no plugin called `postgress`"), "{stderr}");
    assert!(!stderr.contains("cannot reach the Docker engine"), "{stderr}");
}

#[test]
fn bad_files_start_nothing() {
    for (services, says) in [
        ("[services.db]\nplugin = \"postgres\"\ncolour = \"blue\"\n", "provisioner.toml:9: services.db.colour: unknown field"),
        ("[services.db]\nplugin = \"postgress\"\n", "provisioner.toml:8: services.db.plugin: no plugin called `postgress`"),
        (
            "[services.a]\nplugin = \"redis\"\ndepends_on = [\"b\"]\n[services.b]\nplugin = \"redis\"\ndepends_on = [\"a\"]\n",
            "services.a.depends_on: dependency cycle: a -> b -> a",
        ),
        ("[services.db]\nplugin = \"postgres\"\nconfig = { database = \"Bad-Name\" }\n", "services.db.config.database"),
    ] {
        let stack = stack("badfile", services);
        let out = stack.run(&["run", "local"]);
        assert!(!out.status.success());
        let shown = text(&out);
        assert!(shown.contains(says), "expected `{says}` in:\n{shown}");
        assert!(shown.contains(&stack.path().join("provisioner.toml").display().to_string()), "{shown}");
        assert_eq!(stack.labelled(), Vec::<String>::new(), "nothing may start");
    }
}


/// Issue 18.2: a container replaced because its spec changed, or created again after
/// `teardown --keep-volumes`, keeps the host port the engine chose for it, so the app's
/// .env does not change under it.
#[test]
fn a_replaced_container_keeps_its_host_port() {
    let stack = stack("keepport", "[services.cache]\nplugin = \"redis\"\n");
    let address = |url: &str| url.split('@').nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_default().to_string();
    let out = stack.run(&["run", "local"]);
    assert!(out.status.success(), "{}", support::text(&out));
    let (before, id) = (address(&stack.dotenv()["REDIS_URL"]), stack.container_ids());
    stack.edit("plugin = \"redis\"\n", "plugin = \"redis\"\nconfig = { user = \"other\" }\n");
    let out = stack.run(&["run", "local"]);
    assert!(out.status.success(), "{}", support::text(&out));
    assert_ne!(stack.container_ids(), id, "the container was replaced");
    let url = stack.dotenv()["REDIS_URL"].clone();
    assert!(url.starts_with("redis://other:"), "{url}");
    assert_eq!(address(&url), before, "same host port after the replacement");

    // And across `teardown --keep-volumes` + `run`: the data stays, so does its address.
    let out = stack.run(&["teardown", "local", "--keep-volumes"]);
    assert!(out.status.success(), "{}", support::text(&out));
    let state = std::fs::read_to_string(stack.path().join(".provisioner/local/state.json")).unwrap();
    assert!(state.contains("\"host_ports\""), "kept for the next run:\n{state}");
    let out = stack.run(&["run", "local"]);
    assert!(out.status.success(), "{}", support::text(&out));
    assert_eq!(stack.dotenv()["REDIS_URL"], url, "same URL, port and password after teardown --keep-volumes and run");

    // A full teardown keeps nothing to offer.
    let out = stack.run(&["teardown", "local"]);
    assert!(out.status.success(), "{}", support::text(&out));
    let state = std::fs::read_to_string(stack.path().join(".provisioner/local/state.json")).unwrap();
    assert!(!state.contains("host_ports"), "{state}");
}

/// Issue 16.1: `provisioner logs` shows every instance's lines under its name, in time
/// order, with the environment's secrets masked; `--json` one object per line; `-f`
/// follows and picks up the instances a `scale` adds.
#[test]
fn logs_show_every_instance_masked_and_follow_new_ones() {
    let services = "[services.cache]\nplugin = \"redis\"\n\n[services.app]\nplugin = \"container\"\ndepends_on = [\"cache\"]\nreplicas = 2\nconfig = { port = 8000, health_path = \"\", env = { URL = \"${cache.REDIS_URL}\" }, command = \"echo url=$URL; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done\" }\n";
    let stack = Stack::with_images("logs", &[("cache", "provisioner-offline/redis:7"), ("app", support::busybox_image())], services);
    let out = stack.run(&["run", "local"]);
    assert!(out.status.success(), "{}", text(&out));
    let secrets: Vec<String> = secrets_of(stack.path());
    assert!(!secrets.is_empty());

    let out = stack.run(&["logs", "local"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    for instance in ["app/app-1", "app/app-2"] {
        assert!(shown.lines().any(|l| l.starts_with(instance) && l.contains("| url=redis://app:***@cache:6379")), "{instance}:\n{shown}");
    }
    assert!(shown.lines().any(|l| l.starts_with("cache ")), "{shown}");
    for secret in &secrets {
        assert!(!shown.contains(secret.as_str()), "a secret reached the logs:\n{shown}");
    }
    assert!(!shown.contains('\u{1b}'), "no colour when stdout is not a terminal");

    let out = stack.run(&["logs", "local", "app", "--tail", "1", "--json"]);
    let objects: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let mut instances: Vec<&str> = objects.iter().map(|o| o["instance"].as_str().unwrap()).collect();
    instances.sort();
    assert_eq!(instances, ["app-1", "app-2"], "{objects:?}");
    assert!(objects.iter().all(|o| o["service"] == "app" && o["line"].as_str().unwrap().starts_with("tick ")), "{objects:?}");
    let recent = stack.run(&["logs", "local", "app", "--since", "10m", "--tail", "2"]);
    assert!(recent.status.success() && String::from_utf8_lossy(&recent.stdout).lines().count() == 4, "{}", text(&recent));
    let bad = stack.run(&["logs", "local", "--since", "ten"]);
    assert!(!bad.status.success() && text(&bad).contains("--since `ten`: expected a number and a unit"), "{}", text(&bad));
    let unknown = stack.run(&["logs", "local", "nope"]);
    assert!(!unknown.status.success() && text(&unknown).contains("no service `nope` (services: app, cache)"), "{}", text(&unknown));

    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["logs", "local", "app", "-f", "--tail", "0"])
        .current_dir(stack.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let out = stack.run(&["scale", "local", "app=3"]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline && !seen.iter().any(|l: &String| l.starts_with("app/app-3")) {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
            seen.push(line);
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen.iter().any(|l| l.starts_with("app/app-1") && l.contains("tick")), "followed lines: {seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("app/app-3")), "the new instance was followed: {seen:?}");
}

/// Issue 18.13: one hook of one service, with its result, the host calls it made and
/// its stderr, and never a secret.
#[test]
fn plugins_call_runs_one_hook_and_shows_its_host_calls() {
    let stack = stack("call", "[services.cache]\nplugin = \"redis\"\n");
    let out = stack.run(&["plugins", "call", "cache", "provision"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("provision of `cache` returned") && shown.contains("REDIS_URL=***"), "{shown}");
    assert!(shown.contains("host calls:") && shown.contains("docker.ensure server (") && shown.contains("→ created"), "{shown}");
    assert!(shown.contains("secrets.get-or-create app-password → ok (value not shown)"), "{shown}");
    for secret in secrets_of(stack.path()) {
        assert!(!shown.contains(&secret), "a secret was shown:\n{shown}");
    }
    assert!(!stack.path().join(".env").exists(), "nothing is recorded");

    let out = stack.run(&["plugins", "call", "cache", "ready"]);
    assert!(out.status.success() && text(&out).contains("returned") && text(&out).contains("ready"), "{}", text(&out));
    let out = stack.run(&["plugins", "call", "cache", "validate", "--config", r#"{"colour":1}"#]);
    assert!(!out.status.success() && text(&out).contains("colour"), "{}", text(&out));
    let out = stack.run(&["plugins", "call", "cache", "teardown"]);
    assert!(out.status.success() && text(&out).contains("torn down"), "{}", text(&out));
    assert!(stack.container_ids().is_empty(), "teardown removed the container");
}

/// Issue 16.2: the run's timings report renders in a real browser (headless Chromium),
/// and its bars are the run's JSON summary: each service's provision bar starts and
/// lasts as the summary says, drawn to the chart's scale; the critical path is named.
#[test]
fn the_timings_report_renders_and_its_bars_match_the_summary() {
    let stack = stack("timings", "[services.db]\nplugin = \"postgres\"\n\n[services.cache]\nplugin = \"redis\"\ndepends_on = [\"db\"]\n");
    let out = stack.run(&["run", "local", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the summary as JSON");
    let report = stack.path().join(".provisioner/local/timings.html");
    assert!(report.is_file(), "every run writes the report");

    let dom = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("chromium (cargo xtask test installs it)");
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(dom.contains(r#"data-rendered="yes""#), "the page's script ran:\n{dom}");
    let ms_per_px: f64 = dom.split(r#"data-ms-per-px=""#).nth(1).and_then(|r| r.split('"').next()).and_then(|v| v.parse().ok()).expect("the chart's scale");
    for service in summary["services"].as_array().unwrap() {
        let name = service["service"].as_str().unwrap();
        let (start, provision) = (service["started_at_ms"].as_u64().unwrap(), service["provision_ms"].as_u64().unwrap());
        let marker = format!(r#"data-service="{name}" data-phase="provision" data-start-ms="{start}" data-ms="{provision}""#);
        let at = dom.find(&marker).unwrap_or_else(|| panic!("no provision bar for {name} as the summary says ({marker}):\n{dom}"));
        let rect = &dom[dom[..at].rfind("<rect").unwrap()..at];
        let width: f64 = rect.split(r#"width=""#).nth(1).and_then(|r| r.split('"').next()).and_then(|v| v.parse().ok()).unwrap();
        assert!((width - (provision as f64 / ms_per_px).max(1.0)).abs() < 0.6, "{name}: width {width} for {provision} ms at {ms_per_px} ms/px");
    }
    assert!(dom.contains("db → cache"), "the critical path is named");
    assert!(dom.contains("cache waits for db"), "the dependencies are shown");

    let out = stack.run(&["run", "local", "--timings"]);
    assert!(text(&out).contains(&format!("timings: {}", report.display())), "{}", text(&out));
}
