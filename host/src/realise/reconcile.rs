//! Reconcile: what is on the engine + what is wanted → the operations that bring one
//! into line with the other, in order. A pure function: no engine, no WASI, no I/O, so
//! `plan` and `run` share it and its tests read as golden plans.

use std::collections::BTreeMap;

use crate::engine::{ContainerDetails, State, VolumeDetails};
use crate::naming::{self, Scope, LABEL_SPEC_HASH, LABEL_WORKLOAD};
use crate::policy::Workload;

/// What reconcile needs to know of the engine: the containers that carry the
/// workload's names or labels, and the volumes the workload mounts.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// By engine name: the wanted names, their `-retiring` names, and every member of
    /// the workload.
    pub containers: BTreeMap<String, ContainerDetails>,
    /// By engine name; a missing entry means the volume does not exist.
    pub volumes: BTreeMap<String, VolumeDetails>,
}

/// One step of bringing a workload in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    CreateVolume(String),
    /// Make the image available (pull if missing), before the first container of it.
    Pull(String),
    /// Create a container, write its files, start it.
    Create(String),
    /// Start a stopped container whose spec is unchanged.
    Start(String),
    /// Remove a single container whose spec changed, then create and start it anew.
    Recreate(String),
    /// Replace a running replica without a gap: rename it aside, create and start the
    /// successor under its name, wait until it is up, then remove the old one. If the
    /// successor never comes up it is removed and the old one is put back.
    Replace { name: String, aside: String },
    /// Remove what an interrupted replacement left aside (the instance under the name won).
    RemoveStale(String),
    /// Remove instances the workload no longer has, side by side.
    Remove(Vec<String>),
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Operation::CreateVolume(volume) => format!("create volume {volume}"),
            Operation::Pull(image) => format!("pull {image} (if missing)"),
            Operation::Create(name) => format!("create {name}"),
            Operation::Start(name) => format!("start {name}"),
            Operation::Recreate(name) => format!("recreate {name} (spec changed)"),
            Operation::Replace { name, aside } => {
                format!("replace {name} (the old one keeps serving as {aside} until its successor is up)")
            }
            Operation::RemoveStale(name) => format!("remove {name} (left by an interrupted replacement)"),
            Operation::Remove(names) => format!("remove {} (no longer wanted)", names.join(", ")),
        };
        f.write_str(&text)
    }
}

/// What a reconcile amounts to, as the WIT reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Unchanged,
    Started,
    Recreated,
    Created,
}

/// Why a workload cannot be brought in line without touching someone else's resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict(pub String);

/// The operations that bring `workload` in line with `observed`, in order.
pub fn reconcile(scope: &Scope, workload: &Workload, observed: &Observed) -> Result<Vec<Operation>, Conflict> {
    let mut ops = Vec::new();
    let volumes: Vec<&String> = workload.instances.first().map(|r| r.volumes.iter().map(|(v, _, _)| v).collect()).unwrap_or_default();
    for volume in volumes {
        match observed.volumes.get(volume) {
            Some(v) if naming::owned_by(&v.labels, scope) => {}
            Some(_) => return Err(Conflict(format!("volume {volume} exists and belongs to something else"))),
            None => ops.push(Operation::CreateVolume(volume.clone())),
        }
    }

    let mut needs_image = None;
    let mut containers = Vec::new();
    for request in &workload.instances {
        let existing = observed.containers.get(&request.name);
        if let Some(d) = existing.filter(|d| !naming::owned_by(&d.labels, scope)) {
            return Err(Conflict(format!(
                "a container named {} exists and does not belong to service `{}`; remove or rename it",
                d.name, scope.service
            )));
        }
        let aside = naming::retiring_name(&request.name);
        match observed.containers.get(&aside) {
            Some(stale) if naming::owned_by(&stale.labels, scope) => ops.push(Operation::RemoveStale(aside.clone())),
            Some(_) => return Err(Conflict(format!("a container named {aside} exists and is not this service's"))),
            None => {}
        }
        let unchanged = |d: &ContainerDetails| d.labels.get(LABEL_SPEC_HASH) == request.labels.get(LABEL_SPEC_HASH);
        let op = match existing {
            None => Operation::Create(request.name.clone()),
            Some(d) if unchanged(d) && d.state == State::Running => continue,
            Some(d) if unchanged(d) => Operation::Start(request.name.clone()),
            Some(d) if workload.replicated && d.state == State::Running => {
                Operation::Replace { name: request.name.clone(), aside }
            }
            Some(_) => Operation::Recreate(request.name.clone()),
        };
        if !matches!(op, Operation::Start(_)) {
            needs_image.get_or_insert(request.image.clone());
        }
        containers.push(op);
    }
    if let Some(image) = needs_image {
        ops.push(Operation::Pull(image));
    }
    ops.extend(containers);

    // Instances of this workload that are no longer wanted (scale down, or a switch
    // between one container and replicas).
    let wanted: Vec<String> =
        workload.instances.iter().flat_map(|r| [r.name.clone(), naming::retiring_name(&r.name)]).collect();
    let extras: Vec<String> = observed
        .containers
        .values()
        .filter(|d| naming::owned_by(&d.labels, scope) && d.labels.get(LABEL_WORKLOAD) == Some(&workload.name))
        .filter(|d| !wanted.contains(&d.name))
        .map(|d| d.name.clone())
        .collect();
    if !extras.is_empty() {
        ops.push(Operation::Remove(extras));
    }
    Ok(ops)
}

