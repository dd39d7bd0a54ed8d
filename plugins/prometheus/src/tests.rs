//! Native unit tests against the SDK's mock host.

use std::cell::RefCell;
use std::io::{Read, Write};

use provisioner_plugin_sdk::testing::{self, ctx, not_yet, MockHost};
use serde_json::json;

use super::*;

thread_local! {
    /// Where `ready` finds the Alertmanager in a test: the mock's container addresses
    /// (172.30.0.x) lead nowhere.
    pub(crate) static ALERTMANAGER_ADDR: RefCell<Option<String>> = const { RefCell::new(None) };
}

const DB: (&str, &str, &str, &str) = ("db", "postgres", "shop-local-db-exporter:9187", "/metrics");
const CACHE: (&str, &str, &str, &str) = ("cache", "redis", "shop-local-cache-exporter:9121", "/metrics");

fn targets_written(mock: &MockHost) -> Vec<String> {
    mock.written_files().iter().filter(|f| f.container == SERVER && f.path == TARGETS_JSON).map(|f| f.text()).collect()
}

fn file(spec: &ContainerSpec, path: &str) -> String {
    let file = spec.files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("no file {path} in {}", spec.name));
    String::from_utf8(file.contents.clone()).unwrap()
}

/// A one-shot HTTP server on a local port answering every request with `status` and `body`.
fn http_server(status: &str, body: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let answer = http_answer(status, body);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(&answer);
        }
    });
    addr
}

