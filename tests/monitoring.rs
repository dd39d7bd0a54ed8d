//! The ticketing example with the monitoring stack added (`plugin = "prometheus"`, no
//! other configuration), on the real engine, checked the way a user would: through
//! Prometheus's own HTTP API at the URL `.env` names, and with the exporters'
//! credentials tried against the data services themselves.
//!
//! One stack for the whole suite: every target up within one scrape interval of `run`
//! finishing; the monitoring identities read statistics and nothing else; each backend
//! instance probed on its health path, those `scale` adds too, and one hung instance
//! among healthy ones fires `ReplicaUnhealthy`; stopping Redis fires its alert and
//! `status` shows it; teardown leaves nothing.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{docker, text, Stack};

/// The suite's scrape interval and the rules' `for`, short so the alert fires quickly.
const SCRAPE_INTERVAL: Duration = Duration::from_secs(2);
const ALERT_AFTER: &str = "4s";
/// How soon after `run` or `scale` a new instance's probe has a result: Prometheus's
/// 5 s hand-off of new targets to its scrapers, then one scrape interval.
const PROBES_WITHIN: Duration = Duration::from_secs(5 + 2 * 2 + 2);

fn get_json(url: &str) -> Value {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    let body = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}")).into_string().expect("a body");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
}

/// Each active target as (job, health, last error).
fn targets(prometheus: &str) -> Vec<(String, String, String)> {
    let answer = get_json(&format!("{prometheus}/api/v1/targets?state=active"));
    answer["data"]["activeTargets"]
        .as_array()
        .expect("activeTargets")
        .iter()
        .map(|t| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&t["labels"]["job"]), s(&t["health"]), s(&t["lastError"]))
        })
        .collect()
}

/// The alerts firing now, as (alertname, service).
fn firing(prometheus: &str) -> BTreeSet<(String, String)> {
    let answer = get_json(&format!("{prometheus}/api/v1/alerts"));
    answer["data"]["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            let label = |k: &str| a["labels"][k].as_str().unwrap_or_default().to_string();
            (label("alertname"), label("service"))
        })
        .collect()
}

