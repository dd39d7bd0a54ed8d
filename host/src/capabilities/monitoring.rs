//! `monitoring` (WIT 0.2), with `scrape-targets`: where the environment's other
//! services serve metrics. The list is worked out before the run starts, from what each
//! plugin declares in `plugin-info.metrics` and the engine names the host gives its
//! containers, so a collector never learns anything the operator did not grant it.

use serde::{Deserialize, Serialize};

use super::service::{HostCalls, HostError};
use crate::naming::{self, Scope};

/// A metrics endpoint one container of a service serves while the environment is
/// monitored (the WIT's `metrics-endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsEndpoint {
    /// Short container name within the service, e.g. `exporter`.
    pub container: String,
    pub port: u16,
    pub path: String,
}

/// One endpoint of another service, as a collector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub service: String,
    pub plugin: String,
    /// `host:port` on the project network.
    pub address: String,
    pub path: String,
}

/// The endpoints of `services` (each a service's scope and its plugin's declared
/// endpoints), in the order given. An endpoint whose container name or path is not
/// one the host would accept is left out, so a plugin cannot point a collector at
/// anything but its own containers.
pub fn targets<'a>(services: impl IntoIterator<Item = (&'a Scope, &'a [MetricsEndpoint])>) -> Vec<ScrapeTarget> {
    let mut targets = Vec::new();
    for (scope, endpoints) in services {
        for endpoint in endpoints {
            if !naming::is_valid_short_name(&endpoint.container) || endpoint.port == 0 || !valid_path(&endpoint.path) {
                tracing::warn!(plugin = %scope.plugin, service = %scope.service, "ignoring the malformed metrics endpoint {endpoint:?}");
                continue;
            }
            targets.push(ScrapeTarget {
                service: scope.service.clone(),
                plugin: scope.plugin.clone(),
                address: format!("{}:{}", naming::engine_name(scope, &endpoint.container), endpoint.port),
                path: endpoint.path.clone(),
            });
        }
    }
    targets
}

/// One running instance of another service whose workload names an HTTP health
/// endpoint (the WIT's `probe-target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub service: String,
    pub plugin: String,
    /// The instance's short name, e.g. `app-2`.
    pub instance: String,
    /// `host:port` of that instance on the project network.
    pub address: String,
    pub path: String,
}

/// The probe targets among `containers` (the environment's, as the engine lists them)
/// for a collector of service `collector`: every running container but the
/// collector's own whose labels name an HTTP health endpoint, sorted by service and
/// instance (replica numbers in numeric order).
pub fn probe_targets(project: &str, environment: &str, collector: &str, containers: &[crate::engine::ContainerDetails]) -> Vec<ProbeTarget> {
    let mut found = Vec::new();
    for c in containers.iter().filter(|c| c.state == crate::engine::State::Running) {
        let label = |key: &str| c.labels.get(key).cloned();
        let (Some(service), Some(plugin), Some(health)) =
            (label(naming::LABEL_SERVICE), label(naming::LABEL_PLUGIN), label(naming::LABEL_HTTP_HEALTH))
        else {
            continue;
        };
        let Some((port, path)) = health.split_once(' ').and_then(|(port, path)| Some((port.parse::<u16>().ok()?, path))) else { continue };
        let scope = Scope { project: project.into(), environment: environment.into(), service: service.clone(), plugin: plugin.clone() };
        let Some(instance) = naming::short_name(&scope, &c.name) else { continue };
        // A replica waiting aside during a replacement is on its way out.
        if service == collector || port == 0 || !valid_path(path) || c.name.ends_with("-retiring") {
            continue;
        }
        found.push(ProbeTarget { instance: instance.to_string(), address: format!("{}:{port}", c.name), path: path.to_string(), service, plugin });
    }
    let order = |t: &ProbeTarget| {
        let (stem, number) = match t.instance.rsplit_once('-') {
            Some((stem, n)) if n.parse::<u32>().is_ok() => (stem.to_string(), n.parse::<u32>().unwrap_or(0)),
            _ => (t.instance.clone(), 0),
        };
        (t.service.clone(), stem, number)
    };
    found.sort_by_key(order);
    found
}

/// An absolute HTTP path of printable ASCII, without a query's or fragment's surprises.
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/') && path.len() <= 200 && path.bytes().all(|b| b.is_ascii_graphic() && b != b'#' && b != b'?')
}

impl HostCalls {
    pub fn scrape_targets(&mut self) -> Result<Vec<ScrapeTarget>, HostError> {
        if let Err(refusal) = self.host.effective.check_scrape_targets() {
            return Err(self.deny(refusal));
        }
        Ok(self.host.scrape_targets.as_ref().clone())
    }

    /// The instances to probe now; what was answered is kept (`probes_seen`) so that
    /// `run` can call the collector again when the instances change.
    pub fn probe_targets(&mut self) -> Result<Vec<ProbeTarget>, HostError> {
        if let Err(refusal) = self.host.effective.check_scrape_targets() {
            return Err(self.deny(refusal));
        }
        let targets = self.host.probe_targets_now()?;
        if let Ok(mut seen) = self.host.probes_seen.lock() {
            *seen = Some(targets.clone());
        }
        Ok(targets)
    }
}

