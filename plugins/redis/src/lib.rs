//! Redis. One server container with append-only persistence on the `data` volume;
//! the default user disabled, an `app` ACL user for the application (no admin or
//! dangerous commands) and an `admin` user kept by the plugin; ready when
//! `AUTH app …` and `PING` answer over the wire.
//!
//! Backup is an RDB snapshot taken the way a replica takes one (`redis-cli --rdb`, as
//! `admin`): a fork of the server's dataset at one moment, consistent while the app
//! writes. redis-cli writes it to a temporary file in the container (its progress
//! messages go to stderr) and `cat` streams it into the archive part `dump.rdb`.
//!
//! Restore: the server runs with `appendonly yes`, and at boot an AOF wins over an RDB
//! (`dump.rdb` would be ignored). So the restore makes the snapshot the AOF: with Redis
//! 7's multi-part AOF, a fresh `appendonlydir` whose base file is the RDB (plus an empty
//! incremental file and a manifest naming both) replaces the old one; with an older
//! Redis, the single `appendonly.aof` becomes the RDB (an RDB preamble is a valid AOF).
//! Automatic AOF rewrites are switched off first so none writes a manifest over it.
//! Then `SHUTDOWN NOSAVE` (the running server's last writes go to the old files, which
//! are no longer the ones read at boot) and the container is started again, unless the
//! engine restarted it already; the restore waits until a server with a new `run_id`
//! answers, then deletes the old AOF. ACL users are command-line arguments of the
//! spec, not data, so the target keeps its own credentials.
//!
//! Monitoring: while the environment is monitored (`ctx.monitored`), an ACL user
//! `monitor` that may run `INFO` and `PING` and nothing else (no keys, no channels),
//! declared in a private config file the server reads at boot (so turning monitoring on
//! or off replaces the server container once; its data is in the volume), and a sidecar
//! `exporter` (redis_exporter on port 9121, as nobody, limited) that logs in as it with
//! the password from a private file. When not monitored, the sidecar is removed and the
//! server runs without the user, its spec as before monitoring existed.
//!
//! Works with the upstream `redis` image (the default, `redis:7`) and with the offline
//! image `cargo xtask images` builds from Debian packages.

use std::io::{Read, Write};
use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;

const DEFAULT_IMAGE: &str = "redis:7";
const PORT: u16 = 6379;
const SERVER: &str = "server";
/// The metrics sidecar's short name.
const EXPORTER: &str = "exporter";
const EXPORTER_PORT: u16 = 9121;
/// The sidecar's image when the server's is not from the offline set.
const UPSTREAM_EXPORTER_IMAGE: &str = "oliver006/redis_exporter:v1.45.0";
/// The offline set's exporter (Debian's 1.45), beside its `redis:7`.
const OFFLINE_EXPORTER_IMAGE: &str = "redis-exporter:1.45";
/// The monitoring-only ACL user.
const MONITOR: &str = "monitor";
/// In the server: the config file declaring `monitor` (readable by `redis` only).
const MONITOR_CONF: &str = "/etc/redis-monitor.conf";
/// In the exporter: its password file (`--redis.password-file`'s JSON map).
const EXPORTER_PASSWORD_FILE: &str = "/etc/redis_exporter.passwords.json";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The app's ACL user (default `app`).
    #[serde(default = "default_user")]
    user: String,
    /// Image to run instead of `redis:7` (an environment's image override wins).
    image: Option<String>,
    /// The metrics sidecar's image (default: the offline set's when the server runs
    /// from it, else `oliver006/redis_exporter:v1.45.0`).
    exporter_image: Option<String>,
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
            && config.user != "admin"
            && config.user != MONITOR;
        let mut problems = Vec::new();
        if !ok {
            problems.push(ConfigProblem::new("user", format!("`{}`: use lower-case letters, digits, _ and - (not `default`, `admin` or `monitor`)", config.user)));
        }
        if config.exporter_image.as_deref().is_some_and(|i| i.trim().is_empty()) {
            problems.push(ConfigProblem::new("exporter_image", "name an image, e.g. `oliver006/redis_exporter:v1.45.0`"));
        }
        no_problems(config, problems)
    }
}

fn server_image(config: &Config, ctx: &Context) -> String {
    image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE))
}

/// The ACL rules of the monitoring user: logs in with its password and may run `INFO`
/// and `PING` only; no key (`resetkeys`) and no channel (`resetchannels`). `reset` first,
/// so nothing else it might have had survives.
fn monitor_acl(password: &str) -> String {
    format!("reset on resetpass >{password} resetkeys resetchannels -@all +info +ping")
}

