//! The plugin sandbox against real components: fixture plugins compiled to
//! wasm32-wasip2 as part of the test build, loaded and called by the real runtime.
//! The container engine is absent here (these hooks never reach it); the suites
//! under tests/ that need one run against a real Docker engine.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioner::config::Project;
use provisioner::discovery::{search_path, Catalog, DiscoveryError, SearchDir, Source};
use provisioner::engine::Unavailable;
use provisioner::lifecycle::{PreflightError, Stack, Status, Summary};
use provisioner::realise::Containers;
use provisioner::runtime::cache::{CacheOutcome, ComponentCache};
use provisioner::runtime::limits::HookLimits;
use provisioner::runtime::{Hook, LoadError, PluginRuntime};

fn runtime(cache: &Path) -> PluginRuntime {
    PluginRuntime::new(ComponentCache::new(cache), HookLimits::default()).expect("runtime")
}

/// Run `provisioner.toml` in `dir` for the `local` environment, with no engine.
fn run(dir: &Path) -> Result<Summary, PreflightError> {
    with_stack(dir, |stack| stack.run())
}

fn with_stack<T>(dir: &Path, act: impl FnOnce(&Stack) -> T) -> T {
    let project = Project::load(&dir.join("provisioner.toml")).expect("valid provisioner.toml");
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    let catalog = Catalog::discover(&runtime, &search_path(&[], Some(dir))).expect("discovery");
    let stack = Stack {
        project: &project,
        environment: "local",
        catalog: &catalog,
        runtime: &runtime,
        realiser: Arc::new(Containers::new(Arc::new(Unavailable { reason: "no engine in the sandbox tests".into() }))),
        progress: None,
    };
    act(&stack)
}

/// A plugin whose `validate` panics must not hold teardown hostage: its own hook and
/// its siblings' still run (and the sweep after them removes by label).
#[test]
fn a_plugin_that_cannot_validate_does_not_stop_teardown() {
    let toml = format!(
        "[project]\nname = \"{}\"\n[services.hostage]\nplugin = \"misbehave\"\nconfig = {{ do = \"panic-in-validate\" }}\n[services.sibling]\nplugin = \"misbehave\"\nconfig = {{ do = \"ok\" }}\n{GRANT_ALL}",
        support::unique_name("hostage")
    );
    let dir = support::project(&toml, &["misbehave"]);
    assert!(matches!(run(dir.path()), Err(PreflightError::Hook(_))), "run still refuses a plugin that cannot validate");
    let summary = with_stack(dir.path(), |stack| stack.teardown(false)).expect("teardown is not refused");
    for service in ["hostage", "sibling"] {
        let report = summary.services.iter().find(|s| s.service == service).expect("reported");
        assert!(matches!(report.status, Status::TornDown), "{service}: {:?}", report.status);
    }
}

fn output(summary: &Summary, service: &str) -> String {
    let report = summary.services.iter().find(|s| s.service == service).expect("service in summary");
    report.outputs.iter().find(|o| o.name == "RESULT").map(|o| o.value.clone()).unwrap_or_default()
}

fn failure(summary: &Summary, service: &str) -> (Hook, String) {
    let report = summary.services.iter().find(|s| s.service == service).expect("service in summary");
    match &report.status {
        Status::Failed { hook, message, .. } => (*hook, message.clone()),
        other => panic!("{service}: expected a failure, got {other:?}"),
    }
}

const GRANT_ALL: &str = r#"
[plugins.misbehave.grants]
images = ["allowed:*"]
publish = [8080]
volumes = ["data"]
exec = true
state_files = true
net_probe = true
secrets = true
"#;

#[test]
fn a_denied_capability_reaches_the_guest_as_a_value_and_is_reported() {
    let toml = format!(
        "[project]\nname = \"{}\"\n[services.bad]\nplugin = \"misbehave\"\nconfig = {{ do = \"denied\" }}\n{GRANT_ALL}",
        support::unique_name("deny")
    );
    let dir = support::project(&toml, &["misbehave"]);
    let summary = run(dir.path()).expect("run starts");

    // The guest saw `denied(...)` and carried on: its hook succeeded and said so.
    let result = output(&summary, "bad");
    assert!(result.starts_with("denied: image `forbidden:latest`"), "{result}");
    assert!(summary.succeeded(), "{summary}");

    let denials: Vec<_> = summary.denials().collect();
    assert_eq!(denials.len(), 1, "{summary}");
    assert_eq!((denials[0].service.as_str(), denials[0].plugin.as_str()), ("bad", "misbehave"));
    assert_eq!((denials[0].capability.as_str(), denials[0].argument.as_str()), ("image", "forbidden:latest"));
    let shown = summary.to_string();
    assert!(shown.contains("denied (1):") && shown.contains("forbidden:latest"), "{shown}");
}

