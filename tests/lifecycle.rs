//! Whole stacks through `lifecycle::Stack` (run, plan, scale, teardown, orphan
//! removal) against the in-memory engine, with a real plugin: the `stub-service`
//! fixture (tests/fixtures/stub-service), compiled to wasm32-wasip2 and run in the
//! sandbox. No Docker engine is needed or touched.
//!
//! The engine's ordered event log (`Fake::events`) is what the order assertions read:
//! `create NAME`, `start NAME`, `rename OLD → NEW`, `remove NAME`, `write NAME /ready`
//! (the stub writes it when its `ready` hook says ready), `remove volume NAME`, …
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use provisioner::config::Project;
use provisioner::discovery::{Catalog, SearchDir, Source};
use provisioner::engine::fake::Fake;
use provisioner::engine::State as ContainerState;
use provisioner::lifecycle::{Action, Stack, Status, Summary};
use provisioner::realise::Containers;
use provisioner::runtime::cache::ComponentCache;
use provisioner::runtime::limits::HookLimits;
use provisioner::runtime::{Hook, PluginRuntime};
use provisioner::state::{ServiceState, State};

/// Every test project starts with this: project `shop`, so every engine name is
/// `shop-local-SERVICE-…`, and the grants the stub needs.
const HEADER: &str = r#"[project]
name = "shop"

[environments.local]
readiness_timeout_secs = 20

[plugins.stub-service.grants]
images = ["stub*"]
volumes = ["data"]
exec = true
state_files = true
"#;

/// One runtime and catalog for the whole test process, so the fixture is compiled
/// once; the engine and project are each test's own.
fn plugins() -> &'static (PluginRuntime, Catalog) {
    static PLUGINS: OnceLock<(PluginRuntime, Catalog)> = OnceLock::new();
    PLUGINS.get_or_init(|| {
        let dir: PathBuf = support::root().join("target/lifecycle-tests");
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins).expect("creating target/lifecycle-tests/plugins");
        std::fs::copy(support::fixture("stub_service"), plugins.join("stub-service.wasm")).expect("copying the stub plugin");
        let runtime = PluginRuntime::new(ComponentCache::new(dir.join("components")), HookLimits::default())
            .expect("a plugin runtime");
        let catalog = Catalog::discover(&runtime, &[SearchDir { path: plugins, source: Source::Project }]).expect("discovery");
        assert!(catalog.broken.is_empty(), "broken plugins: {:?}", catalog.broken);
        assert!(catalog.plugins.contains_key("stub-service"), "the stub plugin was found");
        (runtime, catalog)
    })
}

/// A project folder and an empty fake engine.
struct Harness {
    dir: tempfile::TempDir,
    engine: Arc<Fake>,
}

impl Harness {
    /// `services`: the `[services.*]` tables of provisioner.toml.
    fn new(services: &str) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("provisioner.toml"), format!("{HEADER}\n{services}")).expect("writing provisioner.toml");
        Harness { dir, engine: Arc::new(Fake::default()) }
    }

    /// Replace `from` by `to` in provisioner.toml (it must occur).
    fn edit(&self, from: &str, to: &str) {
        let file = self.dir.path().join("provisioner.toml");
        let text = std::fs::read_to_string(&file).expect("reading provisioner.toml");
        assert!(text.contains(from), "provisioner.toml has no `{from}`");
        std::fs::write(&file, text.replacen(from, to, 1)).expect("writing provisioner.toml");
    }

    /// `f` with a stack of the project as provisioner.toml says now.
    fn with_stack<R>(&self, f: impl FnOnce(&Stack) -> R) -> R {
        let project = Project::load(&self.dir.path().join("provisioner.toml")).expect("a valid provisioner.toml");
        let (runtime, catalog) = plugins();
        let stack = Stack { project: &project, environment: "local", catalog, runtime, realiser: Arc::new(Containers::new(self.engine.clone())), progress: None };
        f(&stack)
    }

    /// `provisioner run local`: orphans removed, then every service brought up.
    fn run(&self) -> Summary {
        self.with_stack(|stack| {
            stack.remove_orphans().expect("removing orphans");
            stack.run().expect("the run starts")
        })
    }

    /// `provisioner plan local`, given what the last run recorded.
    fn plan(&self, state: &State) -> BTreeMap<String, Action> {
        self.with_stack(|stack| stack.plan(state).expect("a plan")).into_iter().map(|i| (i.service, i.action)).collect()
    }

    /// `provisioner teardown local [--keep-volumes]`: the plugins' teardown, then the sweep.
    fn teardown(&self, keep_volumes: bool) -> Summary {
        self.with_stack(|stack| {
            let summary = stack.teardown(keep_volumes).expect("the teardown starts");
            stack.sweep(keep_volumes).expect("the sweep");
            summary
        })
    }
}

