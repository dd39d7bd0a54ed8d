//! RabbitMQ. One broker container with its data on the `data` volume; an app user with
//! no tags (so no management or policy rights) and configure/write/read permissions on
//! the app's vhost only; the broker's first user is `admin` with a generated password,
//! and there is no `guest`. Ready when the app user opens its vhost over AMQP 0-9-1.
//!
//! The broker comes up configured: it imports a definitions file (vhost, users,
//! permissions) at every boot, so no CLI call is needed. On an empty node a broker with
//! definitions to load creates neither `guest` nor the `/` vhost; on a kept volume the
//! import merges, and puts the passwords and tags back as the definitions say.
//!
//! Backup is the broker's definitions (`rabbitmqctl export_definitions -`: vhosts,
//! queues, exchanges, bindings, policies, parameters), streamed into the archive part
//! `definitions.json`; messages in queues are not included. Restore reads the part
//! (definitions are small; over 16 MiB is refused), drops what would change the
//! target's credentials (`users`, `permissions`, `topic_permissions`, and the source's
//! cluster name and id), renames the source's one vhost to the target's when they
//! differ, then replaces the app's vhost: `delete_vhost`, the broker's own definitions
//! file imported again (the vhost, the users with the target's passwords, their
//! permissions, as at boot), then the cleaned backup imported on top.
//!
//! Monitoring: while the environment is monitored (`ctx.monitored`), the broker runs its
//! bundled `rabbitmq_prometheus` plugin, which serves `/metrics` on port 15692 of the
//! server container to the project network (not published). RabbitMQ 3.10's endpoint has
//! no authentication at all (its config schema has no such key), so there is no
//! monitoring user: one would be unused. It serves aggregated broker statistics, no
//! message contents; the `/metrics/per-object` and `/metrics/detailed` paths of the same
//! port name queues and vhosts. The plugin is enabled at boot through
//! `RABBITMQ_ENABLED_PLUGINS` (which takes the place of the `enabled_plugins` file): a
//! change of the spec, so turning monitoring on or off replaces the broker container
//! once (its data is in the volume), and nothing is left behind in the volume; cheaper
//! than `rabbitmq-plugins enable` through `exec` on every change (a CLI VM of its own,
//! about a second of CPU, and lost with the container). When not monitored the spec is
//! as it was before monitoring existed (upstream's image enables the plugin by itself
//! through its own `enabled_plugins` file; the offline image does not).
//!
//! Works with the upstream `rabbitmq` image (the default, `rabbitmq:3`) and with the
//! offline image `cargo xtask images` builds from Debian packages.

mod amqp;

use provisioner_plugin_sdk::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const DEFAULT_IMAGE: &str = "rabbitmq:3";
const PORT: u16 = 5672;
const SERVER: &str = "server";
/// In the data volume, which exists in any image (Docker makes the mount point) and
/// which both images' entrypoints hand to rabbitmq before the broker starts.
const DEFINITIONS: &str = "/var/lib/rabbitmq/definitions.json";
/// Loads the broker's code in one batch before it boots (see preload.erl).
const PRELOAD: &str = "/var/lib/rabbitmq/preload.erl";
/// `rabbitmq_prometheus`'s port and path, on the server container.
const METRICS_PORT: u16 = 15692;
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
                problems.push(ConfigProblem::new("vhost", format!("`{}`: use 1 to 255 bytes without control characters", vhost.escape_debug())));
            }
        }
        if !is_user(&config.user) || config.user == "admin" || config.user == "guest" {
            let message = format!("`{}`: use lower-case letters, digits, _, - and . (not `admin`, the plugin's, or `guest`)", config.user);
            problems.push(ConfigProblem::new("user", message));
        }
        no_problems(config, problems)
    }

    fn vhost(&self, ctx: &Context) -> String {
        self.vhost.clone().unwrap_or_else(|| ctx.project.clone())
    }
}

