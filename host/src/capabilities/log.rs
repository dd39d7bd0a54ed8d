//! `log`: always available. Messages go to the host's tracing log tagged with plugin
//! and service, with any secret the hook has read masked out and the length capped.

use super::service::HostCalls;

const MAX_MESSAGE: usize = 4096;
const MAX_PROGRESS: usize = 200;

/// How much a log message matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl HostCalls {
    pub fn log(&mut self, level: Level, message: &str) {
        // The no-op path (level filtered out) must stay cheap: plugins log freely.
        let enabled = match level {
            Level::Trace => tracing::enabled!(tracing::Level::TRACE),
            Level::Debug => tracing::enabled!(tracing::Level::DEBUG),
            _ => true,
        };
        if !enabled || !self.within_log_budget(message.len().min(MAX_MESSAGE)) {
            return;
        }
        let message = self.mask(message, MAX_MESSAGE, true);
        let scope = &self.host.scope;
        let (plugin, service) = (scope.plugin.as_str(), scope.service.as_str());
        match level {
            Level::Trace => tracing::trace!(plugin, service, "{message}"),
            Level::Debug => tracing::debug!(plugin, service, "{message}"),
            Level::Info => tracing::info!(plugin, service, "{message}"),
            Level::Warn => tracing::warn!(plugin, service, "{message}"),
            Level::Error => tracing::error!(plugin, service, "{message}"),
        }
    }

    pub fn progress(&mut self, message: &str) {
        let message = self.mask(message, MAX_PROGRESS, false);
        self.host.note(&message);
        tracing::debug!(plugin = %self.host.scope.plugin, service = %self.host.scope.service, "progress: {message}");
    }
}
