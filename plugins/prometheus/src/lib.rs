//! Prometheus and Alertmanager: the environment's monitoring. Two containers:
//!
//! - `alertmanager` (not published): one receiver, `default`, without integrations, so
//!   alerts are listed but sent nowhere; its state in `/tmp` (silences do not outlive
//!   the container).
//! - `server`: Prometheus, published on a port the engine picks (`PROMETHEUS_URL`), its
//!   TSDB on the `data` volume, evaluating the default alert rules (group
//!   `provisioner`, see `files.rs`) and sending alerts to the Alertmanager by its
//!   engine name.
//!
//! - `blackbox` (not published), only while some service's instances name an HTTP
//!   health endpoint (`monitoring::probe_targets`, the container plugin's replicas):
//!   the blackbox exporter, through which Prometheus probes each instance, so that
//!   `ReplicaUnhealthy` fires for one failing replica among healthy ones.
//!
//! What it scrapes: itself, the Alertmanager, and every endpoint the environment's
//! other services name (`monitoring::scrape_targets`), each as job = the service's
//! name with labels `service` and `plugin`. Those are not in `prometheus.yml` (part of
//! the spec: a change would replace the server) but in a file_sd file written into
//! the running server with `docker::write_file`, so a service added or removed since
//! the last `run` is picked up without a replacement. Prometheus re-reads it by
//! itself (a file-system watch on the folder, and every 30 s); when the server was
//! already running, a SIGHUP after the write makes it immediate. It is written only
//! when it changed or the server is new (a state file remembers the last one).
//!
//! Ready when Prometheus's `/-/ready` answers 200 on the published port and
//! Alertmanager's does on its project-network address. `notices` lists the firing
//! (and pending) alerts from Prometheus's `/api/v1/alerts`.
//!
//! Works with `prom/prometheus` and `prom/alertmanager` and with the offline images
//! `provisioner-offline/prometheus:2` and `provisioner-offline/alertmanager:0.25`
//! (Debian's packages), the defaults. Holds no application data: no backup.

use std::collections::BTreeMap;
use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;

mod files;
mod http;

use files::{duration_ms, Settings, ALERTMANAGER_YML, BLACKBOX_YML, PROMETHEUS_YML, RULES_YML, TARGETS_DIR, TARGETS_JSON};

const DEFAULT_IMAGE: &str = "provisioner-offline/prometheus:2";
const DEFAULT_ALERTMANAGER_IMAGE: &str = "provisioner-offline/alertmanager:0.25";
const DEFAULT_BLACKBOX_IMAGE: &str = "provisioner-offline/blackbox-exporter:0.23";
const PORT: u16 = 9090;
const ALERTMANAGER_PORT: u16 = 9093;
const SERVER: &str = "server";
const ALERTMANAGER: &str = "alertmanager";
const BLACKBOX: &str = "blackbox";
const BLACKBOX_PORT: u16 = 9115;
/// Both images run as `nobody`; the files placed in the containers are theirs.
const NOBODY: &str = "65534:65534";
/// The state file remembering the targets file last written, with the server's id.
const TARGETS_STATE: &str = "targets";
/// How long `ready` and `notices` wait for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// How often every target is scraped and the rules evaluated (a Prometheus
    /// duration: a number and one of ms, s, m, h, d).
    #[serde(default = "default_scrape_interval")]
    scrape_interval: String,
    /// How long a rule's condition must hold before its alert fires (the rules' `for`).
    #[serde(default = "default_alert_after")]
    alert_after: String,
    /// How long metrics are kept (`--storage.tsdb.retention.time`).
    #[serde(default = "default_retention")]
    retention: String,
    /// Ready messages across a RabbitMQ service's queues above which `QueueBacklog` fires.
    #[serde(default = "default_queue_backlog")]
    queue_backlog: u64,
    /// Memory limit of the Prometheus container, in MiB (the environment's default when unset).
    #[schemars(range(min = 64, max = 65536))]
    memory_mb: Option<u32>,
    /// Image to run instead of `provisioner-offline/prometheus:2` (an environment's image override wins).
    image: Option<String>,
    /// Image to run instead of `provisioner-offline/alertmanager:0.25`.
    alertmanager_image: Option<String>,
    /// Image to run instead of `provisioner-offline/blackbox-exporter:0.23` (upstream:
    /// `prom/blackbox-exporter`), which probes the instances' health endpoints.
    blackbox_image: Option<String>,
}

