//! Progress of long steps on stderr: on a terminal, one live line per service
//! (what it is doing, elapsed); otherwise one plain line per step; nothing with
//! `--json` unless asked.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::runtime::state::{ProgressSink, Scope};

/// Where progress goes.
pub enum Progress {
    Live { bars: MultiProgress, lines: Mutex<HashMap<String, ProgressBar>> },
    Plain { started: Instant },
    Quiet,
}

impl Progress {
    pub fn new(quiet: bool) -> Arc<Progress> {
        Arc::new(if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Live { bars: MultiProgress::new(), lines: Mutex::new(HashMap::new()) }
        } else {
            Progress::Plain { started: Instant::now() }
        })
    }

    pub fn report(&self, service: &str, message: &str) {
        match self {
            Progress::Quiet => {}
            // Progress is advice: a closed stderr (`… 2>&1 | head`) must not stop the run.
            Progress::Plain { started } => {
                let _ = writeln!(std::io::stderr(), "[{:>6.1}s] {service}: {message}", started.elapsed().as_secs_f64());
            }
            Progress::Live { bars, lines } => {
                let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                let bar = lines.entry(service.to_string()).or_insert_with(|| {
                    let bar = bars.add(ProgressBar::new_spinner());
                    let style = ProgressStyle::with_template("{spinner} {prefix:<16} {msg} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    bar.set_style(style);
                    bar.set_prefix(service.to_string());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bar
                });
                bar.set_message(message.to_string());
                let done = ["failed", "backed up", "restored in", "nothing to back up", "no backup support"];
                if message == "ready" || message == "removed" || done.iter().any(|d| message.starts_with(d)) {
                    bar.finish();
                }
            }
        }
    }

    /// Stop every live line, leaving what it last said.
    pub fn finish(&self) {
        if let Progress::Live { lines, .. } = self {
            // Finishing again would redraw a done line with the time elapsed now.
            for bar in lines.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|b| !b.is_finished()) {
                bar.finish();
            }
        }
    }

    /// A sink for the runtime: progress messages of hooks and the host.
    pub fn sink(self: &Arc<Self>) -> ProgressSink {
        let this = self.clone();
        Arc::new(move |scope: &Scope, message: &str| this.report(&scope.service, message))
    }
}
