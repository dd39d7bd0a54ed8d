//! The one place the host generates bindings from the WIT. Each released WIT version
//! gets its own module here; a plugin is served by the module matching the version it
//! was built against.

/// `provisioner:plugin@0.1.0` (`wit/v0.1.0`).
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "service-plugin",
    });

    pub use self::exports::provisioner::plugin::hooks;
    pub use self::provisioner::plugin::{docker, log, secrets, types};
}

/// The WIT versions this host serves, as `major.minor` prefixes: while the major is 0,
/// a minor bump is breaking, so `0.1` serves every `0.1.x` plugin.
pub const SUPPORTED: &[&str] = &["0.1"];

/// The name of the export every plugin must have, before the `@version`.
pub const HOOKS_EXPORT: &str = "provisioner:plugin/hooks";

/// Whether a plugin built against WIT `version` (e.g. `0.1.0`) can be served.
pub fn is_supported(version: &str) -> bool {
    let mut parts = version.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return false;
    };
    SUPPORTED.contains(&format!("{major}.{minor}").as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_ranges() {
        for (version, ok) in [("0.1.0", true), ("0.1.7", true), ("0.2.0", false), ("1.1.0", false), ("0", false), ("", false)] {
            assert_eq!(super::is_supported(version), ok, "{version}");
        }
    }
}