/// The server's config file when monitored: only the monitoring user, the rest of the
/// configuration stays on the command line.
fn monitor_conf(password: &str) -> String {
    format!("user {MONITOR} {}\n", monitor_acl(password))
}

fn spec(config: &Config, ctx: &Context, admin: &str, app: &str, monitor: Option<&str>) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &server_image(config, ctx));
    // Passwords come in through the environment, not the command line, so `ps` in
    // the container and the container's recorded command never show them.
    spec.env = vec![EnvVar::secret("REDIS_ADMIN_PASSWORD", admin), EnvVar::secret("REDIS_APP_PASSWORD", app)];
    let user = &config.user;
    // The config file, when there is one, must come first.
    let conf = if monitor.is_some() { format!("{MONITOR_CONF} ") } else { String::new() };
    let script = format!(
        "exec redis-server {conf}--appendonly yes --protected-mode no --dir /data \
         --user default off \
         --user admin on \">$REDIS_ADMIN_PASSWORD\" '~*' '&*' '+@all' \
         --user {user} on \">$REDIS_APP_PASSWORD\" '~*' '&*' '+@all' '-@admin' '-@dangerous'"
    );
    spec.entrypoint = Some(vec!["sh".into(), "-c".into(), script]);
    spec.command = Some(vec![]);
    spec.user = Some("redis".into());
    if let Some(password) = monitor {
        // Owned by `redis`, the spec's user: private to the server.
        spec.files = vec![ContainerFile::secret(MONITOR_CONF, monitor_conf(password), 0o600)];
    }
    spec.ports = vec![Port::any(PORT)];
    spec.mounts = vec![Mount::volume("data", "/data")];
    spec.stop_timeout_ms = Some(5000);
    spec
}

/// The sidecar serving the server's statistics on port 9121: redis_exporter logged in as
/// `monitor` over the project network. Its password is in a private file owned by nobody,
/// the user it runs as: `--redis.password-file` reads a JSON map from the server's
/// address to its password. The environment holds no secret. The client name is not set
/// (`CLIENT SETNAME` is not among the user's commands).
fn exporter_spec(image: &str, server_engine_name: &str, monitor_password: &str) -> ContainerSpec {
    let addr = format!("redis://{server_engine_name}:{PORT}");
    let mut spec = exporter::exporter_spec(EXPORTER, image);
    spec.env = vec![
        EnvVar::plain("REDIS_ADDR", addr.clone()),
        EnvVar::plain("REDIS_USER", MONITOR),
        EnvVar::plain("REDIS_PASSWORD_FILE", EXPORTER_PASSWORD_FILE),
        EnvVar::plain("REDIS_EXPORTER_SET_CLIENT_NAME", "false"),
        // One scheduler thread is plenty for a scrape now and then.
        EnvVar::plain("GOMAXPROCS", "1"),
    ];
    let mut passwords = serde_json::Map::new();
    passwords.insert(addr.clone(), monitor_password.into());
    let passwords = serde_json::Value::Object(passwords).to_string();
    spec.files = vec![ContainerFile::secret(EXPORTER_PASSWORD_FILE, passwords, 0o600)];
    spec
}

/// The archive part holding the RDB snapshot.
const RDB_PART: &str = "dump.rdb";

/// `redis-cli --rdb` into a temporary file, then the file to stdout.
const BACKUP_SCRIPT: &str = r#"f=$(mktemp) || exit 1
redis-cli --no-auth-warning --user admin --rdb "$f" >&2 && cat "$f"
status=$?
rm -f "$f"
exit $status"#;

/// Stdin (an RDB file) made what the server loads at its next boot; see the module doc.
const RESTORE_SCRIPT: &str = r#"set -e
tmp=/data/restore.tmp
rm -rf "$tmp" /data/appendonlydir.old
mkdir "$tmp"
cat > "$tmp/dump.rdb"
if [ "$(head -c 5 "$tmp/dump.rdb")" != REDIS ]; then rm -rf "$tmp"; echo "the backup is not an RDB file" >&2; exit 1; fi
redis-cli --no-auth-warning --user admin CONFIG SET auto-aof-rewrite-percentage 0 >/dev/null
if [ -d /data/appendonlydir ]; then
  mkdir "$tmp/appendonlydir"
  mv "$tmp/dump.rdb" "$tmp/appendonlydir/appendonly.aof.1.base.rdb"
  : > "$tmp/appendonlydir/appendonly.aof.1.incr.aof"
  printf 'file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n' > "$tmp/appendonlydir/appendonly.aof.manifest"
  mv /data/appendonlydir /data/appendonlydir.old
  mv "$tmp/appendonlydir" /data/appendonlydir
