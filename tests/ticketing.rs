//! The example stack of examples/ticketing end to end, as its README shows it: the four
//! data services, the backend app (a locally built image) and nginx in front, on the
//! real engine. Checked from outside, the way a user would: `/health` through the
//! load balancer, a ticket stored and read back, scaling that shows distinct
//! replicas, a config change and a scale-down under a steady request loop with no
//! failed request, and nothing left after teardown.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{agent, docker, request, text, under_load, Stack};

const BACKEND_IMAGE: &str = "provisioner-example/ticketing-backend:dev";

/// The backend instances running, each as `docker ps --format FORMAT` shows it.
fn backend(stack: &Stack, format: &str) -> BTreeSet<String> {
    let filter = format!("label=provisioner.project={}", stack.name);
    docker(&["ps", "--format", format, "--filter", &filter, "--filter", "label=provisioner.service=backend"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn backend_containers(stack: &Stack) -> BTreeSet<String> {
    backend(stack, "{{.Names}}")
}

fn backend_ids(stack: &Stack) -> BTreeSet<String> {
    backend(stack, "{{.ID}}")
}

#[test]
fn the_example_stack_serves_scales_and_rolls_without_dropping_a_request() {
    support::require(
        &["postgres", "redis", "s3", "rabbitmq", "container", "loadbalancer"],
        &[
            "provisioner-offline/postgres:15",
            "provisioner-offline/redis:7",
            "provisioner-offline/garage:2.5.0",
            "provisioner-offline/rabbitmq:3",
            "provisioner-offline/nginx:1.22",
            BACKEND_IMAGE,
        ],
    );
    let stack = Stack::from_file("ticketing", &support::root().join("examples/ticketing/provisioner.toml"));
    // Any free host port, so test runs cannot collide with each other or a demo.
    stack.edit("port = 3000", "port = 0");

    // The committed lockfile, held to: the plugins built here are the ones it pins
    // (they build to the same bytes anywhere), so a plugin changed without a reviewed
    // lockfile change fails here.
    std::fs::copy(support::root().join("examples/ticketing/provisioner.lock"), stack.path().join("provisioner.lock")).unwrap();
    let run = stack.run(&["run", "local", "--locked"]);
    assert!(
        run.status.success(),
        "run --locked failed (if a first-party plugin changed on purpose, run `provisioner run local` in examples/ticketing and commit its provisioner.lock):\n{}",
        text(&run)
    );
    let base = stack.dotenv().get("URL").cloned().expect("the load balancer's URL in .env");
    let agent = agent();

    let (status, replica, body) = request(&agent, "GET", &format!("{base}/health"), None).unwrap();
    assert_eq!(status, 200, "/health through the load balancer: {body}");
    assert!(!replica.is_empty(), "every answer names its replica");

    // One real thing with each service: a row, an object, a cache entry, an event.
    let ticket = serde_json::json!({ "title": "printer on fire", "attachment": "smoke everywhere" });
    let (status, _, body) = request(&agent, "POST", &format!("{base}/tickets"), Some(ticket)).unwrap();
    assert_eq!(status, 201, "POST /tickets: {body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_i64().expect("an id");
    let ticket_url = format!("{base}/tickets/{id}");
    let (status, _, body) = request(&agent, "GET", &ticket_url, None).unwrap();
    assert_eq!(status, 200, "GET the ticket back: {body}");
    let read: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(read["title"], "printer on fire", "{body}");
    assert_eq!(read["attachment"], "smoke everywhere", "the attachment comes back from S3: {body}");

    // Scale out: three distinct replicas answer through the one port.
    let scaled = stack.run(&["scale", "local", "backend=3"]);
    assert!(scaled.status.success(), "scale to 3 failed:\n{}", text(&scaled));
    assert_eq!(backend_containers(&stack).len(), 3);
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 3 && Instant::now() < deadline {
        let (status, replica, body) = request(&agent, "GET", &ticket_url, None).unwrap();
        assert_eq!(status, 200, "{body}");
        seen.insert(replica);
    }
    assert_eq!(seen.len(), 3, "three replicas should answer; saw {seen:?}");
    let status = stack.run(&["status", "local"]);
    assert!(status.status.success(), "status after scaling:\n{}", text(&status));

    // A config change rolls through the replicas, one at a time, while requests flow.
    let before = backend_ids(&stack);
    stack.edit("health_path = \"/health\"\n", "health_path = \"/health\"\nstop_timeout_secs = 9\n");
    let (sent, failures) = under_load(&ticket_url, || {
        let rolled = stack.run(&["run", "local"]);
        assert!(rolled.status.success(), "the rolling run failed:\n{}", text(&rolled));
    });
    let after = backend_ids(&stack);
    assert_eq!(after.len(), 3, "still three replicas");
    assert!(before.is_disjoint(&after), "every replica was replaced: {before:?} → {after:?}");
    assert!(failures.is_empty(), "{} of {sent} requests failed during the rollout: {failures:#?}", failures.len());
    assert!(sent >= 10, "the loop ran through the rollout ({sent} requests)");

    // Scale in under load: no request fails.
    let (sent, failures) = under_load(&ticket_url, || {
        let down = stack.run(&["scale", "local", "backend=1"]);
        assert!(down.status.success(), "scale to 1 failed:\n{}", text(&down));
    });
    assert!(failures.is_empty(), "{} of {sent} requests failed while scaling 3 → 1: {failures:#?}", failures.len());
    assert!(sent >= 5, "the loop ran through the scale-down ({sent} requests)");
    assert_eq!(backend_containers(&stack).len(), 1);

    let down = stack.run(&["teardown", "local"]);
    assert!(down.status.success(), "teardown failed:\n{}", text(&down));
    assert_eq!(stack.labelled(), Vec::<String>::new(), "nothing of the project is left");
}

#[test]
fn scale_refuses_what_it_cannot_do_and_names_it() {
    support::require(&["postgres", "container"], &[]);
    let stack = Stack::with_images(
        "scale-bad",
        &[],
        "[services.db]\nplugin = \"postgres\"\n\n[services.api]\nplugin = \"container\"\nconfig = { image = \"x:1\", port = 80 }\n",
    );
    for (args, says) in [
        (vec!["scale", "local", "nope=2"], "no service `nope`"),
        (vec!["scale", "local", "db=2"], "runs a single instance"),
        (vec!["scale", "local", "api=0"], "1 to 64"),
        (vec!["scale", "local", "api"], "SERVICE=N"),
    ] {
        let out = stack.run(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(text(&out).contains(says), "{args:?} should say `{says}`:\n{}", text(&out));
    }
    assert!(stack.labelled().is_empty(), "a refused scale starts nothing");
}
