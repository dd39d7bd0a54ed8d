//! The engine: containers, volumes, files written into containers, logs and signals
//! (the WIT `docker` interface; what an `exec` answers is in `exec.rs`).

use std::time::Duration;

use crate::docker::{ContainerInfo, ContainerSpec, ContainerState, HealthState, PublishedPort};

use super::{fnv, MockHost, State};

/// One `write_file` the plugin made.
#[derive(Clone, Debug)]
pub struct WrittenFile {
    pub container: String,
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl WrittenFile {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.contents).into_owned()
    }
}

impl MockHost {
    // --- Arranging ---------------------------------------------------------------

    /// Serve `container`'s `container_port` on a real local TCP port: each connection
    /// gets `answer(what the client sent first)` and is then closed. `ensure`
    /// publishes the port there, so `probe::tcp` and friends reach it.
    pub fn serve(&self, container: &str, container_port: u16, answer: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> &Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a local port for MockHost::serve");
        let port = listener.local_addr().expect("local address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = vec![0u8; 64 * 1024];
                let n = stream.read(&mut buf).unwrap_or(0);
                let _ = stream.write_all(&answer(&buf[..n]));
            }
        });
        self.with(|s| {
            s.served.insert((container.to_string(), container_port), port);
            // A container already running picks the port up at once.
            if let Some(info) = s.containers.get_mut(container) {
                for p in info.ports.iter_mut().filter(|p| p.container_port == container_port) {
                    p.host_port = port;
                }
            }
        });
        self
    }

    /// Put a container there before the hook runs (as a previous run left it):
    /// running, with `spec`'s ports published. Returns what `inspect` will say.
    pub fn given_container(&self, spec: &ContainerSpec) -> ContainerInfo {
        self.with(|s| {
            let info = s.start_container(&spec.name, spec);
            s.specs.insert(spec.name.clone(), spec.clone());
            info
        })
    }

    /// Put the volume `name` there.
    pub fn given_volume(&self, name: &str) -> &Self {
        self.with(|s| {
            if !s.volumes.iter().any(|v| v == name) {
                s.volumes.push(name.to_string())
            }
        });
        self
    }

    /// What `docker::logs(container, …)` returns.
    pub fn set_logs(&self, container: &str, text: &str) -> &Self {
        self.with(|s| s.logs_of.insert(container.to_string(), text.to_string()));
        self
    }

    /// Change `container`'s state, e.g. `ContainerState::Exited` to simulate a crash
    /// (a stopped container publishes nothing and has no address; its exit code is
    /// set to 1 unless [`MockHost::exit`] set one).
    pub fn set_state(&self, container: &str, state: ContainerState) -> &Self {
        self.with(|s| {
            let info = s.containers.get_mut(container).unwrap_or_else(|| panic!("set_state: no container {container}"));
            info.state = state;
            if matches!(state, ContainerState::Exited | ContainerState::Dead) {
                info.ports.clear();
                info.address = None;
                info.exit_code.get_or_insert(1);
            }
        });
        self
    }

    /// The container `container` exited with `code`.
    pub fn exit(&self, container: &str, code: i32) -> &Self {
        self.with(|s| {
            if let Some(info) = s.containers.get_mut(container) {
                info.exit_code = Some(code)
            }
        });
        self.set_state(container, ContainerState::Exited)
    }

    /// Set the engine health of `container`.
    pub fn set_health(&self, container: &str, health: Option<HealthState>) -> &Self {
        self.with(|s| s.containers.get_mut(container).unwrap_or_else(|| panic!("set_health: no container {container}")).health = health);
        self
    }

    // --- Looking -----------------------------------------------------------------

    /// Every spec `ensure` got, in order.
    pub fn ensured(&self) -> Vec<ContainerSpec> {
        self.with(|s| s.ensured.clone())
    }

    /// The last spec `ensure` got for `name`; panics naming those it got.
    pub fn spec(&self, name: &str) -> ContainerSpec {
        self.with(|s| {
            s.ensured.iter().rev().find(|spec| spec.name == name).cloned().unwrap_or_else(|| {
                panic!("ensure was not called for {name}; it was for {:?}", s.ensured.iter().map(|s| &s.name).collect::<Vec<_>>())
            })
        })
    }

    /// The container `name` as the engine has it now, if it exists.
    pub fn container(&self, name: &str) -> Option<ContainerInfo> {
        self.with(|s| s.containers.get(name).cloned())
    }

    /// The names of the containers that exist now.
    pub fn containers(&self) -> Vec<String> {
        self.with(|s| s.containers.keys().cloned().collect())
    }

    /// `host:port` where `container`'s `container_port` is published now; panics if
    /// it is not.
    pub fn host_addr(&self, container: &str, container_port: u16) -> String {
        self.container(container)
            .and_then(|c| c.published(container_port))
            .unwrap_or_else(|| panic!("port {container_port} of {container} is not published"))
    }

    /// The volumes that exist now.
    pub fn volumes(&self) -> Vec<String> {
        self.with(|s| s.volumes.clone())
    }

    /// The containers `remove` removed, in order.
    pub fn removed(&self) -> Vec<String> {
        self.with(|s| s.removed.clone())
    }

    /// The volumes `remove_volume` removed, in order.
    pub fn removed_volumes(&self) -> Vec<String> {
        self.with(|s| s.removed_volumes.clone())
    }

    /// Every `write_file`, in order.
    pub fn written_files(&self) -> Vec<WrittenFile> {
        self.with(|s| s.files.clone())
    }

    /// The signals sent, as (container, signal).
    pub fn signals(&self) -> Vec<(String, String)> {
        self.with(|s| s.signals.clone())
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(text) = text.strip_prefix(head) else { return false };
            (0..=text.len()).filter(|i| text.is_char_boundary(*i)).any(|i| glob(rest, &text[i..]))
        }
    }
}

