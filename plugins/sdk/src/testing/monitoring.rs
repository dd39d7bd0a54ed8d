//! Monitoring: the scrape and probe targets a test sets (the WIT `monitoring` interface).

use super::MockHost;
use crate::monitoring::{ProbeTarget, ScrapeTarget};

impl MockHost {
    /// Set what `monitoring::scrape_targets` answers: (service, plugin, address, path) each.
    pub fn set_scrape_targets(&self, targets: &[(&str, &str, &str, &str)]) -> &Self {
        let targets = targets
            .iter()
            .map(|(service, plugin, address, path)| ScrapeTarget {
                service: service.to_string(),
                plugin: plugin.to_string(),
                address: address.to_string(),
                path: path.to_string(),
            })
            .collect();
        self.with(|s| s.scrape_targets = targets);
        self
    }

    /// Set what `monitoring::probe_targets` answers: (service, plugin, instance,
    /// address, path) each.
    pub fn set_probe_targets(&self, targets: &[(&str, &str, &str, &str, &str)]) -> &Self {
        let targets = targets
            .iter()
            .map(|(service, plugin, instance, address, path)| ProbeTarget {
                service: service.to_string(),
                plugin: plugin.to_string(),
                instance: instance.to_string(),
                address: address.to_string(),
                path: path.to_string(),
            })
            .collect();
        self.with(|s| s.probe_targets = targets);
        self
    }
}

pub mod imports {
    use crate::monitoring::{ProbeTarget, ScrapeTarget};
    use crate::testing::with;
    use crate::{Capability, Error};

    pub fn scrape_targets() -> Result<Vec<ScrapeTarget>, Error> {
        with(|s| {
            s.failure("scrape-targets", "")?;
            s.allows(|c| matches!(c, Capability::ScrapeTargets), "scrape-targets".to_string())?;
            Ok(s.scrape_targets.clone())
        })
    }

    pub fn probe_targets() -> Result<Vec<ProbeTarget>, Error> {
        with(|s| {
            s.failure("probe-targets", "")?;
            s.allows(|c| matches!(c, Capability::ScrapeTargets), "scrape-targets".to_string())?;
            Ok(s.probe_targets.clone())
        })
    }
}
