//! The `stripe-to-brevo` Lambda's adapter: an SQS batch in, a partial batch
//! response out (only messages to retry are reported; an empty message id is
//! never reported, since Lambda would then fail the whole batch).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::Diagnostic;
use shared::adapters::sqs::{self, attr, MessageAttributes};
use shared::config::ConfigError;
use shared::pipeline::consume::{Consumer, InboundMessage};
use shared::ports::{BrevoApi, Clock, IdempotencyStore, StripeApi};
use tracing::Instrument;

/// Why a whole invocation failed (Lambda then retries the batch): the
/// consumer could not be built, e.g. a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Lambda reports `error_type` (`SecretUnavailable`, `ConfigError`) in the
/// invocation's error and its logs; the message names the variable, never a secret.
impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Config(c) => c.kind(),
        };
        Diagnostic { error_type: error_type.to_owned(), error_message: e.to_string() }
    }
}

/// Converts one SQS record (attribute names and parsing: `shared::adapters::sqs`).
pub fn inbound(record: &SqsMessage) -> InboundMessage {
    let attrs = MessageAttributes::parse(|k| record.message_attributes.get(k).and_then(|a| a.string_value.clone()));
    InboundMessage {
        message_id: record.message_id.clone().unwrap_or_default(),
        body: record.body.clone().unwrap_or_default(),
        event_id: attrs.event_id,
        event_type: attrs.event_type,
        source: attrs.source,
        receive_count: sqs::receive_count(record.attributes.get(attr::APPROXIMATE_RECEIVE_COUNT).map(String::as_str)),
    }
}

/// Handles one SQS batch.
pub async fn handle<S, B, I, C>(consumer: &Consumer<S, B, I, C>, event: SqsEvent) -> SqsBatchResponse
where
    S: StripeApi,
    B: BrevoApi,
    I: IdempotencyStore,
    C: Clock,
{
    handle_until(consumer, event, None).await
}

/// The invocation's deadline (`Lambda-Runtime-Deadline-Ms`, milliseconds
/// since the epoch) as an instant on this process's clock; `None` when it is
/// not in the future (a local runtime that sets none, e.g. `cargo lambda
/// watch`): the batch then runs without one.
pub fn deadline_instant(deadline_ms: u64) -> Option<tokio::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    if deadline_ms <= now_ms {
        tracing::debug!(deadline_ms, now_ms, "the invocation's deadline is not in the future: ignored");
        return None;
    }
    Some(tokio::time::Instant::now() + std::time::Duration::from_millis(deadline_ms - now_ms))
}

/// Handles one SQS batch, starting no work it could not finish before
/// `deadline` (the rest goes back on the queue as copies).
pub async fn handle_until<S, B, I, C>(
    consumer: &Consumer<S, B, I, C>,
    event: SqsEvent,
    deadline: Option<tokio::time::Instant>,
) -> SqsBatchResponse
where
    S: StripeApi,
    B: BrevoApi,
    I: IdempotencyStore,
    C: Clock,
{
    let batch: Vec<InboundMessage> = event.records.iter().map(inbound).collect();
    let span = tracing::info_span!("batch", messages = batch.len());
    let report = consumer.consume_until(&batch, deadline).instrument(span).await;
    for (m, (_, outcome)) in batch.iter().zip(&report.outcomes) {
        if m.message_id.is_empty() && outcome.is_retry() {
            tracing::error!(event_id = ?m.event_id, "a message without id cannot be reported for retry; SQS will redeliver it after the visibility timeout only if the batch fails");
        }
    }
    report.stats.log();
    let mut resp = SqsBatchResponse::default();
    for id in report.retry_ids() {
        resp.add_failure(id);
    }
    resp
}

#[cfg(test)]
mod tests {
    use shared::ports::Source;

    use super::*;

    #[test]
    fn a_sample_record_is_read_with_the_adapters_attribute_names() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/sqs/batch.json");
        let text = std::fs::read_to_string(path).expect("events/sqs/batch.json");
        let event: SqsEvent = serde_json::from_str(&text).expect("an SQS event");
        let m = inbound(&event.records[0]);
        assert_eq!(m.message_id, "00000000-sample");
        assert!(m.body.contains("evt_sample_00_customer_created"));
        assert_eq!(m.event_id.as_deref(), Some("evt_sample_00_customer_created"));
        assert_eq!(m.event_type.as_deref(), Some("customer.created"));
        assert_eq!((m.source, m.receive_count), (Some(Source::Webhook), 1));

        let bare = inbound(&SqsMessage::default());
        assert_eq!((bare.message_id.as_str(), bare.event_id, bare.source, bare.receive_count), ("", None, None, 1));
    }

    #[test]
    fn an_unreadable_secret_is_reported_as_secret_unavailable_without_the_secret() {
        let e = HandlerError::from(ConfigError::SecretUnavailable {
            var: "BREVO_API_KEY".into(),
            reason: "AccessDeniedException".into(),
        });
        let d = Diagnostic::from(e);
        assert_eq!(d.error_type, "SecretUnavailable");
        assert!(d.error_message.contains("BREVO_API_KEY") && d.error_message.contains("AccessDenied"), "{d:?}");
    }

    #[test]
    fn a_wrong_setting_is_reported_as_config_error() {
        let d = Diagnostic::from(HandlerError::from(ConfigError::invalid("BREVO_API_BASE", "must be an http(s) URL")));
        assert_eq!(d.error_type, "ConfigError");
        assert_eq!(d.error_message, "BREVO_API_BASE is invalid: must be an http(s) URL");
    }
}

#[cfg(test)]
mod deadline_tests {
    use super::deadline_instant;

    fn now_ms() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    #[tokio::test]
    async fn a_deadline_in_the_future_becomes_an_instant_that_far_away() {
        let d = deadline_instant(now_ms() + 60_000).expect("a deadline");
        let left = d.saturating_duration_since(tokio::time::Instant::now());
        assert!(left > std::time::Duration::from_secs(58) && left <= std::time::Duration::from_secs(60), "{left:?}");
    }

    #[tokio::test]
    async fn a_deadline_that_is_not_in_the_future_is_ignored() {
        assert!(deadline_instant(0).is_none());
        assert!(deadline_instant(now_ms().saturating_sub(1_000)).is_none());
    }
}