#[test]
fn misbehaving_plugins_fail_alone_with_a_reason() {
    let toml = format!(
        r#"[project]
name = "{}"

[environments.local.limits]
hook_timeout_ms = 1500
memory_mb = 32

[services.good]
plugin = "misbehave"
config = {{ do = "ok" }}

[services.spin]
plugin = "misbehave"
config = {{ do = "loop" }}

[services.hog]
plugin = "misbehave"
config = {{ do = "memory" }}

[services.boom]
plugin = "misbehave"
config = {{ do = "panic" }}

[services.after-boom]
plugin = "misbehave"
depends_on = ["boom"]
config = {{ do = "ok" }}

[services.after-good]
plugin = "misbehave"
depends_on = ["good"]
config = {{ do = "ok" }}
{GRANT_ALL}"#,
        support::unique_name("misbehave")
    );
    let dir = support::project(&toml, &["misbehave"]);
    let started = Instant::now();
    let summary = run(dir.path()).expect("run starts");
    assert!(started.elapsed() < Duration::from_secs(30), "the limits did not stop the run: {summary}");

    assert_eq!(output(&summary, "good"), "hello from good");
    assert_eq!(output(&summary, "after-good"), "hello from after-good");

    let (hook, message) = failure(&summary, "spin");
    assert_eq!(hook, Hook::Provision);
    assert!(message.contains("deadline of 1.5 s exceeded"), "{message}");
    assert!(message.contains("plugin `misbehave` (service `spin`)"), "{message}");

    let (_, message) = failure(&summary, "hog");
    assert!(message.contains("memory limit of 32 MiB reached"), "{message}");

    let (_, message) = failure(&summary, "boom");
    assert!(message.contains("fixture panicked on purpose in boom"), "the panic message is shown: {message}");

    let after = summary.services.iter().find(|s| s.service == "after-boom").unwrap();
    assert!(matches!(&after.status, Status::Skipped { because } if because.contains("`boom`")), "{:?}", after.status);
    assert!(!summary.succeeded());
}

/// Issue 12's escapes and limits, attacked by a fixture plugin as a third party would.
#[test]
fn hostile_plugins_are_cut_off_and_cannot_reach_the_app() {
    let toml = format!(
        r#"[project]
name = "{}"

[environments.local.limits]
hook_timeout_ms = 2000

[services.sleeper]
plugin = "misbehave"
config = {{ do = "sleep" }}

[services.quitter]
plugin = "misbehave"
config = {{ do = "exit" }}

[services.injector]
plugin = "misbehave"
config = {{ do = "env-inject" }}

[services.impostor]
plugin = "misbehave"
config = {{ do = "alias" }}

[services.cache]
plugin = "misbehave"
config = {{ do = "ok" }}
{GRANT_ALL}"#,
        support::unique_name("hostile")
    );
    let dir = support::project(&toml, &["misbehave"]);
    let started = Instant::now();
    let summary = run(dir.path()).expect("run starts");
    // A WASI sleep of 90 s inside a hook with a 2 s deadline: the host stops waiting.
    assert!(started.elapsed() < Duration::from_secs(20), "a blocked hook held the run: {summary}");
    let (_, message) = failure(&summary, "sleeper");
    assert!(message.contains("deadline of 2.0 s exceeded"), "{message}");

    let (_, message) = failure(&summary, "quitter");
    assert!(message.contains("called exit(0)"), "exit is explained, not a backtrace: {message}");

    let (_, message) = failure(&summary, "injector");
    assert!(message.contains("contains") || message.contains("change how programs run"), "{message}");
    let injector = summary.services.iter().find(|s| s.service == "injector").expect("reported");
    assert!(injector.outputs.is_empty(), "nothing of a refused service reaches .env");

    assert!(output(&summary, "impostor").contains("must be `impostor` or start with `impostor-`"), "{}", output(&summary, "impostor"));
    assert_eq!(output(&summary, "cache"), "hello from cache");
}

