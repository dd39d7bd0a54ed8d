//! Shared by the test suites: building the fixture plugins for wasm32-wasip2, and
//! throwaway project folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod oci_registry;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Build the crates of a wasm workspace (`manifest`) and return the folder holding
/// their `.wasm` files. Built once per test process; cargo makes it a no-op when
/// nothing changed.
fn build_wasm(manifest: &Path) -> PathBuf {
    let target_dir = root().join("target").join("wasm");
    let status = Command::new(cargo())
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", reproducible_rustflags(&root()))
        .env_remove("RUSTFLAGS")
        .status()
        .expect("running cargo");
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed; is the target installed? (rustup target add wasm32-wasip2)",
        manifest.display()
    );
    target_dir.join("wasm32-wasip2").join("release")
}

/// What `cargo xtask plugins` passes (xtask's `reproducible_rustflags`) for a checkout
/// at `root`: the checkout and cargo's crates.io sources by fixed names, so a component
/// is the same bytes wherever it is built (what the examples' lockfiles pin).
pub fn reproducible_rustflags(root: &Path) -> String {
    let home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    format!("--remap-path-prefix={}=/src\x1f--remap-path-prefix={home}=/cargo", root.display())
}

/// The folder with the fixture plugins `misbehave.wasm` and `future_wit.wasm`.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_wasm(&root().join("tests/fixtures/Cargo.toml")))
}

/// The third-party example plugin `examples/plugins/NAME`, built for wasm32-wasip2
/// from its own workspace.
pub fn example_plugin(name: &str) -> PathBuf {
    let dir = build_wasm(&root().join("examples/plugins").join(name).join("Cargo.toml"));
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "example plugin {} was not built", path.display());
    path
}

/// Build the wasm crate at `manifest` into the shared wasm target folder and return
/// the folder holding its `.wasm` (for crates a test makes itself).
pub fn build_wasm_crate(manifest: &Path) -> PathBuf {
    build_wasm(manifest)
}

pub fn fixture(name: &str) -> PathBuf {
    let path = fixtures().join(format!("{name}.wasm"));
    assert!(path.is_file(), "fixture {} was not built", path.display());
    path
}

/// A fresh folder holding `provisioner.toml` with `contents` and a `plugins/` folder
/// with the given fixture plugins.
pub fn project(contents: &str, plugins: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("provisioner.toml"), contents).expect("writing provisioner.toml");
    std::fs::create_dir(dir.path().join("plugins")).expect("plugins dir");
    for plugin in plugins {
        std::fs::copy(fixture(plugin), dir.path().join("plugins").join(format!("{plugin}.wasm"))).expect("copying fixture");
    }
    dir
}

/// A project name no other test run uses.
pub fn unique_name(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % 0xfffff)
}

/// The offline image each conventional service name runs in the end-to-end tests.
pub const OFFLINE_IMAGES: &[(&str, &str)] = &[
    ("db", "provisioner-offline/postgres:15"),
    ("cache", "provisioner-offline/redis:7"),
    ("files", "provisioner-offline/garage:2.5.0"),
    ("queue", "provisioner-offline/rabbitmq:3"),
];

/// The text of a command that must have succeeded.
pub fn ok(out: &std::process::Output) -> String {
    let text = text(out);
    assert!(out.status.success(), "expected success:\n{text}");
    text
}

/// The text of a command that must have been refused.
pub fn refused(out: &std::process::Output) -> String {
    let text = text(out);
    assert!(!out.status.success(), "expected a refusal:\n{text}");
    text
}

/// `version` over Memcached's text protocol at `addr`.
pub fn memcached_version(addr: &str) -> String {
    use std::io::{BufRead, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to memcached");
    stream.write_all(b"version\r\n").unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line).unwrap();
    line.trim().strip_prefix("VERSION ").unwrap_or_else(|| panic!("answer: {line}")).to_string()
}

/// stdout then stderr of a finished command.
pub fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Run the docker CLI; its trimmed stdout (a failure is an empty answer: the callers
/// look for things and treat "none" alike).
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("running docker");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Fail with what to run when the end-to-end prerequisites are missing; `cargo xtask
/// test` provides all of them.
pub fn require(plugins: &[&str], images: &[&str]) {
    for plugin in plugins {
        let path = root().join("target/plugins").join(format!("{plugin}.wasm"));
        assert!(path.is_file(), "{} is missing: run `cargo xtask plugins` (or `cargo xtask test`)", path.display());
    }
    for image in images {
        let present = Command::new("docker").args(["image", "inspect", image]).output().is_ok_and(|o| o.status.success());
        assert!(present, "image {image} is missing or Docker is not running: run `cargo xtask images` (or `cargo xtask test`)");
    }
}

/// wasm-pkg-tools' `wkg`: on PATH or in cargo's bin folder, where `cargo xtask test`
/// installs it.
pub fn wkg() -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("bin/wkg");
    let on_path = std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("wkg")).find(|p| p.is_file()));
    let found = on_path.or_else(|| cargo_bin.is_file().then_some(cargo_bin));
    found.expect("wkg is missing: run `cargo xtask test`, or `cargo install wkg --locked`")
}

