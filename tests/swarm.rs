//! The example stack on a real multi-node Docker Swarm: three Docker engines in
//! containers (one manager, two workers) and a registry that every node pulls the
//! offline images from, started by `cargo xtask test` (`cargo xtask cluster up`; the
//! addresses are in target/cluster.env). The same provisioner.toml and the same
//! plugins as on one engine, with an environment that says `target = "swarm"`.
//!
//! Checked from outside, as an operator would: `/health` through the load balancer,
//! replicas on several nodes, a ticket round trip, no credential in `docker service
//! inspect`, scaling and a rolling config change under a steady request loop with no
//! failed request, a drained node, data kept across `teardown --keep-volumes`, nothing
//! left on any node after `teardown`, a second project on the cluster untouched, and
//! the faults an operator meets (no swarm, no engine, no node fits, no image, a worker
//! that leaves, a node drained while a run is under way), each named in one line.
//!
//! This sandbox's kernel has no IPVS (so no routing mesh) and its nested engines carry
//! no IPsec: the environment uses host-mode ports and an unencrypted overlay network.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{agent, request, text, under_load};

const BACKEND_IMAGE: &str = "provisioner-example/ticketing-backend:dev";
/// Where the data services and the load balancer are placed, so that another node
/// runs only replicas and can be drained.
const DATA_NODE: &str = "node-3";
const DRAINED_NODE: &str = "node-2";
const PORT: u16 = 3456;

/// The test cluster, as `cargo xtask cluster up` describes it.
struct Cluster {
    manager: String,
    registry: String,
    /// Node address by hostname (`node-1` is the manager).
    nodes: BTreeMap<String, String>,
}

impl Cluster {
    fn from_env_file() -> Cluster {
        let file = support::root().join("target/cluster.env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!("{}: {e}; the Swarm tests need the test cluster: run them with `cargo xtask test` (or `cargo xtask cluster up` first)", file.display())
        });
        let values: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let nodes = values["PROVISIONER_TEST_SWARM_NODES"]
            .split(',')
            .enumerate()
            .map(|(i, ip)| (format!("node-{}", i + 1), ip.to_string()))
            .collect();
        Cluster { manager: values["PROVISIONER_TEST_SWARM"].to_string(), registry: values["PROVISIONER_TEST_SWARM_REGISTRY"].to_string(), nodes }
    }

    /// `docker` against the engine of a node (by hostname) or the manager (`None`).
    fn docker(&self, node: Option<&str>, args: &[&str]) -> String {
        let host = match node {
            Some(node) => format!("tcp://{}:2375", self.nodes[node]),
            None => self.manager.clone(),
        };
        let out = Command::new("docker").args(["-H", &host]).args(args).output().expect("running docker");
        assert!(out.status.success(), "docker -H {host} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Everything of a project on the cluster: services, secrets, configs, networks,
    /// and each node's containers and volumes.
    fn labelled(&self, project: &str) -> Vec<String> {
        let filter = format!("label=provisioner.project={project}");
        let mut all = Vec::new();
        for (kind, args) in [
            ("service", vec!["service", "ls", "-q", "--filter", filter.as_str()]),
            ("secret", vec!["secret", "ls", "-q", "--filter", filter.as_str()]),
            ("config", vec!["config", "ls", "-q", "--filter", filter.as_str()]),
            ("network", vec!["network", "ls", "-q", "--filter", filter.as_str()]),
        ] {
            all.extend(self.docker(None, &args).lines().filter(|l| !l.is_empty()).map(|l| format!("{kind} {l}")));
        }
        for node in self.nodes.keys() {
            for (kind, args) in [
                ("container", vec!["ps", "-aq", "--filter", filter.as_str()]),
                ("volume", vec!["volume", "ls", "-q", "--filter", filter.as_str()]),
            ] {
                all.extend(self.docker(Some(node), &args).lines().filter(|l| !l.is_empty()).map(|l| format!("{kind} {l} on {node}")));
            }
        }
        all
    }
}

/// A project folder whose `swarm` environment runs on the test cluster; torn down
/// (volumes included) when dropped.
struct Project {
    dir: tempfile::TempDir,
    name: String,
}

impl Project {
    fn new(cluster: &Cluster, prefix: &str, services: &str, placement: &str) -> Project {
        let name = support::unique_name(prefix);
        let images = support::OFFLINE_IMAGES
            .iter()
            .copied()
            .chain([("backend", BACKEND_IMAGE), ("web", "provisioner-offline/nginx:1.22"), ("sessions", "provisioner-offline/memcached:1.6")])
            .filter(|(service, _)| services.contains(&format!("[services.{service}]")))
            .map(|(s, i)| format!("{s} = \"{i}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let toml = format!(
            "[project]\nname = \"{name}\"\n\n[environments.swarm]\ntarget = \"swarm\"\nengine = \"{}\"\nmirror = \"{}\"\n\
             routing = \"host\"\nencrypted_network = false\nimages = {{ {images} }}\nplacement = {{ {placement} }}\n\n{services}",
            cluster.manager, cluster.registry
        );
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("provisioner.toml"), toml).expect("writing provisioner.toml");
        Project { dir, name }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn edit(&self, from: &str, to: &str) {
        let file = self.path().join("provisioner.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(from), "provisioner.toml has no `{from}`");
        std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .args(args)
            .current_dir(self.path())
            .env_remove("PROVISIONER_PLUGIN_PATH")
            .env_remove("CI")
            .env_remove("DOCKER_HOST")
            .output()
            .expect("running provisioner")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "provisioner {} failed:\n{}", args.join(" "), text(&out));
        text(&out)
    }

    fn dotenv(&self) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(self.path().join(".env.swarm")).expect(".env.swarm written");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    }

    /// (node, container id) of each running instance of a service, from `status`.
    fn placement_of(&self, service: &str) -> Vec<(String, String)> {
        let status = self.run(&["--json", "status", "swarm"]);
        let statuses: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("status --json: {e}\n{}", text(&status)));
        statuses
            .as_array()
            .expect("a list of services")
            .iter()
            .filter(|s| s["service"] == service)
            .flat_map(|s| s["containers"].as_array().cloned().unwrap_or_default())
            .filter(|c| c["state"] == "running")
            .map(|c| (c["node"].as_str().unwrap_or("?").to_string(), c["name"].as_str().unwrap_or("?").to_string()))
            .collect()
    }

    /// Every generated secret of the project, as the host keeps them.
    fn secrets(&self) -> Vec<String> {
        let mut all = Vec::new();
        for file in std::fs::read_dir(self.path().join(".provisioner/swarm/secrets")).expect("the secrets folder").flatten() {
            let values: BTreeMap<String, String> = serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
            all.extend(values.into_values());
        }
        all
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["teardown", "swarm"]);
    }
}