/// Issue 12.2, 12.11 and privileged ports: what a plugin asks for in names, host ports
/// and resources stays its own size.
#[test]
fn plugins_keep_to_their_own_names_ports_and_share() {
    let toml = format!(
        r#"[project]
name = "{}"

[services.evil]
plugin = "misbehave"
config = {{ do = "squat" }}

[services.evil-cache]
plugin = "misbehave"
config = {{ do = "ok" }}

[services.porter]
plugin = "misbehave"
config = {{ do = "privileged-port" }}

[services.hog]
plugin = "misbehave"
config = {{ do = "hog" }}
{GRANT_ALL}"#,
        support::unique_name("squat")
    );
    let dir = support::project(&toml, &["misbehave"]);
    let summary = run(dir.path()).expect("run starts");
    let squat = output(&summary, "evil");
    assert!(squat.starts_with("volume refused") && squat.contains("container refused"), "{squat}");
    assert_eq!(squat.matches("names of service `evil-cache`").count(), 2, "{squat}");
    assert_eq!(output(&summary, "evil-cache"), "hello from evil-cache");
    let porter = output(&summary, "porter");
    assert!(porter.contains("privileged port") && porter.contains("privileged_host_ports = [22]"), "{porter}");
    let hog = output(&summary, "hog");
    assert!(hog.contains("64 replicas of `server`") && hog.contains("max_service_memory_mb"), "{hog}");
}

/// The environment's `[limits]` reach `validate` too (within the inspection caps).
#[test]
fn an_environments_limits_apply_to_validate() {
    let toml = format!(
        "[project]\nname = \"{}\"\n[environments.local.limits]\nfuel = 1000\n[services.x]\nplugin = \"misbehave\"\nconfig = {{ do = \"ok\" }}\n{GRANT_ALL}",
        support::unique_name("vlimits")
    );
    let dir = support::project(&toml, &["misbehave"]);
    let text = run(dir.path()).err().expect("validate runs out of fuel").to_string();
    assert!(text.contains("validate") && text.contains("fuel"), "{text}");
}

#[test]
fn the_fuel_budget_stops_a_busy_plugin_too() {
    let toml = format!(
        "[project]\nname = \"{}\"\n[environments.local.limits]\nfuel = 5000000\n[services.spin]\nplugin = \"misbehave\"\nconfig = {{ do = \"loop\" }}\n{GRANT_ALL}",
        support::unique_name("fuel")
    );
    let dir = support::project(&toml, &["misbehave"]);
    let summary = run(dir.path()).expect("run starts");
    let (_, message) = failure(&summary, "spin");
    assert!(message.contains("fuel budget of 5000000 exhausted"), "{message}");
}

#[test]
fn files_only_in_the_state_folder_and_tcp_only_to_own_ports() {
    let toml = format!(
        "[project]\nname = \"{}\"\n[services.files]\nplugin = \"misbehave\"\nconfig = {{ do = \"files\" }}\n[services.net]\nplugin = \"misbehave\"\nconfig = {{ do = \"net\" }}\n{GRANT_ALL}",
        support::unique_name("scope")
    );
    let dir = support::project(&toml, &["misbehave"]);
    let summary = run(dir.path()).expect("run starts");
    let files = output(&summary, "files");
    assert!(files.starts_with("state=kept; outside refused"), "{files}");
    let on_host = dir.path().join(".provisioner/local/services/files/note.txt");
    assert_eq!(std::fs::read_to_string(on_host).unwrap(), "kept");
    // Granted net-probe, but 127.0.0.1:9 is not one of the service's published ports.
    let net = output(&summary, "net");
    assert!(net.starts_with("connect refused"), "{net}");

    // Without the grant there is no /state at all.
    let ungranted = toml.replace("state_files = true", "state_files = false");
    let dir = support::project(&ungranted, &["misbehave"]);
    let summary = run(dir.path()).expect("run starts");
    let (_, message) = failure(&summary, "files");
    assert!(message.starts_with("write /state"), "{message}");
}

#[test]
fn the_second_load_is_a_cache_hit_and_a_tampered_entry_is_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let wasm = support::fixture("misbehave");
    let first = runtime(cache.path()).load(&wasm).expect("load");
    assert_eq!(first.cache, CacheOutcome::Miss);

    // Another process (a new runtime) finds the entry.
    let rt = runtime(cache.path());
    let second = rt.load(&wasm).expect("load");
    assert_eq!(second.cache, CacheOutcome::Hit);
    assert_eq!(second.sha256, first.sha256);

    // Flip one byte of the compiled code: the entry must be rebuilt, not trusted.
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entries[0], &bytes).unwrap();
    let rebuilt = rt.load(&wasm).expect("load after tampering");
    assert!(matches!(&rebuilt.cache, CacheOutcome::Rebuilt(why) if why.contains("checksum")), "{:?}", rebuilt.cache);
    assert_eq!(rebuilt.info.name, "misbehave", "the rebuilt plugin works");
    assert_eq!(rt.load(&wasm).unwrap().cache, CacheOutcome::Hit);

    // A truncated entry likewise.
    std::fs::write(&entries[0], &bytes[..100]).unwrap();
    assert!(matches!(rt.load(&wasm).unwrap().cache, CacheOutcome::Rebuilt(_)));
}

