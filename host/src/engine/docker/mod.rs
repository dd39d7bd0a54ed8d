//! The real engine: Docker (or anything speaking its API) through `bollard`.
//!
//! The trait is synchronous and called from many plain OS threads at once, so the
//! engine owns a small tokio runtime and every operation is one `block_on`. Callers
//! must never be inside a tokio runtime themselves (the host runs each hook on its
//! own thread, so they are not).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ExecConfig, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions, InspectNetworkOptions,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    RemoveVolumeOptions, StartContainerOptions, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

use super::*;

mod cluster;
mod convert;
use convert::*;

const DEFAULT_ADDRESS: &str = "unix:///var/run/docker.sock";
/// Long enough for a busy local daemon, short enough that a missing one is reported
/// before anyone wonders whether the tool hung.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Exec output and logs end up in plugin memory; a runaway command must not take
/// the host down with it.
const OUTPUT_CAP: usize = 16 << 20;
/// bollard's own default for every request's read and write.
const CLIENT_TIMEOUT_SECS: u64 = 120;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);
/// The exec stream can close a moment before the engine records the exit code.
const EXEC_EXIT_WAIT: Duration = Duration::from_secs(10);

pub struct Docker {
    runtime: Runtime,
    client: bollard::Docker,
    address: String,
    /// The TLS files it was reached with, if any.
    tls: Option<TlsFiles>,
    /// Engines older than API 1.44 happily create a second network with a name that
    /// is already taken, so concurrent `ensure_network` calls from this process take
    /// turns instead of relying on a 409.
    network_lock: Mutex<()>,
}

