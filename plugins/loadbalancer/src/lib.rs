//! A load balancer: nginx publishing one port on the host (3000 by default) and
//! balancing across the instances of a service on the project network. It follows
//! the service's scale by itself: a loop inside the container (balance.sh) watches
//! the network's DNS for the service's name and reloads nginx gracefully when the set
//! of instances changes, so `provisioner scale` and rolling replacements need no
//! reconfiguration and drop no requests. A draining instance refuses connections and
//! nginx retries the next one.
//!
//! Ready when the health path answers 2xx through the published port.
//!
//! While the environment is monitored, nginx also serves its `stub_status` on a port of
//! the project network only, and an exporter beside it (`exporter`, nginx's own
//! Prometheus exporter) turns that into metrics for the collector.

use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;

const DEFAULT_IMAGE: &str = "nginx:1.27";
const HTTP: u16 = 80;
const SERVER: &str = "nginx";
const BALANCE_SH: &str = include_str!("balance.sh");
const DEFAULT_CONF: &str = include_str!("default.conf");
/// nginx's counters, on the project network only (never published).
const STATUS_PORT: u16 = 8080;
const STATUS_CONF: &str = include_str!("status.conf");
const EXPORTER: &str = "exporter";
const EXPORTER_PORT: u16 = 9113;
const UPSTREAM_EXPORTER_IMAGE: &str = "nginx/nginx-prometheus-exporter:0.11.0";
const OFFLINE_EXPORTER_IMAGE: &str = "nginx-exporter:0.11";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `NAME:PORT` on the project network, e.g. `backend:8000`.
    upstream: String,
    /// Host port (on the environment's bind address); 0 lets the engine pick one.
    #[serde(default = "default_port")]
    port: u16,
    /// Path that must answer 2xx through the balancer for it to count as ready.
    #[serde(default = "default_health_path")]
    health_path: String,
    image: Option<String>,
    /// The metrics exporter's image, while monitored.
    exporter_image: Option<String>,
}

fn default_port() -> u16 {
    3000
}

fn default_health_path() -> String {
    "/health".into()
}

impl Config {
    fn parse(json: &str) -> Result<Config, Vec<ConfigProblem>> {
        let config: Config = parse_config(json)?;
        if config.upstream_parts().is_none() {
            let message = format!("`{}`: write NAME:PORT, the service's name and the port it listens on, e.g. backend:8000", config.upstream);
            return Err(vec![ConfigProblem::new("upstream", message)]);
        }
        if !config.health_path.starts_with('/') || config.health_path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(vec![ConfigProblem::new("health_path", format!("`{}`: a path starting with /", config.health_path))]);
        }
        Ok(config)
    }

    fn upstream_parts(&self) -> Option<(&str, u16)> {
        let (host, port) = self.upstream.rsplit_once(':')?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        host_ok.then_some((host, port))
    }
}

fn server_image(config: &Config, ctx: &Context) -> String {
    image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE))
}

fn spec(config: &Config, ctx: &Context) -> ContainerSpec {
    let (host, port) = config.upstream_parts().unwrap_or(("", 0));
    let mut spec = ContainerSpec::new(SERVER, &server_image(config, ctx));
    spec.entrypoint = Some(vec!["sh".into(), "/etc/nginx/provisioner-balance.sh".into()]);
    spec.command = Some(vec![]);
    spec.env = vec![EnvVar::plain("UPSTREAM_HOST", host), EnvVar::plain("UPSTREAM_PORT", port.to_string())];
    spec.files = vec![
        ContainerFile::new("/etc/nginx/provisioner-balance.sh", BALANCE_SH, 0o755),
        ContainerFile::new("/etc/nginx/conf.d/default.conf", DEFAULT_CONF, 0o644),
    ];
    if ctx.monitored {
        spec.files.push(ContainerFile::new("/etc/nginx/conf.d/status.conf", STATUS_CONF, 0o644));
    }
    spec.ports = vec![Port { container_port: HTTP, host_port: (config.port != 0).then_some(config.port) }];
    spec.stop_timeout_ms = Some(5000);
    spec
}

/// nginx's exporter, reading `stub_status` from the server on the project network.
fn exporter_spec(image: &str, server_engine_name: &str) -> ContainerSpec {
    let mut spec = exporter::exporter_spec(EXPORTER, image);
    // `--flag=value` reads the same in 0.11 (Go's flag package) and 1.x (kingpin).
    spec.command = Some(vec![format!("--nginx.scrape-uri=http://{server_engine_name}:{STATUS_PORT}/stub_status")]);
    spec.env = vec![EnvVar::plain("GOMAXPROCS", "1")];
    spec
}

struct LoadBalancer;