impl crate::capabilities::ServiceHost {
    /// The environment's probe targets as the engine has them now, for this collector.
    pub fn probe_targets_now(&self) -> Result<Vec<ProbeTarget>, crate::engine::EngineError> {
        let containers = self.realiser.environment(&self.scope.project, &self.scope.environment)?;
        Ok(probe_targets(&self.scope.project, &self.scope.environment, &self.scope.service, &containers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(service: &str, plugin: &str) -> Scope {
        Scope { project: "shop".into(), environment: "local".into(), service: service.into(), plugin: plugin.into() }
    }

    #[test]
    fn only_a_granted_collector_reads_the_targets() {
        use std::sync::Arc;

        use crate::capabilities::{Capability, Effective, Grants, ServiceHost};
        use crate::limits::HookLimits;

        let endpoints = vec![MetricsEndpoint { container: "exporter".into(), port: 9187, path: "/metrics".into() }];
        let db = scope("db", "postgres");
        let known = Arc::new(targets([(&db, endpoints.as_slice())]));
        let calls = |declared: Vec<Capability>, grants: Grants| {
            let host = ServiceHost {
                effective: Effective::new("collector", declared, grants),
                scrape_targets: known.clone(),
                ..ServiceHost::sealed("collector", HookLimits::default())
            };
            HostCalls::new(Arc::new(host))
        };
        let declared = vec![Capability::ScrapeTargets];
        let mut granted = calls(declared.clone(), Grants { scrape_targets: true, ..Grants::default() });
        assert_eq!(granted.scrape_targets().unwrap(), *known);

        let mut not_granted = calls(declared, Grants::default());
        let refused = not_granted.scrape_targets().unwrap_err().to_string();
        assert!(refused.contains("scrape_targets = true") && refused.contains("[plugins.collector.grants]"), "{refused}");
        assert_eq!(not_granted.denials.len(), 1);

        let mut undeclared = calls(Vec::new(), Grants { scrape_targets: true, ..Grants::default() });
        assert!(undeclared.scrape_targets().unwrap_err().to_string().contains("not among the capabilities"));
    }

    #[test]
    fn engine_names_of_declared_containers_only() {
        let db = scope("db", "postgres");
        let cache = scope("cache", "redis");
        let db_endpoints = vec![MetricsEndpoint { container: "exporter".into(), port: 9187, path: "/metrics".into() }];
        let bad = vec![
            MetricsEndpoint { container: "../x".into(), port: 9121, path: "/metrics".into() },
            MetricsEndpoint { container: "exporter".into(), port: 0, path: "/metrics".into() },
            MetricsEndpoint { container: "exporter".into(), port: 9121, path: "metrics".into() },
            MetricsEndpoint { container: "exporter".into(), port: 9121, path: "/m?x=1".into() },
            MetricsEndpoint { container: "exporter".into(), port: 9121, path: "/metrics".into() },
        ];
        let found = targets([(&db, db_endpoints.as_slice()), (&cache, bad.as_slice())]);
        let addresses: Vec<_> = found.iter().map(|t| (t.service.as_str(), t.address.as_str(), t.path.as_str())).collect();
        assert_eq!(
            addresses,
            [("db", "shop-local-db-exporter:9187", "/metrics"), ("cache", "shop-local-cache-exporter:9121", "/metrics")]
        );
    }

    #[test]
    fn probe_targets_are_the_running_instances_of_others_that_name_a_health_endpoint() {
        use std::collections::BTreeMap;

        use crate::engine::{ContainerDetails, State};

        let container = |service: &str, short: &str, health: Option<&str>, state: State| {
            let scope = scope(service, if service == "metrics" { "prometheus" } else { "container" });
            let mut labels: BTreeMap<String, String> = naming::workload_labels(&scope, short.split('-').next().unwrap_or(short));
            if let Some(health) = health {
                labels.insert(naming::LABEL_HTTP_HEALTH.into(), health.into());
            }
            ContainerDetails::for_test(&naming::engine_name(&scope, short), labels, state)
        };
        let containers = vec![
            container("backend", "app-10", Some("3000 /health"), State::Running),
            container("backend", "app-2", Some("3000 /health"), State::Running),
            container("backend", "app-3", Some("3000 /health"), State::Exited),
            container("backend", "app-4-retiring", Some("3000 /health"), State::Running),
            container("db", "server", None, State::Running),
            container("metrics", "server", Some("9090 /-/healthy"), State::Running),
            container("worker", "app-1", Some("3000 /h?x"), State::Running),
        ];
        let found = probe_targets("shop", "local", "metrics", &containers);
        let seen: Vec<_> = found.iter().map(|t| (t.service.as_str(), t.instance.as_str(), t.address.as_str(), t.path.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("backend", "app-2", "shop-local-backend-app-2:3000", "/health"),
                ("backend", "app-10", "shop-local-backend-app-10:3000", "/health"),
            ]
        );
    }
}
