//! The Docker engine as a swarm manager: services, tasks, nodes, secrets and configs
//! through bollard, and a TCP forward into a container (what a port-forward through
//! the engine API rides on).

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ConfigSpec, EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum, ExecConfig,
    Limit, LocalNodeState, Mount, MountVolumeOptions, NetworkAttachmentConfig,
    NetworkCreateRequest, SecretSpec, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListConfigsOptions, ListNodesOptions, ListSecretsOptions,
    ListServicesOptions, ListTasksOptions, UpdateServiceOptions,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::convert::{classify, hash_map, health_config, label_filter, nanos, saturating_i64, status, volume_mount};
use crate::naming::{LABEL_ENV, LABEL_PLUGIN, LABEL_PROJECT, LABEL_SERVICE};
use super::Docker;
use crate::engine::cluster::*;
use crate::engine::EngineError;

/// How long an update waits after each task starts before it counts as healthy.
const UPDATE_MONITOR_MS: u32 = 5_000;
/// How long a forward waits for the server's last words after the client is done.
const FORWARD_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

fn labels_of(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

fn lower<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}").to_lowercase()
}

fn service_spec(request: &ServiceRequest) -> ServiceSpec {
    let files: Vec<&MountedFile> = request.files.iter().collect();
    let secrets = files
        .iter()
        .filter(|f| f.secret)
        .map(|f| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(f.target.clone()),
                uid: Some(f.uid.clone()),
                gid: Some(f.uid.clone()),
                mode: Some(f.mode),
            }),
            secret_name: Some(f.source.clone()),
            secret_id: Some(f.source_id.clone()),
        })
        .collect();
    let configs = files
        .iter()
        .filter(|f| !f.secret)
        .map(|f| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(f.target.clone()),
                uid: Some(f.uid.clone()),
                gid: Some(f.uid.clone()),
                mode: Some(f.mode),
            }),
            config_name: Some(f.source.clone()),
            config_id: Some(f.source_id.clone()),
            ..Default::default()
        })
        .collect();
    // Labelled as the service's (if Swarm makes them: a pinned service's are made first).
    let volume_labels: BTreeMap<String, String> = request
        .labels
        .iter()
        .filter(|(k, _)| [LABEL_PROJECT, LABEL_ENV, LABEL_SERVICE, LABEL_PLUGIN].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mounts = request
        .volumes
        .iter()
        .map(|(source, target, read_only)| Mount {
            volume_options: Some(MountVolumeOptions { labels: Some(hash_map(&volume_labels)), ..Default::default() }),
            ..volume_mount(source, target, *read_only)
        })
        .collect();
    let container = TaskSpecContainerSpec {
        image: Some(request.image.clone()),
        labels: Some(hash_map(&request.labels)),
        command: request.entrypoint.clone(),
        args: request.command.clone(),
        env: Some(request.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        user: request.user.clone(),
        mounts: Some(mounts),
        stop_grace_period: Some(saturating_i64(u64::from(request.stop_timeout_secs)) * 1_000_000_000),
        health_check: request.health.as_ref().map(health_config),
        secrets: Some(secrets),
        configs: Some(configs),
        ..Default::default()
    };
    let (publish_mode, endpoint_mode) = match request.routing {
        Routing::Mesh => (EndpointPortConfigPublishModeEnum::INGRESS, EndpointSpecModeEnum::VIP),
        Routing::Host => (EndpointPortConfigPublishModeEnum::HOST, EndpointSpecModeEnum::DNSRR),
    };
    let ports = request
        .published
        .iter()
        .map(|(target, published)| EndpointPortConfig {
            target_port: Some(i64::from(*target)),
            published_port: Some(i64::from(*published)),
            publish_mode: Some(publish_mode),
            ..Default::default()
        })
        .collect();
    let order = if request.start_first { "start-first" } else { "stop-first" };
    ServiceSpec {
        name: Some(request.name.clone()),
        labels: Some(hash_map(&request.labels)),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: Some(saturating_i64(request.nano_cpus)),
                    memory_bytes: Some(saturating_i64(request.memory_bytes)),
                    pids: Some(i64::from(request.pids)),
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(1_000)),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement { constraints: Some(request.constraints.clone()), ..Default::default() }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(request.network.clone()),
                aliases: Some(request.aliases.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(saturating_i64(request.replicas)) }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(nanos(UPDATE_MONITOR_MS)),
            order: Some(if request.start_first {
                ServiceSpecUpdateConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
            }),
            ..Default::default()
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(nanos(UPDATE_MONITOR_MS)),
            order: Some(if order == "start-first" {
                ServiceSpecRollbackConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecRollbackConfigOrderEnum::STOP_FIRST
            }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec { mode: Some(endpoint_mode), ports: Some(ports) }),
        ..Default::default()
    }
}