impl Plugin for LoadBalancer {
    fn describe() -> PluginInfo {
        PluginInfo::new("loadbalancer", env!("CARGO_PKG_VERSION"), "nginx on one host port, balancing across a service's instances as they scale")
            .image_and_mirrors("nginx:*")
            // The metrics sidecar: upstream's, any registry's, and the offline set's.
            .image_and_mirrors("nginx/nginx-prometheus-exporter:*")
            .image("*/nginx-exporter:*")
            .publish(HTTP).net_probe()
            .schema(r#"{"type":"object","additionalProperties":false,"required":["upstream"],"properties":{
                "upstream":{"type":"string","description":"NAME:PORT on the project network"},
                "port":{"type":"integer","minimum":0,"maximum":65535,"default":3000},
                "health_path":{"type":"string","default":"/health"},
                "image":{"type":"string"},
                "exporter_image":{"type":"string"}}}"#)
            .outputs(&["URL"])
            .default("image", DEFAULT_IMAGE)
            .default("port", default_port().to_string())
            .default("health_path", default_health_path())
            .default("exporter_image", UPSTREAM_EXPORTER_IMAGE)
    }

    fn metrics() -> Vec<MetricsEndpoint> {
        vec![MetricsEndpoint::new(EXPORTER, EXPORTER_PORT, "/metrics")]
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        progress(&format!("ensuring nginx in front of {}", config.upstream));
        if !ctx.monitored {
            // Nothing to do when it was never started.
            gone_is_fine(docker::remove(EXPORTER))?;
        }
        // One that dies at once (a bad image) is already down here, and unpublished: that is the error.
        let deployment = docker::ensure(&spec(&config, &ctx))?;
        let server = deployment.container()?;
        let addr = server.host_addr(HTTP)?;
        if ctx.monitored {
            progress("ensuring the metrics exporter");
            let image = exporter::companion_image(config.exporter_image.as_deref(), &server_image(&config, &ctx), OFFLINE_EXPORTER_IMAGE, UPSTREAM_EXPORTER_IMAGE);
            docker::ensure(&exporter_spec(&image, &server.engine_name))?;
        }
        Ok(vec![Output::plain("URL", format!("http://{addr}")).on_network(format!("http://{}:{HTTP}", ctx.service))])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        probe::ready(SERVER, HTTP, |addr| probe::http_ok(addr, &config.health_path, Duration::from_secs(3)))
    }

    fn teardown(_ctx: Context, _keep_volumes: bool) -> Result<(), String> {
        gone_is_fine(docker::remove(EXPORTER))?;
        gone_is_fine(docker::remove(SERVER))
    }
}

export_plugin!(LoadBalancer);

#[cfg(test)]
mod tests {
    use super::*;
    use provisioner_plugin_sdk::testing::{ctx, MockHost};
    use serde_json::json;

    fn web(monitored: bool) -> Context {
        let mut ctx = ctx("web", json!({ "upstream": "backend:8000" }));
        ctx.monitored = monitored;
        ctx.image_override = Some("provisioner-offline/nginx:1.22".into());
        ctx
    }

    #[test]
    fn monitored_nginx_serves_its_status_inside_and_the_exporter_reads_it() {
        let mock = MockHost::for_plugin::<LoadBalancer>();
        LoadBalancer::provision(web(true)).unwrap();
        let engine = mock.container(SERVER).unwrap().engine_name;
        let server = mock.spec(SERVER);
        let status = server.files.iter().find(|f| f.path == "/etc/nginx/conf.d/status.conf").expect("status.conf");
        assert!(String::from_utf8_lossy(&status.contents).contains(&format!("listen {STATUS_PORT};")));
        assert_eq!(server.ports.iter().map(|p| p.container_port).collect::<Vec<_>>(), [HTTP], "the status port is not published");

        let exporter = mock.spec(EXPORTER);
        assert_eq!(exporter.image, "provisioner-offline/nginx-exporter:0.11");
        assert_eq!(exporter.command, Some(vec![format!("--nginx.scrape-uri=http://{engine}:{STATUS_PORT}/stub_status")]));
        assert!(!exporter.answers_for_service && exporter.ports.is_empty());
        assert_eq!(exporter.user.as_deref(), Some("65534:65534"));

        // Monitoring removed: the exporter goes, nginx loses its status server.
        LoadBalancer::provision(web(false)).unwrap();
        assert_eq!(mock.removed(), [EXPORTER]);
        assert!(mock.spec(SERVER).files.iter().all(|f| f.path != "/etc/nginx/conf.d/status.conf"));
    }

    #[test]
    fn describe_declares_the_endpoint_and_the_exporter_images() {
        let (metrics, images) = provisioner_plugin_sdk::testing::declared_metrics_and_images::<LoadBalancer>();
        let metrics: Vec<(&str, u16, &str)> = metrics.iter().map(|(c, port, path)| (c.as_str(), *port, path.as_str())).collect();
        assert_eq!(metrics, [("exporter", 9113, "/metrics")]);
        for wanted in ["nginx/nginx-prometheus-exporter:*", "*/nginx-exporter:*"] {
            assert!(images.contains(&wanted.to_string()), "{images:?}");
        }
    }
}