fn http_answer(status: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

#[test]
fn provision_runs_alertmanager_then_prometheus_and_writes_the_targets() {
    let mock = MockHost::for_plugin::<Prometheus>();
    mock.set_scrape_targets(&[DB]);
    let outputs = Prometheus::provision(ctx("metrics", json!({}))).unwrap();

    let order: Vec<String> = mock.ensured().iter().map(|s| s.name.clone()).collect();
    assert_eq!(order, [ALERTMANAGER, SERVER]);

    let am = mock.spec(ALERTMANAGER);
    assert_eq!(am.image, "provisioner-offline/alertmanager:0.25");
    assert!(am.ports.is_empty(), "not published");
    assert!(file(&am, ALERTMANAGER_YML).contains("receivers:\n  - name: default\n"));
    assert!(am.command.as_ref().unwrap().contains(&"--config.file=/etc/alertmanager/alertmanager.yml".to_string()));
    assert!(am.resources.is_some());

    let server = mock.spec(SERVER);
    assert_eq!(server.image, "provisioner-offline/prometheus:2");
    assert_eq!(
        server.command.clone().unwrap(),
        ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=7d", "--web.listen-address=:9090"]
    );
    assert_eq!((server.ports.len(), server.ports[0].container_port, server.ports[0].host_port), (1, 9090, None));
    assert_eq!((server.mounts[0].volume.as_str(), server.mounts[0].target.as_str()), ("data", "/prometheus"));
    assert!(server.resources.is_some());
    let yml = file(&server, PROMETHEUS_YML);
    let am_at = format!("{}:9093", mock.container(ALERTMANAGER).unwrap().engine_name);
    assert!(yml.contains(&format!("- targets: [\"{am_at}\"]")), "{yml}");
    assert!(yml.contains("scrape_interval: 15s\n") && yml.contains("evaluation_interval: 15s\n"), "{yml}");
    assert!(!yml.contains("exporter"), "the scraped services are not in the spec");
    let rules = file(&server, RULES_YML);
    assert!(rules.contains("for: 1m\n") && rules.contains("> 1000\n") && !rules.contains("ALERT_AFTER"), "{rules}");

    let written = targets_written(&mock);
    assert_eq!(written.len(), 1);
    let groups: serde_json::Value = serde_json::from_str(&written[0]).unwrap();
    assert_eq!(
        groups,
        json!([{"targets": ["shop-local-db-exporter:9187"],
                "labels": {"job": "db", "service": "db", "plugin": "postgres", "__metrics_path__": "/metrics"}}])
    );
    assert!(mock.signals().is_empty(), "a new server reads the file by itself");

    let url = testing::output(&outputs, "PROMETHEUS_URL");
    assert_eq!(url.value, format!("http://{}", mock.host_addr(SERVER, 9090)));
    assert!(url.value.starts_with("http://127.0.0.1:") && !url.secret);
    assert_eq!(url.network_value.as_deref(), Some(format!("http://{}:9090", mock.container(SERVER).unwrap().engine_name).as_str()));
}

#[test]
fn new_targets_are_written_into_the_running_server_without_replacing_it() {
    let mock = MockHost::for_plugin::<Prometheus>();
    mock.set_scrape_targets(&[DB]);
    Prometheus::provision(ctx("metrics", json!({}))).unwrap();
    let (spec, id) = (mock.spec(SERVER), mock.container(SERVER).unwrap().id);

    // The same run again: nothing to write.
    Prometheus::provision(ctx("metrics", json!({}))).unwrap();
    assert_eq!(targets_written(&mock).len(), 1);
    assert!(mock.signals().is_empty());

    // A service added: the same spec, the same container, a new file and a reload.
    mock.set_scrape_targets(&[DB, CACHE]);
    Prometheus::provision(ctx("metrics", json!({}))).unwrap();
    assert_eq!(format!("{:?}", mock.spec(SERVER)), format!("{spec:?}"));
    assert_eq!(mock.container(SERVER).unwrap().id, id, "not replaced");
    let written = targets_written(&mock);
    assert_eq!(written.len(), 2);
    let groups: serde_json::Value = serde_json::from_str(&written[1]).unwrap();
    assert_eq!(groups[1]["labels"], json!({"job": "cache", "service": "cache", "plugin": "redis", "__metrics_path__": "/metrics"}));
    assert_eq!(mock.signals(), [(SERVER.to_string(), "SIGHUP".to_string())]);

    // A replaced server (a config change) lost the file: written again, no signal.
    Prometheus::provision(ctx("metrics", json!({"retention": "30d"}))).unwrap();
    assert_ne!(mock.container(SERVER).unwrap().id, id);
    assert_eq!(targets_written(&mock).len(), 3);
    assert_eq!(mock.signals().len(), 1);

    // A failed reload is not a failed run: file_sd re-reads the file anyway.
    mock.set_scrape_targets(&[]);
    mock.fail_next("signal", None, Error::Engine("no such process".into()));
    Prometheus::provision(ctx("metrics", json!({"retention": "30d"}))).unwrap();
    assert_eq!(targets_written(&mock).last().unwrap().trim(), "[]");
}

#[test]
fn instances_to_probe_start_the_blackbox_exporter_and_none_remove_it() {
    let mock = MockHost::for_plugin::<Prometheus>();
    mock.set_scrape_targets(&[DB]);
    mock.set_probe_targets(&[
        ("backend", "container", "app-1", "shop-local-backend-app-1:3000", "/health"),
        ("backend", "container", "app-2", "shop-local-backend-app-2:3000", "/health"),
    ]);
    Prometheus::provision(ctx("metrics", json!({}))).unwrap();
    let blackbox = mock.spec(BLACKBOX);
    assert_eq!(blackbox.image, DEFAULT_BLACKBOX_IMAGE);
    assert!(blackbox.ports.is_empty() && !blackbox.answers_for_service, "reached only by Prometheus, by its engine name");
    assert!(file(&blackbox, BLACKBOX_YML).contains("http_2xx:\n    prober: http\n"));
    let at = format!("{}:9115", mock.container(BLACKBOX).unwrap().engine_name);
    let groups: serde_json::Value = serde_json::from_str(targets_written(&mock).last().unwrap()).unwrap();
    assert_eq!(groups.as_array().unwrap().len(), 3);
    assert_eq!(groups[2]["targets"][0], at.as_str());
    assert_eq!(groups[2]["labels"]["instance"], "app-2");
    assert_eq!(groups[2]["labels"]["__param_target"], "http://shop-local-backend-app-2:3000/health");

    // Scaled to zero instances to probe: the exporter goes, the probes too.
    mock.set_probe_targets(&[]);
    Prometheus::provision(ctx("metrics", json!({}))).unwrap();
    assert!(mock.container(BLACKBOX).is_none(), "removed");
    let groups: serde_json::Value = serde_json::from_str(targets_written(&mock).last().unwrap()).unwrap();
    assert_eq!(groups.as_array().unwrap().len(), 1);
}

#[test]
fn config_keys_and_images() {
    let mock = MockHost::for_plugin::<Prometheus>();
    let config = json!({"scrape_interval": "5s", "alert_after": "30s", "retention": "2h", "queue_backlog": 50, "memory_mb": 512,
                        "alertmanager_image": "prom/alertmanager:v0.27.0"});
    Prometheus::provision(ctx("metrics", config.clone())).unwrap();
    let server = mock.spec(SERVER);
    assert!(server.command.clone().unwrap().contains(&"--storage.tsdb.retention.time=2h".to_string()));
    assert_eq!(server.resources.unwrap().memory_mb, Some(512));
    let yml = file(&server, PROMETHEUS_YML);
    assert!(yml.contains("scrape_interval: 5s\n  scrape_timeout: 5s\n  evaluation_interval: 5s\n"), "{yml}");
    let rules = file(&server, RULES_YML);
    assert!(rules.contains("for: 30s\n") && rules.contains("rabbitmq_queue_messages_ready) > 50\n"), "{rules}");
    assert_eq!(mock.spec(ALERTMANAGER).image, "prom/alertmanager:v0.27.0");

    // The environment's override is the server's image; the Alertmanager keeps its own.
    let mut overridden = ctx("metrics", json!({}));
    overridden.image_override = Some("prom/prometheus:v2.53.0".into());
    Prometheus::provision(overridden).unwrap();
    assert_eq!(mock.spec(SERVER).image, "prom/prometheus:v2.53.0");
    assert_eq!(mock.spec(ALERTMANAGER).image, DEFAULT_ALERTMANAGER_IMAGE);

    let err = Prometheus::provision(ctx("metrics", json!({"image": "grafana/grafana:11"}))).unwrap_err();
    assert!(err.starts_with("denied: image grafana/grafana:11"), "{err}");
}

#[test]
fn an_invalid_config_gives_every_problem() {
    let result = Prometheus::validate(
        json!({"scrape_interval": "15", "alert_after": "1h30m", "retention": "0d", "queue_backlog": -1, "memory_mb": 8, "colour": "red", "image": ""})
            .to_string(),
    );
    assert_eq!(
        testing::problem_keys(&result),
        ["alert_after", "colour", "image", "memory_mb", "queue_backlog", "retention", "scrape_interval"]
    );
    let problems = result.unwrap_err();
    assert!(problems[0].message.contains("ms, s, m, h, d"), "{:?}", problems[0]);
    assert!(problems[5].message.contains("more than zero"), "{:?}", problems[5]);
    assert!(Prometheus::validate("{}".into()).is_ok());
    assert!(Prometheus::validate(json!({"scrape_interval": "500ms", "alert_after": "0s", "retention": "90d"}).to_string()).is_ok());
    let err = Prometheus::provision(ctx("metrics", json!({"retention": "7 days"}))).unwrap_err();
    assert!(err.starts_with("config.retention: `7 days`"), "{err}");
}

#[test]
fn ready_when_both_answer_not_yet_otherwise() {
    let mock = MockHost::for_plugin::<Prometheus>();
    assert!(not_yet(Prometheus::ready(ctx("metrics", json!({})))).contains("container server"), "nothing yet");

    mock.serve(SERVER, 9090, |_| http_answer("503 Service Unavailable", "Service Unavailable"));
    Prometheus::provision(ctx("metrics", json!({}))).unwrap();
    let reason = not_yet(Prometheus::ready(ctx("metrics", json!({}))));
    assert!(reason.starts_with("Prometheus is not ready yet (503"), "{reason}");

    // Ready; its scrapers have only itself so far (of itself, the Alertmanager and db).
    mock.set_scrape_targets(&[DB]);
    mock.serve(SERVER, 9090, |request| {
        if request.starts_with(b"GET /api/v1/targets?state=active HTTP/1.1\r\n") {
            return http_answer("200 OK", r#"{"status":"success","data":{"activeTargets":[{"labels":{"job":"prometheus"}}]}}"#);
        }
        assert!(request.starts_with(b"GET /-/ready HTTP/1.1\r\n"));
        http_answer("200 OK", "Prometheus Server is Ready.\n")
    });
    // The Alertmanager refuses (a port nobody listens on).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    ALERTMANAGER_ADDR.with(|a| *a.borrow_mut() = Some(closed));
    let reason = not_yet(Prometheus::ready(ctx("metrics", json!({}))));
    assert!(reason.starts_with("Alertmanager: connect 127.0.0.1:"), "{reason}");

    ALERTMANAGER_ADDR.with(|a| *a.borrow_mut() = Some(http_server("503 Service Unavailable", "")));
    assert!(not_yet(Prometheus::ready(ctx("metrics", json!({})))).starts_with("Alertmanager is not ready yet (503"));

    ALERTMANAGER_ADDR.with(|a| *a.borrow_mut() = Some(http_server("200 OK", "OK")));
    let reason = not_yet(Prometheus::ready(ctx("metrics", json!({}))));
    assert_eq!(reason, "Prometheus has 1 of its 3 targets so far");

    mock.serve(SERVER, 9090, |request| {
        if request.starts_with(b"GET /api/v1/targets") {
            let three = r#"{"status":"success","data":{"activeTargets":[{"health":"unknown"},{"health":"up"},{"health":"unknown"}]}}"#;
            return http_answer("200 OK", three);
        }
        http_answer("200 OK", "Prometheus Server is Ready.\n")
    });
    testing::assert_ready(&Prometheus::ready(ctx("metrics", json!({}))));

    mock.exit(ALERTMANAGER, 1);
    assert_eq!(Prometheus::ready(ctx("metrics", json!({}))).unwrap_err(), "alertmanager exited (code 1)");
    mock.exit(SERVER, 137);
    assert_eq!(Prometheus::ready(ctx("metrics", json!({}))).unwrap_err(), "the server exited (code 137, killed)");
}

const ALERTS: &str = r#"{"status":"success","data":{"alerts":[
  {"labels":{"alertname":"QueueBacklog","service":"queue","severity":"warning"},
   "annotations":{"summary":"queue: 1500 messages wait in queues (more than 1000)"},
   "state":"pending","activeAt":"2026-11-29T12:03:00.5Z","value":"1.5e+03"},
  {"labels":{"alertname":"ServiceDown","service":"cache","job":"cache","instance":"x:9121","severity":"critical"},
   "annotations":{"summary":"cache: the exporter cannot reach its server"},
   "state":"firing","activeAt":"2026-11-29T12:00:01.123456789Z","value":"0e+00"},
  {"labels":{"alertname":"AlertmanagerDown"},"annotations":{},"state":"firing","activeAt":"2026-11-29T11:59:00Z","value":"0"}
]}}"#;

