//! The order services are brought up (or torn down) in: one thread per service, each
//! starting as soon as its prerequisites allow — not in waves. A prerequisite that
//! fails skips the services after it, never its siblings.
//!
//! "As soon as its prerequisites allow" means finished (ready, or torn down), or, for
//! a service with `wait_for = "outputs"`, merely provisioned: its outputs exist, so it
//! can boot while they do. Such a service reads how they fare through its [`Gate`].

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex};

use super::{Hook, ServiceReport, Status};
use crate::runtime::Output;

/// Where every service stands, shared by all the threads.
#[derive(Default)]
struct Board {
    /// Outputs of services whose `provision` succeeded, ready or not yet.
    provisioned: HashMap<String, Vec<Output>>,
    /// Services that finished: ready, failed, skipped or torn down.
    done: HashMap<String, ServiceReport>,
}

fn succeeded(report: &ServiceReport) -> bool {
    matches!(report.status, Status::Ready | Status::TornDown)
}

/// A service's view of the board while its work runs.
pub struct Gate<'a> {
    board: &'a Mutex<Board>,
    changed: &'a Condvar,
    name: &'a str,
    prerequisites: Vec<String>,
}

impl Gate<'_> {
    /// Make this service's outputs available to services that wait only for outputs.
    pub fn publish(&self, outputs: &[Output]) {
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        board.provisioned.insert(self.name.to_string(), outputs.to_vec());
        drop(board);
        self.changed.notify_all();
    }

    /// Prerequisites that have finished without succeeding, so far.
    pub fn failed(&self) -> Vec<String> {
        let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        self.prerequisites.iter().filter(|p| board.done.get(*p).is_some_and(|r| !succeeded(r))).cloned().collect()
    }

    /// Wait until every prerequisite has finished; those that did not succeed.
    pub fn wait_finished(&self) -> Vec<String> {
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        while !self.prerequisites.iter().all(|p| board.done.contains_key(p)) {
            board = self.changed.wait(board).unwrap_or_else(|e| e.into_inner());
        }
        self.prerequisites.iter().filter(|p| !succeeded(&board.done[*p])).cloned().collect()
    }
}

