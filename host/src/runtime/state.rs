//! The data of one hook call's store: its WASI context, its limiter, and the host side
//! of its calls. A fresh `HookState` (and `Store`) is made for every call.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::{HookLimits, Limiter};
use super::stderr::StderrTail;
use crate::capabilities::HostCalls;
pub use crate::capabilities::ServiceHost;

// Where these lived before they got their own modules; kept so callers need not care.
pub use crate::capabilities::ProgressSink;
pub use crate::naming::Scope;
pub use crate::policy::ContainerDefaults;
pub use crate::realise::Phases;

pub struct HookState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// The host side of the call: capabilities, denials, engine timings.
    pub(crate) calls: HostCalls,
}

impl HookState {
    pub fn new(host: Arc<ServiceHost>, stderr: StderrTail, limits: &HookLimits) -> anyhow::Result<Self> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr);
        host.configure_wasi(&mut wasi)?;
        Ok(HookState { wasi: wasi.build(), table: ResourceTable::new(), limiter: Limiter::new(limits), calls: HostCalls::new(host) })
    }
}

impl WasiView for HookState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
