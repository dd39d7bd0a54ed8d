//! Third-party plugins: how they are pinned, fetched, signed and granted.
//!
//! - `lock`: provisioner.lock, the plugins a project runs pinned by sha256 with their grants;
//! - `oci`: plugins as OCI artifacts (`oci://…`): push, inspect, install, signatures;
//! - `registry`: a plugin registry (a folder or an http(s) base URL), `install` and `publish`;
//! - `signing`: the registry's ed25519 keys and signatures;
//! - `sync`: locked plugins that are missing, fetched from where the lock says;
//! - `trust`: drop-in grants, grant advice and `plugins verify`.

pub mod lock;
pub mod oci;
pub mod registry;
pub mod signing;
pub mod sync;
pub mod trust;
