//! Enforcing the per-hook sandbox limits (memory, tables, instances) in a store.

pub use crate::limits::HookLimits;

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
