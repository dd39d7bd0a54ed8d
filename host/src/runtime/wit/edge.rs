//! What every WIT version's edge has in common, written once: the imports of 0.1
//! (`docker`, `secrets`, `log`) on [`HookState`](crate::runtime::state::HookState) and
//! the calls of the 0.1 hooks. A version module runs `bindgen!`, brings its `docker`,
//! `log`, `secrets` and `types` into scope and invokes [`edge!`] with the `docker`
//! functions it adds; the generated types of two versions are distinct Rust types with
//! the same shape, so one body serves both.

macro_rules! edge {
    // `context` and `capabilities`: the fields of `context` a later version adds (named
    // as in `HookContext`) and its new variants of `capability`, as match arms.
    ({ $($docker_extra:tt)* } $(, context: { $($context_extra:ident),* }, spec: { $($spec_extra:ident),* }, capabilities: { $($capability_extra:tt)* })?) => {
        use wasmtime::component::{HasSelf, InstancePre, Linker};
        use wasmtime::Store;

        use crate::capabilities::log::Level;
        use crate::capabilities::HostError;
        use crate::engine::{ContainerDetails, Health, State};
        use crate::naming;
        use crate::realise::{Deployment, Outcome};
        use crate::runtime::state::HookState;
        use crate::runtime::{HookContext, Output, PluginInfo};
        use crate::spec;

        pub fn add_to_linker(linker: &mut Linker<HookState>) -> wasmtime::Result<()> {
            ServicePlugin::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
        }

        impl From<HostError> for types::Error {
            fn from(error: HostError) -> Self {
                match error {
                    HostError::Denied(m) => types::Error::Denied(m),
                    HostError::NotFound(m) => types::Error::NotFound(m),
                    HostError::Conflict(m) => types::Error::Conflict(m),
                    HostError::Engine(m) => types::Error::Engine(m),
                    HostError::Invalid(m) => types::Error::Invalid(m),
                }
            }
        }

        fn env_var(v: docker::EnvVar) -> spec::EnvVar {
            spec::EnvVar { name: v.name, value: v.value, secret: v.secret }
        }

        impl From<docker::ContainerSpec> for spec::ContainerSpec {
            // A version that spells out every field leaves nothing to the update.
            #[allow(clippy::needless_update)]
            fn from(s: docker::ContainerSpec) -> Self {
                spec::ContainerSpec {
                    name: s.name,
                    image: s.image,
                    command: s.command,
                    entrypoint: s.entrypoint,
                    env: s.env.into_iter().map(env_var).collect(),
                    ports: s.ports.into_iter().map(|p| spec::Port { container_port: p.container_port, host_port: p.host_port }).collect(),
                    mounts: s
                        .mounts
                        .into_iter()
                        .map(|m| spec::Mount { volume: m.volume, target: m.target, read_only: m.read_only })
                        .collect(),
                    files: s
                        .files
                        .into_iter()
                        .map(|f| spec::ContainerFile { path: f.path, contents: f.contents, mode: f.mode, secret: f.secret })
                        .collect(),
                    health: s.health.map(|h| spec::HealthCheck {
                        command: h.command,
                        interval_ms: h.interval_ms,
                        timeout_ms: h.timeout_ms,
                        retries: h.retries,
                        start_period_ms: h.start_period_ms,
                    }),
                    resources: s
                        .resources
                        .map(|r| spec::Resources { memory_mb: r.memory_mb, cpu_millis: r.cpu_millis, pids: r.pids }),
                    user: s.user,
                    aliases: s.aliases,
                    labels: s.labels.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                    replicas: s.replicas,
                    stop_timeout_ms: s.stop_timeout_ms,
                    $($($spec_extra: crate::runtime::wit::Neutral::neutral(s.$spec_extra),)*)?
                    ..spec::ContainerSpec::new("", "")
                }
            }
        }

        fn container_info(scope: &naming::Scope, d: ContainerDetails) -> docker::ContainerInfo {
            docker::ContainerInfo {
                name: naming::short_name(scope, &d.name).unwrap_or(&d.name).to_string(),
                spec_hash: d.labels.get(naming::LABEL_SPEC_HASH).cloned().unwrap_or_default(),
                engine_name: d.name,
                id: d.id,
                image: d.image,
                state: match d.state {
                    State::Created => docker::ContainerState::Created,
                    State::Running => docker::ContainerState::Running,
                    State::Paused => docker::ContainerState::Paused,
                    State::Restarting => docker::ContainerState::Restarting,
                    State::Exited => docker::ContainerState::Exited,
                    State::Dead => docker::ContainerState::Dead,
                    State::Removing => docker::ContainerState::Removing,
                },
                health: d.health.map(|h| match h {
                    Health::Starting => docker::HealthState::Starting,
                    Health::Healthy => docker::HealthState::Healthy,
                    Health::Unhealthy => docker::HealthState::Unhealthy,
                }),
                exit_code: d.exit_code,
                ports: d
                    .ports
                    .into_iter()
                    .map(|(c, ip, h)| docker::PublishedPort { container_port: c, host_ip: ip, host_port: h })
                    .collect(),
                address: d.address,
            }
        }

        fn deployment(scope: &naming::Scope, d: Deployment) -> docker::Deployment {
            docker::Deployment {
                outcome: match d.outcome {
                    Outcome::Created => docker::EnsureOutcome::Created,
                    Outcome::Recreated => docker::EnsureOutcome::Recreated,
                    Outcome::Started => docker::EnsureOutcome::Started,
                    Outcome::Unchanged => docker::EnsureOutcome::Unchanged,
                },
                containers: d.containers.into_iter().map(|c| container_info(scope, c)).collect(),
            }
        }

        type Result<T> = std::result::Result<T, types::Error>;

        impl docker::Host for HookState {
            fn network(&mut self) -> Result<String> {
                let result = self.calls.network();
                self.calls.trace(|| "docker.network".into(), &result, |n| n.clone());
                Ok(result?)
            }

            fn create_volume(&mut self, name: String) -> Result<String> {
                let result = self.calls.create_volume(&name);
                self.calls.trace(|| format!("docker.create-volume {name}"), &result, |n| n.clone());
                Ok(result?)
            }

            fn remove_volume(&mut self, name: String) -> Result<()> {
                let result = self.calls.remove_volume(&name);
                self.calls.trace(|| format!("docker.remove-volume {name}"), &result, |()| "ok".into());
                Ok(result?)
            }

            fn list_volumes(&mut self) -> Result<Vec<String>> {
                let result = self.calls.list_volumes();
                self.calls.trace(|| "docker.list-volumes".into(), &result, |v| v.join(", "));
                Ok(result?)
            }

            fn ensure(&mut self, spec: docker::ContainerSpec) -> Result<docker::Deployment> {
                let (name, image) = (spec.name.clone(), spec.image.clone());
                let result = self.calls.ensure(&spec.into());
                self.calls.trace(|| format!("docker.ensure {name} ({image})"), &result, |d| format!("{:?}", d.outcome).to_lowercase());
                Ok(deployment(self.calls.scope(), result?))
            }

            fn list_containers(&mut self) -> Result<Vec<docker::ContainerInfo>> {
                let result = self.calls.list_containers();
                self.calls.trace(|| "docker.list-containers".into(), &result, |l| format!("{} container(s)", l.len()));
                Ok(result?.into_iter().map(|d| container_info(self.calls.scope(), d)).collect())
            }

            fn inspect(&mut self, name: String) -> Result<docker::ContainerInfo> {
                let result = self.calls.inspect(&name);
                self.calls.trace(|| format!("docker.inspect {name}"), &result, |d| format!("{:?}", d.state).to_lowercase());
                Ok(container_info(self.calls.scope(), result?))
            }

            fn start(&mut self, name: String) -> Result<()> {
                let result = self.calls.start(&name);
                self.calls.trace(|| format!("docker.start {name}"), &result, |()| "ok".into());
                Ok(result?)
            }

            fn stop(&mut self, name: String, timeout_ms: u32) -> Result<()> {
                let result = self.calls.stop(&name, timeout_ms);
                self.calls.trace(|| format!("docker.stop {name} ({timeout_ms} ms)"), &result, |()| "ok".into());
                Ok(result?)
            }

            fn remove(&mut self, name: String) -> Result<()> {
                let result = self.calls.remove(&name);
                self.calls.trace(|| format!("docker.remove {name}"), &result, |()| "ok".into());
                Ok(result?)
            }

            fn exec(&mut self, name: String, command: Vec<String>, options: docker::ExecOptions) -> Result<docker::ExecOutput> {
                let options = spec::ExecOptions {
                    env: options.env.into_iter().map(env_var).collect(),
                    user: options.user,
                    workdir: options.workdir,
                    stdin: options.stdin,
                };
                // The command's first word only: its arguments may carry what a secret
                // `env` does not.
                let program = command.first().cloned().unwrap_or_default();
                let result = self.calls.exec(&name, command, options);
                self.calls.trace(|| format!("docker.exec {name} {program} …"), &result, |out| format!("exit {}", out.exit_code));
                let out = result?;
                Ok(docker::ExecOutput { exit_code: out.exit_code, stdout: out.stdout, stderr: out.stderr })
            }

            fn write_file(&mut self, name: String, path: String, contents: Vec<u8>, mode: u32) -> Result<()> {
                let result = self.calls.write_file(&name, &path, &contents, mode);
                self.calls.trace(|| format!("docker.write-file {name} {path} ({} bytes, {mode:o})", contents.len()), &result, |()| "ok".into());
                Ok(result?)
            }

            $($docker_extra)*

            fn logs(&mut self, name: String, lines: u32) -> Result<String> {
                let result = self.calls.logs(&name, lines);
                self.calls.trace(|| format!("docker.logs {name} ({lines} lines)"), &result, |t| format!("{} bytes", t.len()));
                Ok(result?)
            }
        }

        impl secrets::Host for HookState {
            fn get_or_create(&mut self, name: String, length: u32) -> Result<String> {
                let result = self.calls.get_or_create_secret(&name, length);
                self.calls.trace(|| format!("secrets.get-or-create {name}"), &result, |_| "ok (value not shown)".into());
                Ok(result?)
            }

            fn get(&mut self, name: String) -> Result<Option<String>> {
                let result = self.calls.get_secret(&name);
                self.calls.trace(|| format!("secrets.get {name}"), &result, |v| if v.is_some() { "found (value not shown)".into() } else { "none".into() });
                Ok(result?)
            }
        }

        impl log::Host for HookState {
            fn log(&mut self, level: log::Level, message: String) {
                let level = match level {
                    log::Level::Trace => Level::Trace,
                    log::Level::Debug => Level::Debug,
                    log::Level::Info => Level::Info,
                    log::Level::Warn => Level::Warn,
                    log::Level::Error => Level::Error,
                };
                self.calls.log(level, &message);
            }

            fn progress(&mut self, message: String) {
                self.calls.progress(&message);
            }
        }

        impl types::Host for HookState {}

        fn context(ctx: &HookContext) -> types::Context {
            types::Context {
                project: ctx.project.clone(),
                environment: ctx.environment.clone(),
                service: ctx.service.clone(),
                config: ctx.config_json.clone(),
                replicas: ctx.replicas,
                image_override: ctx.image_override.clone(),
                $($($context_extra: ctx.$context_extra.clone(),)*)?
            }
        }

        /// A 0.1 plugin, linked and ready to be instantiated once per hook call.
        pub struct Pre(ServicePluginPre<HookState>);

        impl Pre {
            pub fn new(pre: InstancePre<HookState>) -> wasmtime::Result<Self> {
                Ok(Pre(ServicePluginPre::new(pre)?))
            }

            fn instantiate(&self, store: &mut Store<HookState>) -> wasmtime::Result<ServicePlugin> {
                self.0.instantiate(&mut *store)
            }

            pub fn describe(&self, store: &mut Store<HookState>) -> wasmtime::Result<PluginInfo> {
                let plugin = self.instantiate(store)?;
                Ok(plugin.provisioner_plugin_hooks().call_describe(store)?.into())
            }

            pub fn validate(&self, store: &mut Store<HookState>, config: &str) -> wasmtime::Result<std::result::Result<(), Vec<(String, String)>>> {
                let plugin = self.instantiate(store)?;
                let result = plugin.provisioner_plugin_hooks().call_validate(store, config)?;
                Ok(result.map_err(|problems| problems.into_iter().map(|p| (p.key, p.message)).collect()))
            }

            pub fn provision(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<std::result::Result<Vec<Output>, String>> {
                let plugin = self.instantiate(store)?;
                let result = plugin.provisioner_plugin_hooks().call_provision(store, &context(ctx))?;
                Ok(result.map(|outputs| {
                    outputs
                        .into_iter()
                        .map(|o| Output { name: o.name, value: o.value, secret: o.secret, network_value: o.network_value })
                        .collect()
                }))
            }

            pub fn ready(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<std::result::Result<Option<String>, String>> {
                let plugin = self.instantiate(store)?;
                let result = plugin.provisioner_plugin_hooks().call_ready(store, &context(ctx))?;
                Ok(result.map(|r| match r {
                    types::Readiness::Ready => None,
                    types::Readiness::NotYet(reason) => Some(reason),
                }))
            }

            pub fn teardown(
                &self,
                store: &mut Store<HookState>,
                ctx: &HookContext,
                keep_volumes: bool,
            ) -> wasmtime::Result<std::result::Result<(), String>> {
                let plugin = self.instantiate(store)?;
                plugin.provisioner_plugin_hooks().call_teardown(store, &context(ctx), keep_volumes)
            }
        }

        /// A version's `plugin-info` in the host's terms, with what only later versions say.
        fn plugin_info(info: types::PluginInfo, backup: Option<String>) -> PluginInfo {
            use types::Capability as C;
            PluginInfo {
                name: info.name,
                version: info.version,
                wit_version: info.wit_version,
                summary: info.summary,
                capabilities: info
                    .capabilities
                    .into_iter()
                    .map(|c| match c {
                        C::Image(p) => crate::capabilities::Capability::Image(p),
                        C::Publish(p) => crate::capabilities::Capability::Publish(p),
                        C::Volume(v) => crate::capabilities::Capability::Volume(v),
                        C::Exec => crate::capabilities::Capability::Exec,
                        C::NetProbe => crate::capabilities::Capability::NetProbe,
                        C::StateFiles => crate::capabilities::Capability::StateFiles,
                        C::Secrets => crate::capabilities::Capability::Secrets,
                        $($($capability_extra)*)?
                    })
                    .collect(),
                config_schema: info.config_schema,
                outputs: info.outputs,
                defaults: info.defaults.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                backup,
                metrics: Vec::new(),
            }
        }
    };
}

pub(crate) use edge;