fn service_details(service: bollard::models::Service) -> ServiceDetails {
    let spec = service.spec.unwrap_or_default();
    let endpoint = spec.endpoint_spec.clone();
    let constraints = spec.task_template.as_ref().and_then(|t| t.placement.as_ref()).and_then(|p| p.constraints.clone()).unwrap_or_default();
    let replicas = spec.mode.and_then(|m| m.replicated).and_then(|r| r.replicas).unwrap_or(0);
    ServiceDetails {
        id: service.id.unwrap_or_default(),
        name: spec.name.unwrap_or_default(),
        labels: labels_of(spec.labels),
        version: service.version.and_then(|v| v.index).unwrap_or(0),
        replicas: u64::try_from(replicas).unwrap_or(0),
        update_state: service.update_status.as_ref().and_then(|u| u.state.as_ref()).map(lower),
        update_message: service.update_status.and_then(|u| u.message),
        constraints,
        published: endpoint
            .and_then(|e| e.ports)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((u16::try_from(p.target_port?).ok()?, u16::try_from(p.published_port?).ok()?)))
            .collect(),
    }
}

impl ClusterEngine for Docker {
    fn describe(&self) -> String {
        self.address.clone()
    }

    fn check_manager(&self) -> Result<(), EngineError> {
        let info = self.runtime.block_on(self.client.info()).map_err(|e| classify(e, "engine info"))?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.local_node_state != Some(LocalNodeState::ACTIVE) {
            return Err(EngineError::Failed(format!(
                "the engine at {} is not part of a swarm: run `docker swarm init` there (or point `engine` at a swarm manager)",
                self.address
            )));
        }
        if swarm.control_available != Some(true) {
            return Err(EngineError::Failed(format!(
                "the engine at {} is a swarm worker: point `engine` at a manager (`docker node ls` on a manager lists them)",
                self.address
            )));
        }
        Ok(())
    }

    fn nodes(&self) -> Result<Vec<NodeDetails>, EngineError> {
        let nodes = self.runtime.block_on(self.client.list_nodes(None::<ListNodesOptions>)).map_err(|e| classify(e, "nodes"))?;
        Ok(nodes
            .into_iter()
            .map(|node| {
                let spec = node.spec.unwrap_or_default();
                let status = node.status.unwrap_or_default();
                NodeDetails {
                    id: node.id.unwrap_or_default(),
                    hostname: node.description.and_then(|d| d.hostname).unwrap_or_default(),
                    address: status.addr.unwrap_or_default(),
                    ready: status.state.as_ref().map(lower).as_deref() == Some("ready"),
                    availability: spec.availability.as_ref().map(lower).unwrap_or_default(),
                    labels: labels_of(spec.labels),
                    manager: node.manager_status.is_some(),
                }
            })
            .collect())
    }

