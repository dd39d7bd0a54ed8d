//! The container policy: the one place a plugin's [`ContainerSpec`] becomes engine
//! requests, and with it every rule no grant can lift.
//!
//! - images, published ports and volumes need their capability (declared ∩ granted);
//! - names and labels come from [`crate::naming`]; `provisioner.*` labels are the host's;
//! - containers join only the project network, publish only on the environment's bind
//!   address, mount only the service's own named volumes, and always get memory, CPU
//!   and pids limits, capped by the environment;
//! - privileged mode, added kernel capabilities, devices, host namespaces and host
//!   paths cannot be expressed in a [`ContainerRequest`] at all.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::capabilities::{Effective, Refusal};
use crate::engine::{ContainerRequest, HealthRequest};
use crate::naming::{self, Scope, LABEL_SPEC_HASH, LABEL_WORKLOAD, RESERVED_LABEL_PREFIX};
use crate::spec::ContainerSpec;

pub use crate::config::{ResourceDefaults, MAX_REPLICAS, MIN_CPU_MILLIS, MIN_MEMORY_MB, MIN_PIDS};
/// The engine runs a health check in the container on this schedule, outside the
/// container's CPU limit: checks more often than this are slowed to it.
pub const MIN_HEALTH_INTERVAL_MS: u32 = 1000;
pub const MIN_HEALTH_TIMEOUT_MS: u32 = 1000;
/// The longest a container may take to stop before it is killed: what any server
/// needs for a clean shutdown, and what bounds a teardown (containers are stopped side
/// by side).
pub const MAX_STOP_TIMEOUT_SECS: u32 = 60;
const DEFAULT_STOP_TIMEOUT_SECS: u32 = 10;

/// Container defaults and ceilings from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDefaults {
    /// Where published ports listen on the host.
    pub bind_address: IpAddr,
    /// Every container's limits unless its plugin asks otherwise, and their ceilings.
    pub resources: ResourceDefaults,
    /// Registry that stands in for Docker Hub (`registry.local:5000`), for machines
    /// that cannot reach it.
    pub mirror: Option<String>,
    /// The other services of the project: names on the project network that are not
    /// this service's to answer for, nor to prefix its aliases with.
    pub other_services: Vec<String>,
    /// Host ports below 1024 the environment lets services publish on
    /// (`privileged_host_ports`); any other privileged port is refused.
    pub privileged_host_ports: Vec<u16>,
}

impl Default for ContainerDefaults {
    fn default() -> Self {
        ContainerDefaults {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            resources: ResourceDefaults::default(),
            mirror: None,
            other_services: Vec::new(),
            privileged_host_ports: Vec::new(),
        }
    }
}

/// A spec the policy refused, before attribution to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Outside the plugin's capabilities: reported with the grant line.
    Denied(Refusal),
    /// Malformed, or against an invariant no grant lifts.
    Invalid(String),
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Self {
        Refused::Denied(refusal)
    }
}

/// One workload as the engine will run it: a request per instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The workload's short name (`server`).
    pub name: String,
    /// Replicas are swapped one at a time and never published; a single container is
    /// replaced in place.
    pub replicated: bool,
    pub instances: Vec<ContainerRequest>,
}

/// `path` as a path inside a container: absolute, no `..`, not a folder.
pub fn check_container_path(what: &str, path: &str) -> Result<(), String> {
    if path.starts_with('/') && !path.ends_with('/') && !path.split('/').any(|part| part == "..") {
        Ok(())
    } else {
        Err(format!("{what} `{path}` must be an absolute path without `..`"))
    }
}

/// Names no container of a project may answer to on its network.
const RESERVED_ALIASES: &[&str] = &["localhost", "host", "gateway", "docker", "registry"];

