//! RabbitMQ. One broker container with its data on the `data` volume; an app user with
//! no tags (so no management or policy rights) and configure/write/read permissions on
//! the app's vhost only; the broker's first user is `admin` with a generated password,
//! and there is no `guest`. Ready when the app user opens its vhost over AMQP 0-9-1.
//!
//! Works with the upstream `rabbitmq` image (the default, `rabbitmq:3`) and with the
//! offline image `cargo xtask images` builds from Debian packages.

mod amqp;

use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const DEFAULT_IMAGE: &str = "rabbitmq:3";
const PORT: u16 = 5672;
const SERVER: &str = "server";
const SETUP_MARKER: &str = "setup";
/// RabbitMQ stops cleanly in a couple of seconds; don't wait much longer.
const STOP_TIMEOUT_MS: u32 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The app's vhost (default: the project name).
    vhost: Option<String>,
    /// The app's user (default `app`).
    #[serde(default = "default_user")]
    user: String,
    /// Image to run instead of `rabbitmq:3` (an environment's image override wins).
    image: Option<String>,
}

fn default_user() -> String {
    "app".into()
}

/// AMQP carries a vhost as a short string (at most 255 bytes); control characters
/// would only break the CLI's output and the URL.
fn is_vhost(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control)
}

fn is_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' || c == '.')
}

impl Config {
    fn parse(json: &str) -> Result<Config, Vec<ConfigProblem>> {
        let config: Config = parse_config(json)?;
        let mut problems = Vec::new();
        if let Some(vhost) = &config.vhost {
            if !is_vhost(vhost) {
                problems.push(ConfigProblem { key: "vhost".into(), message: format!("`{}`: use 1 to 255 bytes without control characters", vhost.escape_debug()) });
            }
        }
        if !is_user(&config.user) || config.user == "admin" || config.user == "guest" {
            problems.push(ConfigProblem {
                key: "user".into(),
                message: format!("`{}`: use lower-case letters, digits, _, - and . (not `admin`, the plugin's, or `guest`)", config.user),
            });
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    fn vhost(&self, ctx: &Context) -> String {
        self.vhost.clone().unwrap_or_else(|| ctx.project.clone())
    }

    fn image(&self, ctx: &Context) -> String {
        ctx.image_override.clone().or_else(|| self.image.clone()).unwrap_or_else(|| DEFAULT_IMAGE.into())
    }
}

struct Credentials {
    admin: String,
    app: String,
    cookie: String,
}

fn credentials() -> Result<Credentials, String> {
    let admin = secrets::get_or_create("admin-password", 32).map_err(|e| e.to_string())?;
    let app = secrets::get_or_create("app-password", 32).map_err(|e| e.to_string())?;
    let cookie = secrets::get_or_create("erlang-cookie", 32).map_err(|e| e.to_string())?;
    Ok(Credentials { admin, app, cookie })
}

fn spec(config: &Config, ctx: &Context, creds: &Credentials) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &config.image(ctx));
    spec.env = vec![
        // Only read when the broker initialises an empty node: it then creates this
        // user instead of `guest`.
        EnvVar::plain("RABBITMQ_DEFAULT_USER", "admin"),
        EnvVar::secret("RABBITMQ_DEFAULT_PASS", creds.admin.clone()),
        // The node's data is kept under its name, and upstream names it after the
        // hostname, which a re-created container does not keep.
        EnvVar::plain("RABBITMQ_NODENAME", "rabbit@localhost"),
    ];
    // The cookie as a file, not RABBITMQ_ERLANG_COOKIE: newer images' CLI tools warn
    // about that variable on every call and RabbitMQ 4 dropped it. Written as root
    // before the first start; both images' entrypoints hand /var/lib/rabbitmq to
    // rabbitmq before the broker starts, and Erlang wants the file private.
    spec.files = vec![docker::ContainerFile {
        path: "/var/lib/rabbitmq/.erlang.cookie".into(),
        contents: creds.cookie.clone().into_bytes(),
        mode: 0o400,
        secret: true,
    }];
    spec.ports = vec![Port { container_port: PORT, host_port: None }];
    spec.mounts = vec![Mount { volume: "data".into(), target: "/var/lib/rabbitmq".into(), read_only: false }];
    spec.stop_timeout_ms = Some(STOP_TIMEOUT_MS);
    spec
}

