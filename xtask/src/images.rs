//! `cargo xtask images`: the container images the first-party plugins run, built offline.
//!
//! This machine and CI reach no container registry (`docker pull` fails), only Debian's
//! package mirrors. So the images are built here from Debian bookworm packages:
//!
//! | tag                                 | what                                                    |
//! |-------------------------------------|---------------------------------------------------------|
//! | `provisioner-offline/base:bookworm` | `debootstrap --variant=minbase` + every package below, `docker import`ed |
//! | `provisioner-offline/postgres:15`   | `images/postgres`: drop-in for upstream `postgres:15` (PostgreSQL 15) |
//! | `provisioner-offline/redis:7`       | `images/redis`: drop-in for upstream `redis:7` (Redis 7.0) |
//! | `provisioner-offline/rabbitmq:3`    | `images/rabbitmq`: drop-in for upstream `rabbitmq:3` (RabbitMQ 3.10) |
//! | `provisioner-offline/garage:2.5.0`  | `images/garage`: drop-in for upstream `dxflrs/garage:v2.5.0`, the binary built from crates.io |
//! | `provisioner-offline/nginx:1.22`    | `images/nginx`: drop-in for upstream `nginx` (nginx 1.22) |
//! | `provisioner-offline/memcached:1.6` | `images/memcached`: drop-in for upstream `memcached:1.6` (the third-party plugin example's) |
//! | `provisioner-offline/prometheus:2`  | `images/prometheus`: drop-in for upstream `prom/prometheus` (Prometheus 2.42, its classic web UI) |
//! | `provisioner-offline/alertmanager:0.25` | `images/alertmanager`: drop-in for upstream `prom/alertmanager` (Alertmanager 0.25, no web UI) |
//! | `provisioner-offline/postgres-exporter:0.11` | `images/postgres-exporter`: drop-in for upstream `prometheuscommunity/postgres-exporter` (0.11) |
//! | `provisioner-offline/redis-exporter:1.45` | `images/redis-exporter`: drop-in for upstream `oliver006/redis_exporter` (1.45) |
//! | `provisioner-offline/nginx-exporter:0.11` | `images/nginx-exporter`: drop-in for upstream `nginx/nginx-prometheus-exporter` (0.11) |
//! | `provisioner-offline/blackbox-exporter:0.23` | `images/blackbox-exporter`: drop-in for upstream `prom/blackbox-exporter` (0.23), which the prometheus plugin probes instances' health through |
//! | `provisioner-example/ticketing-backend:dev` | `examples/ticketing/backend`: the example app |
//!
//! The plugins name these tags explicitly (their grants match `*/postgres:*`, `*/redis:*`, `*/rabbitmq:*`, `*/garage:*`, `*/nginx:*`).
//! The base holds the packages of the later images too (RabbitMQ, nginx, Python with its
//! clients, Prometheus and its exporters), so debootstrap runs once; each image's Dockerfile starts
//! `FROM provisioner-offline/base:bookworm` and needs no network.
//!
//! An image is rebuilt only when its recipe changed: the base carries a label listing its
//! packages, every other image a label with the sha256 of its build context and the base
//! image's id. `docker rmi TAG` forces a rebuild (of the base: from fresh packages).
//! `PROVISIONER_DEBIAN_MIRROR` overrides the mirror, which is otherwise this machine's
//! own (the first bookworm entry of /etc/apt/sources.list{,.d}).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const SUITE: &str = "bookworm";
const BASE: &str = "provisioner-offline/base:bookworm";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// What the base image holds beyond minbase: everything any image below (or a later one) needs.
const PACKAGES: &[&str] = &[
    "postgresql",   // 15 in bookworm
    "redis-server", // 7.0 in bookworm
    "ca-certificates",
    "bash",
    "procps",
    "rabbitmq-server",
    "nginx",
    "memcached",
    "python3",
    "python3-psycopg2",
    "python3-redis",
    "python3-pika",
    "python3-boto3",
    "prometheus",                   // 2.42, its classic web UI on Debian's libjs-* packages
    "prometheus-alertmanager",      // 0.25
    "prometheus-postgres-exporter", // 0.11
    "prometheus-redis-exporter",    // 1.45
    "prometheus-nginx-exporter",    // 0.11
    "prometheus-blackbox-exporter", // 0.23
];

