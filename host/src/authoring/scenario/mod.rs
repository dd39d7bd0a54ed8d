//! `provisioner plugins test FILE.wasm SCENARIO.toml`: a plugin author's own steps
//! against a real engine, like Terraform's `resource.Test`: run with one config, check
//! what came out, change the config and run again (the replace path), tear down keeping
//! the volumes, run again and check the data is still there.
//!
//! Each step goes through the same library calls as `provisioner run` and `provisioner
//! teardown` (the lifecycle's `Stack`, the realiser, the state and `.env` files), in a
//! throwaway project with a unique name and everything the plugin declares granted.
//! A failed step stops the scenario; whatever happened, the project is torn down
//! at the end and anything left of it is removed by label.
//!
//! ```toml
//! service = "cache"                  # the service's name (default: the plugin's)
//!
//! [[step]]
//! name = "first run"
//! config = { memory_mb = 64 }
//! expect.outputs = { MEMCACHED_SERVERS = { matches = "127.0.0.1:*" } }
//! expect.tcp = "MEMCACHED_SERVERS"
//! expect.exec = { cmd = ["memcached", "-V"], stdout_contains = "1.6" }
//!
//! [[step]]
//! action = "teardown-keep-volumes"
//! ```

mod file;
mod run;

pub use file::{Action, Exec, Expect, OneOrMany, OutputCheck, OutputExpect, Scenario, ScenarioError, Step, Tcp, TcpCheck};
pub use run::{run, Options, Report, RunError, StepResult, Verdict};
