//! The manual clock that `wait` reads: a test moves it on instead of sleeping.

use std::time::Duration;

use super::MockHost;

impl MockHost {
    /// Move the manual clock on (what `wait::until` reads).
    pub fn advance(&self, by: Duration) -> &Self {
        self.with(|s| s.clock += by);
        self
    }

    /// How far the manual clock has moved (what the plugin's waits would have taken).
    pub fn elapsed(&self) -> Duration {
        self.with(|s| s.clock)
    }
}

/// The manual clock: a sleep moves it on at once. With no mock installed, the real one.
pub mod imports {
    use std::time::{Duration, Instant};

    use crate::testing::CURRENT;

    pub fn now() -> Instant {
        match CURRENT.with(|c| c.borrow().clone()) {
            Some(state) => {
                let s = state.borrow();
                s.clock_base.unwrap_or_else(Instant::now) + s.clock
            }
            None => Instant::now(),
        }
    }

    pub fn sleep(by: Duration) {
        match CURRENT.with(|c| c.borrow().clone()) {
            Some(state) => state.borrow_mut().clock += by,
            None => std::thread::sleep(by),
        }
    }
}