struct Credentials {
    admin: String,
    app: String,
    cookie: String,
}

fn credentials() -> Result<Credentials, String> {
    let secret = |name| secrets::get_or_create(name, 32);
    Ok(Credentials { admin: secret("admin-password")?, app: secret("app-password")?, cookie: secret("erlang-cookie")? })
}

fn spec(config: &Config, ctx: &Context, creds: &Credentials) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE)));
    spec.env = vec![
        // The node's data is kept under its name, and upstream names it after the
        // hostname, which a re-created container does not keep.
        EnvVar::plain("RABBITMQ_NODENAME", "rabbit@localhost"),
        // `load_definitions` (rabbitmq.conf's key of that name) as an argument rather
        // than a conf.d file: /etc/rabbitmq need not exist in the image, and a file
        // can only be written into an existing folder. A path without spaces: the
        // server script splits this variable on whitespace.
        //
        // The `+sbwt…` flags let idle scheduler threads spin a moment before they
        // sleep, instead of RabbitMQ's `none`: the boot hands ~900 module loads back
        // and forth between the code server and the file I/O threads, and with `none`
        // each hand-off sleeps and wakes a thread. Measured on the offline image (2
        // cores), AMQP listener after start: 4.7 s → 2.3 s; with preload.erl as well,
        // 2.1 s → 1.7 s. An idle broker's CPU stays under 0.5%. These come after the
        // server's own arguments on its command line, so they win. preload.erl tells
        // the server from the CLI tools by the `-rabbit` argument.
        EnvVar::plain(
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            format!("-rabbit load_definitions \"{DEFINITIONS}\" +sbwt very_short +sbwtdcpu very_short +sbwtdio very_short"),
        ),
        // Everything this broker needs is above, so it reads no rabbitmq.conf files: a
        // folder nobody creates instead of the image's conf.d. That skips the Cuttlefish
        // schema pass over every bundled plugin (measured: 0.35 s of a 5.5 s cold boot).
        // The images' conf.d only turns console logging on, which this does directly.
        EnvVar::plain("RABBITMQ_CONFIG_FILES", "/var/lib/rabbitmq/conf.d"),
        EnvVar::plain("RABBITMQ_LOGS", "-"),
        // Before `-s rabbit boot` on the command line, which only ERL_AFLAGS reaches.
        EnvVar::plain("ERL_AFLAGS", format!("-eval 'file:script(\"{PRELOAD}\")'")),
    ];
    if ctx.monitored {
        // The plugins the broker starts, instead of the `enabled_plugins` file's (the
        // plugin brings in its dependencies, management_agent and web_dispatch).
        spec.env.push(EnvVar::plain("RABBITMQ_ENABLED_PLUGINS", "rabbitmq_prometheus"));
    }
    // The files are written as root before the first start; both images' entrypoints
    // hand /var/lib/rabbitmq to rabbitmq before the broker starts, so the secret ones
    // can be private. The cookie as a file, not RABBITMQ_ERLANG_COOKIE: newer images' CLI
    // tools warn about that variable on every call and RabbitMQ 4 dropped it; Erlang
    // wants it private.
    spec.files = vec![
        ContainerFile::secret("/var/lib/rabbitmq/.erlang.cookie", creds.cookie.clone(), 0o400),
        ContainerFile::secret(DEFINITIONS, definitions(&config.vhost(ctx), &config.user, creds), 0o600),
        ContainerFile::new(PRELOAD, include_bytes!("preload.erl").as_slice(), 0o644),
    ];
    spec.ports = vec![Port::any(PORT)];
    spec.mounts = vec![Mount::volume("data", "/var/lib/rabbitmq")];
    spec.stop_timeout_ms = Some(STOP_TIMEOUT_MS);
    spec
}