/// (build context relative to the repository root, tag)
const IMAGES: &[(&str, &str)] = &[
    ("images/postgres", "provisioner-offline/postgres:15"),
    ("images/redis", "provisioner-offline/redis:7"),
    ("images/rabbitmq", "provisioner-offline/rabbitmq:3"),
    ("images/garage", "provisioner-offline/garage:2.5.0"),
    ("images/nginx", "provisioner-offline/nginx:1.22"),
    ("images/memcached", "provisioner-offline/memcached:1.6"),
    ("images/prometheus", "provisioner-offline/prometheus:2"),
    ("images/alertmanager", "provisioner-offline/alertmanager:0.25"),
    ("images/postgres-exporter", "provisioner-offline/postgres-exporter:0.11"),
    ("images/redis-exporter", "provisioner-offline/redis-exporter:1.45"),
    ("images/nginx-exporter", "provisioner-offline/nginx-exporter:0.11"),
    ("images/blackbox-exporter", "provisioner-offline/blackbox-exporter:0.23"),
    ("examples/ticketing/backend", "provisioner-example/ticketing-backend:dev"),
];

/// Push every offline image to `registry` (`host:port`), as `REGISTRY/<tag>`: what a
/// cluster's nodes pull when the environment's `mirror` names that registry.
pub fn push(registry: &str) -> Result<()> {
    for (_, tag) in IMAGES {
        let pushed = format!("{registry}/{tag}");
        eprintln!("xtask: pushing {tag} as {pushed}");
        crate::run(std::process::Command::new("docker").args(["tag", tag, &pushed]))?;
        let out = std::process::Command::new("docker").args(["push", "-q", &pushed]).output().context("running docker push")?;
        if !out.status.success() {
            bail!(
                "pushing {pushed} failed: {}
(a registry over plain HTTP must be listed in the engine's `insecure-registries`)",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

/// Label on the base: the packages it holds (a changed list rebuilds it).
const PACKAGES_LABEL: &str = "provisioner.packages";
/// Label on every other image: sha256 of its build context and the base's id.
const RECIPE_LABEL: &str = "provisioner.recipe";

/// Garage is no Debian package: its image holds the binary `cargo install` builds from
/// this crates.io release (the one upstream's `dxflrs/garage:v2.5.0` is built from).
const GARAGE_VERSION: &str = "2.5.0";

/// Environment of the imported base (an imported rootfs has none; Dockerfiles extend it).
const BASE_CHANGES: &[&str] =
    &["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8", "CMD [\"bash\"]"];

pub fn build() -> Result<()> {
    if !quiet(Command::new("docker").arg("info")) {
        bail!("the Docker engine is not reachable: start dockerd (`cargo xtask test` starts it when run as root) and retry");
    }

    let mut built: Vec<(&str, Duration)> = Vec::new();
    let packages = PACKAGES.join(",");
    match label(BASE, PACKAGES_LABEL) {
        Some(have) if have == packages => eprintln!("xtask: base image {BASE} up to date"),
        found => {
            if found.is_some() {
                eprintln!("xtask: base image {BASE} lacks some of its packages now: rebuilding it");
            }
            let started = Instant::now();
            build_base()?;
            built.push((BASE, started.elapsed()));
        }
    }
    let base_id = image_id(BASE).context("the base image vanished after building it")?;

    for &(folder, tag) in IMAGES {
        let dir = super::root().join(folder);
        let is_garage = tag.contains("/garage:");
        // Garage's binary is part of its recipe by version: checking freshness must not
        // need the 20-minute build.
        let recipe = recipe(&dir, &format!("{base_id} garage {}", if is_garage { GARAGE_VERSION } else { "-" }))?;
        if label(tag, RECIPE_LABEL).as_deref() == Some(recipe.as_str()) {
            eprintln!("xtask: image {tag} up to date, skipping");
            continue;
        }
        // Garage's context is its Dockerfile plus the binary, in a folder of their own.
        let context = if is_garage { Some(garage_context(&dir)?) } else { None };
        let dir = context.as_ref().map_or(dir, |tmp| tmp.path.clone());
        eprintln!("xtask: docker build -t {tag} {}", dir.display());
        let started = Instant::now();
        // --network=none: the Dockerfiles only arrange what the base already holds.
        super::run(
            Command::new("docker")
                .args(["build", "--network=none", "--label", &format!("{RECIPE_LABEL}={recipe}"), "-t", tag])
                .arg(&dir),
        )?;
        built.push((tag, started.elapsed()));
    }

    for &tag in std::iter::once(&BASE).chain(IMAGES.iter().map(|(_, t)| t)) {
        let Some(size) = size(tag) else { continue };
        match built.iter().find(|(t, _)| *t == tag) {
            Some((_, took)) => eprintln!("xtask: {tag}: {size}, built in {:.0?}", took),
            None => eprintln!("xtask: {tag}: {size}"),
        }
    }
    Ok(())
}

/// A temporary build context for images/garage: its Dockerfile and the `garage`
/// binary, which is built from crates.io into target/garage-build the first time.
fn garage_context(dir: &Path) -> Result<TempDir> {
    let root = super::root().join("target/garage-build");
    let binary = root.join("bin/garage");
    if !binary.is_file() {
        eprintln!(
            "xtask: cargo install garage {GARAGE_VERSION} into {} (about 20 minutes on 2 cores)…",
            root.display()
        );
        let started = Instant::now();
        // From the workspace root, so no plugins/.cargo/config.toml retargets it to wasm.
        super::run(
            super::cargo()
                .current_dir(super::root())
                .args(["install", "garage", "--version", GARAGE_VERSION, "--locked", "--root"])
                .arg(&root),
        )?;
        eprintln!("xtask: garage built in {:.0?}", started.elapsed());
    }
    let tmp = TempDir::new()?;
    for (from, to) in [(dir.join("Dockerfile"), "Dockerfile"), (binary, "garage")] {
        std::fs::copy(&from, tmp.path.join(to))
            .with_context(|| format!("copying {} to {}", from.display(), tmp.path.display()))?;
    }
    Ok(tmp)
}

/// debootstrap the rootfs into a temporary folder, then `docker import` it as BASE.
fn build_base() -> Result<()> {
    let mirror = mirror();
    let tmp = TempDir::new()?;
    let rootfs = tmp.path.join("rootfs");

    eprintln!("xtask: debootstrap {SUITE} (about a minute) from {mirror} into {}…", rootfs.display());
    let started = Instant::now();
    debootstrap(&rootfs, &mirror)?;
    eprintln!("xtask: debootstrap done in {:.0?}", started.elapsed());

    eprintln!("xtask: cleaning the rootfs (apt caches and lists, the packaged PostgreSQL cluster)…");
    clean_rootfs(&rootfs)?;

    eprintln!("xtask: docker import {BASE}…");
    let started = Instant::now();
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--numeric-owner", "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting tar")?;
    // The Command holds the pipe's read end until dropped: drop it with docker's exit,
    // or a failed import would leave tar blocked on a pipe nobody reads.
    let imported = {
        let mut import = Command::new("docker");
        import.arg("import");
        for change in BASE_CHANGES {
            import.args(["--change", change]);
        }
        import.args(["--change", &format!("LABEL {PACKAGES_LABEL}={}", PACKAGES.join(","))]);
        import.args(["-", BASE]).stdin(tar.stdout.take().expect("piped")).stdout(Stdio::null()).status()
    };
    let imported = match imported {
        Ok(status) => status,
        Err(e) => {
            let _ = tar.kill();
            let _ = tar.wait();
            return Err(e).context("starting docker import");
        }
    };
    let tarred = tar.wait().context("waiting for tar")?;
    if !imported.success() {
        bail!("docker import - {BASE} failed ({imported})");
    }
    if !tarred.success() {
        bail!("tar -C {} -c . failed ({tarred})", rootfs.display());
    }
    eprintln!("xtask: imported {BASE} in {:.0?}", started.elapsed());
    Ok(())
}

fn debootstrap(rootfs: &Path, mirror: &str) -> Result<()> {
    // Through sh only to merge stderr into stdout: one stream, read line by line.
    let mut child = Command::new("sh")
        .args(["-c", "exec debootstrap \"$@\" 2>&1", "sh", "--variant=minbase"])
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(rootfs)
        .arg(mirror)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting debootstrap (is it installed? apt-get install debootstrap)")?;
    let mut output = Vec::new();
    let (mut fetched, mut configured, mut shown) = (0, 0, (0, 0));
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.context("reading debootstrap's output")?;
        // Lines per package (`I: Retrieving NAME VERSION`, `I: Unpacking NAME...`, …)
        // are noise: count them, show the rest.
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["I:", "Retrieving", _, _] => fetched += 1,
            ["I:", "Validating", _, _] | ["I:", "Extracting" | "Unpacking", _] => {}
            ["I:", "Configuring", _] => configured += 1,
            _ => {
                if (fetched, configured) != shown {
                    eprintln!("  debootstrap: … {fetched} packages fetched, {configured} configured");
                    shown = (fetched, configured);
                }
                eprintln!("  debootstrap: {line}");
            }
        }
        output.push(line);
    }
    let status = child.wait().context("waiting for debootstrap")?;
    if status.success() {
        return Ok(());
    }

    let not_found: Vec<&str> = output
        .iter()
        .filter_map(|l| l.split_once("Couldn't find these debs:"))
        .flat_map(|(_, names)| names.split_whitespace())
        .collect();
    if !not_found.is_empty() {
        bail!("debootstrap failed ({status}): no package named {} in {SUITE} at {mirror}", not_found.join(", "));
    }
    // Failures inside the chroot (a maintainer script, dpkg) are detailed in its log.
    let log = rootfs.join("debootstrap/debootstrap.log");
    if let Ok(text) = std::fs::read_to_string(&log) {
        eprintln!("  {} ends:", log.display());
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(30)..] {
            eprintln!("  | {line}");
        }
    }
    if let Some(error) = output.iter().rev().find(|l| l.starts_with("E: ")) {
        bail!("debootstrap failed ({status}): {}", &error[3..]);
    }
    bail!("debootstrap failed ({status})");
}

/// Drop what the image does not need: apt's downloads and lists (apt-get update restores
/// the lists), the cluster postgresql's postinst creates (images initialise their own) and
/// libjs-moment-timezone's 212 MB of per-release time zone JSON (Prometheus's web UI, its
/// only user, loads moment-timezone-with-data.min.js, which holds the data it needs).
fn clean_rootfs(rootfs: &Path) -> Result<()> {
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let Ok(entries) = std::fs::read_dir(rootfs.join(dir)) else { continue };
        for entry in entries {
            let path = entry?.path();
            let is_deb = path.extension().is_some_and(|e| e == "deb");
            if path.is_file() && (dir.ends_with("lists") || is_deb) {
                std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            } else if path.is_dir() && dir.ends_with("lists") {
                // lists/partial: emptied, kept (apt expects it).
                for inner in std::fs::read_dir(&path)? {
                    let inner = inner?.path();
                    if inner.is_file() {
                        std::fs::remove_file(&inner)?;
                    }
                }
            }
        }
    }
    for dir in ["etc/postgresql/15", "var/lib/postgresql/15", "usr/share/javascript/moment-timezone/data"] {
        let path = rootfs.join(dir);
        if path.exists() {
            std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// `$PROVISIONER_DEBIAN_MIRROR`, else this machine's own bookworm mirror, else deb.debian.org.
fn mirror() -> String {
    if let Ok(m) = std::env::var("PROVISIONER_DEBIAN_MIRROR") {
        if !m.trim().is_empty() {
            return m.trim().to_string();
        }
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let found = if file.extension().is_some_and(|e| e == "sources") {
            mirror_from_deb822(&text)
        } else {
            mirror_from_one_line(&text)
        };
        if let Some(m) = found {
            return m;
        }
    }
    DEFAULT_MIRROR.to_string()
}

/// The first `deb [options] URI bookworm …` line's URI.
fn mirror_from_one_line(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            return None;
        }
        let mut uri = words.next()?;
        if uri.starts_with('[') {
            // Options: `[arch=amd64 signed-by=…]`, possibly several words.
            while !uri.ends_with(']') {
                uri = words.next()?;
            }
            uri = words.next()?;
        }
        (words.next()? == SUITE && usable(uri)).then(|| uri.to_string())
    })
}

/// The first URI of the first deb822 stanza with `Types: deb` and `Suites: bookworm`.
fn mirror_from_deb822(text: &str) -> Option<String> {
    let uncommented: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    uncommented.join("\n").split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.trim().eq_ignore_ascii_case(name).then(|| value.split_whitespace().collect::<Vec<_>>())
            })
        };
        let enabled = field("Enabled").is_none_or(|v| v.first().is_none_or(|v| *v != "no"));
        let deb = field("Types")?.contains(&"deb");
        let suite = field("Suites")?.contains(&SUITE);
        let uri = field("URIs")?.into_iter().find(|u| usable(u))?;
        (enabled && deb && suite).then(|| uri.to_string())
    })
}