/// "`a`, `b` did not succeed".
pub fn did_not_succeed(failed: &[String]) -> String {
    format!("{} did not succeed", failed.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "))
}

/// Run `work` for every name once its prerequisites (`after`) allow: finished, or
/// provisioned when `outputs_suffice(name)`. `work` gets the prerequisites' outputs.
/// A `work` that panics is reported as failed in `hook`: the services waiting for it
/// must hear that it ended, or they would wait for ever.
pub fn schedule(
    hook: Hook,
    names: Vec<String>,
    after: impl Fn(&str) -> Vec<String> + Sync,
    outputs_suffice: impl Fn(&str) -> bool + Sync,
    work: impl Fn(&str, &HashMap<String, Vec<Output>>, &Gate) -> ServiceReport + Sync,
) -> Vec<ServiceReport> {
    let board = Mutex::new(Board::default());
    let changed = Condvar::new();
    std::thread::scope(|threads| {
        for name in &names {
            let (board, changed, after, outputs_suffice, work) = (&board, &changed, &after, &outputs_suffice, &work);
            threads.spawn(move || {
                let gate = Gate { board, changed, name, prerequisites: after(name) };
                let early = outputs_suffice(name);
                let mut seen = board.lock().unwrap_or_else(|e| e.into_inner());
                let failed = loop {
                    let failed: Vec<String> = gate
                        .prerequisites
                        .iter()
                        .filter(|p| seen.done.get(*p).is_some_and(|r| !succeeded(r)))
                        .cloned()
                        .collect();
                    let allowed = gate
                        .prerequisites
                        .iter()
                        .all(|p| seen.done.contains_key(p) || (early && seen.provisioned.contains_key(p)));
                    if !failed.is_empty() || allowed {
                        break failed;
                    }
                    seen = changed.wait(seen).unwrap_or_else(|e| e.into_inner());
                };
                let report = if failed.is_empty() {
                    let inputs: HashMap<String, Vec<Output>> = gate
                        .prerequisites
                        .iter()
                        .map(|p| {
                            let outputs = seen.done.get(p).map(|r| r.outputs.clone());
                            (p.clone(), outputs.or_else(|| seen.provisioned.get(p).cloned()).unwrap_or_default())
                        })
                        .collect();
                    drop(seen);
                    std::panic::catch_unwind(AssertUnwindSafe(|| work(name, &inputs, &gate))).unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<String>()
                            .map(String::as_str)
                            .or_else(|| panic.downcast_ref::<&str>().copied())
                            .unwrap_or("no message");
                        let message = format!("provisioner itself failed while handling this service ({what}); this is a bug, please report it");
                        ServiceReport::new(name, "", Status::Failed { hook, message, log_tail: String::new() })
                    })
                } else {
                    drop(seen);
                    // The plugin name is filled in by the caller, which knows it.
                    ServiceReport::new(name, "", Status::Skipped { because: did_not_succeed(&failed) })
                };
                board.lock().unwrap_or_else(|e| e.into_inner()).done.insert(name.clone(), report);
                changed.notify_all();
            });
        }
    });
    let mut board = board.into_inner().unwrap_or_else(|e| e.into_inner());
    names.iter().filter_map(|n| board.done.remove(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, status: Status) -> ServiceReport {
        let outputs = vec![Output { name: "URL".into(), value: format!("{name}://x"), secret: false, network_value: None }];
        ServiceReport { outputs, ..ServiceReport::new(name, "p", status) }
    }

    fn failed(name: &str) -> ServiceReport {
        report(name, Status::Failed { hook: Hook::Provision, message: "boom".into(), log_tail: String::new() })
    }

    #[test]
    fn dependents_of_a_failure_are_skipped_siblings_are_not() {
        // c depends on a (fails) and b; d depends on b only.
        let deps: HashMap<&str, Vec<String>> = HashMap::from([
            ("a", vec![]),
            ("b", vec![]),
            ("c", vec!["a".to_string(), "b".to_string()]),
            ("d", vec!["b".to_string()]),
        ]);
        let finished = Mutex::new(Vec::new());
        let results = schedule(
            Hook::Provision,
            vec!["a".into(), "b".into(), "c".into(), "d".into()],
            |n| deps[n].clone(),
            |_| false,
            |n, inputs, _| {
                let done = finished.lock().unwrap().clone();
                for dep in &deps[n] {
                    assert!(done.contains(dep), "{n} started before {dep} finished");
                    assert_eq!(inputs[dep][0].value, format!("{dep}://x"), "{n} gets {dep}'s outputs");
                }
                let r = if n == "a" { failed(n) } else { report(n, Status::Ready) };
                finished.lock().unwrap().push(n.to_string());
                r
            },
        );
        let status: HashMap<_, _> = results.iter().map(|r| (r.service.as_str(), &r.status)).collect();
        assert!(matches!(status["b"], Status::Ready));
        assert!(matches!(status["d"], Status::Ready));
        assert!(matches!(status["c"], Status::Skipped { because } if because.contains("`a`")));
        assert!(!finished.lock().unwrap().contains(&"c".to_string()));
    }

    #[test]
    fn waiting_for_outputs_starts_before_the_prerequisite_is_ready_and_hears_how_it_ends() {
        // app waits only for db's outputs; db publishes them, then takes a while and fails.
        for db_succeeds in [true, false] {
            let deps = |n: &str| if n == "app" { vec!["db".to_string()] } else { vec![] };
            let app_started_while_db_ran = Mutex::new(false);
            let db_running = Mutex::new(true);
            let results = schedule(
                Hook::Provision,
                vec!["db".into(), "app".into()],
                deps,
                |n| n == "app",
                |n, inputs, gate| {
                    if n == "db" {
                        gate.publish(&report("db", Status::Ready).outputs);
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        *db_running.lock().unwrap() = false;
                        return if db_succeeds { report(n, Status::Ready) } else { failed(n) };
                    }
                    assert_eq!(inputs["db"][0].value, "db://x");
                    *app_started_while_db_ran.lock().unwrap() = *db_running.lock().unwrap();
                    let failed = gate.wait_finished();
                    if failed.is_empty() {
                        report(n, Status::Ready)
                    } else {
                        ServiceReport::new(n, "p", Status::Skipped { because: did_not_succeed(&failed) })
                    }
                },
            );
            assert!(*app_started_while_db_ran.lock().unwrap(), "app started while db was still coming up");
            let app = results.iter().find(|r| r.service == "app").unwrap();
            match db_succeeds {
                true => assert!(matches!(app.status, Status::Ready)),
                false => assert!(matches!(&app.status, Status::Skipped { because } if because.contains("`db`"))),
            }
        }
    }

    #[test]
    fn a_panicking_service_fails_and_its_dependents_are_skipped_not_stuck() {
        let deps = |n: &str| if n == "app" { vec!["db".to_string()] } else { vec![] };
        let results = schedule(Hook::Teardown, vec!["db".into(), "app".into(), "other".into()], deps, |_| false, |n, _, _| {
            if n == "db" {
                panic!("stderr closed");
            }
            report(n, Status::Ready)
        });
        let status: HashMap<_, _> = results.iter().map(|r| (r.service.as_str(), &r.status)).collect();
        assert!(
            matches!(status["db"], Status::Failed { hook: Hook::Teardown, message, .. } if message.contains("stderr closed") && message.contains("a bug")),
            "{:?}",
            status["db"]
        );
        assert!(matches!(status["app"], Status::Skipped { because } if because.contains("`db`")));
        assert!(matches!(status["other"], Status::Ready));
    }
}
