//! PostgreSQL. One server container with its data on the `data` volume; an app role
//! that owns the app's database and nothing more (no superuser, createdb,
//! createrole); ready when the app role logs in over the wire and `SELECT 1` answers.
//!
//! Backup is `pg_dump -Fc` of the app's database (one snapshot transaction, so it is
//! consistent while the app writes), streamed into the archive part `dump`. Restore
//! replaces the database's contents in one transaction: every schema the app role
//! owns is dropped (`public` is made again, owned by the app role), then the dump is
//! replayed with `pg_restore --no-owner --no-privileges --role=APP`, so every object
//! ends up owned by the *target's* app role; roles and passwords are not in the dump,
//! so the target's credentials stay as they are. If `pg_restore` cannot read the dump,
//! nothing is committed.
//!
//! Monitoring: while the environment is monitored (`ctx.monitored`), a role `monitor`
//! (LOGIN, a member of `pg_monitor` and of nothing else, no connection to the app's
//! database) and a sidecar `exporter` (postgres_exporter on port 9187, as nobody, limited)
//! that logs in as it with the password from a private file. When not monitored, the
//! sidecar is removed and the role dropped.
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
/// The metrics sidecar's short name.
const EXPORTER: &str = "exporter";
const EXPORTER_PORT: u16 = 9187;
/// The sidecar's image when the server's is not from the offline set.
const UPSTREAM_EXPORTER_IMAGE: &str = "prometheuscommunity/postgres-exporter:v0.11.1";
/// The offline set's exporter (Debian's 0.11.1), beside its `postgres:15`.
const OFFLINE_EXPORTER_IMAGE: &str = "postgres-exporter:0.11";
/// The monitoring-only role the exporter logs in as.
const MONITOR: &str = "monitor";
/// Where the exporter reads the role's password (`DATA_SOURCE_PASS_FILE`).
const EXPORTER_PASSWORD_FILE: &str = "/etc/postgres_exporter.password";

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
    /// The metrics sidecar's image (default: the offline set's when the server runs
    /// from it, else `prometheuscommunity/postgres-exporter:v0.11.1`).
    exporter_image: Option<String>,
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
        if !is_identifier(&config.user) || config.user == "postgres" || config.user == MONITOR {
            problems.push(ConfigProblem::new(
                "user",
                format!("`{}`: use lower-case letters, digits and _ (and not `postgres`, the admin, or `monitor`, the metrics role)", config.user),
            ));
        }
        if config.exporter_image.as_deref().is_some_and(|i| i.trim().is_empty()) {
            problems.push(ConfigProblem::new("exporter_image", "name an image, e.g. `prometheuscommunity/postgres-exporter:v0.11.1`"));
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

fn monitor_password() -> Result<String, String> {
    Ok(secrets::get_or_create("monitor-password", 32)?)
}

fn credentials() -> Result<Credentials, String> {
    Ok(Credentials { admin: secrets::get_or_create("admin-password", 32)?, app: secrets::get_or_create("app-password", 32)? })
}

fn server_image(config: &Config, ctx: &Context) -> String {
    image(ctx, config.image.as_deref().unwrap_or(DEFAULT_IMAGE))
}

fn spec(config: &Config, ctx: &Context, creds: &Credentials) -> ContainerSpec {
    let mut spec = ContainerSpec::new(SERVER, &server_image(config, ctx));
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

/// The sidecar serving the server's statistics on port 9187: postgres_exporter logged
/// in as `monitor` to the `postgres` database (never the app's) over the project
/// network. The password is a private file owned by nobody, the user it runs as; the
/// environment names the file, not the password.
fn exporter_spec(image: &str, server_engine_name: &str, monitor_password: &str) -> ContainerSpec {
    let mut spec = exporter::exporter_spec(EXPORTER, image);
    spec.env = vec![
        EnvVar::plain("DATA_SOURCE_URI", format!("{server_engine_name}:{PORT}/postgres?sslmode=disable")),
        EnvVar::plain("DATA_SOURCE_USER", MONITOR),
        EnvVar::plain("DATA_SOURCE_PASS_FILE", EXPORTER_PASSWORD_FILE),
        // One scheduler thread is plenty for a scrape now and then.
        EnvVar::plain("GOMAXPROCS", "1"),
    ];
    spec.files = vec![ContainerFile::secret(EXPORTER_PASSWORD_FILE, monitor_password, 0o600)];
    spec
}

/// SQL (appended to `setup_sql`, so connected to the app's database) that makes the
/// monitoring role exist with only `pg_monitor`'s rights: LOGIN, nothing else, a member
/// of `pg_monitor` and of no other role; a few connections at most. It cannot connect to
/// the app's database (`setup_sql` revokes CONNECT from PUBLIC there), and neither it nor
/// anyone but the owner may create in either database's `public` schema (already so on
/// PostgreSQL 15 and later). Idempotent.
fn monitor_sql(database: &str, password: &str) -> String {
    format!(
        r#"REVOKE CREATE ON SCHEMA public FROM PUBLIC;
\c postgres
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT 'CREATE ROLE {MONITOR} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{MONITOR}')\gexec
ALTER ROLE {MONITOR} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 3 PASSWORD '{password}';
REVOKE ALL ON DATABASE {database} FROM {MONITOR};
GRANT pg_monitor TO {MONITOR};
DO $$
DECLARE g name;
BEGIN
  FOR g IN SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
           WHERE m.member = '{MONITOR}'::regrole AND r.rolname <> 'pg_monitor' LOOP
    EXECUTE format('REVOKE %I FROM {MONITOR}', g);
  END LOOP;
END $$;
"#
    )
}

/// SQL (appended to `setup_sql`) that drops the monitoring role when the environment is
/// no longer monitored. It owns nothing and holds no grants but its membership.
fn unmonitor_sql() -> String {
    format!("\\c postgres\nDROP ROLE IF EXISTS {MONITOR};\n")
}

/// What the admin tools in the server run with: as the `postgres` OS user (the local
/// socket lets it in as the superuser), with the admin password in the environment
/// for an image whose local logins want one, never on a command line.
fn admin_options(admin_password: &str) -> ExecOptions {
    ExecOptions { env: vec![EnvVar::secret("PGPASSWORD", admin_password)], user: Some("postgres".into()), workdir: None, stdin: None }
}

/// The name of the archive part holding `pg_dump -Fc`'s output.
const DUMP_PART: &str = "dump";

/// Counts the user tables of the database and, exactly, their rows: `TABLES ROWS`.
const SUMMARY_SQL: &str = "SELECT count(*), coalesce(sum((xpath('/row/n/text()', \
query_to_xml(format('SELECT count(*) AS n FROM %I.%I', schemaname, relname), false, true, '')))[1]::text::bigint), 0) \
FROM pg_stat_user_tables";

/// The first statements of a restore, inside its transaction, as the superuser: drop
/// every schema the app role owns (so what the dump does not have goes too) and make
/// `public` again for it, as `setup_sql` leaves it; unlink its large objects (a dump
/// brings them back with their old OIDs). `user` is a checked identifier.
fn wipe_sql(user: &str) -> String {
    format!(
        r#"BEGIN;
DO $$
DECLARE s name;
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspowner = '{user}'::regrole AND nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
  PERFORM lo_unlink(oid) FROM pg_largeobject_metadata WHERE lomowner = '{user}'::regrole;
END $$;
CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION {user};
ALTER SCHEMA public OWNER TO {user};
"#
    )
}

/// The restore, as a shell script in the server (stdin: the dump). `pg_restore` turns
/// the dump into SQL (its own `BEGIN` … `COMMIT` around it, as `--single-transaction`
/// writes it; `SET ROLE` to the app role first), after the wipe, all into one `psql`
/// session that stops at the first error. If `pg_restore` fails, its `COMMIT` never
/// comes, `psql` ends with the transaction open and it is rolled back: nothing changes.
const RESTORE_SCRIPT: &str = r#"flag=$(mktemp)
{ printf '%s
' "$WIPE_SQL"
  pg_restore --single-transaction --no-owner --no-privileges --role="$APP_ROLE" -f - || echo failed > "$flag"
} | psql -X -q -v ON_ERROR_STOP=1 -U postgres -d "$APP_DATABASE" >/dev/null
status=$?
if [ -s "$flag" ]; then rm -f "$flag"; echo "pg_restore could not read the backup; nothing was changed" >&2; exit 1; fi
rm -f "$flag"
exit $status"#;

fn exec(command: &[&str], stdin: Option<String>) -> Result<ExecOutput, String> {
    let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    let options = ExecOptions { env: vec![], user: Some("postgres".into()), workdir: None, stdin: stdin.map(String::into_bytes) };
    Ok(docker::exec(SERVER, &command, &options)?)
}

struct Postgres;

impl Plugin for Postgres {
    const BACKUP: Option<&'static str> = Some("pg_dump (custom format)");

    fn describe() -> PluginInfo {
        PluginInfo::new("postgres", env!("CARGO_PKG_VERSION"), "PostgreSQL with a least-privilege app role owning the app's database")
            .image_and_mirrors("postgres:*")
            // The metrics sidecar: upstream's, and any registry's or the offline set's.
            .image_and_mirrors("prometheuscommunity/postgres-exporter:*")
            .publish(PORT).volume("data").exec().net_probe().state_files().secrets()
            .schema(r#"{"type":"object","additionalProperties":false,"properties":{"database":{"type":"string"},"user":{"type":"string","default":"app"},"image":{"type":"string"},"exporter_image":{"type":"string"}}}"#)
            .outputs(&["DATABASE_URL"])
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
        let creds = credentials()?;
        let database = config.database(&ctx);
        progress("ensuring the server container");
        let deployment = docker::ensure(&spec(&config, &ctx, &creds))?;
        let server = deployment.container()?;
        let monitor = if ctx.monitored { Some(monitor_password()?) } else { None };
        match &monitor {
            // Started while the server boots, rather than after: it retries its login
            // on every scrape, so the role may come a moment later.
            Some(password) => {
                progress("ensuring the metrics exporter");
                let image = exporter::companion_image(config.exporter_image.as_deref(), &server_image(&config, &ctx), OFFLINE_EXPORTER_IMAGE, UPSTREAM_EXPORTER_IMAGE);
                docker::ensure(&exporter_spec(&image, &server.engine_name, password))?;
            }
            // Before its role goes; nothing to do when it was never started.
            None => gone_is_fine(docker::remove(EXPORTER))?,
        }

        // Skipped when nothing changed since it last succeeded: a warm run then costs
        // one inspect and one readiness probe. (Unmonitored, the key is what it was
        // before monitoring existed, so an upgrade does not redo the setup.)
        let mut marker = format!("{}:{database}:{}:{}", server.id, config.user, wire::digest(&creds.app));
        if let Some(password) = &monitor {
            marker.push_str(&format!(":{MONITOR}:{}", wire::digest(password)));
        }
        state::once(SETUP_MARKER, &marker, &deployment, || {
            progress("waiting for the server to accept connections");
            // Over TCP: the image's first-start initialisation runs a temporary server
            // on the unix socket only, and a server recovering from an unclean stop
            // refuses logins, so this answers only once the real server takes them. A
            // wire probe rather than `pg_isready` through `docker exec`: each exec
            // costs the engine CPU taken from the services booting alongside.
            wait::until_port_up(server, PORT, Duration::from_secs(120), wire::accepts_logins)?;
            progress(&format!("creating role {} and database {database}", config.user));
            let mut sql = setup_sql(&database, &config.user, &creds.app);
            sql.push_str(&match &monitor {
                Some(password) => monitor_sql(&database, password),
                None => unmonitor_sql(),
            });
            let out = exec(&["psql", "-X", "-q", "-U", "postgres", "-d", "postgres", "-f", "-"], Some(sql))?;
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
        teardown(&[EXPORTER, SERVER], &["data"], keep_volumes)
    }

    fn backup(ctx: Context) -> Result<BackupReport, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let database = config.database(&ctx);
        let admin = secrets::get_or_create("admin-password", 32)?;
        progress(&format!("dumping database {database}"));
        // One snapshot transaction: consistent while the app keeps writing.
        let command: Vec<String> = ["pg_dump", "-Fc", "-U", "postgres", "-d", &database].iter().map(|s| s.to_string()).collect();
        archive::save_exec(DUMP_PART, SERVER, &command, &admin_options(&admin)).map_err(|e| format!("pg_dump of database {database}: {e}"))?;
        Ok(BackupReport::new(format!("pg_dump -Fc of database {database}"))
            .note("roles and passwords are not included: a restore keeps the target's own app role, which owns everything restored"))
    }

    fn data_summary(ctx: Context) -> Result<Option<String>, String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let database = config.database(&ctx);
        let admin = secrets::get_or_create("admin-password", 32)?;
        let command: Vec<String> =
            ["psql", "-X", "-q", "-A", "-t", "-F", " ", "-U", "postgres", "-d", &database, "-c", SUMMARY_SQL].iter().map(|s| s.to_string()).collect();
        let out = docker::exec(SERVER, &command, &admin_options(&admin))?;
        if !out.success() {
            return Err(format!("counting the tables of database {database} failed: {}", out.stderr_text().trim()));
        }
        let text = out.stdout_text();
        let counts: Vec<u64> = text.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        let [tables, rows] = counts[..] else {
            return Err(format!("counting the tables of database {database}: unexpected answer `{}`", text.trim()));
        };
        Ok(summary(tables, rows))
    }

    fn restore(ctx: Context) -> Result<(), String> {
        let config = Config::parse(&ctx.config).map_err(config_error)?;
        let database = config.database(&ctx);
        let admin = secrets::get_or_create("admin-password", 32)?;
        if !archive::parts()?.iter().any(|p| p.name == DUMP_PART) {
            return Err(format!("the backup has no part `{DUMP_PART}` for this service"));
        }
        progress(&format!("restoring database {database}"));
        let mut options = admin_options(&admin);
        options.env.push(EnvVar::plain("WIPE_SQL", wipe_sql(&config.user)));
        options.env.push(EnvVar::plain("APP_ROLE", config.user.clone()));
        options.env.push(EnvVar::plain("APP_DATABASE", database.clone()));
        // The drops' NOTICEs would bury an error.
        options.env.push(EnvVar::plain("PGOPTIONS", "-c client_min_messages=warning"));
        let command = vec!["sh".to_string(), "-c".to_string(), RESTORE_SCRIPT.to_string()];
        let out = archive::load_exec(DUMP_PART, SERVER, &command, &options)?;
        if !out.success() {
            return Err(format!("restoring database {database} failed (exit {}): {}", out.exit_code, out.stderr_text().trim()));
        }
        Ok(())
    }
}

/// `N tables, M rows`, or none for a database without tables.
fn summary(tables: u64, rows: u64) -> Option<String> {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    (tables > 0).then(|| format!("{}, {}", plural(tables, "table", "tables"), plural(rows, "row", "rows")))
}

export_plugin!(Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(summary(0, 0), None);
        assert_eq!(summary(1, 1).as_deref(), Some("1 table, 1 row"));
        assert_eq!(summary(2, 10000).as_deref(), Some("2 tables, 10000 rows"));
    }

    use provisioner_plugin_sdk::testing::{ctx, MockHost};
    use serde_json::json;

    /// PostgreSQL's AuthenticationOk: enough for `accepts_logins`.
    const AUTH_OK: &[u8] = b"R\0\0\0\x08\0\0\0\0";

    fn mock() -> MockHost {
        let mock = MockHost::for_plugin::<Postgres>();
        mock.serve(SERVER, PORT, |_| AUTH_OK.to_vec());
        mock
    }

    fn monitored(image: Option<&str>) -> Context {
        let mut ctx = ctx("db", json!({"database": "shop"}));
        ctx.monitored = true;
        ctx.image_override = image.map(str::to_string);
        ctx
    }

    /// The SQL of the last psql run in the server.
    fn last_sql(mock: &MockHost) -> String {
        let exec = mock.execs().into_iter().rev().find(|e| e.container == SERVER).expect("no exec in the server");
        String::from_utf8(exec.options.stdin.unwrap()).unwrap()
    }

    #[test]
    fn monitored_provision_runs_the_exporter_with_the_password_in_a_private_file_only() {
        let mock = mock();
        Postgres::provision(monitored(Some("provisioner-offline/postgres:15"))).unwrap();
        let password = mock.secret("monitor-password").unwrap();
        let spec = mock.spec(EXPORTER);
        assert_eq!(spec.image, "provisioner-offline/postgres-exporter:0.11");
        let engine = mock.container(SERVER).unwrap().engine_name;
        assert_eq!(
            spec.env.iter().map(|e| (e.name.as_str(), e.value.as_str(), e.secret)).collect::<Vec<_>>(),
            [
                ("DATA_SOURCE_URI", format!("{engine}:5432/postgres?sslmode=disable").as_str(), false),
                ("DATA_SOURCE_USER", "monitor", false),
                ("DATA_SOURCE_PASS_FILE", EXPORTER_PASSWORD_FILE, false),
                ("GOMAXPROCS", "1", false),
            ]
        );
        assert_eq!(spec.files.len(), 1);
        let file = &spec.files[0];
        assert_eq!((file.path.as_str(), file.contents.as_slice(), file.mode, file.secret), (EXPORTER_PASSWORD_FILE, password.as_bytes(), 0o600, true));
        assert_eq!(spec.user.as_deref(), Some("65534:65534"));
        let limits = spec.resources.expect("limits");
        assert!(limits.memory_mb.is_some() && limits.cpu_millis.is_some() && limits.pids.is_some());
        assert!(spec.ports.is_empty() && spec.mounts.is_empty(), "nothing published, no volume");
        let everywhere = format!("{:?} {:?} {:?}", spec.env, spec.command, spec.entrypoint);
        assert!(!everywhere.contains(&password), "the password is only in the file");
        // Not in the server's spec either.
        assert!(!format!("{:?}", mock.spec(SERVER)).contains(&password));

        // The role: created with the password (over stdin, not argv), pg_monitor only.
        let exec = mock.execs().into_iter().find(|e| e.container == SERVER).unwrap();
        assert!(!exec.command.concat().contains(&password) && !format!("{:?}", exec.options.env).contains(&password));
        let sql = last_sql(&mock);
        let role_sql = &sql[sql.find("\\c postgres").expect("monitor section")..];
        assert!(role_sql.contains(&format!("ALTER ROLE monitor WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 3 PASSWORD '{password}';")));
        let grants: Vec<&str> = role_sql.lines().filter(|l| l.starts_with("GRANT")).collect();
        assert_eq!(grants, ["GRANT pg_monitor TO monitor;"], "nothing but pg_monitor");
        assert!(role_sql.contains("REVOKE ALL ON DATABASE shop FROM monitor;"));
        assert!(sql.contains("REVOKE ALL ON DATABASE shop FROM PUBLIC;"), "no CONNECT on the app's database for other roles");
        assert!(sql.matches("REVOKE CREATE ON SCHEMA public FROM PUBLIC;").count() == 2, "in the app's database and in postgres");
        assert!(!sql.contains("DROP ROLE"));

        // Idempotent: a second run changes nothing and runs no SQL.
        let execs = mock.execs().len();
        Postgres::provision(monitored(Some("provisioner-offline/postgres:15"))).unwrap();
        assert_eq!(mock.execs().len(), execs, "a warm run skips the setup");
        assert_eq!(format!("{:?}", mock.spec(EXPORTER)), format!("{spec:?}"));
        assert!(mock.removed().is_empty());
    }

    #[test]
    fn unmonitored_provision_removes_the_exporter_and_drops_the_role() {
        let mock = mock();
        Postgres::provision(monitored(None)).unwrap();
        assert_eq!(mock.spec(EXPORTER).image, UPSTREAM_EXPORTER_IMAGE);
        assert!(mock.containers().contains(&EXPORTER.to_string()));

        let mut ctx = monitored(None);
        ctx.monitored = false;
        Postgres::provision(ctx.clone()).unwrap();
        assert_eq!(mock.removed(), [EXPORTER]);
        assert_eq!(mock.containers(), [SERVER]);
        let sql = last_sql(&mock);
        assert!(sql.ends_with("\\c postgres\nDROP ROLE IF EXISTS monitor;\n"), "{sql}");
        assert!(!sql.contains("CREATE ROLE monitor"));

        // Again: the exporter already gone is fine, and the setup is not redone.
        let execs = mock.execs().len();
        Postgres::provision(ctx).unwrap();
        assert_eq!(mock.execs().len(), execs);
        assert_eq!(mock.containers(), [SERVER]);
    }

    #[test]
    fn never_monitored_keeps_the_setup_as_it_was() {
        let mock = mock();
        let ctx = ctx("db", json!({}));
        Postgres::provision(ctx).unwrap();
        assert!(mock.ensured().iter().all(|s| s.name == SERVER), "no exporter");
        assert!(mock.secret("monitor-password").is_none(), "no monitoring secret made");
        let server = mock.container(SERVER).unwrap();
        // The marker reads as before monitoring existed: an upgrade does not redo the setup.
        assert_eq!(mock.state_file(SETUP_MARKER).unwrap(), format!("{}:test:app:{}", server.id, wire::digest(&mock.secret("app-password").unwrap())));
    }

    #[test]
    fn describe_declares_the_endpoint_and_the_exporter_images() {
        let (metrics, images) = provisioner_plugin_sdk::testing::declared_metrics_and_images::<Postgres>();
        let metrics: Vec<(&str, u16, &str)> = metrics.iter().map(|(c, port, path)| (c.as_str(), *port, path.as_str())).collect();
        assert_eq!(metrics, [("exporter", 9187, "/metrics")]);
        assert!(images.contains(&"prometheuscommunity/postgres-exporter:*".to_string()), "{images:?}");
        assert!(images.contains(&"*/postgres-exporter:*".to_string()), "{images:?}");
    }

    #[test]
    fn the_app_user_cannot_take_the_monitoring_role_name() {
        assert!(Config::parse(r#"{"user":"monitor"}"#).is_err());
    }

    #[test]
    fn identifiers() {
        for (s, ok) in [("ticketing", true), ("_x1", true), ("Tick", false), ("a-b", false), ("a;drop", false), ("", false)] {
            assert_eq!(is_identifier(s), ok, "{s}");
        }
    }
}
