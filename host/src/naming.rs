//! Every name and label the host gives an engine resource, in one place (like Docker
//! Compose's `pkg/api/labels.go`). Nothing else in the host formats an engine name.
//!
//! - the project network is `<project>-<env>`;
//! - a service's resource with short name `<short>` is `<project>-<env>-<service>-<short>`;
//! - replica `i` of workload `<short>` is `<short>-<i>`; a replica being replaced waits
//!   aside as `<name>-retiring`;
//! - every resource carries the labels of its service, and ownership is decided by those
//!   labels alone, never by the shape of a name;
//! - `<service>-<short>` never enters another service's namespace (see
//!   [`namespace_owner`]), so within an environment no two services' resources can
//!   ever want the same engine name: service `evil` cannot take the names
//!   `…-evil-cache-server` that a sibling `evil-cache` needs.

use std::collections::BTreeMap;

pub const LABEL_PROJECT: &str = "provisioner.project";
pub const LABEL_ENV: &str = "provisioner.env";
pub const LABEL_SERVICE: &str = "provisioner.service";
pub const LABEL_PLUGIN: &str = "provisioner.plugin";
/// The short name of the workload a container belongs to (all its replicas share it).
pub const LABEL_WORKLOAD: &str = "provisioner.workload";
/// A fingerprint of the request a container was created from.
pub const LABEL_SPEC_HASH: &str = "provisioner.spec-hash";
/// On a cluster service: the container ports its plugin asked to publish, reached
/// through a port-forward when the cluster does not publish them (`5432,8080`).
pub const LABEL_PORTS: &str = "provisioner.ports";
/// On a cluster service: a fingerprint of what the target adds to the request
/// (placement, routing), so that changing those updates the service too.
pub const LABEL_TARGET_HASH: &str = "provisioner.target-hash";
/// On a cluster service: `true` for a replicated workload (instances `<short>-<i>`).
pub const LABEL_REPLICATED: &str = "provisioner.replicated";
/// `PORT PATH` of an HTTP endpoint each instance answers 2xx on while healthy
/// (`container-spec.http-health`), which collectors probe (`monitoring.probe-targets`).
pub const LABEL_HTTP_HEALTH: &str = "provisioner.http-health";
/// On a cluster config that records where a stateful service's volumes are (volumes
/// are node-local): the node's id, and its hostname for messages. The record stays
/// with the volumes through `teardown --keep-volumes`, so a later run still knows
/// where the data is while that node is away.
pub const LABEL_VOLUMES_NODE: &str = "provisioner.volumes-node";
pub const LABEL_VOLUMES_NODE_NAME: &str = "provisioner.volumes-node-name";
/// Labels plugins may not set: every `provisioner.*` key is the host's.
pub const RESERVED_LABEL_PREFIX: &str = "provisioner.";

/// Docker limits secret and config names to 64 characters.
const MAX_OBJECT_NAME_LEN: usize = 64;

/// A cluster secret or config of a workload: `<engine name>-<digest>`, the digest
/// covering what it holds, so a change makes a new object (they are immutable). A long
/// engine name is cut to fit; the digest keeps the name unique.
pub fn object_name(workload_engine_name: &str, digest: &str) -> String {
    let digest = &digest[..digest.len().min(12)];
    let room = MAX_OBJECT_NAME_LEN - digest.len() - 1;
    let prefix: String = workload_engine_name.chars().take(room).collect();
    format!("{prefix}-{digest}")
}

/// Suffix of a replica that waits aside while its successor starts.
const RETIRING_SUFFIX: &str = "-retiring";

/// The service a hook acts for: the names every resource it makes is derived from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub project: String,
    pub environment: String,
    pub service: String,
    pub plugin: String,
}

/// `<project>-<env>`: the project network, and the start of every name.
pub fn network_name(project: &str, environment: &str) -> String {
    format!("{project}-{environment}")
}

/// `<project>-<env>-<service>-<short>`.
pub fn engine_name(scope: &Scope, short: &str) -> String {
    format!("{}-{short}", service_prefix(scope))
}

/// `<project>-<env>-<service>`: what every engine name of the service starts with.
fn service_prefix(scope: &Scope) -> String {
    format!("{}-{}", network_name(&scope.project, &scope.environment), scope.service)
}

/// The short name of one instance of a workload: the workload's own name for a single
/// container, `<workload>-<i>` (1-based) for replica `i`.
pub fn instance_short_name(workload: &str, replica: Option<u32>) -> String {
    match replica {
        Some(i) => format!("{workload}-{i}"),
        None => workload.to_string(),
    }
}

/// Where a replica waits while its successor starts under its name.
pub fn retiring_name(engine_name: &str) -> String {
    format!("{engine_name}{RETIRING_SUFFIX}")
}

/// The short name of one of the service's resources, from its engine name.
pub fn short_name<'a>(scope: &Scope, engine_name: &'a str) -> Option<&'a str> {
    engine_name.strip_prefix(&service_prefix(scope))?.strip_prefix('-')
}

