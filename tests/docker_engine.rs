//! `engine::Docker` against the real Docker engine: every primitive the capabilities
//! use, on resources named and labelled per run so that parallel or aborted runs
//! never meet, and cleaned up even when an assertion fails.
//!
//! Needs a running Docker engine and /bin/busybox (Debian: busybox-static); the
//! test image is built locally by tests/images/busybox.sh, no registry involved.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use provisioner::engine::{
    ContainerEngine, ContainerRequest, Docker, EngineError, ExecRequest, Health, HealthRequest, State,
};

const IMAGE: &str = "provisioner-test/busybox:latest";
const RUN_LABEL: &str = "provisioner-test.run";

fn build_test_image() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        assert!(
            Path::new("/bin/busybox").exists(),
            "the engine tests build their image from /bin/busybox: apt-get install busybox-static"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/images/busybox.sh");
        let out = Command::new("bash").arg(&script).output().expect("run tests/images/busybox.sh");
        assert!(
            out.status.success(),
            "tests/images/busybox.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn engine() -> Docker {
    match Docker::connect() {
        Ok(engine) => {
            build_test_image();
            engine
        }
        Err(e) => panic!("these tests need a running Docker engine: {e}"),
    }
}

/// A name prefix no other run shares.
fn unique_prefix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("pt-{}-{nanos}", std::process::id())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Removes everything labelled with this run, and the run's networks, when dropped:
/// on success and on a failed assertion alike.
struct Cleanup<'a> {
    engine: &'a Docker,
    run: BTreeMap<String, String>,
    networks: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for container in self.engine.list_containers(&self.run).unwrap_or_default() {
            let _ = self.engine.remove_container(&container.name);
        }
        for volume in self.engine.list_volumes(&self.run).unwrap_or_default() {
            let _ = self.engine.remove_volume(&volume.name);
        }
        for network in &self.networks {
            let _ = self.engine.remove_network(network);
        }
    }
}

fn request(name: &str, network: &str, run: &BTreeMap<String, String>) -> ContainerRequest {
    ContainerRequest {
        name: name.into(),
        image: IMAGE.into(),
        command: None,
        entrypoint: None,
        env: vec![],
        labels: run.clone(),
        ports: vec![],
        volumes: vec![],
        network: network.into(),
        aliases: vec![],
        files: vec![],
        secrets: Default::default(),
        user: None,
        health: None,
        memory_bytes: 64 << 20,
        nano_cpus: 500_000_000,
        pids: 64,
        stop_timeout_secs: 2,
    }
}