fn default_scrape_interval() -> String {
    "15s".into()
}

fn default_alert_after() -> String {
    "1m".into()
}

fn default_retention() -> String {
    "7d".into()
}

fn default_queue_backlog() -> u64 {
    1000
}

/// The duration keys, and whether zero is allowed.
const DURATIONS: [(&str, bool); 3] = [("alert_after", true), ("retention", false), ("scrape_interval", false)];

impl Config {
    /// The config, or every problem: serde's and the schema's, and every malformed
    /// duration or image, even beside a problem serde found.
    fn parse(json: &str) -> Result<Config, Vec<ConfigProblem>> {
        let parsed = parse_config_checked::<Config>(json);
        let mut problems = match &parsed {
            Ok(_) => Vec::new(),
            Err(problems) => problems.clone(),
        };
        let raw: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        for (key, zero_ok) in DURATIONS {
            let Some(value) = raw.get(key).and_then(|v| v.as_str()) else { continue };
            let message = match duration_ms(value) {
                None => Some(format!("`{value}`: write a number and one of ms, s, m, h, d, e.g. `15s` or `7d`")),
                Some(0) if !zero_ok => Some(format!("`{value}`: must be more than zero")),
                Some(_) => None,
            };
            if let Some(message) = message.filter(|_| !problems.iter().any(|p| p.key == key)) {
                problems.push(ConfigProblem::new(key, message));
            }
        }
        for key in ["image", "alertmanager_image", "blackbox_image"] {
            let Some(value) = raw.get(key).and_then(|v| v.as_str()) else { continue };
            if (value.trim().is_empty() || value.chars().any(char::is_whitespace)) && !problems.iter().any(|p| p.key == key) {
                problems.push(ConfigProblem::new(key, format!("`{value}`: an image reference, e.g. `prom/prometheus:v2.53.0`")));
            }
        }
        problems.sort_by(|a, b| a.key.cmp(&b.key));
        match parsed {
            Ok(config) => no_problems(config, problems),
            Err(_) => Err(problems),
        }
    }
}

fn alertmanager_spec(config: &Config) -> ContainerSpec {
    let mut spec = ContainerSpec::new(ALERTMANAGER, config.alertmanager_image.as_deref().unwrap_or(DEFAULT_ALERTMANAGER_IMAGE));
    spec.command = Some(vec![
        format!("--config.file={ALERTMANAGER_YML}"),
        "--storage.path=/alertmanager".into(),
        format!("--web.listen-address=:{ALERTMANAGER_PORT}"),
        // A single instance: no gossip port, no peers to look for.
        "--cluster.listen-address=".into(),
    ]);
    spec.user = Some(NOBODY.into());
    // The service's name is Prometheus's; the Alertmanager is reached by its engine name.
    spec.answers_for_service = false;
    spec.files = vec![ContainerFile::new(ALERTMANAGER_YML, files::alertmanager_yml(), 0o644)];
    spec.mounts = vec![Mount::volume("alerts", "/alertmanager")];
    spec.resources = Some(Resources { memory_mb: Some(128), cpu_millis: Some(500), pids: Some(256) });
    spec.stop_timeout_ms = Some(5000);
    spec
}

/// The blackbox exporter that probes the instances' health endpoints for Prometheus.
fn blackbox_spec(config: &Config) -> ContainerSpec {
    let mut spec = ContainerSpec::new(BLACKBOX, config.blackbox_image.as_deref().unwrap_or(DEFAULT_BLACKBOX_IMAGE));
    spec.command = Some(vec![format!("--config.file={BLACKBOX_YML}"), format!("--web.listen-address=:{BLACKBOX_PORT}")]);
    spec.user = Some(NOBODY.into());
    spec.answers_for_service = false;
    spec.files = vec![ContainerFile::new(BLACKBOX_YML, files::blackbox_yml(), 0o644)];
    spec.resources = Some(Resources { memory_mb: Some(64), cpu_millis: Some(250), pids: Some(128) });
    spec.stop_timeout_ms = Some(2000);
    spec
}