    fn ensure_overlay_network(&self, name: &str, labels: &BTreeMap<String, String>, encrypted: bool) -> Result<(), EngineError> {
        let _turn = self.network_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            attachable: Some(false),
            options: Some(if encrypted { HashMap::from([("encrypted".to_string(), String::new())]) } else { HashMap::new() }),
            labels: Some(hash_map(labels)),
            ..Default::default()
        };
        self.runtime.block_on(self.create_network_if_missing(request))
    }

    fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        crate::engine::ContainerEngine::remove_network(self, name)
    }

    fn ensure_object(&self, secret: bool, name: &str, data: &[u8], labels: &BTreeMap<String, String>) -> Result<String, EngineError> {
        let data = Some(base64::engine::general_purpose::STANDARD.encode(data));
        let (name_, labels_) = (Some(name.to_string()), Some(hash_map(labels)));
        let kind = if secret { "secret" } else { "config" };
        let created = self.runtime.block_on(async {
            if secret {
                self.client.create_secret(SecretSpec { name: name_, labels: labels_, data, ..Default::default() }).await
            } else {
                self.client.create_config(ConfigSpec { name: name_, labels: labels_, data, ..Default::default() }).await
            }
        });
        match created {
            Ok(response) => Ok(response.id),
            // Another call made it first (Swarm answers a taken name with 409 or,
            // from some versions, with a plain "name conflicts" error).
            Err(e) if status(&e) == Some(409) || super::convert::message_of(&e).contains("name conflicts") => {
                self.object_id(secret, name)
            }
            Err(e) => Err(classify(e, &format!("{kind} {name}"))),
        }
    }

    fn labelled_objects(&self, secret: bool, labels: &BTreeMap<String, String>) -> Result<Vec<(String, BTreeMap<String, String>)>, EngineError> {
        let filters = Some(label_filter(labels));
        self.runtime.block_on(async {
            if secret {
                let all = self.client.list_secrets(Some(ListSecretsOptions { filters })).await.map_err(|e| classify(e, "secrets"))?;
                Ok(all.into_iter().filter_map(|s| s.spec.and_then(|s| Some((s.name?, labels_of(s.labels))))).collect())
            } else {
                let all = self.client.list_configs(Some(ListConfigsOptions { filters })).await.map_err(|e| classify(e, "configs"))?;
                Ok(all.into_iter().filter_map(|s| s.spec.and_then(|s| Some((s.name?, labels_of(s.labels))))).collect())
            }
        })
    }

    fn remove_object(&self, secret: bool, name: &str) -> Result<(), EngineError> {
        let removed = self.runtime.block_on(async {
            if secret {
                self.client.delete_secret(name).await
            } else {
                self.client.delete_config(name).await
            }
        });
        match removed {
            Err(e) if status(&e) == Some(404) => Ok(()),
            other => other.map_err(|e| classify(e, &format!("{} {name}", if secret { "secret" } else { "config" }))),
        }
    }

    fn inspect_service(&self, name: &str) -> Result<Option<ServiceDetails>, EngineError> {
        match self.runtime.block_on(self.client.inspect_service(name, None::<InspectServiceOptions>)) {
            // The engine also resolves IDs and ID prefixes; only the exact name counts.
            Ok(service) => Ok(Some(service_details(service)).filter(|s| s.name == name)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(e, &format!("service {name}"))),
        }
    }

    fn list_services(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ServiceDetails>, EngineError> {
        let options = ListServicesOptions { filters: Some(label_filter(labels)), status: None };
        let all = self.runtime.block_on(self.client.list_services(Some(options))).map_err(|e| classify(e, "services"))?;
        Ok(all.into_iter().map(service_details).collect())
    }

    fn create_service(&self, request: &ServiceRequest) -> Result<(), EngineError> {
        if !request.is_confined() {
            return Err(EngineError::Failed(format!("refusing service {}: it is not confined", request.name)));
        }
        self.runtime
            .block_on(self.client.create_service(service_spec(request), None))
            .map(drop)
            .map_err(|e| classify(e, &format!("service {}", request.name)))
    }

    fn update_service(&self, version: u64, request: &ServiceRequest) -> Result<(), EngineError> {
        if !request.is_confined() {
            return Err(EngineError::Failed(format!("refusing service {}: it is not confined", request.name)));
        }
        let options = UpdateServiceOptions { version: i32::try_from(version).unwrap_or(i32::MAX), ..Default::default() };
        self.runtime
            .block_on(self.client.update_service(&request.name, service_spec(request), options, None))
            .map(drop)
            .map_err(|e| classify(e, &format!("service {}", request.name)))
    }

    fn scale_service(&self, name: &str, replicas: u64) -> Result<(), EngineError> {
        self.runtime.block_on(async {
            let service = self.client.inspect_service(name, None::<InspectServiceOptions>).await.map_err(|e| classify(e, &format!("service {name}")))?;
            let version = service.version.and_then(|v| v.index).unwrap_or(0);
            let mut spec = service.spec.unwrap_or_default();
            spec.mode = Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(saturating_i64(replicas)) }),
                ..Default::default()
            });
            let options = UpdateServiceOptions { version: i32::try_from(version).unwrap_or(i32::MAX), ..Default::default() };
            self.client.update_service(name, spec, options, None).await.map(drop).map_err(|e| classify(e, &format!("service {name}")))
        })
    }

    fn remove_service(&self, name: &str) -> Result<(), EngineError> {
        match self.runtime.block_on(self.client.delete_service(name)) {
            Err(e) if status(&e) == Some(404) => Ok(()),
            other => other.map_err(|e| classify(e, &format!("service {name}"))),
        }
    }

    fn tasks(&self, services: &[&str]) -> Result<Vec<TaskDetails>, EngineError> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let filters = HashMap::from([("service".to_string(), services.iter().map(|s| s.to_string()).collect())]);
        let all = self
            .runtime
            .block_on(self.client.list_tasks(Some(ListTasksOptions { filters: Some(filters) })))
            .map_err(|e| classify(e, &format!("tasks of {}", services.join(", "))))?;
        Ok(all
            .into_iter()
            .map(|task| {
                let status = task.status.unwrap_or_default();
                let container = status.container_status.unwrap_or_default();
                TaskDetails {
                    id: task.id.unwrap_or_default(),
                    service_id: task.service_id.unwrap_or_default(),
                    slot: task.slot.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    node_id: task.node_id.unwrap_or_default(),
                    desired_running: task.desired_state.as_ref().map(lower).as_deref() == Some("running"),
                    state: status.state.as_ref().map(lower).unwrap_or_default(),
                    message: status.message.unwrap_or_default(),
                    error: status.err.filter(|e| !e.is_empty()),
                    container_id: container.container_id.filter(|c| !c.is_empty()),
                    exit_code: container.exit_code,
                }
            })
            .collect())
    }

    fn image_command(&self, image: &str) -> Result<ImageCommand, EngineError> {
        crate::engine::ContainerEngine::ensure_image(self, image, &mut |_| {})?;
        let inspected = self.runtime.block_on(self.client.inspect_image(image)).map_err(|e| classify(e, &format!("image {image}")))?;
        let config = inspected.config.unwrap_or_default();
        Ok(ImageCommand {
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
        })
    }
}