#[test]
fn another_plugins_cache_entry_under_this_key_is_rebuilt_not_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let good = rt.load(&support::fixture("misbehave")).expect("load misbehave");
    // future_wit never loads (its WIT is unsupported), but its compiled entry is
    // stored before that check, so it has a key to copy over.
    let refused = rt.load(&support::fixture("future_wit")).err().expect("refused");
    assert!(matches!(refused, LoadError::UnsupportedWit { .. }), "{refused}");
    // An entry is its compiled code and its header: copy both.
    let entry = |sha: &str, extension: &str| {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(sha) && p.extension().is_some_and(|x| x == extension))
            .expect("cache entry")
    };
    let future_sha = provisioner::runtime::cache::sha256_hex(&std::fs::read(support::fixture("future_wit")).unwrap());
    for extension in ["cwasm", "check"] {
        std::fs::copy(entry(&good.sha256, extension), entry(&future_sha, extension)).unwrap();
    }
    // Loading misbehave's code under future_wit's name would succeed: it must not.
    let again = rt.load(&support::fixture("future_wit")).err().expect("still refused: its own code was compiled");
    assert!(matches!(again, LoadError::UnsupportedWit { ref found, .. } if found == "0.9.0"), "{again}");
    assert_eq!(rt.load(&support::fixture("misbehave")).unwrap().cache, CacheOutcome::Hit);
}

#[test]
fn bad_references_are_refused_before_anything_starts() {
    let toml = format!(
        r#"[project]
name = "{}"

[services.a]
plugin = "misbehave"
config = {{ do = "ok" }}

[services.b]
plugin = "misbehave"
depends_on = ["a"]

[services.b.config]
do = "ok ${{a.NOPE}}"

[services.c]
plugin = "misbehave"
config = {{ do = "${{a.RESULT}}" }}

[services.d]
plugin = "misbehave"
depends_on = ["a"]
config = {{ do = "${{a.RESULT" }}

[services.e]
plugin = "misbehave"
depends_on = ["a"]
config = {{ do = "${{a.RESULT}}" }}
{GRANT_ALL}"#,
        support::unique_name("refs")
    );
    let dir = support::project(&toml, &["misbehave"]);
    let problems = match run(dir.path()) {
        Err(PreflightError::InvalidConfig(problems)) => problems,
        Err(other) => panic!("expected InvalidConfig, got {other}"),
        Ok(summary) => panic!("the run started: {summary}"),
    };
    // The plugin's own validate() also refuses the unresolved strings; these are
    // the reference checks', each naming the line of its own key.
    let reference_problems: Vec<String> =
        problems.iter().filter(|p| !p.message.contains("checked by plugin")).map(|p| p.to_string()).collect();
    let expected = [
        "provisioner.toml:13: services.b.config.do: `${a.NOPE}`: service `a` (plugin `misbehave`) has no output `NOPE` (it has: RESULT)",
        "provisioner.toml:17: services.c.config.do: `${a.RESULT}` refers to `a`, which is not in depends_on",
        "provisioner.toml:22: services.d.config.do: unclosed `${` in `${a.RESULT`",
    ];
    assert_eq!(reference_problems.len(), expected.len(), "{reference_problems:#?}");
    for (got, want) in reference_problems.iter().zip(expected) {
        assert!(got.contains(want), "{got}\n wanted {want}");
    }

    // `plan` refuses the same, before it reads the engine.
    let project = Project::load(&dir.path().join("provisioner.toml")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    let catalog = Catalog::discover(&runtime, &search_path(&[], Some(dir.path()))).unwrap();
    let stack = Stack {
        project: &project,
        environment: "local",
        catalog: &catalog,
        runtime: &runtime,
        realiser: Arc::new(Containers::new(Arc::new(Unavailable { reason: "no engine in the sandbox tests".into() }))),
        progress: None,
    };
    match stack.plan(&Default::default()) {
        Err(PreflightError::InvalidConfig(planned)) => assert_eq!(planned, problems),
        Err(other) => panic!("expected InvalidConfig, got {other}"),
        Ok(_) => panic!("plan went ahead"),
    }
}

#[test]
fn core_modules_and_unsupported_wit_versions_are_refused_with_advice() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());

    let core = rt.load_bytes(Path::new("core.wasm"), b"\0asm\x01\0\0\0").err().expect("refused");
    assert!(matches!(core, LoadError::CoreModule { .. }));
    assert!(core.to_string().contains("wasm32-wasip2"), "{core}");

    let future = rt.load(&support::fixture("future_wit")).err().expect("refused");
    let text = future.to_string();
    assert!(matches!(future, LoadError::UnsupportedWit { ref found, .. } if found == "0.9.0"), "{text}");
    assert!(text.contains("serves 0.1.x") && text.contains("Rebuild"), "{text}");

    let junk = rt.load_bytes(Path::new("junk.wasm"), b"hello").err().expect("refused");
    assert!(matches!(junk, LoadError::NotWasm { .. }));
}

