//! `provisioner:plugin@0.1.0` (`wit/v0.1.0`, frozen): the bindings, and the one
//! thing of 0.1 its successors changed, `plugin-info` (no `backup`). Everything else
//! is the shared [`edge`](super::edge).

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "service-plugin",
});

use self::provisioner::plugin::{docker, log, secrets, types};

super::edge::edge!({});

impl From<types::PluginInfo> for PluginInfo {
    fn from(info: types::PluginInfo) -> Self {
        plugin_info(info, None)
    }
}