/// What a list of operations amounts to for the plugin.
pub fn outcome(ops: &[Operation]) -> Outcome {
    ops.iter()
        .map(|op| match op {
            Operation::CreateVolume(_) | Operation::Pull(_) | Operation::RemoveStale(_) => Outcome::Unchanged,
            Operation::Start(_) => Outcome::Started,
            Operation::Recreate(_) | Operation::Replace { .. } | Operation::Remove(_) => Outcome::Recreated,
            Operation::Create(_) => Outcome::Created,
        })
        .max()
        .unwrap_or(Outcome::Unchanged)
}

/// Operations as a golden plan: one per line.
pub fn render(ops: &[Operation]) -> String {
    ops.iter().map(|op| format!("{op}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{Capability, Effective, Grants};
    use crate::policy::{self, ContainerDefaults};
    use crate::spec::{ContainerSpec, Mount};

    fn scope() -> Scope {
        Scope { project: "shop".into(), environment: "local".into(), service: "api".into(), plugin: "container".into() }
    }

    fn workload(image: &str, replicas: Option<u32>) -> Workload {
        let declared = vec![Capability::Image("*".into()), Capability::Volume("data".into())];
        let effective = Effective::new("container", declared.clone(), Grants::all_of(&declared));
        let spec = ContainerSpec {
            replicas,
            mounts: vec![Mount { volume: "data".into(), target: "/data".into(), read_only: false }],
            ..ContainerSpec::new("app", image)
        };
        policy::workload(&scope(), &effective, &ContainerDefaults::default(), &spec).expect("allowed")
    }

    /// The engine after `workload` was realised, with each container in `state`.
    fn realised(workload: &Workload, state: State) -> Observed {
        let mut observed = Observed::default();
        for r in &workload.instances {
            observed.containers.insert(r.name.clone(), details(&r.name, r.labels.clone(), state));
        }
        observed.volumes.insert(
            "shop-local-api-data".into(),
            VolumeDetails { name: "shop-local-api-data".into(), labels: naming::service_labels(&scope()) },
        );
        observed
    }

    fn details(name: &str, labels: BTreeMap<String, String>, state: State) -> ContainerDetails {
        ContainerDetails::for_test(name, labels, state)
    }

    fn plan(workload: &Workload, observed: &Observed) -> String {
        match reconcile(&scope(), workload, observed) {
            Ok(ops) => render(&ops),
            Err(Conflict(message)) => format!("conflict: {message}\n"),
        }
    }

    #[test]
    fn a_fresh_engine_gets_everything_created() {
        assert_eq!(
            plan(&workload("app:1", Some(2)), &Observed::default()),
            "create volume shop-local-api-data\n\
             pull app:1 (if missing)\n\
             create shop-local-api-app-1\n\
             create shop-local-api-app-2\n"
        );
    }

    #[test]
    fn nothing_to_do_when_everything_runs_as_wanted() {
        let w = workload("app:1", Some(2));
        let ops = reconcile(&scope(), &w, &realised(&w, State::Running)).unwrap();
        assert!(ops.is_empty(), "{ops:?}");
        assert_eq!(outcome(&ops), Outcome::Unchanged);
    }

    #[test]
    fn stopped_containers_are_started_without_a_pull() {
        let w = workload("app:1", None);
        assert_eq!(plan(&w, &realised(&w, State::Exited)), "start shop-local-api-app\n");
    }

    #[test]
    fn changed_replicas_are_replaced_one_at_a_time_and_a_single_container_recreated() {
        let old = workload("app:1", Some(2));
        let new = workload("app:2", Some(2));
        assert_eq!(
            plan(&new, &realised(&old, State::Running)),
            "pull app:2 (if missing)\n\
             replace shop-local-api-app-1 (the old one keeps serving as shop-local-api-app-1-retiring until its successor is up)\n\
             replace shop-local-api-app-2 (the old one keeps serving as shop-local-api-app-2-retiring until its successor is up)\n"
        );
        let single = workload("app:1", None);
        assert_eq!(
            plan(&workload("app:2", None), &realised(&single, State::Running)),
            "pull app:2 (if missing)\nrecreate shop-local-api-app (spec changed)\n"
        );
        // A stopped replica has nothing to keep serving: it is recreated in place.
        assert_eq!(
            plan(&new, &realised(&old, State::Exited)),
            "pull app:2 (if missing)\n\
             recreate shop-local-api-app-1 (spec changed)\n\
             recreate shop-local-api-app-2 (spec changed)\n"
        );
    }

    #[test]
    fn scaling_down_removes_the_highest_instances_and_a_switch_removes_the_old_shape() {
        let three = workload("app:1", Some(3));
        assert_eq!(
            plan(&workload("app:1", Some(1)), &realised(&three, State::Running)),
            "remove shop-local-api-app-2, shop-local-api-app-3 (no longer wanted)\n"
        );
        assert_eq!(
            plan(&workload("app:1", None), &realised(&three, State::Running)),
            "pull app:1 (if missing)\n\
             create shop-local-api-app\n\
             remove shop-local-api-app-1, shop-local-api-app-2, shop-local-api-app-3 (no longer wanted)\n"
        );
    }

    #[test]
    fn leftovers_of_an_interrupted_replacement_are_removed() {
        let w = workload("app:1", Some(1));
        let mut observed = realised(&w, State::Running);
        let aside = "shop-local-api-app-1-retiring";
        observed.containers.insert(aside.into(), details(aside, w.instances[0].labels.clone(), State::Running));
        assert_eq!(plan(&w, &observed), "remove shop-local-api-app-1-retiring (left by an interrupted replacement)\n");
    }

    #[test]
    fn someone_elses_resources_are_conflicts_never_touched() {
        let w = workload("app:1", None);
        let mut observed = Observed::default();
        let mut theirs = naming::service_labels(&scope());
        theirs.insert(naming::LABEL_SERVICE.into(), "other".into());
        observed.containers.insert("shop-local-api-app".into(), details("shop-local-api-app", theirs.clone(), State::Running));
        assert!(plan(&w, &observed).starts_with("conflict: a container named shop-local-api-app exists"));

        let mut observed = Observed::default();
        observed.volumes.insert("shop-local-api-data".into(), VolumeDetails { name: "shop-local-api-data".into(), labels: theirs });
        assert!(plan(&w, &observed).starts_with("conflict: volume shop-local-api-data"));
    }

    #[test]
    fn outcomes_rank_like_the_wit_says() {
        assert_eq!(outcome(&[Operation::Start("a".into()), Operation::Create("b".into())]), Outcome::Created);
        assert_eq!(outcome(&[Operation::Remove(vec!["a".into()])]), Outcome::Recreated);
        assert_eq!(outcome(&[Operation::Pull("x".into()), Operation::Start("a".into())]), Outcome::Started);
    }
}
