//! The timings report of a run, like cargo's `cargo-timing.html`: one self-contained
//! HTML file (inline SVG and a few lines of script, no network) with a Gantt chart of
//! each service's provision (pull / create / start within it) and readiness wait, the
//! critical path highlighted, the dependencies, and the summary table. Every run writes
//! it to `.provisioner/<env>/timings.html`; `run --timings` says where.

use std::fmt::Write as _;

use crate::config::Project;
use crate::lifecycle::{ServiceReport, Status, Summary};

pub const FILE_NAME: &str = "timings.html";

/// Chart width for the whole run, in pixels.
const CHART_WIDTH: f64 = 900.0;
const ROW_HEIGHT: u32 = 28;
const LABEL_WIDTH: u32 = 180;

/// One bar of the chart: a phase of a service, in milliseconds from the run's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub service: String,
    pub phase: &'static str,
    pub start_ms: u128,
    pub ms: u128,
}

/// The bars of `summary`: per service its `provision` (with `pull`, `create`, `start`
/// laid out from its beginning, as they happen within it) and its `ready` wait.
pub fn bars(summary: &Summary) -> Vec<Bar> {
    let mut bars = Vec::new();
    for s in &summary.services {
        let bar = |phase, start_ms, ms| Bar { service: s.service.clone(), phase, start_ms, ms };
        let Some(provision) = s.provision_ms else {
            bars.push(bar("total", s.started_at_ms, s.total_ms));
            continue;
        };
        bars.push(bar("provision", s.started_at_ms, provision));
        let mut at = s.started_at_ms;
        for (phase, ms) in [("pull", s.pull_ms), ("create", s.create_ms), ("start", s.start_ms)] {
            if ms > 0 {
                bars.push(bar(phase, at, ms));
                at += ms;
            }
        }
        if let Some(ready) = s.ready_ms {
            bars.push(bar("ready", s.started_at_ms + s.total_ms - ready, ready));
        }
    }
    bars
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn status(report: &ServiceReport) -> &'static str {
    match report.status {
        Status::Ready => "ready",
        Status::TornDown => "torn down",
        Status::Failed { .. } => "FAILED",
        Status::Skipped { .. } => "skipped",
    }
}

fn colour(phase: &str) -> &'static str {
    match phase {
        "provision" => "#9ecae1",
        "pull" => "#fdae6b",
        "create" => "#a1d99b",
        "start" => "#74c476",
        "ready" => "#bcbddc",
        _ => "#d9d9d9",
    }
}

