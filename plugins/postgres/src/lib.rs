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
                problems.push(ConfigProblem::new("database", format!("`{db}`: use lower-case letters, digits and _, starting with a letter or _")));
            }
        }
        if !is_identifier(&config.user) || config.user == "postgres" {
            problems.push(ConfigProblem::new("user", format!("`{}`: use lower-case letters, digits and _ (and not `postgres`, the admin)", config.user)));
        }
        no_problems(config, problems)
    }

    fn database(&self, ctx: &Context) -> String {
        self.database.clone().unwrap_or_else(|| ctx.project.replace('-', "_"))
    }
}

struct Credentials {
    admin: String,
    app: String,
}

fn credentials() -> Result<Credentials, String> {
    Ok(Credentials { admin: secrets::get_or_create("admin-password", 32)?, app: secrets::get_or_create("app-password", 32)? })
}

fn spec(config: &Config, ctx: &Context, creds: &Credentials) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE)));
    spec.env = vec![
        EnvVar::plain("POSTGRES_USER", "postgres"),
        EnvVar::secret("POSTGRES_PASSWORD", creds.admin.clone()),
        EnvVar::plain("PGDATA", "/var/lib/postgresql/data/pgdata"),
    ];
    spec.ports = vec![Port::any(PORT)];
    spec.mounts = vec![Mount::volume("data", "/var/lib/postgresql/data")];
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
    Ok(docker::exec(SERVER, &command, &options)?)
}

struct Postgres;

impl Plugin for Postgres {
    fn describe() -> PluginInfo {
        PluginInfo::new("postgres", env!("CARGO_PKG_VERSION"), "PostgreSQL with a least-privilege app role owning the app's database")
            .image_and_mirrors("postgres:*")
            .publish(PORT).volume("data").exec().net_probe().state_files().secrets()
            .schema(r#"{"type":"object","additionalProperties":false,"properties":{"database":{"type":"string"},"user":{"type":"string","default":"app"},"image":{"type":"string"}}}"#)
            .outputs(&["DATABASE_URL"])
            .default("image", DEFAULT_IMAGE)
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        Config::parse(&config).map(|_| ())
    }

    fn provision(ctx: Context) -> Result<Vec<Output>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let creds = credentials()?;
        let database = config.database(&ctx);
        progress("ensuring the server container");
        let deployment = docker::ensure(&spec(&config, &ctx, &creds))?;
        let server = deployment.container()?;

        // Skipped when nothing changed since it last succeeded: a warm run then costs
        // one inspect and one readiness probe.
        let marker = format!("{}:{database}:{}:{}", server.id, config.user, wire::digest(&creds.app));
        state::once(SETUP_MARKER, &marker, &deployment, || {
            progress("waiting for the server to accept connections");
            // Over TCP: the image's first-start initialisation runs a temporary server
            // on the unix socket only, and a server recovering from an unclean stop
            // refuses logins, so this answers only once the real server takes them. A
            // wire probe rather than `pg_isready` through `docker exec`: each exec
            // costs the engine CPU taken from the services booting alongside.
            wait::until_port_up(server, PORT, Duration::from_secs(120), wire::accepts_logins)?;
            progress(&format!("creating role {} and database {database}", config.user));
            let out = exec(&["psql", "-X", "-q", "-U", "postgres", "-d", "postgres", "-f", "-"], Some(setup_sql(&database, &config.user, &creds.app)))?;
            if !out.success() {
                return Err(format!("setting up role and database failed: {}", out.stderr_text().trim()));
            }
            Ok(())
        })?;
        // After the wait: a server that exits at once publishes nothing, and the wait says why.
        let addr = server.host_addr(PORT)?;

        let url = format!("postgres://{}:{}@{addr}/{database}", config.user, creds.app);
        let in_network = format!("postgres://{}:{}@{}:{PORT}/{database}", config.user, creds.app, ctx.service);
        Ok(vec![Output::secret("DATABASE_URL", url).on_network(in_network)])
    }

    fn ready(ctx: Context) -> Result<Readiness, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let app = secrets::get_or_create("app-password", 32)?;
        probe::ready(SERVER, PORT, |addr| wire::login_and_select_one(addr, &config.user, &app, &config.database(&ctx)))
    }

    fn teardown(_ctx: Context, keep_volumes: bool) -> Result<(), String> {
        state::remove(SETUP_MARKER);
        teardown(&[SERVER], &["data"], keep_volumes)
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
