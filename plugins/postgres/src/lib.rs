//! PostgreSQL. One server container with its data on the `data` volume; an app role
//! that owns the app's database and nothing more (no superuser, createdb,
//! createrole); ready when the app role logs in over the wire and `SELECT 1` answers.
//!
//! Works with the upstream `postgres` image (the default, `postgres:16`) and with the
//! offline image `cargo xtask images` builds from Debian packages.

mod wire;

use std::time::Duration;

use provisioner_plugin_sdk::*;
use serde::Deserialize;

const DEFAULT_IMAGE: &str = "postgres:16";
const PORT: u16 = 5432;
const SERVER: &str = "server";
const SETUP_MARKER: &str = "setup";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The app's database (default: the project name, `-` as `_`).
    database: Option<String>,
    /// The app's role (default `app`).
    #[serde(default = "default_user")]
    user: String,
    /// Image to run instead of `postgres:16` (an environment's image override wins).
    image: Option<String>,
}

fn default_user() -> String {
    "app".into()
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Config {
    fn parse(json: &str) -> Result<Config, Vec<ConfigProblem>> {
        let config: Config = parse_config(json)?;
        let mut problems = Vec::new();
        if let Some(db) = &config.database {
            if !is_identifier(db) {
                problems.push(ConfigProblem { key: "database".into(), message: format!("`{db}`: use lower-case letters, digits and _, starting with a letter or _") });
            }
        }
        if !is_identifier(&config.user) || config.user == "postgres" {
            problems.push(ConfigProblem { key: "user".into(), message: format!("`{}`: use lower-case letters, digits and _ (and not `postgres`, the admin)", config.user) });
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    fn database(&self, ctx: &Context) -> String {
        self.database.clone().unwrap_or_else(|| ctx.project.replace('-', "_"))
    }

    fn image(&self, ctx: &Context) -> String {
        ctx.image_override.clone().or_else(|| self.image.clone()).unwrap_or_else(|| DEFAULT_IMAGE.into())
    }
}

struct Credentials {
    admin: String,
    app: String,
}

fn credentials() -> Result<Credentials, String> {
    let admin = secrets::get_or_create("admin-password", 32).map_err(|e| e.to_string())?;
    let app = secrets::get_or_create("app-password", 32).map_err(|e| e.to_string())?;
    Ok(Credentials { admin, app })
}

fn spec(config: &Config, ctx: &Context, creds: &Credentials) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &config.image(ctx));
    spec.env = vec![
        EnvVar::plain("POSTGRES_USER", "postgres"),
        EnvVar::secret("POSTGRES_PASSWORD", creds.admin.clone()),
        EnvVar::plain("PGDATA", "/var/lib/postgresql/data/pgdata"),
    ];
    spec.ports = vec![Port { container_port: PORT, host_port: None }];
    spec.mounts = vec![Mount { volume: "data".into(), target: "/var/lib/postgresql/data".into(), read_only: false }];
    // PostgreSQL shuts down cleanly in well under a second; don't sit out 10 s.
    spec.stop_timeout_ms = Some(5000);
    spec
}

/// SQL that makes the app role and database exist with least privilege. Idempotent.
fn setup_sql(database: &str, user: &str, password: &str) -> String {
    format!(
        r#"\set ON_ERROR_STOP on
SELECT 'CREATE ROLE {user} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}')\gexec
ALTER ROLE {user} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '{password}';
SELECT 'CREATE DATABASE {database} OWNER {user}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')\gexec
ALTER DATABASE {database} OWNER TO {user};
REVOKE ALL ON DATABASE {database} FROM PUBLIC;
\c {database}
ALTER SCHEMA public OWNER TO {user};
"#
    )
}

fn exec(command: &[&str], stdin: Option<String>) -> Result<ExecOutput, String> {
    let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    let options = ExecOptions { env: vec![], user: Some("postgres".into()), workdir: None, stdin: stdin.map(String::into_bytes) };
    docker::exec(SERVER, &command, &options).map_err(|e| e.to_string())
}

