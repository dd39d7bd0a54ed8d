//! `state-files`: the only files a plugin sees are its service's own folder,
//! `.provisioner/<env>/services/<service>/`, preopened as `/state`. Nothing else is
//! preopened, so every other path fails inside the guest.

use anyhow::Context;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::service::ServiceHost;

/// Where plugins find their folder.
pub const GUEST_PATH: &str = "/state";

/// Preopen the service's folder, if granted and if the hook has one.
pub fn configure(wasi: &mut WasiCtxBuilder, host: &ServiceHost) -> anyhow::Result<()> {
    let Some(dir) = host.state_dir.as_ref().filter(|_| host.effective.allows_state_files()) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    wasi.preopened_dir(dir, GUEST_PATH, FsPerms::ReadWrite)
        .map_err(|e| anyhow::anyhow!("preopening {}: {e}", dir.display()))?;
    Ok(())
}
