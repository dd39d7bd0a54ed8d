//! Conversions between the host's engine types and Docker's API models, and the
//! small helpers the Docker engine shares.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, CreateImageInfo, EndpointSettings,
    HealthConfig, HealthStatusEnum, HostConfig, Mount, MountType, NetworkingConfig, PortBinding, PortMap,
};

use super::super::*;
use super::OUTPUT_CAP;

/// The engine's HTTP status, when it answered with an error.
pub(super) fn status(err: &BollardError) -> Option<u16> {
    match err {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words when it gave any; bollard's wrapper text adds nothing.
pub(super) fn message_of(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } if !message.is_empty() => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// `subject` names what was missing, for `NotFound` (whose message appends "not found").
pub(super) fn classify(err: BollardError, subject: &str) -> EngineError {
    match status(&err) {
        Some(404) => EngineError::NotFound(subject.to_string()),
        Some(409) => EngineError::Conflict(message_of(&err)),
        _ => EngineError::Failed(message_of(&err)),
    }
}

pub(super) fn hash_map(labels: &BTreeMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(super) fn label_filter(labels: &BTreeMap<String, String>) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    if !labels.is_empty() {
        filters.insert("label".to_string(), labels.iter().map(|(k, v)| format!("{k}={v}")).collect());
    }
    filters
}

pub(super) fn append_capped(buffer: &mut Vec<u8>, bytes: &[u8]) {
    let room = OUTPUT_CAP.saturating_sub(buffer.len());
    buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

pub(super) fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) fn nanos(millis: u32) -> i64 {
    i64::from(millis) * 1_000_000
}

/// Whether an image reference pins a tag or digest (a `:` after the last `/` is a
/// tag; one before it belongs to a registry's port).
pub(super) fn has_tag_or_digest(image: &str) -> bool {
    image.contains('@') || image.rsplit('/').next().is_some_and(|last| last.contains(':'))
}

/// One short line for a pull event, e.g. `3f4ca61aafcd: Downloading 12.5/31.4 MB`.
pub(super) fn progress_line(info: &CreateImageInfo) -> Option<String> {
    let status = info.status.as_deref().filter(|s| !s.is_empty())?;
    let mut line = match info.id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => format!("{id}: {status}"),
        None => status.to_string(),
    };
    if let Some(detail) = &info.progress_detail {
        if let (Some(current), Some(total)) = (detail.current, detail.total) {
            if total > 0 {
                let mb = |bytes: i64| bytes as f64 / 1_000_000.0;
                line.push_str(&format!(" {:.1}/{:.1} MB", mb(current), mb(total)));
            }
        }
    }
    Some(line)
}

/// The engine's health-check `Test`: an argv runs directly (`CMD`), unless the plugin
/// already used one of the engine's own forms.
pub(super) fn health_test(command: &[String]) -> Vec<String> {
    match command.first().map(String::as_str) {
        Some("CMD" | "CMD-SHELL" | "NONE") => command.to_vec(),
        _ => std::iter::once("CMD".to_string()).chain(command.iter().cloned()).collect(),
    }
}

/// The engine's health check for a request's.
pub(super) fn health_config(h: &HealthRequest) -> HealthConfig {
    HealthConfig {
        test: Some(health_test(&h.command)),
        interval: Some(nanos(h.interval_ms)),
        timeout: Some(nanos(h.timeout_ms)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period_ms)),
        ..Default::default()
    }
}

/// A named volume mounted at `target`.
pub(super) fn volume_mount(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountType::VOLUME),
        source: Some(source.to_string()),
        target: Some(target.to_string()),
        read_only: Some(read_only),
        ..Default::default()
    }
}