/// A network alias is the service's own name or starts with it and a `-`, and stays
/// out of every other service's names, so that no plugin can answer for another
/// service on the project network (and be handed its clients' credentials).
fn check_alias(scope: &Scope, defaults: &ContainerDefaults, alias: &str) -> Result<(), String> {
    let own = &scope.service;
    let refuse = |why: String| Err(format!("network alias `{alias}`: {why}"));
    if !naming::is_valid_short_name(alias) {
        return refuse("use 1 to 40 of a-z 0-9 -".into());
    }
    if alias != own && !alias.starts_with(&format!("{own}-")) {
        return refuse(format!("an alias of service `{own}` must be `{own}` or start with `{own}-`"));
    }
    if RESERVED_ALIASES.contains(&alias) {
        return refuse("reserved".into());
    }
    if let Some(other) = defaults.other_services.iter().find(|o| *o != own && (alias == o.as_str() || alias.starts_with(&format!("{o}-")))) {
        return refuse(format!("it would answer for service `{other}`"));
    }
    Ok(())
}

/// A container or volume short name is valid and keeps the service's engine names out
/// of every other service's namespace (`naming::namespace_owner`).
pub fn check_short_name(scope: &Scope, defaults: &ContainerDefaults, what: &str, short: &str) -> Result<(), String> {
    if !naming::is_valid_short_name(short) {
        return Err(format!("{what} name `{short}`: use 1 to 40 of a-z 0-9 -, starting with a letter or digit"));
    }
    if let Some(other) = naming::namespace_owner(&scope.service, short, &defaults.other_services) {
        return Err(format!(
            "{what} name `{short}`: `{}-{short}` is in the names of service `{other}` (everything `{other}-…` is its own); choose a name that does not start with `{}`",
            scope.service,
            other.strip_prefix(&format!("{}-", scope.service)).unwrap_or(other)
        ));
    }
    Ok(())
}

fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("environment variable name `{name}`"))
    }
}

/// Every instance of `spec`, policed: `Err` if any part of it is not allowed.
pub fn workload(
    scope: &Scope,
    effective: &Effective,
    defaults: &ContainerDefaults,
    spec: &ContainerSpec,
) -> Result<Workload, Refused> {
    let replicas: Vec<Option<u32>> = match spec.replicas {
        None => vec![None],
        Some(n) if (1..=MAX_REPLICAS).contains(&n) => (1..=n).map(Some).collect(),
        Some(n) => return Err(Refused::Invalid(format!("replicas {n}: must be 1 to {MAX_REPLICAS}"))),
    };
    let instances =
        replicas.into_iter().map(|replica| container_request(scope, effective, defaults, spec, replica)).collect::<Result<_, _>>()?;
    Ok(Workload { name: spec.name.clone(), replicated: spec.replicas.is_some(), instances })
}

