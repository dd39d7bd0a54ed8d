//! What the plugin logged and the progress it showed (the WIT `log` interface).

use crate::Level;

use super::MockHost;

impl MockHost {
    /// Every message logged, with its level.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.with(|s| s.log.clone())
    }

    /// Every progress line shown.
    pub fn progress(&self) -> Vec<String> {
        self.with(|s| s.progress.clone())
    }
}

pub mod imports {
    use crate::testing::with;
    use crate::Level;

    pub fn log(level: Level, message: &str) {
        with(|s| s.log.push((level, message.to_string())));
    }

    pub fn progress(message: &str) {
        with(|s| s.progress.push(message.to_string()));
    }
}