/// What debootstrap can fetch from (not cdrom:, mirror+file:, …).
fn usable(uri: &str) -> bool {
    uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("file:/")
}

/// The value of `key` among the image's labels; `None` when the image or label is absent.
fn label(tag: &str, key: &str) -> Option<String> {
    let format = format!("{{{{index .Config.Labels \"{key}\"}}}}");
    let out = Command::new("docker").args(["image", "inspect", "-f", &format, tag]).output().ok()?;
    let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !value.is_empty() && value != "<no value>").then_some(value)
}

fn image_id(tag: &str) -> Option<String> {
    let out = Command::new("docker").args(["image", "inspect", "-f", "{{.Id}}", tag]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// sha256 over the base's id and every file of the build context (paths and contents,
/// in sorted order), so an edited Dockerfile or app file rebuilds the image.
fn recipe(dir: &Path, base_id: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, files)?;
            } else {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut hash = Sha256::new();
    hash.update(base_id.as_bytes());
    for file in files {
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
    }
    Ok(format!("{:x}", hash.finalize()))
}

fn size(tag: &str) -> Option<String> {
    let out = Command::new("docker").args(["image", "inspect", "-f", "{{.Size}}", tag]).output().ok()?;
    let bytes: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(format!("{:.0} MB", bytes / 1e6))
}

/// Whether the command succeeds, its output discarded.
fn quiet(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A folder under the system temp dir, removed on drop, after unmounting anything
/// debootstrap may have left mounted in it (a failed run can leave proc/sys behind).
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("provisioner-images-{}", std::process::id()));
        if path.exists() {
            TempDir { path: path.clone() }.remove();
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }

    fn remove(&self) {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut inside: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| Path::new(m).starts_with(&self.path))
            .collect();
        inside.sort_by_key(|m| std::cmp::Reverse(m.len())); // deepest first
        for mount in &inside {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
        let still = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        if still.lines().filter_map(|l| l.split_whitespace().nth(1)).any(|m| Path::new(m).starts_with(&self.path)) {
            eprintln!("xtask: {} still has mounts; left in place", self.path.display());
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("xtask: could not remove {}: {e}", self.path.display());
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_sources() {
        let text = "# deb http://old.example/debian bookworm main\n\
                    deb cdrom:[Debian 12]/ bookworm main\n\
                    deb-src http://src.example/debian bookworm main\n\
                    deb http://security.debian.org/debian-security bookworm-security main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n\
                    deb http://later.example/debian bookworm main\n";
        assert_eq!(mirror_from_one_line(text).as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(mirror_from_one_line("deb http://x/debian trixie main\n"), None);
    }

    #[test]
    fn deb822_sources() {
        let text = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n\
                    Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                    URIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                    Types: deb\nURIs: http://deb.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(mirror_from_deb822(text).as_deref(), Some("http://deb.example/debian"));
        let disabled = "Enabled: no\nTypes: deb\nURIs: http://a/debian\nSuites: bookworm\n";
        assert_eq!(mirror_from_deb822(disabled), None);
    }
}