pub(super) fn create_body(request: &ContainerRequest) -> ContainerCreateBody {
    let mut exposed_ports = Vec::new();
    let mut bindings: HashMap<String, Vec<PortBinding>> = HashMap::new();
    for (container_port, address, host_port) in &request.ports {
        let key = format!("{container_port}/tcp");
        if !exposed_ports.contains(&key) {
            exposed_ports.push(key.clone());
        }
        bindings.entry(key).or_default().push(PortBinding {
            host_ip: Some(address.to_string()),
            // Empty lets the engine pick a free port.
            host_port: Some(if *host_port == 0 { String::new() } else { host_port.to_string() }),
        });
    }
    let port_bindings: PortMap = bindings.into_iter().map(|(k, v)| (k, Some(v))).collect();

    let mounts = request.volumes.iter().map(|(source, target, read_only)| volume_mount(source, target, *read_only)).collect();

    let (network_mode, networking_config) = if request.network.is_empty() {
        (None, None)
    } else {
        let endpoint = EndpointSettings {
            aliases: (!request.aliases.is_empty()).then(|| request.aliases.clone()),
            ..Default::default()
        };
        let endpoints = HashMap::from([(request.network.clone(), endpoint)]);
        (Some(request.network.clone()), Some(NetworkingConfig { endpoints_config: Some(endpoints) }))
    };

    let healthcheck = request.health.as_ref().map(health_config);

    let host_config = HostConfig {
        memory: Some(saturating_i64(request.memory_bytes)),
        nano_cpus: Some(saturating_i64(request.nano_cpus)),
        pids_limit: Some(i64::from(request.pids)),
        port_bindings: Some(port_bindings),
        publish_all_ports: Some(false),
        mounts: Some(mounts),
        network_mode,
        // Spelled out rather than left to defaults: nothing from the host gets in and
        // nothing gains privileges. Capabilities stay at the engine's default set,
        // which images such as postgres need to chown their data at start.
        privileged: Some(false),
        binds: None,
        devices: None,
        cap_add: None,
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        ..Default::default()
    };

    ContainerCreateBody {
        image: Some(request.image.clone()),
        cmd: request.command.clone(),
        entrypoint: request.entrypoint.clone(),
        env: Some(request.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(hash_map(&request.labels)),
        exposed_ports: Some(exposed_ports),
        user: request.user.clone(),
        healthcheck,
        stop_timeout: Some(i64::from(request.stop_timeout_secs)),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

pub(super) fn container_details(response: ContainerInspectResponse) -> ContainerDetails {
    let state = response.state.unwrap_or_default();
    let mapped = match state.status {
        Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::STOPPING) => State::Running,
        Some(ContainerStateStatusEnum::PAUSED) => State::Paused,
        Some(ContainerStateStatusEnum::RESTARTING) => State::Restarting,
        Some(ContainerStateStatusEnum::EXITED) => State::Exited,
        Some(ContainerStateStatusEnum::DEAD) => State::Dead,
        Some(ContainerStateStatusEnum::REMOVING) => State::Removing,
        Some(ContainerStateStatusEnum::CREATED | ContainerStateStatusEnum::EMPTY) | None => State::Created,
    };
    let health = match state.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => Some(Health::Starting),
        Some(HealthStatusEnum::HEALTHY) => Some(Health::Healthy),
        Some(HealthStatusEnum::UNHEALTHY) => Some(Health::Unhealthy),
        Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) | None => None,
    };
    let oom_killed = state.oom_killed.unwrap_or(false);
    let exit_code = match mapped {
        State::Exited | State::Dead => state.exit_code.map(|c| i32::try_from(c).unwrap_or(-1)),
        _ => None,
    };

    let config = response.config.unwrap_or_default();
    let settings = response.network_settings.unwrap_or_default();
    let mut ports: Vec<(u16, String, u16)> = settings
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, bindings)| {
            let container_port = key.split('/').next()?.parse::<u16>().ok()?;
            Some(bindings.unwrap_or_default().into_iter().filter_map(move |b| {
                let host_port = b.host_port?.parse::<u16>().ok()?;
                Some((container_port, b.host_ip.unwrap_or_default(), host_port))
            }))
        })
        .flatten()
        .collect();
    ports.sort();

    // Prefer the network the container was created on; the map's order is arbitrary.
    let own_network = response.host_config.and_then(|h| h.network_mode);
    let mut networks: Vec<_> = settings.networks.unwrap_or_default().into_iter().collect();
    networks.sort_by_key(|(name, _)| (Some(name) != own_network.as_ref(), name.clone()));
    let address = networks.into_iter().filter_map(|(_, endpoint)| endpoint.ip_address).find(|ip| !ip.is_empty());

    ContainerDetails {
        id: response.id.unwrap_or_default(),
        name: response.name.unwrap_or_default().trim_start_matches('/').to_string(),
        image: config.image.or(response.image).unwrap_or_default(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        state: mapped,
        health,
        exit_code,
        oom_killed,
        node: None,
        ports,
        address,
    }
}

