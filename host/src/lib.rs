//! provisioner: brings up an application's backing infrastructure on a container
//! engine through sandboxed WebAssembly component plugins.
//!
//! Where things are:
//! - `runtime`: the wasmtime engine, per-hook stores and limits, the component cache;
//! - `capabilities`: declared ∩ granted, one file per host import, in the host's own
//!   types (`spec`); the WIT glue per version is in `runtime::wit`;
//! - `naming`: every engine name and label; `policy`: what a spec may become;
//! - `realise`: how a target runs a workload (observe → reconcile → execute);
//! - `engine`: the container engine operations a realiser uses;
//! - `discovery`: finding and loading plugins;
//! - `config`: `provisioner.toml`, and the limits it shares with the commands;
//! - `lifecycle`: the order hooks run in for `run` and `teardown`;
//! - `state`: `.provisioner/<env>/state.json`, the environment lock, `.env`;
//! - `outcome`: what `run` and `teardown` record (state and `.env`) from their summary;
//! - `scale`: `provisioner scale` assignments, their checks and overrides;
//! - `distribution`: third-party plugins (the lockfile, the plugin registry and its
//!   signatures, drop-in grants);
//! - `authoring`: the authoring kit (`plugins new`, `plugins check`);
//! - `fsutil`: the one atomic, private file writer;
//! - `progress`: what a run shows while it works.

pub mod authoring;
pub mod backup;
pub mod capabilities;
pub mod config;
pub mod digest;
pub mod discovery;
pub mod distribution;
pub mod engine;
pub mod fsutil;
pub mod lifecycle;
pub mod limits;
pub mod logs;
pub mod naming;
pub mod outcome;
pub mod outputs;
pub mod policy;
pub mod realise;
pub mod references;
pub mod spec;
pub mod progress;
pub mod runtime;
pub mod scale;
pub mod state;
pub mod text;
pub mod timings;
pub mod totals;
