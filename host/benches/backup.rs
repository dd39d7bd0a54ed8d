//! Backup and restore throughput of PostgreSQL against doing it by hand, in one run:
//! B: `pg_dump -Fc` run by hand in the same container, its output to a host file;
//! P: `provisioner backup local db -o FILE` (readiness check, the plugin's `pg_dump -Fc`
//!    streamed into the archive's parts, packed with zstd);
//! then R: `pg_restore --clean` by hand from B's file, against
//! Q: `provisioner restore local FILE --force` (digests checked, the plugin's restore in
//!    one transaction, then a `run` that checks every service).
//! Prints each time, the data's size, B/P and R/Q (≥ 0.8 is the target: provisioner at
//! 80 % of the by-hand throughput or better) and the peak RSS of the provisioner process.
//! `BACKUP_BENCH_MB` sets the table's size (default 1024). Needs what `cargo xtask
//! test` prepares; run it with `cargo bench --bench backup`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVICES: &str = r#"
[services.db]
plugin = "postgres"
config = { database = "shop" }
"#;

/// Run the provisioner binary in `stack`'s folder; its time and peak RSS (VmHWM,
/// sampled every 20 ms).
fn provisioner(stack: &support::Stack, args: &[&str]) -> (Duration, u64) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(args)
        .current_dir(stack.path())
        .env_remove("CI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting provisioner");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok()) {
                peak_kib = peak_kib.max(kib);
            }
        }
        if child.try_wait().expect("waiting for provisioner").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().expect("provisioner output");
    assert!(out.status.success(), "provisioner {args:?}:\n{}", support::text(&out));
    (took, peak_kib * 1024)
}

fn timed(command: &mut Command) -> Duration {
    let started = Instant::now();
    let out = command.output().expect("starting a benchmark command");
    assert!(out.status.success(), "{command:?}: {}", support::text(&out));
    started.elapsed()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    support::require(&["postgres"], &["provisioner-offline/postgres:15"]);
    let size_mb: u64 = std::env::var("BACKUP_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let stack = support::Stack::new("bench-backup", SERVICES);
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
    let b = timed(
        Command::new("docker")
            .args(["exec", "-e", &format!("PGPASSWORD={password}"), &container, "pg_dump", "-Fc", "-h", "127.0.0.1", "-U", "app", "-d", "shop"])
            .stdout(dump),
    );
    let archive = dir.path().join("p.tar.zst");
    let (p, p_rss) = provisioner(&stack, &["backup", "local", "db", "-o", archive.to_str().expect("utf-8")]);

    let r = timed(
        Command::new("docker")
            .args(["exec", "-i", "-e", &format!("PGPASSWORD={password}"), &container])
            .args(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "-h", "127.0.0.1", "-U", "app", "-d", "shop"])
            .stdin(std::fs::File::open(&by_hand).expect("dump file")),
    );
    let (q, q_rss) = provisioner(&stack, &["restore", "local", archive.to_str().expect("utf-8"), "--force"]);

    let dump_size = std::fs::metadata(&by_hand).map(|m| m.len()).unwrap_or(0);
    let archive_size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    println!("database: {:.0} MiB on disk; pg_dump -Fc: {:.0} MiB; archive: {:.0} MiB", mib(bytes), mib(dump_size), mib(archive_size));
    println!("backup   B (pg_dump by hand)       {:>7.2} s  {:>6.1} MiB/s", b.as_secs_f64(), mib(bytes) / b.as_secs_f64());
    println!("backup   P (provisioner backup)    {:>7.2} s  {:>6.1} MiB/s  peak RSS {:.0} MiB", p.as_secs_f64(), mib(bytes) / p.as_secs_f64(), mib(p_rss));
    println!("restore  R (pg_restore by hand)    {:>7.2} s  {:>6.1} MiB/s", r.as_secs_f64(), mib(bytes) / r.as_secs_f64());
    println!("restore  Q (provisioner restore)   {:>7.2} s  {:>6.1} MiB/s  peak RSS {:.0} MiB", q.as_secs_f64(), mib(bytes) / q.as_secs_f64(), mib(q_rss));
    println!("throughput ratio backup B/P = {:.2}, restore R/Q = {:.2} (target ≥ 0.80)", b.as_secs_f64() / p.as_secs_f64(), r.as_secs_f64() / q.as_secs_f64());
}
