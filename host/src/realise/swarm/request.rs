//! A workload as a Swarm service request: secret env and files as Docker secrets and
//! configs put in place by a `/bin/sh` wrapper, the ports it publishes, its placement.

use std::collections::BTreeMap;

use super::Swarm;
use crate::engine::cluster::{ClusterEngine, MountedFile, ServiceRequest};
use crate::engine::{ContainerRequest, EngineError};
use crate::naming::{self, Scope, LABEL_PORTS, LABEL_REPLICATED, LABEL_TARGET_HASH};
use crate::policy::Workload;

/// Where a task's files and secret env are mounted from Docker configs and secrets,
/// for a wrapper to copy into place (and read into the environment) before it runs
/// the image's own command: mounts are read-only, and an entrypoint that takes
/// ownership of its files (RabbitMQ's, PostgreSQL's) must be able to.
const STAGING_DIR: &str = "/run/provisioner";
pub(super) fn short_digest(bytes: &[u8]) -> String {
    crate::digest::sha256_hex(bytes)[..12].to_string()
}

/// `'…'` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}
impl Swarm {
    /// The service request for a workload, after making the secrets and configs it
    /// mounts (their names are returned with it).
    pub(super) fn request(&self, scope: &Scope, workload: &Workload) -> Result<(ServiceRequest, Vec<String>), EngineError> {
        let first: &ContainerRequest =
            workload.instances.first().ok_or_else(|| EngineError::Failed(format!("workload `{}` has no instances", workload.name)))?;
        let name = naming::engine_name(scope, &workload.name);
        let object_labels = object_labels(scope, &workload.name);
        let mut objects = Vec::new();
        let mut files = Vec::new();
        let (secret_env, env): (Vec<_>, Vec<_>) = first.env.iter().cloned().partition(|(k, _)| first.secrets.contains(k));
        let (mut entrypoint, mut command) = (first.entrypoint.clone(), first.command.clone());
        if !secret_env.is_empty() || !first.files.is_empty() {
            let image = self.manager.image_command(&first.image).map_err(|e| match e {
                EngineError::NotFound(_) | EngineError::Failed(_) => EngineError::Failed(format!(
                    "service `{}`: the swarm cannot pull {} ({}): push it to the registry its nodes pull from \
                     (`mirror`; `cargo xtask images --push REGISTRY` for the offline images) or set the service's image in \
                     [environments.NAME.images]",
                    scope.service,
                    first.image,
                    pull_cause(&e.to_string())
                )),
                other => other,
            })?;
            let user = first.user.clone().unwrap_or_default();
            let runs_as = if user.is_empty() { image.user.clone() } else { user };
            let root = runs_as.is_empty() || runs_as == "root" || runs_as == "0" || runs_as.starts_with("0:") || runs_as.starts_with("root:");
            // Root reads a 0400 file; any other user gets it readable, inside its own
            // task only.
            let staged_mode = if root { 0o400 } else { 0o444 };
            let mut stage = |contents: &[u8], secret: bool, target: String| -> Result<(), EngineError> {
                let object = naming::object_name(&name, &short_digest(&[target.as_bytes(), b"\0", contents].concat()));
                let source_id = self.manager.ensure_object(secret, &object, contents, &object_labels)?;
                files.push(MountedFile { source: object.clone(), source_id, secret, target, uid: "0".into(), mode: staged_mode });
                objects.push(object);
                Ok(())
            };
            let mut script = Vec::new();
            for (i, (path, contents, mode)) in first.files.iter().enumerate() {
                let staged = format!("{STAGING_DIR}/file-{i}");
                stage(contents, first.secrets.contains(path), staged.clone())?;
                let folder = path.rsplit_once('/').map(|(f, _)| f).filter(|f| !f.is_empty()).unwrap_or("/");
                let (path, folder) = (shell_quote(path), shell_quote(folder));
                script.push(format!("mkdir -p {folder} && rm -f {path} && cp {staged} {path} && chmod {mode:o} {path}"));
            }
            if !secret_env.is_empty() {
                let contents: String = secret_env.iter().map(|(k, v)| format!("{k}={}\n", shell_quote(v))).collect();
                let staged = format!("{STAGING_DIR}/env");
                stage(contents.as_bytes(), true, staged.clone())?;
                script.push(format!("set -a && . {staged} && set +a"));
            }
            script.push("exec \"$@\"".into());
            let (own_entrypoint, own_command) = match (entrypoint.take(), command.take()) {
                // An entrypoint of one's own drops the image's command, as in Docker.
                (Some(e), c) => (e, c.unwrap_or_default()),
                (None, c) => (image.entrypoint, c.unwrap_or(image.cmd)),
            };
            entrypoint = Some(vec!["/bin/sh".into(), "-c".into(), script.join(" && "), "provisioner-files".into()]);
            command = Some(own_entrypoint.into_iter().chain(own_command).collect());
        }
        let published: Vec<(u16, u16)> =
            first.ports.iter().filter(|(_, _, host)| *host != 0).map(|(container, _, host)| (*container, *host)).collect();
        let mut labels = first.labels.clone();
        let ports: Vec<String> = first.ports.iter().map(|(c, _, _)| c.to_string()).collect();
        labels.insert(LABEL_PORTS.into(), ports.join(","));
        labels.insert(LABEL_REPLICATED.into(), workload.replicated.to_string());
        let mut constraints = Vec::new();
        if let Some(constraint) = self.settings.placement.get(&scope.service) {
            constraints.push(constraint.clone());
        }
        if !workload.replicated && !first.volumes.is_empty() {
            let (node, _) = self.volume_node(scope, None)?;
            constraints.push(format!("node.id=={}", node.id));
        }
        labels.insert(LABEL_TARGET_HASH.into(), self.target_hash(scope, first));
        let request = ServiceRequest {
            name,
            labels,
            image: first.image.clone(),
            entrypoint,
            command,
            env,
            user: first.user.clone(),
            health: first.health.clone(),
            memory_bytes: first.memory_bytes,
            nano_cpus: first.nano_cpus,
            pids: first.pids,
            stop_timeout_secs: first.stop_timeout_secs,
            network: first.network.clone(),
            aliases: first.aliases.clone(),
            volumes: first.volumes.clone(),
            files,
            published,
            routing: self.settings.routing,
            replicas: u64::try_from(workload.instances.len()).unwrap_or(0),
            start_first: workload.replicated,
            constraints,
        };
        Ok((request, objects))
    }

