//! The application's own containers: an image, its command and environment (literal,
//! or other services' outputs by `${service.OUTPUT}` reference), the port it listens
//! on, and an HTTP health path. They run as a replicated workload (`replicas`, or
//! `provisioner scale`): never published on the host — a `loadbalancer` service
//! fronts them by the service's network name — and a changed config replaces them
//! one at a time, each new instance healthy before an old one stops.
//!
//! Ready when every instance answers 2xx on the health path, asked directly over the
//! project network (net-probe reaches the service's own containers), so readiness is
//! seen within a poll rather than an engine health interval. The engine's own health
//! check (the same GET, inside the container) is what a rolling replacement waits for.

use std::collections::BTreeMap;
use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;

/// The workload's short name; instances are `app-1` … `app-N`.
const WORKLOAD: &str = "app";

#[derive(Deserialize)]
#[serde(untagged)]
enum Command {
    /// Run through `sh -c`.
    Shell(String),
    /// Run as is.
    Argv(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    image: Option<String>,
    command: Option<Command>,
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// The port the application listens on inside the container.
    port: u16,
    /// HTTP path that answers 2xx when the instance works; `""` turns the check off
    /// (then an instance counts as up once it runs).
    #[serde(default = "default_health_path")]
    health_path: String,
    /// Overrides the health check's command (run inside the container).
    health_command: Option<Vec<String>>,
    #[serde(default = "default_health_interval_ms")]
    health_interval_ms: u32,
    user: Option<String>,
    memory_mb: Option<u32>,
    cpu_millis: Option<u32>,
    /// How long an instance may take to drain when it is stopped.
    #[serde(default = "default_stop_timeout_secs")]
    stop_timeout_secs: u32,
}

fn default_health_path() -> String {
    "/health".into()
}

fn default_health_interval_ms() -> u32 {
    1000
}

fn default_stop_timeout_secs() -> u32 {
    10
}

fn problem(key: &str, message: impl Into<String>) -> Vec<ConfigProblem> {
    vec![ConfigProblem::new(key, message)]
}

impl Config {
    fn parse(json: &str) -> Result<Config, Vec<ConfigProblem>> {
        let config: Config = parse_config(json)?;
        if config.port == 0 {
            return Err(problem("port", "the port the application listens on, 1 to 65535"));
        }
        if !config.health_path.is_empty() && !config.health_path.starts_with('/') {
            return Err(problem("health_path", format!("`{}`: a path starting with /, or \"\" for none", config.health_path)));
        }
        if config.health_path.chars().any(|c| c.is_whitespace() || c == '\'' || c == '"' || c == '\\') {
            return Err(problem("health_path", "no spaces, quotes or backslashes"));
        }
        if config.health_interval_ms < 100 {
            return Err(problem("health_interval_ms", "at least 100"));
        }
        if let Some(name) = config.env.keys().find(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
            return Err(problem(&format!("env.{name}"), "variable names are letters, digits and _"));
        }
        Ok(config)
    }

    fn image(&self, ctx: &Context) -> Result<String, String> {
        let image = ctx.image_override.clone().or_else(|| self.image.clone());
        image.ok_or_else(|| "config.image: which image runs the application? (e.g. image = \"myapp:dev\")".into())
    }
}

/// An HTTP GET of the health path from inside the container, with whichever client
/// the image has: curl, wget, or Python's standard library.
fn health_probe(port: u16, path: &str) -> Vec<String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let script = format!(
        "if command -v curl >/dev/null 2>&1; then exec curl -fsS -o /dev/null --max-time 2 '{url}'; fi; \
         if command -v wget >/dev/null 2>&1; then exec wget -q -O /dev/null -T 2 '{url}'; fi; \
         exec python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' '{url}'"
    );
    vec!["sh".into(), "-c".into(), script]
}

fn spec(config: &Config, ctx: &Context) -> Result<ContainerSpec, String> {
    let mut spec = ContainerSpec::new(WORKLOAD, &config.image(ctx)?);
    spec.command = config.command.as_ref().map(|c| match c {
        Command::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
        Command::Argv(argv) => argv.clone(),
    });
    spec.entrypoint = config.entrypoint.clone();
    // Values usually carry credentials from references (`${db.DATABASE_URL}`): all
    // are kept out of plans and logs.
    spec.env = config.env.iter().map(|(k, v)| EnvVar::secret(k, v.clone())).collect();
    spec.env.push(EnvVar::plain("PORT", config.port.to_string()));
    let command = match (&config.health_command, config.health_path.as_str()) {
        (Some(command), _) => Some(command.clone()),
        (None, "") => None,
        (None, path) => Some(health_probe(config.port, path)),
    };
    spec.health = command.map(|command| HealthCheck {
        command,
        interval_ms: config.health_interval_ms,
        timeout_ms: 3000,
        retries: 3,
        start_period_ms: 0,
    });
    // A collector probes each instance on the same path (a replica unhealthy among
    // healthy ones raises an alert); only while monitored, so that adding or removing
    // monitoring is the only thing that replaces the instances for it.
    if ctx.monitored && config.health_command.is_none() && !config.health_path.is_empty() {
        spec = spec.http_health(config.port, &config.health_path);
    }
    spec.user = config.user.clone();
    if config.memory_mb.is_some() || config.cpu_millis.is_some() {
        spec.resources = Some(Resources { memory_mb: config.memory_mb, cpu_millis: config.cpu_millis, pids: None });
    }
    spec.replicas = Some(ctx.replicas.max(1));
    spec.stop_timeout_ms = Some(config.stop_timeout_secs.saturating_mul(1000));
    Ok(spec)
}