/// Put a drained node back to work, however the test ends.
struct Undrain<'a>(&'a Cluster, &'a str);

impl Drop for Undrain<'_> {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["-H", &self.0.manager, "node", "update", "--availability", "active", self.1]).output();
    }
}

/// `/health` through the load balancer answers 200 within `within`.
fn healthy(base: &str, within: Duration) -> Result<(), String> {
    support::until_ok(&format!("{base}/health"), within)
}

fn ticketing_services() -> String {
    let file = support::root().join("examples/ticketing/provisioner.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let services = &text[text.find("[services.db]").expect("the example's services")..];
    services.replace("port = 3000", &format!("port = {PORT}")).replace("replicas = 1", "replicas = 3")
}

#[test]
fn the_example_stack_runs_on_a_three_node_swarm() {
    support::require(
        &["postgres", "redis", "s3", "rabbitmq", "container", "loadbalancer"],
        &["provisioner-offline/postgres:15", "provisioner-offline/redis:7", BACKEND_IMAGE],
    );
    let cluster = Cluster::from_env_file();
    let _turn = CLUSTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    assert_eq!(cluster.docker(None, &["node", "ls", "-q"]).lines().count(), 3, "a three-node swarm");

    // Another project on the same cluster, which nothing below may touch: Redis and
    // the third-party Memcached example, unmodified.
    let bystander = Project::new(
        &cluster,
        "bystander",
        "[services.cache]\nplugin = \"redis\"\n\n[services.sessions]\nplugin = \"memcached\"\n\n\
         [plugins.memcached.grants]\nimages = [\"memcached:1*\", \"*/memcached:1*\"]\npublish = [11211]\nnet_probe = true\n",
        // Off the node that is drained below: a drain reschedules on purpose.
        &format!("cache = \"node.hostname=={DATA_NODE}\", sessions = \"node.hostname=={DATA_NODE}\""),
    );
    std::fs::create_dir_all(bystander.path().join("plugins")).unwrap();
    std::fs::copy(support::example_plugin("memcached"), bystander.path().join("plugins/memcached.wasm")).unwrap();
    bystander.ok(&["run", "swarm"]);
    let bystander_ids = || [container_ids(&cluster, &bystander.name, "cache"), container_ids(&cluster, &bystander.name, "sessions")];
    let bystander_before = bystander_ids();
    assert!(bystander_before.iter().all(|ids| ids.len() == 1), "{bystander_before:?}");

    let on_data_node = format!("\"node.hostname=={DATA_NODE}\"");
    let placement = ["db", "cache", "files", "queue", "web"].map(|s| format!("{s} = {on_data_node}")).join(", ");
    let stack = Project::new(&cluster, "swarmtick", &ticketing_services(), &placement);
    let first = stack.ok(&["run", "swarm"]);
    assert!(first.contains("done in"), "{first}");

    let base = stack.dotenv().get("URL").cloned().expect("the load balancer's URL in .env.swarm");
    assert_eq!(base, format!("http://{}:{PORT}", cluster.nodes[DATA_NODE]), "host-mode port on the load balancer's node");
    healthy(&base, Duration::from_secs(30)).unwrap_or_else(|e| panic!("/health through the load balancer: {e}"));

    // The replicas run on more than one node; the pinned services where placed.
    let replicas = stack.placement_of("backend");
    assert_eq!(replicas.len(), 3, "{replicas:?}");
    let nodes: BTreeSet<&str> = replicas.iter().map(|(n, _)| n.as_str()).collect();
    assert!(nodes.len() >= 2, "backend replicas on at least two nodes: {replicas:?}");
    for service in ["db", "cache", "files", "queue", "web"] {
        assert_eq!(stack.placement_of(service).iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), [DATA_NODE], "{service}");
    }

    // A ticket round trip: a row, an object, a cache entry, an event.
    let agent = agent();
    let ticket = serde_json::json!({ "title": "printer on fire", "attachment": "smoke everywhere" });
    let (status, _, body) = request(&agent, "POST", &format!("{base}/tickets"), Some(ticket)).unwrap();
    assert_eq!(status, 201, "POST /tickets: {body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_i64().expect("an id");
    let ticket_url = format!("{base}/tickets/{id}");
    let (status, _, body) = request(&agent, "GET", &ticket_url, None).unwrap();
    assert_eq!(status, 200, "GET the ticket back: {body}");
    let read: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((read["title"].as_str(), read["attachment"].as_str()), (Some("printer on fire"), Some("smoke everywhere")), "{body}");

    // The logs of every task, read from the node it runs on.
    let logs = stack.ok(&["logs", "swarm", "backend"]);
    assert!(logs.lines().any(|l| l.starts_with("backend/app-") && l.contains("/tickets")), "the request's log line:\n{logs}");

    // No generated credential in any service's definition.
    let services = cluster.docker(None, &["service", "ls", "-q", "--filter", &format!("label=provisioner.project={}", stack.name)]);
    let mut args = vec!["service", "inspect"];
    args.extend(services.lines());
    let inspected = cluster.docker(None, &args);
    let secrets = stack.secrets();
    assert!(secrets.len() >= 4, "the services' generated secrets: {}", secrets.len());
    for secret in &secrets {
        assert!(!inspected.contains(secret.as_str()), "a generated secret is in `docker service inspect`");
    }
    let s3_key = &stack.dotenv()["S3_SECRET_ACCESS_KEY"];
    assert!(!inspected.contains(s3_key.as_str()), "the S3 secret key is in `docker service inspect`");

    // Scale out and in under a steady request loop: no request fails.
    let (sent, failures) = under_load(&ticket_url, || {
        stack.ok(&["scale", "swarm", "backend=5"]);
    });
    assert_eq!(stack.placement_of("backend").len(), 5);
    assert!(failures.is_empty(), "{} of {sent} requests failed while scaling 3 → 5: {failures:#?}", failures.len());
    let (sent, failures) = under_load(&ticket_url, || {
        stack.ok(&["scale", "swarm", "backend=2"]);
    });
    assert_eq!(stack.placement_of("backend").len(), 2);
    assert!(failures.is_empty(), "{} of {sent} requests failed while scaling 5 → 2: {failures:#?}", failures.len());

    // A config change rolls the replicas (start-first, health-gated) with no failed request.
    let before: BTreeSet<String> = stack.placement_of("backend").into_iter().map(|(n, c)| format!("{n}/{c}")).collect();
    let ids_before = container_ids(&cluster, &stack.name, "backend");
    stack.edit("health_path = \"/health\"\n", "health_path = \"/health\"\nstop_timeout_secs = 9\n");
    let (sent, failures) = under_load(&ticket_url, || {
        stack.ok(&["run", "swarm"]);
    });
    // The replaced tasks' containers finish their requests and stop on their own time.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ids_after = loop {
        let ids = container_ids(&cluster, &stack.name, "backend");
        if ids.len() <= 2 || Instant::now() >= deadline {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(ids_after.len(), 2, "still two replicas: {before:?}");
    assert!(ids_before.is_disjoint(&ids_after), "every replica was replaced: {ids_before:?} → {ids_after:?}");
    assert!(failures.is_empty(), "{} of {sent} requests failed during the rolling update: {failures:#?}", failures.len());
    assert!(sent >= 10, "the loop ran through the update ({sent} requests)");

    // Drain a node that runs only replicas: they move, the app stays healthy.
    stack.ok(&["scale", "swarm", "backend=3"]);
    let _undrain = Undrain(&cluster, DRAINED_NODE);
    cluster.docker(None, &["node", "update", "--availability", "drain", DRAINED_NODE]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let moved = loop {
        let now = stack.placement_of("backend");
        if now.len() == 3 && now.iter().all(|(n, _)| n != DRAINED_NODE) {
            break now;
        }
        assert!(Instant::now() < deadline, "the replicas did not leave the drained {DRAINED_NODE}: {now:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    healthy(&base, Duration::from_secs(30)).unwrap_or_else(|e| panic!("/health after draining {DRAINED_NODE} ({moved:?}): {e}"));
    cluster.docker(None, &["node", "update", "--availability", "active", DRAINED_NODE]);

    // Keep the volumes across a teardown: the row, the object, the key, the message.
    let queue_node = stack.placement_of("queue")[0].0.clone();
    let queued = |cluster: &Cluster| {
        let container = cluster.docker(Some(&queue_node), &["ps", "-q", "--filter", &format!("label=provisioner.project={}", stack.name), "--filter", "label=provisioner.service=queue"]);
        cluster.docker(Some(&queue_node), &["exec", "-u", "rabbitmq", &container, "rabbitmqctl", "-q", "list_queues", "-p", "ticketing", "name", "messages"])
    };
    let events_before = queued(&cluster);
    assert!(events_before.lines().any(|l| l.starts_with("ticket-events") && !l.ends_with(" 0")), "the ticket's event waits: {events_before:?}");
    let down = stack.ok(&["teardown", "swarm", "--keep-volumes"]);
    assert!(down.contains("volumes kept"), "{down}");
    let left = cluster.labelled(&stack.name);
    let records: Vec<String> = cluster
        .docker(None, &["config", "ls", "-q", "--filter", &format!("label=provisioner.project={}", stack.name), "--filter", "label=provisioner.volumes-node"])
        .lines()
        .map(|id| format!("config {id}"))
        .collect();
    assert!(left.iter().any(|l| l.starts_with("volume ")), "the volumes stay: {left:?}");
    assert!(
        left.iter().all(|l| l.starts_with("volume ") || records.contains(l)),
        "only the volumes stay, and the records of which node holds them: {left:?}"
    );
    stack.ok(&["run", "swarm"]);
    healthy(&base, Duration::from_secs(30)).unwrap_or_else(|e| panic!("/health after the rerun: {e}"));
    let (status, _, body) = request(&agent, "GET", &ticket_url, None).unwrap();
    assert_eq!(status, 200, "the ticket after teardown --keep-volumes: {body}");
    let read: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(read["attachment"].as_str(), Some("smoke everywhere"), "the object is kept: {body}");
    assert_eq!(read["cached"].as_bool(), Some(true), "the cache entry is kept (Redis appends to its volume): {body}");
    assert_eq!(queued(&cluster), events_before, "the queued event is kept");

    // A plain teardown leaves nothing of the project on any node.
    let gone = stack.ok(&["teardown", "swarm"]);
    assert!(gone.contains("volumes removed"), "{gone}");
    assert_eq!(cluster.labelled(&stack.name), Vec::<String>::new(), "nothing of the project may remain");

    // The other project never noticed.
    assert_eq!(bystander_ids(), bystander_before, "the bystander's containers are the same ones");
    bystander.ok(&["status", "swarm"]);
}

/// Ids of a service's running containers, on every node.
fn container_ids(cluster: &Cluster, project: &str, service: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for node in cluster.nodes.keys() {
        let ids = cluster.docker(
            Some(node),
            &["ps", "-q", "--filter", &format!("label=provisioner.project={project}"), "--filter", &format!("label=provisioner.service={service}")],
        );
        all.extend(ids.lines().map(str::to_string));
    }
    all
}

/// The tests share one cluster; they take turns, so that one's load is not the
/// other's failed request.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn failure(project: &Project, args: &[&str]) -> String {
    let out = project.run(args);
    assert!(!out.status.success(), "provisioner {} should have failed:\n{}", args.join(" "), text(&out));
    text(&out)
}

#[test]
fn swarm_faults_name_the_service_the_cause_and_the_fix() {
    support::require(&["redis"], &["provisioner-offline/redis:7"]);
    let cluster = Cluster::from_env_file();
    let _turn = CLUSTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let services = "[services.cache]\nplugin = \"redis\"\n\n[services.sessions]\nplugin = \"memcached\"\n\n\
                    [plugins.memcached.grants]\nimages = [\"memcached:1*\", \"*/memcached:1*\"]\npublish = [11211]\nnet_probe = true\n";
    let project = Project::new(&cluster, "swarmfault", services, "sessions = \"node.labels.zone==nowhere\"");
    std::fs::create_dir_all(project.path().join("plugins")).unwrap();
    std::fs::copy(support::example_plugin("memcached"), project.path().join("plugins/memcached.wasm")).unwrap();

    // Not a swarm, and no engine at all: named with the fix, before anything starts.
    project.edit(&format!("engine = \"{}\"", cluster.manager), "engine = \"unix:///var/run/docker.sock\"");
    let shown = failure(&project, &["run", "swarm"]);
    assert!(shown.contains("is not part of a swarm: run `docker swarm init`"), "{shown}");
    project.edit("engine = \"unix:///var/run/docker.sock\"", "engine = \"tcp://127.0.0.1:9\"");
    let shown = failure(&project, &["run", "swarm"]);
    assert!(shown.contains("cannot reach the Docker engine at tcp://127.0.0.1:9"), "{shown}");
    project.edit("engine = \"tcp://127.0.0.1:9\"", &format!("engine = \"{}\"", cluster.manager));

    // A placement no node satisfies: that service fails, named, with the fix; the
    // other one is ready. Fixed, a rerun converges.
    let shown = failure(&project, &["run", "swarm"]);
    let line = shown.lines().find(|l| l.contains("service `sessions` cannot run on the swarm")).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains("no suitable node") && line.contains("placement"), "{line}");
    assert!(shown.lines().any(|l| l.starts_with("cache ") && l.contains("ready")), "the other service is unaffected:\n{shown}");
    project.edit("sessions = \"node.labels.zone==nowhere\"", "");
    project.ok(&["run", "swarm"]);

    // An image missing from the registry the nodes pull from.
    project.edit("cache = \"provisioner-offline/redis:7\"", "cache = \"provisioner-offline/redis:missing\"");
    let shown = failure(&project, &["run", "swarm"]);
    let line = shown.lines().find(|l| l.contains("service `cache`: the swarm cannot pull")).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains("redis:missing") && line.contains("manifest unknown") && line.contains("--push"), "{line}");
    assert!(shown.lines().any(|l| l.starts_with("sessions ") && l.contains("ready")), "the other service is unaffected:\n{shown}");
    project.edit("cache = \"provisioner-offline/redis:missing\"", "cache = \"provisioner-offline/redis:7\"");
    project.ok(&["run", "swarm"]);
    project.ok(&["teardown", "swarm"]);
    assert_eq!(cluster.labelled(&project.name), Vec::<String>::new());
}

/// Put a worker that left back in the swarm, and drop the entry it left behind (a
/// node that joins again gets a new id), however the test ends.
struct Rejoin<'a>(&'a Cluster, &'a str);

/// `run` fails for `service` alone, in one line naming `node`, which holds its volumes,
/// as away; `other` comes up. That line.
fn waits_for_its_node(project: &Project, service: &str, node: &str, other: &str) -> String {
    let shown = failure(project, &["run", "swarm"]);
    let line = shown.lines().find(|l| l.contains(&format!("service `{service}` cannot run on the swarm"))).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains(&format!("its volumes are on {node}, which is down or has left the swarm")), "{line}");
    assert!(shown.lines().any(|l| l.starts_with(&format!("{other} ")) && l.contains("ready")), "the other service is unaffected:\n{shown}");
    line.to_string()
}

impl Rejoin<'_> {
    /// The node leaves the swarm; back once the manager counts it down (within its
    /// heartbeats).
    fn leave(&self) {
        let Rejoin(cluster, node) = *self;
        cluster.docker(Some(node), &["swarm", "leave"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.docker(None, &["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).lines().any(|l| l == format!("{node} Down")) {
            assert!(Instant::now() < deadline, "the manager still counts {node} as up");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn rejoin(&self) -> Result<(), String> {
        let Rejoin(cluster, node) = *self;
        let run = |host: &str, args: &[&str]| -> Result<String, String> {
            let out = Command::new("docker").args(["-H", host]).args(args).output().map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("docker -H {host} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let worker = format!("tcp://{}:2375", cluster.nodes[node]);
        if run(&worker, &["info", "--format", "{{.Swarm.LocalNodeState}}"])? != "active" {
            let token = run(&cluster.manager, &["swarm", "join-token", "-q", "worker"])?;
            run(&worker, &["swarm", "join", "--token", &token, &format!("{}:2377", cluster.nodes["node-1"])])?;
        }
        for line in run(&cluster.manager, &["node", "ls", "--format", "{{.ID}} {{.Hostname}} {{.Status}}"])?.lines() {
            if let [id, host, "Down"] = line.split_whitespace().collect::<Vec<_>>()[..] {
                if host == node {
                    run(&cluster.manager, &["node", "rm", id])?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for Rejoin<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.rejoin() {
            eprintln!("could not put {} back in the swarm: {e}; `cargo xtask cluster down && cargo xtask cluster up` rebuilds it", self.1);
        }
    }
}

#[test]
fn a_worker_that_leaves_stops_only_the_service_whose_volumes_it_holds() {
    support::require(&["redis"], &["provisioner-offline/redis:7"]);
    let cluster = Cluster::from_env_file();
    let _turn = CLUSTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    const LEAVING: &str = "node-2";
    let services = "[services.cache]\nplugin = \"redis\"\n\n[services.sessions]\nplugin = \"memcached\"\n\n\
                    [plugins.memcached.grants]\nimages = [\"memcached:1*\", \"*/memcached:1*\"]\npublish = [11211]\nnet_probe = true\n";
    let placement = format!("cache = \"node.hostname=={LEAVING}\", sessions = \"node.hostname=={DATA_NODE}\"");
    let project = Project::new(&cluster, "swarmleave", services, &placement);
    std::fs::create_dir_all(project.path().join("plugins")).unwrap();
    std::fs::copy(support::example_plugin("memcached"), project.path().join("plugins/memcached.wasm")).unwrap();
    project.ok(&["run", "swarm"]);
    assert_eq!(project.placement_of("cache").iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), [LEAVING]);

    // The worker holding the cache's volume leaves; the manager notices it within
    // its heartbeats.
    let rejoin = Rejoin(&cluster, LEAVING);
    rejoin.leave();

    // The cache cannot run without it: one line with the service, the node and the
    // fix, not an empty cache elsewhere; the other service is unaffected.
    let line = waits_for_its_node(&project, "cache", LEAVING, "sessions");
    assert!(line.contains("docker swarm join"), "{line}");

    // Back in the swarm (under a new node id), a rerun converges: the cache follows
    // its volume back to the node.
    rejoin.rejoin().unwrap_or_else(|e| panic!("{e}"));
    project.ok(&["run", "swarm"]);
    assert_eq!(project.placement_of("cache").iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), [LEAVING]);

    // With its services removed and its volumes kept, nothing pins the cache any
    // more, and without a placement any node would do: the record of where its
    // volumes are still stops it from starting empty elsewhere while the node is away.
    project.ok(&["teardown", "--keep-volumes", "swarm"]);
    project.edit(&format!("cache = \"node.hostname=={LEAVING}\", "), "");
    rejoin.leave();
    waits_for_its_node(&project, "cache", LEAVING, "sessions");
    rejoin.rejoin().unwrap_or_else(|e| panic!("{e}"));
    project.ok(&["run", "swarm"]);
    assert_eq!(project.placement_of("cache").iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), [LEAVING], "back on its volumes");
    project.ok(&["teardown", "swarm"]);
    assert_eq!(cluster.labelled(&project.name), Vec::<String>::new());
    assert_eq!(cluster.docker(None, &["node", "ls", "-q"]).lines().count(), 3, "the swarm has its three nodes again");
}

/// The node holding a service's volumes is taken out of service while a run is under
/// way: after the run has started, before that service's turn. The run names the
/// service, the node and the fix in one line; the service it waited for comes up; once
/// the node is back, a rerun converges onto it. A drain rather than a leave: the
/// manager sees a drain at once, while it sees a leave only when the node's heartbeats
/// stop, so only a drain lands in the same place in every run.
#[test]
fn a_node_taken_out_during_a_run_fails_only_the_service_whose_volumes_it_holds() {
    support::require(&["redis", "container"], &["provisioner-offline/redis:7"]);
    let cluster = Cluster::from_env_file();
    let _turn = CLUSTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    const HOLDER: &str = "node-2";
    // `gate` is ready about 10 s after it starts, and `cache` waits for it: the node is
    // drained in that window.
    let services = "[services.gate]\nplugin = \"container\"\n\n[services.gate.config]\nimage = \"provisioner-offline/redis:7\"\n\
                    command = \"sleep 10 && touch /tmp/up && exec sleep 1d\"\nport = 6379\nhealth_path = \"\"\n\
                    health_command = [\"test\", \"-f\", \"/tmp/up\"]\n\n[services.cache]\nplugin = \"redis\"\ndepends_on = [\"gate\"]\n";
    let placement = format!("cache = \"node.hostname=={HOLDER}\", gate = \"node.hostname=={DATA_NODE}\"");
    let project = Project::new(&cluster, "swarmdrain", services, &placement);
    project.ok(&["run", "swarm"]);
    assert_eq!(project.placement_of("cache").iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), [HOLDER]);
    // Ready means its health command passed, as on one engine.
    let gate = format!("{}-swarm-gate-app", project.name);
    let status = cluster.docker(Some(DATA_NODE), &["ps", "--filter", &format!("label=com.docker.swarm.service.name={gate}"), "--format", "{{.Status}}"]);
    assert!(status.ends_with("(healthy)"), "gate is ready only once healthy: {status}");
    project.ok(&["teardown", "--keep-volumes", "swarm"]);

    let mut run = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["run", "swarm"])
        .current_dir(project.path())
        .env_remove("PROVISIONER_PLUGIN_PATH")
        .env_remove("CI")
        .env_remove("DOCKER_HOST")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting provisioner");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.docker(None, &["service", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == gate) {
        assert!(Instant::now() < deadline, "the run never made {gate}");
        assert!(run.try_wait().expect("waiting for provisioner").is_none(), "the run ended before {gate} was made");
        std::thread::sleep(Duration::from_millis(200));
    }
    let undrain = Undrain(&cluster, HOLDER);
    cluster.docker(None, &["node", "update", "--availability", "drain", HOLDER]);
    let out = run.wait_with_output().expect("waiting for provisioner");
    let shown = text(&out);
    assert!(!out.status.success(), "the run should have failed:\n{shown}");
    let line = shown.lines().find(|l| l.contains("service `cache` cannot run on the swarm")).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains(&format!("its volumes are on {HOLDER}, which is set to `drain`")), "{line}");
    assert!(line.contains(&format!("docker node update --availability active {HOLDER}")), "{line}");
    assert!(shown.lines().any(|l| l.starts_with("gate ") && l.contains("ready")), "the service it waited for is unaffected:\n{shown}");

    // Back in service, a rerun converges: the cache starts on the node with its volume.
    drop(undrain);
    project.ok(&["run", "swarm"]);
    assert_eq!(project.placement_of("cache").iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), [HOLDER]);
    project.ok(&["teardown", "swarm"]);
    assert_eq!(cluster.labelled(&project.name), Vec::<String>::new());
}
