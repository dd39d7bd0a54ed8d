//! `provisioner logs`: every container of an environment (all replicas), interleaved by
//! time, each line prefixed with its service (and instance, for replicas) in a stable
//! colour; following new lines and new instances with `follow`. Every secret of the
//! environment is masked, as everywhere else the host shows what a service said.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::capabilities::secrets::SecretFile;
use crate::config::Project;
use crate::engine::{ContainerDetails, ContainerEngine, EngineError, LogLine, LogOptions};
use crate::naming::{self, Scope};

/// How often `follow` looks for instances that started since (after a `scale`).
const RESCAN: Duration = Duration::from_secs(1);
/// How often `follow` prints what has arrived: lines show within this of being read.
const FOLLOW_TICK: Duration = Duration::from_millis(10);
const OUTPUT_BUFFER: usize = 64 * 1024;
/// Colours of the prefixes (ANSI), chosen per prefix by a stable hash.
const COLOURS: &[&str] = &["36", "33", "32", "35", "34", "31", "96", "93", "92", "95"];

/// What to show.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these services (all when empty).
    pub services: Vec<String>,
    pub follow: bool,
    /// Only lines of the last this long.
    pub since: Option<Duration>,
    /// Only the last N lines of each container (before following).
    pub tail: Option<u32>,
    /// One JSON object per line.
    pub json: bool,
    /// ANSI colours on the prefixes.
    pub colour: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("{file}: no service `{service}` (services: {known})")]
    UnknownService { file: String, service: String, known: String },
    #[error("cannot read the logs: {0}")]
    Engine(#[from] EngineError),
    #[error("writing the logs: {0}")]
    Output(#[from] std::io::Error),
}

/// One line as `--json` prints it.
#[derive(Debug, Serialize)]
struct JsonLine<'a> {
    service: &'a str,
    instance: &'a str,
    container: &'a str,
    time: &'a str,
    stream: &'a str,
    line: &'a str,
}

/// A container of the environment, with what its lines are shown under.
#[derive(Debug, Clone)]
struct Source {
    container: String,
    service: String,
    /// The instance's short name (`server`, `app-2`).
    instance: String,
    prefix: String,
}

/// `--since 10m`: a number and `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("`{text}`: expected a number and a unit, e.g. 30s, 10m, 2h, 1d"))?;
    let seconds = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("`{text}`: unknown unit `{other}` (use s, m, h or d)")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// Show the logs of `environment` on `out` as `options` say.
