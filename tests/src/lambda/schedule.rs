//! An EventBridge schedule: invokes a function asynchronously with a fresh
//! scheduled event every period (the first at once). A run that finds every
//! environment busy (the poller's reserved concurrency of 1, still running
//! the previous tick) is throttled and dropped, as the template configures
//! the poller (`MaximumRetryAttempts: 0`, `MaximumEventAgeInSeconds: 60`):
//! the next tick resumes from the cursor.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use super::runtime::{Function, InvokeError};

/// One tick's invocation.
#[derive(Debug, Clone)]
pub struct ScheduledRun {
    pub started: Instant,
    pub finished: Instant,
    pub result: Result<Value, InvokeError>,
}

/// A running schedule; dropping it stops the ticks (a run under way finishes).
pub struct Schedule {
    ticker: JoinHandle<()>,
    runs: Arc<Mutex<Vec<ScheduledRun>>>,
}

impl Schedule {
    /// Ticks every `period`; `event` makes each tick's payload.
    pub fn start(function: Arc<Function>, period: Duration, event: impl Fn() -> Value + Send + 'static) -> Self {
        let runs = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&runs);
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                let payload = event();
                let function = Arc::clone(&function);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = function.try_invoke(&payload).await;
                    let run = ScheduledRun { started, finished: Instant::now(), result };
                    log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(run);
                });
            }
        });
        Self { ticker, runs }
    }

    /// Every finished run so far (throttled ticks included), in finishing order.
    pub fn runs(&self) -> Vec<ScheduledRun> {
        self.runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The last run that started at or after `since` and was not throttled.
    pub fn last_run_since(&self, since: Instant) -> Option<ScheduledRun> {
        self.runs()
            .into_iter()
            .filter(|r| r.started >= since && !matches!(r.result, Err(InvokeError::Throttled)))
            .max_by_key(|r| r.started)
    }

    pub fn stop(&self) {
        self.ticker.abort();
    }
}

impl Drop for Schedule {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}
