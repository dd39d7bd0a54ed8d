//! Memcached, as a third party would write it: only the published WIT, through the
//! SDK. One `server` container from `memcached:1.6` (or a drop-in such as
//! `provisioner-offline/memcached:1.6`), in memory only, so no volume and no secret;
//! ready when the server answers the text protocol's `version` and a `get` on the
//! published port.
//!
//! Memcached's text protocol has no authentication: the port is published on the
//! environment's bind address (127.0.0.1 by default) and the in-network address is
//! only reachable from the project's own containers.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;

const DEFAULT_IMAGE: &str = "memcached:1.6";
const PORT: u16 = 11211;
const SERVER: &str = "server";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Item memory, in MiB (memcached's `-m`).
    #[serde(default = "default_memory")]
    memory_mb: u32,
    /// Simultaneous connections (memcached's `-c`).
    #[serde(default = "default_connections")]
    max_connections: u32,
    /// Image to run instead of `memcached:1.6` (an environment's image override wins).
    image: Option<String>,
}

fn default_memory() -> u32 {
    64
}

fn default_connections() -> u32 {
    1024
}

impl Config {
    fn parse(json: &str) -> Result<Config, Vec<ConfigProblem>> {
        let config: Config = parse_config(json)?;
        let mut problems = Vec::new();
        if !(16..=4096).contains(&config.memory_mb) {
            problems.push(ConfigProblem { key: "memory_mb".into(), message: format!("{}: use 16 to 4096 (MiB)", config.memory_mb) });
        }
        if !(16..=65536).contains(&config.max_connections) {
            problems.push(ConfigProblem { key: "max_connections".into(), message: format!("{}: use 16 to 65536", config.max_connections) });
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }
}

fn config(ctx: &Context) -> Result<Config, String> {
    Config::parse(&ctx.config).map_err(|p| p.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("; "))
}

fn spec(config: &Config, ctx: &Context) -> ContainerSpec {
    let image = ctx.image_override.clone().or_else(|| config.image.clone()).unwrap_or_else(|| DEFAULT_IMAGE.into());
    let mut spec = ContainerSpec::new(SERVER, &image);
    // The image's entrypoint runs memcached as the unprivileged `memcache` user.
    spec.command = Some(vec![
        "memcached".into(),
        "-m".into(),
        config.memory_mb.to_string(),
        "-c".into(),
        config.max_connections.to_string(),
        "-p".into(),
        PORT.to_string(),
        "-U".into(),
        "0".into(), // no UDP: it is only ever an amplification risk
    ]);
    spec.ports = vec![Port { container_port: PORT, host_port: None }];
    // Item memory plus memcached's own overhead, so the container limit never kills it.
    spec.resources = Some(Resources { memory_mb: Some(config.memory_mb + 64), cpu_millis: None, pids: None });
    spec.stop_timeout_ms = Some(2000);
    spec
}

/// One line of the server's answer, without the `\r\n`.
fn line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut text = String::new();
    match reader.read_line(&mut text) {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(_) => Ok(text.trim_end().to_string()),
        Err(e) => Err(format!("receive: {e}")),
    }
}

/// `version`, then a `get` (a read: `ready` must not change anything), over the
/// text protocol at `addr`. Returns the server's version.
fn probe_server(addr: &str) -> Result<String, String> {
    let mut stream = probe::connect(addr, Duration::from_secs(2)).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.write_all(b"version\r\nget provisioner-ready-probe\r\n").map_err(|e| format!("send: {e}"))?;
    let mut reader = BufReader::new(stream);
    let version = line(&mut reader)?;
    let Some(version) = version.strip_prefix("VERSION ") else {
        return Err(format!("`version` answered `{version}`"));
    };
    // A `get` answers `VALUE …` lines and their data, then `END`.
    loop {
        let answer = line(&mut reader)?;
        if answer == "END" {
            return Ok(version.to_string());
        }
        if !answer.starts_with("VALUE ") && answer.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(format!("`get` answered `{answer}`"));
        }
    }
}

struct Memcached;

impl Plugin for Memcached {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "memcached".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            summary: "Memcached 1.6, in memory; ready when it answers the text protocol".into(),
            capabilities: vec![
                Capability::Image("memcached:1*".into()),
                Capability::Image("*/memcached:1*".into()),
                Capability::Publish(PORT),
                Capability::NetProbe,
            ],
            config_schema: r#"{"type":"object","additionalProperties":false,"properties":{"memory_mb":{"type":"integer","minimum":16,"maximum":4096,"default":64},"max_connections":{"type":"integer","minimum":16,"maximum":65536,"default":1024},"image":{"type":"string"}}}"#.into(),
            outputs: vec!["MEMCACHED_SERVERS".into()],
            defaults: vec![KeyValue { key: "image".into(), value: DEFAULT_IMAGE.into() }],
        }
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = config(&ctx)?;
        progress("ensuring the server container");
        let deployment = docker::ensure(&spec(&config, &ctx)).map_err(|e| e.to_string())?;
        let addr = deployment.containers.first().and_then(|c| c.published(PORT)).ok_or("port 11211 of the server is not published")?;
        // The usual client setting: a list of host:port. Containers on the project
        // network use the service name instead.
        Ok(vec![Output::plain("MEMCACHED_SERVERS", addr).on_network(format!("{}:{PORT}", ctx.service))])
    }

    fn ready(_ctx: Context) -> Result<Readiness, String> {
        let server = match docker::inspect(SERVER) {
            Ok(info) => info,
            Err(e) => return Ok(Readiness::NotYet(e.to_string())),
        };
        let Some(addr) = server.published(PORT) else {
            return Ok(Readiness::NotYet("port 11211 not published yet".into()));
        };
        Ok(match probe_server(&addr) {
            Ok(_) => Readiness::Ready,
            Err(reason) => Readiness::NotYet(reason),
        })
    }

    fn teardown(_ctx: Context, _keep_volumes: bool) -> Result<(), String> {
        gone_is_fine(docker::remove(SERVER))
    }
}

export_plugin!(Memcached);
