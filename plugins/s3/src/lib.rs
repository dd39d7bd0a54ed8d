//! S3 object storage, served by Garage. One single-node server container with its
//! metadata on the `meta` volume and its objects on the `data` volume; an `app` access
//! key that may read and write the configured buckets and nothing more (not own them —
//! no deleting them or changing their website or quotas —, not create buckets, not
//! reach any other bucket); the RPC secret and admin token stay with the plugin (its
//! secrets and the server's config file) and the admin API is not published. Ready
//! when the app's key lists the first bucket over the published S3 port (a SigV4-signed
//! `ListObjectsV2`) and the server answers 200.
//!
//! Monitoring: Garage's admin API (port 3903, on the project network, not published)
//! serves `/metrics` without a token as long as the config sets neither `metrics_token`
//! nor `metrics_require_token` (Garage 2.x's `garage_api_admin`: the metrics endpoint
//! asks for a token only then), while every other admin endpoint still needs the admin
//! token, which stays with the plugin. So a collector scrapes `server:3903/metrics`
//! with no credential and no admin right, and the config is the same whether the
//! environment is monitored or not: nothing to start or remove.
//!
//! Why Garage: MinIO's community images were discontinued in 2025; Garage
//! (`dxflrs/garage`, Rust) is maintained and grants each access key its own
//! permissions on each bucket, which least privilege needs.
//!
//! Works with the upstream `dxflrs/garage` image (the default, `dxflrs/garage:v2.5.0`)
//! and with the offline image `cargo xtask images` builds from the crates.io release.
//! Both are the bare binary (upstream's is `FROM scratch`: no shell), so the server's
//! configuration is a file placed before the first start, and all setup runs
//! `/garage` itself. Needs Garage 2.x: the setup reads the layout and the key's
//! permissions, and imports the key, through `garage json-api`, which 1.x lacks.

mod backup;
mod wire;

use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const DEFAULT_IMAGE: &str = "dxflrs/garage:v2.5.0";
const PORT: u16 = 3900;
const SERVER: &str = "server";
const CONFIG_PATH: &str = "/etc/garage.toml";
const KEY_NAME: &str = "app";
const SETUP_MARKER: &str = "setup";
/// The admin API's port, which serves `/metrics` (tokenless, see the module doc).
const ADMIN_PORT: u16 = 3903;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The app's buckets; the first one is `S3_BUCKET`.
    buckets: Vec<String>,
    /// The region clients sign for (default `garage`, Garage's own default).
    #[serde(default = "default_region")]
    region: String,
    /// Image to run instead of `dxflrs/garage:v2.5.0` (an environment's image override wins).
    image: Option<String>,
}

fn default_region() -> String {
    "garage".into()
}

/// S3's bucket naming rules, as Garage applies them.
fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && !s.starts_with(['.', '-'])
        && !s.ends_with(['.', '-'])
        && !s.contains("..")
        && s.parse::<std::net::IpAddr>().is_err()
        && !s.starts_with("xn--")
        && !s.ends_with("-s3alias")
}