/// What `provisioner run` records in state.json, as far as `plan` reads it.
fn state_after(summary: &Summary) -> State {
    let mut state = State { project: "shop".into(), environment: "local".into(), ..State::default() };
    for report in &summary.services {
        let ready = matches!(report.status, Status::Ready);
        let entry = ServiceState {
            plugin: report.plugin.clone(),
            config_hash: if ready { report.config_hash.clone() } else { String::new() },
            ready,
            ..ServiceState::default()
        };
        state.services.insert(report.service.clone(), entry);
    }
    state
}

fn status<'a>(summary: &'a Summary, service: &str) -> &'a Status {
    &summary.services.iter().find(|s| s.service == service).unwrap_or_else(|| panic!("no `{service}` in\n{summary}")).status
}

/// Each service's status in one word: ready, removed, failed, skipped.
fn words(summary: &Summary) -> BTreeMap<&str, &'static str> {
    summary
        .services
        .iter()
        .map(|s| {
            let word = match s.status {
                Status::Ready => "ready",
                Status::TornDown => "removed",
                Status::Failed { .. } => "failed",
                Status::Skipped { .. } => "skipped",
            };
            (s.service.as_str(), word)
        })
        .collect()
}

/// Where `event` is in `events`; fails showing the whole log when it is not there.
fn at(events: &[String], event: &str) -> usize {
    events.iter().position(|e| e == event).unwrap_or_else(|| panic!("no `{event}` in the engine log:\n{}", events.join("\n")))
}

/// The container operations (create, start, stop, rename, remove) in `events` that
/// name a container of `service`.
fn container_ops(events: &[String], service: &str) -> Vec<String> {
    let prefix = format!("shop-local-{service}-");
    events
        .iter()
        .filter(|e| ["create ", "start ", "stop ", "rename ", "remove "].iter().any(|op| e.starts_with(op)))
        .filter(|e| !e.starts_with("create volume") && !e.starts_with("remove volume") && !e.contains(" network "))
        .filter(|e| e.contains(&prefix))
        .cloned()
        .collect()
}

#[test]
fn a_service_is_created_only_once_its_dependencies_are_ready() {
    // db takes several `ready` polls; cache is ready at once; app needs both and
    // reads db's URL.
    let h = Harness::new(
        r#"
[services.db]
plugin = "stub-service"
config = { image = "stub-db:1", not_ready_times = 5 }

[services.cache]
plugin = "stub-service"
config = { image = "stub-cache:1" }

[services.app]
plugin = "stub-service"
depends_on = ["db", "cache"]
config = { image = "stub-app:1", env = { DB_URL = "${db.URL}" } }
"#,
    );
    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    assert_eq!(words(&summary), BTreeMap::from([("app", "ready"), ("cache", "ready"), ("db", "ready")]));

    let events = h.engine.events();
    let app_created = at(&events, "create shop-local-app-server");
    for dependency in ["db", "cache"] {
        let ready = at(&events, &format!("write shop-local-{dependency}-server /ready"));
        assert!(ready < app_created, "app was created before {dependency} was ready:\n{}", events.join("\n"));
    }
    // The two independent services came up side by side: cache was ready while db
    // was still saying not-yet.
    let db_ready = at(&events, "write shop-local-db-server /ready");
    assert!(at(&events, "write shop-local-cache-server /ready") < db_ready, "{}", events.join("\n"));
    assert!(at(&events, "create shop-local-cache-server") < db_ready);

    let report = |name: &str| summary.services.iter().find(|s| s.service == name).expect("reported");
    let (db, app) = (report("db"), report("app"));
    assert!(app.started_at_ms >= db.started_at_ms + db.total_ms, "app started before db finished:\n{summary}");
    assert_eq!(summary.critical_path, ["db", "app"], "{summary}");

    // The dependency's output reached the dependent's container, as the project
    // network sees it.
    let request = h.engine.request("shop-local-app-server").expect("app's container");
    assert!(request.env.contains(&("DB_URL".to_string(), "stub://db".to_string())), "{:?}", request.env);
}

