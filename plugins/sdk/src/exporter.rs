//! A metrics exporter beside a server (WIT 0.2 monitoring): the container a data
//! plugin starts while the environment is monitored, and the image it runs.

use crate::{ContainerSpec, Resources};

/// `nobody`, as the exporters' images (upstream's and the offline ones) run.
pub const NOBODY: &str = "65534:65534";

/// The image of a helper of the server, such as its exporter: `configured` when the
/// user set one; else, when the server runs from the offline set
/// (`[REGISTRY/]provisioner-offline/…`), `offline` (e.g. `redis-exporter:1.45`) from the
/// same place; else `upstream`.
pub fn companion_image(configured: Option<&str>, server_image: &str, offline: &str, upstream: &str) -> String {
    if let Some(image) = configured {
        return image.to_string();
    }
    match server_image.rsplit_once('/') {
        Some((prefix, _)) if prefix == "provisioner-offline" || prefix.ends_with("/provisioner-offline") => {
            format!("{prefix}/{offline}")
        }
        _ => upstream.to_string(),
    }
}

/// A sidecar exporter named `name` from `image`: runs as [`NOBODY`] with small limits,
/// is published nowhere (the collector reaches it on the project network) and does not
/// answer to the service's name, which belongs to the server. Add its environment and
/// its credentials (as a secret file: it is owned by the spec's user).
pub fn exporter_spec(name: &str, image: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(name, image);
    spec.answers_for_service = false;
    spec.user = Some(NOBODY.into());
    spec.resources = Some(Resources { memory_mb: Some(64), cpu_millis: Some(250), pids: Some(64) });
    spec.stop_timeout_ms = Some(2000);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offline_set_keeps_its_registry_others_get_upstream() {
        let image = |configured, server| companion_image(configured, server, "redis-exporter:1.45", "oliver006/redis_exporter:v1.45.0");
        assert_eq!(image(Some("mine/exporter:1"), "redis:7"), "mine/exporter:1");
        assert_eq!(image(None, "provisioner-offline/redis:7"), "provisioner-offline/redis-exporter:1.45");
        assert_eq!(image(None, "127.0.0.1:5000/provisioner-offline/redis:7"), "127.0.0.1:5000/provisioner-offline/redis-exporter:1.45");
        assert_eq!(image(None, "redis:7"), "oliver006/redis_exporter:v1.45.0");
        assert_eq!(image(None, "mirror/not-provisioner-offline/redis:7"), "oliver006/redis_exporter:v1.45.0");
    }

    #[test]
    fn an_exporter_is_unprivileged_unpublished_and_not_the_service() {
        let spec = exporter_spec("exporter", "x:1");
        assert!(!spec.answers_for_service && spec.ports.is_empty() && spec.resources.is_some());
        assert_eq!(spec.user.as_deref(), Some(NOBODY));
    }
}