/// A client of the engine at `address` (not connected yet: that happens on its first
/// request, on the runtime that makes it).
fn bollard_client(address: &str, tls: Option<&TlsFiles>) -> Result<bollard::Docker, EngineError> {
    let unreachable =
        |reason: &dyn Display| EngineError::Failed(format!("cannot reach the Docker engine at {address}: is dockerd running? ({reason})"));
    Ok(match tls {
        Some(tls) => {
            tls.check().map_err(|e| EngineError::Failed(e.to_string()))?;
            let (key, cert, ca) = (&tls.key.path, &tls.cert.path, &tls.ca.path);
            bollard::Docker::connect_with_ssl(address, key, cert, ca, CLIENT_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                .map_err(|e| EngineError::Failed(format!("cannot set up TLS to the Docker engine at {address}: {}", causes(&e))))?
        }
        // Plain TCP, whatever bollard would make of DOCKER_TLS_VERIFY: `tls` decided.
        None if address.starts_with("tcp://") || address.starts_with("http://") => {
            bollard::Docker::connect_with_http(address, CLIENT_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION).map_err(|e| unreachable(&e))?
        }
        None => bollard::Docker::connect_with_host(address).map_err(|e| unreachable(&e))?,
    })
}

impl Docker {
    /// Stop a container cleanly within its own stop timeout, or `grace` seconds (a
    /// server killed mid-write, such as RabbitMQ or PostgreSQL, has to recover on its
    /// next start), then remove it. Volumes hold the data a service keeps across
    /// recreations; they go only through `remove_volume`. A grace of 0 is one request:
    /// the forced removal kills the container.
    async fn remove_one(&self, name: &str, grace: Option<u32>) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(false).build();
        if grace == Some(0) {
            return self.client.remove_container(name, Some(options)).await.map_err(|e| classify(e, &format!("container {name}")));
        }
        let wait = Duration::from_secs(u64::from(grace.unwrap_or(crate::policy::MAX_STOP_TIMEOUT_SECS)) + 30);
        let patient = self.client.clone().with_timeout(self.client.timeout().max(wait));
        let stop = grace.map(|t| StopContainerOptionsBuilder::new().t(i32::try_from(t).unwrap_or(i32::MAX)).build());
        match patient.stop_container(name, stop).await {
            Err(e) if status(&e) == Some(404) => return Err(classify(e, &format!("container {name}"))),
            // Stopped, already stopped, or refusing to stop: the forced removal below
            // settles it either way.
            _ => {}
        }
        self.client.remove_container(name, Some(options)).await.map_err(|e| classify(e, &format!("container {name}")))
    }

    /// Create the network unless one of exactly that name exists.
    /// Run a command in a container: standard input read from `stdin` as the command
    /// takes it (then closed), standard output handed to `stdout` frame by frame,
    /// standard error kept (capped). The result's `stdout` is empty.
    fn run_exec(
        &self,
        name: &str,
        request: &ExecRequest,
        stdin: Option<Box<dyn std::io::Read + '_>>,
        stdout: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<ExecResult, EngineError> {
        let config = ExecConfig {
            attach_stdin: Some(stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            privileged: Some(false),
            env: Some(request.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: Some(request.command.clone()),
            user: request.user.clone(),
            working_dir: request.workdir.clone(),
            ..Default::default()
        };
        self.runtime.block_on(async {
            let exec =
                self.client.create_exec(name, config).await.map_err(|e| classify(e, &format!("container {name}")))?;
            let start = StartExecOptions { detach: false, tty: false, output_capacity: None };
            let started = self.client.start_exec(&exec.id, Some(start)).await.map_err(|e| classify(e, "exec"))?;
            let StartExecResults::Attached { mut output, mut input } = started else {
                return Err(EngineError::Failed("the engine ran the command detached".into()));
            };
            let feed = async {
                let Some(mut reader) = stdin else { return Ok(()) };
                let mut buffer = vec![0u8; 256 << 10];
                loop {
                    // A local file or a slice: reading it in place does not stall the
                    // runtime for long.
                    let read = reader.read(&mut buffer).map_err(|e| format!("reading the command's input: {e}"))?;
                    if read == 0 {
                        break;
                    }
                    // A command may exit without reading all of its input; that is its
                    // business, and its exit code says how it went.
                    if input.write_all(&buffer[..read]).await.is_err() {
                        return Ok(());
                    }
                }
                // Closing our half of the connection is how the command sees EOF.
                let _ = input.shutdown().await;
                Ok::<_, String>(())
            };
            let collect = async {
                let mut stderr = Vec::new();
                while let Some(frame) = output.next().await {
                    match frame.map_err(|e| classify(e, "exec"))? {
                        LogOutput::StdOut { message } | LogOutput::Console { message } => stdout(&message)
                            .map_err(|e| EngineError::Failed(format!("writing the command's output: {e}")))?,
                        LogOutput::StdErr { message } => append_capped(&mut stderr, &message),
                        LogOutput::StdIn { .. } => {}
                    }
                }
                Ok::<_, EngineError>(stderr)
            };
            let (fed, collected) = futures_util::future::join(feed, collect).await;
            let stderr = collected?;
            fed.map_err(EngineError::Failed)?;

            let deadline = Instant::now() + EXEC_EXIT_WAIT;
            let exit_code = loop {
                let inspected = self.client.inspect_exec(&exec.id).await.map_err(|e| classify(e, "exec"))?;
                if inspected.running != Some(true) {
                    break inspected.exit_code;
                }
                if Instant::now() >= deadline {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let exit_code = exit_code.ok_or_else(|| {
                EngineError::Failed(format!("the engine did not report how `{}` exited", request.command.join(" ")))
            })?;
            Ok(ExecResult { exit_code: i32::try_from(exit_code).unwrap_or(-1), stdout: Vec::new(), stderr })
        })
    }

    async fn create_network_if_missing(&self, request: NetworkCreateRequest) -> Result<(), EngineError> {
        let name = request.name.clone();
        match self.client.inspect_network(&name, None::<InspectNetworkOptions>).await {
            // The engine also resolves ID prefixes; only an exact name match counts.
            Ok(network) if network.name.as_deref() == Some(name.as_str()) => return Ok(()),
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(classify(e, &format!("network {name}"))),
        }
        match self.client.create_network(request).await {
            // Another process got there first; the network exists, which is all we
            // want. (Swarm managers answer a taken name with "name conflicts".)
            Err(e) if status(&e) == Some(409) || message_of(&e).contains("name conflicts") => Ok(()),
            other => other.map(drop).map_err(|e| classify(e, &format!("network {name}"))),
        }
    }

    /// Connect to `DOCKER_HOST`, or to the default local socket when it is unset; over
    /// TLS when Docker's own variables say so (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`).
    pub fn connect() -> Result<Docker, EngineError> {
        let address =
            std::env::var("DOCKER_HOST").ok().filter(|a| !a.is_empty()).unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
        Docker::connect_to(&address)
    }

    /// Connect to the engine at `address` (`unix://…`, `tcp://…`, `http://…`) and
    /// check that it answers; over TLS when Docker's own variables say so.
    pub fn connect_to(address: &str) -> Result<Docker, EngineError> {
        let tls = super::tls::from_docker_env(address, &|key| std::env::var(key).ok()).map_err(|e| EngineError::Failed(e.to_string()))?;
        Docker::connect_with(&EngineAddress { address: address.to_string(), tls })
    }

    /// Connect to an engine, over TLS (verified both ways, as `docker --tlsverify`)
    /// when it names the files, and check that it answers.
    pub fn connect_with(engine: &EngineAddress) -> Result<Docker, EngineError> {
        let address = engine.address.as_str();
        let unreachable = |reason: &dyn Display| {
            EngineError::Failed(format!("cannot reach the Docker engine at {address}: is dockerd running? ({reason})"))
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("docker-engine")
            .enable_all()
            .build()
            .map_err(|e| EngineError::Failed(format!("cannot start the Docker client's runtime: {e}")))?;
        let client = bollard_client(address, engine.tls.as_ref())?;
        let client = runtime.block_on(async {
            let handshake = async {
                client.ping().await?;
                // bollard speaks the newest API by default and older engines refuse
                // it outright, so settle on the engine's version up front.
                client.negotiate_version().await
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                Ok(Ok(client)) => Ok(client),
                Ok(Err(e)) => Err(match &engine.tls {
                    Some(tls) if is_tls_failure(&causes(&e)) => EngineError::Failed(tls_failure(address, tls, &causes(&e))),
                    None if message_of(&e).contains("HTTP request to an HTTPS server") => EngineError::Failed(format!(
                        "the Docker engine at {address} expects TLS: set `tls` in the environment (`tls = {{ cert_path = \"…\" }}`) \
                         or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, as for `docker --tlsverify`"
                    )),
                    _ => unreachable(&causes(&e)),
                }),
                Err(_) => Err(unreachable(&format_args!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
            }
        })?;
        Ok(Docker { runtime, client, address: address.to_string(), tls: engine.tls.clone(), network_lock: Mutex::new(()) })
    }

    /// How this engine was reached, for connecting to its peers the same way (the
    /// nodes of a swarm).
    pub fn engine_address(&self) -> EngineAddress {
        EngineAddress { address: self.address.clone(), tls: self.tls.clone() }
    }

    /// The container with exactly this (full) id. `inspect_container` takes a name and
    /// answers only for that name; a swarm task's container is known by its id.
    pub fn inspect_container_id(&self, id: &str) -> Result<Option<ContainerDetails>, EngineError> {
        self.runtime.block_on(async { Ok(self.container_details(id).await?.filter(|d| d.id == id)) })
    }

    async fn container_details(&self, id_or_name: &str) -> Result<Option<ContainerDetails>, EngineError> {
        match self.client.inspect_container(id_or_name, None::<InspectContainerOptions>).await {
            Ok(response) => Ok(Some(container_details(response))),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(e, &format!("container {id_or_name}"))),
        }
    }

    async fn pull(&self, image: &str, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
        let mut options = CreateImageOptionsBuilder::new().from_image(image);
        // A bare repository name would make the engine pull every tag it has.
        if !has_tag_or_digest(image) {
            options = options.tag("latest");
        }
        progress(&format!("pulling {image}"));
        let mut stream = self.client.create_image(Some(options.build()), None, None);
        let mut last_report = Instant::now();
        let mut unreported = None;
        while let Some(info) = stream.next().await {
            let info = info.map_err(|e| message_of(&e))?;
            if let Some(message) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
                return Err(message);
            }
            let Some(line) = progress_line(&info) else { continue };
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                progress(&line);
                last_report = Instant::now();
                unreported = None;
            } else {
                unreported = Some(line);
            }
        }
        if let Some(line) = unreported {
            progress(&line);
        }
        Ok(())
    }

    /// A small text file of a container's filesystem (running or not), or `None` if it
    /// has none there.
    fn read_small_file(&self, name: &str, path: &str) -> Result<Option<String>, EngineError> {
        let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new().path(path).build();
        let archive = self.runtime.block_on(async {
            let mut stream = self.client.download_from_container(name, Some(options));
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => append_capped(&mut bytes, &chunk),
                    Err(e) if status(&e) == Some(404) => return Ok(None),
                    Err(e) => return Err(classify(e, &format!("container {name}"))),
                }
            }
            Ok(Some(bytes))
        })?;
        let Some(archive) = archive else { return Ok(None) };
        let mut tar = tar::Archive::new(archive.as_slice());
        let entries = tar.entries().map_err(|e| EngineError::Failed(format!("{path} of container {name}: {e}")))?;
        for entry in entries.flatten() {
            let mut text = String::new();
            let mut entry = entry;
            if std::io::Read::read_to_string(&mut entry, &mut text).is_ok() {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }

    /// Unpack `entries` into `folder` of container `name`, in one upload. A missing
    /// folder is made (mode 0755, owned like the files) with its missing parents, as
    /// `mkdir -p` would: an upstream image need not have a server's config folder.
    fn upload(&self, name: &str, folder: &str, entries: &[(&str, &[u8], u32)]) -> Result<(), EngineError> {
        match self.upload_into(name, folder, entries) {
            Err(EngineError::NotFound(missing)) if missing.starts_with("folder ") => {
                let trimmed = folder.trim_end_matches('/');
                let Some((parent, last)) = trimmed.rsplit_once('/').filter(|(_, last)| !last.is_empty()) else {
                    return Err(EngineError::NotFound(missing));
                };
                let parent = if parent.is_empty() { "/" } else { parent };
                let mut nested: Vec<(String, &[u8], u32)> = vec![(format!("{last}/"), &[], 0o755)];
                nested.extend(entries.iter().map(|(file, contents, mode)| (format!("{last}/{file}"), *contents, *mode)));
                let nested: Vec<(&str, &[u8], u32)> = nested.iter().map(|(n, c, m)| (n.as_str(), *c, *m)).collect();
                self.upload(name, parent, &nested)
            }
            other => other,
        }
    }

    fn upload_into(&self, name: &str, folder: &str, entries: &[(&str, &[u8], u32)]) -> Result<(), EngineError> {
        // The files belong to the container's user, not to root: a server running as
        // `nobody` must read its own private config. A name is looked up in the image's
        // own /etc/passwd and /etc/group (the engine's copyUIDGID cannot resolve a
        // numeric `uid:gid`, and needs `getent` in a running container).
        let user = self
            .runtime
            .block_on(self.client.inspect_container(name, None))
            .map_err(|e| classify(e, &format!("container {name}")))?
            .config
            .and_then(|c| c.user)
            .unwrap_or_default();
        let ids = match file_owner(&user) {
            FileOwner::Ids(uid, gid) => (uid, gid),
            FileOwner::Named => {
                let passwd = self.read_small_file(name, "/etc/passwd")?.unwrap_or_default();
                let group = self.read_small_file(name, "/etc/group")?.unwrap_or_default();
                resolve_owner(&user, &passwd, &group).map_err(|why| EngineError::Failed(format!("container {name}: {why}")))?
            }
        };
        let archive = files_tar(entries, ids)
            .map_err(|e| EngineError::Failed(format!("cannot pack files for {folder} for the engine: {e}")))?;
        let options = UploadToContainerOptionsBuilder::new().path(folder).build();
        let failure = |e: BollardError| match &e {
            BollardError::DockerResponseServerError { status_code: 404, message }
                if !message.contains("No such container") =>
            {
                EngineError::NotFound(format!("folder {folder} in container {name}"))
            }
            _ => classify(e, &format!("container {name}")),
        };
        self.runtime.block_on(async {
            self.client
                .upload_to_container(name, Some(options), bollard::body_full(archive.into()))
                .await
                .map_err(failure)
        })
    }
}

impl ContainerEngine for Docker {
    fn describe(&self) -> String {
        self.address.clone()
    }

    fn ensure_network(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let _turn = self.network_lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.runtime.block_on(async {
            let request = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".into()),
                labels: Some(hash_map(labels)),
                ..Default::default()
            };
            self.create_network_if_missing(request).await
        })
    }

    fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.runtime.block_on(async {
            match self.client.remove_network(name).await {
                Err(e) if status(&e) == Some(404) => Ok(()),
                other => other.map_err(|e| classify(e, &format!("network {name}"))),
            }
        })
    }

    fn inspect_volume(&self, name: &str) -> Result<Option<VolumeDetails>, EngineError> {
        self.runtime.block_on(async {
            match self.client.inspect_volume(name).await {
                Ok(volume) => {
                    Ok(Some(VolumeDetails { name: volume.name, labels: volume.labels.into_iter().collect() }))
                }
                Err(e) if status(&e) == Some(404) => Ok(None),
                Err(e) => Err(classify(e, &format!("volume {name}"))),
            }
        })
    }

    fn create_volume(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".into()),
            labels: Some(hash_map(labels)),
            ..Default::default()
        };
        self.runtime.block_on(async {
            self.client.create_volume(request).await.map(drop).map_err(|e| classify(e, &format!("volume {name}")))
        })
    }

    fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.runtime.block_on(async {
            self.client
                .remove_volume(name, None::<RemoveVolumeOptions>)
                .await
                .map_err(|e| classify(e, &format!("volume {name}")))
        })
    }

    fn list_volumes(&self, labels: &BTreeMap<String, String>) -> Result<Vec<VolumeDetails>, EngineError> {
        let options = ListVolumesOptionsBuilder::new().filters(&label_filter(labels)).build();
        self.runtime.block_on(async {
            let response = self.client.list_volumes(Some(options)).await.map_err(|e| classify(e, "volumes"))?;
            Ok(response
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| VolumeDetails { name: v.name, labels: v.labels.into_iter().collect() })
                .collect())
        })
    }

    fn ensure_image(&self, image: &str, progress: &mut dyn FnMut(&str)) -> Result<(), EngineError> {
        self.runtime.block_on(async {
            match self.client.inspect_image(image).await {
                Ok(_) => return Ok(()),
                Err(e) if status(&e) == Some(404) => {}
                Err(e) => return Err(classify(e, &format!("image {image}"))),
            }
            self.pull(image, progress).await.map_err(|err| {
                EngineError::NotFound(format!(
                    "image {image} is not on this machine and could not be pulled ({err}). Supply it with an image \
                     override in provisioner.toml ([environments.NAME.images]), or build the offline images with \
                     `cargo xtask images`"
                ))
            })
        })
    }

    fn create_container(&self, request: &ContainerRequest) -> Result<String, EngineError> {
        // `container_request` never builds such a request; this is the last line of
        // defence should that ever change.
        if !request.is_confined() {
            return Err(EngineError::Failed("refusing an unconfined container request".into()));
        }
        let options = CreateContainerOptionsBuilder::new().name(&request.name).build();
        let body = create_body(request);
        self.runtime.block_on(async {
            let created = self.client.create_container(Some(options), body).await.map_err(|e| match status(&e) {
                // The name is free (a 409 says otherwise), so a 404 is about the image.
                Some(404) => EngineError::NotFound(format!("image {}", request.image)),
                _ => classify(e, &format!("container {}", request.name)),
            })?;
            for warning in &created.warnings {
                tracing::warn!(container = %request.name, "{warning}");
            }
            Ok(created.id)
        })
    }

    fn start_container(&self, name: &str) -> Result<(), EngineError> {
        self.runtime.block_on(async {
            // An already running container answers 304, which bollard counts as success.
            self.client
                .start_container(name, None::<StartContainerOptions>)
                .await
                .map_err(|e| classify(e, &format!("container {name}")))
        })
    }

    fn stop_container(&self, name: &str, timeout_secs: u32) -> Result<(), EngineError> {
        let options = StopContainerOptionsBuilder::new().t(i32::try_from(timeout_secs).unwrap_or(i32::MAX)).build();
        // The engine answers only once the container is down, which may take the whole
        // grace period: the client's request timeout must outlast it.
        let grace = Duration::from_secs(u64::from(timeout_secs) + 30);
        let client = self.client.clone().with_timeout(self.client.timeout().max(grace));
        self.runtime.block_on(async {
            client.stop_container(name, Some(options)).await.map_err(|e| classify(e, &format!("container {name}")))
        })
    }

    fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        self.runtime.block_on(self.remove_one(name, None))
    }

    fn remove_containers(&self, names: &[String], stop_grace_secs: Option<u32>) -> Result<(), EngineError> {
        let removals = names.iter().map(|name| self.remove_one(name, stop_grace_secs));
        let results = self.runtime.block_on(futures_util::future::join_all(removals));
        results.into_iter().collect()
    }

    fn rename_container(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        let options = RenameContainerOptionsBuilder::new().name(new_name).build();
        self.runtime.block_on(async {
            self.client.rename_container(name, options).await.map_err(|e| classify(e, &format!("container {name}")))
        })
    }

    fn inspect_container(&self, name: &str) -> Result<Option<ContainerDetails>, EngineError> {
        self.runtime.block_on(async {
            // The engine falls back to ID prefixes when no name matches; that would be
            // somebody else's container.
            Ok(self.container_details(name).await?.filter(|d| d.name == name))
        })
    }

    fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerDetails>, EngineError> {
        let options = ListContainersOptionsBuilder::new().all(true).filters(&label_filter(labels)).build();
        self.runtime.block_on(async {
            let summaries = self.client.list_containers(Some(options)).await.map_err(|e| classify(e, "containers"))?;
            let mut found = Vec::with_capacity(summaries.len());
            for id in summaries.into_iter().filter_map(|s| s.id) {
                // A container removed between the listing and the inspection is simply gone.
                if let Some(details) = self.container_details(&id).await? {
                    found.push(details);
                }
            }
            Ok(found)
        })
    }

    fn exec(&self, name: &str, request: &ExecRequest) -> Result<ExecResult, EngineError> {
        let mut stdout = Vec::new();
        let stdin = request.stdin.as_deref().map(|bytes| Box::new(bytes) as Box<dyn std::io::Read + '_>);
        let mut result = self.run_exec(name, request, stdin, &mut |chunk| {
            append_capped(&mut stdout, chunk);
            Ok(())
        })?;
        result.stdout = stdout;
        Ok(result)
    }

    fn exec_streaming(
        &self,
        name: &str,
        request: &ExecRequest,
        stdin: Option<&mut dyn std::io::Read>,
        stdout: &mut dyn std::io::Write,
    ) -> Result<ExecResult, EngineError> {
        let stdin = stdin.map(|reader| Box::new(reader) as Box<dyn std::io::Read + '_>);
        self.run_exec(name, request, stdin, &mut |chunk| stdout.write_all(chunk))
    }

    fn signal(&self, name: &str, signal: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::KillContainerOptionsBuilder::default().signal(signal).build();
        self.runtime
            .block_on(self.client.kill_container(name, Some(options)))
            .map_err(|e| classify(e, &format!("container {name}")))
    }

    fn write_file(&self, name: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), EngineError> {
        let (folder, file) = split_file_path(path)?;
        self.upload(name, folder, &[(file, contents, mode)])
    }

    fn write_files(&self, name: &str, files: &[(String, Vec<u8>, u32)]) -> Result<(), EngineError> {
        let mut by_folder: BTreeMap<&str, Vec<(&str, &[u8], u32)>> = BTreeMap::new();
        for (path, contents, mode) in files {
            let (folder, file) = split_file_path(path)?;
            by_folder.entry(folder).or_default().push((file, contents, *mode));
        }
        by_folder.into_iter().try_for_each(|(folder, entries)| self.upload(name, folder, &entries))
    }

    fn stream_logs(&self, name: &str, options: &LogOptions, line: &mut dyn FnMut(LogLine) -> bool) -> Result<(), EngineError> {
        let mut builder = LogsOptionsBuilder::new().stdout(true).stderr(true).timestamps(true).follow(options.follow);
        builder = builder.tail(&options.tail.map_or_else(|| "all".to_string(), |n| n.to_string()));
        if let Some(since) = options.since {
            builder = builder.since(i32::try_from(since).unwrap_or(i32::MAX));
        }
        let builder = builder.build();
        if options.follow {
            // A followed log runs on a runtime of its own, on this thread, with a
            // connection of its own: on the shared runtime, the connection's task would
            // hand each chunk (the engine sends one per log line) across threads, a
            // wake-up per line, which at tens of thousands of lines a second costs more
            // than reading them. A followed log has no end: no request timeout.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| EngineError::Failed(format!("cannot start a runtime to follow {name}'s log: {e}")))?;
            let client = bollard_client(&self.address, self.tls.as_ref())?.with_timeout(Duration::from_secs(10 * 365 * 24 * 3600));
            return runtime.block_on(async {
                let client = client.negotiate_version().await.map_err(|e| classify(e, &format!("container {name}")))?;
                read_log_lines(client.logs(name, Some(builder)), name, line).await
            });
        }
        let client = self.client.clone();
        self.runtime.block_on(read_log_lines(client.logs(name, Some(builder)), name, line))
    }

    fn logs(&self, name: &str, lines: u32) -> Result<String, EngineError> {
        let options =
            LogsOptionsBuilder::new().stdout(true).stderr(true).follow(false).tail(&lines.to_string()).build();
        self.runtime.block_on(async {
            let mut stream = self.client.logs(name, Some(options));
            let mut text = Vec::new();
            while let Some(frame) = stream.next().await {
                let frame = frame.map_err(|e| classify(e, &format!("container {name}")))?;
                append_capped(&mut text, &frame.into_bytes());
            }
            Ok(String::from_utf8_lossy(&text).into_owned())
        })
    }
}

/// Split the engine's log frames into lines (a frame may hold several lines, or part
/// of one) and hand each to `line` until it says stop.
async fn read_log_lines(
    mut stream: impl futures_util::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Unpin,
    name: &str,
    line: &mut dyn FnMut(LogLine) -> bool,
) -> Result<(), EngineError> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(frame) = stream.next().await {
        let frame = frame.map_err(|e| classify(e, &format!("container {name}")))?;
        let (buffer, stderr) = match frame {
            bollard::container::LogOutput::StdErr { message } => (&mut err, (message, true)),
            other => (&mut out, (other.into_bytes(), false)),
        };
        let (bytes, stderr) = stderr;
        buffer.extend_from_slice(&bytes);
        let mut start = 0;
        while let Some(end) = buffer[start..].iter().position(|b| *b == b'\n').map(|at| start + at) {
            let raw = &buffer[start..end];
            start = end + 1;
            let (timestamp, text) = match raw.iter().position(|b| *b == b' ') {
                Some(space) if raw[..space].ends_with(b"Z") && raw[..space].contains(&b'T') => {
                    (String::from_utf8_lossy(&raw[..space]).into_owned(), String::from_utf8_lossy(&raw[space + 1..]).into_owned())
                }
                _ => (String::new(), String::from_utf8_lossy(raw).into_owned()),
            };
            if !line(LogLine { timestamp, stderr, text }) {
                return Ok(());
            }
        }
        buffer.drain(..start);
    }
    Ok(())
}