impl Config {
    fn parse(json: &str) -> Result<Config, Vec<ConfigProblem>> {
        let config: Config = parse_config(json)?;
        let mut problems = Vec::new();
        if config.buckets.is_empty() {
            problems.push(ConfigProblem::new("buckets", "name at least one bucket, e.g. `buckets = [\"uploads\"]`"));
        }
        for (i, name) in config.buckets.iter().enumerate() {
            if !is_bucket_name(name) {
                problems.push(ConfigProblem::new(
                    format!("buckets.{i}"),
                    format!("`{name}`: use 3 to 63 lower-case letters, digits, . and -, starting and ending with a letter or digit (S3's bucket naming rules)"),
                ));
            } else if config.buckets[..i].contains(name) {
                problems.push(ConfigProblem::new(format!("buckets.{i}"), format!("`{name}` is listed twice")));
            }
        }
        // The region goes into the server's TOML and into every signature: keep it plain.
        let region_ok = !config.region.is_empty()
            && config.region.len() <= 32
            && config.region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !region_ok {
            problems.push(ConfigProblem::new("region", format!("`{}`: use lower-case letters, digits, - and _", config.region)));
        }
        no_problems(config, problems)
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn secret(name: &str) -> Result<String, String> {
    Ok(secrets::get_or_create(name, 64)?)
}

/// The app's access key. Garage's own keys are `GK` + 24 hex digits with a 64-digit
/// hex secret; the stored secrets are alphanumeric, so they are hashed into that shape
/// (stable, since the stored secrets are) and clients that check the format accept them.
struct AppKey {
    id: String,
    secret: String,
}

fn app_key() -> Result<AppKey, String> {
    let id = sha256_hex(&secret("app-key-id")?);
    Ok(AppKey { id: format!("GK{}", &id[..24]), secret: sha256_hex(&secret("app-secret-key")?) })
}

/// `rpc_secret` must be 32 bytes in hex; the admin token may be any string.
fn server_config(config: &Config) -> Result<String, String> {
    let rpc_secret = sha256_hex(&secret("rpc-secret")?);
    let admin_token = secret("admin-token")?;
    let region = &config.region;
    // SQLite rather than Garage's default LMDB: Garage's docs warn that an unclean
    // stop can corrupt an LMDB database, and a development server gets killed now and
    // then; a development store does not need LMDB's speed.
    Ok(format!(
        r#"metadata_dir = "/var/lib/garage/meta"
data_dir = "/var/lib/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "[::]:3901"
rpc_secret = "{rpc_secret}"

[s3_api]
api_bind_addr = "[::]:{PORT}"
s3_region = "{region}"

[admin]
api_bind_addr = "[::]:{ADMIN_PORT}"
admin_token = "{admin_token}"
"#
    ))
}

fn spec(config: &Config, ctx: &Context) -> Result<ContainerSpec, String> {
    let mut spec = ContainerSpec::new(SERVER, &image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE)));
    // The image's own command (`/garage server`) reads this path.
    spec.files = vec![ContainerFile::secret(CONFIG_PATH, server_config(config)?, 0o600)];
    // Its log is read as plain text (`docker logs`, the host's failure report).
    spec.env = vec![EnvVar::plain("NO_COLOR", "1")];
    spec.ports = vec![Port::any(PORT)];
    spec.mounts = vec![Mount::volume("meta", "/var/lib/garage/meta"), Mount::volume("data", "/var/lib/garage/data")];
    // Garage stops in well under a second; don't sit out 10 s.
    spec.stop_timeout_ms = Some(5000);
    Ok(spec)
}

/// Run `/garage ARGS` in the server, `stdin` fed to it.
fn garage(args: &[&str], stdin: Option<String>) -> Result<ExecOutput, String> {
    let mut command = vec!["/garage".to_string()];
    command.extend(args.iter().map(|s| s.to_string()));
    // The image's RUST_LOG makes the CLI log at info level; warnings only, so that
    // stderr is the error when a command fails.
    let options = ExecOptions {
        env: vec![EnvVar::plain("RUST_LOG", "garage=warn")],
        user: None,
        workdir: None,
        stdin: stdin.map(String::into_bytes),
    };
    Ok(docker::exec(SERVER, &command, &options)?)
}

/// The gist of a failed command: its stderr (the CLI prints `Error: …` there).
fn failure(what: &str, out: &ExecOutput) -> String {
    let stderr = out.stderr_text();
    let text = stderr.trim();
    let text = if text.is_empty() { out.stdout_text() } else { text.to_string() };
    format!("{what} failed (exit {}): {}", out.exit_code, text.trim())
}

/// `/garage ARGS`, which must succeed; its standard output.
fn garage_ok(what: &str, args: &[&str], stdin: Option<String>) -> Result<String, String> {
    let out = garage(args, stdin)?;
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(failure(what, &out))
    }
}

