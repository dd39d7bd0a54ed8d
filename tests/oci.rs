//! Plugins as OCI artifacts, end to end against a real registry: Debian's
//! `docker-registry` (distribution 2.8, which has no referrers API, so signatures are
//! found through their `sha256-<hex>.sig` tag), one container per test, started here
//! and removed when the test ends. The plugin is the third-party example
//! `examples/plugins/memcached`; the runs start `provisioner-offline/memcached:1.6`
//! (`cargo xtask images`, which also builds the registry image).
//!
//! Every command runs with `DOCKER_CONFIG` pointing at a folder of the test's own, so
//! the machine's Docker logins play no part.

mod support;

use support::{memcached_version, ok, refused};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::oci_registry::{docker_config, Registry};

const MEMCACHED_IMAGE: &str = "provisioner-offline/memcached:1.6";

/// The real binary in `dir`, with CI unset and DOCKER_CONFIG at `config`.
fn provisioner(dir: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(args)
        .current_dir(dir)
        .env_remove("PROVISIONER_PLUGIN_PATH")
        .env_remove("CI")
        .env("DOCKER_CONFIG", config)
        .output()
        .expect("running provisioner")
}

/// A publisher: a signing key and its public half.
struct Publisher {
    dir: tempfile::TempDir,
    key: PathBuf,
    public_key: String,
}

fn publisher() -> Publisher {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("publisher.key");
    let config = docker_config(None);
    let out = ok(&provisioner(dir.path(), config.path(), &["registry", "keygen", key.to_str().unwrap()]));
    let public_key = out.lines().next().unwrap().to_string();
    Publisher { dir, key, public_key }
}

fn memcached_wasm() -> PathBuf {
    support::example_plugin("memcached")
}

/// `registry push FILE REFERENCE --key KEY` (or `--unsigned`); the pinned reference it printed.
fn push(publisher: &Publisher, config: &Path, wasm: &Path, reference: &str, signed: bool) -> String {
    let mut args = vec!["registry", "push", wasm.to_str().unwrap(), reference];
    if signed {
        args.extend(["--key", publisher.key.to_str().unwrap()]);
    } else {
        args.push("--unsigned");
    }
    let text = ok(&provisioner(publisher.dir.path(), config, &args));
    let pinned = text.split_whitespace().find(|w| w.starts_with("oci://") && w.contains("@sha256:")).unwrap_or_else(|| panic!("{text}"));
    assert!(pinned.starts_with(&format!("{reference}@sha256:")), "{text}");
    pinned.to_string()
}

/// The memcached example's project, renamed, with the registry table: a developer's
/// checkout, or (without its plugins/) a fresh clone.
fn memcached_project(prefix: &str, public_key: &str) -> support::Stack {
    let stack = support::Stack::from_file(prefix, &support::root().join("examples/memcached/provisioner.toml"));
    let file = stack.path().join("provisioner.toml");
    let toml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{toml}\n[registry]\ntrusted_keys = [\"{public_key}\"]\n")).unwrap();
    stack
}

fn sha256(bytes: &[u8]) -> String {
    provisioner::runtime::cache::sha256_hex(bytes)
}