#[test]
fn waiting_for_outputs_creates_a_dependent_while_its_dependency_boots() {
    let h = Harness::new(
        r#"
[services.db]
plugin = "stub-service"
config = { image = "stub-db:1", not_ready_times = 10 }

[services.app]
plugin = "stub-service"
depends_on = ["db"]
wait_for = "outputs"
config = { image = "stub-app:1", env = { DB_URL = "${db.URL}" } }
"#,
    );
    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    let events = h.engine.events();
    let app_created = at(&events, "create shop-local-app-server");
    assert!(at(&events, "start shop-local-db-server") < app_created, "{}", events.join("\n"));
    assert!(app_created < at(&events, "write shop-local-db-server /ready"), "app waited for db to be ready:\n{}", events.join("\n"));
    // Still counted ready only once db is (its own `ready` hook may say so earlier).
    let end = |name: &str| summary.services.iter().find(|s| s.service == name).map(|s| s.started_at_ms + s.total_ms).expect("reported");
    assert!(end("app") >= end("db"), "app finished before db was ready:\n{summary}");
}

#[test]
fn a_failed_service_skips_its_dependents_but_not_its_siblings() {
    // db's container exits as soon as it starts; app needs db; worker needs only
    // cache; files fails in its own provision and has no dependents.
    let h = Harness::new(
        r#"
[services.db]
plugin = "stub-service"
config = { image = "stub-crash:1" }

[services.cache]
plugin = "stub-service"

[services.files]
plugin = "stub-service"
config = { fail = "provision" }

[services.app]
plugin = "stub-service"
depends_on = ["db", "cache"]

[services.worker]
plugin = "stub-service"
depends_on = ["cache"]
"#,
    );
    h.engine.crash_on_start("stub-crash:1");
    let summary = h.run();
    assert!(!summary.succeeded());
    assert_eq!(
        words(&summary),
        BTreeMap::from([("app", "skipped"), ("cache", "ready"), ("db", "failed"), ("files", "failed"), ("worker", "ready")]),
        "{summary}"
    );
    match status(&summary, "db") {
        Status::Failed { hook, message, log_tail } => {
            assert_eq!(*hook, Hook::Ready);
            assert!(message.contains("exited with code 1"), "{message}");
            assert!(log_tail.contains("shop-local-db-server") && log_tail.contains("fake log line"), "{log_tail}");
        }
        other => panic!("db: {other:?}"),
    }
    match status(&summary, "files") {
        Status::Failed { hook, message, .. } => {
            assert_eq!(*hook, Hook::Provision);
            assert!(message.contains("fails on purpose"), "{message}");
        }
        other => panic!("files: {other:?}"),
    }
    match status(&summary, "app") {
        Status::Skipped { because } => assert!(because.contains("`db`") && !because.contains("`cache`"), "{because}"),
        other => panic!("app: {other:?}"),
    }
    let events = h.engine.events();
    assert!(!events.iter().any(|e| e.contains("shop-local-app-")), "a skipped service touches nothing:\n{}", events.join("\n"));
    assert!(!events.iter().any(|e| e.contains("shop-local-files-server")), "{}", events.join("\n"));
    assert!(events.contains(&"write shop-local-worker-server /ready".to_string()));
    let shown = summary.to_string();
    assert!(shown.contains("service `app` skipped") && shown.contains("service `db` failed in `ready`"), "{shown}");
}