impl Docker {
    /// The id of the secret (or config) called exactly `name`.
    fn object_id(&self, secret: bool, name: &str) -> Result<String, EngineError> {
        let filters = Some(HashMap::from([("name".to_string(), vec![name.to_string()])]));
        let found = self.runtime.block_on(async {
            if secret {
                let all = self.client.list_secrets(Some(ListSecretsOptions { filters })).await?;
                Ok(all.into_iter().find(|s| s.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name)).and_then(|s| s.id))
            } else {
                let all = self.client.list_configs(Some(ListConfigsOptions { filters })).await?;
                Ok(all.into_iter().find(|s| s.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name)).and_then(|s| s.id))
            }
        });
        found.map_err(|e: bollard::errors::Error| classify(e, name))?.ok_or_else(|| EngineError::NotFound(name.to_string()))
    }

    /// Carry one TCP connection to `port` on the loopback of container `name`: an
    /// exec of bash's `/dev/tcp` in the container with its stdin and stdout as the
    /// two directions, as `kubectl port-forward` does through its API. Returns when
    /// either side closes.
    pub fn forward(&self, name: &str, port: u16, stream: std::net::TcpStream) -> Result<(), EngineError> {
        // Whichever side is done first ends both copies: the client sees the server
        // close (its output stream ends with bash), and no process or server
        // connection outlives a client that left. A client that only stopped sending
        // gets two seconds more of what the server says. `4<&0`: a background job of
        // a non-interactive shell would otherwise read /dev/null. Nothing may outlive
        // the shell: an orphan is reaped by the container's PID 1, and PostgreSQL's
        // postmaster takes any child of its that dies by a signal for a crashed
        // backend and restarts the whole server. So the shell waits for every child.
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port} 4<&0 || exit 1; cat <&3 & reader=$!; cat <&4 >&3 & writer=$!; wait -n; \
             for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do kill -0 $reader 2>/dev/null || break; sleep 0.1; done; \
             kill $reader $writer 2>/dev/null; wait; exit 0"
        );
        let config = ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            privileged: Some(false),
            cmd: Some(vec!["bash".into(), "-c".into(), script]),
            ..Default::default()
        };
        self.runtime.block_on(async {
            stream.set_nonblocking(true).map_err(|e| EngineError::Failed(format!("forward: {e}")))?;
            let stream = tokio::net::TcpStream::from_std(stream).map_err(|e| EngineError::Failed(format!("forward: {e}")))?;
            let (mut from_client, mut to_client) = stream.into_split();
            let exec = self.client.create_exec(name, config).await.map_err(|e| classify(e, &format!("container {name}")))?;
            let start = StartExecOptions { detach: false, tty: false, output_capacity: None };
            let started = self.client.start_exec(&exec.id, Some(start)).await.map_err(|e| classify(e, "exec"))?;
            let StartExecResults::Attached { mut output, mut input } = started else {
                return Err(EngineError::Failed("the engine ran the forward detached".into()));
            };
            let upstream = async {
                let mut buffer = vec![0u8; 16 << 10];
                loop {
                    match from_client.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if input.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = input.shutdown().await;
            };
            let downstream = async {
                while let Some(Ok(frame)) = output.next().await {
                    match frame {
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            if to_client.write_all(&message).await.is_err() {
                                break;
                            }
                        }
                        LogOutput::StdErr { message } => {
                            tracing::debug!(container = name, port, "forward: {}", String::from_utf8_lossy(&message).trim());
                        }
                        LogOutput::StdIn { .. } => {}
                    }
                }
                let _ = to_client.shutdown().await;
            };
            // When the server closes, the client sees it. When the client is done
            // sending, what the server still has to say gets a moment to arrive.
            match futures_util::future::select(Box::pin(upstream), Box::pin(downstream)).await {
                futures_util::future::Either::Left(((), downstream)) => {
                    let _ = tokio::time::timeout(FORWARD_DRAIN, downstream).await;
                }
                futures_util::future::Either::Right(_) => {}
            }
            Ok(())
        })
    }
}
