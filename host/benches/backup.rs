//! Backup and restore throughput against doing it by hand, in one run.
//!
//! PostgreSQL:
//! B: `pg_dump -Fc` run by hand in the same container, its output to a host file;
//! P: `provisioner backup local db -o FILE` (readiness check, the plugin's `pg_dump -Fc`
//!    streamed into the archive's parts, packed with zstd);
//! then R: `pg_restore --clean` by hand from B's file, against
//! Q: `provisioner restore local FILE --force` (digests checked, the plugin's restore in
//!    one transaction, then a `run` that checks every service).
//! A `CHECKPOINT` before each leg; the restores run R Q Q R and each side is the mean
//! of its two, so neither pays for the other's writes.
//!
//! S3 (Garage): a bucket of small, medium and large objects with content types and
//! metadata;
//! B: a plain S3 client (boto3) gets every object, with its metadata, into a folder;
//! P: `provisioner backup local files -o FILE`;
//! R: the same client puts every object back from that folder;
//! Q: `provisioner restore local FILE --force`.
//!
//! Prints each time, the data's size, B/P and R/Q (≥ 0.8 is the target: provisioner at
//! 80 % of the by-hand throughput or better) and the peak RSS of the provisioner process.
//! `BACKUP_BENCH_MB` sets the table's size (default 1024), `S3_BENCH_MB` the bucket's
//! (default 256). Needs what `cargo xtask test` prepares; run it with
//! `cargo bench --bench backup` (both), `-- postgres` or `-- s3`.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

const POSTGRES: &str = r#"
[services.db]
plugin = "postgres"
config = { database = "shop" }
"#;

const S3: &str = r#"
[services.files]
plugin = "s3"
config = { buckets = ["attachments"] }
"#;

/// Run the provisioner binary in `stack`'s folder; its time and peak RSS, and the time the restore hook itself took when it is a restore
/// (the rest is checking the archive and the closing `run`).
fn provisioner(stack: &support::Stack, args: &[&str]) -> (Duration, u64) {
    // Into files, not pipes: the output is read only at the end, and a pipe nobody
    // reads stops the process once it is full (progress lines add up over 1,000 objects).
    let (stdout, stderr) = (tempfile::tempfile().expect("stdout file"), tempfile::tempfile().expect("stderr file"));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(args)
        .current_dir(stack.path())
        .env_remove("CI")
        .stdout(stdout.try_clone().expect("stdout file"))
        .stderr(stderr.try_clone().expect("stderr file"))
        .spawn()
        .expect("starting provisioner");
    let (status, peak) = common::wait_with_peak_rss(&mut child);
    let took = started.elapsed();
    let read = |mut file: std::fs::File| {
        use std::io::{Read, Seek};
        let mut text = String::new();
        file.seek(std::io::SeekFrom::Start(0)).and_then(|_| file.read_to_string(&mut text)).expect("reading the output");
        text
    };
    let (out, err) = (read(stdout), read(stderr));
    assert!(status.success(), "provisioner {args:?}:\n{out}\n{err}");
    for line in out.lines().filter(|l| l.starts_with("restored ") || l.starts_with("checked every part")) {
        println!("  ({line} of Q's {:.2} s)", took.as_secs_f64());
    }
    (took, peak)
}

fn timed(command: &mut Command) -> Duration {
    let started = Instant::now();
    let out = command.output().expect("starting a benchmark command");
    assert!(out.status.success(), "{command:?}: {}", support::text(&out));
    started.elapsed()
}

/// Flush what earlier legs wrote, so no leg pays for another's writes. The image's
/// local socket trusts the server's own user.
fn checkpoint(container: &str) {
    timed(Command::new("docker").args(["exec", "-u", "postgres", container, "psql", "-X", "-q", "-U", "postgres", "-d", "postgres", "-c", "CHECKPOINT"]));
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let wants = |leg: &str| args.is_empty() || args.iter().any(|a| a == leg);
    if wants("postgres") {
        postgres();
    }
    if wants("s3") {
        s3();
    }
}