/// Wait up to a minute for `alert` of `service` to fire, `since` what happened just now.
fn await_firing(prometheus: &str, alert: &str, service: &str, since: &str) {
    let started = Instant::now();
    loop {
        let now = firing(prometheus);
        if now.iter().any(|(a, s)| a == alert && s == service) {
            eprintln!("{alert} ({service}) fired {} ms after {since}: {now:?}", started.elapsed().as_millis());
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{alert} for {service} never fired after {since}; firing: {now:?}, probes {:?}", probes(prometheus));
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `probe_success` of each backend instance Prometheus probes, by instance.
fn probes(prometheus: &str) -> std::collections::BTreeMap<String, String> {
    let answer = get_json(&format!("{prometheus}/api/v1/query?query=probe_success%7Bjob%3D%22instance-health%22%7D"));
    answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["metric"]["service"] == "backend")
        .map(|r| (r["metric"]["instance"].as_str().unwrap_or_default().to_string(), r["value"][1].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Wait up to `within` for `probes` to be `want`.
fn await_probes(prometheus: &str, want: &[(&str, &str)], within: Duration) {
    let want: std::collections::BTreeMap<String, String> = want.iter().map(|(i, v)| (i.to_string(), v.to_string())).collect();
    let deadline = Instant::now() + within;
    loop {
        let now = probes(prometheus);
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "the backend's probes are {now:?}, not {want:?}, after {within:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `docker exec` into the project's container `short` of `service`.
fn exec(stack: &Stack, service: &str, short: &str, command: &[&str]) -> std::process::Output {
    let name = format!("{}-local-{service}-{short}", stack.name);
    std::process::Command::new("docker").arg("exec").arg(&name).args(command).output().expect("docker exec")
}

/// A secret the plugin of `service` generated, from the environment's secrets folder.
fn secret(stack: &Stack, service: &str, name: &str) -> String {
    let file = stack.path().join(format!(".provisioner/local/secrets/{service}.json"));
    let all: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))).expect("secrets JSON");
    all.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("no secret {name} for {service}")).to_string()
}

#[test]
fn the_example_with_prometheus_is_scraped_keeps_exporters_to_statistics_and_alerts() {
    support::require(
        &["postgres", "redis", "s3", "rabbitmq", "container", "loadbalancer", "prometheus"],
        &[
            "provisioner-offline/postgres:15",
            "provisioner-offline/redis:7",
            "provisioner-offline/garage:2.5.0",
            "provisioner-offline/rabbitmq:3",
            "provisioner-offline/nginx:1.22",
            "provisioner-example/ticketing-backend:dev",
            "provisioner-offline/prometheus:2",
            "provisioner-offline/alertmanager:0.25",
            "provisioner-offline/postgres-exporter:0.11",
            "provisioner-offline/redis-exporter:1.45",
            "provisioner-offline/nginx-exporter:0.11",
            "provisioner-offline/blackbox-exporter:0.23",
        ],
    );
    let stack = Stack::from_file("monitoring", &support::root().join("examples/ticketing/provisioner.toml"));
    stack.edit("port = 3000", "port = 0");
    let file = stack.path().join("provisioner.toml");
    let mut toml = std::fs::read_to_string(&file).unwrap();
    toml.push_str(&format!(
        "\n[services.metrics]\nplugin = \"prometheus\"\nconfig = {{ scrape_interval = \"{}s\", alert_after = \"{ALERT_AFTER}\" }}\n",
        SCRAPE_INTERVAL.as_secs()
    ));
    std::fs::write(&file, toml).unwrap();

    let run = stack.run(&["run", "local"]);
    let finished = Instant::now();
    assert!(run.status.success(), "run with prometheus failed:\n{}", text(&run));
    let dotenv = stack.dotenv();
    let prometheus = dotenv.get("PROMETHEUS_URL").cloned().expect("PROMETHEUS_URL in .env");
    assert!(prometheus.starts_with("http://127.0.0.1:"), "the UI is published on 127.0.0.1 only: {prometheus}");

    // Every data service, the load balancer, Prometheus itself and the Alertmanager, each up within one
    // scrape interval of the run finishing (plus the time one poll takes).
    let wanted: BTreeSet<&str> = ["db", "cache", "files", "queue", "web", "prometheus", "alertmanager"].into();
    let mut seen;
    loop {
        seen = targets(&prometheus);
        let up: BTreeSet<&str> = seen.iter().filter(|(_, health, _)| health == "up").map(|(job, ..)| job.as_str()).collect();
        if wanted.is_subset(&up) && seen.iter().all(|(_, health, _)| health == "up") {
            break;
        }
        assert!(
            finished.elapsed() < SCRAPE_INTERVAL + Duration::from_millis(1500),
            "not every target was up within one scrape interval ({SCRAPE_INTERVAL:?}) of the run finishing: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("every target up {} ms after the run finished: {seen:?}", finished.elapsed().as_millis());
    assert!(firing(&prometheus).is_empty(), "nothing fires on a healthy stack: {:?}", firing(&prometheus));
    // The load balancer's exporter reads nginx's stub_status on the project network.
    let nginx = get_json(&format!("{prometheus}/api/v1/query?query=nginx_up"));
    let results = nginx["data"]["result"].as_array().cloned().unwrap_or_default();
    assert!(
        results.iter().any(|r| r["metric"]["service"] == "web" && r["value"][1] == "1"),
        "nginx_up of web is 1: {nginx}"
    );

    // The backend's one instance is probed on its health path, and healthy. The
    // instances reach Prometheus after the others (the collector is told about them
    // once they exist, and Prometheus hands new targets to its scrapers every 5 s).
    await_probes(&prometheus, &[("app-1", "1")], PROBES_WITHIN);

    // `scale` adds an instance: the collector is told before the command returns, and
    // probes it too.
    let scaled = stack.run(&["scale", "local", "backend=2"]);
    assert!(scaled.status.success(), "scale: {}", text(&scaled));
    await_probes(&prometheus, &[("app-1", "1"), ("app-2", "1")], PROBES_WITHIN);

    // One instance hangs (paused): the balancer's own health may still answer through
    // the other, but the alert names the one.
    let hung = format!("{}-local-backend-app-2", stack.name);
    docker(&["pause", &hung]);
    await_firing(&prometheus, "ReplicaUnhealthy", "backend", "app-2 hung");
    assert_eq!(probes(&prometheus).get("app-1").map(String::as_str), Some("1"), "the other instance stays healthy");
    let status = stack.run(&["status", "local"]);
    let said = text(&status);
    assert!(said.contains("firing: ReplicaUnhealthy (backend)") && said.contains("instance app-2"), "status shows which instance:\n{said}");
    docker(&["unpause", &hung]);
    await_probes(&prometheus, &[("app-1", "1"), ("app-2", "1")], PROBES_WITHIN);

    // The exporters' identities: statistics yes, the app's data no.
    let pg_monitor = secret(&stack, "db", "monitor-password");
    let app_url = dotenv.get("DATABASE_URL").cloned().expect("DATABASE_URL");
    let app_in_container = app_url.replace(app_url.split('@').nth(1).and_then(|h| h.split('/').next()).unwrap(), "127.0.0.1:5432");
    let made = exec(&stack, "db", "server", &["psql", &app_in_container, "-v", "ON_ERROR_STOP=1", "-c", "CREATE TABLE private_notes (body text); INSERT INTO private_notes VALUES ('secret');"]);
    assert!(made.status.success(), "the app creates a table: {}", text(&made));
    let monitor = |database: &str, sql: &str| {
        let url = format!("postgresql://monitor:{pg_monitor}@127.0.0.1:5432/{database}");
        exec(&stack, "db", "server", &["psql", &url, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
    };
    let stats = monitor("postgres", "SELECT count(*) > 0 FROM pg_stat_database");
    assert!(stats.status.success() && text(&stats).contains('t'), "the monitor role reads statistics: {}", text(&stats));
    for sql in ["SELECT * FROM private_notes", "INSERT INTO private_notes VALUES ('x')", "DELETE FROM private_notes"] {
        let out = monitor("ticketing", sql);
        assert!(
            !out.status.success() && text(&out).contains("permission denied for database"),
            "the monitor role cannot even connect to the app's database for `{sql}`: {}",
            text(&out)
        );
    }
    let app_user = app_url.trim_start_matches("postgres://").trim_start_matches("postgresql://").split(':').next().unwrap().to_string();
    for sql in ["CREATE TABLE mine (x int)".to_string(), format!("SET ROLE {app_user}"), "CREATE DATABASE mine".to_string()] {
        let out = monitor("postgres", &sql);
        assert!(!out.status.success() && text(&out).contains("permission denied"), "the monitor role is refused `{sql}`: {}", text(&out));
    }

    let redis_monitor = secret(&stack, "cache", "monitor-password");
    let redis = |args: &[&str]| {
        let mut command = vec!["redis-cli", "--no-auth-warning", "--user", "monitor", "--pass", redis_monitor.as_str()];
        command.extend_from_slice(args);
        exec(&stack, "cache", "server", &command)
    };
    let info = redis(&["INFO", "memory"]);
    assert!(text(&info).contains("used_memory:"), "the monitor user reads INFO: {}", text(&info));
    for args in [&["GET", "anything"][..], &["SET", "k", "v"], &["KEYS", "*"], &["FLUSHALL"], &["CONFIG", "SET", "maxmemory", "1"]] {
        let out = redis(args);
        assert!(text(&out).contains("NOPERM"), "the monitor user is refused {args:?}: {}", text(&out));
    }

    // Redis stops: its exporter sees it down, the alert fires, `status` says so.
    let cache_server = format!("{}-local-cache-server", stack.name);
    docker(&["stop", "-t", "1", &cache_server]);
    await_firing(&prometheus, "ServiceDown", "cache", "Redis stopped");
    let status = stack.run(&["status", "local"]);
    let said = text(&status);
    assert!(said.contains("firing: ServiceDown (cache)"), "status shows the firing alert:\n{said}");
    assert!(!status.status.success(), "status fails while Redis is down:\n{said}");

    let teardown = stack.run(&["teardown", "local"]);
    assert!(teardown.status.success(), "teardown: {}", text(&teardown));
    assert!(stack.labelled().is_empty(), "teardown left {:?}", stack.labelled());
}
