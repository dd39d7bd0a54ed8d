//! Developer entry points: `cargo xtask plugins | test | bench`.
//!
//! Each one installs what it needs that a fresh machine lacks (the `wasm32-wasip2`
//! target), so the README's commands work as typed.

mod cluster;
mod engine;
mod images;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plugins") => plugins().map(|_| ()),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("demo") => demo(),
        Some("images") => engine::ensure().and_then(|()| images::build()).and_then(|()| match args.get(1).map(String::as_str) {
            Some("--push") => match args.get(2) {
                Some(registry) => images::push(registry),
                None => bail!("usage: cargo xtask images [--push REGISTRY]"),
            },
            Some(other) => bail!("cargo xtask images: unknown argument `{other}` (usage: cargo xtask images [--push REGISTRY])"),
            None => Ok(()),
        }),
        Some("cluster") => match args.get(1).map(String::as_str) {
            Some("up") => images::build().and_then(|()| cluster::up()).map(|_| ()),
            Some("down") => cluster::down(),
            _ => bail!("usage: cargo xtask cluster up|down"),
        },
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 demo      bring up the example stack (examples/ticketing) with provisioner run local\n  \
                 plugins   build every first-party plugin into target/plugins/NAME.wasm and publish them,\n            \
                           signed with a dev key, into registry/\n  \
                 test      everything the test suite needs, then all tests (what CI runs)\n  \
                 bench     the benchmarks (plugin load, host-import overhead, run local cold/warm/teardown)\n  \
                 images    build the offline images from Debian packages (skips those present);\n            \
                           --push REGISTRY: then push them there, for a cluster's nodes to pull\n  \
                 cluster   up: a 3-node Docker Swarm in containers with a registry of the offline images\n            \
                           (for the Swarm tests); down: remove it"
            );
            bail!("no command given");
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// Add the wasm target through rustup when it is missing.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == WASM_TARGET) => Ok(()),
        Ok(_) => {
            eprintln!("xtask: installing the {WASM_TARGET} target (rustup target add {WASM_TARGET})");
            run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
        }
        // Without rustup the toolchain may still have the target; cargo will say if not.
        Err(_) => Ok(()),
    }
}