/// Two instances of `app` running `stub-app:1` with a health check, and the engine's
/// log emptied.
fn two_replicas() -> Harness {
    let h = Harness::new(
        r#"
[services.app]
plugin = "stub-service"
replicas = 2
config = { image = "stub-app:1", health = true }
"#,
    );
    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    assert_eq!(h.engine.container_names(), ["shop-local-app-server-1", "shop-local-app-server-2"]);
    h.engine.take_events();
    h
}

#[test]
fn a_changed_image_replaces_replicas_one_at_a_time_each_successor_up_before_its_predecessor_goes() {
    let h = two_replicas();
    let before: Vec<String> = h.engine.container_names().iter().map(|n| h.engine.container(n).expect("exists").id).collect();
    h.edit("stub-app:1", "stub-app:2");
    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");

    let events = h.engine.events();
    let ops = container_ops(&events, "app");
    assert_eq!(ops.len(), 8, "four steps per instance:\n{}", ops.join("\n"));
    for (i, steps) in ops.chunks(4).enumerate() {
        let name = format!("shop-local-app-server-{}", i + 1);
        // Renamed aside (still running), successor created and started under the
        // name, and only then the old one removed.
        let aside = steps[0]
            .strip_prefix(&format!("rename {name} → "))
            .unwrap_or_else(|| panic!("instance {} is first renamed aside:\n{}", i + 1, ops.join("\n")));
        assert_ne!(aside, name);
        assert_eq!(steps[1..], [format!("create {name}"), format!("start {name}"), format!("remove {aside}")], "{}", ops.join("\n"));
    }
    assert_eq!(h.engine.container_names(), ["shop-local-app-server-1", "shop-local-app-server-2"], "nothing aside is left");
    for (n, old_id) in h.engine.container_names().iter().zip(before) {
        let now = h.engine.container(n).expect("exists");
        assert_eq!(now.image, "stub-app:2");
        assert_eq!(now.state, ContainerState::Running);
        assert_ne!(now.id, old_id, "{n} was replaced");
    }
    assert!(!events.iter().any(|e| e.starts_with("remove volume")), "the data volume stays");
}

#[test]
fn a_successor_that_crashes_or_never_gets_healthy_puts_the_running_instance_back() {
    let h = two_replicas();
    let ids = || -> Vec<(String, String)> {
        h.engine.container_names().iter().map(|n| h.engine.container(n).expect("exists")).map(|d| (d.id, d.image)).collect()
    };
    let before = ids();
    h.engine.crash_on_start("stub-app:crash");
    h.engine.never_healthy("stub-app:sick");
    let mut image = "stub-app:1".to_string();
    for (bad, says) in [("stub-app:crash", "exited with code 1"), ("stub-app:sick", "unhealthy")] {
        h.edit(&format!("\"{image}\""), &format!("\"{bad}\""));
        image = bad.to_string();
        let summary = h.run();
        match status(&summary, "app") {
            Status::Failed { hook, message, .. } => {
                assert_eq!(*hook, Hook::Provision, "{summary}");
                assert!(message.contains(says), "{bad}: {message}");
            }
            other => panic!("{bad}: app {other:?}"),
        }

        let ops = container_ops(&h.engine.take_events(), "app");
        let first = "shop-local-app-server-1";
        let aside = ops
            .first()
            .and_then(|e| e.strip_prefix(&format!("rename {first} → ")))
            .unwrap_or_else(|| panic!("{bad}: renamed aside first:\n{}", ops.join("\n")))
            .to_string();
        let expected = [
            format!("rename {first} → {aside}"),
            format!("create {first}"),
            format!("start {first}"),
            format!("remove {first}"),
            format!("rename {aside} → {first}"),
        ];
        assert_eq!(ops, expected, "{bad}: the successor goes and the old instance gets its name back; instance 2 is left alone");
        assert_eq!(ids(), before, "{bad}: both instances are the ones that ran before, on the old image");
        assert!(h.engine.container_names().iter().all(|n| h.engine.container(n).expect("exists").state == ContainerState::Running));
    }
}