/// The blackbox exporter's `host:port` when there are instances to probe (it is
/// started for them), else `None` (and it is removed if it ran for earlier ones).
fn blackbox(config: &Config, probes: &[monitoring::ProbeTarget]) -> Result<Option<String>, String> {
    if probes.is_empty() {
        match docker::remove(BLACKBOX) {
            Ok(()) | Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(format!("removing the blackbox exporter: {e}")),
        }
    }
    progress("ensuring the blackbox exporter");
    let deployment = docker::ensure(&blackbox_spec(config))?;
    let exporter = deployment.container()?;
    exporter.alive()?;
    Ok(Some(format!("{}:{BLACKBOX_PORT}", exporter.engine_name)))
}

/// The Prometheus server, sending alerts to the Alertmanager at `alertmanager` (`host:port`).
fn server_spec(config: &Config, ctx: &Context, alertmanager: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE)));
    spec.command = Some(vec![
        format!("--config.file={PROMETHEUS_YML}"),
        "--storage.tsdb.path=/prometheus".into(),
        format!("--storage.tsdb.retention.time={}", config.retention),
        format!("--web.listen-address=:{PORT}"),
    ]);
    spec.user = Some(NOBODY.into());
    let settings = Settings { service: &ctx.service, scrape_interval: &config.scrape_interval, alertmanager };
    spec.files = vec![
        ContainerFile::new(PROMETHEUS_YML, files::prometheus_yml(&settings), 0o644),
        ContainerFile::new(RULES_YML, files::rules_yml(&config.alert_after, config.queue_backlog), 0o644),
        // The file_sd folder exists from the start; the targets file comes after.
        ContainerFile::new(&format!("{TARGETS_DIR}/README"), "targets.json: written by provisioner on every run\n", 0o644),
    ];
    spec.ports = vec![Port::any(PORT)];
    spec.mounts = vec![Mount::volume("data", "/prometheus")];
    spec.resources = Some(Resources { memory_mb: config.memory_mb, cpu_millis: None, pids: Some(512) });
    // Prometheus closes its TSDB head on SIGTERM; give it the time.
    spec.stop_timeout_ms = Some(30_000);
    spec
}

/// A short digest of `text`, for the state file (FNV-1a).
fn digest(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    format!("{hash:016x}")
}

/// Write the targets file into the server unless it holds this one already; make a
/// server that was running re-read it at once.
fn update_targets(deployment: &Deployment, targets: &str) -> Result<(), String> {
    let server = deployment.container()?;
    let key = format!("{} {}", server.id, digest(targets));
    state::once(TARGETS_STATE, &key, deployment, || {
        progress("writing the scrape targets");
        docker::write_file(SERVER, TARGETS_JSON, targets.as_bytes(), 0o644)?;
        // A server started just now reads the file by itself (file_sd watches the
        // folder); a SIGHUP before Prometheus handles it would stop it.
        if deployment.outcome == EnsureOutcome::Unchanged {
            if let Err(e) = docker::signal(SERVER, "SIGHUP") {
                warn(&format!("asking Prometheus to reload (it re-reads the targets within 30 s anyway): {e}"));
            }
        }
        Ok(())
    })
}