/// The labels that mark a resource as this service's.
pub fn service_labels(scope: &Scope) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_PROJECT.to_string(), scope.project.clone()),
        (LABEL_ENV.to_string(), scope.environment.clone()),
        (LABEL_SERVICE.to_string(), scope.service.clone()),
        (LABEL_PLUGIN.to_string(), scope.plugin.clone()),
    ])
}

/// The labels of one workload of the service (all of its replicas).
pub fn workload_labels(scope: &Scope, workload: &str) -> BTreeMap<String, String> {
    let mut labels = service_labels(scope);
    labels.insert(LABEL_WORKLOAD.to_string(), workload.to_string());
    labels
}

/// The labels of the project + environment, shared by all of its services.
pub fn environment_labels(project: &str, environment: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_PROJECT.to_string(), project.to_string()),
        (LABEL_ENV.to_string(), environment.to_string()),
    ])
}

/// Whether a resource with these labels is this service's.
pub fn owned_by(labels: &BTreeMap<String, String>, scope: &Scope) -> bool {
    service_labels(scope).iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The service a resource belongs to, from its labels.
pub fn service_of(labels: &BTreeMap<String, String>) -> Option<&str> {
    labels.get(LABEL_SERVICE).map(String::as_str)
}

/// The other service whose namespace `<service>-<short>` falls into, if any: the one
/// whose name it equals or starts with followed by `-`. A longer service name owns its
/// namespace over a shorter one's plugin, so the choice never depends on which service
/// ran first. `short` may be a container, volume or alias name (or `""` for the service
/// name itself).
pub fn namespace_owner<'a>(service: &str, short: &str, others: &'a [String]) -> Option<&'a str> {
    let full = if short.is_empty() { service.to_string() } else { format!("{service}-{short}") };
    others
        .iter()
        // Only a service whose own name extends this one's (`evil-cache` over `evil`)
        // can have names under `<service>-`: the more specific name owns them.
        .filter(|o| o.strip_prefix(service).is_some_and(|rest| rest.starts_with('-')))
        .find(|o| full == **o || full.strip_prefix(o.as_str()).is_some_and(|rest| rest.starts_with('-')))
        .map(String::as_str)
}

/// A plugin's short name for a container, volume or alias: 1 to 40 of `a-z 0-9 -`,
/// starting with a letter or digit.
pub fn is_valid_short_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Plugin, project, environment and service names: what may appear in resource names
/// and file names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= crate::config::MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope { project: "shop".into(), environment: "local".into(), service: "db".into(), plugin: "postgres".into() }
    }

    #[test]
    fn names_are_derived_from_the_scope() {
        let s = scope();
        assert_eq!(network_name(&s.project, &s.environment), "shop-local");
        assert_eq!(engine_name(&s, "server"), "shop-local-db-server");
        assert_eq!(engine_name(&s, &instance_short_name("server", Some(2))), "shop-local-db-server-2");
        assert_eq!(retiring_name("shop-local-db-server-2"), "shop-local-db-server-2-retiring");
        assert_eq!(short_name(&s, "shop-local-db-server"), Some("server"));
        assert_eq!(short_name(&s, "shop-local-dbx-server"), None);
    }

    #[test]
    fn ownership_is_by_labels() {
        let s = scope();
        assert!(owned_by(&service_labels(&s), &s));
        assert!(owned_by(&workload_labels(&s, "server"), &s));
        let other = Scope { service: "cache".into(), ..scope() };
        assert!(!owned_by(&service_labels(&other), &s));
        assert!(!owned_by(&environment_labels("shop", "local"), &s));
    }

    #[test]
    fn no_service_can_take_a_siblings_names() {
        let others = vec!["evil-cache".to_string(), "evil".to_string(), "db".to_string()];
        assert_eq!(namespace_owner("evil", "cache-server", &others), Some("evil-cache"));
        assert_eq!(namespace_owner("evil", "cache-data", &others), Some("evil-cache"));
        assert_eq!(namespace_owner("evil", "cache", &others), Some("evil-cache"));
        assert_eq!(namespace_owner("evil", "cacheserver", &others), None);
        assert_eq!(namespace_owner("evil", "server", &others), None);
        // The sibling keeps its own names; the shorter one never owns the longer's.
        assert_eq!(namespace_owner("evil-cache", "server", &others), None);
        assert_eq!(namespace_owner("db", "", &others), None);
    }

    #[test]
    fn name_rules() {
        for (name, short, full) in
            [("db", true, true), ("9x", true, false), ("a-b", true, true), ("A", false, false), ("", false, false), ("a_b", false, false)]
        {
            assert_eq!(is_valid_short_name(name), short, "{name}");
            assert_eq!(is_valid_name(name), full, "{name}");
        }
        assert!(!is_valid_short_name(&"a".repeat(41)));
    }
}