/// `/folder/file` as (`/folder`, `file`).
pub(super) fn split_file_path(path: &str) -> Result<(&str, &str), EngineError> {
    match path.rsplit_once('/') {
        Some((folder, file)) if !file.is_empty() => Ok((if folder.is_empty() { "/" } else { folder }, file)),
        _ => Err(EngineError::Failed(format!("file path `{path}` must be absolute and name a file"))),
    }
}

/// A tar archive of plain files (name, contents, mode), all in one folder.
/// Who the files written into a container belong to, from its `user` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileOwner {
    /// `uid` or `uid:gid` (a missing gid is the uid's own number).
    Ids(u64, u64),
    /// A user or group name: looked up in the image's /etc/passwd and /etc/group.
    Named,
}

/// The owner of files for a container whose `user` is `user` (empty: root).
pub(super) fn file_owner(user: &str) -> FileOwner {
    if user.is_empty() {
        return FileOwner::Ids(0, 0);
    }
    let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
    match (uid.parse::<u64>(), gid.parse::<u64>()) {
        (Ok(uid), Ok(gid)) => FileOwner::Ids(uid, gid),
        (Ok(uid), Err(_)) if gid.is_empty() => FileOwner::Ids(uid, uid),
        _ => FileOwner::Named,
    }
}

/// `user` (`name`, `name:group`, `uid:group`, …) as ids, from the image's `passwd` and
/// `group` files: a user's own group unless one is given. `None` names what is missing.
pub(super) fn resolve_owner(user: &str, passwd: &str, group: &str) -> Result<(u64, u64), String> {
    let (user_part, group_part) = user.split_once(':').unwrap_or((user, ""));
    let entry = |file: &str, name: &str| -> Option<Vec<String>> {
        file.lines().map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>()).find(|f| f.len() >= 3 && (f[0] == name || f[2] == name))
    };
    let (uid, primary) = match user_part.parse::<u64>() {
        Ok(uid) => (uid, entry(passwd, user_part).and_then(|f| f.get(3)?.parse().ok()).unwrap_or(uid)),
        Err(_) => {
            let f = entry(passwd, user_part).ok_or_else(|| format!("user `{user_part}` is not in the image's /etc/passwd"))?;
            let uid = f[2].parse().map_err(|_| format!("user `{user_part}` has no numeric uid in /etc/passwd"))?;
            (uid, f.get(3).and_then(|g| g.parse().ok()).unwrap_or(uid))
        }
    };
    let gid = match group_part {
        "" => primary,
        g => match g.parse::<u64>() {
            Ok(gid) => gid,
            Err(_) => entry(group, g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("group `{g}` is not in the image's /etc/group"))?,
        },
    };
    Ok((uid, gid))
}

