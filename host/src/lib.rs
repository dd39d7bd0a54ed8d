//! provisioner: brings up an application's backing infrastructure on a container
//! engine through sandboxed WebAssembly component plugins.
//!
//! Where things are:
//! - `runtime`: the wasmtime engine, per-hook stores and limits, the component cache;
//! - `capabilities`: declared ∩ granted, one file per host import;
//! - `engine`: the container engine operations the capabilities use;
//! - `discovery`: finding and loading plugins;
//! - `config`: `provisioner.toml`;
//! - `lifecycle`: the order hooks run in for `run` and `teardown`;
//! - `lock`, `registry`, `signing`, `trust`: third-party plugins (the lockfile, the
//!   plugin registry and its signatures, drop-in grants);
//! - `scaffold`, `check`: the authoring kit (`plugins new`, `plugins check`).

pub mod capabilities;
pub mod check;
pub mod config;
pub mod discovery;
pub mod engine;
pub mod lifecycle;
pub mod lock;
pub mod registry;
pub mod scaffold;
pub mod signing;
pub mod trust;
pub mod progress;
pub mod references;
pub mod state;
pub mod runtime;