#[test]
fn scaling_adds_and_removes_instances_and_leaves_the_others_running() {
    let h = Harness::new(
        r#"
[services.app]
plugin = "stub-service"
replicas = 2
config = { image = "stub-app:1", replicated = true }
"#,
    );
    assert!(h.run().succeeded());
    let first = h.engine.container("shop-local-app-server-1").expect("instance 1").id;
    h.engine.take_events();

    h.edit("replicas = 2", "replicas = 3");
    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    let ops = container_ops(&h.engine.take_events(), "app");
    assert_eq!(ops, ["create shop-local-app-server-3", "start shop-local-app-server-3"], "only the new instance is touched");

    h.edit("replicas = 3", "replicas = 1");
    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    let mut ops = container_ops(&h.engine.take_events(), "app");
    ops.sort();
    assert_eq!(ops, ["remove shop-local-app-server-2", "remove shop-local-app-server-3"], "surplus instances go, the first stays");
    assert_eq!(h.engine.container_names(), ["shop-local-app-server-1"]);
    assert_eq!(h.engine.container("shop-local-app-server-1").expect("instance 1").id, first);
    assert_eq!(h.engine.volume_names(), ["shop-local-app-data"]);
}

#[test]
fn teardown_removes_dependents_first_and_leaves_nothing_labelled() {
    let h = Harness::new(
        r#"
[services.db]
plugin = "stub-service"

[services.cache]
plugin = "stub-service"

[services.app]
plugin = "stub-service"
depends_on = ["db", "cache"]

[services.web]
plugin = "stub-service"
depends_on = ["app"]
"#,
    );
    // Someone else's: another project, and this project's other environment.
    let labels = |project: &str, env: &str| {
        BTreeMap::from([
            ("provisioner.project".to_string(), project.to_string()),
            ("provisioner.env".to_string(), env.to_string()),
            ("provisioner.service".to_string(), "db".to_string()),
        ])
    };
    h.engine.plant_container("other-local-db-server", labels("other", "local"));
    h.engine.plant_container("shop-ci-db-server", labels("shop", "ci"));
    let foreign = ["other-local-db-server", "shop-ci-db-server"];
    let volumes = ["shop-local-app-data", "shop-local-cache-data", "shop-local-db-data", "shop-local-web-data"];

    let removes_in_order = |events: &[String]| {
        let removed = |service: &str| at(events, &format!("remove shop-local-{service}-server"));
        assert!(removed("web") < removed("app"), "web goes before app:\n{}", events.join("\n"));
        assert!(removed("app") < removed("db") && removed("app") < removed("cache"), "app goes before db and cache:\n{}", events.join("\n"));
    };

    assert!(h.run().succeeded());
    h.engine.take_events();
    let summary = h.teardown(true);
    assert!(summary.succeeded(), "{summary}");
    assert!(summary.services.iter().all(|s| matches!(s.status, Status::TornDown)), "{summary}");
    let events = h.engine.take_events();
    removes_in_order(&events);
    assert!(!events.iter().any(|e| e.starts_with("remove volume")), "--keep-volumes keeps them:\n{}", events.join("\n"));
    assert!(!events.iter().any(|e| e.ends_with("within 0 s")), "kept data: every server stops cleanly:\n{}", events.join("\n"));
    assert_eq!(h.engine.container_names(), foreign);
    assert_eq!(h.engine.volume_names(), volumes);
    assert!(h.engine.network_names().is_empty());

    // The next run finds the data again.
    assert!(h.run().succeeded());
    let events = h.engine.take_events();
    assert!(!events.iter().any(|e| e.starts_with("create volume")), "the kept volumes are reused:\n{}", events.join("\n"));

    let summary = h.teardown(false);
    assert!(summary.succeeded(), "{summary}");
    let events = h.engine.events();
    removes_in_order(&events);
    // The data goes: what others depended on is stopped at once once they are gone;
    // web, which nothing depends on, drains within its own stop timeout.
    for service in ["app", "db", "cache"] {
        assert_eq!(at(&events, &format!("stop shop-local-{service}-server within 0 s")) + 1, at(&events, &format!("remove shop-local-{service}-server")));
    }
    assert!(!events.iter().any(|e| e.starts_with("stop shop-local-web-server")), "web drains:\n{}", events.join("\n"));
    for volume in volumes {
        at(&events, &format!("remove volume {volume}"));
    }
    assert_eq!(h.engine.container_names(), foreign, "only other projects' and environments' containers are left");
    assert!(h.engine.volume_names().is_empty());
    assert!(h.engine.network_names().is_empty());
}