/// Print the four times and the two ratios of one leg.
fn report(data: u64, (b, p, p_rss): (Duration, Duration, u64), (r, q, q_rss): (Duration, Duration, u64), by_hand: (&str, &str)) {
    let rate = |d: Duration| mib(data) / d.as_secs_f64();
    println!("backup   B ({:<26}) {:>7.2} s  {:>6.1} MiB/s", by_hand.0, b.as_secs_f64(), rate(b));
    println!("backup   P (provisioner backup)         {:>7.2} s  {:>6.1} MiB/s  peak RSS {:.0} MiB", p.as_secs_f64(), rate(p), mib(p_rss));
    println!("restore  R ({:<26}) {:>7.2} s  {:>6.1} MiB/s", by_hand.1, r.as_secs_f64(), rate(r));
    println!("restore  Q (provisioner restore)        {:>7.2} s  {:>6.1} MiB/s  peak RSS {:.0} MiB", q.as_secs_f64(), rate(q), mib(q_rss));
    println!("throughput ratio backup B/P = {:.2}, restore R/Q = {:.2} (target ≥ 0.80)", b.as_secs_f64() / p.as_secs_f64(), r.as_secs_f64() / q.as_secs_f64());
}

fn postgres() {
    support::require(&["postgres"], &["provisioner-offline/postgres:15"]);
    let size_mb: u64 = std::env::var("BACKUP_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let stack = support::Stack::new("bench-backup", POSTGRES);
    let run = stack.run(&["run", "local"]);
    assert!(run.status.success(), "{}", support::text(&run));
    let env = stack.dotenv();
    let url = &env["DATABASE_URL"];
    let password = url.split_once("://").and_then(|(_, r)| r.split_once('@')).and_then(|(a, _)| a.split_once(':')).map(|(_, p)| p).expect("a password in DATABASE_URL");
    let container = format!("{}-local-db-server", stack.name);

    // Rows of ~1 KiB: 512 characters of hex text (half compressible) and 256 bytes
    // that do not compress (sha512 of the row number).
    let rows = size_mb * 1024;
    eprintln!("filling {size_mb} MiB ({rows} rows)…");
    let mut pg = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    pg.batch_execute(&format!(
        "CREATE TABLE big (id bigint PRIMARY KEY, a text, b bytea);
         INSERT INTO big SELECT i, (SELECT string_agg(md5((i * 16 + j)::text), '') FROM generate_series(1, 16) AS j),
             sha512(int8send(i)) || sha512(int8send(-i)) || sha512(int8send(i + (1 << 40))) || sha512(int8send(i + (1 << 41)))
         FROM generate_series(1, {rows}) AS i;"
    ))
    .expect("filling the table");
    let bytes: i64 = pg.query_one("SELECT pg_database_size(current_database())", &[]).expect("size").get(0);
    drop(pg);
    let bytes = u64::try_from(bytes).unwrap_or(0);

    let dir = tempfile::tempdir().expect("temp dir");
    let by_hand = dir.path().join("by-hand.dump");
    let dump = std::fs::File::create(&by_hand).expect("dump file");
    checkpoint(&container);
    let b = timed(
        Command::new("docker")
            .args(["exec", "-e", &format!("PGPASSWORD={password}"), &container, "pg_dump", "-Fc", "-h", "127.0.0.1", "-U", "app", "-d", "shop"])
            .stdout(dump),
    );
    let archive = dir.path().join("p.tar.zst");
    checkpoint(&container);
    let (p, p_rss) = provisioner(&stack, &["backup", "local", "db", "-o", archive.to_str().expect("utf-8")]);

    // Each restore writes the whole table and as much WAL again: the next one would
    // pay for flushing it. So a checkpoint before each, and both orders (R Q, then
    // Q R), each side's time the mean of its two.
    let by_hand_restore = || {
        checkpoint(&container);
        timed(
            Command::new("docker")
                .args(["exec", "-i", "-e", &format!("PGPASSWORD={password}"), &container])
                .args(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "-h", "127.0.0.1", "-U", "app", "-d", "shop"])
                .stdin(std::fs::File::open(&by_hand).expect("dump file")),
        )
    };
    let provisioner_restore = || {
        checkpoint(&container);
        provisioner(&stack, &["restore", "local", archive.to_str().expect("utf-8"), "--force"])
    };
    let r1 = by_hand_restore();
    let (q1, q1_rss) = provisioner_restore();
    let (q2, q2_rss) = provisioner_restore();
    let r2 = by_hand_restore();
    println!("  (restores in order: R {:.2} s, Q {:.2} s, Q {:.2} s, R {:.2} s)", r1.as_secs_f64(), q1.as_secs_f64(), q2.as_secs_f64(), r2.as_secs_f64());
    let (r, q, q_rss) = ((r1 + r2) / 2, (q1 + q2) / 2, q1_rss.max(q2_rss));

    let dump_size = std::fs::metadata(&by_hand).map(|m| m.len()).unwrap_or(0);
    let archive_size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    println!("PostgreSQL — database: {:.0} MiB on disk; pg_dump -Fc: {:.0} MiB; archive: {:.0} MiB", mib(bytes), mib(dump_size), mib(archive_size));
    report(bytes, (b, p, p_rss), (r, q, q_rss), ("pg_dump by hand", "pg_restore by hand"));
    drop(stack);
}

