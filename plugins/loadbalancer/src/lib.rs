//! A load balancer: nginx publishing one port on the host (3000 by default) and
//! balancing across the instances of a service on the project network. It follows
//! the service's scale by itself: a loop inside the container (balance.sh) watches
//! the network's DNS for the service's name and reloads nginx gracefully when the set
//! of instances changes, so `provisioner scale` and rolling replacements need no
//! reconfiguration and drop no requests. A draining instance refuses connections and
//! nginx retries the next one.
//!
//! Ready when the health path answers 2xx through the published port.

use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;

const DEFAULT_IMAGE: &str = "nginx:1.27";
const HTTP: u16 = 80;
const SERVER: &str = "nginx";
const BALANCE_SH: &str = include_str!("balance.sh");
const DEFAULT_CONF: &str = include_str!("default.conf");

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

fn spec(config: &Config, ctx: &Context) -> ContainerSpec {
    let (host, port) = config.upstream_parts().unwrap_or(("", 0));
    let mut spec = ContainerSpec::new(SERVER, &image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE)));
    spec.entrypoint = Some(vec!["sh".into(), "/etc/nginx/provisioner-balance.sh".into()]);
    spec.command = Some(vec![]);
    spec.env = vec![EnvVar::plain("UPSTREAM_HOST", host), EnvVar::plain("UPSTREAM_PORT", port.to_string())];
    spec.files = vec![
        ContainerFile::new("/etc/nginx/provisioner-balance.sh", BALANCE_SH, 0o755),
        ContainerFile::new("/etc/nginx/conf.d/default.conf", DEFAULT_CONF, 0o644),
    ];
    spec.ports = vec![Port { container_port: HTTP, host_port: (config.port != 0).then_some(config.port) }];
    spec.stop_timeout_ms = Some(5000);
    spec
}

struct LoadBalancer;

impl Plugin for LoadBalancer {
    fn describe() -> PluginInfo {
        PluginInfo::new("loadbalancer", env!("CARGO_PKG_VERSION"), "nginx on one host port, balancing across a service's instances as they scale")
            .image_and_mirrors("nginx:*")
            .publish(HTTP).net_probe()
            .schema(r#"{"type":"object","additionalProperties":false,"required":["upstream"],"properties":{
                "upstream":{"type":"string","description":"NAME:PORT on the project network"},
                "port":{"type":"integer","minimum":0,"maximum":65535,"default":3000},
                "health_path":{"type":"string","default":"/health"},
                "image":{"type":"string"}}}"#)
            .outputs(&["URL"])
            .default("image", DEFAULT_IMAGE)
            .default("port", default_port().to_string())
            .default("health_path", default_health_path())
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        progress(&format!("ensuring nginx in front of {}", config.upstream));
        // One that dies at once (a bad image) is already down here, and unpublished: that is the error.
        let addr = docker::ensure(&spec(&config, &ctx))?.container()?.host_addr(HTTP)?;
        Ok(vec![Output::plain("URL", format!("http://{addr}")).on_network(format!("http://{}:{HTTP}", ctx.service))])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        probe::ready(SERVER, HTTP, |addr| probe::http_ok(addr, &config.health_path, Duration::from_secs(3)))
    }

    fn teardown(_ctx: Context, _keep_volumes: bool) -> Result<(), String> {
        gone_is_fine(docker::remove(SERVER))
    }
}

export_plugin!(LoadBalancer);
