//! A throwaway OCI registry for tests and benchmarks: Debian's `docker-registry`
//! (distribution 2.8; `tests/images/registry`, built by `cargo xtask images` or here),
//! one container per use on a free loopback port, removed with its storage on drop.

use std::process::Command;

const REGISTRY_IMAGE: &str = "provisioner-test/registry:dev";

/// A registry container of this test, removed (with its storage) when dropped.
pub struct Registry {
    pub container: String,
    /// `127.0.0.1:PORT`, as references name it.
    pub address: String,
}

impl Registry {
    /// Plain, or with htpasswd auth for `user`/`password`.
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        let present = Command::new("docker").args(["image", "inspect", REGISTRY_IMAGE]).output().is_ok_and(|o| o.status.success());
        if !present {
            // The image xtask builds for the test swarm (tests/images/registry).
            let out = Command::new("docker")
                .args(["build", "-q", "-t", REGISTRY_IMAGE])
                .arg(super::root().join("tests/images/registry"))
                .output()
                .expect("docker build");
            assert!(out.status.success(), "building {REGISTRY_IMAGE} needs provisioner-offline/base (cargo xtask images):\n{}", super::text(&out));
        }
        let container = super::unique_name("provisioner-oci-registry");
        let mut create = vec!["create", "--name", container.as_str(), "-p", "127.0.0.1::5000", "--label", "provisioner.test=oci"];
        create.push(REGISTRY_IMAGE);
        assert!(!super::docker(&create).is_empty(), "docker create {container} failed");
        let mut registry = Registry { container, address: String::new() };
        if let Some((user, password)) = auth {
            let dir = tempfile::tempdir().unwrap();
            let hash = bcrypt::hash(password, 5).unwrap();
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
            let base = std::fs::read_to_string(super::root().join("tests/images/registry/config.yml")).unwrap();
            let config = format!("{base}auth:\n  htpasswd:\n    realm: provisioner-test\n    path: /etc/docker/registry/htpasswd\n");
            std::fs::write(dir.path().join("config.yml"), config).unwrap();
            for file in ["htpasswd", "config.yml"] {
                let from = dir.path().join(file);
                let to = format!("{}:/etc/docker/registry/{file}", registry.container);
                let out = Command::new("docker").args(["cp", from.to_str().unwrap(), &to]).output().unwrap();
                assert!(out.status.success(), "docker cp: {}", super::text(&out));
            }
        }
        super::docker(&["start", &registry.container]);
        let port = super::docker(&["port", &registry.container, "5000/tcp"]);
        let port = port.lines().next().and_then(|l| l.rsplit(':').next()).unwrap_or_else(|| panic!("no port for {}", registry.container));
        registry.address = format!("127.0.0.1:{port}");
        // Ready when /v2/ answers at all (401 with auth on).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while ureq::get(&format!("http://{}/v2/", registry.address)).call().is_err_and(|e| matches!(e, ureq::Error::Transport(_))) {
            assert!(std::time::Instant::now() < deadline, "registry {} did not answer", registry.container);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        registry
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("oci://{}/{repo_tag}", self.address)
    }

    /// Overwrite one byte of the blob `sha256` in the registry's storage, as someone
    /// with access to the registry's disk (or a bad mirror) could.
    pub fn tamper(&self, sha256: &str) {
        let data = format!("/var/lib/docker-registry/docker/registry/v2/blobs/sha256/{}/{sha256}/data", &sha256[..2]);
        let out = Command::new("docker")
            .args(["exec", &self.container, "sh", "-c", &format!("printf X | dd of={data} bs=1 seek=200 conv=notrunc 2>/dev/null")])
            .output()
            .unwrap();
        assert!(out.status.success(), "tampering: {}", super::text(&out));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.container]).output();
    }
}

/// A folder for DOCKER_CONFIG, with a login for `registry` when given.
pub fn docker_config(login: Option<(&str, &str, &str)>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some((registry, user, password)) = login {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({ "auths": { registry: { "auth": auth } } });
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    }
    dir
}

