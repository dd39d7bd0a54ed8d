//! What the benches share to report their numbers: the median of a bench's runs and
//! a duration in milliseconds. Each bench includes it with `mod common;` and uses
//! only some of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::time::Duration;

/// The middle one of `samples` once sorted (the upper middle one of an even count).
/// Panics when there are none: a bench always takes at least one sample.
pub fn median<T: Ord + Copy>(mut samples: Vec<T>) -> T {
    samples.sort();
    samples[samples.len() / 2]
}

/// `12.34 ms`: for steps timed inside the process, where a fraction of a millisecond
/// is part of the result.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// `123 ms`: for whole commands, where a fraction of a millisecond is noise.
pub fn whole_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Wait for `child`; its exit status and peak resident memory in bytes (VmHWM, the
/// kernel's own high-water mark, read every 5 ms while it runs: a peak reached in the
/// last few milliseconds before it exits may be missed).
pub fn wait_with_peak_rss(child: &mut std::process::Child) -> (std::process::ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok()) {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().expect("waiting for a benchmarked command") {
            return (status, peak_kib * 1024);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// CPU time the whole machine spent busy so far (all processes: the containers, the
/// engine, provisioner), from /proc/stat; None where that is not readable.
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    let busy: u64 = fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    let ticks = std::process::Command::new("getconf").arg("CLK_TCK").output().ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u64>().ok()).unwrap_or(100);
    Some(Duration::from_secs_f64(busy as f64 / ticks as f64))
}
