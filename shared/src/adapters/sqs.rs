//! [`EventQueue`] on Amazon SQS (aws-sdk-sqs). One message per event, with
//! the attributes `event_id`, `type`, `source` and `livemode`; batches of 10
//! (SQS's `SendMessageBatch` maximum) for the poller.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

use crate::ports::{EventQueue, QueueError, QueueMessage};

/// SQS allows at most 10 entries per batch call.
pub const SQS_BATCH_MAX: usize = 10;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

/// The attributes every message carries.
pub fn attributes(m: &QueueMessage) -> std::collections::HashMap<String, MessageAttributeValue> {
    let mut attrs = std::collections::HashMap::with_capacity(4);
    attrs.insert("event_id".to_owned(), string_attr(&m.event_id));
    attrs.insert("type".to_owned(), string_attr(&m.event_type));
    attrs.insert("source".to_owned(), string_attr(m.source.as_str()));
    if let Some(l) = m.livemode {
        attrs.insert("livemode".to_owned(), string_attr(if l { "true" } else { "false" }));
    }
    attrs
}

/// Maps an SDK error: service faults and transport problems are outages
/// (retryable); a refused message is not.
pub(crate) fn classify<E, R>(err: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let permanent = matches!(
                code,
                "InvalidMessageContents"
                    | "InvalidParameterValue"
                    | "MessageTooLong"
                    | "InvalidAttributeName"
                    | "InvalidAttributeValue"
                    | "BatchRequestTooLong"
            );
            if permanent {
                QueueError::Rejected(text)
            } else {
                QueueError::Unavailable(text)
            }
        }
        _ => QueueError::Unavailable(text),
    }
}

#[async_trait]
impl EventQueue for SqsQueue {
    async fn send(&self, m: &QueueMessage) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&m.body)
            .set_message_attributes(Some(attributes(m)))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        for chunk in messages.chunks(SQS_BATCH_MAX) {
            let mut pending: Vec<(usize, &QueueMessage)> = chunk.iter().enumerate().collect();
            // Entries SQS reports as failed are resent (up to 3 tries) before giving up.
            for attempt in 0..3 {
                let entries = pending
                    .iter()
                    .map(|(i, m)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&m.body)
                            .set_message_attributes(Some(attributes(m)))
                            .build()
                            .expect("id and body are set")
                    })
                    .collect::<Vec<_>>();
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(classify)?;
                let failed = out.failed();
                if failed.is_empty() {
                    pending.clear();
                    break;
                }
                if let Some(f) = failed.iter().find(|f| f.sender_fault()) {
                    return Err(QueueError::Rejected(format!(
                        "batch entry refused: {} {}",
                        f.code(),
                        f.message().unwrap_or("")
                    )));
                }
                let failed_ids: Vec<&str> = failed.iter().map(|f| f.id()).collect();
                pending.retain(|(i, _)| failed_ids.contains(&i.to_string().as_str()));
                tracing::warn!(attempt, failed = pending.len(), "SQS batch entries failed; resending");
            }
            if !pending.is_empty() {
                return Err(QueueError::Unavailable(format!("{} batch entries failed after retries", pending.len())));
            }
        }
        Ok(())
    }
}

/// [`crate::ports::DeadLetters`] on an SQS dead-letter queue: the message
/// body as it was, with `event_id` and a `reason` attribute.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters(pub SqsQueue);

#[async_trait]
impl crate::ports::DeadLetters for SqsDeadLetters {
    async fn dead_letter(&self, body: &str, event_id: Option<&str>, reason: &str) -> Result<(), QueueError> {
        let mut req = self
            .0
            .client
            .send_message()
            .queue_url(&self.0.queue_url)
            .message_body(body)
            .message_attributes("reason", string_attr(&reason.chars().take(256).collect::<String>()));
        if let Some(id) = event_id {
            req = req.message_attributes("event_id", string_attr(id));
        }
        req.send().await.map_err(classify)?;
        Ok(())
    }
}
