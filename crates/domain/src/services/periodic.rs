//! The loop of the background passes (tenant guard, usage sampler): one round at once, then
//! one per interval, until the shutdown signal changes; a round in progress then is
//! abandoned.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

/// Shortest interval accepted, so a tiny setting cannot turn a pass into a busy loop.
const MIN_EVERY: Duration = Duration::from_millis(100);

pub(crate) struct Periodic {
    ticker: Interval,
    shutdown: watch::Receiver<bool>,
}

impl Periodic {
    /// Ticks every `every` (at least [`MIN_EVERY`]); a late round delays the next ones
    /// rather than bunching them.
    pub(crate) fn new(every: Duration, shutdown: watch::Receiver<bool>) -> Self {
        let mut ticker = tokio::time::interval(every.max(MIN_EVERY));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { ticker, shutdown }
    }

    /// Waits for the next round; false once the shutdown signal changed (or its sender is
    /// gone).
    pub(crate) async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.ticker.tick() => {}
            _ = self.shutdown.changed() => return false,
        }
        !*self.shutdown.borrow()
    }

    /// Runs `round`, or abandons it and returns `None` when the shutdown signal changes first.
    pub(crate) async fn run<T>(&mut self, round: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            r = round => Some(r),
            _ = self.shutdown.changed() => None,
        }
    }
}