impl State {
    fn host_port(&mut self, container: &str, container_port: u16, wanted: Option<u16>) -> u16 {
        if let Some(port) = self.served.get(&(container.to_string(), container_port)) {
            return *port;
        }
        if let Some(port) = wanted {
            return port;
        }
        // Like the engine: a free port, kept while the container is there. Bound and
        // let go, so nothing listens on it: a probe is refused.
        *self.host_ports.entry((container.to_string(), container_port)).or_insert_with(|| {
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(1)
        })
    }

    fn start_container(&mut self, name: &str, spec: &ContainerSpec) -> ContainerInfo {
        self.next_id += 1;
        let published = spec.replicas.is_none();
        let ports = if published {
            spec.ports
                .iter()
                .map(|p| PublishedPort { container_port: p.container_port, host_ip: "127.0.0.1".into(), host_port: self.host_port(name, p.container_port, p.host_port) })
                .collect()
        } else {
            Vec::new()
        };
        let info = ContainerInfo {
            name: name.to_string(),
            engine_name: self.engine_name(name),
            id: format!("{:012x}", 0xc0ffee000000u64 + self.next_id),
            image: spec.image.clone(),
            state: ContainerState::Running,
            health: spec.health.as_ref().map(|_| HealthState::Healthy),
            exit_code: None,
            ports,
            address: Some(format!("172.30.0.{}", 1 + self.next_id % 250)),
            spec_hash: format!("{:016x}", fnv(format!("{spec:?}").as_bytes())),
        };
        for mount in &spec.mounts {
            if !self.volumes.contains(&mount.volume) {
                self.volumes.push(mount.volume.clone());
            }
        }
        self.containers.insert(name.to_string(), info.clone());
        info
    }
}

pub mod imports {
    use crate::docker::{ContainerInfo, ContainerSpec, ContainerState, Deployment, EnsureOutcome, ExecOptions, ExecOutput};
    use crate::testing::exec::run_handler;
    use crate::testing::with;
    use crate::{Capability, Error};

    use super::{glob, WrittenFile};

    pub fn network() -> Result<String, Error> {
        with(|s| {
            s.failure("network", "")?;
            Ok(format!("{}-{}", s.project, s.environment))
        })
    }

    pub fn create_volume(name: &str) -> Result<String, Error> {
        with(|s| {
            s.failure("create-volume", name)?;
            s.allows(|c| matches!(c, Capability::Volume(v) if v == name), format!("volume {name}"))?;
            if !s.volumes.iter().any(|v| v == name) {
                s.volumes.push(name.to_string());
            }
            Ok(s.engine_name(name))
        })
    }

    pub fn remove_volume(name: &str) -> Result<(), Error> {
        with(|s| {
            s.failure("remove-volume", name)?;
            let at = s.volumes.iter().position(|v| v == name).ok_or_else(|| Error::NotFound(format!("volume {name}")))?;
            s.volumes.remove(at);
            s.removed_volumes.push(name.to_string());
            Ok(())
        })
    }

    pub fn list_volumes() -> Result<Vec<String>, Error> {
        with(|s| {
            s.failure("list-volumes", "")?;
            Ok(s.volumes.clone())
        })
    }

