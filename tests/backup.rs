//! Backup and restore on the real engine, with the real first-party plugins: data
//! written by real clients into PostgreSQL, Redis and RabbitMQ (and S3, when its
//! plugin backs up) survives `backup` → plain `teardown` (volumes gone) → `run` →
//! `restore`, checked by content digests; a damaged archive and a service that holds
//! data are refused before anything changes; a plugin built against WIT 0.1 (the
//! memcached example as it was released) runs unchanged and is skipped by `backup`;
//! a backup taken while the app moves money between two rows never catches a transfer
//! half done.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use support::{text, Stack, OFFLINE_IMAGES};

/// The last commit before WIT 0.2: its SDK and memcached example are "a plugin
/// built against 0.1.0, as released".
const LEGACY_COMMIT: &str = "ade606f3f77eca5c53e226a27e84fecc50cf1a36";
const MEMCACHED_IMAGE: &str = "provisioner-offline/memcached:1.6";

const SERVICES: &str = r#"
[services.db]
plugin = "postgres"
config = { database = "shop" }

[services.cache]
plugin = "redis"

[services.queue]
plugin = "rabbitmq"
config = { vhost = "shop" }

[services.files]
plugin = "s3"
config = { buckets = ["attachments"] }

[services.sessions]
plugin = "memcached"

[plugins.memcached.grants]
images = ["memcached:1*", "*/memcached:1*"]
publish = [11211]
net_probe = true
"#;

const ROWS: i64 = 10_000;
const KEYS: usize = 10_000;
const TOTAL_BALANCE: i64 = 1_000_000;

/// The memcached example built from the legacy commit's SDK (WIT 0.1.0), in a
/// folder of its own so that nothing of today's tree leaks in.
fn legacy_memcached() -> PathBuf {
    let root = support::root();
    let base = root.join("target/legacy-v0.1");
    let src = base.join("src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).expect("creating target/legacy-v0.1/src");
    let archive = Command::new("git")
        .args(["-C", root.to_str().expect("utf-8 path"), "archive", "--format=tar", LEGACY_COMMIT, "plugins", "wit/v0.1.0", "examples/plugins/memcached"])
        .output()
        .expect("running git");
    assert!(
        archive.status.success(),
        "git archive {LEGACY_COMMIT} failed (a shallow clone? this test needs the commit before WIT 0.2):\n{}",
        text(&archive)
    );
    tar_extract(&archive.stdout, &src);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(src.join("examples/plugins/memcached/Cargo.toml"))
        .env("CARGO_TARGET_DIR", base.join("target"))
        .status()
        .expect("running cargo");
    assert!(status.success(), "building the legacy memcached example failed");
    base.join("target/wasm32-wasip2/release/memcached.wasm")
}

fn tar_extract(bytes: &[u8], into: &Path) {
    let mut child = Command::new("tar").arg("-x").arg("-C").arg(into).stdin(std::process::Stdio::piped()).spawn().expect("tar");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(bytes).expect("feeding tar");
    assert!(child.wait().expect("tar").success(), "tar -x failed");
}

/// The password in a URL `scheme://user:password@host…`.
fn password(url: &str) -> String {
    url.split_once("://").and_then(|(_, rest)| rest.split_once('@')).and_then(|(auth, _)| auth.split_once(':')).map(|(_, p)| p.to_string()).unwrap_or_default()
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "command failed:\n{}", text(&out));
    text(&out)
}

fn refused(out: std::process::Output) -> String {
    assert!(!out.status.success(), "command should have failed:\n{}", text(&out));
    text(&out)
}

