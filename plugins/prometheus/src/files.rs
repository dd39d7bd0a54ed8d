//! The files the containers read, as pure functions of the config: Prometheus's
//! `prometheus.yml` and `rules.yml`, Alertmanager's `alertmanager.yml` (all three
//! part of the specs: a change replaces the container), and the file_sd targets file
//! (written into the running server, so the scraped services change without a
//! replacement).

use std::collections::BTreeMap;

use serde::Serialize;

/// Where Prometheus reads its configuration.
pub const PROMETHEUS_YML: &str = "/etc/prometheus/prometheus.yml";
/// The alert rules.
pub const RULES_YML: &str = "/etc/prometheus/rules.yml";
/// The folder file_sd watches, and the one file of it the plugin writes.
pub const TARGETS_DIR: &str = "/etc/prometheus/targets";
pub const TARGETS_JSON: &str = "/etc/prometheus/targets/targets.json";
/// Where Alertmanager reads its configuration.
pub const ALERTMANAGER_YML: &str = "/etc/alertmanager/alertmanager.yml";
/// Where the blackbox exporter reads its modules (upstream's image's own path).
pub const BLACKBOX_YML: &str = "/etc/blackbox_exporter/config.yml";
/// The blackbox module that probes an instance's health endpoint.
pub const HEALTH_MODULE: &str = "http_2xx";
/// The job of the instances' health probes (`probe_success` per instance).
pub const HEALTH_JOB: &str = "instance-health";

/// How often file_sd re-reads the targets file besides its file-system watch (and the
/// SIGHUP sent after a rewrite into a running server).
const FILE_SD_REFRESH: &str = "30s";

/// What the static `prometheus.yml` depends on.
pub struct Settings<'a> {
    /// This service's name, the `service` label of Prometheus's and Alertmanager's own targets.
    pub service: &'a str,
    /// The scrape and evaluation interval.
    pub scrape_interval: &'a str,
    /// `host:port` of the Alertmanager on the project network.
    pub alertmanager: &'a str,
}

/// `prometheus.yml`: the global intervals, Alertmanager, the rules, Prometheus's and
/// Alertmanager's own metrics, and every other service's from the file_sd folder. The
/// services scraped are not in it, so a change of them does not touch the spec.
pub fn prometheus_yml(s: &Settings) -> String {
    let interval = s.scrape_interval;
    // The default timeout (10 s) may not exceed the interval.
    let timeout = if duration_ms(interval).is_some_and(|ms| ms < 10_000) { interval } else { "10s" };
    let own = |job: &str, target: &str| {
        format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n        labels:\n          service: {}\n          plugin: prometheus\n",
            quote(target),
            quote(s.service)
        )
    };
    format!(
        "# Written by the provisioner plugin `prometheus`.\n\
         global:\n  scrape_interval: {interval}\n  scrape_timeout: {timeout}\n  evaluation_interval: {interval}\n\
         \n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{am}]\n\
         \n\
         rule_files:\n  - {RULES_YML}\n\
         \n\
         scrape_configs:\n\
         {prometheus}\
         {alertmanager}\
         \x20 # The environment's services: each target group sets its own job (the\n\
         \x20 # service's name), labels and metrics path.\n\
         \x20 - job_name: services\n    file_sd_configs:\n      - files: [{sd_files}]\n        refresh_interval: {FILE_SD_REFRESH}\n",
        am = quote(s.alertmanager),
        prometheus = own("prometheus", "localhost:9090"),
        alertmanager = own("alertmanager", s.alertmanager),
        sd_files = quote(&format!("{TARGETS_DIR}/*.json")),
    )
}

/// `alertmanager.yml`: every alert to one receiver without integrations, so alerts
/// are listed (Alertmanager's UI and API, `provisioner status`) but sent nowhere.
pub fn alertmanager_yml() -> String {
    "# Written by the provisioner plugin `prometheus`.\n\
     route:\n  receiver: default\n  group_by: [alertname, service]\n  group_wait: 10s\n  group_interval: 1m\n  repeat_interval: 4h\n\
     \n\
     receivers:\n  - name: default\n"
        .to_string()
}