#[test]
fn a_service_removed_from_the_file_loses_its_containers_but_keeps_its_volume() {
    let h = Harness::new(
        r#"
[services.db]
plugin = "stub-service"

[services.cache]
plugin = "stub-service"
replicas = 2
"#,
    );
    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    let state = state_after(&summary);
    let db = h.engine.container("shop-local-db-server").expect("db").id;
    h.engine.take_events();

    h.edit("[services.cache]\nplugin = \"stub-service\"\nreplicas = 2\n", "");
    assert_eq!(h.plan(&state).get("cache"), Some(&Action::Remove), "plan shows the orphan");
    assert!(h.engine.events().is_empty(), "plan changes nothing");

    let removed = h.with_stack(|stack| stack.remove_orphans()).expect("orphans removed");
    assert_eq!(removed, ["cache"]);
    let mut events = h.engine.take_events();
    events.sort();
    assert_eq!(events, ["remove shop-local-cache-server-1", "remove shop-local-cache-server-2"]);
    assert_eq!(h.engine.volume_names(), ["shop-local-cache-data", "shop-local-db-data"], "volumes are kept");

    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    assert_eq!(words(&summary), BTreeMap::from([("db", "ready")]));
    assert_eq!(h.engine.container_names(), ["shop-local-db-server"]);
    assert_eq!(h.engine.container("shop-local-db-server").expect("db").id, db, "db was left alone");
    assert_eq!(h.plan(&state_after(&summary)), BTreeMap::from([("db".to_string(), Action::Unchanged)]));
}

#[test]
fn plan_says_create_on_a_fresh_engine_unchanged_after_a_run_and_names_what_changed() {
    let h = Harness::new(
        r#"
[services.db]
plugin = "stub-service"
config = { image = "stub-db:1" }

[services.cache]
plugin = "stub-service"

[services.app]
plugin = "stub-service"
depends_on = ["db"]
replicas = 2
"#,
    );
    let plan = h.plan(&State::default());
    assert_eq!(plan, BTreeMap::from([("app".into(), Action::Create), ("cache".into(), Action::Create), ("db".into(), Action::Create)]));
    assert!(h.engine.events().is_empty(), "plan changes nothing: {:?}", h.engine.events());

    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    let state = state_after(&summary);
    h.engine.take_events();
    let unchanged: BTreeMap<String, Action> = BTreeMap::from([("app".into(), Action::Unchanged), ("cache".into(), Action::Unchanged), ("db".into(), Action::Unchanged)]);
    assert_eq!(h.plan(&state), unchanged);
    assert!(h.engine.events().is_empty());

    // A second run with nothing changed changes nothing on the engine.
    let again = h.run();
    assert!(again.succeeded(), "{again}");
    let changes: Vec<String> = h.engine.take_events().into_iter().filter(|e| !e.starts_with("write ")).collect();
    assert!(changes.is_empty(), "a second run changed: {changes:?}");

    h.edit("stub-db:1", "stub-db:2");
    h.edit("replicas = 2", "replicas = 3");
    h.engine.set_state("shop-local-cache-server", ContainerState::Exited);
    let plan = h.plan(&state);
    assert_eq!(plan, BTreeMap::from([("app".into(), Action::Update), ("cache".into(), Action::Start), ("db".into(), Action::Update)]));
    assert!(h.engine.events().is_empty());

    let summary = h.run();
    assert!(summary.succeeded(), "{summary}");
    assert_eq!(h.engine.container("shop-local-db-server").expect("db").image, "stub-db:2");
    assert_eq!(h.engine.container("shop-local-cache-server").expect("cache").state, ContainerState::Running);
    assert_eq!(h.plan(&state_after(&summary)), unchanged);
}

