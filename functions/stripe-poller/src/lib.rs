//! The `stripe-poller` Lambda's adapter: the invocation payload (an
//! EventBridge scheduled event, or an operator's override such as
//! `{"mode":"backfill","since":"2023-01-01","resources":["customers"]}`) and
//! the invocation's deadline in, a JSON summary of the run out. The work is
//! [`shared::pipeline::poll::Poller`]; this file only translates.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::Diagnostic;
use serde_json::{json, Value};
use shared::config::ConfigError;
use shared::pipeline::poll::{PollError, PollReport, PollRequest, Poller, StripeFeed};
use shared::ports::{Clock, CursorStore, EventQueue};

/// Why an invocation is reported as failed (Lambda's `Errors` metric).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The poller could not be built (e.g. the Stripe key could not be read).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Poll(#[from] PollError),
    /// The run went through, but these resources could not be read; each
    /// record's `last_error` says why and the next run retries them.
    #[error("resources failed: {0}")]
    ResourcesFailed(String),
}

/// Lambda reports `error_type` in the invocation's error and its logs: a
/// configuration fault (`ConfigError`, `SecretUnavailable`), a refused
/// payload (`BadRequest`), an AWS outage (`CursorStoreError`, `QueueError`)
/// or resources Stripe would not serve (`ResourcesFailed`). The message
/// names variables and resources, never a secret.
impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Config(c) => c.kind(),
            HandlerError::Poll(PollError::BadRequest(_)) => "BadRequest",
            HandlerError::Poll(PollError::Store(_)) => "CursorStoreError",
            HandlerError::Poll(PollError::Queue(_)) => "QueueError",
            HandlerError::ResourcesFailed(_) => "ResourcesFailed",
        };
        Diagnostic { error_type: error_type.to_owned(), error_message: e.to_string() }
    }
}

/// The instant the run must be over by, from the context's deadline (epoch
/// milliseconds, as `lambda_runtime::Context::deadline`).
/// Deadlines before 2001-09-09 (1e12 ms) are not real Lambda deadlines.
pub const UNKNOWN_DEADLINE_BEFORE_MS: u64 = 1_000_000_000_000;
/// The budget used when the invoker gives no real deadline.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(240);

pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    // Local emulators (cargo lambda watch 1.9) send a fixed deadline near the
    // epoch: that is "unknown", not "already passed". Use a default budget.
    if deadline_ms < UNKNOWN_DEADLINE_BEFORE_MS {
        return Instant::now() + DEFAULT_BUDGET;
    }
    let left = u128::from(deadline_ms).saturating_sub(now_ms);
    Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX / 2))
}

/// The summary returned to the invoker (counts only: no ids, no bodies).
pub fn summary(report: &PollReport) -> Value {
    json!({
        "ran": report.ran,
        "stopped_early": report.stopped_early,
        "caught_up": report.caught_up(),
        "requests": report.requests(),
        "retries": report.retries(),
        "objects": report.objects(),
        "messages": report.messages(),
        "resources": report.resources,
    })
}

/// Handles one invocation: `owner` names this run in the lease (the request id).
pub async fn handle<F, Q, S, C>(
    poller: &Poller<F, Q, S, C>,
    payload: Value,
    owner: &str,
    deadline: Instant,
) -> Result<Value, HandlerError>
where
    F: StripeFeed,
    Q: EventQueue,
    S: CursorStore,
    C: Clock,
{
    let request = PollRequest::from_event(&payload).map_err(PollError::from)?;
    let report = poller.run(&request, owner, deadline).await?;
    let failed: Vec<&str> = report.failed().iter().map(|r| r.resource.as_str()).collect();
    if !failed.is_empty() {
        return Err(HandlerError::ResourcesFailed(failed.join(", ")));
    }
    Ok(summary(&report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_deadline_is_honoured_and_an_emulators_fixed_one_means_the_default_budget() {
        let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0))
            .unwrap_or(0);
        let d = deadline_from_epoch_ms(now_ms + 30_000);
        let left = d.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(25) && left <= Duration::from_secs(30), "{left:?}");
        let past = deadline_from_epoch_ms(now_ms - 1_000);
        assert_eq!(past.saturating_duration_since(Instant::now()), Duration::ZERO);
        let emulator = deadline_from_epoch_ms(600_000);
        assert!(emulator.saturating_duration_since(Instant::now()) > Duration::from_secs(200));
    }

    #[test]
    fn each_failure_reaches_lambda_with_its_own_error_type() {
        let diagnostic = |e: HandlerError| Diagnostic::from(e);
        let d = diagnostic(
            ConfigError::SecretUnavailable { var: "STRIPE_SECRET_KEY".into(), reason: "timeout".into() }.into(),
        );
        assert_eq!(d.error_type, "SecretUnavailable");
        assert_eq!(d.error_message, "could not read secret for STRIPE_SECRET_KEY: timeout");
        let d = diagnostic(ConfigError::invalid("STRIPE_API_BASE", "must be an http(s) URL").into());
        assert_eq!(d.error_type, "ConfigError");
        let Err(bad) = PollRequest::from_event(&json!({"mode": "nope"})).map_err(PollError::from) else {
            panic!("an unknown mode is refused")
        };
        assert_eq!(diagnostic(bad.into()).error_type, "BadRequest");
        let store = PollError::from(shared::ports::StoreError::Unavailable("throttled".into()));
        assert_eq!(diagnostic(store.into()).error_type, "CursorStoreError");
        let queue = PollError::from(shared::ports::QueueError::Unavailable("down".into()));
        assert_eq!(diagnostic(queue.into()).error_type, "QueueError");
        let d = diagnostic(HandlerError::ResourcesFailed("charges, refunds".into()));
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("ResourcesFailed", "resources failed: charges, refunds")
        );
    }
}