/// The blackbox exporter's modules: `http_2xx`, a GET answered 2xx within 2 s (3xx
/// followed), over IPv4 as the project network has it.
pub fn blackbox_yml() -> String {
    format!(
        "# Written by the provisioner plugin `prometheus`.\n\
         modules:\n  {HEALTH_MODULE}:\n    prober: http\n    timeout: 2s\n    http:\n      preferred_ip_protocol: ip4\n"
    )
}

/// The default alert rules, group `provisioner`. `ALERT_AFTER` and `QUEUE_BACKLOG`
/// are replaced by the config's values.
const RULES: &str = r#"# Written by the provisioner plugin `prometheus`.
groups:
  - name: provisioner
    rules:
      - alert: TargetDown
        expr: up == 0
        for: ALERT_AFTER
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }}: Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }})"
      - alert: ServiceDown
        expr: pg_up == 0 or redis_up == 0 or nginx_up == 0
        for: ALERT_AFTER
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }}: the exporter cannot reach its server"
      - alert: ReplicaUnhealthy
        expr: probe_success{job="instance-health"} == 0
        for: ALERT_AFTER
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }}: instance {{ $labels.instance }} fails its health check"
      - alert: MemoryNearLimit
        expr: |
          (redis_memory_used_bytes / redis_memory_max_bytes > 0.9 and redis_memory_max_bytes > 0)
          or
          rabbitmq_process_resident_memory_bytes / rabbitmq_resident_memory_limit_bytes > 0.9
        for: ALERT_AFTER
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.service }}: memory is at {{ $value | humanizePercentage }} of its limit"
      - alert: DiskNearLimit
        expr: |
          rabbitmq_disk_space_available_bytes < 2 * rabbitmq_disk_space_available_limit_bytes
          or
          garage_local_disk_avail / garage_local_disk_total < 0.1
        for: ALERT_AFTER
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.service }}: little disk space left{{ with $labels.volume }} for {{ . }}{{ end }}"
      - alert: QueueBacklog
        expr: sum by (service) (rabbitmq_queue_messages_ready) > QUEUE_BACKLOG
        for: ALERT_AFTER
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.service }}: {{ $value }} messages wait in queues (more than QUEUE_BACKLOG)"
      - alert: AlertmanagerDown
        expr: prometheus_notifications_alertmanagers_discovered < 1 or up{job="alertmanager"} == 0
        for: ALERT_AFTER
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.service }}: Alertmanager is not reachable, alerts are not delivered"
"#;

/// `rules.yml` for the config's `alert_after` and `queue_backlog`.
pub fn rules_yml(alert_after: &str, queue_backlog: u64) -> String {
    RULES.replace("ALERT_AFTER", alert_after).replace("QUEUE_BACKLOG", &queue_backlog.to_string())
}

/// One file_sd target group.
#[derive(Serialize)]
struct Group {
    targets: Vec<String>,
    labels: BTreeMap<String, String>,
}