fn python(env: &BTreeMap<String, String>, script: &str) -> String {
    let out = Command::new("/usr/bin/python3").args(["-c", script]).envs(env).output().expect("python3");
    assert!(out.status.success(), "python failed:\n{}\n{}", script, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Objects `fill` puts into the bucket (one of them of 20 MiB).
const OBJECTS: usize = 120;

const S3_CLIENT: &str = r#"
import os, boto3, botocore, hashlib, json, random
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
    aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
    config=botocore.config.Config(s3={"addressing_style": "path"}))
bucket = os.environ["S3_BUCKET"]
"#;

/// Every object of the bucket: key, size, md5 of the bytes, content type and user
/// metadata, sorted, hashed; `COUNT:SHA256`.
const S3_DIGEST: &str = r#"
rows = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for o in page.get("Contents", []):
        got = s3.get_object(Bucket=bucket, Key=o["Key"])
        md5 = hashlib.md5()
        for chunk in iter(lambda: got["Body"].read(1 << 20), b""):
            md5.update(chunk)
        rows.append([o["Key"], got["ContentLength"], md5.hexdigest(), got.get("ContentType"), sorted(got["Metadata"].items())])
rows.sort()
print(f"{len(rows)}:" + hashlib.sha256(json.dumps(rows).encode()).hexdigest())
"#;

const AMQP: &str = r#"
import os, pika
conn = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
ch = conn.channel()
"#;

/// A digest of everything the app wrote, per service, read with the app's own
/// credentials from `.env`.
fn digests(env: &BTreeMap<String, String>) -> BTreeMap<&'static str, String> {
    let mut pg = postgres::Client::connect(&env["DATABASE_URL"], postgres::NoTls).expect("app role logs in");
    let items: String = pg
        .query_one("SELECT count(*)::text || ':' || md5(string_agg(id::text || '=' || payload, ',' ORDER BY id)) FROM items", &[])
        .expect("items")
        .get(0);
    let balance: i64 = pg.query_one("SELECT sum(balance)::bigint FROM accounts", &[]).expect("accounts").get(0);

    let client = redis::Client::open(env["REDIS_URL"].as_str()).expect("redis url");
    let mut conn = client.get_connection().expect("redis connects");
    // SCAN, not KEYS: the app's ACL user may not run @dangerous commands.
    let (mut keys, mut cursor) = (Vec::<String>::new(), 0u64);
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg("k:*").arg("COUNT").arg(1000).query(&mut conn).expect("SCAN");
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    let values: Vec<String> = if keys.is_empty() { Vec::new() } else { redis::cmd("MGET").arg(&keys).query(&mut conn).expect("MGET") };
    let pairs: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("{k}={v}")).collect();

    let queue = python(
        env,
        &format!(
            "{AMQP}\n\
             ch.exchange_declare('orders', exchange_type='topic', durable=True, passive=True)\n\
             q = ch.queue_declare('orders.created', durable=True, passive=True)\n\
             ch.basic_publish('orders', 'order.created', b'probe')\n\
             import time\n\
             for _ in range(50):\n\
             \x20   m = ch.basic_get('orders.created', auto_ack=True)\n\
             \x20   if m[0]: break\n\
             \x20   time.sleep(0.1)\n\
             print('orders→orders.created routes' if m[0] and m[2] == b'probe' else 'no route')"
        ),
    );
    let s3 = python(env, &format!("{S3_CLIENT}\n{S3_DIGEST}"));
    BTreeMap::from([
        ("s3", s3),
        ("items", items),
        ("balance", balance.to_string()),
        ("redis", format!("{}:{}", pairs.len(), provisioner::digest::sha256_hex(pairs.join("\n").as_bytes()))),
        ("queue", queue),
    ])
}

fn fill(env: &BTreeMap<String, String>) {
    let mut pg = postgres::Client::connect(&env["DATABASE_URL"], postgres::NoTls).expect("app role logs in");
    pg.batch_execute(&format!(
        "CREATE TABLE items (id int PRIMARY KEY, payload text NOT NULL);
         INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, {ROWS}) AS i;
         CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
         INSERT INTO accounts VALUES (1, {TOTAL_BALANCE}), (2, 0);"
    ))
    .expect("filling the database");

    let client = redis::Client::open(env["REDIS_URL"].as_str()).expect("redis url");
    let mut conn = client.get_connection().expect("redis connects");
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.cmd("SET").arg(format!("k:{i}")).arg(format!("value {i}")).ignore();
    }
    let () = pipe.query(&mut conn).expect("SET pipeline");

    python(
        env,
        &format!(
            "{AMQP}\n\
             ch.exchange_declare('orders', exchange_type='topic', durable=True)\n\
             ch.queue_declare('orders.created', durable=True)\n\
             ch.queue_bind('orders.created', 'orders', routing_key='order.created')"
        ),
    );

    // Keys with spaces, `+`, `&`, `%`, `?`, `#`, non-ASCII and nesting; some with a
    // content type and user metadata; one of 20 MiB, uploaded in parts.
    python(
        env,
        &format!(
            "{S3_CLIENT}\n\
             odd = ['a b+c&d=e', 'per%cent/100%', 'question?hash#', 'ünï/cødé ✓.txt', 'deep/er/still/file', 'semi;colon,comma']\n\
             for i in range({OBJECTS} - 1):\n\
             \x20   key = odd[i] if i < len(odd) else f'objects/{{i:04}}.bin'\n\
             \x20   body = random.Random(i).randbytes(i * 997 % 70000)\n\
             \x20   extra = {{}}\n\
             \x20   if i % 3 == 0: extra['ContentType'] = 'text/plain; charset=utf-8' if i % 2 else 'image/png'\n\
             \x20   if i % 4 == 0: extra['Metadata'] = {{'owner': f'user-{{i}}', 'purpose': 'invoice scan'}}\n\
             \x20   s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)\n\
             import io\n\
             big = random.Random(-1).randbytes(20 * 1024 * 1024 + 123)\n\
             s3.upload_fileobj(io.BytesIO(big), bucket, 'big/video.mp4', ExtraArgs={{'ContentType': 'video/mp4', 'Metadata': {{'camera': 'front door'}}}})"
        ),
    );
}

