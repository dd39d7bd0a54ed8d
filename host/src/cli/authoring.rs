//! `plugins new`, `plugins check` and `plugins test`: the authoring kit's commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use provisioner::authoring::{check, scenario};
use provisioner::authoring::scaffold::{self, SdkSource};

use super::{json_success, print_json, runtime};
use crate::Cli;

/// `plugins new NAME`: a plugin crate from the templates.
pub fn new(cli: &Cli, name: &str, dir: Option<&Path>, sdk: Option<&Path>, sdk_git: Option<&str>, sdk_tag: Option<&str>) -> Result<ExitCode> {
    let sdk = match (sdk, sdk_git) {
        (Some(path), _) => SdkSource::Path(path.canonicalize().with_context(|| format!("--sdk {}", path.display()))?),
        (None, Some(url)) => SdkSource::Git { url: url.to_string(), tag: sdk_tag.map(str::to_string) },
        (None, None) => scaffold::default_sdk().ok_or(scaffold::ScaffoldError::NoSdk)?,
    };
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    let written = scaffold::create(&dir, name, &sdk)?;
    if cli.json {
        return json_success(&written);
    }
    for path in &written {
        println!("created {}", path.display());
    }
    let wasm = format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
    println!(
        "\nnext:\n  cd {}\n  cargo test\n  cargo plugin\n  provisioner plugins check {wasm}\n  provisioner plugins test {wasm} scenario.toml",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `plugins check FILE`: the conformance suite, each result as it comes.
pub fn check(cli: &Cli, file: &Path, config: Option<&str>, image: Option<&str>, readiness_timeout: u64) -> Result<ExitCode> {
    let config = match config {
        Some(text) => serde_json::from_str(text).with_context(|| format!("--config {text}: not JSON"))?,
        None => serde_json::json!({}),
    };
    let options = check::Options { config, image: image.map(str::to_string), readiness_timeout_secs: readiness_timeout };
    let json = cli.json;
    let results = check::run(&runtime()?, file, &options, &mut |r| {
        if !json {
            let detail = if r.detail.is_empty() { String::new() } else { format!(" ({})", r.detail) };
            println!("{}  {}{detail}", if r.passed { "pass" } else { "FAIL" }, r.check);
        }
    });
    let failed = results.iter().filter(|r| !r.passed).count();
    if json {
        print_json(&results)?;
    } else {
        println!("\n{} of {} checks passed", results.len() - failed, results.len());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `plugins test FILE SCENARIO`: the author's scenario, one line per step and assertion.
pub fn test(cli: &Cli, file: &Path, scenario_file: &Path, image: Option<&str>) -> Result<ExitCode> {
    let options = scenario::Options { image: image.map(str::to_string) };
    let json = cli.json;
    let report = scenario::run(&runtime()?, file, scenario_file, &options, &mut |r| {
        if !json {
            println!("{r}");
        }
    })?;
    if json {
        print_json(&report)?;
    } else {
        let failed = report.results.iter().filter(|r| r.verdict != scenario::Verdict::Pass).count();
        let total = report.results.len();
        match failed {
            0 => println!("\nall {total} passed (project {})", report.project),
            _ => println!("\n{failed} of {total} did not pass (project {}, torn down)", report.project),
        }
    }
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
