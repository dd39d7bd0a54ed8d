//! The default policy shipped with the first-party plugins: what each is granted
//! without any `[plugins.NAME.grants]` table. It applies only to a plugin of that name
//! loaded from the host's own plugin folder (see `discovery`); a same-named file
//! dropped in anywhere else is treated as third-party and gets nothing by default.

use super::Grants;

fn grants(images: &[&str], publish: &[u16], volumes: &[&str], exec: bool) -> Grants {
    Grants {
        images: images.iter().map(|s| s.to_string()).collect(),
        publish: publish.to_vec(),
        volumes: volumes.iter().map(|s| s.to_string()).collect(),
        exec,
        net_probe: true,
        state_files: true,
        secrets: true,
        scrape_targets: false,
    }
}

/// The default grants of a first-party plugin, or `None` for any other name.
pub fn default_grants(plugin: &str) -> Option<Grants> {
    Some(match plugin {
        // Each data plugin also runs its exporter while the environment is monitored.
        "postgres" => grants(
            &["postgres:*", "*/postgres:*", "prometheuscommunity/postgres-exporter:*", "*/postgres-exporter:*"],
            &[5432],
            &["data"],
            true,
        ),
        "redis" => grants(&["redis:*", "*/redis:*", "oliver006/redis_exporter:*", "*/redis-exporter:*"], &[6379], &["data"], true),
        "s3" => grants(&["dxflrs/garage:*", "*/garage:*", "garage:*"], &[3900, 3903], &["data", "meta"], true),
        "rabbitmq" => grants(&["rabbitmq:*", "*/rabbitmq:*"], &[5672, 15672], &["data"], true),
        // The app's own images are the user's choice; the container invariants still
        // apply to whatever they are.
        "container" => grants(&["*"], &[], &["*"], true),
        "loadbalancer" => grants(&["nginx:*", "*/nginx:*", "nginx/nginx-prometheus-exporter:*", "*/nginx-exporter:*"], &[80], &[], true),
        "prometheus" => Grants {
            scrape_targets: true,
            ..grants(
                &[
                    "prometheus:*",
                    "prom/prometheus:*",
                    "*/prometheus:*",
                    "alertmanager:*",
                    "prom/alertmanager:*",
                    "*/alertmanager:*",
                    "blackbox-exporter:*",
                    "prom/blackbox-exporter:*",
                    "*/blackbox-exporter:*",
                ],
                &[9090],
                &["data", "alerts"],
                true,
            )
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_first_party_names_have_defaults() {
        for (name, has) in [("postgres", true), ("redis", true), ("loadbalancer", true), ("memcached", false), ("", false)] {
            assert_eq!(default_grants(name).is_some(), has, "{name}");
        }
    }
}
