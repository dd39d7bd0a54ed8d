//! What an environment's containers ask for in all, per service and per plugin. One
//! container is capped by `[environments.NAME.resources]`'s `max_*`; these totals keep
//! 64 replicas of the maximum (or one plugin across many services) from adding up to
//! more than any machine has.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::config::ResourceDefaults;
use crate::naming::Scope;
use crate::policy::Workload;

/// The workloads ensured so far in one operation (a `run` or a `scale`), shared by
/// every service of it. A workload ensured again replaces its earlier claim.
#[derive(Debug, Default)]
pub struct Totals {
    claims: Mutex<BTreeMap<(String, String), Claim>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim {
    memory_mb: u64,
    cpu_millis: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    memory_mb: u64,
    cpu_millis: u64,
}

impl Totals {
    /// Record `workload` for `scope`'s service, or refuse it (recording nothing) when
    /// the service's or the plugin's totals would pass the environment's.
    pub fn claim(&self, scope: &Scope, workload: &Workload, limits: &ResourceDefaults) -> Result<(), String> {
        let claim = Claim {
            memory_mb: workload.instances.iter().map(|r| r.memory_bytes >> 20).sum(),
            cpu_millis: workload.instances.iter().map(|r| r.nano_cpus / 1_000_000).sum(),
        };
        // A poisoned lock only means another service's hook panicked mid-claim; the
        // map itself is always whole.
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        let key = (format!("{}\u{0}{}", scope.service, scope.plugin), workload.name.clone());
        let (mut service, mut plugin) = (Sum::default(), Sum::default());
        for ((owner, name), c) in claims.iter() {
            if (owner, name) == (&key.0, &key.1) {
                continue;
            }
            let (s, p) = owner.split_once('\u{0}').unwrap_or((owner, ""));
            if s == scope.service {
                service.add(*c);
            }
            if p == scope.plugin {
                plugin.add(*c);
            }
        }
        service.add(claim);
        plugin.add(claim);
        let n = workload.instances.len();
        let what = if n == 1 { format!("container `{}`", workload.name) } else { format!("{n} replicas of `{}`", workload.name) };
        let checks = [
            (service.memory_mb, u64::from(limits.max_service_memory_mb), "MB of memory", "max_service_memory_mb", "service", &scope.service),
            (service.cpu_millis, u64::from(limits.max_service_cpu_millis), "millis of CPU", "max_service_cpu_millis", "service", &scope.service),
            (plugin.memory_mb, u64::from(limits.max_plugin_memory_mb), "MB of memory", "max_plugin_memory_mb", "plugin", &scope.plugin),
            (plugin.cpu_millis, u64::from(limits.max_plugin_cpu_millis), "millis of CPU", "max_plugin_cpu_millis", "plugin", &scope.plugin),
        ];
        for (total, limit, unit, key_name, kind, name) in checks {
            if total > limit {
                return Err(format!(
                    "with {what}, {kind} `{name}` would ask for {total} {unit} in all, more than the {limit} a {kind} may have \
                     (`{key_name}` under [environments.NAME.resources]); ask for fewer replicas or less per container"
                ));
            }
        }
        claims.insert(key, claim);
        Ok(())
    }
}

impl Sum {
    fn add(&mut self, claim: Claim) {
        self.memory_mb += claim.memory_mb;
        self.cpu_millis += claim.cpu_millis;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ContainerRequest;

    fn scope(service: &str, plugin: &str) -> Scope {
        Scope { project: "shop".into(), environment: "local".into(), service: service.into(), plugin: plugin.into() }
    }

    fn workload(name: &str, replicas: usize, memory_mb: u64, cpu_millis: u64) -> Workload {
        let request = ContainerRequest {
            name: name.into(),
            image: "x".into(),
            command: None,
            entrypoint: None,
            env: vec![],
            labels: Default::default(),
            ports: vec![],
            volumes: vec![],
            network: "shop-local".into(),
            aliases: vec![],
            files: vec![],
            secrets: Default::default(),
            user: None,
            health: None,
            memory_bytes: memory_mb << 20,
            nano_cpus: cpu_millis * 1_000_000,
            pids: 100,
            stop_timeout_secs: 10,
        };
        Workload { name: name.into(), replicated: replicas > 1, instances: vec![request; replicas] }
    }

    fn limits() -> ResourceDefaults {
        ResourceDefaults {
            max_service_memory_mb: 4096,
            max_service_cpu_millis: 8000,
            max_plugin_memory_mb: 6144,
            max_plugin_cpu_millis: 16000,
            ..ResourceDefaults::default()
        }
    }

    #[test]
    fn many_replicas_of_the_maximum_are_refused_per_service() {
        let totals = Totals::default();
        let error = totals.claim(&scope("web", "container"), &workload("app", 64, 8192, 2000), &limits()).unwrap_err();
        assert!(error.contains("64 replicas of `app`") && error.contains("max_service_memory_mb"), "{error}");
        // Nothing was recorded by the refusal: a smaller request still fits.
        totals.claim(&scope("web", "container"), &workload("app", 3, 1024, 2000), &limits()).unwrap();
    }

    #[test]
    fn a_workload_ensured_again_replaces_its_claim() {
        let totals = Totals::default();
        for _ in 0..5 {
            totals.claim(&scope("web", "container"), &workload("app", 3, 1024, 2000), &limits()).unwrap();
        }
        // Workloads of one service add up.
        let error = totals.claim(&scope("web", "container"), &workload("worker", 2, 1024, 1000), &limits()).unwrap_err();
        assert!(error.contains("service `web`") && error.contains("5120 MB"), "{error}");
    }

    #[test]
    fn one_plugin_across_services_adds_up() {
        let totals = Totals::default();
        totals.claim(&scope("a", "container"), &workload("app", 1, 4096, 1000), &limits()).unwrap();
        let error = totals.claim(&scope("b", "container"), &workload("app", 1, 4096, 1000), &limits()).unwrap_err();
        assert!(error.contains("plugin `container`") && error.contains("max_plugin_memory_mb"), "{error}");
        totals.claim(&scope("c", "postgres"), &workload("server", 1, 4096, 1000), &limits()).unwrap();
    }
}
