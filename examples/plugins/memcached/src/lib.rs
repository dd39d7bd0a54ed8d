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

use provisioner_plugin_sdk::*;
use serde::Deserialize;

const DEFAULT_IMAGE: &str = "memcached:1.6";
const PORT: u16 = 11211;
const SERVER: &str = "server";

/// The service's `config`; its JSON Schema (for `plugins inspect` and `plugins docs`)
/// is derived from it, the doc comments becoming descriptions, and `validate` enforces
/// the ranges it states.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Item memory, in MiB (memcached's `-m`).
    #[serde(default = "default_memory")]
    #[schemars(range(min = 16, max = 4096))]
    memory_mb: u32,
    /// Simultaneous connections (memcached's `-c`).
    #[serde(default = "default_connections")]
    #[schemars(range(min = 16, max = 65536))]
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

fn spec(config: &Config, ctx: &Context) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE)));
    // The image's entrypoint runs memcached as the unprivileged `memcache` user; no
    // UDP (`-U 0`): it is only ever an amplification risk.
    let (memory, connections) = (config.memory_mb.to_string(), config.max_connections.to_string());
    spec.command = Some(["memcached", "-m", &memory, "-c", &connections, "-p", "11211", "-U", "0"].map(String::from).to_vec());
    spec.ports = vec![Port::any(PORT)];
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
    let mut stream = probe::tcp(addr)?;
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
        PluginInfo::new("memcached", env!("CARGO_PKG_VERSION"), "Memcached 1.6, in memory; ready when it answers the text protocol")
            .image_and_mirrors("memcached:1*")
            .publish(PORT)
            .net_probe()
            .config::<Config>()
            .outputs(&["MEMCACHED_SERVERS"])
            .default("image", DEFAULT_IMAGE)
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        parse_config_checked::<Config>(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config: Config = parse_config_checked(&ctx.config).map_err(config_error)?;
        progress("ensuring the server container");
        let addr = docker::ensure(&spec(&config, &ctx))?.container()?.host_addr(PORT)?;
        // The usual client setting: a list of host:port. Containers on the project
        // network use the service name instead.
        Ok(vec![Output::plain("MEMCACHED_SERVERS", addr).on_network(format!("{}:{PORT}", ctx.service))])
    }

    /// Not yet while the server is missing, stopped or not answering (the host's
    /// deadline and its report of a stopped container decide when to give up).
    fn ready(_ctx: Context) -> Result<Readiness, String> {
        let answer = docker::inspect(SERVER).map_err(|e| e.to_string()).and_then(|server| probe_server(&server.host_addr(PORT)?));
        Ok(answer.map_or_else(Readiness::NotYet, |_version| Readiness::Ready))
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        teardown(&[SERVER], &[], keep_volumes)
    }
}

export_plugin!(Memcached);

#[cfg(test)]
mod tests {
    use super::*;
    use provisioner_plugin_sdk::testing::{self, ctx, not_yet, MockHost};
    use serde_json::json;

    #[test]
    fn provision_asks_for_the_server_the_config_describes() {
        let mock = MockHost::for_plugin::<Memcached>();
        let outputs = Memcached::provision(ctx("cache", json!({"memory_mb": 128, "max_connections": 512}))).unwrap();
        let spec = mock.spec("server");
        assert_eq!(spec.image, "memcached:1.6");
        assert_eq!(spec.command.unwrap(), ["memcached", "-m", "128", "-c", "512", "-p", "11211", "-U", "0"]);
        assert_eq!((spec.ports.len(), spec.ports[0].container_port, spec.ports[0].host_port), (1, 11211, None));
        assert_eq!(spec.resources.unwrap().memory_mb, Some(192));
        assert!(spec.mounts.is_empty() && spec.env.is_empty(), "in memory only, no secret");
        let servers = testing::output(&outputs, "MEMCACHED_SERVERS");
        assert_eq!(servers.value, mock.host_addr("server", 11211));
        assert_eq!(servers.network_value.as_deref(), Some("cache:11211"));
        assert!(!servers.secret);
    }

