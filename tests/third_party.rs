//! Third-party plugins end to end, through the real binary: installing from a
//! registry (a folder, and the same folder over HTTP) with digests and signatures,
//! drop-in plugins that get nothing until granted, the lockfile under `--locked`, and
//! the authoring kit (`plugins new` → `cargo build` → `plugins check`).
//!
//! The plugin under test is the third-party example `examples/plugins/memcached`,
//! built here from its own workspace. The runs that start Memcached need
//! `provisioner-offline/memcached:1.6` (`cargo xtask images`).

mod support;

use support::{memcached_version, ok, refused};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MEMCACHED_IMAGE: &str = "provisioner-offline/memcached:1.6";

/// The real binary in `dir`, with CI unset (tests set it themselves) and a private
/// component cache.
fn provisioner(dir: &Path, args: &[&str]) -> Output {
    provisioner_with(dir, args, &[])
}

fn provisioner_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provisioner"));
    command.args(args).current_dir(dir).env_remove("PROVISIONER_PLUGIN_PATH").env_remove("CI");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running provisioner")
}

/// A registry folder with the memcached example published into it (signed with a
/// fresh key unless `unsigned`), and that key's public half.
struct Registry {
    dir: tempfile::TempDir,
    public_key: String,
}

impl Registry {
    fn new(unsigned: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("publisher.key");
        let public_key = ok(&provisioner(dir.path(), &["registry", "keygen", key.to_str().unwrap()])).lines().next().unwrap().to_string();
        // Issue 18.5: the public half again, from the key file.
        let again = ok(&provisioner(dir.path(), &["registry", "pubkey", key.to_str().unwrap()]));
        assert_eq!(again.trim(), public_key);
        assert!(public_key.starts_with("ed25519:"), "{public_key}");
        let wasm = support::example_plugin("memcached");
        let registry = dir.path().join("registry");
        let mut args = vec!["registry", "publish", registry.to_str().unwrap(), wasm.to_str().unwrap()];
        if unsigned {
            args.push("--unsigned");
        } else {
            args.extend(["--key", key.to_str().unwrap()]);
        }
        ok(&provisioner(dir.path(), &args));
        Registry { dir, public_key }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("registry")
    }

    fn artifact(&self) -> PathBuf {
        self.path().join("memcached/0.1.0/memcached.wasm")
    }
}

/// A project folder whose provisioner.toml has `extra` after a `[project]` table.
fn project(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[project]\nname = \"{}\"\n\n{extra}", support::unique_name("tp"));
    std::fs::write(dir.path().join("provisioner.toml"), toml).unwrap();
    dir
}

fn registry_table(url: &str, key: &str, require: bool) -> String {
    format!("[registry]\nurl = \"{url}\"\ntrusted_keys = [\"{key}\"]\nrequire_signatures = {require}\n")
}

#[test]
fn install_from_a_registry_folder_then_verify() {
    let registry = Registry::new(false);
    let dir = project(&registry_table(registry.path().to_str().unwrap(), &registry.public_key, true));

    let text = ok(&provisioner(dir.path(), &["plugins", "install", "memcached"]));
    assert!(text.contains("installed memcached 0.1.0") && text.contains(&format!("signed by {}", registry.public_key)), "{text}");
    // It tells the user what to grant, since nothing is yet.
    assert!(text.contains("[plugins.memcached.grants]") && text.contains("publish = [11211]"), "{text}");
    let installed = dir.path().join("plugins/memcached.wasm");
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(registry.artifact()).unwrap());

    let again = ok(&provisioner(dir.path(), &["plugins", "install", "memcached@0.1.0"]));
    assert!(again.contains("already installed"), "{again}");
    let missing = refused(&provisioner(dir.path(), &["plugins", "install", "memcached@9.9.9"]));
    assert!(missing.contains("no version 9.9.9 (published: 0.1.0)"), "{missing}");

    let verified = ok(&provisioner(dir.path(), &["plugins", "verify"]));
    assert!(verified.contains("verified, signed by ed25519:"), "{verified}");
    // Issue 18.4: who signed it and whether it is granted are two things.
    let listing = ok(&provisioner(dir.path(), &["plugins", "list"]));
    assert!(listing.contains(&format!("[signed by {} · not granted]", registry.public_key)), "{listing}");
    // Issue 18.14: the config schema as a table, and as a README section.
    let inspected = ok(&provisioner(dir.path(), &["plugins", "inspect", "memcached"]));
    assert!(inspected.lines().any(|l| l.trim_start().starts_with("memory_mb") && l.contains("integer 16–4096") && l.contains("64")), "{inspected}");
    let docs = ok(&provisioner(dir.path(), &["plugins", "docs", "memcached"]));
    assert!(docs.starts_with("# memcached 0.1.0") && docs.contains("| `memory_mb` | integer 16–4096 | `64` |"), "{docs}");
    assert!(docs.contains("- `MEMCACHED_SERVERS`") && docs.contains("## Capabilities"), "{docs}");

    // A file swapped in afterwards no longer verifies.
    let mut bytes = std::fs::read(&installed).unwrap();
    bytes.extend_from_slice(&custom_section());
    std::fs::write(&installed, bytes).unwrap();
    let text = refused(&provisioner(dir.path(), &["plugins", "verify"]));
    assert!(text.contains("DIFFERS from the registry's sha256"), "{text}");
}

