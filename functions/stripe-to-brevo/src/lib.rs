//! The `stripe-to-brevo` Lambda's adapter: an SQS batch in, a partial batch
//! response out (only messages to retry are reported; an empty message id is
//! never reported, since Lambda would then fail the whole batch).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::pipeline::consume::{Consumer, InboundMessage};
use shared::ports::{BrevoApi, Clock, IdempotencyStore, Source, StripeApi};
use tracing::Instrument;

/// Converts one SQS record.
pub fn inbound(record: &SqsMessage) -> InboundMessage {
    let attr = |k: &str| record.message_attributes.get(k).and_then(|a| a.string_value.clone());
    InboundMessage {
        message_id: record.message_id.clone().unwrap_or_default(),
        body: record.body.clone().unwrap_or_default(),
        event_id: attr("event_id"),
        event_type: attr("type"),
        source: attr("source").as_deref().and_then(Source::parse),
        receive_count: record.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1),
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
    let batch: Vec<InboundMessage> = event.records.iter().map(inbound).collect();
    let span = tracing::info_span!("batch", messages = batch.len());
    let report = consumer.consume(&batch).instrument(span).await;
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