    #[test]
    fn defaults_and_images() {
        let mock = MockHost::for_plugin::<Memcached>();
        Memcached::provision(ctx("cache", json!({}))).unwrap();
        assert_eq!(mock.spec("server").command.unwrap()[1..5], ["-m", "64", "-c", "1024"]);
        Memcached::provision(ctx("cache", json!({"image": "registry.example/memcached:1.6-alpine"}))).unwrap();
        assert_eq!(mock.spec("server").image, "registry.example/memcached:1.6-alpine");
        let mut overridden = ctx("cache", json!({"image": "registry.example/memcached:1.6-alpine"}));
        overridden.image_override = Some("provisioner-offline/memcached:1.6".into());
        Memcached::provision(overridden).unwrap();
        assert_eq!(mock.spec("server").image, "provisioner-offline/memcached:1.6");
        // An image describe() does not allow is denied, as the host would.
        let err = Memcached::provision(ctx("cache", json!({"image": "redis:7"}))).unwrap_err();
        assert!(err.starts_with("denied: image redis:7"), "{err}");
    }

    #[test]
    fn an_invalid_config_gives_every_problem() {
        let result = Memcached::validate(json!({"memory_mb": 8, "max_connections": 100000}).to_string());
        assert_eq!(testing::problem_keys(&result), ["max_connections", "memory_mb"]);
        assert_eq!(result.unwrap_err()[1].message, "must be from 16 to 4096 (it is 8)");
        let typo = Memcached::validate(json!({"memory": 64, "image": 5, "memory_mb": 9000}).to_string());
        assert_eq!(testing::problem_keys(&typo), ["image", "memory", "memory_mb"]);
        let err = Memcached::provision(ctx("cache", json!({"memory_mb": 1}))).unwrap_err();
        assert_eq!(err, "config.memory_mb: must be from 16 to 4096 (it is 1)");
        assert!(MockHost::new().ensured().is_empty());
    }

    #[test]
    fn ready_when_the_server_answers_not_yet_otherwise() {
        let mock = MockHost::for_plugin::<Memcached>();
        assert!(not_yet(Memcached::ready(ctx("cache", json!({})))).contains("container server"), "nothing yet");
        // The published port answers the text protocol as memcached does.
        mock.serve("server", 11211, |request| {
            assert!(request.starts_with(b"version\r\nget "), "ready only reads");
            b"VERSION 1.6.21\r\nEND\r\n".to_vec()
        });
        Memcached::provision(ctx("cache", json!({}))).unwrap();
        testing::assert_ready(&Memcached::ready(ctx("cache", json!({}))));
        mock.exit("server", 137);
        assert_eq!(not_yet(Memcached::ready(ctx("cache", json!({})))), "the server exited (code 137, killed)");
    }

    #[test]
    fn a_server_that_answers_something_else_is_not_ready() {
        let mock = MockHost::new();
        mock.serve("server", 11211, |_| b"ERROR\r\n".to_vec());
        Memcached::provision(ctx("cache", json!({}))).unwrap();
        assert_eq!(not_yet(Memcached::ready(ctx("cache", json!({})))), "`version` answered `ERROR`");
    }

    #[test]
    fn teardown_removes_the_container_and_twice_is_fine() {
        let mock = MockHost::new();
        Memcached::provision(ctx("cache", json!({}))).unwrap();
        Memcached::teardown(ctx("cache", json!({})), false).unwrap();
        assert_eq!(mock.removed(), ["server"]);
        assert!(mock.containers().is_empty());
        Memcached::teardown(ctx("cache", json!({})), false).unwrap();
    }

    #[test]
    fn the_schema_is_derived_from_the_config() {
        let schema: serde_json::Value = serde_json::from_str(&Memcached::describe().config_schema).unwrap();
        let memory = &schema["properties"]["memory_mb"];
        assert_eq!((memory["minimum"].as_u64(), memory["maximum"].as_u64(), memory["default"].as_u64()), (Some(16), Some(4096), Some(64)));
        assert_eq!(memory["description"], "Item memory, in MiB (memcached's `-m`).");
        assert_eq!(schema["additionalProperties"], false);
    }
}