pub fn show(
    project: &Project,
    environment: &str,
    engine: Arc<dyn ContainerEngine>,
    options: &Options,
    out: &mut dyn Write,
) -> Result<(), LogsError> {
    for service in &options.services {
        if !project.services.contains_key(service) {
            return Err(LogsError::UnknownService {
                file: project.file.display().to_string(),
                service: service.clone(),
                known: project.services.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
    }
    let masks = secrets(&project.state_dir(environment).join("secrets"));
    let since = options.since.map(|d| unix_now().saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    let sources = sources(project, environment, engine.as_ref(), options)?;
    let width = sources.iter().map(|s| s.prefix.len()).max().unwrap_or(0);
    let printer = Printer { options, masks: &masks, width };
    // Written in batches: a flush per line costs a write call per line, and a follower
    // of busy containers spends its time there. Flushed whenever nothing is waiting.
    let mut out = std::io::BufWriter::with_capacity(OUTPUT_BUFFER, out);
    if !options.follow {
        // Each container's lines side by side, then all of them in time order.
        let read: Vec<Result<Vec<(LogLine, usize)>, EngineError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = sources
                .iter()
                .enumerate()
                .map(|(i, source)| {
                    let engine = engine.clone();
                    scope.spawn(move || {
                        let mut lines = Vec::new();
                        let log = LogOptions { since, tail: options.tail, follow: false };
                        engine.stream_logs(&source.container, &log, &mut |line| {
                            lines.push((line, i));
                            true
                        })?;
                        Ok(lines)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new()))).collect()
        });
        let mut all = Vec::new();
        for lines in read {
            match lines {
                Ok(lines) => all.extend(lines),
                // A container removed meanwhile has nothing more to say.
                Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        all.sort_by(|(a, _), (b, _)| a.timestamp.cmp(&b.timestamp));
        for (line, i) in &all {
            printer.print(&mut out, &sources[*i], line)?;
        }
        out.flush()?;
        return Ok(());
    }

    // Follow: a reader thread per container, and a look for new ones every second. The
    // readers append to one shared list and the printer takes all of it at each tick:
    // a channel would wake the printer once per line, and at tens of thousands of lines
    // a second those wake-ups cost more than everything else together.
    let pending: Arc<Mutex<Vec<(Arc<Source>, LogLine)>>> = Arc::default();
    let mut followed: BTreeSet<String> = BTreeSet::new();
    let started = unix_now();
    let follow = |source: Source, since: Option<i64>, tail: Option<u32>, followed: &mut BTreeSet<String>| {
        followed.insert(source.container.clone());
        let (engine, pending) = (engine.clone(), pending.clone());
        std::thread::spawn(move || {
            let log = LogOptions { since, tail, follow: true };
            let source = Arc::new(source);
            let _ = engine.stream_logs(&source.container, &log, &mut |line| match pending.lock() {
                Ok(mut lines) => {
                    lines.push((source.clone(), line));
                    true
                }
                Err(_) => false,
            });
        });
    };
    for source in sources {
        follow(source, since, options.tail, &mut followed);
    }
    let mut rescanned = Instant::now();
    let mut taken = Vec::new();
    loop {
        match pending.lock() {
            Ok(mut lines) => std::mem::swap(&mut *lines, &mut taken),
            Err(_) => return Ok(()),
        }
        for (source, line) in taken.drain(..) {
            printer.print(&mut out, &source, &line)?;
        }
        out.flush()?;
        std::thread::sleep(FOLLOW_TICK);
        if rescanned.elapsed() >= RESCAN {
            rescanned = Instant::now();
            for source in self::sources(project, environment, engine.as_ref(), options)? {
                if !followed.contains(&source.container) {
                    // An instance that started after `logs` did: all it has said.
                    follow(source, Some(started.min(since.unwrap_or(started))), None, &mut followed);
                }
            }
        }
    }
}

/// The environment's containers (of `options.services`, if any), by prefix.
fn sources(project: &Project, environment: &str, engine: &dyn ContainerEngine, options: &Options) -> Result<Vec<Source>, EngineError> {
    let mut sources: Vec<Source> = engine
        .list_containers(&naming::environment_labels(&project.name, environment))?
        .into_iter()
        .filter_map(|details| source(project, environment, details))
        .filter(|s| options.services.is_empty() || options.services.contains(&s.service))
        .collect();
    sources.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    Ok(sources)
}

fn source(project: &Project, environment: &str, details: ContainerDetails) -> Option<Source> {
    let service = naming::service_of(&details.labels)?.to_string();
    let plugin = details.labels.get(naming::LABEL_PLUGIN).cloned().unwrap_or_default();
    let scope = Scope { project: project.name.clone(), environment: environment.to_string(), service: service.clone(), plugin };
    let instance = naming::short_name(&scope, &details.name).unwrap_or(&details.name).to_string();
    // `db`, or `backend/app-2` when the service runs more than its one usual container.
    let prefix = if instance == "server" { service.clone() } else { format!("{service}/{instance}") };
    Some(Source { container: details.name, service, instance, prefix })
}

/// Every secret of the environment's services (masked wherever they appear).
fn secrets(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut values: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.path().file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .filter_map(|service| SecretFile::new(dir, &service).read_all().ok())
        .flat_map(|all| all.into_values())
        .filter(|v| !v.is_empty())
        .collect();
    // Longest first, so that a secret containing another is masked whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
}

struct Printer<'a> {
    options: &'a Options,
    masks: &'a [String],
    width: usize,
}

impl Printer<'_> {
    fn print(&self, out: &mut dyn Write, source: &Source, line: &LogLine) -> std::io::Result<()> {
        let plain = line.text.len() <= crate::text::MAX_SHOWN
            && !line.text.chars().any(char::is_control)
            && !self.masks.iter().any(|m| line.text.contains(m.as_str()));
        let text: std::borrow::Cow<str> = match plain {
            true => std::borrow::Cow::Borrowed(&line.text),
            false => crate::text::printable(&crate::text::mask_secrets(&line.text, self.masks), crate::text::MAX_SHOWN, false).into(),
        };
        if self.options.json {
            let json = JsonLine {
                service: &source.service,
                instance: &source.instance,
                container: &source.container,
                time: &line.timestamp,
                stream: if line.stderr { "stderr" } else { "stdout" },
                line: &text,
            };
            writeln!(out, "{}", serde_json::to_string(&json).map_err(std::io::Error::other)?)?;
        } else if self.options.colour {
            writeln!(out, "\u{1b}[{}m{:<width$} |\u{1b}[0m {text}", colour(&source.prefix), source.prefix, width = self.width)?;
        } else {
            writeln!(out, "{:<width$} | {text}", source.prefix, width = self.width)?;
        }
        Ok(())
    }
}

/// The same colour for the same prefix, run after run.
fn colour(prefix: &str) -> &'static str {
    let hash = prefix.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    COLOURS[hash as usize % COLOURS.len()]
}

fn unix_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("ten").unwrap_err().contains("expected a number"));
        assert!(parse_duration("5w").unwrap_err().contains("unknown unit `w`"));
    }

    #[test]
    fn colours_are_stable_per_prefix() {
        assert_eq!(colour("db"), colour("db"));
        let distinct: BTreeSet<&str> = ["db", "cache", "backend/app-1", "backend/app-2", "web", "files"].iter().map(|p| colour(p)).collect();
        assert!(distinct.len() >= 3, "{distinct:?}");
    }

    #[test]
    fn lines_are_masked_and_prefixed() {
        let options = Options::default();
        let masks = vec!["s3cr3t-value".to_string()];
        let printer = Printer { options: &options, masks: &masks, width: 8 };
        let source = Source { container: "p-local-db-server".into(), service: "db".into(), instance: "server".into(), prefix: "db".into() };
        let mut out = Vec::new();
        let line = LogLine { timestamp: "2026-01-01T00:00:00.000000001Z".into(), stderr: false, text: "password=s3cr3t-value \u{1b}]0;x".into() };
        printer.print(&mut out, &source, &line).unwrap();
        let shown = String::from_utf8(out).unwrap();
        assert!(shown.starts_with("db       | password=*** "), "{shown:?}");
        assert!(!shown.contains('\u{1b}'), "{shown:?}");
    }
}