/// The first-party plugin crates: folders of plugins/ building a cdylib.
fn plugin_crates() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root().join("plugins"))? {
        let dir = entry?.path();
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() && std::fs::read_to_string(&manifest)?.contains("cdylib") {
            if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Build plugins/ for wasm32-wasip2 and copy each plugin to target/plugins/NAME.wasm,
/// the host's own plugin folder.
fn plugins() -> Result<PathBuf> {
    ensure_wasm_target()?;
    let root = root();
    let target_dir = root.join("target").join("wasm");
    run(cargo()
        .args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
        .arg(root.join("plugins/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", reproducible_rustflags()))?;
    let out = root.join("target").join("plugins");
    std::fs::create_dir_all(&out)?;
    let built = target_dir.join(WASM_TARGET).join("release");
    for name in plugin_crates()? {
        let file = built.join(format!("{}.wasm", name.replace('-', "_")));
        let dest = out.join(format!("{name}.wasm"));
        std::fs::copy(&file, &dest).with_context(|| format!("copying {} to {}", file.display(), dest.display()))?;
        eprintln!("xtask: {}", dest.display());
    }
    // The third-party example is published too (so `plugins install memcached` has
    // something to install) and dropped into its example project, whose committed
    // lockfile pins these bytes, but never put in the host's own folder.
    run(cargo()
        .args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
        .arg(root.join("examples/plugins/memcached/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", reproducible_rustflags()))?;
    let memcached = built.join("memcached.wasm");
    let example = root.join("examples/memcached/plugins");
    std::fs::create_dir_all(&example)?;
    std::fs::copy(&memcached, example.join("memcached.wasm")).with_context(|| format!("copying {} to {}", memcached.display(), example.display()))?;
    eprintln!("xtask: {}", example.join("memcached.wasm").display());
    publish(&out, &[memcached])?;
    Ok(out)
}

/// Flags that make a plugin the same bytes on every machine and in every checkout:
/// rustup's standard library is already named `/rustc/<hash>`, and a workspace's own
/// crates by relative paths (the Memcached example reaches the SDK through a link inside
/// its workspace for that reason); what is left is the checkout and where cargo keeps
/// the crates of crates.io (`$CARGO_HOME`, per user). tests/support uses the same. The two are separated by the ASCII unit separator, as cargo expects.
fn reproducible_rustflags() -> String {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    format!("--remap-path-prefix={}=/src\x1f--remap-path-prefix={}=/cargo", root().display(), home.display())
}

/// Publish every plugin of `plugins_dir`, and the `extra` files, into registry/,
/// signed with the dev key target/registry-dev.key (made on first use; its public half
/// is target/registry-dev.pub). The published files are build output (ignored by git;
/// registry/README.md, the format, is the folder's only tracked file): they are made
/// afresh each time, because a rebuilt plugin keeps its version and published
/// versions are immutable.
fn publish(plugins_dir: &Path, extra: &[PathBuf]) -> Result<()> {
    let root = root();
    run(cargo().current_dir(&root).args(["build", "--quiet", "-p", "provisioner"]))?;
    let provisioner = root.join("target/debug/provisioner");
    let (key, public) = (root.join("target/registry-dev.key"), root.join("target/registry-dev.pub"));
    if !key.exists() || !public.exists() {
        let _ = std::fs::remove_file(&key);
        let out = Command::new(&provisioner).args(["registry", "keygen"]).arg(&key).output().context("running provisioner registry keygen")?;
        if !out.status.success() {
            bail!("provisioner registry keygen failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::fs::write(&public, &out.stdout)?;
    }
    let registry = root.join("registry");
    for entry in std::fs::read_dir(&registry).with_context(|| format!("reading {}", registry.display()))? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "README.md") {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.with_context(|| format!("clearing {}", path.display()))?;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(plugins_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    files.extend(extra.iter().cloned());
    for file in files {
        run(Command::new(&provisioner).args(["registry", "publish"]).arg(&registry).arg(&file).arg("--key").arg(&key))?;
    }
    eprintln!(
        "xtask: registry {} (trusted key in {})",
        registry.display(),
        public.display()
    );
    Ok(())
}

/// Everything CI runs: the Docker engine and the offline images, the plugins, then
/// every test of the workspace.
fn test(extra: &[String]) -> Result<()> {
    engine::ensure()?;
    engine::ensure_test_tools()?;
    images::build()?;
    plugins()?;
    // The plugins' and the SDK's own unit tests, natively (the plugin workspace builds
    // for wasm32-wasip2 by default, where tests cannot run).
    run(cargo()
        .args(["test", "--workspace", "--target", &host_target()?, "--manifest-path"])
        .arg(root().join("plugins/Cargo.toml"))
        .env("CARGO_TARGET_DIR", root().join("target").join("plugins-native")))?;
    // The Swarm suite's cluster: three engines in containers and a registry. Taken
    // down afterwards (PROVISIONER_KEEP_CLUSTER=1 keeps it for the next run).
    cluster::up()?;
    // CI=true makes every `provisioner run` --locked; the suites run throwaway projects
    // without lockfiles and set CI themselves where they test that.
    let tested = run(cargo().current_dir(root()).args(["test", "--workspace"]).args(extra).env_remove("CI"));
    if std::env::var_os("PROVISIONER_KEEP_CLUSTER").is_none_or(|v| v.is_empty()) {
        cluster::down()?;
    }
    tested
}

/// The target triple of this machine, as rustc says it.
fn host_target() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV names no host target")
}

/// The benchmarks: the platform's (no engine needed) and `run local` (needs what
/// `test` prepares).
fn bench(extra: &[String]) -> Result<()> {
    engine::ensure()?;
    images::build()?;
    plugins()?;
    // The Swarm benchmark's cluster; left up (`cargo xtask cluster down` removes it).
    cluster::up()?;
    run(cargo().current_dir(root()).args(["bench", "-p", "provisioner", "--benches"]).args(extra).env_remove("CI"))?;
    // The config fuzz target, long: `cargo test` runs it briefly.
    run(cargo()
        .current_dir(root())
        .args(["test", "--release", "-p", "provisioner", "--test", "config_fuzz", "--", "--nocapture"])
        .env("PROPTEST_CASES", "20000"))
}

/// The example stack: everything it needs, then `provisioner run local` in
/// examples/ticketing.
fn demo() -> Result<()> {
    engine::ensure()?;
    images::build()?;
    plugins()?;
    let root = root();
    run(cargo().current_dir(&root).args(["build", "-p", "provisioner"]))?;
    let example = root.join("examples/ticketing");
    run(Command::new(root.join("target/debug/provisioner")).args(["run", "local"]).current_dir(&example))?;
    eprintln!("\n$ curl http://127.0.0.1:3000/health");
    run(Command::new("curl").args(["-fsS", "-i", "--max-time", "10", "http://127.0.0.1:3000/health"]))?;
    eprintln!(
        "\nxtask: the stack is up behind http://127.0.0.1:3000; the credentials are in {}.\n\
         xtask: in examples/ticketing, with target/debug/provisioner:\n  \
         provisioner status local                  what runs, and whether it is ready\n  \
         provisioner scale local backend=3         three backend instances behind the balancer\n  \
         provisioner teardown local --keep-volumes stop everything, keep the data for the next run\n  \
         provisioner teardown local                stop everything and delete the data",
        example.join(".env").display()
    );
    Ok(())
}
