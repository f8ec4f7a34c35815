//! [`EventQueue`] on Amazon SQS (aws-sdk-sqs). One message per event, with
//! the attributes of [`attr`] (`event_id`, `type`, `source`, `livemode`);
//! batches of 10 (SQS's `SendMessageBatch` maximum) for the poller.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>
//!
//! The receive side lives here too: [`MessageAttributes::parse`] reads the
//! attributes back from any message (an SDK message, or a Lambda SQS record
//! converted by the function crate: no Lambda types here), and
//! [`SqsQueue::receive`] / [`SqsQueue::ack`] / [`SqsQueue::change_visibility`]
//! are what the CLI's `--aws` worker does where the Lambda event source
//! mapping would.

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;

use crate::ports::{EventQueue, QueueError, QueueMessage, Source};

/// SQS allows at most 10 entries per batch call (and 10 messages per receive).
pub const SQS_BATCH_MAX: usize = 10;

/// The longest visibility timeout SQS accepts: 12 hours.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html>
pub const MAX_VISIBILITY_SECS: i64 = 43_200;

/// The message attribute names, written by [`attributes`] and read back by
/// [`MessageAttributes::parse`]: a [`QueueMessage`]'s own (named in
/// [`crate::ports::attr`], which sizes messages with them) and these.
pub mod attr {
    pub use crate::ports::attr::{EVENT_ID, EVENT_TYPE, LIVEMODE, SOURCE};
    /// On a dead-lettered copy: why it was dead-lettered.
    pub const REASON: &str = "reason";
    /// The system attribute counting deliveries (Lambda records carry it
    /// in `attributes` under this name).
    pub const APPROXIMATE_RECEIVE_COUNT: &str = "ApproximateReceiveCount";
}

/// The attributes of a received message; absent or unreadable ones are `None`
/// (the body is authoritative).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageAttributes {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub source: Option<Source>,
    pub livemode: Option<bool>,
}

impl MessageAttributes {
    /// Reads them through `get`, which returns a string attribute's value by name.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            event_id: get(attr::EVENT_ID),
            event_type: get(attr::EVENT_TYPE),
            source: get(attr::SOURCE).as_deref().and_then(Source::parse),
            livemode: get(attr::LIVEMODE).and_then(|v| match v.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            }),
        }
    }
}

/// `ApproximateReceiveCount` as a number; 1 when absent or unreadable.
pub fn receive_count(raw: Option<&str>) -> u32 {
    raw.and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// One message taken by [`SqsQueue::receive`].
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub body: String,
    /// What [`SqsQueue::ack`] and [`SqsQueue::change_visibility`] need.
    pub receipt_handle: String,
    pub attributes: MessageAttributes,
    pub receive_count: u32,
}

/// A queue's approximate message counts (`GetQueueAttributes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// `ApproximateNumberOfMessages`: visible, waiting to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received, not yet deleted.
    pub in_flight: u64,
}

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

    /// Up to `max` (at most 10) messages, long-polling up to `wait_secs`,
    /// each hidden from other receivers for `visibility_secs`.
    pub async fn receive(
        &self,
        max: usize,
        wait_secs: i32,
        visibility_secs: i32,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, SQS_BATCH_MAX)).unwrap_or(10))
            .wait_time_seconds(wait_secs)
            .visibility_timeout(visibility_secs)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(classify)?;
        Ok(out
            .messages()
            .iter()
            .map(|m| ReceivedMessage {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                attributes: MessageAttributes::parse(|k| {
                    m.message_attributes().and_then(|a| a.get(k)).and_then(|v| v.string_value().map(str::to_owned))
                }),
                receive_count: receive_count(
                    m.attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .map(String::as_str),
                ),
            })
            .collect())
    }

    /// Acknowledges (deletes) a processed message.
    pub async fn ack(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Makes a received message visible again in `secs` (0 ..= 12 h).
    pub async fn change_visibility(&self, receipt_handle: &str, secs: i64) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(secs.clamp(0, MAX_VISIBILITY_SECS)).unwrap_or(0))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// The approximate counts, in one `GetQueueAttributes` call.
    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ];
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(classify)?;
        let count = |n: &QueueAttributeName| {
            out.attributes().and_then(|a| a.get(n)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        Ok(QueueCounts { visible: count(&names[0]), delayed: count(&names[1]), in_flight: count(&names[2]) })
    }

    /// The URL of the dead-letter queue named by the queue's redrive policy,
    /// when it has one (and it can be looked up).
    pub async fn dead_letter_queue_url(&self) -> Option<String> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .ok()?;
        let policy = out.attributes()?.get(&QueueAttributeName::RedrivePolicy)?.clone();
        let arn =
            serde_json::from_str::<serde_json::Value>(&policy).ok()?.get("deadLetterTargetArn")?.as_str()?.to_owned();
        let name = arn.rsplit(':').next()?.to_owned();
        let url = self.client.get_queue_url().queue_name(name).send().await.ok()?;
        url.queue_url().map(str::to_owned)
    }
}

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

/// The attributes every message carries.
pub fn attributes(m: &QueueMessage) -> std::collections::HashMap<String, MessageAttributeValue> {
    let mut attrs = std::collections::HashMap::with_capacity(4);
    attrs.insert(attr::EVENT_ID.to_owned(), string_attr(&m.event_id));
    attrs.insert(attr::EVENT_TYPE.to_owned(), string_attr(&m.event_type));
    attrs.insert(attr::SOURCE.to_owned(), string_attr(m.source.as_str()));
    if let Some(l) = m.livemode {
        attrs.insert(attr::LIVEMODE.to_owned(), string_attr(if l { "true" } else { "false" }));
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

    async fn send_delayed(&self, m: &QueueMessage, delay_secs: u32) -> Result<(), QueueError> {
        // SQS takes 0–900 s (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).
        let delay = i32::try_from(delay_secs.min(900)).unwrap_or(900);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&m.body)
            .delay_seconds(delay)
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
            .message_attributes(attr::REASON, string_attr(&reason.chars().take(256).collect::<String>()));
        if let Some(id) = event_id {
            req = req.message_attributes(attr::EVENT_ID, string_attr(id));
        }
        req.send().await.map_err(classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> QueueMessage {
        QueueMessage {
            body: "{}".to_owned(),
            event_id: "evt_1".to_owned(),
            event_type: "customer.updated".to_owned(),
            source: Source::Poller,
            livemode: Some(false),
        }
    }

    #[test]
    fn the_attributes_sent_are_the_attributes_parsed_back() {
        let sent = attributes(&message());
        let got = MessageAttributes::parse(|k| sent.get(k).and_then(|v| v.string_value().map(str::to_owned)));
        assert_eq!(
            got,
            MessageAttributes {
                event_id: Some("evt_1".into()),
                event_type: Some("customer.updated".into()),
                source: Some(Source::Poller),
                livemode: Some(false),
            }
        );
    }

    #[test]
    fn absent_or_unknown_attributes_are_none_and_the_receive_count_defaults_to_one() {
        let got = MessageAttributes::parse(|k| (k == attr::SOURCE).then(|| "carrier pigeon".to_owned()));
        assert_eq!(got, MessageAttributes::default());
        assert_eq!(receive_count(Some("3")), 3);
        assert_eq!(receive_count(Some("x")), 1);
        assert_eq!(receive_count(None), 1);
    }
}