/// One instance of `spec` as an engine request; `replica` is `None` for a single
/// container and `Some(i)` for replica `i` (1-based) of several.
pub fn container_request(
    scope: &Scope,
    effective: &Effective,
    defaults: &ContainerDefaults,
    spec: &ContainerSpec,
    replica: Option<u32>,
) -> Result<ContainerRequest, Refused> {
    check_short_name(scope, defaults, "container", &spec.name).map_err(Refused::Invalid)?;
    if replica.is_some() {
        check_short_name(scope, defaults, "container", &naming::instance_short_name(&spec.name, replica)).map_err(Refused::Invalid)?;
    }
    if spec.image.trim().is_empty() {
        return Err(Refused::Invalid(format!("container `{}` has an empty image", spec.name)));
    }
    effective.check_image(&spec.image)?;
    let image = mirrored(&spec.image, defaults.mirror.as_deref());

    let mut ports = Vec::new();
    for port in &spec.ports {
        if port.container_port == 0 {
            return Err(Refused::Invalid("container port 0".into()));
        }
        effective.check_publish(port.container_port)?;
        if let Some(host_port) = port.host_port.filter(|p| (1..1024).contains(p)) {
            if !defaults.privileged_host_ports.contains(&host_port) {
                return Err(Refused::Invalid(format!(
                    "host port {host_port} is a privileged port (below 1024), which a plugin may not take on its own; \
                     the environment allows it with `privileged_host_ports = [{host_port}]` under [environments.NAME]"
                )));
            }
        }
        // Replicas sit behind a load balancer; only single containers are published.
        if replica.is_none() {
            ports.push((port.container_port, defaults.bind_address, port.host_port.unwrap_or(0)));
        }
    }

    let mut volumes = Vec::new();
    for mount in &spec.mounts {
        check_short_name(scope, defaults, "volume", &mount.volume).map_err(Refused::Invalid)?;
        effective.check_volume(&mount.volume)?;
        check_container_path("mount target", &mount.target).map_err(Refused::Invalid)?;
        volumes.push((naming::engine_name(scope, &mount.volume), mount.target.clone(), mount.read_only));
    }

    let mut env = Vec::new();
    let mut secrets = std::collections::BTreeSet::new();
    for var in &spec.env {
        check_env_name(&var.name).map_err(Refused::Invalid)?;
        env.push((var.name.clone(), var.value.clone()));
        if var.secret {
            secrets.insert(var.name.clone());
        }
    }

    let mut files = Vec::new();
    for file in &spec.files {
        check_container_path("file path", &file.path).map_err(Refused::Invalid)?;
        files.push((file.path.clone(), file.contents.clone(), file.mode & 0o7777));
        if file.secret {
            secrets.insert(file.path.clone());
        }
    }

    let mut labels = BTreeMap::new();
    for (key, value) in &spec.labels {
        if key.starts_with(RESERVED_LABEL_PREFIX) {
            return Err(Refused::Invalid(format!("label `{key}`: the {RESERVED_LABEL_PREFIX}* labels are the host's")));
        }
        labels.insert(key.clone(), value.clone());
    }
    labels.extend(naming::workload_labels(scope, &spec.name));
    if let Some(endpoint) = &spec.http_health {
        if endpoint.port == 0 || !crate::capabilities::monitoring::valid_path(&endpoint.path) {
            return Err(Refused::Invalid(format!(
                "http-health {}:{}: a port and an absolute path of printable ASCII without `?` or `#`",
                endpoint.port, endpoint.path
            )));
        }
        labels.insert(naming::LABEL_HTTP_HEALTH.to_string(), format!("{} {}", endpoint.port, endpoint.path));
    }

    let mut aliases = if spec.answers_for_service { vec![scope.service.clone()] } else { Vec::new() };
    for alias in &spec.aliases {
        check_alias(scope, defaults, alias).map_err(Refused::Invalid)?;
        if !aliases.contains(alias) {
            aliases.push(alias.clone());
        }
    }

    let (asked, limits) = (spec.resources.unwrap_or_default(), &defaults.resources);
    let memory_mb = asked.memory_mb.unwrap_or(limits.memory_mb).clamp(MIN_MEMORY_MB, limits.max_memory_mb.max(MIN_MEMORY_MB));
    let cpu_millis = asked.cpu_millis.unwrap_or(limits.cpu_millis).clamp(MIN_CPU_MILLIS, limits.max_cpu_millis.max(MIN_CPU_MILLIS));
    let pids = asked.pids.unwrap_or(limits.pids).clamp(MIN_PIDS, limits.max_pids.max(MIN_PIDS));

    let mut request = ContainerRequest {
        name: naming::engine_name(scope, &naming::instance_short_name(&spec.name, replica)),
        image,
        command: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env,
        labels,
        ports,
        volumes,
        network: naming::network_name(&scope.project, &scope.environment),
        aliases,
        files,
        secrets,
        user: spec.user.clone(),
        health: spec.health.as_ref().map(|h| HealthRequest {
            command: h.command.clone(),
            interval_ms: h.interval_ms.max(MIN_HEALTH_INTERVAL_MS),
            timeout_ms: h.timeout_ms.max(MIN_HEALTH_TIMEOUT_MS),
            retries: h.retries,
            start_period_ms: h.start_period_ms,
        }),
        memory_bytes: u64::from(memory_mb) << 20,
        nano_cpus: u64::from(cpu_millis) * 1_000_000,
        pids,
        stop_timeout_secs: stop_timeout_secs(spec.stop_timeout_ms),
    };
    let hash = spec_hash(&request);
    request.labels.insert(LABEL_SPEC_HASH.to_string(), hash);
    debug_assert_eq!(request.labels.get(LABEL_WORKLOAD), Some(&spec.name));
    Ok(request)
}