/// `Ok` when `GET /-/ready` at `addr` answers 200.
fn answers_ready(what: &str, addr: &str) -> Result<(), String> {
    match http::get(addr, "/-/ready", PROBE_TIMEOUT) {
        Ok(answer) if answer.status == 200 => Ok(()),
        Ok(answer) => Err(format!("{what} is not ready yet ({}: {})", answer.status, answer.text().trim())),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// The Alertmanager's `host:port` on the project network, if it is running.
fn alertmanager_addr(info: &ContainerInfo) -> Option<String> {
    #[cfg(test)]
    if let Some(addr) = tests::ALERTMANAGER_ADDR.with(|a| a.borrow().clone()) {
        return Some(addr);
    }
    info.address.as_ref().filter(|a| !a.is_empty()).map(|ip| format!("{ip}:{ALERTMANAGER_PORT}"))
}

/// The targets Prometheus scrapes besides the services': itself and the Alertmanager.
const OWN_TARGETS: usize = 2;

/// Ready once Prometheus's scrapers have all `expected` targets (`/api/v1/targets`):
/// then each is scraped within one interval.
fn targets_discovered(expected: usize) -> Result<Readiness, String> {
    let addr = docker::inspect(SERVER)?.host_addr(PORT)?;
    let answer = match http::get(&addr, "/api/v1/targets?state=active", PROBE_TIMEOUT) {
        Ok(answer) if answer.status == 200 => answer,
        Ok(answer) => return Ok(Readiness::NotYet(format!("Prometheus answered {} to /api/v1/targets", answer.status))),
        Err(e) => return Ok(Readiness::NotYet(format!("Prometheus: {e}"))),
    };
    let targets: serde_json::Value =
        serde_json::from_str(&answer.text()).map_err(|e| format!("Prometheus's targets are not the JSON expected: {e}"))?;
    let active = targets["data"]["activeTargets"].as_array().map_or(0, Vec::len);
    Ok(if active >= expected {
        Readiness::Ready
    } else {
        Readiness::NotYet(format!("Prometheus has {active} of its {expected} targets so far"))
    })
}

/// The Alertmanager's readiness.
fn alertmanager_ready() -> Result<Readiness, String> {
    let info = match docker::inspect(ALERTMANAGER) {
        Ok(info) => info,
        Err(e) => return Ok(Readiness::NotYet(e.to_string())),
    };
    info.alive()?;
    let Some(addr) = alertmanager_addr(&info) else {
        return Ok(Readiness::NotYet("alertmanager has no address on the project network yet".into()));
    };
    Ok(answers_ready("Alertmanager", &addr).map_or_else(Readiness::NotYet, |()| Readiness::Ready))
}

/// Prometheus's `/api/v1/alerts` answer.
#[derive(Deserialize)]
struct AlertsAnswer {
    status: String,
    #[serde(default)]
    data: Option<AlertsData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct AlertsData {
    #[serde(default)]
    alerts: Vec<Alert>,
}

#[derive(Deserialize)]
struct Alert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    state: String,
    #[serde(rename = "activeAt", default)]
    active_at: Option<String>,
}

/// One line per firing alert, then one per pending alert, from the body of
/// `/api/v1/alerts`: `firing: ServiceDown (cache) since 2026-11-29T12:00:01Z — summary`.
fn alert_lines(body: &str) -> Result<Vec<String>, String> {
    let answer: AlertsAnswer = serde_json::from_str(body).map_err(|e| format!("Prometheus's alerts are not the JSON expected: {e}"))?;
    if answer.status != "success" {
        return Err(format!("Prometheus answered {}: {}", answer.status, answer.error.unwrap_or_default()));
    }
    let alerts = answer.data.map(|d| d.alerts).unwrap_or_default();
    let mut lines = Vec::new();
    for state in ["firing", "pending"] {
        let mut these: Vec<String> = alerts.iter().filter(|a| a.state == state).map(|a| alert_line(state, a)).collect();
        these.sort();
        lines.extend(these);
    }
    Ok(lines)
}

fn alert_line(state: &str, alert: &Alert) -> String {
    let mut line = format!("{state}: {}", alert.labels.get("alertname").map(String::as_str).unwrap_or("(unnamed alert)"));
    if let Some(service) = alert.labels.get("service").filter(|s| !s.is_empty()) {
        line.push_str(&format!(" ({service})"));
    }
    if let Some(since) = alert.active_at.as_deref().filter(|s| !s.is_empty() && !s.starts_with("0001-")) {
        line.push_str(&format!(" since {}", whole_seconds(since)));
    }
    if let Some(summary) = alert.annotations.get("summary").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        line.push_str(&format!(" — {summary}"));
    }
    line
}

/// An RFC 3339 time without its fraction of a second: `…12:00:01.123456Z` → `…12:00:01Z`.
fn whole_seconds(time: &str) -> String {
    match time.split_once('.') {
        Some((whole, rest)) => {
            let zone = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{whole}{zone}")
        }
        None => time.to_string(),
    }
}

struct Prometheus;

impl Plugin for Prometheus {
    fn describe() -> PluginInfo {
        PluginInfo::new("prometheus", env!("CARGO_PKG_VERSION"), "Prometheus and Alertmanager scraping the environment's services, with default alerts")
            .image("prometheus:*")
            .image_and_mirrors("prom/prometheus:*")
            .image("alertmanager:*")
            .image_and_mirrors("prom/alertmanager:*")
            .image("blackbox-exporter:*")
            .image_and_mirrors("prom/blackbox-exporter:*")
            // `exec`: the targets file goes in with `write-file`, the reload with `signal`.
            .publish(PORT).volume("data").volume("alerts").exec().net_probe().state_files().scrape_targets()
            .config::<Config>()
            .outputs(&["PROMETHEUS_URL"])
            .default("image", DEFAULT_IMAGE)
            .default("alertmanager_image", DEFAULT_ALERTMANAGER_IMAGE)
            .default("blackbox_image", DEFAULT_BLACKBOX_IMAGE)
            .default("scrape_interval", default_scrape_interval())
            .default("alert_after", default_alert_after())
            .default("retention", default_retention())
            .default("queue_backlog", default_queue_backlog().to_string())
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let targets = monitoring::scrape_targets().map_err(|e| format!("reading the scrape targets: {e}"))?;
        let probes = monitoring::probe_targets().map_err(|e| format!("reading the instances to probe: {e}"))?;
        let blackbox_at = blackbox(&config, &probes)?;
        progress("ensuring the alertmanager container");
        let alertmanager = docker::ensure(&alertmanager_spec(&config))?;
        let alertmanager = alertmanager.container()?;
        alertmanager.alive()?;
        let alertmanager_at = format!("{}:{ALERTMANAGER_PORT}", alertmanager.engine_name);
        progress("ensuring the Prometheus server");
        let deployment = docker::ensure(&server_spec(&config, &ctx, &alertmanager_at))?;
        let server = deployment.container()?;
        let addr = server.host_addr(PORT)?;
        update_targets(&deployment, &files::targets_json(&targets, &probes, blackbox_at.as_deref()))?;
        info(&format!("scraping {} endpoint(s) of other services, probing {} instance(s)", targets.len(), probes.len()));
        // On the network, by the server's engine name: the service's name is an alias
        // of the Alertmanager too.
        let in_network = format!("http://{}:{PORT}", server.engine_name);
        Ok(vec![Output::plain("PROMETHEUS_URL", format!("http://{addr}")).on_network(in_network)])
    }

    fn ready(_ctx: Context) -> Result<Readiness, String> {
        match probe::ready(SERVER, PORT, |addr| answers_ready("Prometheus", addr))? {
            Readiness::Ready => match alertmanager_ready()? {
                // Prometheus hands discovered targets to its scrapers every 5 s: until
                // then it would scrape nothing, so it is not ready for the user.
                // The instances' probes are not waited for: they follow the instances,
                // which may start after this.
                Readiness::Ready => targets_discovered(monitoring::scrape_targets()?.len() + OWN_TARGETS),
                not_yet => Ok(not_yet),
            },
            not_yet => Ok(not_yet),
        }
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        teardown(&[SERVER, ALERTMANAGER, BLACKBOX], &["data", "alerts"], keep_volumes)?;
        state::remove(TARGETS_STATE);
        Ok(())
    }

    fn notices(_ctx: Context) -> Result<Vec<String>, String> {
        let addr = match docker::inspect(SERVER) {
            Ok(server) => server.host_addr(PORT),
            Err(e) => Err(e.to_string()),
        };
        let answer = addr.and_then(|addr| http::get(&addr, "/api/v1/alerts", PROBE_TIMEOUT));
        Ok(match answer {
            Ok(answer) if answer.status == 200 => alert_lines(&answer.text()).unwrap_or_else(|e| vec![e]),
            Ok(answer) => vec![format!("Prometheus answered {} to /api/v1/alerts: alerts unknown", answer.status)],
            Err(e) => vec![format!("Prometheus is unreachable, alerts unknown: {e}")],
        })
    }
}

export_plugin!(Prometheus);

#[cfg(test)]
mod tests;
