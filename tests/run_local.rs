//! `provisioner run local` end to end: the real binary, the real first-party plugins
//! compiled to wasm (`cargo xtask plugins`), a real Docker engine and real PostgreSQL
//! and Redis servers (the offline images of `cargo xtask images`). Every test uses its
//! own project name and removes what it made.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const POSTGRES_IMAGE: &str = "provisioner-offline/postgres:15";
const REDIS_IMAGE: &str = "provisioner-offline/redis:7";

fn provisioner(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(args)
        .current_dir(dir)
        .env_remove("PROVISIONER_PLUGIN_PATH")
        .output()
        .expect("running provisioner")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("running docker");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Everything on the engine labelled for `project`, as "kind name" lines.
fn labelled(project: &str) -> Vec<String> {
    let filter = format!("label=provisioner.project={project}");
    let mut all = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-a", "--format", "{{.Names}}", "--filter", filter.as_str()]),
        ("volume", vec!["volume", "ls", "-q", "--filter", filter.as_str()]),
        ("network", vec!["network", "ls", "--format", "{{.Name}}", "--filter", filter.as_str()]),
    ] {
        all.extend(docker(&args).lines().filter(|l| !l.is_empty()).map(|l| format!("{kind} {l}")));
    }
    all
}

/// A project folder whose stack is torn down (volumes included) when dropped.
struct Stack {
    dir: tempfile::TempDir,
    name: String,
}

/// What these tests need beyond the test build; `cargo xtask test` provides all of it.
fn require_prerequisites() {
    for plugin in ["postgres", "redis"] {
        let path = support::root().join("target/plugins").join(format!("{plugin}.wasm"));
        assert!(path.is_file(), "{} is missing: run `cargo xtask plugins` (or `cargo xtask test`)", path.display());
    }
    for image in [POSTGRES_IMAGE, REDIS_IMAGE] {
        let out = Command::new("docker").args(["image", "inspect", image]).output();
        assert!(
            out.is_ok_and(|o| o.status.success()),
            "image {image} is missing or Docker is not running: run `cargo xtask images` (or `cargo xtask test`)"
        );
    }
}

impl Stack {
    fn new(prefix: &str, services: &str) -> Stack {
        require_prerequisites();
        let name = support::unique_name(prefix);
        // The offline images stand in for the upstream ones for the services present.
        let mut images = Vec::new();
        for (service, image) in [("db", POSTGRES_IMAGE), ("cache", REDIS_IMAGE)] {
            if services.contains(&format!("[services.{service}]")) {
                images.push(format!("{service} = \"{image}\""));
            }
        }
        let toml = format!(
            "[project]\nname = \"{name}\"\n\n[environments.local]\nimages = {{ {} }}\n\n{services}",
            images.join(", ")
        );
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("provisioner.toml"), toml).unwrap();
        Stack { dir, name }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        provisioner(self.path(), args)
    }

    fn dotenv(&self) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(self.path().join(".env")).expect(".env written");
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    }

    fn container_ids(&self) -> String {
        docker(&["ps", "-q", "--no-trunc", "--filter", &format!("label=provisioner.project={}", self.name)])
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.run(&["teardown", "local"]);
        // Backstop, in case the teardown itself is what failed.
        let filter = format!("label=provisioner.project={}", self.name);
        for (list, remove) in [
            (vec!["ps", "-aq", "--filter", filter.as_str()], vec!["rm", "-f"]),
            (vec!["volume", "ls", "-q", "--filter", filter.as_str()], vec!["volume", "rm", "-f"]),
            (vec!["network", "ls", "-q", "--filter", filter.as_str()], vec!["network", "rm"]),
        ] {
            if let Ok(out) = Command::new("docker").args(&list).output() {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("docker").args(&remove).arg(id).output();
                }
            }
        }
    }
}

const DB_AND_CACHE: &str = "[services.db]\nplugin = \"postgres\"\nconfig = { database = \"shop\" }\n\n[services.cache]\nplugin = \"redis\"\n";

fn secrets_of(dir: &Path) -> Vec<String> {
    let secrets = dir.join(".provisioner/local/secrets");
    let mut values = Vec::new();
    for entry in std::fs::read_dir(secrets).expect("secrets folder") {
        let map: BTreeMap<String, String> = serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        values.extend(map.into_values());
    }
    values
}

