//! Third-party plugins: how they are pinned, fetched, signed and granted.
//!
//! - `lock`: provisioner.lock, the plugins a project runs pinned by sha256 with their grants;
//! - `registry`: a plugin registry (a folder or an http(s) base URL), `install` and `publish`;
//! - `signing`: the registry's ed25519 keys and signatures;
//! - `trust`: drop-in grants, grant advice and `plugins verify`.

pub mod lock;
pub mod registry;
pub mod signing;
pub mod trust;