/// The broker's definitions: the app's vhost, `admin` (an administrator, for people
/// at the CLI) and the app's user without tags, both allowed everything on that vhost
/// and nothing elsewhere.
fn definitions(vhost: &str, user: &str, creds: &Credentials) -> String {
    let all = |name: &str| serde_json::json!({"user": name, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"});
    let account = |name: &str, password: &str, tags: &str| {
        serde_json::json!({
            "name": name,
            "password_hash": password_hash(password),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": tags,
        })
    };
    serde_json::json!({
        "vhosts": [{"name": vhost}],
        "users": [account("admin", &creds.admin, "administrator"), account(user, &creds.app, "")],
        "permissions": [all(user), all("admin")],
        "topic_permissions": [],
        "parameters": [],
        "policies": [],
        "queues": [],
        "exchanges": [],
        "bindings": [],
    })
    .to_string()
}

/// RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ++ sha256(salt ++ password))
/// with a 4-byte salt. The salt comes from the password, not from chance, so the
/// definitions, and thus the spec, stay the same from run to run (a changed spec
/// re-creates the container).
fn password_hash(password: &str) -> String {
    let seed = Sha256::new().chain_update(b"salt").chain_update(password.as_bytes()).finalize();
    let salt = &seed[..4];
    let hash = Sha256::new().chain_update(salt).chain_update(password.as_bytes()).finalize();
    base64(&[salt, hash.as_slice()].concat())
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

/// The archive part holding the exported definitions.
const DEFINITIONS_PART: &str = "definitions.json";
/// Where the restore writes the cleaned definitions for `import_definitions`.
const RESTORE_FILE: &str = "/var/lib/rabbitmq/restore-definitions.json";
/// Definitions are small; a part bigger than this is not a backup of this plugin.
const MAX_DEFINITIONS: u64 = 16 * 1024 * 1024;
/// What `archive::read` returns at most per call.
const READ_CHUNK: u32 = 4 * 1024 * 1024;

/// `rabbitmqctl -q ARGS` in the broker, as the `rabbitmq` user whose home holds the
/// Erlang cookie (the container's environment names the node).
fn rabbitmqctl(args: &[&str]) -> Result<ExecOutput, String> {
    let mut command = vec!["rabbitmqctl".to_string(), "-q".into()];
    command.extend(args.iter().map(|s| s.to_string()));
    Ok(docker::exec(SERVER, &command, &ctl_options())?)
}

fn ctl_options() -> ExecOptions {
    ExecOptions { env: vec![EnvVar::plain("HOME", "/var/lib/rabbitmq")], user: Some("rabbitmq".into()), workdir: None, stdin: None }
}

/// `rabbitmqctl ARGS`, which must succeed; its standard output.
fn rabbitmqctl_ok(what: &str, args: &[&str]) -> Result<String, String> {
    let out = rabbitmqctl(args)?;
    if out.success() {
        Ok(out.stdout_text())
    } else {
        let stderr = out.stderr_text();
        let text = if stderr.trim().is_empty() { out.stdout_text() } else { stderr };
        Err(format!("{what} failed (exit {}): {}", out.exit_code, text.trim()))
    }
}

/// The `name`s in a `--formatter json` listing.
fn names(listing: &str) -> Result<Vec<String>, String> {
    let items: Vec<serde_json::Value> = serde_json::from_str(listing.trim()).map_err(|e| format!("reading rabbitmqctl's listing: {e}"))?;
    Ok(items.iter().filter_map(|item| item["name"].as_str().map(str::to_string)).collect())
}

/// The backup's definitions made safe to import into the target: nothing about users
/// (their passwords, tags, permissions) nor the source cluster's identity, and the
/// source's vhost renamed to `vhost` when the backup has exactly one other vhost.
fn clean_definitions(mut defs: serde_json::Value, vhost: &str) -> Result<serde_json::Value, String> {
    let map = defs.as_object_mut().ok_or("the definitions are not a JSON object")?;
    for key in ["users", "permissions", "topic_permissions"] {
        map.remove(key);
    }
    if let Some(serde_json::Value::Array(params)) = map.get_mut("global_parameters") {
        params.retain(|p| !matches!(p["name"].as_str(), Some("cluster_name" | "internal_cluster_id")));
    }
    let source = match map.get("vhosts").and_then(|v| v.as_array()).map(Vec::as_slice) {
        Some([only]) => only["name"].as_str().filter(|name| *name != vhost).map(str::to_string),
        _ => None,
    };
    if let Some(source) = source {
        for key in ["vhosts", "queues", "exchanges", "bindings", "policies", "parameters", "operator_policies"] {
            let Some(serde_json::Value::Array(items)) = map.get_mut(key) else { continue };
            for item in items {
                let field = if key == "vhosts" { "name" } else { "vhost" };
                if item[field].as_str() == Some(source.as_str()) {
                    item[field] = serde_json::Value::String(vhost.to_string());
                }
            }
        }
    }
    Ok(defs)
}

/// `N queues, M exchanges` beyond the broker's own, or none.
fn summary(queues: usize, exchanges: usize) -> Option<String> {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    (queues + exchanges > 0).then(|| format!("{}, {}", plural(queues, "queue", "queues"), plural(exchanges, "exchange", "exchanges")))
}

struct RabbitMq;

impl Plugin for RabbitMq {
    const BACKUP: Option<&'static str> = Some("definitions (rabbitmqctl export_definitions)");

    fn describe() -> PluginInfo {
        PluginInfo::new("rabbitmq", env!("CARGO_PKG_VERSION"), "RabbitMQ with an app user limited to the app's vhost; no guest")
            .image_and_mirrors("rabbitmq:*")
            // `exec`: backup and restore run rabbitmqctl in the broker.
            .publish(PORT).volume("data").exec().net_probe().secrets()
            .schema(r#"{"type":"object","additionalProperties":false,"properties":{"vhost":{"type":"string"},"user":{"type":"string","default":"app"},"image":{"type":"string"}}}"#)
            .outputs(&["AMQP_URL"])
            .default("image", DEFAULT_IMAGE)
    }

    fn metrics() -> Vec<MetricsEndpoint> {
        vec![MetricsEndpoint::new(SERVER, METRICS_PORT, "/metrics")]
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let creds = credentials()?;
        let vhost = config.vhost(&ctx);
        progress("ensuring the server container");
        // One that dies at once is already down here, and unpublished: that is the error.
        let addr = docker::ensure(&spec(&config, &ctx, &creds))?.container()?.host_addr(PORT)?;
        // No waiting here: the broker imports its definitions as it boots, so the
        // outputs are right already, and services that wait only for outputs can
        // start alongside the boot (several seconds). `ready` waits for it.

        let url = format!("amqp://{}:{}@{addr}/{}", config.user, creds.app, percent_encode(&vhost));
        let in_network = format!("amqp://{}:{}@{}:{PORT}/{}", config.user, creds.app, ctx.service, percent_encode(&vhost));
        Ok(vec![Output::secret("AMQP_URL", url).on_network(in_network)])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let app = secrets::get_or_create("app-password", 32)?;
        // Costs the broker nothing until its listener opens, at the end of the boot.
        probe::ready(SERVER, PORT, |addr| amqp::open_and_close(&mut probe::tcp(addr)?, &config.user, &app, &config.vhost(&ctx)))
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        teardown(&[SERVER], &["data"], keep_volumes)
    }

    fn backup(_ctx: Context) -> Result<BackupReport, String> {
        progress("exporting the definitions");
        let command = ["rabbitmqctl", "-q", "export_definitions", "-"].map(String::from).to_vec();
        archive::save_exec(DEFINITIONS_PART, SERVER, &command, &ctl_options()).map_err(|e| format!("rabbitmqctl export_definitions: {e}"))?;
        Ok(BackupReport::new("definitions of every vhost (rabbitmqctl export_definitions)")
            .note("messages in queues are not included")
            .note("users and permissions are not restored: the target keeps its own"))
    }

    fn data_summary(ctx: Context) -> Result<Option<String>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let vhost = config.vhost(&ctx);
        let queues = names(&rabbitmqctl_ok("listing queues", &["list_queues", "-p", &vhost, "name", "--formatter", "json"])?)?;
        let exchanges = names(&rabbitmqctl_ok("listing exchanges", &["list_exchanges", "-p", &vhost, "name", "--formatter", "json"])?)?;
        // The default exchange ("") and the `amq.*` ones come with every vhost.
        let own_exchanges = exchanges.iter().filter(|name| !name.is_empty() && !name.starts_with("amq.")).count();
        Ok(summary(queues.len(), own_exchanges))
    }

    fn restore(ctx: Context) -> Result<(), String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let vhost = config.vhost(&ctx);
        let part = archive::parts()?
            .into_iter()
            .find(|p| p.name == DEFINITIONS_PART)
            .ok_or_else(|| format!("the backup has no part `{DEFINITIONS_PART}` for this service"))?;
        if part.bytes > MAX_DEFINITIONS {
            return Err(format!("the backup's definitions are {} bytes, more than this plugin reads ({MAX_DEFINITIONS})", part.bytes));
        }
        let mut bytes = Vec::with_capacity(part.bytes as usize);
        while (bytes.len() as u64) < part.bytes {
            let chunk = archive::read(DEFINITIONS_PART, bytes.len() as u64, READ_CHUNK)?;
            if chunk.is_empty() {
                return Err(format!("the backup's definitions end after {} of {} bytes", bytes.len(), part.bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        let defs: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("reading the backup's definitions: {e}"))?;
        drop(bytes);
        let cleaned = clean_definitions(defs, &vhost)?.to_string();

        progress(&format!("replacing vhost {vhost}"));
        docker::write_file(SERVER, RESTORE_FILE, cleaned.as_bytes(), 0o644)?;
        rabbitmqctl_ok(&format!("deleting vhost {vhost}"), &["delete_vhost", &vhost])?;
        // The vhost, the users with the target's passwords and their permissions, as at boot.
        rabbitmqctl_ok("importing the broker's own definitions", &["import_definitions", DEFINITIONS])?;
        let imported = rabbitmqctl_ok("importing the backup's definitions", &["import_definitions", RESTORE_FILE]);
        let removed = docker::exec(SERVER, &["rm", "-f", RESTORE_FILE].map(String::from).to_vec(), &ExecOptions::none());
        imported?;
        if let Err(e) = removed {
            warn(&format!("removing {RESTORE_FILE}: {e}"));
        }
        Ok(())
    }
}

export_plugin!(RabbitMq);

#[cfg(test)]
mod tests {
    use super::*;

    use provisioner_plugin_sdk::testing::{ctx, env, MockHost};

    #[test]
    fn monitored_the_broker_serves_prometheus_and_no_user_is_added() {
        let mock = MockHost::for_plugin::<RabbitMq>();
        let mut context = ctx("queue", serde_json::json!({}));
        RabbitMq::provision(context.clone()).unwrap();
        let before = mock.spec(SERVER);
        assert_eq!(env(&before, "RABBITMQ_ENABLED_PLUGINS"), None);

        context.monitored = true;
        RabbitMq::provision(context.clone()).unwrap();
        let spec = mock.spec(SERVER);
        assert_eq!(env(&spec, "RABBITMQ_ENABLED_PLUGINS"), Some("rabbitmq_prometheus"));
        assert_eq!(mock.ensured().iter().filter(|s| s.name != SERVER).count(), 0, "no sidecar");
        assert!(spec.ports.iter().all(|p| p.container_port != METRICS_PORT), "not published");
        // The same users as unmonitored: no monitoring user.
        assert_eq!(format!("{:?}", spec.files), format!("{:?}", before.files));
        // Idempotent.
        RabbitMq::provision(context.clone()).unwrap();
        assert_eq!(format!("{:?}", mock.spec(SERVER)), format!("{spec:?}"));

        // Back to unmonitored: the spec as it was before.
        context.monitored = false;
        RabbitMq::provision(context).unwrap();
        assert_eq!(format!("{:?}", mock.spec(SERVER)), format!("{before:?}"));
    }

    #[test]
    fn describe_declares_the_endpoint() {
        let info = provisioner_plugin_sdk::__private::describe::<RabbitMq>();
        let metrics: Vec<(&str, u16, &str)> = info.metrics.iter().map(|m| (m.container.as_str(), m.port, m.path.as_str())).collect();
        assert_eq!(metrics, [("server", 15692, "/metrics")]);
    }

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
    fn restored_definitions_keep_the_targets_users() {
        let backup = serde_json::json!({
            "rabbit_version": "3.13.7",
            "users": [{"name": "app", "password_hash": "x"}],
            "vhosts": [{"name": "shop-ci"}],
            "permissions": [{"user": "app", "vhost": "shop-ci"}],
            "topic_permissions": [],
            "global_parameters": [{"name": "cluster_name", "value": "rabbit@x"}, {"name": "other", "value": 1}],
            "queues": [{"name": "jobs", "vhost": "shop-ci"}],
            "exchanges": [{"name": "events", "vhost": "shop-ci"}],
            "bindings": [{"source": "events", "vhost": "shop-ci", "destination": "jobs"}],
        });
        let cleaned = clean_definitions(backup, "shop").unwrap();
        assert!(cleaned.get("users").is_none() && cleaned.get("permissions").is_none() && cleaned.get("topic_permissions").is_none());
        assert_eq!(cleaned["global_parameters"], serde_json::json!([{"name": "other", "value": 1}]));
        assert_eq!(cleaned["vhosts"], serde_json::json!([{"name": "shop"}]));
        assert_eq!(cleaned["queues"][0]["vhost"], "shop");
        assert_eq!(cleaned["bindings"][0]["vhost"], "shop");
        assert_eq!(summary(0, 0), None);
        assert_eq!(summary(1, 2).as_deref(), Some("1 queue, 2 exchanges"));
    }

    #[test]
    fn vhosts_are_percent_encoded() {
        assert_eq!(percent_encode("shop"), "shop");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn base64_is_rfc_4648() {
        for (input, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(input.as_bytes()), encoded);
        }
    }

    #[test]
    fn password_hashes_are_salted_and_stable() {
        let hash = password_hash("secret");
        assert_eq!(hash, password_hash("secret"), "the same spec on every run");
        // As Python's base64(salt + sha256(salt + password)), the hash the broker accepted.
        assert_eq!(hash, "vt6QOLxKUaGJqHI/q9UbOvjjOqQeK7M6p2r7gXBFsFP0gfU4");
        assert_ne!(hash, password_hash("secret2"));
    }

    #[test]
    fn definitions_give_the_app_its_vhost_only() {
        let creds = Credentials { admin: "a".into(), app: "b".into(), cookie: "c".into() };
        let defs: serde_json::Value = serde_json::from_str(&definitions("shop", "app", &creds)).unwrap();
        assert_eq!(defs["vhosts"], serde_json::json!([{"name": "shop"}]));
        let users: Vec<(&str, &str)> =
            defs["users"].as_array().unwrap().iter().map(|u| (u["name"].as_str().unwrap(), u["tags"].as_str().unwrap())).collect();
        assert_eq!(users, [("admin", "administrator"), ("app", "")]);
        assert_eq!(defs["permissions"][0], serde_json::json!({"user": "app", "vhost": "shop", "configure": ".*", "write": ".*", "read": ".*"}));
    }
}