#[test]
fn postgres_and_redis_up_least_privileged_idempotent_and_kept_across_teardown() {
    let stack = Stack::new("pgredis", DB_AND_CACHE);
    let first = stack.run(&["run", "local", "-v"]);
    assert!(first.status.success(), "run failed:\n{}", text(&first));

    let env = stack.dotenv();
    let database_url = env.get("DATABASE_URL").expect("DATABASE_URL in .env").clone();
    let redis_url = env.get("REDIS_URL").expect("REDIS_URL in .env").clone();
    assert!(database_url.starts_with("postgres://app:") && database_url.contains("@127.0.0.1:"), "{database_url}");

    // Secrets are in .env and the 0600 secrets folder, never on the terminal.
    let secrets = secrets_of(stack.path());
    assert!(secrets.len() >= 4, "admin and app passwords of both services");
    let shown = text(&first);
    for secret in &secrets {
        assert!(!shown.contains(secret.as_str()), "a secret was printed:\n{shown}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(stack.path().join(".env")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(stack.path().join(".gitignore")).unwrap().lines().any(|l| l == ".env"));

    // SQL round trip as the app role, which cannot create roles or databases.
    let mut pg = postgres::Client::connect(&database_url, postgres::NoTls).expect("app role logs in");
    pg.batch_execute("CREATE TABLE tickets (id serial PRIMARY KEY, title text); INSERT INTO tickets (title) VALUES ('kept')")
        .expect("the app owns its database");
    let title: String = pg.query_one("SELECT title FROM tickets", &[]).unwrap().get(0);
    assert_eq!(title, "kept");
    for forbidden in ["CREATE ROLE intruder", "CREATE DATABASE other", "ALTER ROLE app SUPERUSER"] {
        let err = pg.batch_execute(forbidden).expect_err(forbidden);
        let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_else(|| err.to_string());
        assert!(message.contains("permission denied") || message.contains("must be"), "{forbidden}: {message}");
    }
    drop(pg);

    // Redis round trip as the ACL user; the default user is refused.
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = client.get_connection().expect("app user authenticates");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut conn).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    assert_eq!(v, "v");
    let flush: redis::RedisResult<()> = redis::cmd("FLUSHALL").query(&mut conn);
    assert!(flush.is_err(), "the app user may not run dangerous commands");
    let port = redis_url.rsplit_once(':').unwrap().1.trim_end_matches("/0");
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let ping: redis::RedisResult<String> = anonymous.get_connection().and_then(|mut c| redis::cmd("PING").query(&mut c));
    assert!(ping.is_err(), "the default user must be refused, got {ping:?}");

    // A second run changes nothing.
    let ids = stack.container_ids();
    assert_eq!(ids.lines().count(), 2, "{ids}");
    let second = stack.run(&["run", "local"]);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(stack.container_ids(), ids, "containers were recreated by a no-op run");
    let plan = stack.run(&["plan", "local"]);
    assert!(text(&plan).contains("0 change(s)"), "{}", text(&plan));
    let status = stack.run(&["status", "local", "--json"]);
    assert!(status.status.success(), "{}", text(&status));

    // Keep the volumes across a teardown: the row survives.
    let down = stack.run(&["teardown", "local", "--keep-volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(labelled(&stack.name).iter().all(|r| r.starts_with("volume ")), "{:?}", labelled(&stack.name));
    let again = stack.run(&["run", "local"]);
    assert!(again.status.success(), "{}", text(&again));
    let mut pg = postgres::Client::connect(&stack.dotenv()["DATABASE_URL"], postgres::NoTls).expect("same password");
    let title: String = pg.query_one("SELECT title FROM tickets", &[]).unwrap().get(0);
    assert_eq!(title, "kept");
    drop(pg);

    // A full teardown leaves nothing labelled for the project.
    let gone = stack.run(&["teardown", "local"]);
    assert!(gone.status.success(), "{}", text(&gone));
    assert_eq!(labelled(&stack.name), Vec::<String>::new());
}

#[test]
fn a_container_removed_by_hand_is_recreated() {
    let stack = Stack::new("recreate", "[services.cache]\nplugin = \"redis\"\n");
    let first = stack.run(&["run", "local"]);
    assert!(first.status.success(), "{}", text(&first));
    docker(&["rm", "-f", &format!("{}-local-cache-server", stack.name)]);
    let status = stack.run(&["status", "local"]);
    assert!(!status.status.success(), "status must fail while a service is missing:\n{}", text(&status));
    let plan = stack.run(&["plan", "local"]);
    assert!(text(&plan).contains("create"), "{}", text(&plan));
    let again = stack.run(&["run", "local"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(stack.container_ids().lines().count(), 1);
}

#[test]
fn an_unreachable_engine_is_one_clear_line() {
    let stack = Stack::new("noengine", DB_AND_CACHE);
    let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["run", "local"])
        .current_dir(stack.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock: is dockerd running?"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn bad_files_start_nothing() {
    for (services, says) in [
        ("[services.db]\nplugin = \"postgres\"\ncolour = \"blue\"\n", "provisioner.toml:9: colour: unknown field"),
        ("[services.db]\nplugin = \"postgress\"\n", "provisioner.toml:8: services.db.plugin: no plugin called `postgress`"),
        (
            "[services.a]\nplugin = \"redis\"\ndepends_on = [\"b\"]\n[services.b]\nplugin = \"redis\"\ndepends_on = [\"a\"]\n",
            "services.a.depends_on: dependency cycle: a -> b -> a",
        ),
        ("[services.db]\nplugin = \"postgres\"\nconfig = { database = \"Bad-Name\" }\n", "services.db.config.database"),
    ] {
        let stack = Stack::new("badfile", services);
        let out = stack.run(&["run", "local"]);
        assert!(!out.status.success());
        let shown = text(&out);
        assert!(shown.contains(says), "expected `{says}` in:\n{shown}");
        assert!(shown.contains(&stack.path().join("provisioner.toml").display().to_string()), "{shown}");
        assert_eq!(labelled(&stack.name), Vec::<String>::new(), "nothing may start");
    }
}