#[test]
fn discovery_lists_broken_files_and_refuses_two_plugins_with_one_name() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::copy(support::fixture("misbehave"), a.path().join("misbehave.wasm")).unwrap();
    std::fs::write(a.path().join("broken.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let dirs = |paths: &[&Path]| -> Vec<SearchDir> {
        paths.iter().map(|p| SearchDir { path: p.to_path_buf(), source: Source::Flag }).collect()
    };

    let catalog = Catalog::discover(&rt, &dirs(&[a.path()])).expect("one plugin");
    assert_eq!(catalog.plugins.keys().collect::<Vec<_>>(), ["misbehave"]);
    assert_eq!(catalog.broken.len(), 1);
    assert!(catalog.broken[0].reason.contains("core WebAssembly module"));

    std::fs::copy(support::fixture("misbehave"), b.path().join("other-name.wasm")).unwrap();
    let err = Catalog::discover(&rt, &dirs(&[a.path(), b.path()])).err().expect("duplicate");
    let text = err.to_string();
    assert!(matches!(err, DiscoveryError::Duplicate { .. }));
    assert!(text.contains(&a.path().join("misbehave.wasm").display().to_string()), "{text}");
    assert!(text.contains(&b.path().join("other-name.wasm").display().to_string()), "{text}");
}

#[test]
fn bad_config_is_refused_before_anything_starts() {
    let name = support::unique_name("badcfg");
    // The plugin's own validate() names the key.
    let toml = format!("[project]\nname = \"{name}\"\n[services.x]\nplugin = \"misbehave\"\nconfig = {{ do = \"dance\" }}\n");
    let dir = support::project(&toml, &["misbehave"]);
    let err = run(dir.path()).err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("provisioner.toml:4: services.x.config.do: unknown action `dance`"), "{text}");
    assert!(!dir.path().join(".provisioner").exists(), "nothing was started");

    let toml = format!("[project]\nname = \"{name}\"\n[services.x]\nplugin = \"nosuch\"\n");
    let dir = support::project(&toml, &["misbehave"]);
    let text = run(dir.path()).err().expect("refused").to_string();
    assert!(text.contains("provisioner.toml:4: services.x.plugin: no plugin called `nosuch`"), "{text}");
}

#[test]
fn plugins_list_shows_capabilities_grants_and_broken_files() {
    let dir = support::project("[project]\nname = \"listing\"\n[plugins.misbehave.grants]\nexec = true\nimages = [\"allowed:1*\"]\n", &["misbehave"]);
    std::fs::write(dir.path().join("plugins/notes.wasm"), b"not wasm").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["plugins", "list", "--json"])
        .current_dir(dir.path())
        .env("PROVISIONER_CACHE_DIR", cache.path())
        .env_remove("PROVISIONER_PLUGIN_PATH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plugin = listing["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "misbehave").expect("listed");
    assert_eq!(plugin["wit_version"], "0.2.0");
    assert_eq!(plugin["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(plugin["source"], "project");
    assert_eq!(plugin["grants_from"], "project-file");
    let status = |kind: &str| {
        plugin["capabilities"].as_array().unwrap().iter().find(|c| c["capability"]["kind"] == kind).unwrap()["status"].clone()
    };
    assert_eq!(status("exec"), "granted");
    assert_eq!(status("image"), "partly");
    assert_eq!(status("secrets"), "not-granted");
    let broken = listing["broken"].as_array().unwrap();
    assert!(broken.iter().any(|b| b["path"].as_str().unwrap().ends_with("notes.wasm")), "{broken:?}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["plugins", "inspect", "misbehave"])
        .current_dir(dir.path())
        .env("PROVISIONER_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("DENIED") && text.contains("secrets = true"), "{text}");
}

