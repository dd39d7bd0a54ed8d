//! The service's state files (see [`crate::state`]).

use super::MockHost;

impl MockHost {
    /// Put `contents` in the service's state file `name` (see [`crate::state`]).
    pub fn set_state_file(&self, name: &str, contents: &str) -> &Self {
        self.with(|s| s.state_files.insert(name.to_string(), contents.to_string()));
        self
    }

    /// The state file `name`, if there is one.
    pub fn state_file(&self, name: &str) -> Option<String> {
        self.with(|s| s.state_files.get(name).cloned())
    }
}

pub mod imports {
    use crate::testing::with;
    use crate::Capability;

    pub fn read(name: &str) -> Option<String> {
        with(|s| s.state_files.get(name).cloned())
    }

    pub fn write(name: &str, contents: &str) -> Result<(), String> {
        with(|s| {
            s.allows(|c| matches!(c, Capability::StateFiles), format!("state file {name}")).map_err(|e| e.to_string())?;
            s.state_files.insert(name.to_string(), contents.to_string());
            Ok(())
        })
    }

    pub fn remove(name: &str) {
        with(|s| s.state_files.remove(name));
    }
}