/// A short fingerprint of a secret, safe to keep in a marker file.
fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `s` with everything but RFC 3986's unreserved characters percent-encoded, for a
/// URL's path segment (so the vhost `/` becomes `%2F`).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `rabbitmqctl -q ARGS` in the server as rabbitmq, whose HOME holds the cookie.
/// Passwords go in through `stdin`, never as arguments.
fn ctl(args: &[&str], stdin: Option<&str>) -> Result<ExecOutput, String> {
    let command: Vec<String> = ["rabbitmqctl", "-q"].iter().chain(args).map(|s| s.to_string()).collect();
    let options = ExecOptions { env: vec![], user: Some("rabbitmq".into()), workdir: None, stdin: stdin.map(|s| format!("{s}\n").into_bytes()) };
    docker::exec(SERVER, &command, &options).map_err(|e| e.to_string())
}

/// Like `ctl`, failing with the tool's own message when the command fails.
fn ctl_ok(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let out = ctl(args, stdin)?;
    if out.success() {
        return Ok(out.stdout_text());
    }
    let message = match out.stderr_text().trim() {
        "" => out.stdout_text().trim().to_string(),
        text => text.to_string(),
    };
    Err(format!("rabbitmqctl {} failed ({}): {message}", args.first().copied().unwrap_or_default(), out.exit_code))
}

/// Names from the JSON rows the CLI prints with `--formatter json`.
fn names(json: &str, field: &str) -> Result<Vec<String>, String> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(json).map_err(|e| format!("unexpected rabbitmqctl output: {e}"))?;
    Ok(rows.iter().filter_map(|row| row.get(field)?.as_str().map(String::from)).collect())
}

fn address(info: &ContainerInfo) -> Result<String, String> {
    info.published(PORT).ok_or_else(|| format!("port {PORT} of the server is not published"))
}

/// Wait for the broker to accept AMQP clients and for its CLI to reach it, or for the
/// container to exit.
fn wait_for_broker(addr: &str) -> Result<(), String> {
    let mut exited = None;
    wait::until(Duration::from_secs(120), Duration::from_millis(200), || {
        // The greeting first: it costs the container nothing, whereas every CLI call
        // boots an Erlang VM in it, which polled while the broker boots slows the boot
        // down by more than half. The listener opens at the end of the boot, after
        // the default user exists.
        let attempt = probe::connect(addr, Duration::from_secs(2))
            .map_err(|e| format!("connect {addr}: {e}"))
            .and_then(|mut stream| amqp::greeted(&mut stream))
            .and_then(|()| ctl_ok(&["await_startup"], None).map(|_| ()));
        if attempt.is_err() {
            // A broker that exited will not come up: stop waiting now.
            if let Ok(info) = docker::inspect(SERVER) {
                if matches!(info.state, ContainerState::Exited | ContainerState::Dead) {
                    exited = Some(info.exit_code.unwrap_or(-1));
                    return Ok(());
                }
            }
        }
        attempt
    })?;
    match exited {
        Some(code) => Err(format!("the server exited with code {code} during start-up")),
        None => Ok(()),
    }
}

/// Make `vhost` exist and `user` able to use it and nothing else; remove `guest`.
/// Idempotent, and quick on a fresh node: every CLI call costs most of a second.
fn set_up(vhost: &str, user: &str, password: &str) -> Result<(), String> {
    let users = names(&ctl_ok(&["list_users", "--formatter", "json"], None)?, "user")?;
    ctl_ok(&["add_vhost", vhost], None)?;
    if users.iter().any(|u| u == user) {
        ctl_ok(&["change_password", user], Some(password))?;
        // The user may predate this plugin or its config: drop any tags
        // (administrator, management, …) and permissions on other vhosts.
        ctl_ok(&["set_user_tags", user], None)?;
        let vhosts = names(&ctl_ok(&["list_user_permissions", user, "--formatter", "json"], None)?, "vhost")?;
        for other in vhosts.iter().filter(|v| *v != vhost) {
            ctl_ok(&["clear_permissions", "-p", other, user], None)?;
        }
    } else {
        ctl_ok(&["add_user", user], Some(password))?;
    }
    ctl_ok(&["set_permissions", "-p", vhost, user, ".*", ".*", ".*"], None)?;
    // Brokers create guest/guest when no default user is configured.
    if users.iter().any(|u| u == "guest") {
        let out = ctl(&["delete_user", "guest"], None)?;
        if !out.success() && !out.stderr_text().contains("does not exist") {
            return Err(format!("rabbitmqctl delete_user guest failed ({}): {}", out.exit_code, out.stderr_text().trim()));
        }
    }
    Ok(())
}

