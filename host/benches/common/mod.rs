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
