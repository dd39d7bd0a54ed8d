//! The four data services together: PostgreSQL, Redis, S3 (Garage) and RabbitMQ,
//! started in parallel by the real binary on the real engine. Each is checked with
//! a real client using the credentials in `.env` (Rust clients for SQL and Redis,
//! Debian's python3-boto3 and python3-pika for S3 and AMQP), inside and outside the
//! app identity's grant.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::{docker, text, Stack, OFFLINE_IMAGES as IMAGES};

const SERVICES: &str = r#"
[services.db]
plugin = "postgres"
config = { database = "shop" }

[services.cache]
plugin = "redis"

[services.files]
plugin = "s3"
config = { buckets = ["attachments"] }

[services.queue]
plugin = "rabbitmq"
config = { vhost = "shop" }
"#;

fn stack(prefix: &str, images: &[(&str, &str)], services: &str) -> Stack {
    support::require(&["postgres", "redis", "s3", "rabbitmq"], &IMAGES.iter().map(|(_, i)| *i).collect::<Vec<_>>());
    for module in ["boto3", "pika"] {
        let ok = Command::new("/usr/bin/python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success());
        assert!(ok, "python3 module {module} is missing: apt-get install python3-{module} (cargo xtask test does)");
    }
    Stack::with_images(prefix, images, services)
}

/// Run a python3 snippet with the `.env` values as environment variables; its
/// stdout, or a panic with its stderr.
fn python(env: &BTreeMap<String, String>, script: &str) -> String {
    let out = Command::new("/usr/bin/python3").args(["-c", script]).envs(env).output().expect("python3");
    assert!(out.status.success(), "python failed:\n{}\n{}", script, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const S3_CLIENT: &str = r#"
import os, boto3, botocore
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
    aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
    config=botocore.config.Config(s3={"addressing_style": "path"}))
"#;

const AMQP_CLIENT: &str = r#"
import os, pika
def connect(url=None):
    return pika.BlockingConnection(pika.URLParameters(url or os.environ["AMQP_URL"]))
"#;

#[test]
fn four_services_in_parallel_least_privileged_and_kept_across_teardown() {
    let stack = stack("four", IMAGES, SERVICES);
    let run = stack.run(&["run", "local"]);
    assert!(run.status.success(), "run failed:\n{}", text(&run));
    let shown = text(&run);
    assert!(shown.contains("pull") && shown.contains("critical path") || shown.contains("ready"), "{shown}");
    let env = stack.dotenv();
    for name in ["DATABASE_URL", "REDIS_URL", "S3_ENDPOINT", "S3_REGION", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "AMQP_URL"] {
        assert!(env.contains_key(name), "{name} missing from .env: {:?}", env.keys());
    }

    // SQL
    let mut pg = postgres::Client::connect(&env["DATABASE_URL"], postgres::NoTls).expect("app role logs in");
    pg.batch_execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('row kept')").unwrap();
    let err = pg.batch_execute("CREATE ROLE intruder").expect_err("no CREATE ROLE");
    assert!(err.as_db_error().is_some_and(|e| e.message().contains("permission denied")), "{err:?}");
    drop(pg);

    // Redis
    let mut redis = redis::Client::open(env["REDIS_URL"].as_str()).unwrap().get_connection().expect("ACL user");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut redis).unwrap();
    assert_eq!(redis::cmd("GET").arg("k").query::<String>(&mut redis).unwrap(), "v");

    // S3: put/get in the app's bucket; another bucket is refused.
    let got = python(
        &env,
        &format!("{S3_CLIENT}\ns3.put_object(Bucket=os.environ['S3_BUCKET'], Key='a.txt', Body=b'object kept')\nprint(s3.get_object(Bucket=os.environ['S3_BUCKET'], Key='a.txt')['Body'].read().decode())"),
    );
    assert_eq!(got, "object kept");
    let container = format!("{}-local-files-server", stack.name);
    docker(&["exec", &container, "/garage", "bucket", "create", "other"]);
    let refused = python(
        &env,
        &format!("{S3_CLIENT}\ntry:\n    s3.put_object(Bucket='other', Key='x', Body=b'x')\n    print('allowed')\nexcept botocore.exceptions.ClientError as e:\n    print('refused', e.response['Error']['Code'])"),
    );
    assert!(refused.starts_with("refused"), "the app key reached another bucket: {refused}");

    // AMQP: publish/consume on the app's vhost; another vhost and `guest` are refused.
    let consumed = python(
        &env,
        &format!("{AMQP_CLIENT}\nc = connect()\nch = c.channel()\nch.queue_declare('q', durable=True)\nch.basic_publish('', 'q', b'hello', pika.BasicProperties(delivery_mode=2))\nch.basic_publish('', 'q', b'message kept', pika.BasicProperties(delivery_mode=2))\nm, p, body = ch.basic_get('q', auto_ack=True)\nprint(body.decode())\nc.close()"),
    );
    assert_eq!(consumed, "hello");
    let amqp = &env["AMQP_URL"];
    let root_vhost = format!("{}/%2F", amqp.rsplit_once('/').unwrap().0);
    let guest = format!("amqp://guest:guest@{}", amqp.split_once('@').unwrap().1);
    for (what, url) in [("another vhost", root_vhost), ("guest", guest)] {
        let outcome = python(
            &env,
            &format!("{AMQP_CLIENT}\ntry:\n    connect('{url}').close()\n    print('allowed')\nexcept Exception as e:\n    print('refused', type(e).__name__)"),
        );
        assert!(outcome.starts_with("refused"), "{what} was allowed: {outcome}");
    }
    // The broker's own tools still work in its container (the plugin's boot settings
    // reach every Erlang VM there, these included), and see the message waiting.
    let queues = docker(&["exec", "-u", "rabbitmq", &format!("{}-local-queue-server", stack.name), "rabbitmqctl", "-q", "list_queues", "-p", "shop", "name", "messages"]);
    assert!(queues.lines().any(|l| l.split_whitespace().eq(["q", "1"])), "rabbitmqctl list_queues: {queues:?}");

    // Keep the volumes across a teardown: the row, the object and the queued message survive.
    let down = stack.run(&["teardown", "local", "--keep-volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    let again = stack.run(&["run", "local"]);
    assert!(again.status.success(), "{}", text(&again));
    let env = stack.dotenv();
    let mut pg = postgres::Client::connect(&env["DATABASE_URL"], postgres::NoTls).unwrap();
    assert_eq!(pg.query_one("SELECT v FROM t", &[]).unwrap().get::<_, String>(0), "row kept");
    drop(pg);
    let got = python(&env, &format!("{S3_CLIENT}\nprint(s3.get_object(Bucket=os.environ['S3_BUCKET'], Key='a.txt')['Body'].read().decode())"));
    assert_eq!(got, "object kept");
    let message = python(
        &env,
        &format!("{AMQP_CLIENT}\nc = connect()\nm, p, body = c.channel().basic_get('q', auto_ack=True)\nprint(body.decode() if body else 'empty')\nc.close()"),
    );
    assert_eq!(message, "message kept");

    let gone = stack.run(&["teardown", "local"]);
    assert!(gone.status.success(), "{}", text(&gone));
    assert_eq!(stack.labelled(), Vec::<String>::new(), "nothing labelled for the project may remain");
}

/// An image that satisfies the rabbitmq plugin's grant but whose server dies at once.
fn broken_rabbitmq_image() -> &'static str {
    const TAG: &str = "provisioner-test/rabbitmq:broken";
    let script = support::root().join("tests/images/busybox.sh");
    let built = Command::new("bash").arg(&script).status().is_ok_and(|s| s.success());
    assert!(built, "{} failed", script.display());
    let dockerfile = "FROM provisioner-test/busybox:latest\nENTRYPOINT [\"sh\", \"-c\", \"echo the broken rabbit exits on purpose; exit 3\"]\n";
    let mut child = Command::new("docker")
        .args(["build", "--network=none", "-q", "-t", TAG, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("docker build");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(dockerfile.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "building {TAG}");
    TAG
}

#[test]
fn a_service_that_cannot_start_fails_alone_with_its_log() {
    let images = [("db", IMAGES[0].1), ("cache", IMAGES[1].1), ("queue", broken_rabbitmq_image()), ("consumer", IMAGES[1].1)];
    let services = "\n[services.db]\nplugin = \"postgres\"\n\n[services.cache]\nplugin = \"redis\"\n\n[services.queue]\nplugin = \"rabbitmq\"\n\n[services.consumer]\nplugin = \"redis\"\ndepends_on = [\"queue\"]\n";
    let stack = stack("failalone", &images, services);
    let out = stack.run(&["run", "local"]);
    assert!(!out.status.success(), "a failed service must fail the run:\n{}", text(&out));
    let shown = text(&out);
    // In `provision` when the engine already reports it down after the start, else in `ready`.
    let failed = ["provision", "ready"].iter().any(|hook| shown.contains(&format!("service `queue` failed in `{hook}`: the server exited (code 3)")));
    assert!(failed, "{shown}");
    assert!(shown.contains("the broken rabbit exits on purpose"), "the container's log tail is shown:\n{shown}");
    assert!(shown.contains("service `consumer` skipped: `queue` did not succeed"), "{shown}");
    let env = stack.dotenv();
    assert!(env.contains_key("DATABASE_URL") && env.contains_key("REDIS_URL"), "siblings are ready: {env:?}");
}
