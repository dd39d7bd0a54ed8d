//! Per-hook sandbox limits: memory, fuel and a wall-clock deadline.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits for one hook call. Defaults suit the first-party plugins; an environment
/// may override them (`[environments.NAME.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HookLimits {
    /// Linear memory across all of the plugin's instances, in MiB.
    pub memory_mb: u64,
    /// Fuel: WebAssembly instructions executed per hook call. Tight code burns
    /// 10–30 billion a second on this kind of machine, so the default is a CPU
    /// budget of tens of seconds.
    pub fuel: u64,
    /// Wall-clock time per hook call, including time spent in host calls such as
    /// image pulls.
    pub hook_timeout_ms: u64,
}

impl Default for HookLimits {
    fn default() -> Self {
        HookLimits { memory_mb: 64, fuel: 500_000_000_000, hook_timeout_ms: 600_000 }
    }
}

impl HookLimits {
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.hook_timeout_ms)
    }

    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// Enforces the memory cap (a failed growth traps, naming the cap) and caps on
/// instances, tables and memories. Remembers whether it refused, so a trap can be
/// explained.
pub struct Limiter {
    memory_cap: usize,
    memory_used: usize,
    pub refused: Option<String>,
}

const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl Limiter {
    pub fn new(limits: &HookLimits) -> Self {
        Limiter { memory_cap: limits.memory_bytes(), memory_used: 0, refused: None }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let after = self.memory_used.saturating_sub(current).saturating_add(desired);
        if after > self.memory_cap {
            let reason = format!(
                "memory limit of {} MiB reached (the plugin asked for {} MiB in all)",
                self.memory_cap >> 20,
                after.div_ceil(1 << 20)
            );
            self.refused = Some(reason.clone());
            return Err(wasmtime::format_err!("{reason}"));
        }
        self.memory_used = after;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            let reason = format!("table limit of {MAX_TABLE_ELEMENTS} elements reached");
            self.refused = Some(reason.clone());
            return Err(wasmtime::format_err!("{reason}"));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
