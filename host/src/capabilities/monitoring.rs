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

/// An absolute HTTP path of printable ASCII, without a query's or fragment's surprises.
fn valid_path(path: &str) -> bool {
    path.starts_with('/') && path.len() <= 200 && path.bytes().all(|b| b.is_ascii_graphic() && b != b'#' && b != b'?')
}

impl HostCalls {
    pub fn scrape_targets(&mut self) -> Result<Vec<ScrapeTarget>, HostError> {
        if let Err(refusal) = self.host.effective.check_scrape_targets() {
            return Err(self.deny(refusal));
        }
        Ok(self.host.scrape_targets.as_ref().clone())
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
}