fn cmd(command: &[&str]) -> ExecRequest {
    ExecRequest { command: command.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

/// What `docker inspect` says, for settings `ContainerDetails` does not carry.
fn docker_inspect(name: &str) -> serde_json::Value {
    let out = Command::new("docker").args(["inspect", name]).output().expect("docker inspect");
    assert!(out.status.success(), "docker inspect {name}: {}", String::from_utf8_lossy(&out.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    parsed[0].clone()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the published port");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn an_unreachable_engine_is_one_clear_line() {
    let Err(err) = Docker::connect_to("unix:///nonexistent.sock") else {
        panic!("connected to a socket that does not exist");
    };
    let EngineError::Failed(message) = err else { panic!("unexpected error kind: {err:?}") };
    assert!(
        message.starts_with("cannot reach the Docker engine at unix:///nonexistent.sock: is dockerd running?"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn networks_are_created_once_even_when_asked_concurrently() {
    let engine = Arc::new(engine());
    let prefix = unique_prefix();
    let network = format!("{prefix}-net");
    let run = labels(&[(RUN_LABEL, &prefix)]);
    let _cleanup = Cleanup { engine: &engine, run: run.clone(), networks: vec![network.clone()] };

    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (engine, network, run) = (engine.clone(), network.clone(), run.clone());
            std::thread::spawn(move || engine.ensure_network(&network, &run))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap().expect("ensure_network");
    }
    engine.ensure_network(&network, &run).expect("ensure_network again");

    let out = Command::new("docker")
        .args(["network", "ls", "--quiet", "--filter", &format!("label={RUN_LABEL}={prefix}")])
        .output()
        .unwrap();
    let ids: Vec<_> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 1, "exactly one network named {network}: {ids:?}");

    engine.remove_network(&network).expect("remove network");
    engine.remove_network(&network).expect("removing a missing network is fine");
}

#[test]
fn volumes_are_created_inspected_listed_by_label_and_removed() {
    let engine = engine();
    let prefix = unique_prefix();
    let run = labels(&[(RUN_LABEL, &prefix)]);
    let _cleanup = Cleanup { engine: &engine, run: run.clone(), networks: vec![] };

    let data = format!("{prefix}-data");
    let other = format!("{prefix}-other");
    let data_labels = labels(&[(RUN_LABEL, &prefix), ("provisioner-test.service", "db")]);
    let other_labels = labels(&[(RUN_LABEL, &prefix), ("provisioner-test.service", "cache")]);

    assert_eq!(engine.inspect_volume(&data).unwrap(), None);
    engine.create_volume(&data, &data_labels).expect("create volume");
    engine.create_volume(&data, &data_labels).expect("creating an existing volume is fine");
    engine.create_volume(&other, &other_labels).expect("create second volume");

    let inspected = engine.inspect_volume(&data).unwrap().expect("volume exists");
    assert_eq!(inspected.name, data);
    assert_eq!(inspected.labels, data_labels);

    let db_only = engine.list_volumes(&data_labels).unwrap();
    assert_eq!(db_only.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), [data.as_str()]);
    let mut both: Vec<_> = engine.list_volumes(&run).unwrap().into_iter().map(|v| v.name).collect();
    both.sort();
    assert_eq!(both, [data.clone(), other.clone()]);

    engine.remove_volume(&data).expect("remove volume");
    assert_eq!(engine.inspect_volume(&data).unwrap(), None);
    assert!(matches!(engine.remove_volume(&data), Err(EngineError::NotFound(_))));
}

#[test]
fn images_present_locally_are_not_pulled_and_missing_ones_explain_what_to_do() {
    let engine = engine();

    let mut calls = 0;
    engine.ensure_image(IMAGE, &mut |_| calls += 1).expect("local image");
    assert!(calls <= 1, "progress was called {calls} times for an image already present");

    let missing = "provisioner-test/does-not-exist:never";
    let err = engine.ensure_image(missing, &mut |_| {}).expect_err("no such image anywhere");
    let EngineError::NotFound(message) = err else { panic!("unexpected error kind: {err:?}") };
    assert!(
        message.starts_with(&format!("image {missing} is not on this machine and could not be pulled (")),
        "{message}"
    );
    assert!(message.contains("[environments.NAME.images]") && message.contains("cargo xtask images"), "{message}");
}

#[test]
fn a_container_runs_publishes_execs_logs_and_is_removed_without_its_volume() {
    let engine = engine();
    let prefix = unique_prefix();
    let network = format!("{prefix}-net");
    let volume = format!("{prefix}-data");
    let name = format!("{prefix}-web");
    let run = labels(&[(RUN_LABEL, &prefix)]);
    let _cleanup = Cleanup { engine: &engine, run: run.clone(), networks: vec![network.clone()] };

    engine.ensure_network(&network, &run).expect("network");
    engine.create_volume(&volume, &run).expect("volume");

    let mut web = request(&name, &network, &run);
    web.command = Some(
        ["/bin/sh", "-c", "echo started; sleep 0.2; echo to-stderr >&2; exec /bin/busybox httpd -f -p 8080 -h /www"]
            .map(String::from)
            .to_vec(),
    );
    web.env = vec![("GREETING".into(), "hello".into())];
    web.ports = vec![(8080, "127.0.0.1".parse().unwrap(), 0)];
    web.volumes = vec![(volume.clone(), "/data".into(), false)];
    web.aliases = vec!["web".into()];
    web.health = Some(HealthRequest {
        command: vec!["true".into()],
        interval_ms: 200,
        timeout_ms: 1000,
        retries: 3,
        start_period_ms: 0,
    });

    let id = engine.create_container(&web).expect("create container");
    assert!(!id.is_empty());
    assert!(
        matches!(engine.create_container(&web), Err(EngineError::Conflict(_))),
        "a second container with the same name conflicts"
    );
    let created = engine.inspect_container(&name).unwrap().expect("created container");
    assert_eq!(created.state, State::Created);
    engine.start_container(&name).expect("start");
    engine.start_container(&name).expect("starting a running container is fine");

    let details = engine.inspect_container(&name).unwrap().expect("running container");
    assert_eq!(details.id, id);
    assert_eq!(details.name, name);
    assert_eq!(details.image, IMAGE);
    assert_eq!(details.labels, run);
    assert_eq!(details.state, State::Running);
    assert_eq!(details.exit_code, None);
    assert!(details.address.as_deref().is_some_and(|a| !a.is_empty()), "{details:?}");
    let [(8080, host_ip, host_port)] = details.ports.as_slice() else { panic!("ports: {:?}", details.ports) };
    assert_eq!(host_ip, "127.0.0.1");
    assert_ne!(*host_port, 0);
    let host_port = *host_port;

    // Settings the details do not show, as the engine recorded them.
    let raw = docker_inspect(&name);
    let host = &raw["HostConfig"];
    assert_eq!(host["Memory"], 64 << 20);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["PidsLimit"], 64);
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["SecurityOpt"], serde_json::json!(["no-new-privileges:true"]));
    assert_eq!(raw["Config"]["StopTimeout"], 2);
    assert_eq!(raw["Config"]["Healthcheck"]["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(raw["Config"]["Healthcheck"]["Interval"], 200_000_000);
    let aliases = &raw["NetworkSettings"]["Networks"][&network]["Aliases"];
    assert!(aliases.as_array().unwrap().contains(&serde_json::json!("web")), "{aliases}");
    assert_eq!(raw["Mounts"][0]["Name"], volume.as_str());
    assert_eq!(raw["Mounts"][0]["Destination"], "/data");

    wait_for("the health check to pass", || {
        engine.inspect_container(&name).unwrap().is_some_and(|d| d.health == Some(Health::Healthy))
    });

    let listed = engine.list_containers(&run).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, name);
    assert_eq!(listed[0].ports, engine.inspect_container(&name).unwrap().unwrap().ports);
    // By its full id (as a swarm task names its container): found, with its health;
    // by a prefix of it or by its name, not.
    let id = listed[0].id.clone();
    assert_eq!(engine.inspect_container_id(&id).unwrap().map(|d| (d.name, d.health)), Some((name.clone(), Some(Health::Healthy))));
    assert_eq!(engine.inspect_container_id(&id[..12]).unwrap(), None);
    assert_eq!(engine.inspect_container_id(&name).unwrap(), None);
    assert!(engine.list_containers(&labels(&[(RUN_LABEL, "someone-else")])).unwrap().is_empty());

    // exec: output, exit codes, stdin, environment, working folder, user.
    let hi = engine.exec(&name, &cmd(&["echo", "hi"])).expect("exec echo");
    assert_eq!((hi.exit_code, hi.stdout.as_slice(), hi.stderr.as_slice()), (0, &b"hi\n"[..], &b""[..]));

    let failed = engine.exec(&name, &cmd(&["sh", "-c", "echo oops >&2; exit 3"])).expect("exec failing");
    assert_eq!(failed.exit_code, 3);
    assert_eq!(failed.stderr, b"oops\n");
    assert!(failed.stdout.is_empty());
    assert_ne!(engine.exec(&name, &cmd(&["false"])).unwrap().exit_code, 0);

    let echoed = engine
        .exec(&name, &ExecRequest { stdin: Some(b"line one\nline two\n".to_vec()), ..cmd(&["cat"]) })
        .expect("exec cat with stdin");
    assert_eq!(echoed.exit_code, 0);
    assert_eq!(echoed.stdout, b"line one\nline two\n");

    // More than any pipe buffer holds, so reading and writing must overlap.
    let big: Vec<u8> = (0..2_000_000u32).map(|i| b"abcdefghij\n"[(i % 11) as usize]).collect();
    let echoed = engine.exec(&name, &ExecRequest { stdin: Some(big.clone()), ..cmd(&["cat"]) }).expect("big stdin");
    assert_eq!(echoed.exit_code, 0);
    assert!(echoed.stdout == big, "echoed {} of {} bytes", echoed.stdout.len(), big.len());

    let ignored = engine.exec(&name, &ExecRequest { stdin: Some(big), ..cmd(&["true"]) }).expect("unread stdin");
    assert_eq!(ignored.exit_code, 0);

    let env = engine
        .exec(
            &name,
            &ExecRequest {
                env: vec![("EXTRA".into(), "x y".into())],
                workdir: Some("/tmp".into()),
                ..cmd(&["sh", "-c", "echo \"$GREETING $EXTRA\"; pwd"])
            },
        )
        .expect("exec with env and workdir");
    assert_eq!(String::from_utf8_lossy(&env.stdout), "hello x y\n/tmp\n");

    let user = engine.exec(&name, &ExecRequest { user: Some("65534".into()), ..cmd(&["id", "-u"]) }).unwrap();
    assert_eq!(String::from_utf8_lossy(&user.stdout), "65534\n");

    assert!(matches!(engine.exec("pt-no-such-container", &cmd(&["true"])), Err(EngineError::NotFound(_))));

    // write_file: contents and mode, into the container and into the volume.
    engine.write_file(&name, "/tmp/config.txt", b"a = 1\nb = 2\n", 0o640).expect("write_file");
    let cat = engine.exec(&name, &cmd(&["cat", "/tmp/config.txt"])).unwrap();
    assert_eq!(cat.stdout, b"a = 1\nb = 2\n");
    let ls = engine.exec(&name, &cmd(&["ls", "-l", "/tmp/config.txt"])).unwrap();
    assert!(String::from_utf8_lossy(&ls.stdout).starts_with("-rw-r-----"), "{}", String::from_utf8_lossy(&ls.stdout));
    // A missing folder is made, with its missing parents, as `mkdir -p` would.
    engine.write_file(&name, "/no/such/folder/file", b"x", 0o644).expect("write_file into a folder the image lacks");
    let made = engine.exec(&name, &cmd(&["ls", "-ld", "/no", "/no/such", "/no/such/folder", "/no/such/folder/file"])).unwrap();
    let modes: Vec<String> = String::from_utf8_lossy(&made.stdout).lines().map(|l| l.split_whitespace().next().unwrap_or("").to_string()).collect();
    assert_eq!(modes, ["drwxr-xr-x", "drwxr-xr-x", "drwxr-xr-x", "-rw-r--r--"], "{}", String::from_utf8_lossy(&made.stdout));
    assert!(matches!(engine.write_file("pt-no-such-container", "/tmp/x", b"x", 0o644), Err(EngineError::NotFound(_))));
    // write_files: each file with its own contents and mode, across folders (one
    // upload per folder), into the container and into the volume.
    let files = [
        ("/www/index.html".to_string(), b"served from the container\n".to_vec(), 0o644),
        ("/tmp/two.txt".to_string(), b"two\n".to_vec(), 0o600),
        ("/data/kept.txt".to_string(), b"survives removal\n".to_vec(), 0o600),
        ("/tmp/three.txt".to_string(), b"three\n".to_vec(), 0o444),
    ];
    engine.write_files(&name, &files).expect("write_files");
    let listing = engine.exec(&name, &cmd(&["sh", "-c", "stat -c '%n %a' /tmp/two.txt /tmp/three.txt /data/kept.txt && cat /tmp/two.txt /tmp/three.txt"])).unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout), "/tmp/two.txt 600\n/tmp/three.txt 444\n/data/kept.txt 600\ntwo\nthree\n");
    engine.write_files(&name, &[("/made/by/write_files/file".to_string(), b"x".to_vec(), 0o644)]).expect("write_files into a new folder");
    let made = engine.exec(&name, &cmd(&["cat", "/made/by/write_files/file"])).unwrap();
    assert_eq!(made.stdout, b"x");

    // The published port reaches the container.
    let response = http_get(host_port, "/index.html");
    assert!(response.starts_with("HTTP/1.") && response.contains(" 200 "), "{response}");
    assert!(response.ends_with("served from the container\n"), "{response}");

    // logs: both streams, in order, tail respected. (The pause between the two lines
    // in the command is needed: the engine reads stdout and stderr separately, so
    // lines written back to back on different streams can be logged in either order.)
    let logs = engine.logs(&name, 100).expect("logs");
    assert_eq!(logs, "started\nto-stderr\n");
    assert_eq!(engine.logs(&name, 1).unwrap(), "to-stderr\n");

    // stop: idempotent; an exec into a stopped container is a conflict.
    engine.stop_container(&name, 1).expect("stop");
    engine.stop_container(&name, 1).expect("stopping a stopped container is fine");
    let stopped = engine.inspect_container(&name).unwrap().unwrap();
    assert_eq!(stopped.state, State::Exited);
    assert!(stopped.exit_code.is_some());
    assert!(matches!(engine.exec(&name, &cmd(&["true"])), Err(EngineError::Conflict(_))));

    // remove: the container goes, its volume stays, with its data.
    engine.remove_container(&name).expect("remove");
    assert_eq!(engine.inspect_container(&name).unwrap(), None);
    assert!(matches!(engine.remove_container(&name), Err(EngineError::NotFound(_))));
    assert!(engine.inspect_volume(&volume).unwrap().is_some(), "removing a container keeps its volumes");

    let reader_name = format!("{prefix}-reader");
    let mut reader = request(&reader_name, &network, &run);
    reader.command = Some(vec!["sleep".into(), "60".into()]);
    reader.volumes = vec![(volume.clone(), "/data".into(), true)];
    engine.create_container(&reader).expect("create reader");
    engine.start_container(&reader_name).expect("start reader");
    let kept = engine.exec(&reader_name, &cmd(&["cat", "/data/kept.txt"])).unwrap();
    assert_eq!(kept.stdout, b"survives removal\n");
    let write = engine.exec(&reader_name, &cmd(&["sh", "-c", "echo x > /data/new"])).unwrap();
    assert_ne!(write.exit_code, 0, "a read-only mount refuses writes");
    engine.remove_container(&reader_name).expect("remove running reader");

    engine.remove_volume(&volume).expect("remove volume");
    engine.remove_network(&network).expect("remove network");
}

#[test]
fn unconfined_requests_and_missing_containers_are_refused() {
    let engine = engine();
    let prefix = unique_prefix();
    let run = labels(&[(RUN_LABEL, &prefix)]);
    let _cleanup = Cleanup { engine: &engine, run: run.clone(), networks: vec![] };

    let mut host_path = request(&format!("{prefix}-bad"), "", &run);
    host_path.volumes = vec![("/etc".into(), "/host-etc".into(), true)];
    let err = engine.create_container(&host_path).expect_err("host path mount");
    assert_eq!(err, EngineError::Failed("refusing an unconfined container request".into()));
    assert_eq!(engine.inspect_container(&format!("{prefix}-bad")).unwrap(), None);

    let missing = format!("{prefix}-missing");
    assert_eq!(engine.inspect_container(&missing).unwrap(), None);
    assert!(matches!(engine.start_container(&missing), Err(EngineError::NotFound(_))));
    assert!(matches!(engine.stop_container(&missing, 1), Err(EngineError::NotFound(_))));
    assert!(matches!(engine.logs(&missing, 10), Err(EngineError::NotFound(_))));
    assert!(matches!(engine.write_file(&missing, "/tmp/x", b"x", 0o644), Err(EngineError::NotFound(_))));

    let mut no_image = request(&missing, "", &run);
    no_image.image = "provisioner-test/does-not-exist:never".into();
    assert!(matches!(engine.create_container(&no_image), Err(EngineError::NotFound(_))));
}

/// Issue 18.1: a file written into a container belongs to the container's user, so a
/// server running as an unprivileged user reads its own private (0600) config — before
/// the first start and afterwards alike.
#[test]
fn files_belong_to_the_containers_user() {
    let engine = engine();
    let prefix = unique_prefix();
    let network = format!("{prefix}-net");
    let name = format!("{prefix}-nobody");
    let run = labels(&[(RUN_LABEL, &prefix)]);
    let _cleanup = Cleanup { engine: &engine, run: run.clone(), networks: vec![network.clone()] };
    engine.ensure_network(&network, &run).expect("network");

    let mut server = request(&name, &network, &run);
    server.user = Some("65534:65534".into());
    server.command = Some(["sleep", "600"].map(String::from).to_vec());
    engine.create_container(&server).expect("create");
    engine.write_files(&name, &[("/tmp/server.conf".into(), b"listen 4222\n".to_vec(), 0o600)]).expect("write_files before start");
    engine.start_container(&name).expect("start");
    engine.write_file(&name, "/tmp/later.conf", b"reloaded\n", 0o600).expect("write_file after start");
    let read = engine.exec(&name, &cmd(&["sh", "-c", "stat -c '%u:%g %a' /tmp/server.conf /tmp/later.conf && cat /tmp/server.conf /tmp/later.conf"])).unwrap();
    assert_eq!(String::from_utf8_lossy(&read.stdout), "65534:65534 600\n65534:65534 600\nlisten 4222\nreloaded\n", "{}", String::from_utf8_lossy(&read.stderr));

    // A user by name, from the image's own /etc/passwd (this image has no `getent`).
    let named = format!("{prefix}-named");
    let mut server = request(&named, &network, &run);
    server.user = Some("nobody".into());
    server.command = Some(["sleep", "600"].map(String::from).to_vec());
    engine.create_container(&server).expect("create");
    engine.write_files(&named, &[("/tmp/server.conf".into(), b"listen 4222\n".to_vec(), 0o600)]).expect("write_files before start");
    engine.start_container(&named).expect("start");
    engine.write_file(&named, "/tmp/later.conf", b"reloaded\n", 0o600).expect("write_file after start");
    let read = engine.exec(&named, &cmd(&["sh", "-c", "stat -c %u:%g /tmp/server.conf /tmp/later.conf"])).unwrap();
    assert_eq!(String::from_utf8_lossy(&read.stdout), "65534:65534\n65534:65534\n", "{}", String::from_utf8_lossy(&read.stderr));
}

/// Counts what is written to it and keeps a digest: a sink that holds nothing.
struct Counting {
    bytes: u64,
    digest: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        for b in buf {
            self.digest = self.digest.wrapping_mul(31).wrapping_add(u64::from(*b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Yields `left` bytes of a fixed pattern without holding them.
struct Pattern {
    left: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = b'a' + (i % 26) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn streamed_execs_move_more_than_the_exec_cap_and_signals_reach_the_main_process() {
    let engine = engine();
    let prefix = unique_prefix();
    let run = labels(&[(RUN_LABEL, &prefix)]);
    let network = format!("{prefix}-net");
    let _cleanup = Cleanup { engine: &engine, run: run.clone(), networks: vec![network.clone()] };
    engine.ensure_network(&network, &run).unwrap();
    let name = format!("{prefix}-server");
    let mut req = request(&name, &network, &run);
    req.command = Some(
        ["/bin/sh", "-c", "trap 'echo got HUP' HUP; echo waiting; while true; do sleep 0.1; done"].iter().map(|s| s.to_string()).collect(),
    );
    engine.create_container(&req).unwrap();
    engine.start_container(&name).unwrap();
    wait_for("the trap to be set", || engine.logs(&name, 10).unwrap_or_default().contains("waiting"));

    // 64 MiB out, more than the 16 MiB a buffered exec keeps.
    let size: u64 = 64 << 20;
    let mut out = Counting { bytes: 0, digest: 0 };
    let result = engine
        .exec_streaming(&name, &cmd(&["/bin/sh", "-c", &format!("head -c {size} /dev/zero")]), None, &mut out)
        .unwrap();
    assert_eq!((result.exit_code, out.bytes), (0, size), "every byte of the output arrives");
    assert!(result.stdout.is_empty(), "a streamed exec keeps none of its output");

    // 48 MiB in, fed as the command reads: it counts every byte.
    let mut input = Pattern { left: 48 << 20 };
    let mut counted = Vec::new();
    let result = engine.exec_streaming(&name, &cmd(&["/bin/sh", "-c", "wc -c"]), Some(&mut input), &mut counted).unwrap();
    assert_eq!(result.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&counted).trim(), (48u64 << 20).to_string());

    engine.signal(&name, "HUP").unwrap();
    wait_for("the HUP trap to run", || engine.logs(&name, 10).unwrap_or_default().contains("got HUP"));
    assert_eq!(engine.inspect_container(&name).unwrap().map(|d| d.state), Some(State::Running), "a signal is not a stop");
    let missing = engine.signal(&format!("{prefix}-none"), "HUP").unwrap_err();
    assert!(matches!(missing, EngineError::NotFound(_)), "{missing:?}");
}
