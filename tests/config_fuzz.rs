//! The config parser against mutated files: the example's provisioner.toml, cut, spliced
//! and sprinkled with TOML's punctuation and references. Whatever the input, loading
//! never panics, and an error names the file and a line inside it, stays readable in
//! length, and never echoes a long value whole.
//!
//! A brief run in every `cargo test` (256 cases); `PROPTEST_CASES=N` for a long one
//! (`cargo xtask bench` runs 20,000). It prints how many cases it ran and how they ended.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use provisioner::config::Project;

/// Pieces a mutation splices in: TOML's punctuation, keys the file knows, references,
/// odd values.
const PIECES: &[&str] = &[
    "[", "]", "{", "}", "\"", "'", "=", ",", ".", "\n", "#", "${", "}", "${db.DATABASE_URL}", "${nope.X}", "${db.", "[services.x]\n",
    "plugin = \"redis\"\n", "depends_on = [\"db\"]\n", "replicas = 0\n", "replicas = \"two\"\n", "[environments.local.resources]\n",
    "memory_mb = 0\n", "[environments.local.limits]\n", "fuel = -1\n", "hook_timeout_ms = 1e99\n", "wait_for = \"x\"\n",
    "\u{1b}[2J", "\u{0}", "é", "[[services]]\n", "name = \"\"\n", "config = { }\n", "images = { db = 1 }\n", "= =\n",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, piece: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    LongValue { at: usize, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..PIECES.len()).prop_map(|(at, piece)| Edit::Insert { at, piece }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        (any::<usize>(), 1000usize..200_000).prop_map(|(at, len)| Edit::LongValue { at, len }),
    ]
}

/// The nearest char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, edit: &Edit) {
    match *edit {
        Edit::Delete { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, start + len.min(text.len() - start));
            text.replace_range(start..end.max(start), "");
        }
        Edit::Insert { at, piece } => {
            let at = boundary(text, at);
            text.insert_str(at, PIECES[piece]);
        }
        Edit::DuplicateLine { line } | Edit::SwapLines { a: line, .. } if text.lines().count() == 0 => {
            let _ = line;
        }
        Edit::DuplicateLine { line } => {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let i = line % lines.len();
            lines.insert(i, lines[i].clone());
            *text = lines.join("\n");
        }
        Edit::SwapLines { a, b } => {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let n = lines.len();
            lines.swap(a % n, b % n);
            *text = lines.join("\n");
        }
        Edit::LongValue { at, len } => {
            let at = boundary(text, at);
            text.insert_str(at, &format!("\"{}\"", "v".repeat(len)));
        }
    }
}

static OK: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);

fn check(file: &Path, source: &str) -> Result<(), TestCaseError> {
    match Project::parse(file, source) {
        Ok(project) => {
            OK.fetch_add(1, Ordering::Relaxed);
            for name in project.environments.keys().map(String::as_str).chain(["local", "ci"]) {
                let _ = project.environment(name);
            }
            let _ = project.check_plugins(&["postgres", "redis", "s3", "rabbitmq", "container", "loadbalancer"].iter().map(|s| s.to_string()).collect());
            for service in project.services.keys() {
                let _ = project.dependents(service);
            }
        }
        Err(error) => {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            let shown = error.to_string();
            prop_assert!(shown.contains("provisioner.toml"), "the file is named: {shown}");
            if let Some(line) = error.line {
                prop_assert!(line >= 1 && line <= source.lines().count() + 1, "line {line} is in the file: {shown}");
            }
            prop_assert!(shown.len() < 4096, "a readable error, not the input: {} bytes", shown.len());
        }
    }
    Ok(())
}

#[test]
fn mutated_configs_never_panic_and_always_say_where() {
    let file = support::root().join("examples/ticketing/provisioner.toml");
    let original = std::fs::read_to_string(&file).expect("the example's provisioner.toml");
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256);
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(edits in prop::collection::vec(edit(), 1..8))| {
        let mut text = original.clone();
        for edit in &edits {
            apply(&mut text, edit);
        }
        check(&file, &text)?;
    });
    let (ok, refused) = (OK.load(Ordering::Relaxed), REFUSED.load(Ordering::Relaxed));
    eprintln!("config fuzz: {} cases run: {ok} loaded, {refused} refused with a located error", ok + refused);
    assert!(refused > 0, "the mutations reach the error paths");
}