pub(super) fn files_tar(entries: &[(&str, &[u8], u32)], (uid, gid): (u64, u64)) -> std::io::Result<Vec<u8>> {
    let mtime = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut archive = tar::Builder::new(Vec::new());
    for (name, contents, mode) in entries {
        let mut header = tar::Header::new_gnu();
        // A name ending in `/` is a folder (made for a file whose folder is missing).
        header.set_entry_type(if name.ends_with('/') { tar::EntryType::Directory } else { tar::EntryType::Regular });
        header.set_size(contents.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(mtime);
        header.set_uid(uid);
        header.set_gid(gid);
        archive.append_data(&mut header, name, *contents)?;
    }
    archive.into_inner()
}

/// An error and each of its causes, once each: bollard's and hyper's own text
/// ("client error (Connect)") hides the reason a connection failed, which is in the
/// chain ("invalid peer certificate: UnknownIssuer").
pub(super) fn causes(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(err);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

/// Whether a failed connection failed in the TLS handshake (rather than, say, a
/// refused TCP connection).
pub(super) fn is_tls_failure(causes: &str) -> bool {
    ["certificate", "handshake", "alert", "tls", "TLS", "InvalidContentType", "corrupt message"].iter().any(|word| causes.contains(word))
}

/// A failed TLS handshake as one line: the engine, the cause, and the file to look at.
pub(super) fn tls_failure(address: &str, tls: &TlsFiles, causes: &str) -> String {
    let (ca, cert) = (&tls.ca, &tls.cert);
    let fix = if causes.contains("UnknownIssuer") || causes.contains("BadSignature") || causes.contains("invalid peer certificate") {
        if causes.contains("NotValidForName") {
            "the engine's certificate does not name the host in this address: reach it by a name or IP its certificate lists (subjectAltName)".to_string()
        } else {
            format!("the engine's certificate is not signed by the CA in {} ({}): use the CA that signed it (the engine's --tlscacert)", ca.path.display(), ca.named_by)
        }
    } else if causes.contains("alert") {
        format!(
            "the engine refused this client's certificate {} ({}): it must be signed by the CA the engine trusts (its --tlscacert)",
            cert.path.display(),
            cert.named_by
        )
    } else if causes.contains("InvalidContentType") || causes.contains("corrupt message") {
        "the engine does not speak TLS on this port: drop `tls` (and DOCKER_TLS_VERIFY) or use its TLS port (2376 by convention)".to_string()
    } else {
        format!("check the files named by {}", ca.named_by)
    };
    format!("TLS handshake with the Docker engine at {address} failed: {causes}; {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    

    #[test]
    fn files_belong_to_the_containers_user() {
        assert_eq!(file_owner(""), FileOwner::Ids(0, 0));
        assert_eq!(file_owner("65534"), FileOwner::Ids(65534, 65534));
        assert_eq!(file_owner("1000:100"), FileOwner::Ids(1000, 100));
        assert_eq!(file_owner("nats"), FileOwner::Named);
        assert_eq!(file_owner("1000:staff"), FileOwner::Named);
        let passwd = "root:x:0:0:root:/:/bin/sh\nnats:x:1001:1002::/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n";
        let group = "root:x:0:\nstaff:x:50:\nnats:x:1002:\n";
        assert_eq!(resolve_owner("nats", passwd, group), Ok((1001, 1002)));
        assert_eq!(resolve_owner("nobody:staff", passwd, group), Ok((65534, 50)));
        assert_eq!(resolve_owner("1001:staff", passwd, group), Ok((1001, 50)));
        assert!(resolve_owner("ghost", passwd, group).unwrap_err().contains("`ghost` is not in the image's /etc/passwd"));
        assert!(resolve_owner("nats:ghosts", passwd, group).unwrap_err().contains("group `ghosts`"));
    }

    #[test]
    fn bare_repositories_get_a_tag_and_registry_ports_are_not_tags() {
        assert!(!has_tag_or_digest("postgres"));
        assert!(!has_tag_or_digest("localhost:5000/team/postgres"));
        assert!(has_tag_or_digest("postgres:16"));
        assert!(has_tag_or_digest("localhost:5000/postgres:16"));
        assert!(has_tag_or_digest("postgres@sha256:abc"));
    }

    #[test]
    fn health_commands_run_as_argv_unless_already_in_engine_form() {
        let argv = vec!["pg_isready".to_string(), "-q".to_string()];
        assert_eq!(health_test(&argv), ["CMD", "pg_isready", "-q"]);
        let shell = vec!["CMD-SHELL".to_string(), "pg_isready || exit 1".to_string()];
        assert_eq!(health_test(&shell), shell);
    }

    #[test]
    fn published_ports_let_the_engine_pick_when_zero() {
        let request = ContainerRequest {
            name: "p-db".into(),
            image: "postgres:16".into(),
            command: None,
            entrypoint: None,
            env: vec![("A".into(), "1".into())],
            labels: BTreeMap::new(),
            ports: vec![(5432, "127.0.0.1".parse().unwrap(), 0), (80, "127.0.0.1".parse().unwrap(), 8080)],
            volumes: vec![("p-data".into(), "/data".into(), false)],
            network: "p-net".into(),
            aliases: vec!["db".into()],
            files: vec![],
            secrets: Default::default(),
            user: None,
            health: None,
            memory_bytes: 1 << 20,
            nano_cpus: 1,
            pids: 10,
            stop_timeout_secs: 5,
        };
        let body = create_body(&request);
        let host = body.host_config.unwrap();
        let bindings = host.port_bindings.unwrap();
        let db = bindings["5432/tcp"].as_ref().unwrap();
        assert_eq!(db[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(db[0].host_port.as_deref(), Some(""));
        assert_eq!(bindings["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(), Some("8080"));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.network_mode.as_deref(), Some("p-net"));
        assert_eq!(body.env.unwrap(), ["A=1"]);
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["p-net"].aliases.as_deref(), Some(&["db".to_string()][..]));
    }
}
