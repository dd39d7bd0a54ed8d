//! An engine behind TLS, as a Docker user sets one up (`dockerd --tlsverify` with a
//! CA, a server certificate and a key; the client with `ca.pem`, `cert.pem` and
//! `key.pem`): one Docker engine in a container from the test cluster's node image
//! (`cargo xtask cluster up` builds it), with certificates made here, and a
//! one-service project on it (`target = "swarm"`: the engine is remote, so the
//! readiness probe goes through the port-forward over the same TLS connection).
//!
//! Checked as a user would: `status` and `run` work over TLS, from `tls` in the
//! environment and from Docker's own `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`; a wrong
//! CA, a missing key file and a plain client are each refused with one line that
//! names the engine or the file and the fix. Everything made here is removed.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use support::text;

const NODE_IMAGE: &str = "provisioner-test/swarm-node:dev";
const REDIS_IMAGE: &str = "provisioner-offline/redis:7";

/// A CA, and certificates it signs.
struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Authority { pem, issuer: Issuer::new(params, key) }
    }

    /// (certificate, key) in PEM, for a server at `names` or a client (no names).
    fn sign(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("provisioner test client"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().expect("key");
        let certificate = params.signed_by(&key, &self.issuer).expect("signing");
        (certificate.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).expect("folder");
    for (name, contents) in files {
        std::fs::write(dir.join(name), contents).expect("writing a certificate file");
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("running docker");
    assert!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The engine's container; removed (with its engine's data) however the test ends.
struct Node(String);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.0]).output();
    }
}

/// A Docker engine in a container, listening with `--tlsverify` on 2376, its
/// certificate made for its address once it has one; the engine's address.
fn start_tls_engine(name: &str, ca: &Authority) -> String {
    let present = Command::new("docker").args(["image", "inspect", NODE_IMAGE]).output().is_ok_and(|o| o.status.success());
    assert!(present, "image {NODE_IMAGE} is missing: `cargo xtask cluster up` builds it (or run `cargo xtask test`)");
    // As `cargo xtask cluster up` starts a node; dockerd waits for its certificates,
    // which name the address the container gets.
    let script = "until [ -e /certs/ready ]; do sleep 0.1; done; exec dockerd --host unix:///var/run/docker.sock \
                  --host tcp://0.0.0.0:2376 --tlsverify --tlscacert /certs/ca.pem --tlscert /certs/cert.pem \
                  --tlskey /certs/key.pem --storage-driver overlay2";
    docker(&[
        "run", "-d", "--name", name, "--hostname", "tls-node",
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--tmpfs", "/run", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns=host",
        "--entrypoint", "sh", NODE_IMAGE, "-c", script,
    ]);
    let ip = docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name]);
    assert!(!ip.is_empty(), "the engine's container has no address");
    let (cert, key) = ca.sign(&[&ip, "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let staged = tempfile::tempdir().expect("temp dir");
    write(staged.path(), &[("ca.pem", &ca.pem), ("cert.pem", &cert), ("key.pem", &key)]);
    docker(&["cp", &format!("{}/.", staged.path().display()), &format!("{name}:/certs")]);
    docker(&["exec", name, "touch", "/certs/ready"]);
    let started = Instant::now();
    while docker(&["exec", name, "sh", "-c", "docker info --format '{{.ServerVersion}}' 2>/dev/null || true"]).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "the engine in {name} did not start:\n{}", docker(&["logs", "--tail", "20", name]));
        std::thread::sleep(Duration::from_millis(300));
    }
    // A one-node swarm (the engine is remote: probes go through the engine API), and
    // the service's image, which no registry serves here.
    docker(&["exec", name, "docker", "swarm", "init", "--advertise-addr", &ip]);
    let mut save = Command::new("docker").args(["save", REDIS_IMAGE]).stdout(std::process::Stdio::piped()).spawn().expect("docker save");
    let image = save.stdout.take().expect("piped");
    let load = Command::new("docker").args(["exec", "-i", name, "docker", "load", "-q"]).stdin(image).output().expect("docker load");
    assert!(save.wait().is_ok_and(|s| s.success()), "docker save {REDIS_IMAGE} failed");
    assert!(load.status.success(), "loading {REDIS_IMAGE} into the engine: {}", text(&load));
    format!("tcp://{ip}:2376")
}