fn address(info: &ContainerInfo) -> Result<String, String> {
    info.published(PORT).ok_or_else(|| format!("port {PORT} of the server is not published"))
}

struct Postgres;

impl Plugin for Postgres {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "postgres".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            summary: "PostgreSQL with a least-privilege app role owning the app's database".into(),
            capabilities: vec![
                Capability::Image("postgres:*".into()),
                Capability::Image("*/postgres:*".into()),
                Capability::Publish(PORT),
                Capability::Volume("data".into()),
                Capability::Exec,
                Capability::NetProbe,
                Capability::StateFiles,
                Capability::Secrets,
            ],
            config_schema: r#"{"type":"object","additionalProperties":false,"properties":{"database":{"type":"string"},"user":{"type":"string","default":"app"},"image":{"type":"string"}}}"#.into(),
            outputs: vec!["DATABASE_URL".into()],
            defaults: vec![KeyValue { key: "image".into(), value: DEFAULT_IMAGE.into() }],
        }
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(|p| p[0].message.clone())?;
        let creds = credentials()?;
        let database = config.database(&ctx);
        progress("ensuring the server container");
        let deployment = docker::ensure(&spec(&config, &ctx, &creds)).map_err(|e| e.to_string())?;
        let server = &deployment.containers[0];
        let addr = address(server)?;

        // The setup is skipped when nothing changed since it last succeeded: a warm
        // run then costs one inspect and one readiness probe.
        let marker = format!("{}:{database}:{}:{}", server.id, config.user, wire::digest(&creds.app));
        if deployment.outcome != EnsureOutcome::Unchanged || state::read(SETUP_MARKER).as_deref() != Some(marker.as_str()) {
            progress("waiting for the server to accept connections");
            // Over TCP: the image's first-start initialisation runs a temporary server
            // on the unix socket only, so this answers only once the real server is
            // up. A wire probe rather than `pg_isready` through `docker exec`: each
            // exec costs ~30 ms of CPU in the engine, taken from the services booting
            // alongside.
            wait::until_up(SERVER, Duration::from_secs(120), Duration::from_millis(50), || wire::accepts_connections(&addr))?;
            progress(&format!("creating role {} and database {database}", config.user));
            let out = exec(&["psql", "-X", "-q", "-U", "postgres", "-d", "postgres", "-f", "-"], Some(setup_sql(&database, &config.user, &creds.app)))?;
            if !out.success() {
                return Err(format!("setting up role and database failed: {}", out.stderr_text().trim()));
            }
            state::write(SETUP_MARKER, &marker)?;
        }

        let url = format!("postgres://{}:{}@{addr}/{database}", config.user, creds.app);
        let in_network = format!("postgres://{}:{}@{}:{PORT}/{database}", config.user, creds.app, ctx.service);
        Ok(vec![Output::secret("DATABASE_URL", url).on_network(in_network)])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(|p| p[0].message.clone())?;
        let creds = credentials()?;
        let server = match docker::inspect(SERVER) {
            Ok(info) => info,
            Err(e) => return Ok(Readiness::NotYet(e.to_string())),
        };
        let addr = address(&server)?;
        match wire::login_and_select_one(&addr, &config.user, &creds.app, &config.database(&ctx)) {
            Ok(()) => Ok(Readiness::Ready),
            Err(reason) => Ok(Readiness::NotYet(reason)),
        }
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        gone_is_fine(docker::remove(SERVER))?;
        state::remove(SETUP_MARKER);
        if !keep_volumes {
            gone_is_fine(docker::remove_volume("data"))?;
        }
        Ok(())
    }
}

export_plugin!(Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for (s, ok) in [("ticketing", true), ("_x1", true), ("Tick", false), ("a-b", false), ("a;drop", false), ("", false)] {
            assert_eq!(is_identifier(s), ok, "{s}");
        }
    }
}