#[test]
fn backup_and_restore_move_each_part_through_the_host_and_refuse_before_changing_anything() {
    let h = Harness::new(
        r#"
[services.db]
plugin = "stub-service"

[services.cache]
plugin = "stub-service"
config = { holds_data = true }
"#,
    );
    assert!(h.run().succeeded());
    let parts = tempfile::tempdir().unwrap();
    let manifest = h.with_stack(|stack| stack.backup(&[], parts.path())).expect("backup");
    let db = manifest.services.iter().find(|s| s.service == "db").expect("db backed up");
    assert_eq!(db.method, "stub dump of 7 bytes");
    assert_eq!(db.notes, ["a stub keeps nothing real"]);
    let names: Vec<(&str, u64)> = db.parts.iter().map(|p| (p.name.as_str(), p.bytes)).collect();
    assert_eq!(names, [("dump", 7), ("notes", 12)]);
    assert_eq!(db.parts[0].sha256, provisioner::digest::sha256_hex(b"dump db"), "the exec's output, as the engine gave it");
    assert_eq!(std::fs::read(parts.path().join("db/notes")).unwrap(), b"first second");
    assert_eq!(db.wit_version, "0.2.0");

    // `cache` says it holds data: refused before any service is touched.
    h.engine.take_events();
    let refused = h.with_stack(|stack| stack.restore(&manifest, parts.path(), &[], false)).expect_err("refused").to_string();
    assert!(refused.contains("`cache` holds 3 stub rows") && refused.contains("Nothing was changed"), "{refused}");
    assert!(!h.engine.events().iter().any(|e| e.contains(" load")), "nothing loaded: {:?}", h.engine.events());

    // Only `db`, which holds nothing: its part goes in as the command's input.
    let restored = h.with_stack(|stack| stack.restore(&manifest, parts.path(), &["db".into()], false)).expect("restore");
    assert_eq!(restored.iter().map(|r| r.service.as_str()).collect::<Vec<_>>(), ["db"]);
    assert!(h.engine.events().contains(&"exec shop-local-db-server load <dump db".to_string()), "{:?}", h.engine.events());

    // A restore that fails says which service, that its data may be partial, and what
    // was restored before it.
    // (The services go in name order: `cache`, then `db`.)
    h.edit("[services.db]\nplugin = \"stub-service\"\n", "[services.db]\nplugin = \"stub-service\"\nconfig = { fail = \"restore\" }\n");
    let failed = h.with_stack(|stack| stack.restore(&manifest, parts.path(), &[], true)).expect_err("fails").to_string();
    assert!(failed.contains("service `db`: restore failed") && failed.contains("may be incomplete") && failed.contains("Restored before it: `cache`"), "{failed}");

    let marker = provisioner::lifecycle::IncompleteRestore::read(&h.dir.path().join(".provisioner/local")).expect("a marker for status");
    assert_eq!(marker.service, "db");
    h.edit("config = { fail = \"restore\" }\n", "");
    h.with_stack(|stack| stack.restore(&manifest, parts.path(), &["db".into()], true)).expect("restored again");
    assert!(provisioner::lifecycle::IncompleteRestore::read(&h.dir.path().join(".provisioner/local")).is_none(), "a good restore clears it");

    // An archive part name that is not a plain file name never reaches a plugin.
    assert!(!provisioner::capabilities::archive::is_valid_part_name("../../etc/passwd"));
}