/// The wasm with a custom section appended: another digest, the same plugin.
fn rebuilt(wasm: &Path, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(wasm).unwrap();
    let (name, payload) = (b"rebuilt", b"2");
    bytes.extend_from_slice(&[0u8, (1 + name.len() + payload.len()) as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    let path = dir.join("memcached-rebuilt.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What most tests start from: a plain registry of their own, a publisher, an empty
/// Docker config, the memcached example and a reference to push it to.
struct Setup {
    registry: Registry,
    publisher: Publisher,
    config: tempfile::TempDir,
    wasm: PathBuf,
    reference: String,
}

fn setup(repo_tag: &str) -> Setup {
    let registry = Registry::start(None);
    let reference = registry.reference(repo_tag);
    Setup { registry, publisher: publisher(), config: docker_config(None), wasm: memcached_wasm(), reference }
}

#[test]
fn push_inspect_install_run_and_a_fresh_clone_fetches_what_is_locked() {
    support::require(&[], &[MEMCACHED_IMAGE]);
    let Setup { registry, publisher, config, wasm, reference } = setup("plugins/memcached:0.1.0");

    let pinned = push(&publisher, config.path(), &wasm, &reference, true);
    // The layout wkg and other wasm tools read: one application/wasm layer, the wasm config.
    let manifest: serde_json::Value = ureq::get(&format!("http://{}/v2/plugins/memcached/manifests/0.1.0", registry.address))
        .set("Accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest["layers"][0]["digest"], format!("sha256:{}", sha256(&std::fs::read(&wasm).unwrap())));
    assert_eq!(manifest["annotations"]["org.opencontainers.image.title"], "memcached");

    let stack = memcached_project("oci", &publisher.public_key);
    let dir = stack.path();
    // What it asks for and who signed it, before anything is installed.
    let text = ok(&provisioner(dir, config.path(), &["plugins", "inspect", &reference]));
    assert!(text.starts_with("memcached 0.1.0"), "{text}");
    assert!(text.contains(&format!("signature  signed by {}", publisher.public_key)), "{text}");
    assert!(text.contains(&format!("reference  {pinned}")), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("granted ") && l.contains("publish 11211")), "{text}");
    assert!(!dir.join("plugins").exists(), "inspect installs nothing");

    let text = ok(&provisioner(dir, config.path(), &["plugins", "install", &reference]));
    assert!(text.contains(&format!("installed memcached 0.1.0 into {}", dir.join("plugins/memcached.wasm").display())), "{text}");
    assert!(text.contains(&format!("signed by {}", publisher.public_key)) && text.contains(&format!("from {pinned}")), "{text}");
    assert_eq!(std::fs::read(dir.join("plugins/memcached.wasm")).unwrap(), std::fs::read(&wasm).unwrap());
    let again = ok(&provisioner(dir, config.path(), &["plugins", "install", &pinned]));
    assert!(again.contains("already installed"), "{again}");

    let text = ok(&provisioner(dir, config.path(), &["run", "local"]));
    assert!(text.contains("provisioner.lock"), "{text}");
    let servers = stack.dotenv()["MEMCACHED_SERVERS"].clone();
    assert!(memcached_version(&servers).starts_with("1.6"), "at {servers}");
    let lock = std::fs::read_to_string(dir.join("provisioner.lock")).unwrap();
    assert!(lock.contains(&format!("source = \"{pinned}\"")), "the lock says where it came from:\n{lock}");
    ok(&provisioner(dir, config.path(), &["teardown", "local"]));

    // A fresh clone: provisioner.toml and provisioner.lock, no plugins/. It runs as is.
    let clone = support::Stack::from_file("oci-clone", &dir.join("provisioner.toml"));
    std::fs::copy(dir.join("provisioner.lock"), clone.path().join("provisioner.lock")).unwrap();
    let text = ok(&provisioner(clone.path(), config.path(), &["run", "local", "--locked"]));
    assert!(text.contains(&format!("fetched memcached 0.1.0 from {pinned}")), "{text}");
    let servers = clone.dotenv()["MEMCACHED_SERVERS"].clone();
    assert!(memcached_version(&servers).starts_with("1.6"), "at {servers}");
    assert_eq!(std::fs::read(clone.path().join("plugins/memcached.wasm")).unwrap(), std::fs::read(&wasm).unwrap());
    // The lock is unchanged: the clone runs what was reviewed.
    assert_eq!(std::fs::read_to_string(clone.path().join("provisioner.lock")).unwrap(), lock);
    let text = ok(&provisioner(clone.path(), config.path(), &["plugins", "sync"]));
    assert!(text.contains("every plugin in provisioner.lock is installed"), "{text}");
}

#[test]
fn a_tampered_blob_is_refused() {
    let Setup { registry, publisher, config, wasm, reference } = setup("plugins/memcached:0.1.0");
    push(&publisher, config.path(), &wasm, &reference, true);
    registry.tamper(&sha256(&std::fs::read(&wasm).unwrap()));

    let stack = memcached_project("oci-tamper", &publisher.public_key);
    let text = refused(&provisioner(stack.path(), config.path(), &["plugins", "install", &reference]));
    assert!(text.contains("The blob was altered in the registry; nothing was installed"), "{text}");
    assert!(!stack.path().join("plugins/memcached.wasm").exists());
}

#[test]
fn unsigned_or_untrusted_plugins_are_refused() {
    let Setup { registry, publisher, config, wasm, reference: unsigned } = setup("plugins/memcached:unsigned");
    push(&publisher, config.path(), &wasm, &unsigned, false);

    let stack = memcached_project("oci-unsigned", &publisher.public_key);
    let dir = stack.path();
    let text = refused(&provisioner(dir, config.path(), &["plugins", "install", &unsigned]));
    assert!(text.contains("refusing memcached@0.1.0: it is not signed, and [registry] require_signatures is on"), "{text}");
    assert!(!dir.join("plugins/memcached.wasm").exists());
    let text = ok(&provisioner(dir, config.path(), &["plugins", "inspect", &unsigned]));
    assert!(text.contains("signature  REFUSED: refusing memcached@0.1.0: it is not signed"), "{text}");

    // Signed afterwards (as after a `wkg oci push`), but by a key the project does not trust.
    let stranger = publisher_signing(&publisher, &registry, config.path(), &unsigned);
    let text = refused(&provisioner(dir, config.path(), &["plugins", "install", &unsigned]));
    assert!(text.contains(&format!("signed by {stranger}, which is not among [registry] trusted_keys")), "{text}");
    assert!(!dir.join("plugins/memcached.wasm").exists());
}

/// Sign `reference` with a new key (not the project's); that key's public half.
fn publisher_signing(publisher: &Publisher, _registry: &Registry, config: &Path, reference: &str) -> String {
    let other = publisher.dir.path().join("other.key");
    let public = ok(&provisioner(publisher.dir.path(), config, &["registry", "keygen", other.to_str().unwrap()]));
    let text = ok(&provisioner(publisher.dir.path(), config, &["registry", "sign", reference, "--key", other.to_str().unwrap()]));
    assert!(text.contains("signed memcached 0.1.0"), "{text}");
    public.lines().next().unwrap().to_string()
}

#[test]
fn a_tag_moved_to_another_digest_is_refused_under_locked() {
    support::require(&[], &[MEMCACHED_IMAGE]);
    let Setup { registry: _registry, publisher, config, wasm, reference } = setup("plugins/memcached:0.1.0");
    let first = push(&publisher, config.path(), &wasm, &reference, true);

    let stack = memcached_project("oci-moved", &publisher.public_key);
    let dir = stack.path();
    ok(&provisioner(dir, config.path(), &["plugins", "install", &reference]));
    ok(&provisioner(dir, config.path(), &["run", "local"]));
    let lock = std::fs::read_to_string(dir.join("provisioner.lock")).unwrap();

    // The publisher pushes other bytes under the same tag (signed: the signature is fine).
    let moved = rebuilt(&wasm, publisher.dir.path());
    let second = push(&publisher, config.path(), &moved, &reference, true);
    assert_ne!(first, second);
    let text = ok(&provisioner(dir, config.path(), &["plugins", "install", &reference]));
    assert!(text.contains(&format!("from {second}")), "{text}");
    let text = refused(&provisioner(dir, config.path(), &["run", "local", "--locked"]));
    let (old, new) = (sha256(&std::fs::read(&wasm).unwrap()), sha256(&std::fs::read(&moved).unwrap()));
    assert!(text.contains(&format!("has sha256 {new}, the lockfile has {old}")), "{text}");
    assert!(text.contains("run once without --locked"), "{text}");
    assert_eq!(std::fs::read_to_string(dir.join("provisioner.lock")).unwrap(), lock, "--locked leaves the lock alone");

    // A checkout without the plugin fetches the locked digest, not whatever the tag says now.
    std::fs::remove_dir_all(dir.join("plugins")).unwrap();
    let text = ok(&provisioner(dir, config.path(), &["plugins", "sync", "--locked"]));
    assert!(text.contains(&format!("fetched memcached 0.1.0 from {first}")), "{text}");
    assert_eq!(std::fs::read(dir.join("plugins/memcached.wasm")).unwrap(), std::fs::read(&wasm).unwrap());
}

#[test]
fn a_registry_that_needs_a_login_gets_it_from_the_docker_config() {
    let (user, password) = ("publisher", "s3cret-Pa55word");
    let registry = Registry::start(Some((user, password)));
    let publisher = publisher();
    let wasm = memcached_wasm();
    let reference = registry.reference("acme/memcached:0.1.0");

    // No login: refused, saying how to log in, before anything is sent.
    let anonymous = docker_config(None);
    let text = refused(&provisioner(publisher.dir.path(), anonymous.path(), &["registry", "push", wasm.to_str().unwrap(), &reference, "--key", publisher.key.to_str().unwrap()]));
    assert!(text.contains("no credentials were found for it") && text.contains(&format!("docker login {}", registry.address)), "{text}");
    // A wrong password: refused as such.
    let wrong = docker_config(Some((&registry.address, user, "not-the-password")));
    let text = refused(&provisioner(publisher.dir.path(), wrong.path(), &["registry", "push", wasm.to_str().unwrap(), &reference, "--key", publisher.key.to_str().unwrap()]));
    assert!(text.contains("credentials in the Docker config were refused"), "{text}");
    assert!(!text.contains("not-the-password"), "a password is never printed:\n{text}");

    let login = docker_config(Some((&registry.address, user, password)));
    let pinned = push(&publisher, login.path(), &wasm, &reference, true);
    let stack = memcached_project("oci-auth", &publisher.public_key);
    let text = refused(&provisioner(stack.path(), anonymous.path(), &["plugins", "install", &reference]));
    assert!(text.contains("docker login"), "{text}");
    let text = ok(&provisioner(stack.path(), login.path(), &["-vv", "plugins", "install", &reference]));
    assert!(text.contains(&format!("from {pinned}")), "{text}");
    assert!(!text.contains(password), "a password is never printed, even with -vv:\n{text}");
}

/// `[registry] url = "oci://REGISTRY/PREFIX"`: plugins are installed, synced and
/// verified by name, each a repository of its own name under the prefix; without a
/// version, the newest version tag (numerically, not `latest` nor signature tags).
#[test]
fn plugins_by_name_from_an_oci_prefix() {
    support::require(&[], &[MEMCACHED_IMAGE]);
    let Setup { registry, publisher, config, wasm, .. } = setup("plugins/memcached:0.1.0");
    let pinned = push(&publisher, config.path(), &wasm, &registry.reference("plugins/memcached:0.1.0"), true);
    let other = rebuilt(&wasm, publisher.dir.path());
    push(&publisher, config.path(), &other, &registry.reference("plugins/memcached:0.0.9"), true);
    push(&publisher, config.path(), &other, &registry.reference("plugins/memcached:latest"), true);

    let stack = memcached_project("ociprefix", &publisher.public_key);
    let dir = stack.path();
    let file = dir.join("provisioner.toml");
    let toml = std::fs::read_to_string(&file).unwrap().replace("\n[registry]\ntrusted_keys", &format!("\n[registry]\nurl = \"oci://{}/plugins\"\ntrusted_keys", registry.address));
    std::fs::write(&file, toml).unwrap();

    let text = ok(&provisioner(dir, config.path(), &["plugins", "install", "memcached"]));
    assert!(text.contains("installed memcached 0.1.0") && text.contains(&format!("from {pinned}")), "{text}");
    assert_eq!(std::fs::read(dir.join("plugins/memcached.wasm")).unwrap(), std::fs::read(&wasm).unwrap(), "0.1.0 is newer than 0.0.9 and latest");
    let text = refused(&provisioner(dir, config.path(), &["plugins", "install", "nosuch"]));
    assert!(text.contains(&format!("oci://{}/plugins: no plugin called `nosuch`", registry.address)), "{text}");

    let text = ok(&provisioner(dir, config.path(), &["plugins", "verify"]));
    assert!(text.contains(&format!("verified against oci://{}/plugins/memcached:0.1.0, signed by {}", registry.address, publisher.public_key)), "{text}");
    // Another build of the same version: verify says it differs (not that a signature
    // does not fit it).
    std::fs::copy(&other, dir.join("plugins/memcached.wasm")).unwrap();
    let text = refused(&provisioner(dir, config.path(), &["plugins", "verify"]));
    let published = sha256(&std::fs::read(&wasm).unwrap());
    assert!(text.contains(&format!("DIFFERS from oci://{}/plugins/memcached:0.1.0, whose sha256 is {published}", registry.address)), "{text}");
    std::fs::copy(&wasm, dir.join("plugins/memcached.wasm")).unwrap();

    // A fresh clone of examples/memcached, with its committed lock (which names no
    // source): `run --locked` fetches the locked version under the prefix, checks it
    // against the lock's digest and runs it, and the lock stays as reviewed.
    let clone = memcached_project("ociprefix-clone", &publisher.public_key);
    let file = clone.path().join("provisioner.toml");
    let toml = std::fs::read_to_string(&file).unwrap().replace("\n[registry]\ntrusted_keys", &format!("\n[registry]\nurl = \"oci://{}/plugins\"\ntrusted_keys", registry.address));
    std::fs::write(&file, toml).unwrap();
    let committed = std::fs::read_to_string(support::root().join("examples/memcached/provisioner.lock")).unwrap();
    assert!(!committed.contains("source = "), "{committed}");
    std::fs::write(clone.path().join("provisioner.lock"), &committed).unwrap();
    let text = ok(&provisioner(clone.path(), config.path(), &["run", "local", "--locked"]));
    assert!(text.contains(&format!("fetched memcached 0.1.0 from oci://{}/plugins/memcached:0.1.0", registry.address)), "{text}");
    assert_eq!(std::fs::read(clone.path().join("plugins/memcached.wasm")).unwrap(), std::fs::read(&wasm).unwrap());
    let servers = clone.dotenv()["MEMCACHED_SERVERS"].clone();
    assert!(memcached_version(&servers).starts_with("1.6"), "at {servers}");
    assert_eq!(std::fs::read_to_string(clone.path().join("provisioner.lock")).unwrap(), committed);
    ok(&provisioner(clone.path(), config.path(), &["teardown", "local"]));
}

/// Interop with wasm-pkg-tools, the client Spin and wasmCloud use: `wkg oci pull` reads
/// back byte for byte what `registry push` wrote, and a component `wkg oci push` wrote
/// (no provisioner annotations, no signature) is refused unsigned, then installs once
/// `registry sign` has vouched for it.
#[test]
fn wkg_pulls_what_provisioner_pushes_and_provisioner_installs_what_wkg_pushes() {
    let wkg = support::wkg();
    let Setup { registry, publisher, config, wasm, reference } = setup("plugins/memcached:0.1.0");
    let wkg_run = |args: &[&str]| {
        let out = Command::new(&wkg).args(args).env("DOCKER_CONFIG", config.path()).env("WKG_OCI_INSECURE", &registry.address).output().expect("running wkg");
        assert!(out.status.success(), "wkg {args:?}:\n{}", support::text(&out));
    };

    push(&publisher, config.path(), &wasm, &reference, true);
    let pulled = publisher.dir.path().join("pulled.wasm");
    wkg_run(&["oci", "pull", &format!("{}/plugins/memcached:0.1.0", registry.address), "-o", pulled.to_str().unwrap()]);
    assert_eq!(std::fs::read(&pulled).unwrap(), std::fs::read(&wasm).unwrap(), "wkg pulled other bytes than were pushed");

    let by_wkg = registry.reference("wkg/memcached:0.1.0");
    wkg_run(&["oci", "push", &format!("{}/wkg/memcached:0.1.0", registry.address), wasm.to_str().unwrap()]);
    let stack = memcached_project("oci-wkg", &publisher.public_key);
    let dir = stack.path();
    let text = ok(&provisioner(dir, config.path(), &["plugins", "inspect", &by_wkg]));
    assert!(text.starts_with("a wasm component without provisioner's annotations"), "{text}");
    assert!(text.contains(&format!("sha256     {}", sha256(&std::fs::read(&wasm).unwrap()))), "{text}");
    assert!(text.contains("signature  unsigned") && text.contains("asks for: not annotated"), "{text}");
    let text = refused(&provisioner(dir, config.path(), &["plugins", "install", &by_wkg]));
    assert!(text.contains("it is not signed, and [registry] require_signatures is on"), "{text}");
    assert!(!dir.join("plugins/memcached.wasm").exists());

    let text = ok(&provisioner(publisher.dir.path(), config.path(), &["registry", "sign", &by_wkg, "--key", publisher.key.to_str().unwrap()]));
    assert!(text.contains("signed memcached 0.1.0"), "{text}");
    let text = ok(&provisioner(dir, config.path(), &["plugins", "install", &by_wkg]));
    assert!(text.contains("installed memcached 0.1.0") && text.contains(&format!("signed by {}", publisher.public_key)), "{text}");
    assert_eq!(std::fs::read(dir.join("plugins/memcached.wasm")).unwrap(), std::fs::read(&wasm).unwrap());
}