#[test]
fn an_engine_behind_tls_is_reached_as_docker_reaches_it() {
    support::require(&["redis"], &[REDIS_IMAGE]);
    let name = support::unique_name("provisioner-tls");
    let _node = Node(name.clone());
    let ca = Authority::new("provisioner test CA");
    let engine = start_tls_engine(&name, &ca);

    let project = tempfile::tempdir().expect("temp dir");
    let (cert, key) = ca.sign(&[], ExtendedKeyUsagePurpose::ClientAuth);
    write(&project.path().join("certs"), &[("ca.pem", &ca.pem), ("cert.pem", &cert), ("key.pem", &key)]);
    write(project.path(), &[("other-ca.pem", &Authority::new("another CA").pem)]);
    let swarm = "target = \"swarm\"\nrouting = \"host\"\nencrypted_network = false\n";
    let toml = format!(
        "[project]\nname = \"{name}\"\n\n\
         [environments.tls]\n{swarm}engine = \"{engine}\"\ntls = {{ cert_path = \"certs\" }}\nimages = {{ cache = \"{REDIS_IMAGE}\" }}\n\n\
         [environments.docker-env]\n{swarm}\n\
         [environments.wrong-ca]\n{swarm}engine = \"{engine}\"\ntls = {{ cert_path = \"certs\", ca = \"other-ca.pem\" }}\n\n\
         [environments.no-key]\n{swarm}engine = \"{engine}\"\ntls = {{ cert_path = \"certs\", key = \"certs/missing.pem\" }}\n\n\
         [environments.plain]\n{swarm}engine = \"{engine}\"\n\n\
         [services.cache]\nplugin = \"redis\"\n"
    );
    std::fs::write(project.path().join("provisioner.toml"), toml).expect("writing provisioner.toml");
    let provisioner = |args: &[&str], vars: &[(&str, String)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_provisioner"));
        command.args(args).current_dir(project.path());
        for variable in ["PROVISIONER_PLUGIN_PATH", "CI", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
            command.env_remove(variable);
        }
        command.envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
        command.output().expect("running provisioner")
    };

    // Over TLS from the environment's `tls`: the service up and ready (its probe
    // forwarded through the engine API), and its status.
    let run = provisioner(&["run", "tls"], &[]);
    assert!(run.status.success(), "run over TLS:\n{}", text(&run));
    assert!(text(&run).lines().any(|l| l.starts_with("cache ") && l.contains("ready")), "{}", text(&run));
    let status = provisioner(&["status", "tls"], &[]);
    assert!(status.status.success(), "status over TLS:\n{}", text(&status));
    assert!(text(&status).lines().any(|l| l.starts_with("cache ") && l.contains("running")), "{}", text(&status));

    // The same from Docker's own variables, as `docker` itself reads them.
    let certs = project.path().join("certs").display().to_string();
    let vars = [("DOCKER_HOST", engine.clone()), ("DOCKER_TLS_VERIFY", "1".to_string()), ("DOCKER_CERT_PATH", certs)];
    let status = provisioner(&["status", "docker-env"], &vars);
    assert!(text(&status).lines().any(|l| l.starts_with("cache ")) && !text(&status).contains("error"), "status with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH:\n{}", text(&status));

    // A CA that did not sign the engine's certificate: refused, in one line naming the
    // engine, the cause and the file.
    let refused = provisioner(&["status", "wrong-ca"], &[]);
    assert!(!refused.status.success(), "a wrong CA must be refused:\n{}", text(&refused));
    let shown = text(&refused);
    let line = shown.lines().find(|l| l.contains("TLS handshake")).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains(&engine) && line.contains("UnknownIssuer") && line.contains("other-ca.pem") && line.contains("tls.ca of [environments.wrong-ca]"), "{line}");

    // A key file that is not there: named, with the setting that named it.
    let missing = provisioner(&["status", "no-key"], &[]);
    let shown = text(&missing);
    assert!(!missing.status.success(), "{shown}");
    assert!(shown.contains("cannot read the client key") && shown.contains("certs/missing.pem") && shown.contains("tls.key of [environments.no-key]"), "{shown}");

    // A client without TLS is told the engine expects it.
    let plain = provisioner(&["status", "plain"], &[]);
    let shown = text(&plain);
    assert!(!plain.status.success() && shown.contains("expects TLS"), "{shown}");

    let down = provisioner(&["teardown", "tls"], &[]);
    assert!(down.status.success(), "teardown over TLS:\n{}", text(&down));
    let left = docker(&["exec", &name, "docker", "service", "ls", "-q", "--filter", &format!("label=provisioner.project={name}")]);
    assert_eq!(left, "", "no service of the project is left");
}