/// The file_sd targets file for the environment's scrape targets: one group each,
/// with `job` = the service, labels `service` and `plugin`, and the metrics path (a
/// query in it becomes `__param_` labels, as Prometheus wants it). Then, with a
/// blackbox exporter at `blackbox` (`host:port`), one group per instance to probe: job
/// `instance-health`, labels `service`, `plugin` and `instance` (its short name), the
/// exporter's `/probe` asked for the instance's health URL.
pub fn targets_json(
    targets: &[provisioner_plugin_sdk::monitoring::ScrapeTarget],
    probes: &[provisioner_plugin_sdk::monitoring::ProbeTarget],
    blackbox: Option<&str>,
) -> String {
    let mut groups: Vec<Group> = targets
        .iter()
        .map(|t| {
            let (path, query) = t.path.split_once('?').unwrap_or((&t.path, ""));
            let mut labels = BTreeMap::new();
            labels.insert("job".to_string(), t.service.clone());
            labels.insert("service".to_string(), t.service.clone());
            labels.insert("plugin".to_string(), t.plugin.clone());
            labels.insert("__metrics_path__".to_string(), if path.is_empty() { "/metrics".to_string() } else { path.to_string() });
            for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')).filter(|(k, _)| !k.is_empty()) {
                labels.insert(format!("__param_{key}"), value.to_string());
            }
            Group { targets: vec![t.address.clone()], labels }
        })
        .collect();
    if let Some(blackbox) = blackbox {
        for probe in probes {
            let labels = BTreeMap::from([
                ("job".to_string(), HEALTH_JOB.to_string()),
                ("service".to_string(), probe.service.clone()),
                ("plugin".to_string(), probe.plugin.clone()),
                ("instance".to_string(), probe.instance.clone()),
                ("__metrics_path__".to_string(), "/probe".to_string()),
                ("__param_module".to_string(), HEALTH_MODULE.to_string()),
                ("__param_target".to_string(), format!("http://{}{}", probe.address, probe.path)),
            ]);
            groups.push(Group { targets: vec![blackbox.to_string()], labels });
        }
    }
    let mut json = serde_json::to_string_pretty(&groups).unwrap_or_else(|_| "[]".into());
    json.push('\n');
    json
}

/// A YAML double-quoted string.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A duration as the config writes it (`^[0-9]+(ms|s|m|h|d)$`), in milliseconds; `None`
/// when it is not one.
pub fn duration_ms(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioner_plugin_sdk::monitoring::ScrapeTarget;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("15s"), Some(15_000));
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(duration_ms("7d"), Some(7 * 86_400_000));
        for bad in ["", "s", "15", "1h30m", "-1s", "1.5s", "15 s", "15S", "1w", "1y"] {
            assert_eq!(duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_short_interval_shortens_the_timeout() {
        let yml = prometheus_yml(&Settings { service: "metrics", scrape_interval: "5s", alertmanager: "am:9093" });
        assert!(yml.contains("scrape_timeout: 5s\n"), "{yml}");
        let yml = prometheus_yml(&Settings { service: "metrics", scrape_interval: "1m", alertmanager: "am:9093" });
        assert!(yml.contains("scrape_timeout: 10s\n  evaluation_interval: 1m\n"), "{yml}");
    }

    #[test]
    fn a_query_in_the_path_becomes_params() {
        let t = ScrapeTarget { service: "q".into(), plugin: "rabbitmq".into(), address: "x:15692".into(), path: "/metrics/detailed?family=queue_coarse_metrics".into() };
        let json: serde_json::Value = serde_json::from_str(&targets_json(&[t], &[], None)).unwrap();
        assert_eq!(json[0]["labels"]["__metrics_path__"], "/metrics/detailed");
        assert_eq!(json[0]["labels"]["__param_family"], "queue_coarse_metrics");
    }

    #[test]
    fn each_instance_is_probed_through_the_blackbox_exporter() {
        use provisioner_plugin_sdk::monitoring::ProbeTarget;
        let probe = |instance: &str| ProbeTarget {
            service: "backend".into(),
            plugin: "container".into(),
            instance: instance.into(),
            address: format!("shop-local-backend-{instance}:3000"),
            path: "/health".into(),
        };
        let probes = [probe("app-1"), probe("app-2")];
        let json: serde_json::Value = serde_json::from_str(&targets_json(&[], &probes, Some("shop-local-metrics-blackbox:9115"))).unwrap();
        let groups = json.as_array().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1]["targets"][0], "shop-local-metrics-blackbox:9115");
        assert_eq!(groups[1]["labels"]["job"], HEALTH_JOB);
        assert_eq!(groups[1]["labels"]["instance"], "app-2");
        assert_eq!(groups[1]["labels"]["__metrics_path__"], "/probe");
        assert_eq!(groups[1]["labels"]["__param_target"], "http://shop-local-backend-app-2:3000/health");
        // No exporter (nothing to probe when the file was written): no probe groups.
        assert_eq!(targets_json(&[], &probes, None).trim(), "[]");
        assert!(rules_yml("1m", 10).contains("probe_success{job=\"instance-health\"} == 0"));
    }
}