/// The report for `summary` of `project`'s environment, as one HTML document.
pub fn html(project: &Project, summary: &Summary) -> String {
    let span = summary.elapsed_ms.max(1) as f64;
    let scale = CHART_WIDTH / span;
    let rows: Vec<&ServiceReport> = {
        let mut rows: Vec<&ServiceReport> = summary.services.iter().collect();
        rows.sort_by_key(|s| (s.started_at_ms, s.service.clone()));
        rows
    };
    let height = ROW_HEIGHT * (rows.len() as u32 + 1) + 10;
    let width = LABEL_WIDTH + CHART_WIDTH as u32 + 20;
    let mut svg = format!(r#"<svg id="gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" data-ms-per-px="{:.6}">"#, 1.0 / scale);
    for (i, report) in rows.iter().enumerate() {
        let y = ROW_HEIGHT * i as u32 + 4;
        let critical = summary.critical_path.contains(&report.service);
        let weight = if critical { "bold" } else { "normal" };
        let _ = write!(svg, r#"<text x="4" y="{}" font-size="13" font-weight="{weight}">{}</text>"#, y + 17, escape(&report.service));
        for bar in bars(summary).iter().filter(|b| b.service == report.service) {
            let inner = !matches!(bar.phase, "provision" | "ready" | "total");
            let (bar_y, bar_h) = if inner { (y + 9, 10) } else { (y + 3, 22) };
            let x = LABEL_WIDTH as f64 + bar.start_ms as f64 * scale;
            let w = (bar.ms as f64 * scale).max(1.0);
            let stroke = if critical && !inner { r##" stroke="#d62728" stroke-width="2""## } else { "" };
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{x:.2}" y="{bar_y}" width="{w:.2}" height="{bar_h}" fill="{}"{stroke} data-service="{}" data-phase="{}" data-start-ms="{}" data-ms="{}"><title>{} {}: {} ms (from {} ms)</title></rect>"#,
                colour(bar.phase),
                escape(&bar.service),
                bar.phase,
                bar.start_ms,
                bar.ms,
                escape(&bar.service),
                bar.phase,
                bar.ms,
                bar.start_ms
            );
        }
    }
    let axis_y = ROW_HEIGHT * rows.len() as u32 + 4;
    for tick in 0..=10 {
        let ms = span * f64::from(tick) / 10.0;
        let x = LABEL_WIDTH as f64 + ms * scale;
        let _ = write!(svg, r##"<text x="{x:.1}" y="{}" font-size="10" fill="#555">{:.1} s</text>"##, axis_y + 16, ms / 1000.0);
    }
    svg.push_str("</svg>");

    let mut table = String::from(
        "<table><tr><th>service</th><th>plugin</th><th>status</th><th>start</th><th>pull</th><th>create</th><th>start (engine)</th><th>provision</th><th>ready</th><th>total</th></tr>",
    );
    let ms = |v: Option<u128>| v.map_or_else(|| "–".to_string(), |v| format!("{v} ms"));
    for s in &rows {
        let _ = write!(
            table,
            "<tr data-service=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{} ms</td><td>{} ms</td><td>{} ms</td><td>{}</td><td>{}</td><td>{} ms</td></tr>",
            escape(&s.service),
            escape(&s.service),
            escape(&s.plugin),
            status(s),
            s.started_at_ms,
            s.pull_ms,
            s.create_ms,
            s.start_ms,
            ms(s.provision_ms),
            ms(s.ready_ms),
            s.total_ms
        );
    }
    table.push_str("</table>");

    let mut deps = String::from("<ul id=\"dependencies\">");
    for service in project.services.values() {
        let on = if service.depends_on.is_empty() { "nothing".to_string() } else { service.depends_on.join(", ") };
        let _ = write!(deps, "<li>{} waits for {}</li>", escape(&service.name), escape(&on));
    }
    deps.push_str("</ul>");

    let critical = if summary.critical_path.is_empty() { "–".to_string() } else { summary.critical_path.join(" → ") };
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>provisioner timings: {project} / {env}</title>
<style>body{{font-family:sans-serif;margin:20px}} table{{border-collapse:collapse;margin-top:16px}} td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}} td:first-child,th:first-child{{text-align:left}} .legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}</style>
</head><body data-rendered="no">
<h1>{project} / {env}: {elapsed:.2} s</h1>
<p>critical path: <b id="critical-path">{critical}</b> (outlined in red)</p>
<p class="legend"><span style="background:#9ecae1"></span>provision<span style="background:#fdae6b"></span>pull<span style="background:#a1d99b"></span>create<span style="background:#74c476"></span>start<span style="background:#bcbddc"></span>waiting until ready</p>
{svg}
<h2>Services</h2>
{table}
<h2>Dependencies</h2>
{deps}
<script>
// Proves the page ran in a browser (the tests check it), and counts the bars drawn.
document.body.dataset.rendered = "yes";
document.body.dataset.bars = String(document.querySelectorAll("#gantt rect.bar").length);
</script>
</body></html>
"##,
        project = escape(&project.name),
        env = escape(&summary.environment),
        elapsed = summary.elapsed_ms as f64 / 1000.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(service: &str, started: u128, provision: u128, pull: u128, ready: u128) -> ServiceReport {
        ServiceReport {
            started_at_ms: started,
            provision_ms: Some(provision),
            pull_ms: pull,
            create_ms: 20,
            start_ms: 30,
            ready_ms: Some(ready),
            total_ms: provision + ready,
            ..ServiceReport::new(service, "redis", Status::Ready)
        }
    }

    #[test]
    fn bars_follow_the_summary() {
        let summary = Summary {
            environment: "local".into(),
            services: vec![report("db", 0, 1000, 0, 200), report("app", 1200, 300, 50, 100)],
            elapsed_ms: 1600,
            critical_path: vec!["db".into(), "app".into()],
        };
        let got: Vec<(String, &str, u128, u128)> = bars(&summary).into_iter().map(|b| (b.service, b.phase, b.start_ms, b.ms)).collect();
        let want = [
            ("db", "provision", 0, 1000),
            ("db", "create", 0, 20),
            ("db", "start", 20, 30),
            ("db", "ready", 1000, 200),
            ("app", "provision", 1200, 300),
            ("app", "pull", 1200, 50),
            ("app", "create", 1250, 20),
            ("app", "start", 1270, 30),
            ("app", "ready", 1500, 100),
        ];
        assert_eq!(got, want.map(|(s, p, a, m)| (s.to_string(), p, a, m)));
    }
}