struct RabbitMq;

impl Plugin for RabbitMq {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "rabbitmq".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            summary: "RabbitMQ with an app user limited to the app's vhost; no guest".into(),
            capabilities: vec![
                Capability::Image("rabbitmq:*".into()),
                Capability::Image("*/rabbitmq:*".into()),
                Capability::Publish(PORT),
                Capability::Volume("data".into()),
                Capability::Exec,
                Capability::NetProbe,
                Capability::StateFiles,
                Capability::Secrets,
            ],
            config_schema: r#"{"type":"object","additionalProperties":false,"properties":{"vhost":{"type":"string"},"user":{"type":"string","default":"app"},"image":{"type":"string"}}}"#.into(),
            outputs: vec!["AMQP_URL".into()],
            defaults: vec![KeyValue { key: "image".into(), value: DEFAULT_IMAGE.into() }],
        }
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(|p| p[0].message.clone())?;
        let creds = credentials()?;
        let vhost = config.vhost(&ctx);
        progress("ensuring the server container");
        let deployment = docker::ensure(&spec(&config, &ctx, &creds)).map_err(|e| e.to_string())?;
        let server = deployment.containers.first().ok_or("the engine reported no server container")?;
        let addr = address(server)?;

        // The setup is skipped when nothing changed since it last succeeded: a warm
        // run then costs one inspect and one readiness probe.
        let marker = format!("{}:{}:{}:{vhost}", server.id, config.user, digest(&creds.app));
        if deployment.outcome != EnsureOutcome::Unchanged || state::read(SETUP_MARKER).as_deref() != Some(marker.as_str()) {
            progress("waiting for the broker to start");
            wait_for_broker(&addr)?;
            progress(&format!("setting up vhost {vhost} and user {}", config.user));
            set_up(&vhost, &config.user, &creds.app)?;
            state::write(SETUP_MARKER, &marker)?;
        }

        let url = format!("amqp://{}:{}@{addr}/{}", config.user, creds.app, percent_encode(&vhost));
        Ok(vec![Output::secret("AMQP_URL", url)])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(|p| p[0].message.clone())?;
        let app = secrets::get_or_create("app-password", 32).map_err(|e| e.to_string())?;
        let server = match docker::inspect(SERVER) {
            Ok(info) => info,
            Err(e) => return Ok(Readiness::NotYet(e.to_string())),
        };
        let addr = address(&server)?;
        let opened = probe::connect(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connect {addr}: {e}"))
            .and_then(|mut stream| amqp::open_and_close(&mut stream, &config.user, &app, &config.vhost(&ctx)));
        Ok(match opened {
            Ok(()) => Readiness::Ready,
            Err(reason) => Readiness::NotYet(reason),
        })
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        if keep_volumes {
            // `remove` kills the broker outright; the data that stays should be left
            // by a clean shutdown, or the next start rebuilds the message store's
            // indices. A failure here (already stopped or gone) is for `remove` to judge.
            let _ = docker::stop(SERVER, STOP_TIMEOUT_MS);
        }
        gone_is_fine(docker::remove(SERVER))?;
        state::remove(SETUP_MARKER);
        if !keep_volumes {
            gone_is_fine(docker::remove_volume("data"))?;
        }
        Ok(())
    }
}

export_plugin!(RabbitMq);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_offending_key() {
        assert!(Config::parse(r#"{"vhost":"shop","user":"app"}"#).is_ok());
        let problems = Config::parse(r#"{"vhost":"","user":"guest"}"#).err().unwrap_or_default();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["vhost", "user"]);
        let typo = Config::parse(r#"{"vhots":"x"}"#).err().unwrap_or_default();
        assert_eq!(typo.len(), 1);
        assert!(typo[0].message.contains("vhots"), "{}", typo[0].message);
    }

    #[test]
    fn vhosts_are_percent_encoded() {
        assert_eq!(percent_encode("shop"), "shop");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn names_come_from_json_rows() {
        let json = "[\n{\"user\":\"admin\",\"tags\":[\"administrator\"]}\n,{\"user\":\"app\",\"tags\":[]}\n]\n";
        assert_eq!(names(json, "user").unwrap(), ["admin", "app"]);
        assert!(names("Listing users ...", "user").is_err());
    }
}