/// Move money from account 1 to 2, one unit per transaction, until told to stop.
fn transfers(url: String, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pg = postgres::Client::connect(&url, postgres::NoTls).expect("app role logs in");
        while !stop.load(Ordering::Relaxed) {
            pg.batch_execute(
                "BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = 1; \
                 SELECT pg_sleep(0.002); UPDATE accounts SET balance = balance + 1 WHERE id = 2; COMMIT;",
            )
            .expect("transfer");
            done.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn archives(stack: &Stack) -> Vec<PathBuf> {
    let dir = stack.path().join(".provisioner/local/backups");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().contains(".tar.zst")).collect())
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn backup_teardown_run_restore_brings_back_every_row_key_and_binding() {
    let images: Vec<&str> = OFFLINE_IMAGES.iter().map(|(_, i)| *i).collect();
    support::require(&["postgres", "redis", "rabbitmq", "s3"], &images);
    support::require(&[], &[MEMCACHED_IMAGE]);
    let legacy = legacy_memcached();
    let mut images: Vec<(&str, &str)> = OFFLINE_IMAGES.to_vec();
    images.push(("sessions", MEMCACHED_IMAGE));
    let stack = Stack::with_images("backup", &images, SERVICES);
    std::fs::create_dir_all(stack.path().join("plugins")).unwrap();
    std::fs::copy(&legacy, stack.path().join("plugins/memcached.wasm")).unwrap();

    ok(stack.run(&["run", "local"]));
    let inspected = ok(stack.run(&["plugins", "inspect", "memcached"]));
    assert!(
        inspected.contains("provisioner:plugin@0.1.0") && inspected.contains("no backup support (built against WIT 0.1.0)"),
        "the legacy plugin is served as WIT 0.1.0:\n{inspected}"
    );
    let env = stack.dotenv();
    fill(&env);
    let before = digests(&env);
    assert_eq!(before["queue"], "orders→orders.created routes");
    assert!(before["items"].starts_with(&format!("{ROWS}:")), "{before:?}");
    assert!(before["s3"].starts_with(&format!("{OBJECTS}:")), "{before:?}");

    // Backed up while the app keeps moving money.
    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let writer = transfers(env["DATABASE_URL"].clone(), stop.clone(), done.clone());
    let out = ok(stack.run(&["backup", "local"]));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("transfers thread");
    assert!(done.load(Ordering::Relaxed) > 0, "transfers ran during the backup");
    assert!(out.contains("pg_dump") && out.contains("wrote "), "{out}");
    assert!(out.contains("sessions") && out.contains("skipped: no backup support") && out.contains("WIT 0.1.0"), "{out}");
    assert!(out.contains("messages in queues are not included"), "{out}");
    assert!(out.contains("S3 has no snapshot"), "{out}");
    let archive = archives(&stack).pop().expect("an archive under .provisioner/local/backups");

    // Into a stack that holds data: refused, naming each service, changing nothing.
    let text = refused(stack.run(&["restore", "local", archive.to_str().unwrap()]));
    assert!(text.contains("`db` holds") && text.contains("`cache` holds") && text.contains("--force"), "{text}");
    assert!(text.contains("`files` holds") && text.contains(&format!("{OBJECTS} objects")), "{text}");

    // A damaged archive is refused before anything changes, naming what is wrong.
    let bytes = std::fs::read(&archive).unwrap();
    let truncated = stack.path().join("truncated.tar.zst");
    std::fs::write(&truncated, &bytes[..bytes.len() * 3 / 5]).unwrap();
    let text = refused(stack.run(&["restore", "local", truncated.to_str().unwrap(), "--force"]));
    assert!(text.contains("truncated.tar.zst") && (text.contains("damaged") || text.contains("not a provisioner backup")), "{text}");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    for b in &mut flipped[middle..middle + 64] {
        *b ^= 0x5a;
    }
    let corrupted = stack.path().join("corrupted.tar.zst");
    std::fs::write(&corrupted, &flipped).unwrap();
    let text = refused(stack.run(&["restore", "local", corrupted.to_str().unwrap(), "--force"]));
    assert!(text.contains("corrupted.tar.zst") && (text.contains("damaged") || text.contains("not a provisioner backup")), "{text}");
    let unchanged = digests(&env);
    assert_eq!(unchanged["items"], before["items"], "a refused restore changed nothing");

    // Volumes gone, a fresh environment, then the restore.
    ok(stack.run(&["teardown", "local"]));
    assert!(stack.labelled().iter().all(|l| !l.starts_with("volume")), "plain teardown removes the volumes: {:?}", stack.labelled());
    ok(stack.run(&["run", "local"]));
    let env = stack.dotenv();
    let text = ok(stack.run(&["restore", "local", archive.to_str().unwrap()]));
    assert!(text.contains("checked every part") && text.contains("restored db") && text.contains("restored cache"), "{text}");
    let restored_env = stack.dotenv();
    for key in ["DATABASE_URL", "REDIS_URL", "AMQP_URL"] {
        let (before_pw, after_pw) = (password(&env[key]), password(&restored_env[key]));
        assert_eq!(before_pw, after_pw, "{key}: the environment's own credentials stay valid after the restore");
    }
    let after = digests(&restored_env);
    assert_eq!(after["items"], before["items"], "every row back");
    assert_eq!(after["redis"], before["redis"], "every key back");
    assert_eq!(after["queue"], before["queue"], "exchange, queue and binding back, usable with this environment's credentials");
    assert_eq!(after["balance"], TOTAL_BALANCE.to_string(), "no transfer caught half done");
    assert_eq!(after["s3"], before["s3"], "every object back, with its content type and metadata");

    // Restoring S3 alone over changed objects: replaced, and one not in the backup deleted.
    python(
        &restored_env,
        &format!("{S3_CLIENT}\ns3.put_object(Bucket=bucket, Key='stray.txt', Body=b'not in the backup')\ns3.put_object(Bucket=bucket, Key='a b+c&d=e', Body=b'changed', Metadata={{'x': 'y'}})"),
    );
    assert_ne!(digests(&restored_env)["s3"], before["s3"]);
    let text = ok(stack.run(&["restore", "local", archive.to_str().unwrap(), "files", "--force"]));
    assert!(text.contains("restored files"), "{text}");
    assert_eq!(digests(&stack.dotenv())["s3"], before["s3"], "the bucket holds what the backup holds, nothing more");

    // Retention.
    ok(stack.run(&["backup", "local", "cache", "--keep", "1"]));
    assert_eq!(archives(&stack).len(), 1, "--keep 1 leaves the newest archive only");

    // Encrypted at rest: only a recipient's secret key opens it, and nothing changes
    // without one.
    let key = age::x25519::Identity::generate();
    let key_file = stack.path().join("backup.key");
    std::fs::write(&key_file, format!("{}\n", age::secrecy::ExposeSecret::expose_secret(&key.to_string()))).unwrap();
    let out = ok(stack.run(&["backup", "local", "cache", "-r", &key.to_public().to_string()]));
    assert!(out.contains("encrypted (age)"), "{out}");
    let sealed = archives(&stack).pop().expect("the encrypted archive");
    assert!(sealed.to_string_lossy().ends_with(".tar.zst.age"), "{}", sealed.display());
    let listed = ok(stack.run(&["backups", "local"]));
    assert!(listed.contains("cache (redis") && listed.contains("encrypted: pass --identity"), "{listed}");
    let listed = ok(stack.run(&["backups", "local", "-i", key_file.to_str().unwrap()]));
    assert_eq!(listed.matches("cache (redis").count(), 2, "{listed}");
    let mut redis = redis::Client::open(stack.dotenv()["REDIS_URL"].as_str()).unwrap().get_connection().unwrap();
    redis::cmd("SET").arg("k:written-after-the-backup").arg("1").exec(&mut redis).unwrap();
    let text = refused(stack.run(&["restore", "local", sealed.to_str().unwrap(), "--force"]));
    assert!(text.contains("is encrypted (age): pass --identity"), "{text}");
    let text = ok(stack.run(&["restore", "local", sealed.to_str().unwrap(), "--force", "-i", key_file.to_str().unwrap()]));
    assert!(text.contains("restored cache"), "{text}");
    assert_eq!(digests(&stack.dotenv())["redis"], before["redis"], "the encrypted backup's keys, and only those");
}