    pub fn ensure(spec: &ContainerSpec) -> Result<Deployment, Error> {
        with(|s| {
            s.ensured.push(spec.clone());
            s.failure("ensure", &spec.name)?;
            if spec.name.is_empty() || spec.image.is_empty() {
                return Err(Error::Invalid("a container spec needs a name and an image".into()));
            }
            s.allows(|c| matches!(c, Capability::Image(p) if glob(p, &spec.image)), format!("image {}", spec.image))?;
            if spec.replicas.is_none() {
                for port in &spec.ports {
                    s.allows(|c| matches!(c, Capability::Publish(p) if *p == port.container_port), format!("publish {}", port.container_port))?;
                }
            }
            for mount in &spec.mounts {
                s.allows(|c| matches!(c, Capability::Volume(v) if *v == mount.volume), format!("volume {}", mount.volume))?;
            }
            let names: Vec<String> = match spec.replicas {
                None => vec![spec.name.clone()],
                Some(n) => (1..=n).map(|i| format!("{}-{i}", spec.name)).collect(),
            };
            let same = s.specs.get(&spec.name).is_some_and(|old| format!("{old:?}") == format!("{spec:?}"));
            let existed = names.iter().all(|n| s.containers.contains_key(n));
            let running = names.iter().all(|n| s.containers.get(n).is_some_and(|c| c.state == ContainerState::Running));
            let outcome = match (existed, same, running) {
                (true, true, true) => EnsureOutcome::Unchanged,
                (true, true, false) => EnsureOutcome::Started,
                (true, false, _) => EnsureOutcome::Recreated,
                (false, _, _) if s.specs.contains_key(&spec.name) => EnsureOutcome::Recreated,
                (false, _, _) => EnsureOutcome::Created,
            };
            // Scaling down removes the highest-numbered instances.
            if let Some(n) = spec.replicas {
                let prefix = format!("{}-", spec.name);
                let extra: Vec<String> = s
                    .containers
                    .keys()
                    .filter(|k| k.strip_prefix(&prefix).and_then(|i| i.parse::<u32>().ok()).is_some_and(|i| i > n))
                    .cloned()
                    .collect();
                for name in extra {
                    s.containers.remove(&name);
                }
            }
            let containers = names
                .iter()
                .map(|name| match (&outcome, s.containers.get_mut(name)) {
                    (EnsureOutcome::Unchanged, Some(info)) => info.clone(),
                    _ => s.start_container(name, spec),
                })
                .collect();
            s.specs.insert(spec.name.clone(), spec.clone());
            Ok(Deployment { outcome, containers })
        })
    }

    pub fn list_containers() -> Result<Vec<ContainerInfo>, Error> {
        with(|s| {
            s.failure("list-containers", "")?;
            Ok(s.containers.values().cloned().collect())
        })
    }

    pub fn inspect(name: &str) -> Result<ContainerInfo, Error> {
        with(|s| {
            s.failure("inspect", name)?;
            s.containers.get(name).cloned().ok_or_else(|| Error::NotFound(format!("container {name}")))
        })
    }

    pub fn start(name: &str) -> Result<(), Error> {
        let spec = with(|s| {
            s.failure("start", name)?;
            s.containers.get(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
            let base = name.rsplit_once('-').filter(|(_, i)| i.parse::<u32>().is_ok()).map(|(b, _)| b).unwrap_or(name);
            Ok::<_, Error>(s.specs.get(name).or_else(|| s.specs.get(base)).cloned())
        })?;
        with(|s| {
            let fallback = ContainerSpec::new(name, &s.containers[name].image);
            let info = s.start_container(name, spec.as_ref().unwrap_or(&fallback));
            let _ = info;
            Ok(())
        })
    }

    pub fn stop(name: &str, timeout_ms: u32) -> Result<(), Error> {
        let _ = timeout_ms;
        with(|s| {
            s.failure("stop", name)?;
            let info = s.containers.get_mut(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
            info.state = ContainerState::Exited;
            info.exit_code = Some(0);
            info.ports.clear();
            info.address = None;
            Ok(())
        })
    }

    pub fn remove(name: &str) -> Result<(), Error> {
        with(|s| {
            s.failure("remove", name)?;
            // A workload's name removes all its replicas.
            let prefix = format!("{name}-");
            let replicas: Vec<String> = s
                .containers
                .keys()
                .filter(|k| k.strip_prefix(&prefix).is_some_and(|i| i.parse::<u32>().is_ok()) && s.specs.get(name).is_some_and(|sp| sp.replicas.is_some()))
                .cloned()
                .collect();
            let gone: Vec<String> = if s.containers.contains_key(name) { vec![name.to_string()] } else { replicas };
            if gone.is_empty() {
                return Err(Error::NotFound(format!("container {name}")));
            }
            for g in gone {
                s.containers.remove(&g);
                s.host_ports.retain(|(c, _), _| *c != g);
            }
            s.specs.remove(name);
            s.removed.push(name.to_string());
            Ok(())
        })
    }

    pub fn exec(name: &str, command: &[String], options: &ExecOptions) -> Result<ExecOutput, Error> {
        let handler = with(|s| {
            s.failure("exec", name)?;
            s.exec(name, command, options)
        })?;
        Ok(run_handler(handler, command, options))
    }

    pub fn write_file(name: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), Error> {
        with(|s| {
            s.failure("write-file", name)?;
            s.containers.get(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
            s.files.push(WrittenFile { container: name.to_string(), path: path.to_string(), contents: contents.to_vec(), mode });
            Ok(())
        })
    }

    pub fn logs(name: &str, lines: u32) -> Result<String, Error> {
        with(|s| {
            s.failure("logs", name)?;
            s.containers.get(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
            let text = s.logs_of.get(name).cloned().unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            Ok(all[all.len().saturating_sub(lines as usize)..].join("\n"))
        })
    }

    pub fn signal(name: &str, signal: &str) -> Result<(), Error> {
        with(|s| {
            s.failure("signal", name)?;
            s.containers.get(name).ok_or_else(|| Error::NotFound(format!("container {name}")))?;
            s.signals.push((name.to_string(), signal.to_string()));
            Ok(())
        })
    }
}