#[test]
fn install_over_http() {
    let registry = Registry::new(false);
    let url = serve(registry.path());
    let dir = project(&registry_table("http://unused.invalid", &registry.public_key, true));
    // --registry wins over [registry] url.
    let text = ok(&provisioner(dir.path(), &["plugins", "install", "memcached", "--registry", &url]));
    assert!(text.contains("installed memcached 0.1.0"), "{text}");
    let text = refused(&provisioner(dir.path(), &["plugins", "install", "nosuch", "--registry", &url]));
    assert!(text.contains("no plugin called `nosuch` (the registry has: memcached)"), "{text}");
}

#[test]
fn a_tampered_artifact_is_refused() {
    let registry = Registry::new(false);
    let dir = project(&registry_table(registry.path().to_str().unwrap(), &registry.public_key, true));
    let mut bytes = std::fs::read(registry.artifact()).unwrap();
    bytes.extend_from_slice(&custom_section());
    std::fs::write(registry.artifact(), &bytes).unwrap();

    let text = refused(&provisioner(dir.path(), &["plugins", "install", "memcached"]));
    assert!(text.contains("refusing memcached@0.1.0") && text.contains("but the index says"), "{text}");
    assert!(text.contains("nothing was installed"), "{text}");
    assert!(!dir.path().join("plugins/memcached.wasm").exists());

    // Whoever can change the artifact may change the index too: the signature still
    // covers the original digest.
    let index_path = registry.path().join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["plugins"]["memcached"]["versions"]["0.1.0"]["sha256"] = sha256(&bytes).into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let text = refused(&provisioner(dir.path(), &["plugins", "install", "memcached"]));
    assert!(text.contains("does not match this plugin's name, version and sha256"), "{text}");
    assert!(!dir.path().join("plugins/memcached.wasm").exists());
}

#[test]
fn unsigned_or_untrusted_plugins_are_refused_when_signatures_are_required() {
    let unsigned = Registry::new(true);
    let folder = unsigned.path();
    let dir = project(&registry_table(folder.to_str().unwrap(), &unsigned.public_key, true));
    let text = refused(&provisioner(dir.path(), &["plugins", "install", "memcached"]));
    assert!(text.contains("it is not signed, and [registry] require_signatures is on"), "{text}");
    assert!(!dir.path().join("plugins/memcached.wasm").exists());

    // Turning the requirement off is a deliberate line in the file.
    let dir = project(&registry_table(folder.to_str().unwrap(), &unsigned.public_key, false));
    ok(&provisioner(dir.path(), &["plugins", "install", "memcached"]));

    // Signed, but by a key the project does not trust.
    let signed = Registry::new(false);
    let stranger = Registry::new(false).public_key;
    let dir = project(&registry_table(signed.path().to_str().unwrap(), &stranger, true));
    let text = refused(&provisioner(dir.path(), &["plugins", "install", "memcached"]));
    assert!(text.contains(&format!("signed by {}, which is not among [registry] trusted_keys", signed.public_key)), "{text}");
}

fn memcached_image() -> &'static str {
    support::require(&[], &[MEMCACHED_IMAGE]);
    MEMCACHED_IMAGE
}

