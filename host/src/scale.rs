//! `provisioner scale ENV SERVICE=N…`: reading the assignments, checking them against
//! the project and its plugins, and the overrides they leave in state.json until
//! provisioner.toml's `replicas` changes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{Project, MAX_REPLICAS};
use crate::discovery::Catalog;
use crate::state::{Scaled, State};

/// An assignment `provisioner scale` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    #[error("`{0}`: write SERVICE=N, e.g. backend=3")]
    NotAnAssignment(String),
    #[error("`{0}`: N must be a whole number from 1 to {MAX_REPLICAS}")]
    BadCount(String),
    #[error("{file}: no service `{service}` (services: {known})")]
    NoService { file: String, service: String, known: String },
    #[error(
        "service `{service}` runs plugin `{plugin}`, which runs a single instance; scale applies to services whose plugin runs replicas (e.g. `container`)"
    )]
    SingleInstance { service: String, plugin: String },
}

/// `SERVICE=N` with N from 1 to `MAX_REPLICAS`.
pub fn parse_assignment(assignment: &str) -> Result<(String, u32), ScaleError> {
    let (service, count) = assignment.split_once('=').ok_or_else(|| ScaleError::NotAnAssignment(assignment.to_string()))?;
    let replicas = count
        .parse()
        .ok()
        .filter(|n| (1..=MAX_REPLICAS).contains(n))
        .ok_or_else(|| ScaleError::BadCount(assignment.to_string()))?;
    Ok((service.to_string(), replicas))
}

/// Whether `plugin` runs replicas: plugins that do declare a `replicas` default.
pub fn runs_replicas(catalog: &Catalog, plugin: &str) -> bool {
    catalog.plugins.get(plugin).is_some_and(|f| f.plugin.info.defaults.iter().any(|(k, _)| k == "replicas"))
}

/// The replicas each assignment asks for, by service, once each names a service of
/// `project` whose plugin runs replicas (`runs_replicas(plugin)`). Assignments are
/// checked in order and the first problem is the one reported.
pub fn check(project: &Project, assignments: &[String], runs_replicas: impl Fn(&str) -> bool) -> Result<BTreeMap<String, u32>, ScaleError> {
    let mut wanted = BTreeMap::new();
    for assignment in assignments {
        let (service, replicas) = parse_assignment(assignment)?;
        let Some(svc) = project.services.get(&service) else {
            let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
            return Err(ScaleError::NoService { file: project.file.display().to_string(), service, known: known.join(", ") });
        };
        if !runs_replicas(&svc.plugin) {
            return Err(ScaleError::SingleInstance { service, plugin: svc.plugin.clone() });
        }
        wanted.insert(service, replicas);
    }
    Ok(wanted)
}

/// One service's change of instance count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub service: String,
    pub from: u32,
    pub to: u32,
}

/// Each service's `replicas` as provisioner.toml says it, and the `provisioner scale`
/// overrides in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub configured: BTreeMap<String, u32>,
    pub scale: BTreeMap<String, Scaled>,
}

impl Overrides {
    /// The overrides `state` holds that still apply, applied to `project`'s services.
    pub fn apply(project: &mut Project, state: &State) -> Overrides {
        let configured: BTreeMap<String, u32> = project.services.iter().map(|(n, s)| (n.clone(), s.replicas)).collect();
        let scale = state.live_scale(&configured);
        for (service, scaled) in &scale {
            if let Some(s) = project.services.get_mut(service) {
                s.replicas = scaled.replicas;
            }
        }
        Overrides { configured, scale }
    }

    /// Override `wanted` (from `check`) in `project` and in `self`; what changed, by
    /// service.
    pub fn set(&mut self, project: &mut Project, wanted: BTreeMap<String, u32>) -> Vec<Change> {
        let mut changes = Vec::new();
        for (service, replicas) in wanted {
            let config_replicas = self.configured.get(&service).copied().unwrap_or(1);
            let before = project.services.get(&service).map_or(config_replicas, |s| s.replicas);
            tracing::info!(service = %service, from = before, to = replicas, "scaling");
            if let Some(s) = project.services.get_mut(&service) {
                s.replicas = replicas;
            }
            self.scale.insert(service.clone(), Scaled { replicas, config_replicas });
            changes.push(Change { service, from: before, to: replicas });
        }
        changes
    }

    /// Keep the overrides in the state in `state_dir`. Done before the run, so an
    /// interrupted scale is finished by the next `run`.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let mut state = State::load(state_dir)?;
        state.scale = self.scale.clone();
        state.save(state_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        let source = "[project]\nname = \"p\"\n[services.api]\nplugin = \"container\"\n[services.db]\nplugin = \"postgres\"\nreplicas = 2\n";
        Project::parse(Path::new("provisioner.toml"), source).unwrap()
    }

    #[test]
    fn assignments_are_service_equals_a_count_in_range() {
        assert_eq!(parse_assignment("api=3").unwrap(), ("api".to_string(), 3));
        assert_eq!(parse_assignment(&format!("api={MAX_REPLICAS}")).unwrap().1, MAX_REPLICAS);
        assert_eq!(parse_assignment("api").unwrap_err(), ScaleError::NotAnAssignment("api".into()));
        for bad in ["api=0", "api=65", "api=-1", "api=two", "api="] {
            let err = parse_assignment(bad).unwrap_err();
            assert_eq!(err, ScaleError::BadCount(bad.into()));
            assert!(err.to_string().ends_with("N must be a whole number from 1 to 64"), "{err}");
        }
    }

    #[test]
    fn only_known_services_whose_plugin_runs_replicas() {
        let project = project();
        let replicas = |plugin: &str| plugin == "container";
        let wanted = check(&project, &["api=2".into(), "api=4".into()], replicas).unwrap();
        assert_eq!(wanted, BTreeMap::from([("api".to_string(), 4)]));

        let err = check(&project, &["ghost=2".into()], replicas).unwrap_err();
        assert_eq!(err.to_string(), "provisioner.toml: no service `ghost` (services: api, db)");
        let err = check(&project, &["db=2".into()], replicas).unwrap_err();
        assert_eq!(err, ScaleError::SingleInstance { service: "db".into(), plugin: "postgres".into() });
        // The first problem in order is the one reported.
        let err = check(&project, &["api=0".into(), "ghost=2".into()], replicas).unwrap_err();
        assert_eq!(err, ScaleError::BadCount("api=0".into()));
    }

    #[test]
    fn overrides_apply_until_the_file_changes_and_record_changes() {
        let mut project = project();
        let scaled = |replicas, config_replicas| Scaled { replicas, config_replicas };
        let state = State {
            scale: BTreeMap::from([("api".to_string(), scaled(3, 1)), ("db".to_string(), scaled(5, 1))]),
            ..State::default()
        };
        let mut overrides = Overrides::apply(&mut project, &state);
        // db's file now says 2, not the 1 the override was made against: it lapsed.
        assert_eq!(overrides.scale, BTreeMap::from([("api".to_string(), scaled(3, 1))]));
        assert_eq!((project.services["api"].replicas, project.services["db"].replicas), (3, 2));

        let changes = overrides.set(&mut project, BTreeMap::from([("api".to_string(), 5)]));
        assert_eq!(changes, vec![Change { service: "api".into(), from: 3, to: 5 }]);
        assert_eq!(project.services["api"].replicas, 5);
        assert_eq!(overrides.scale["api"], scaled(5, 1));

        let dir = tempfile::tempdir().unwrap();
        overrides.save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap().scale, overrides.scale);
    }
}
