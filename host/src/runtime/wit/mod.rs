//! The WIT versions this host serves, one module each (`since_v0_1_0`, …), like Zed's
//! extension host. Each module generates its bindings, implements its imports on
//! [`HookState`] by converting to the host's own types at the edge, and calls its
//! hooks. Everything behind the edge (capabilities, policy, realisers) is shared, so a
//! new version adds a file here, not a copy of every capability.

mod edge;
pub mod since_v0_1_0;
pub mod since_v0_2_0;

use wasmtime::component::{InstancePre, Linker};
use wasmtime::Store;

use super::state::HookState;
use super::{HookContext, Output, PluginInfo};

/// The WIT versions this host serves, as `major.minor` prefixes: while the major is 0,
/// a minor bump is breaking, so `0.1` serves every `0.1.x` plugin.
pub const SUPPORTED: &[&str] = &["0.1", "0.2"];

/// A field a later WIT version adds to a record, in the host's own type: a plain
/// value as it is, a record by the version's own conversion.
pub(crate) trait Neutral<T> {
    fn neutral(self) -> T;
}

impl<T> Neutral<T> for T {
    fn neutral(self) -> T {
        self
    }
}

/// The name of the export every plugin must have, before the `@version`.
pub const HOOKS_EXPORT: &str = "provisioner:plugin/hooks";

/// Whether a plugin built against WIT `version` (e.g. `0.1.0`) can be served.
pub fn is_supported(version: &str) -> bool {
    major_minor(version).is_some_and(|mm| SUPPORTED.contains(&mm.as_str()))
}

fn major_minor(version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return None;
    };
    Some(format!("{major}.{minor}"))
}

/// Every version's imports, in one linker.
pub fn add_to_linker(linker: &mut Linker<HookState>) -> wasmtime::Result<()> {
    since_v0_1_0::add_to_linker(linker)?;
    since_v0_2_0::add_to_linker(linker)
}

/// A plugin's instantiation, for the WIT version it was built against.
pub enum PluginPre {
    V0_1(since_v0_1_0::Pre),
    V0_2(since_v0_2_0::Pre),
}

/// Why a backup hook was not called.
pub const NO_BACKUP_HOOKS: &str = "built against WIT 0.1, which has no backup hooks";

impl PluginPre {
    /// `version` is the one the component exports its hooks at.
    pub fn new(version: &str, pre: InstancePre<HookState>) -> wasmtime::Result<Self> {
        match major_minor(version).as_deref() {
            Some("0.1") => Ok(PluginPre::V0_1(since_v0_1_0::Pre::new(pre)?)),
            Some("0.2") => Ok(PluginPre::V0_2(since_v0_2_0::Pre::new(pre)?)),
            _ => Err(wasmtime::format_err!("WIT version {version} is not served")),
        }
    }

    pub fn describe(&self, store: &mut Store<HookState>) -> wasmtime::Result<PluginInfo> {
        match self {
            PluginPre::V0_1(pre) => pre.describe(store),
            PluginPre::V0_2(pre) => pre.describe(store),
        }
    }

    /// `Ok(Err(problems))` when the config is not valid: (key, message) each.
    pub fn validate(&self, store: &mut Store<HookState>, config: &str) -> wasmtime::Result<Result<(), Vec<(String, String)>>> {
        match self {
            PluginPre::V0_1(pre) => pre.validate(store, config),
            PluginPre::V0_2(pre) => pre.validate(store, config),
        }
    }

    pub fn provision(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<Result<Vec<Output>, String>> {
        match self {
            PluginPre::V0_1(pre) => pre.provision(store, ctx),
            PluginPre::V0_2(pre) => pre.provision(store, ctx),
        }
    }

    /// `Ok(Ok(None))` when ready, `Ok(Ok(Some(reason)))` when not yet.
    pub fn ready(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<Result<Option<String>, String>> {
        match self {
            PluginPre::V0_1(pre) => pre.ready(store, ctx),
            PluginPre::V0_2(pre) => pre.ready(store, ctx),
        }
    }

    pub fn teardown(&self, store: &mut Store<HookState>, ctx: &HookContext, keep_volumes: bool) -> wasmtime::Result<Result<(), String>> {
        match self {
            PluginPre::V0_1(pre) => pre.teardown(store, ctx, keep_volumes),
            PluginPre::V0_2(pre) => pre.teardown(store, ctx, keep_volumes),
        }
    }
}

impl PluginPre {
    /// `backup`: the method and its notes. `Ok(Err)` from a 0.1 plugin, which has none.
    pub fn backup(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<Result<(String, Vec<String>), String>> {
        match self {
            PluginPre::V0_1(_) => Ok(Err(NO_BACKUP_HOOKS.into())),
            PluginPre::V0_2(pre) => pre.backup(store, ctx),
        }
    }

    pub fn data_summary(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<Result<Option<String>, String>> {
        match self {
            PluginPre::V0_1(_) => Ok(Err(NO_BACKUP_HOOKS.into())),
            PluginPre::V0_2(pre) => pre.data_summary(store, ctx),
        }
    }

    pub fn restore(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<Result<(), String>> {
        match self {
            PluginPre::V0_1(_) => Ok(Err(NO_BACKUP_HOOKS.into())),
            PluginPre::V0_2(pre) => pre.restore(store, ctx),
        }
    }

    /// `notices`: nothing to say from a 0.1 plugin, which has no such hook.
    pub fn notices(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<Result<Vec<String>, String>> {
        match self {
            PluginPre::V0_1(_) => Ok(Ok(Vec::new())),
            PluginPre::V0_2(pre) => pre.notices(store, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_ranges() {
        for (version, ok) in [("0.1.0", true), ("0.1.7", true), ("0.2.0", true), ("0.3.0", false), ("1.1.0", false), ("0", false), ("", false)] {
            assert_eq!(super::is_supported(version), ok, "{version}");
        }
    }
}
