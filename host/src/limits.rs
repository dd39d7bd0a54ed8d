//! The sandbox's limits for one hook call, as an environment sets them. Enforced by
//! `runtime` (the store's limiter, fuel and epoch deadline).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits for one hook call. Defaults suit the first-party plugins; an environment
/// may override them (`[environments.NAME.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HookLimits {
    /// Linear memory across all of the plugin's instances, in MiB.
    pub memory_mb: u64,
    /// Fuel: WebAssembly instructions executed per hook call. The default is a CPU
    /// budget of seconds, not minutes (the README says how long, as measured).
    pub fuel: u64,
    /// Wall-clock time per hook call, including time spent in host calls such as
    /// image pulls.
    pub hook_timeout_ms: u64,
}

impl Default for HookLimits {
    fn default() -> Self {
        HookLimits { memory_mb: 64, fuel: 100_000_000_000, hook_timeout_ms: 600_000 }
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