else
  mv "$tmp/dump.rdb" /data/appendonly.aof
fi
rm -rf "$tmp""#;

/// `redis-cli` as `admin` with ARGS; the password in the environment, not in argv.
fn admin_cli(admin: &str, args: &[&str]) -> Result<ExecOutput, String> {
    let mut command = vec!["redis-cli".to_string(), "--no-auth-warning".into(), "--user".into(), "admin".into()];
    command.extend(args.iter().map(|s| s.to_string()));
    Ok(docker::exec(SERVER, &command, &admin_options(admin))?)
}

fn admin_options(admin: &str) -> ExecOptions {
    ExecOptions { env: vec![EnvVar::secret("REDISCLI_AUTH", admin)], user: None, workdir: None, stdin: None }
}

/// The value of `field` in an `INFO` answer (`field:value` lines).
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| line.trim_end().strip_prefix(field)?.strip_prefix(':'))
}

/// The server's `run_id`, new at every start; none while it does not answer.
fn run_id(admin: &str) -> Option<String> {
    let out = admin_cli(admin, &["INFO", "server"]).ok()?;
    if !out.success() {
        return None;
    }
    info_field(&out.stdout_text(), "run_id").map(str::to_string)
}

/// The keys of every database in an `INFO keyspace` answer (`db0:keys=3,expires=0,…`).
fn count_keys(info: &str) -> u64 {
    info.lines()
        .filter(|line| line.starts_with("db"))
        .filter_map(|line| line.split_once(':')?.1.split(',').find_map(|kv| kv.strip_prefix("keys="))?.trim().parse::<u64>().ok())
        .sum()
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
    const BACKUP: Option<&'static str> = Some("RDB snapshot (redis-cli --rdb)");

    fn describe() -> PluginInfo {
        PluginInfo::new("redis", env!("CARGO_PKG_VERSION"), "Redis with an ACL user for the app; the default user disabled")
            .image_and_mirrors("redis:*")
            // The metrics sidecar: upstream's, any registry's, and the offline set's
            // (named with a `-`).
            .image_and_mirrors("oliver006/redis_exporter:*")
            .image("*/redis-exporter:*")
            // `exec`: backup and restore run redis-cli in the server.
            .publish(PORT).volume("data").exec().net_probe().secrets()
            .schema(r#"{"type":"object","additionalProperties":false,"properties":{"user":{"type":"string","default":"app"},"image":{"type":"string"},"exporter_image":{"type":"string"}}}"#)
            .outputs(&["REDIS_URL"])
            .default("image", DEFAULT_IMAGE)
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
        let admin = secrets::get_or_create("admin-password", 32)?;
        let app = secrets::get_or_create("app-password", 32)?;
        let monitor = if ctx.monitored { Some(secrets::get_or_create("monitor-password", 32)?) } else { None };
        if monitor.is_none() {
            // Nothing to do when it was never started.
            gone_is_fine(docker::remove(EXPORTER))?;
        }
        progress("ensuring the server container");
        let deployment = docker::ensure(&spec(&config, &ctx, &admin, &app, monitor.as_deref()))?;
        let server = deployment.container()?;
        let addr = server.host_addr(PORT)?;
        if let Some(password) = &monitor {
            progress("ensuring the metrics exporter");
            let image = exporter::companion_image(config.exporter_image.as_deref(), &server_image(&config, &ctx), OFFLINE_EXPORTER_IMAGE, UPSTREAM_EXPORTER_IMAGE);
            docker::ensure(&exporter_spec(&image, &server.engine_name, password))?;
        }
        let in_network = format!("redis://{}:{app}@{}:{PORT}/0", config.user, ctx.service);
        Ok(vec![Output::secret("REDIS_URL", format!("redis://{}:{app}@{addr}/0", config.user)).on_network(in_network)])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let app = secrets::get_or_create("app-password", 32)?;
        probe::ready(SERVER, PORT, |addr| auth_and_ping(addr, &config.user, &app))
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        teardown(&[EXPORTER, SERVER], &["data"], keep_volumes)
    }

    fn backup(_ctx: Context) -> Result<BackupReport, String> {
        let admin = secrets::get_or_create("admin-password", 32)?;
        progress("taking an RDB snapshot");
        let command = vec!["sh".to_string(), "-c".to_string(), BACKUP_SCRIPT.to_string()];
        archive::save_exec(RDB_PART, SERVER, &command, &admin_options(&admin)).map_err(|e| format!("redis-cli --rdb: {e}"))?;
        Ok(BackupReport::new("RDB snapshot of every database (redis-cli --rdb)")
            .note("ACL users are not included: a restore keeps the target's own")
            .note("a restore needs a Redis that reads the source's RDB version (the same or a newer Redis)"))
    }

    fn data_summary(_ctx: Context) -> Result<Option<String>, String> {
        let admin = secrets::get_or_create("admin-password", 32)?;
        let out = admin_cli(&admin, &["INFO", "keyspace"])?;
        if !out.success() {
            return Err(format!("INFO keyspace failed: {}", out.stderr_text().trim()));
        }
        Ok(match count_keys(&out.stdout_text()) {
            0 => None,
            1 => Some("1 key".into()),
            n => Some(format!("{n} keys")),
        })
    }

    fn restore(_ctx: Context) -> Result<(), String> {
        let admin = secrets::get_or_create("admin-password", 32)?;
        if !archive::parts()?.iter().any(|p| p.name == RDB_PART) {
            return Err(format!("the backup has no part `{RDB_PART}` for this service"));
        }
        let before = run_id(&admin).ok_or("the server does not answer redis-cli")?;
        progress("writing the snapshot into the data volume");
        let command = vec!["sh".to_string(), "-c".to_string(), RESTORE_SCRIPT.to_string()];
        let out = archive::load_exec(RDB_PART, SERVER, &command, &admin_options(&admin))?;
        if !out.success() {
            return Err(format!("writing the snapshot failed (exit {}): {}", out.exit_code, out.stderr_text().trim()));
        }

        progress("restarting the server on the snapshot");
        // The server exits, and the exec with it: its answer tells nothing.
        let _ = admin_cli(&admin, &["SHUTDOWN", "NOSAVE"]);
        wait::until(Duration::from_secs(120), Duration::from_millis(250), || {
            let server = docker::inspect(SERVER)?;
            if server.stopped().is_some() || server.state == ContainerState::Created {
                // Not restarted by the engine: start it. Started meanwhile is fine too.
                if let Err(e) = docker::start(SERVER) {
                    debug(&format!("starting the server: {e}"));
                }
                return Err("the server is starting".into());
            }
            match run_id(&admin) {
                Some(id) if id != before => Ok(()),
                Some(_) => Err("the server has not stopped yet".into()),
                None => Err("the server is loading the snapshot".into()),
            }
        })
        .map_err(|e| format!("restarting the server after the restore: {e}"))?;
        let cleanup = ["sh", "-c", "rm -rf /data/appendonlydir.old"].map(String::from).to_vec();
        if let Err(e) = docker::exec(SERVER, &cleanup, &ExecOptions::none()) {
            warn(&format!("removing the old append-only files: {e}"));
        }
        Ok(())
    }
}

export_plugin!(Redis);

#[cfg(test)]
mod tests {
    use super::*;
    use provisioner_plugin_sdk::testing::{ctx, MockHost};
    use serde_json::json;

    fn monitored(image: Option<&str>) -> Context {
        let mut ctx = ctx("cache", json!({}));
        ctx.monitored = true;
        ctx.image_override = image.map(str::to_string);
        ctx
    }

    fn script(spec: &ContainerSpec) -> String {
        spec.entrypoint.as_ref().unwrap()[2].clone()
    }

    #[test]
    fn monitored_provision_runs_the_exporter_with_the_password_in_private_files_only() {
        let mock = MockHost::for_plugin::<Redis>();
        Redis::provision(monitored(Some("provisioner-offline/redis:7"))).unwrap();
        let password = mock.secret("monitor-password").unwrap();
        let engine = mock.container(SERVER).unwrap().engine_name;

        // The server declares the user in its private config file, read first.
        let server = mock.spec(SERVER);
        assert!(script(&server).starts_with("exec redis-server /etc/redis-monitor.conf --appendonly yes"), "{}", script(&server));
        assert_eq!(server.files.len(), 1);
        let conf = &server.files[0];
        assert_eq!((conf.path.as_str(), conf.mode, conf.secret), (MONITOR_CONF, 0o600, true));
        assert_eq!(conf.contents, format!("user monitor reset on resetpass >{password} resetkeys resetchannels -@all +info +ping\n").into_bytes());
        assert_eq!(server.user.as_deref(), Some("redis"), "the file is the server's own");
        assert!(!format!("{:?} {:?} {:?}", server.env, server.command, server.entrypoint).contains(&password));

        let spec = mock.spec(EXPORTER);
        assert_eq!(spec.image, "provisioner-offline/redis-exporter:1.45");
        let addr = format!("redis://{engine}:6379");
        assert_eq!(
            spec.env.iter().map(|e| (e.name.as_str(), e.value.as_str(), e.secret)).collect::<Vec<_>>(),
            [
                ("REDIS_ADDR", addr.as_str(), false),
                ("REDIS_USER", "monitor", false),
                ("REDIS_PASSWORD_FILE", EXPORTER_PASSWORD_FILE, false),
                ("REDIS_EXPORTER_SET_CLIENT_NAME", "false", false),
                ("GOMAXPROCS", "1", false),
            ]
        );
        assert_eq!(spec.files.len(), 1);
        let file = &spec.files[0];
        assert_eq!((file.path.as_str(), file.mode, file.secret), (EXPORTER_PASSWORD_FILE, 0o600, true));
        let map: serde_json::Value = serde_json::from_slice(&file.contents).unwrap();
        assert_eq!(map, json!({ addr: password }));
        assert_eq!(spec.user.as_deref(), Some("65534:65534"));
        let limits = spec.resources.expect("limits");
        assert!(limits.memory_mb.is_some() && limits.cpu_millis.is_some() && limits.pids.is_some());
        assert!(spec.ports.is_empty() && spec.mounts.is_empty());
        assert!(!format!("{:?} {:?} {:?}", spec.env, spec.command, spec.entrypoint).contains(&password));

        // Idempotent: the same specs again, nothing removed.
        Redis::provision(monitored(Some("provisioner-offline/redis:7"))).unwrap();
        assert_eq!(format!("{:?}", mock.spec(EXPORTER)), format!("{spec:?}"));
        assert_eq!(format!("{:?}", mock.spec(SERVER)), format!("{server:?}"));
        assert!(mock.removed().is_empty());
    }

    #[test]
    fn the_monitoring_user_may_read_stats_and_nothing_else() {
        let rules = monitor_acl("pw");
        let rules: Vec<&str> = rules.split(' ').collect();
        assert_eq!(rules, ["reset", "on", "resetpass", ">pw", "resetkeys", "resetchannels", "-@all", "+info", "+ping"]);
        assert!(!rules.iter().any(|r| r.starts_with('~') || r.starts_with('&') || r.starts_with('%') || r.starts_with("+@") || *r == "allkeys" || *r == "allcommands" || *r == "nopass"));
    }

    #[test]
    fn unmonitored_provision_removes_the_exporter_and_the_user() {
        let mock = MockHost::for_plugin::<Redis>();
        let before = spec(&Config::parse("{}").unwrap(), &ctx("cache", json!({})), "a", "b", None);
        Redis::provision(monitored(None)).unwrap();
        assert_eq!(mock.spec(EXPORTER).image, UPSTREAM_EXPORTER_IMAGE);
        let mut ctx = monitored(None);
        ctx.monitored = false;
        Redis::provision(ctx.clone()).unwrap();
        assert_eq!(mock.removed(), [EXPORTER]);
        assert_eq!(mock.containers(), [SERVER]);
        let server = mock.spec(SERVER);
        assert!(server.files.is_empty() && !script(&server).contains("monitor"));
        // As before monitoring existed: an upgrade does not replace the server.
        assert_eq!(script(&server), script(&before));
        // Again: already gone is fine.
        Redis::provision(ctx).unwrap();
        assert_eq!(mock.containers(), [SERVER]);
    }

    #[test]
    fn describe_declares_the_endpoint_and_the_exporter_images() {
        let (metrics, images) = provisioner_plugin_sdk::testing::declared_metrics_and_images::<Redis>();
        let metrics: Vec<(&str, u16, &str)> = metrics.iter().map(|(c, port, path)| (c.as_str(), *port, path.as_str())).collect();
        assert_eq!(metrics, [("exporter", 9121, "/metrics")]);
        for wanted in ["oliver006/redis_exporter:*", "*/redis_exporter:*", "*/redis-exporter:*"] {
            assert!(images.contains(&wanted.to_string()), "{images:?}");
        }
        assert!(Config::parse(r#"{"user":"monitor"}"#).is_err());
    }

    #[test]
    fn keyspace_and_info_fields() {
        assert_eq!(count_keys("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=10,expires=0,avg_ttl=0\r\n"), 13);
        assert_eq!(count_keys("# Keyspace\r\n"), 0);
        assert_eq!(info_field("# Server\r\nredis_version:7.2.4\r\nrun_id:abc\r\n", "run_id"), Some("abc"));
        assert_eq!(info_field("run_id_x:1\r\n", "run_id"), None);
    }
}