#[test]
fn a_dropped_in_plugin_gets_nothing_until_granted_and_the_run_says_how() {
    let image = memcached_image();
    let stack = support::Stack::with_images("dropin", &[("cache", image)], "[services.cache]\nplugin = \"memcached\"\n");
    std::fs::create_dir(stack.path().join("plugins")).unwrap();
    std::fs::copy(support::example_plugin("memcached"), stack.path().join("plugins/memcached.wasm")).unwrap();

    let listing = ok(&provisioner(stack.path(), &["plugins", "list"]));
    assert!(listing.contains("[unsigned · not granted]") && listing.contains("UNVERIFIED: nothing granted"), "{listing}");
    assert!(listing.contains("DENIED   image memcached:1*") && listing.contains("run containers from images matching `memcached:1*`"), "{listing}");
    assert!(listing.contains("publish container port 11211 on the host"), "{listing}");

    let text = refused(&provisioner(stack.path(), &["run", "local"]));
    assert!(text.contains(&format!("image `{image}` is declared by plugin `memcached` but not granted")), "{text}");
    // The table on a line of its own (the denial above mentions it inline too).
    let advice_start = text.find("\n[plugins.memcached.grants]\n").unwrap_or_else(|| panic!("no grants table in:\n{text}")) + 1;
    let advice: String = text[advice_start..].lines().take_while(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n");
    assert_eq!(
        advice,
        "[plugins.memcached.grants]\nimages = [\"memcached:1*\", \"*/memcached:1*\"]\npublish = [11211]\nnet_probe = true"
    );
    assert!(stack.container_ids().is_empty(), "nothing was started");

    // Pasting exactly what it said is enough.
    let file = stack.path().join("provisioner.toml");
    let toml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{toml}\n{advice}\n")).unwrap();
    let text = ok(&provisioner(stack.path(), &["run", "local"]));
    assert!(text.contains("wrote") && text.contains("provisioner.lock"), "{text}");
    let servers = stack.dotenv()["MEMCACHED_SERVERS"].clone();
    assert_eq!(memcached_version(&servers).split('.').take(2).collect::<Vec<_>>(), ["1", "6"], "at {servers}");
    let listing = ok(&provisioner(stack.path(), &["plugins", "list", "--json"]));
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listing["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "memcached").unwrap()["trust"], "granted");
}

const GRANT_MISBEHAVE: &str = "[plugins.misbehave.grants]\nimages = [\"allowed:*\"]\nexec = true\n";

#[test]
fn locked_catches_a_changed_digest_and_a_widened_grant() {
    let services = format!("[services.app]\nplugin = \"misbehave\"\nconfig = {{ do = \"ok\" }}\n\n{GRANT_MISBEHAVE}");
    let stack = support::Stack::with_images("locked", &[], &services);
    std::fs::create_dir(stack.path().join("plugins")).unwrap();
    let plugin = stack.path().join("plugins/misbehave.wasm");
    std::fs::copy(support::fixture("misbehave"), &plugin).unwrap();
    let lockfile = stack.path().join("provisioner.lock");

    // Without a lockfile, --locked has nothing to hold the run to.
    let text = refused(&provisioner(stack.path(), &["run", "local", "--locked"]));
    assert!(text.contains("there is no") && text.contains("without --locked"), "{text}");
    assert!(!lockfile.exists());

    let text = ok(&provisioner(stack.path(), &["run", "local"]));
    assert!(text.contains(&format!("wrote {}", lockfile.display())), "{text}");
    let locked = std::fs::read_to_string(&lockfile).unwrap();
    assert!(locked.contains("[plugins.misbehave]") && locked.contains(&sha256(&std::fs::read(&plugin).unwrap())), "{locked}");
    assert!(locked.contains("exec = true") && locked.contains("grants_from = \"project-file\""), "{locked}");
    ok(&provisioner(stack.path(), &["run", "local", "--locked"]));
    assert_eq!(std::fs::read_to_string(&lockfile).unwrap(), locked, "an unchanged run leaves the file alone");

    // A widened grant: refused under --locked and under CI=true alike.
    let file = stack.path().join("provisioner.toml");
    let toml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, toml.replace("exec = true", "exec = true\nsecrets = true")).unwrap();
    for (args, env) in [(vec!["run", "local", "--locked"], vec![]), (vec!["run", "local"], vec![("CI", "true")])] {
        let text = refused(&provisioner_with(stack.path(), &args, &env));
        assert!(text.contains("plugin `misbehave`: grants widened by secrets"), "{text}");
        assert!(text.contains("run once without --locked (and with CI unset) to accept them"), "{text}");
    }
    assert_eq!(std::fs::read_to_string(&lockfile).unwrap(), locked, "--locked never writes");
    std::fs::write(&file, &toml).unwrap();

    // A changed digest: the same plugin with one more (harmless) custom section.
    let mut bytes = std::fs::read(&plugin).unwrap();
    let old_sha = sha256(&bytes);
    bytes.extend_from_slice(&custom_section());
    std::fs::write(&plugin, &bytes).unwrap();
    let new_sha = sha256(&bytes);
    let text = refused(&provisioner(stack.path(), &["run", "local", "--locked"]));
    assert!(text.contains(&format!("has sha256 {new_sha}, the lockfile has {old_sha}")), "{text}");

    // Accepting it is a run without --locked, which says what it changed.
    let text = ok(&provisioner(stack.path(), &["run", "local"]));
    assert!(text.contains("updated") && text.contains(&format!("has sha256 {new_sha}")), "{text}");

    // What CI runs: stdout stays one JSON document.
    let out = provisioner_with(stack.path(), &["run", "local", "--json"], &[("CI", "true")]);
    ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(summary["services"][0]["status"], "ready", "{summary}");
    let verified = ok(&provisioner(stack.path(), &["plugins", "verify"]));
    assert!(verified.contains("lock:     matches") && verified.contains("no registry configured"), "{verified}");
}

#[test]
fn scaffold_builds_and_passes_check() {
    let work = tempfile::tempdir().unwrap();
    let name = "scaffold-probe";
    let dir = work.path().join(name);
    let text = ok(&provisioner(work.path(), &["plugins", "new", name]));
    assert!(text.contains("cargo plugin"), "{text}");
    assert!(dir.join(".cargo/config.toml").is_file());
    // Issue 18.10: `cargo test` works in a fresh scaffold as it is (natively).
    let tested = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .arg("test")
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", support::root().join("target/scaffold-native"))
        .output()
        .expect("running cargo test");
    assert!(tested.status.success(), "cargo test in the scaffold:\n{}", support::text(&tested));
    assert!(support::text(&tested).contains("config_defaults_and_typos ... ok"), "{}", support::text(&tested));

    // Issue 18.11: its unit tests run against the SDK's mock host, hooks and all.
    assert!(support::text(&tested).contains("ready_only_when_the_page_comes_back ... ok"), "{}", support::text(&tested));

    let built = support::build_wasm_crate(&dir.join("Cargo.toml")).join("scaffold_probe.wasm");
    assert!(built.is_file(), "{} was not built", built.display());

    // The template runs BusyBox's httpd; with no registry reachable, the local BusyBox
    // image stands in for `busybox:1.36` as an environment image override would.
    let out = provisioner(work.path(), &["plugins", "check", built.to_str().unwrap(), "--image", support::busybox_image()]);
    let text = ok(&out);
    assert!(text.contains("9 of 9 checks passed"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");

    // Issue 18.12: its starter scenario passes as written, replace path included.
    let out = provisioner(&dir, &["plugins", "test", built.to_str().unwrap(), "scenario.toml", "--image", support::busybox_image()]);
    let text = ok(&out);
    assert!(text.contains("PASS  step 2 \"a new message replaces the container, same address\": output SCAFFOLD_PROBE_URL unchanged"), "{text}");
    assert!(!text.contains("FAIL") && !text.contains("SKIP"), "{text}");

    // And it fails, saying why, what this host cannot run.
    let out = provisioner(work.path(), &["plugins", "check", support::fixture("future_wit").to_str().unwrap()]);
    let text = refused(&out);
    assert!(text.contains("FAIL  loads as a component of a supported WIT version"), "{text}");
}

#[test]
fn check_fails_plugins_that_break_the_rules_and_says_why() {
    let work = tempfile::tempdir().unwrap();
    let fixture = support::fixture("misbehave");
    let check = |config: &str| refused(&provisioner(work.path(), &["plugins", "check", fixture.to_str().unwrap(), "--config", config]));
    // (config, the failing check, and why)
    let cases = [
        ("{}", "FAIL  validate accepts the test config", "missing field `do`"),
        (r#"{"do":"denied"}"#, "FAIL  provision and ready within the limits", "asked for something it did not declare: image `forbidden:latest`"),
        (r#"{"do":"panic"}"#, "FAIL  provision and ready within the limits", "fixture panicked on purpose"),
    ];
    for (config, failing, why) in cases {
        let text = check(config);
        let line = text.lines().find(|l| l.starts_with(failing)).unwrap_or_else(|| panic!("{config}: no `{failing}` in:\n{text}"));
        assert!(line.contains(why) || text.contains(why), "{config}: {text}");
    }
}

/// A wasm custom section: valid anywhere in a component, so appending one changes the
/// file's sha256 without changing what it does.
fn custom_section() -> Vec<u8> {
    let name = b"tampered";
    let payload = b"!";
    let size = 1 + name.len() + payload.len();
    let mut section = vec![0u8, size as u8, name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    section
}

fn sha256(bytes: &[u8]) -> String {
    provisioner::runtime::cache::sha256_hex(bytes)
}

/// Serve `dir` over HTTP on 127.0.0.1 (GET only, one request per connection) for the
/// rest of the test process; returns the base URL.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            let mut body = Vec::new();
            let status = match std::fs::File::open(dir.join(&path)).and_then(|mut f| f.read_to_end(&mut body)) {
                Ok(_) if !path.contains("..") => "200 OK",
                _ => {
                    body.clear();
                    "404 Not Found"
                }
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    url
}

/// Issue 12.8: replicas whose PID 1 ignores SIGTERM, each asking an hour to stop, and a
/// teardown hook that stops them one by one. The hook is cut at its deadline and the
/// sweep stops what is left side by side within its grace, so the teardown is bounded
/// by those two, not by replicas × stop timeout.
#[test]
fn teardown_is_bounded_whatever_a_plugin_asks_of_its_containers() {
    let image = "allowed:stubborn";
    support::docker(&["tag", support::busybox_image(), image]);
    let services = format!(
        "[environments.local.limits]\nhook_timeout_ms = 5000\n\n[services.stubborn]\nplugin = \"misbehave\"\nconfig = {{ do = \"stubborn\" }}\n\n{GRANT_MISBEHAVE}"
    );
    let stack = support::Stack::with_images("stubborn", &[], &services);
    std::fs::create_dir(stack.path().join("plugins")).unwrap();
    std::fs::copy(support::fixture("misbehave"), stack.path().join("plugins/misbehave.wasm")).unwrap();
    ok(&provisioner(stack.path(), &["run", "local"]));
    assert_eq!(stack.container_ids().lines().count(), 4, "{:?}", stack.labelled());

    let started = std::time::Instant::now();
    let out = provisioner(stack.path(), &["teardown", "local"]);
    let took = started.elapsed();
    eprintln!("teardown of 4 replicas that ignore SIGTERM, each asking an hour: {took:?}");
    let text = support::text(&out);
    assert!(stack.labelled().is_empty(), "left behind: {:?}\n{text}", stack.labelled());
    assert!(text.contains("deadline of 5.0 s exceeded"), "the cut hook is reported:\n{text}");
    // 5 s of hook, 10 s of sweep grace (stops side by side), and the engine's own work;
    // before, 4 × 300 s.
    assert!(took < std::time::Duration::from_secs(40), "teardown took {took:?}:\n{text}");
    support::docker(&["rmi", image]);
}

/// Issue 18.3: a project that mixes a first-party plugin with a registry plugin
/// verifies: the host's own plugins are pinned by the lock, not looked up in the
/// project's registry.
#[test]
fn verify_passes_with_first_party_plugins_beside_registry_ones() {
    let registry = Registry::new(false);
    let services = "[services.cache]\nplugin = \"redis\"\n";
    let stack = support::Stack::with_images(
        "mixed",
        &[("cache", "provisioner-offline/redis:7")],
        &format!("{services}\n{}", registry_table(registry.path().to_str().unwrap(), &registry.public_key, true)),
    );
    ok(&provisioner(stack.path(), &["plugins", "install", "memcached"]));
    ok(&provisioner(stack.path(), &["run", "local"]));
    let verified = ok(&provisioner(stack.path(), &["plugins", "verify"]));
    assert!(verified.contains("ok   redis") && verified.contains("first-party, from the host's own folder"), "{verified}");
    assert!(verified.contains("ok   memcached") && verified.contains("verified, signed by ed25519:"), "{verified}");
}

/// Issue 18.12: the Memcached example's scenario against the real engine: a run, the
/// replace path keeping the address, a config refused for its derived range, teardown
/// keeping volumes and a run again, each step and assertion on a line of its own; and
/// a failing assertion fails the command, naming its step and assertion, with the
/// project torn down all the same.
#[test]
fn memcached_scenario_passes_and_a_failing_assertion_says_where() {
    let image = memcached_image();
    let wasm = support::example_plugin("memcached");
    let scenario = support::root().join("examples/plugins/memcached/scenario.toml");
    let work = tempfile::tempdir().unwrap();
    let args = ["plugins", "test", wasm.to_str().unwrap(), scenario.to_str().unwrap(), "--image", image];
    let text = ok(&provisioner(work.path(), &args));
    for line in [
        "PASS  step 1 \"first run\": run with config {\"memory_mb\":64}",
        "PASS  step 1 \"first run\": tcp MEMCACHED_SERVERS answers \"STAT maxbytes 67108864\"",
        "PASS  step 1 \"first run\": exec memcached -V",
        "PASS  step 2 \"more memory replaces the container, same address\": output MEMCACHED_SERVERS unchanged",
        "PASS  step 2 \"more memory replaces the container, same address\": tcp MEMCACHED_SERVERS answers \"STAT maxbytes 134217728\"",
        "PASS  step 3 \"a value out of range is refused\": run with config {\"memory_mb\":8} fails with",
        "PASS  step 4 \"teardown keeping volumes\": teardown --keep-volumes",
        "PASS  step 5 \"back again\": 1 container(s)",
        "PASS  cleanup: nothing is left",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "no line starting `{line}` in:\n{text}");
    }
    assert!(!text.contains("FAIL") && !text.contains("SKIP"), "{text}");

    // The same under --json: one document, every result passed.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = provisioner(work.path(), &json_args);
    ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(report["passed"], true, "{report}");
    assert!(report["results"].as_array().unwrap().iter().all(|r| r["verdict"] == "pass"), "{report}");

    // A wrong expectation in step 2: the command fails, the line names step and
    // assertion with what was seen, later steps are skipped, and nothing is left.
    let failing = work.path().join("failing.toml");
    let wrong = std::fs::read_to_string(&scenario).unwrap().replace("STAT maxbytes 134217728", "STAT maxbytes 999");
    std::fs::write(&failing, wrong).unwrap();
    let out = provisioner(work.path(), &["plugins", "test", wasm.to_str().unwrap(), failing.to_str().unwrap(), "--image", image]);
    let text = refused(&out);
    let line = text.lines().find(|l| l.starts_with("FAIL")).unwrap_or_else(|| panic!("no FAIL line in:\n{text}"));
    assert!(
        line.starts_with("FAIL  step 2 \"more memory replaces the container, same address\": tcp MEMCACHED_SERVERS answers \"STAT maxbytes 999\""),
        "{line}"
    );
    assert!(line.contains("STAT maxbytes 134217728"), "what it answered instead: {line}");
    assert!(text.contains("SKIP  step 3 \"a value out of range is refused\": run (step 2 failed)"), "{text}");
    assert!(text.contains("PASS  cleanup: teardown") && text.contains("PASS  cleanup: nothing is left"), "{text}");
    let project = text.lines().last().and_then(|l| l.split("(project ").nth(1)).and_then(|r| r.split(',').next()).unwrap_or_else(|| panic!("no project named in:\n{text}"));
    assert!(support::docker(&["ps", "-aq", "--filter", &format!("label=provisioner.project={project}")]).is_empty(), "containers of {project} left");

    // A scenario that names an output the plugin does not have is refused before
    // anything starts, naming the file and step.
    let typo = work.path().join("typo.toml");
    std::fs::write(&typo, "[[step]]\nexpect.tcp = \"MEMCACHED_SERVER\"\n").unwrap();
    let text = refused(&provisioner(work.path(), &["plugins", "test", wasm.to_str().unwrap(), typo.to_str().unwrap()]));
    assert!(text.contains("typo.toml: step 1: expect.tcp: `MEMCACHED_SERVER` is not an output of plugin `memcached`"), "{text}");
}
