//! Redis. One server container with append-only persistence on the `data` volume;
//! the default user disabled, an `app` ACL user for the application (no admin or
//! dangerous commands) and an `admin` user kept by the plugin; ready when
//! `AUTH app …` and `PING` answer over the wire.
//!
//! Works with the upstream `redis` image (the default, `redis:7`) and with the offline
//! image `cargo xtask images` builds from Debian packages.

use std::io::{Read, Write};

use provisioner_plugin_sdk::*;
use serde::Deserialize;

const DEFAULT_IMAGE: &str = "redis:7";
const PORT: u16 = 6379;
const SERVER: &str = "server";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The app's ACL user (default `app`).
    #[serde(default = "default_user")]
    user: String,
    /// Image to run instead of `redis:7` (an environment's image override wins).
    image: Option<String>,
}

fn default_user() -> String {
    "app".into()
}

impl Config {
    fn parse(json: &str) -> Result<Config, Vec<ConfigProblem>> {
        let config: Config = parse_config(json)?;
        let ok = !config.user.is_empty()
            && config.user.len() <= 32
            && config.user.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            && config.user != "default"
            && config.user != "admin";
        if ok {
            Ok(config)
        } else {
            Err(vec![ConfigProblem::new("user", format!("`{}`: use lower-case letters, digits, _ and - (not `default` or `admin`)", config.user))])
        }
    }
}

fn spec(config: &Config, ctx: &Context, admin: &str, app: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE)));
    // Passwords come in through the environment, not the command line, so `ps` in
    // the container and the container's recorded command never show them.
    spec.env = vec![EnvVar::secret("REDIS_ADMIN_PASSWORD", admin), EnvVar::secret("REDIS_APP_PASSWORD", app)];
    let user = &config.user;
    let script = format!(
        "exec redis-server --appendonly yes --protected-mode no --dir /data \
         --user default off \
         --user admin on \">$REDIS_ADMIN_PASSWORD\" '~*' '&*' '+@all' \
         --user {user} on \">$REDIS_APP_PASSWORD\" '~*' '&*' '+@all' '-@admin' '-@dangerous'"
    );
    spec.entrypoint = Some(vec!["sh".into(), "-c".into(), script]);
    spec.command = Some(vec![]);
    spec.user = Some("redis".into());
    spec.ports = vec![Port::any(PORT)];
    spec.mounts = vec![Mount::volume("data", "/data")];
    spec.stop_timeout_ms = Some(5000);
    spec
}

/// One RESP command, written as an array of bulk strings.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
    }
    out
}

/// Read one simple reply line (`+OK`, `-ERR …`).
fn reply(stream: &mut std::net::TcpStream) -> Result<String, String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n = stream.read(&mut byte).map_err(|e| format!("receive: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        line.push(byte[0]);
        if line.len() > 4096 {
            return Err("reply too long".into());
        }
    }
    Ok(String::from_utf8_lossy(&line[..line.len() - 2]).into_owned())
}

/// `AUTH user password` then `PING` at `addr`.
fn auth_and_ping(addr: &str, user: &str, password: &str) -> Result<(), String> {
    let mut stream = probe::tcp(addr)?;
    stream.write_all(&command(&["AUTH", user, password])).map_err(|e| format!("send: {e}"))?;
    let auth = reply(&mut stream)?;
    if auth != "+OK" {
        return Err(format!("AUTH as {user}: {auth}"));
    }
    stream.write_all(&command(&["PING"])).map_err(|e| format!("send: {e}"))?;
    match reply(&mut stream)?.as_str() {
        "+PONG" => Ok(()),
        other => Err(format!("PING: {other}")),
    }
}

struct Redis;

impl Plugin for Redis {
    fn describe() -> PluginInfo {
        PluginInfo::new("redis", env!("CARGO_PKG_VERSION"), "Redis with an ACL user for the app; the default user disabled")
            .image_and_mirrors("redis:*")
            .publish(PORT).volume("data").net_probe().secrets()
            .schema(r#"{"type":"object","additionalProperties":false,"properties":{"user":{"type":"string","default":"app"},"image":{"type":"string"}}}"#)
            .outputs(&["REDIS_URL"])
            .default("image", DEFAULT_IMAGE)
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let admin = secrets::get_or_create("admin-password", 32)?;
        let app = secrets::get_or_create("app-password", 32)?;
        progress("ensuring the server container");
        let addr = docker::ensure(&spec(&config, &ctx, &admin, &app))?.container()?.host_addr(PORT)?;
        let in_network = format!("redis://{}:{app}@{}:{PORT}/0", config.user, ctx.service);
        Ok(vec![Output::secret("REDIS_URL", format!("redis://{}:{app}@{addr}/0", config.user)).on_network(in_network)])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let app = secrets::get_or_create("app-password", 32)?;
        probe::ready(SERVER, PORT, |addr| auth_and_ping(addr, &config.user, &app))
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        teardown(&[SERVER], &["data"], keep_volumes)
    }
}

export_plugin!(Redis);