/// A stop timeout as the engine takes it: whole seconds, capped.
pub fn stop_timeout_secs(timeout_ms: Option<u32>) -> u32 {
    timeout_ms.map(|ms| ms.div_ceil(1000)).unwrap_or(DEFAULT_STOP_TIMEOUT_SECS).min(MAX_STOP_TIMEOUT_SECS)
}

/// The canonical, hashable form of what a container is created from.
#[derive(Serialize)]
struct HashedSpec<'a> {
    image: &'a str,
    command: &'a Option<Vec<String>>,
    entrypoint: &'a Option<Vec<String>>,
    env: &'a [(String, String)],
    ports: Vec<(u16, String, u16)>,
    volumes: &'a [(String, String, bool)],
    files: Vec<(&'a str, String, u32)>,
    aliases: &'a [String],
    user: &'a Option<String>,
    health: Option<(&'a [String], u32, u32, u32, u32)>,
    limits: (u64, u64, u32, u32),
    labels: &'a BTreeMap<String, String>,
}

fn spec_hash(request: &ContainerRequest) -> String {
    let sha = crate::digest::sha256_hex;
    let hashed = HashedSpec {
        image: &request.image,
        command: &request.command,
        entrypoint: &request.entrypoint,
        env: &request.env,
        ports: request.ports.iter().map(|(c, ip, h)| (*c, ip.to_string(), *h)).collect(),
        volumes: &request.volumes,
        files: request.files.iter().map(|(p, c, m)| (p.as_str(), sha(c), *m)).collect(),
        aliases: &request.aliases,
        user: &request.user,
        health: request
            .health
            .as_ref()
            .map(|h| (h.command.as_slice(), h.interval_ms, h.timeout_ms, h.retries, h.start_period_ms)),
        limits: (request.memory_bytes, request.nano_cpus, request.pids, request.stop_timeout_secs),
        labels: &request.labels,
    };
    let json = serde_json::to_vec(&hashed).unwrap_or_default();
    sha(&json)[..16].to_string()
}

/// `image` as pulled through `mirror`: only images that name no registry move
/// (Docker Hub's official images live under `library/`).
pub fn mirrored(image: &str, mirror: Option<&str>) -> String {
    let Some(mirror) = mirror.map(|m| m.trim_end_matches('/')).filter(|m| !m.is_empty()) else {
        return image.to_string();
    };
    let first = image.split('/').next().unwrap_or_default();
    let names_registry = image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if names_registry {
        image.to_string()
    } else if image.contains('/') {
        format!("{mirror}/{image}")
    } else {
        format!("{mirror}/library/{image}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::capabilities::{Capability, Grants};
    use crate::spec::{EnvVar, Mount, Port, Resources};

    /// Shared with the `docker` capability's tests.
    pub(crate) fn scope() -> Scope {
        Scope { project: "shop".into(), environment: "local".into(), service: "db".into(), plugin: "postgres".into() }
    }

    pub(crate) fn declared() -> Vec<Capability> {
        vec![
            Capability::Image("postgres:*".into()),
            Capability::Publish(5432),
            Capability::Volume("data".into()),
            Capability::Exec,
        ]
    }

    pub(crate) fn spec(image: &str) -> ContainerSpec {
        ContainerSpec {
            env: vec![EnvVar { name: "POSTGRES_PASSWORD".into(), value: "s3cret".into(), secret: true }],
            ports: vec![Port { container_port: 5432, host_port: None }],
            mounts: vec![Mount { volume: "data".into(), target: "/var/lib/postgresql/data".into(), read_only: false }],
            ..ContainerSpec::new("server", image)
        }
    }

    #[test]
    fn every_request_is_named_labelled_confined_and_limited() {
        let defaults = ContainerDefaults::default();
        let effective = Effective::new("postgres", declared(), Grants::all_of(&declared()));
        let request = container_request(&scope(), &effective, &defaults, &spec("postgres:16"), None).unwrap();
        assert_eq!(request.name, "shop-local-db-server");
        assert_eq!(request.network, "shop-local");
        for (k, v) in naming::service_labels(&scope()) {
            assert_eq!(request.labels.get(&k), Some(&v), "label {k}");
        }
        assert_eq!(request.ports, vec![(5432, "127.0.0.1".parse().unwrap(), 0)]);
        assert_eq!(request.volumes, vec![("shop-local-db-data".into(), "/var/lib/postgresql/data".into(), false)]);
        assert_eq!(request.memory_bytes, 1024 << 20);
        assert!(request.nano_cpus > 0 && request.pids > 0);
        assert!(request.is_confined());
        assert!(request.aliases.contains(&"db".to_string()));

        let replica = container_request(&scope(), &effective, &defaults, &spec("postgres:16"), Some(2)).unwrap();
        assert_eq!(replica.name, "shop-local-db-server-2");
        assert!(replica.ports.is_empty(), "replicas are never published");
    }

    #[test]
    fn policy_table() {
        let defaults = ContainerDefaults { other_services: vec!["cache".into(), "db-cache".into()], ..ContainerDefaults::default() };
        let all = Grants::all_of(&declared());
        let no_publish = Grants { publish: vec![], ..all.clone() };
        type Edit = fn(&mut ContainerSpec);
        // (what, grants, edit, expect: None = allowed, Some(substring of the refusal))
        let cases: Vec<(&str, Grants, Edit, Option<&str>)> = vec![
            ("plain", all.clone(), |_| {}, None),
            ("own alias", all.clone(), |s| s.aliases.push("db-primary".into()), None),
            ("undeclared image", all.clone(), |s| s.image = "nginx:1".into(), Some("not among")),
            ("ungranted port", no_publish, |_| {}, Some("publish = [5432]")),
            ("undeclared port", all.clone(), |s| s.ports[0].container_port = 22, Some("publish `22`")),
            ("host path as volume", all.clone(), |s| s.mounts[0].volume = "/etc".into(), Some("volume name")),
            ("docker socket", all.clone(), |s| s.mounts[0].volume = "/var/run/docker.sock".into(), Some("volume name")),
            ("undeclared volume", all.clone(), |s| s.mounts[0].volume = "other".into(), Some("not among")),
            ("relative target", all.clone(), |s| s.mounts[0].target = "data".into(), Some("absolute")),
            ("escaping target", all.clone(), |s| s.mounts[0].target = "/a/../..".into(), Some("absolute")),
            ("reserved label", all.clone(), |s| s.labels.push(("provisioner.service".into(), "x".into())), Some("the host's")),
            ("bad env name", all.clone(), |s| s.env[0].name = "A=B".into(), Some("environment variable")),
            ("bad name", all.clone(), |s| s.name = "../x".into(), Some("container name")),
            ("empty image", all.clone(), |s| s.image = " ".into(), Some("empty image")),
            ("relative file", all.clone(), |s| s.files.push(crate::spec::ContainerFile { path: "etc/x".into(), contents: vec![], mode: 0o644, secret: false }), Some("absolute")),
            ("alias of a sibling", all.clone(), |s| s.aliases.push("cache".into()), Some("must be `db` or start with `db-`")),
            ("alias under a sibling's name", all.clone(), |s| s.aliases.push("db-cache-x".into()), Some("answer for service `db-cache`")),
            ("container in a sibling's names", all.clone(), |s| s.name = "cache-server".into(), Some("names of service `db-cache`")),
            ("volume in a sibling's names", all.clone(), |s| s.mounts[0].volume = "cache-data".into(), Some("names of service `db-cache`")),
            ("privileged host port", all.clone(), |s| s.ports[0].host_port = Some(22), Some("privileged_host_ports = [22]")),
            ("unprivileged host port", all.clone(), |s| s.ports[0].host_port = Some(15432), None),
            ("too many replicas", all.clone(), |s| s.replicas = Some(MAX_REPLICAS + 1), Some("replicas")),
            ("no replicas", all.clone(), |s| s.replicas = Some(0), Some("replicas")),
        ];
        for (what, grants, edit, expect) in cases {
            let effective = Effective::new("postgres", declared(), grants);
            let mut s = spec("postgres:16");
            edit(&mut s);
            let result = workload(&scope(), &effective, &defaults, &s);
            match (result, expect) {
                (Ok(_), None) => {}
                (Ok(_), Some(want)) => panic!("{what}: allowed, expected refusal with `{want}`"),
                (Err(Refused::Denied(r)), Some(want)) => assert!(r.message.contains(want), "{what}: {}", r.message),
                (Err(Refused::Invalid(m)), Some(want)) => assert!(m.contains(want), "{what}: {m}"),
                (Err(e), None) => panic!("{what}: refused: {e:?}"),
            }
        }
    }

    #[test]
    fn images_move_to_the_mirror_unless_they_name_a_registry() {
        let cases = [
            ("postgres:16", None, "postgres:16"),
            ("postgres:16", Some("mirror.local:5000"), "mirror.local:5000/library/postgres:16"),
            ("dxflrs/garage:v1", Some("mirror.local:5000/"), "mirror.local:5000/dxflrs/garage:v1"),
            ("ghcr.io/x/y:1", Some("mirror.local:5000"), "ghcr.io/x/y:1"),
            ("localhost/y:1", Some("m"), "localhost/y:1"),
            ("postgres:16", Some(""), "postgres:16"),
        ];
        for (image, mirror, expected) in cases {
            assert_eq!(mirrored(image, mirror), expected, "{image} via {mirror:?}");
        }
    }

    #[test]
    fn limits_are_capped_by_the_environment() {
        let mut defaults = ContainerDefaults::default();
        defaults.resources.max_memory_mb = 2048;
        let effective = Effective::new("postgres", declared(), Grants::all_of(&declared()));
        let mut s = spec("postgres:16");
        s.resources = Some(Resources { memory_mb: Some(1 << 20), cpu_millis: None, pids: Some(0) });
        s.stop_timeout_ms = Some(3_600_000);
        let request = container_request(&scope(), &effective, &defaults, &s, None).unwrap();
        assert_eq!(request.memory_bytes, 2048 << 20);
        assert_eq!(request.pids, MIN_PIDS);
        assert_eq!(request.stop_timeout_secs, MAX_STOP_TIMEOUT_SECS);
    }

    #[test]
    fn health_checks_run_no_more_often_than_the_floor() {
        let effective = Effective::new("postgres", declared(), Grants::all_of(&declared()));
        let mut s = spec("postgres:16");
        s.health = Some(crate::spec::HealthCheck {
            command: vec!["true".into()],
            interval_ms: 1,
            timeout_ms: 1,
            retries: 3,
            start_period_ms: 0,
        });
        let request = container_request(&scope(), &effective, &ContainerDefaults::default(), &s, None).unwrap();
        let health = request.health.expect("kept");
        assert_eq!((health.interval_ms, health.timeout_ms), (MIN_HEALTH_INTERVAL_MS, MIN_HEALTH_TIMEOUT_MS));
    }

    #[test]
    fn a_workload_has_one_request_per_replica() {
        let effective = Effective::new("postgres", declared(), Grants::all_of(&declared()));
        let mut s = spec("postgres:16");
        s.replicas = Some(3);
        let w = workload(&scope(), &effective, &ContainerDefaults::default(), &s).unwrap();
        let names: Vec<&str> = w.instances.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["shop-local-db-server-1", "shop-local-db-server-2", "shop-local-db-server-3"]);
        assert!(w.replicated);
        let same: Vec<_> = w.instances.iter().map(|r| r.labels.get(LABEL_SPEC_HASH)).collect();
        assert!(same.iter().all(|h| h.is_some()));
    }
}