/// The workload's instances, `app-1` … (not one being retired mid-replacement).
fn instances() -> Result<Vec<ContainerInfo>, String> {
    let mut list: Vec<ContainerInfo> = docker::list_containers()?
        .into_iter()
        .filter(|c| c.name.strip_prefix("app-").is_some_and(|n| n.parse::<u32>().is_ok()))
        .collect();
    list.sort_by_key(|c| c.name.strip_prefix("app-").and_then(|n| n.parse::<u32>().ok()));
    Ok(list)
}

struct Container;

impl Plugin for Container {
    fn describe() -> PluginInfo {
        PluginInfo::new("container", env!("CARGO_PKG_VERSION"), "The application's own containers: replicated, health-checked, replaced without a gap")
            .image("*")
            .net_probe()
            .schema(r#"{"type":"object","additionalProperties":false,"required":["port"],"properties":{
                "image":{"type":"string"},
                "command":{"oneOf":[{"type":"string"},{"type":"array","items":{"type":"string"}}]},
                "entrypoint":{"type":"array","items":{"type":"string"}},
                "env":{"type":"object","additionalProperties":{"type":"string"}},
                "port":{"type":"integer","minimum":1,"maximum":65535},
                "health_path":{"type":"string","default":"/health"},
                "health_command":{"type":"array","items":{"type":"string"}},
                "health_interval_ms":{"type":"integer","minimum":100,"default":1000},
                "user":{"type":"string"},
                "memory_mb":{"type":"integer"},
                "cpu_millis":{"type":"integer"},
                "stop_timeout_secs":{"type":"integer","default":10}}}"#)
            .default("health_path", default_health_path())
            .default("replicas", "1")
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        progress(&format!("ensuring {} instance(s)", ctx.replicas.max(1)));
        docker::ensure(&spec(&config, &ctx)?)?;
        Ok(vec![])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let wanted = ctx.replicas.max(1) as usize;
        let list = instances()?;
        list.iter().try_for_each(ContainerInfo::alive)?;
        let mut up = 0;
        let mut last_reason = String::new();
        for instance in list.iter().filter(|c| c.state == ContainerState::Running) {
            let path = config.health_path.as_str();
            let answered = match &instance.address {
                // No HTTP check: the engine's health (a custom command), or running.
                _ if path.is_empty() || config.health_command.is_some() => {
                    matches!(instance.health, None | Some(HealthState::Healthy))
                }
                None => false,
                Some(ip) => match probe::http_ok(&format!("{ip}:{}", config.port), path, Duration::from_secs(2)) {
                    Ok(()) => true,
                    Err(reason) => {
                        last_reason = format!("{}: {reason}", instance.name);
                        false
                    }
                },
            };
            up += usize::from(answered);
        }
        Ok(if up >= wanted && list.len() == wanted {
            Readiness::Ready
        } else if last_reason.is_empty() {
            Readiness::NotYet(format!("{up} of {wanted} instance(s) healthy"))
        } else {
            Readiness::NotYet(format!("{up} of {wanted} instance(s) healthy; {last_reason}"))
        })
    }

    fn teardown(_ctx: Context, _keep_volumes: bool) -> Result<(), String> {
        gone_is_fine(docker::remove(WORKLOAD))
    }
}

export_plugin!(Container);

#[cfg(test)]
mod tests {
    use provisioner_plugin_sdk::testing::{ctx, MockHost};
    use serde_json::json;

    use super::*;

    fn provisioned(config: serde_json::Value, monitored: bool) -> ContainerSpec {
        let mock = MockHost::for_plugin::<Container>();
        let mut context = ctx("backend", config);
        context.monitored = monitored;
        context.replicas = 2;
        Container::provision(context).unwrap();
        mock.spec(WORKLOAD)
    }

    #[test]
    fn monitored_instances_name_their_health_endpoint_for_probes() {
        let config = json!({"image": "shop/backend:1", "port": 3000});
        let spec = provisioned(config.clone(), true);
        assert_eq!(spec.replicas, Some(2));
        let endpoint = spec.http_health.expect("an http-health endpoint while monitored");
        assert_eq!((endpoint.port, endpoint.path.as_str()), (3000, "/health"));
        // Not monitored: the spec is as it always was (nothing replaced for it).
        assert!(provisioned(config, false).http_health.is_none());
        // No HTTP health check to probe: none.
        assert!(provisioned(json!({"image": "shop/backend:1", "port": 3000, "health_path": ""}), true).http_health.is_none());
        let custom = json!({"image": "shop/backend:1", "port": 3000, "health_command": ["true"]});
        assert!(provisioned(custom, true).http_health.is_none());
    }
}