/// The by-hand S3 client: boto3 with the app's key, one client, path-style addressing,
/// as the app itself would be configured from `.env`.
const BOTO: &str = r#"
import os, sys, json, boto3, botocore
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
    aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
    config=botocore.config.Config(s3={"addressing_style": "path"}, max_pool_connections=4))
bucket = os.environ["S3_BUCKET"]
folder = os.environ["BENCH_DIR"]
"#;

/// Fill the bucket: `SMALL` objects of 16 KiB, then 1 MiB ones, and two large ones of
/// an eighth of the total each, every one with a content type and metadata.
const FILL: &str = r#"
total = int(os.environ["BENCH_MB"]) << 20
large = total // 8
small = 1000
medium = (total - 2 * large - small * 16384) // (1 << 20)
sizes = [16384] * small + [1 << 20] * medium + [large, large]
for i, size in enumerate(sizes):
    s3.put_object(Bucket=bucket, Key=f"bench/{size}/{i:05d}.bin", Body=os.urandom(size),
                  ContentType="application/octet-stream", Metadata={"n": str(i)})
print(sum(sizes))
"#;

/// B: every object and its metadata into BENCH_DIR (what restoring by hand needs).
const GET_ALL: &str = r#"
index = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for o in page.get("Contents", []):
        path = os.path.join(folder, str(len(index)))
        got = s3.get_object(Bucket=bucket, Key=o["Key"])
        with open(path, "wb") as f:
            for chunk in iter(lambda: got["Body"].read(1 << 20), b""):
                f.write(chunk)
        index.append({"key": o["Key"], "path": path, "type": got.get("ContentType"), "meta": got["Metadata"]})
json.dump(index, open(os.path.join(folder, "index.json"), "w"))
"#;

/// R: every object back from BENCH_DIR, with its content type and metadata.
const PUT_ALL: &str = r#"
for o in json.load(open(os.path.join(folder, "index.json"))):
    with open(o["path"], "rb") as f:
        s3.put_object(Bucket=bucket, Key=o["key"], Body=f, ContentType=o["type"], Metadata=o["meta"])
"#;

fn python(env: &std::collections::BTreeMap<String, String>, dir: &std::path::Path, mb: u64, script: &str) -> Command {
    let mut command = Command::new("/usr/bin/python3");
    command.args(["-c", &format!("{BOTO}\n{script}")]).envs(env).env("BENCH_DIR", dir).env("BENCH_MB", mb.to_string());
    command
}

fn s3() {
    support::require(&["s3"], &["provisioner-offline/garage:2.5.0"]);
    let size_mb: u64 = std::env::var("S3_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let stack = support::Stack::new("bench-backup-s3", S3);
    let run = stack.run(&["run", "local"]);
    assert!(run.status.success(), "{}", support::text(&run));
    let env = stack.dotenv();
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = dir.path().join("objects");
    std::fs::create_dir_all(&objects).expect("objects folder");

    eprintln!("filling the bucket with {size_mb} MiB…");
    let out = python(&env, &objects, size_mb, FILL).output().expect("python3");
    assert!(out.status.success(), "{}", support::text(&out));
    let bytes: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("the filled size");

    let b = timed(&mut python(&env, &objects, size_mb, GET_ALL));
    let archive = dir.path().join("s3.tar.zst");
    let (p, p_rss) = provisioner(&stack, &["backup", "local", "files", "-o", archive.to_str().expect("utf-8")]);
    let r = timed(&mut python(&env, &objects, size_mb, PUT_ALL));
    let (q, q_rss) = provisioner(&stack, &["restore", "local", archive.to_str().expect("utf-8"), "--force"]);

    let archive_size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    println!("S3 — bucket: {:.0} MiB in 1,000 × 16 KiB, 1 MiB ones and 2 large objects; archive: {:.0} MiB", mib(bytes), mib(archive_size));
    report(bytes, (b, p, p_rss), (r, q, q_rss), ("boto3 get by hand", "boto3 put by hand"));
}