/// `provisioner-test/busybox:latest`, built from the machine's /bin/busybox by
/// tests/images/busybox.sh (no registry involved) when it is missing.
pub fn busybox_image() -> &'static str {
    const IMAGE: &str = "provisioner-test/busybox:latest";
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let present = Command::new("docker").args(["image", "inspect", IMAGE]).output().is_ok_and(|o| o.status.success());
        if !present {
            let out = Command::new("bash").arg(root().join("tests/images/busybox.sh")).output().expect("run tests/images/busybox.sh");
            assert!(out.status.success(), "tests/images/busybox.sh failed (needs Docker and busybox-static):\n{}", text(&out));
        }
    });
    IMAGE
}

/// A project folder on the real engine, torn down (volumes included) when dropped.
pub struct Stack {
    dir: tempfile::TempDir,
    pub name: String,
}

impl Stack {
    /// `services` (TOML `[services.*]` tables) with the offline image of each
    /// conventional service name present.
    pub fn new(prefix: &str, services: &str) -> Stack {
        let images: Vec<(&str, &str)> = OFFLINE_IMAGES
            .iter()
            .filter(|(service, _)| services.contains(&format!("[services.{service}]")))
            .copied()
            .collect();
        Stack::with_images(prefix, &images, services)
    }

    pub fn with_images(prefix: &str, images: &[(&str, &str)], services: &str) -> Stack {
        let name = unique_name(prefix);
        let images: Vec<String> = images.iter().map(|(s, i)| format!("{s} = \"{i}\"")).collect();
        let toml =
            format!("[project]\nname = \"{name}\"\n\n[environments.local]\nimages = {{ {} }}\n\n{services}", images.join(", "));
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("provisioner.toml"), toml).expect("writing provisioner.toml");
        Stack { dir, name }
    }

    /// A project from a whole provisioner.toml, renamed to a fresh project name.
    pub fn from_file(prefix: &str, file: &Path) -> Stack {
        let name = unique_name(prefix);
        let text = std::fs::read_to_string(file).expect("reading the project file");
        let (before, after) = text.split_once("[project]\nname = \"").expect("the file starts its [project] table with name");
        let (_, rest) = after.split_once('"').expect("a quoted project name");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("provisioner.toml"), format!("{before}[project]\nname = \"{name}\"{rest}"))
            .expect("writing provisioner.toml");
        Stack { dir, name }
    }

    /// Replace `from` by `to` in the project's provisioner.toml (it must occur).
    pub fn edit(&self, from: &str, to: &str) {
        let file = self.path().join("provisioner.toml");
        let text = std::fs::read_to_string(&file).expect("reading provisioner.toml");
        assert!(text.contains(from), "provisioner.toml has no `{from}`");
        std::fs::write(&file, text.replacen(from, to, 1)).expect("writing provisioner.toml");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The real binary, in the project folder.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .args(args)
            .current_dir(self.path())
            .env_remove("PROVISIONER_PLUGIN_PATH")
            // CI=true would imply --locked, and these throwaway projects have no lockfile.
            .env_remove("CI")
            .output()
            .expect("running provisioner")
    }

    /// The `.env` the last run wrote.
    pub fn dotenv(&self) -> std::collections::BTreeMap<String, String> {
        let text = std::fs::read_to_string(self.path().join(".env")).expect(".env written");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    }

    /// Ids of the project's running containers.
    pub fn container_ids(&self) -> String {
        docker(&["ps", "-q", "--no-trunc", "--filter", &format!("label=provisioner.project={}", self.name)])
    }

    /// Everything on the engine labelled for the project, as "kind name" lines.
    pub fn labelled(&self) -> Vec<String> {
        let filter = format!("label=provisioner.project={}", self.name);
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
            for id in docker(&list).split_whitespace() {
                let _ = Command::new("docker").args(&remove).arg(id).output();
            }
        }
    }
}

/// An HTTP client with a 10 s timeout, for requests through the load balancer.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(10)).build()
}

/// Status, `X-Replica` header and body of a request; a transport error is an `Err`.
pub fn request(agent: &ureq::Agent, method: &str, url: &str, body: Option<serde_json::Value>) -> Result<(u16, String, String), String> {
    let req = agent.request(method, url);
    let response = match body {
        Some(json) => req.send_json(json),
        None => req.call(),
    };
    let response = match response {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} {url}: {e}")),
    };
    let status = response.status();
    let replica = response.header("X-Replica").unwrap_or("").to_string();
    let body = response.into_string().map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
    Ok((status, replica, body))
}

/// GETs in a loop on another thread while `during` runs; every answer that is not a
/// 200 (or no answer at all) is recorded. (requests sent, failures)
pub fn under_load(url: &str, during: impl FnOnce()) -> (usize, Vec<String>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let loop_thread = {
        let (stop, url) = (stop.clone(), url.to_string());
        std::thread::spawn(move || {
            let agent = agent();
            let (mut sent, mut failures) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                sent += 1;
                match request(&agent, "GET", &url, None) {
                    Ok((200, ..)) => {}
                    Ok((status, replica, body)) => failures.push(format!("{status} from {replica}: {}", body.trim())),
                    Err(e) => failures.push(e),
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (sent, failures)
        })
    };
    during();
    stop.store(true, Ordering::Relaxed);
    loop_thread.join().expect("the request loop panicked")
}

/// Poll `url` until it answers 200; the last answer if it did not within `within`.
pub fn until_ok(url: &str, within: std::time::Duration) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(5)).build();
    let deadline = std::time::Instant::now() + within;
    loop {
        let last = match agent.get(url).call() {
            Ok(r) if r.status() == 200 => return Ok(()),
            Ok(r) => format!("{}", r.status()),
            Err(e) => e.to_string(),
        };
        if std::time::Instant::now() >= deadline {
            return Err(last);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