    /// A fingerprint of what this target adds to a workload's request: its placement,
    /// the routing and the ports it publishes. (The node a volume pins a service to
    /// follows from the volume, which stays put.)
    pub(super) fn target_hash(&self, scope: &Scope, first: &ContainerRequest) -> String {
        let published: Vec<(u16, u16)> = first.ports.iter().filter(|(_, _, h)| *h != 0).map(|(c, _, h)| (*c, *h)).collect();
        short_digest(format!("{:?} {:?} {published:?}", self.settings.placement.get(&scope.service), self.settings.routing).as_bytes())
    }
}

/// The labels of a workload's secrets and configs.
pub(super) fn object_labels(scope: &Scope, workload: &str) -> BTreeMap<String, String> {
    naming::workload_labels(scope, workload)
}
/// The registry's own words from a failed pull (`manifest unknown`), not the whole story.
fn pull_cause(error: &str) -> String {
    let inner = error.split_once(" could not be pulled (").map(|(_, rest)| rest).unwrap_or(error);
    let inner = inner.split_once("). ").map(|(cause, _)| cause).unwrap_or(inner);
    inner.rsplit(": ").next().unwrap_or(inner).trim_end_matches(')').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$HOME`x`"), "'$HOME`x`'");
    }

    #[test]
    fn a_pull_failure_is_told_by_its_cause() {
        let error = "image registry:5000/x/redis:missing is not on this machine and could not be pulled (manifest for registry:5000/x/redis:missing not found: manifest unknown: manifest unknown). Supply it with an image override";
        assert_eq!(pull_cause(error), "manifest unknown");
    }

}
