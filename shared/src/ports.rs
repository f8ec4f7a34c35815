//! The small traits the use cases are generic over. Each has a real adapter
//! (SQS, DynamoDB, SQLite, HTTP) and an in-memory fake for core unit tests.

use async_trait::async_trait;

/// Where a queue message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Webhook,
    Poller,
    Backfill,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Poller => "poller",
            Self::Backfill => "backfill",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" => Some(Self::Webhook),
            "poller" => Some(Self::Poller),
            "backfill" => Some(Self::Backfill),
            _ => None,
        }
    }
}

/// One unit of work on the queue: the raw Stripe event JSON (webhook and
/// Events API alike) or a backfill snapshot, with attributes that let the
/// consumer route it without parsing the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub body: String,
    pub event_id: String,
    pub event_type: String,
    pub livemode: Option<bool>,
    pub source: Source,
}

impl QueueMessage {
    /// Bytes the message occupies against SQS's size limit (body plus each
    /// attribute's name, type and value).
    pub fn sqs_size(&self) -> usize {
        let attr = |name: &str, value: &str| name.len() + "String".len() + value.len();
        self.body.len()
            + attr("event_id", &self.event_id)
            + attr("type", &self.event_type)
            + attr("source", self.source.as_str())
            + self.livemode.map_or(0, |_| attr("livemode", "false"))
    }
}

/// The SQS limit on one message including attributes (1 MiB since 2025-08).
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue could not be reached or answered with a server error.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The queue refused the message itself (too large, invalid attribute).
    #[error("queue rejected the message: {0}")]
    Rejected(String),
}

impl QueueError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Durable queue the three doors write to.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Returns once the message is durably stored.
    async fn send(&self, message: &QueueMessage) -> Result<(), QueueError>;

    /// Sends many; the default sends one by one. Adapters batch (SQS: 10).
    /// Fails on the first message that could not be stored.
    async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        for m in messages {
            self.send(m).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<T: EventQueue + ?Sized> EventQueue for std::sync::Arc<T> {
    async fn send(&self, message: &QueueMessage) -> Result<(), QueueError> {
        (**self).send(message).await
    }
    async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        (**self).send_all(messages).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store record is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Wall clock, injectable so tests control time.
pub trait Clock: Send + Sync {
    fn now_unix(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

impl<T: Clock + ?Sized> Clock for std::sync::Arc<T> {
    fn now_unix(&self) -> i64 {
        (**self).now_unix()
    }
}