/// `/garage ARGS` creating something; it existing already is fine.
fn garage_create(what: &str, args: &[&str], stdin: Option<String>) -> Result<(), String> {
    let out = garage(args, stdin)?;
    if out.success() || out.stderr_text().contains("already exists") {
        Ok(())
    } else {
        Err(failure(what, &out))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterStatus {
    layout_version: u64,
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    role: Option<serde_json::Value>,
}

/// Give this node a storage role unless it has one: a fresh Garage stores nothing
/// until the cluster layout says where data goes. Kept volumes keep the layout.
fn ensure_layout() -> Result<(), String> {
    let status = garage_ok("reading the cluster status", &["json-api", "GetClusterStatus"], None)?;
    let status: ClusterStatus = serde_json::from_str(&status).map_err(|e| format!("reading the cluster status: {e}"))?;
    // A single-node cluster: the only node is this server.
    let [node] = status.nodes.as_slice() else {
        return Err(format!("expected one node in the cluster, found {}", status.nodes.len()));
    };
    if node.role.is_some() {
        return Ok(());
    }
    progress("assigning the node its storage role");
    // With one node the capacity only weighs it against no one: it caps nothing.
    garage_ok("garage layout assign", &["layout", "assign", "-z", "dc1", "-c", "1G", &node.id], None)?;
    let version = (status.layout_version + 1).to_string();
    garage_ok("garage layout apply", &["layout", "apply", "--version", &version], None)?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyInfo {
    buckets: Vec<KeyBucket>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyBucket {
    id: String,
    global_aliases: Vec<String>,
    permissions: Permissions,
}

#[derive(Deserialize)]
struct Permissions {
    #[serde(default)]
    owner: bool,
}

/// Buckets, the app key, and the key's permissions: read and write on each configured
/// bucket, nothing on any other. Idempotent.
fn setup(buckets: &[String], key: &AppKey) -> Result<(), String> {
    for bucket in buckets {
        progress(&format!("creating bucket {bucket}"));
        garage_create(&format!("creating bucket {bucket}"), &["bucket", "create", bucket], None)?;
    }

    progress("importing the app's access key");
    // Through the JSON API on stdin, so the secret is never on a command line.
    let import = serde_json::json!({ "accessKeyId": key.id, "secretAccessKey": key.secret, "name": KEY_NAME });
    garage_create("importing the app's access key", &["json-api", "ImportKey", "-"], Some(import.to_string()))?;

    for bucket in buckets {
        progress(&format!("allowing the app's key on bucket {bucket}"));
        garage_ok(
            &format!("allowing the app's key on bucket {bucket}"),
            &["bucket", "allow", "--read", "--write", bucket, "--key", &key.id],
            None,
        )?;
    }

    // Whatever else the key can reach (a bucket since dropped from the config, owner
    // rights granted by hand) is taken back; the buckets themselves and their objects
    // are left alone.
    let request = serde_json::json!({ "id": key.id }).to_string();
    let info = garage_ok("reading the app key's permissions", &["json-api", "GetKeyInfo", "-"], Some(request))?;
    let info: KeyInfo = serde_json::from_str(&info).map_err(|e| format!("reading the app key's permissions: {e}"))?;
    for bucket in info.buckets {
        let configured = bucket.global_aliases.iter().any(|a| buckets.contains(a));
        if configured && !bucket.permissions.owner {
            continue;
        }
        let name = bucket.global_aliases.first().cloned().unwrap_or_else(|| bucket.id.clone());
        progress(&format!("revoking the app key's extra rights on bucket {name}"));
        let deny = serde_json::json!({
            "bucketId": bucket.id,
            "accessKeyId": key.id,
            "permissions": { "read": !configured, "write": !configured, "owner": true },
        });
        garage_ok(
            &format!("revoking the app key's rights on bucket {name}"),
            &["json-api", "DenyBucketKey", "-"],
            Some(deny.to_string()),
        )?;
    }
    Ok(())
}

/// The app's client on the server's published S3 port.
fn client(config: &Config) -> Result<wire::Client, String> {
    let key = app_key()?;
    let addr = docker::inspect(SERVER)?.host_addr(PORT)?;
    wire::Client::new(&addr, &config.region, &key.id, &key.secret)
}

struct S3;

impl Plugin for S3 {
    const BACKUP: Option<&'static str> = Some("every object of the configured buckets, with content type and user metadata (S3 API)");

    fn describe() -> PluginInfo {
        PluginInfo::new("s3", env!("CARGO_PKG_VERSION"), "S3 object storage (Garage) with an access key allowed on the app's buckets only")
            .image_and_mirrors("dxflrs/garage:*")
            .publish(PORT).volume("data").volume("meta").exec().net_probe().state_files().secrets()
            .schema(r#"{"type":"object","additionalProperties":false,"required":["buckets"],"properties":{"buckets":{"type":"array","minItems":1,"items":{"type":"string","pattern":"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"}},"region":{"type":"string","default":"garage"},"image":{"type":"string"}}}"#)
            .outputs(&["S3_ENDPOINT", "S3_REGION", "S3_BUCKET", "S3_BUCKETS", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"])
            .default("image", DEFAULT_IMAGE)
            .default("region", default_region())
    }

    fn metrics() -> Vec<MetricsEndpoint> {
        vec![MetricsEndpoint::new(SERVER, ADMIN_PORT, "/metrics")]
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let key = app_key()?;
        progress("ensuring the server container");
        let deployment = docker::ensure(&spec(&config, &ctx)?)?;
        let server = deployment.container()?;

        // Skipped when nothing changed since it last succeeded: a warm run then costs
        // one inspect and one readiness probe.
        let marker = format!("{}:{}:{}:{}", server.id, config.buckets.join(","), key.id, wire::digest(&key.secret));
        state::once(SETUP_MARKER, &marker, &deployment, || {
            progress("waiting for the server to answer");
            // On the S3 port, which opens after the RPC port the CLI uses. An HTTP probe
            // rather than `garage status` through `docker exec`: each exec costs the
            // engine CPU taken from the services booting alongside. Any answer will do:
            // it refuses anonymous requests with 403.
            wait::until_port_up(server, PORT, Duration::from_secs(60), |addr| probe::http_status(addr, "/", Duration::from_secs(2)).map(|_| ()))?;
            ensure_layout()?;
            setup(&config.buckets, &key)
        })?;
        // After the wait: a server that exits at once publishes nothing, and the wait says why.
        let addr = server.host_addr(PORT)?;

        let mut outputs = vec![
            Output::plain("S3_ENDPOINT", format!("http://{addr}")).on_network(format!("http://{}:{PORT}", ctx.service)),
            Output::plain("S3_REGION", config.region.clone()),
            Output::plain("S3_BUCKET", config.buckets[0].clone()),
        ];
        if config.buckets.len() > 1 {
            outputs.push(Output::plain("S3_BUCKETS", config.buckets.join(",")));
        }
        outputs.push(Output::secret("S3_ACCESS_KEY_ID", key.id));
        outputs.push(Output::secret("S3_SECRET_ACCESS_KEY", key.secret));
        Ok(outputs)
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let key = app_key()?;
        probe::ready(SERVER, PORT, |addr| wire::list_one_object(addr, &config.region, &config.buckets[0], &key.id, &key.secret))
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        state::remove(SETUP_MARKER);
        teardown(&[SERVER], &["meta", "data"], keep_volumes)
    }

    fn backup(ctx: Context) -> Result<BackupReport, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let client = client(&config)?;
        let (objects, bytes, vanished) = backup::backup(&client, &config.buckets)?;
        let mut report = BackupReport::new(format!(
            "{objects} objects ({}) of bucket{} {} over the S3 API, with content type and user metadata",
            backup::bytes(bytes),
            if config.buckets.len() == 1 { "" } else { "s" },
            config.buckets.join(", ")
        ))
        .note("objects written during the backup may or may not be included (S3 has no snapshot)")
        .note("ETags, modification times, versions, tags and ACLs are not kept");
        if vanished > 0 {
            report = report.note(format!("{vanished} listed objects were deleted before they could be read"));
        }
        Ok(report)
    }

    fn data_summary(ctx: Context) -> Result<Option<String>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let (objects, bytes) = backup::count(&client(&config)?, &config.buckets)?;
        Ok(match objects {
            0 => None,
            1 => Some(format!("1 object, {}", backup::bytes(bytes))),
            n => Some(format!("{n} objects, {}", backup::bytes(bytes))),
        })
    }

    fn restore(ctx: Context) -> Result<(), String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let done = backup::restore(&client(&config)?, &config.buckets)?;
        info(&format!(
            "restored {} objects ({}); deleted {} objects not in the backup",
            done.objects,
            backup::bytes(done.bytes),
            done.deleted
        ));
        if done.skipped > 0 {
            warn(&format!("{} objects of buckets this service does not configure were not restored", done.skipped));
        }
        Ok(())
    }
}

export_plugin!(S3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for (s, ok) in [
            ("attachments", true),
            ("my.bucket-1", true),
            ("ab", false),
            ("Uploads", false),
            ("-x-", false),
            ("a..b", false),
            ("192.168.0.1", false),
            ("xn--abc", false),
            ("files-s3alias", false),
            ("under_score", false),
        ] {
            assert_eq!(is_bucket_name(s), ok, "{s}");
        }
    }

    use provisioner_plugin_sdk::testing::{ctx, MockHost};

    #[test]
    fn metrics_need_no_token_and_monitoring_changes_nothing() {
        let _mock = MockHost::for_plugin::<S3>();
        let config = Config::parse(r#"{"buckets":["uploads"]}"#).unwrap();
        let mut context = ctx("files", serde_json::json!({"buckets": ["uploads"]}));
        let unmonitored = spec(&config, &context).unwrap();
        context.monitored = true;
        let monitored = spec(&config, &context).unwrap();
        assert_eq!(format!("{monitored:?}"), format!("{unmonitored:?}"), "the same server either way");
        let toml = server_config(&config).unwrap();
        // Garage asks for a token on /metrics only with one of these set.
        assert!(!toml.contains("metrics_token") && !toml.contains("metrics_require_token"), "{toml}");
        assert!(toml.contains("[admin]\napi_bind_addr = \"[::]:3903\"\nadmin_token = "), "{toml}");
        assert!(monitored.ports.iter().all(|p| p.container_port != ADMIN_PORT), "the admin API is not published");
    }

    #[test]
    fn describe_declares_the_endpoint() {
        let info = provisioner_plugin_sdk::__private::describe::<S3>();
        let metrics: Vec<(&str, u16, &str)> = info.metrics.iter().map(|m| (m.container.as_str(), m.port, m.path.as_str())).collect();
        assert_eq!(metrics, [("server", 3903, "/metrics")]);
    }

    #[test]
    fn problems_name_the_key() {
        let problems = Config::parse(r#"{"buckets":["ok-one","Bad"]}"#).err().unwrap_or_default();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "buckets.1");
        let problems = Config::parse(r#"{"buckets":[]}"#).err().unwrap_or_default();
        assert_eq!(problems[0].key, "buckets");
        let problems = Config::parse(r#"{"buckets":["a1b"],"bukets":[]}"#).err().unwrap_or_default();
        assert_eq!(problems.len(), 1);
        assert!(Config::parse(r#"{"buckets":["a1b","a1b"]}"#).is_err());
        assert!(Config::parse(r#"{"buckets":["a1b"],"region":"us-east-1"}"#).is_ok());
    }
}