#[test]
fn firing_alerts_then_pending_ones_one_line_each() {
    assert_eq!(
        alert_lines(ALERTS).unwrap(),
        [
            "firing: AlertmanagerDown since 2026-11-29T11:59:00Z",
            "firing: ServiceDown (cache) since 2026-11-29T12:00:01Z — cache: the exporter cannot reach its server",
            "pending: QueueBacklog (queue) since 2026-11-29T12:03:00Z — queue: 1500 messages wait in queues (more than 1000)",
        ]
    );
    assert!(alert_lines(r#"{"status":"success","data":{"alerts":[]}}"#).unwrap().is_empty());
    assert!(alert_lines(r#"{"status":"error","errorType":"internal","error":"boom"}"#).unwrap_err().contains("boom"));
    assert!(alert_lines("<html>").is_err());
    assert_eq!(whole_seconds("2026-11-29T12:00:01.5+01:00"), "2026-11-29T12:00:01+01:00");
}

#[test]
fn notices_from_prometheus_or_why_not() {
    let mock = MockHost::for_plugin::<Prometheus>();
    let unreachable = Prometheus::notices(ctx("metrics", json!({}))).unwrap();
    assert_eq!(unreachable.len(), 1);
    assert!(unreachable[0].starts_with("Prometheus is unreachable, alerts unknown: not found"), "{unreachable:?}");

    mock.serve(SERVER, 9090, |request| {
        assert!(request.starts_with(b"GET /api/v1/alerts HTTP/1.1\r\n"));
        // Go answers a large body chunked.
        let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for chunk in ALERTS.as_bytes().chunks(100) {
            answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            answer.extend_from_slice(chunk);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        answer
    });
    Prometheus::provision(ctx("metrics", json!({}))).unwrap();
    let lines = Prometheus::notices(ctx("metrics", json!({}))).unwrap();
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("firing: ServiceDown (cache) since 2026-11-29T12:00:01Z"), "{lines:?}");

    mock.exit(SERVER, 0);
    let lines = Prometheus::notices(ctx("metrics", json!({}))).unwrap();
    assert!(lines[0].starts_with("Prometheus is unreachable, alerts unknown: the server exited"), "{lines:?}");
}

#[test]
fn teardown_removes_both_and_the_volume_unless_kept() {
    let mock = MockHost::for_plugin::<Prometheus>();
    Prometheus::provision(ctx("metrics", json!({}))).unwrap();
    assert!(mock.state_file(TARGETS_STATE).is_some());
    Prometheus::teardown(ctx("metrics", json!({})), true).unwrap();
    assert_eq!(mock.removed(), [SERVER, ALERTMANAGER]);
    assert_eq!(mock.volumes(), ["alerts", "data"]);
    assert!(mock.state_file(TARGETS_STATE).is_none());
    Prometheus::teardown(ctx("metrics", json!({})), false).unwrap();
    assert!(mock.volumes().is_empty() && mock.containers().is_empty());
}

#[test]
fn describe_declares_what_provision_uses() {
    let info = Prometheus::describe();
    assert_eq!(info.name, "prometheus");
    let declared: Vec<String> = info.capabilities.iter().map(|c| format!("{c:?}")).collect();
    for pattern in ["prometheus:*", "*/prometheus:*", "prom/prometheus:*", "alertmanager:*", "*/alertmanager:*", "prom/alertmanager:*"] {
        assert!(declared.contains(&format!("{:?}", Capability::Image(pattern.into()))), "{pattern}");
    }
    for capability in [Capability::Publish(9090), Capability::Volume("data".into()), Capability::NetProbe, Capability::ScrapeTargets, Capability::Exec, Capability::StateFiles] {
        assert!(declared.contains(&format!("{capability:?}")), "{capability:?}");
    }
    assert_eq!(info.outputs, ["PROMETHEUS_URL"]);
    assert!(Prometheus::BACKUP.is_none());
    let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["properties"]["scrape_interval"]["default"], "15s");
    assert_eq!(schema["properties"]["queue_backlog"]["default"], 1000);
    assert_eq!(schema["additionalProperties"], false);
}

/// The generated files pass Prometheus's and Alertmanager's own checks, and the rules
/// fire as meant on sample series (`promtool test rules`). Only where `promtool` (and
/// `amtool`) are on PATH, e.g. with Debian's `prometheus` package installed.
#[test]
fn promtool_accepts_the_files_and_the_rules_fire() {
    let has = |tool: &str| std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !has("promtool") {
        eprintln!("promtool is not on PATH: skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("prometheus-plugin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yml");
    std::fs::write(&rules, files::rules_yml("1m", 1000)).unwrap();
    let settings = Settings { service: "metrics", scrape_interval: "15s", alertmanager: "test-local-metrics-alertmanager:9093" };
    let config = files::prometheus_yml(&settings).replace(RULES_YML, rules.to_str().unwrap());
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    std::fs::write(dir.join("alertmanager.yml"), files::alertmanager_yml()).unwrap();
    std::fs::write(dir.join("rules_test.yml"), RULES_TEST.replace("RULES", rules.to_str().unwrap())).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(args[0]).args(&args[1..]).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "{args:?}:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    run(&["promtool", "check", "rules", "rules.yml"]);
    run(&["promtool", "check", "config", "prometheus.yml"]);
    run(&["promtool", "test", "rules", "rules_test.yml"]);
    if has("amtool") {
        run(&["amtool", "check-config", "alertmanager.yml"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sample series for `promtool test rules`: each alert fires after `for: 1m`.
const RULES_TEST: &str = r#"rule_files: [RULES]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'up{job="cache",service="cache",plugin="redis",instance="x:9121"}'
        values: '0x10'
      - series: 'redis_up{job="cache",service="cache",plugin="redis",instance="x:9121"}'
        values: '0x10'
      - series: 'redis_memory_used_bytes{job="cache",service="cache",instance="x:9121"}'
        values: '95x10'
      - series: 'redis_memory_max_bytes{job="cache",service="cache",instance="x:9121"}'
        values: '100x10'
      - series: 'redis_memory_used_bytes{job="nolimit",service="nolimit",instance="y:9121"}'
        values: '95x10'
      - series: 'redis_memory_max_bytes{job="nolimit",service="nolimit",instance="y:9121"}'
        values: '0x10'
      - series: 'rabbitmq_queue_messages_ready{job="queue",service="queue",instance="q:15692",queue="a"}'
        values: '600x10'
      - series: 'rabbitmq_queue_messages_ready{job="queue",service="queue",instance="q:15692",queue="b"}'
        values: '600x10'
      - series: 'rabbitmq_disk_space_available_bytes{job="queue",service="queue",instance="q:15692"}'
        values: '100x10'
      - series: 'rabbitmq_disk_space_available_limit_bytes{job="queue",service="queue",instance="q:15692"}'
        values: '60x10'
      - series: 'garage_local_disk_avail{job="files",service="files",instance="g:3903",volume="data"}'
        values: '5x10'
      - series: 'garage_local_disk_total{job="files",service="files",instance="g:3903",volume="data"}'
        values: '100x10'
      - series: 'prometheus_notifications_alertmanagers_discovered{job="prometheus",service="metrics",instance="localhost:9090"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 30s
        alertname: ServiceDown
        exp_alerts: []
      - eval_time: 2m
        alertname: ServiceDown
        exp_alerts:
          - exp_labels: {severity: critical, job: cache, service: cache, plugin: redis, instance: "x:9121"}
            exp_annotations: {summary: "cache: the exporter cannot reach its server"}
      - eval_time: 2m
        alertname: TargetDown
        exp_alerts:
          - exp_labels: {severity: critical, job: cache, service: cache, plugin: redis, instance: "x:9121"}
            exp_annotations: {summary: "cache: Prometheus cannot scrape x:9121 (job cache)"}
      - eval_time: 2m
        alertname: MemoryNearLimit
        exp_alerts:
          - exp_labels: {severity: warning, job: cache, service: cache, instance: "x:9121"}
            exp_annotations: {summary: "cache: memory is at 95% of its limit"}
      - eval_time: 2m
        alertname: QueueBacklog
        exp_alerts:
          - exp_labels: {severity: warning, service: queue}
            exp_annotations: {summary: "queue: 1200 messages wait in queues (more than 1000)"}
      - eval_time: 2m
        alertname: DiskNearLimit
        exp_alerts:
          - exp_labels: {severity: warning, job: queue, service: queue, instance: "q:15692"}
            exp_annotations: {summary: "queue: little disk space left"}
          - exp_labels: {severity: warning, job: files, service: files, instance: "g:3903", volume: data}
            exp_annotations: {summary: "files: little disk space left for data"}
      - eval_time: 2m
        alertname: AlertmanagerDown
        exp_alerts:
          - exp_labels: {severity: warning, job: prometheus, service: metrics, instance: "localhost:9090"}
            exp_annotations: {summary: "metrics: Alertmanager is not reachable, alerts are not delivered"}
"#;
