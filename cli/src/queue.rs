//! The receive side of the CLI's queue, [`WorkQueue`]: what the Lambda event
//! source mapping does for the deployed consumer. On the SQLite state file
//! ([`LocalQueue`]) or, with `--aws`, the deployed SQS queue ([`SqsWork`],
//! over `shared::adapters::sqs`'s receive / ack / change-visibility).
//! Uses nothing else of the CLI.

use async_trait::async_trait;
use shared::adapters::sqlite::{QueueDepth, Received, SqliteStore};
use shared::adapters::sqs::{ReceivedMessage, SqsQueue};
use shared::pipeline::consume::InboundMessage;
use shared::ports::{Clock, SystemClock};

/// One message handed out by a [`WorkQueue`].
#[derive(Debug, Clone)]
pub struct Delivery {
    pub inbound: InboundMessage,
    /// SQLite receipt or SQS receipt handle.
    pub handle: String,
    /// SQLite row id (0 on SQS).
    pub row: i64,
}

/// The receive side of a queue: what the Lambda event source mapping does
/// for the deployed consumer.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Up to `max` visible messages, each hidden for the visibility timeout.
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>>;
    /// Deletes a processed message.
    async fn ack(&self, d: &Delivery) -> anyhow::Result<()>;
    /// Makes a message visible again after `delay_secs`.
    async fn retry_later(&self, d: &Delivery, delay_secs: i64) -> anyhow::Result<()>;
    async fn depth(&self) -> anyhow::Result<QueueDepth>;
    /// Seconds until a message may be visible again; `None` when the queue is empty.
    async fn next_visible_in(&self) -> anyhow::Result<Option<i64>>;
}

/// The SQLite queue.
pub struct LocalQueue {
    pub store: SqliteStore,
    pub visibility_secs: i64,
}

/// The consumer's view of a SQLite row.
fn local_delivery(r: Received) -> Delivery {
    let inbound = InboundMessage {
        message_id: r.id.to_string(),
        body: r.message.body,
        event_id: Some(r.message.event_id).filter(|s| !s.is_empty()),
        event_type: Some(r.message.event_type).filter(|s| !s.is_empty()),
        source: Some(r.message.source),
        receive_count: r.receive_count,
    };
    Delivery { inbound, handle: r.receipt, row: r.id }
}

#[async_trait]
impl WorkQueue for LocalQueue {
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        let got = self.store.receive(max, self.visibility_secs, SystemClock.now_unix()).await?;
        Ok(got.into_iter().map(local_delivery).collect())
    }
    async fn ack(&self, d: &Delivery) -> anyhow::Result<()> {
        if !self.store.ack(d.row, &d.handle).await? {
            tracing::warn!(
                message_id = d.row,
                "message was delivered again before its acknowledgement (visibility timeout too short?)"
            );
        }
        Ok(())
    }
    async fn retry_later(&self, d: &Delivery, delay_secs: i64) -> anyhow::Result<()> {
        self.store.nack(d.row, &d.handle, delay_secs, SystemClock.now_unix()).await?;
        Ok(())
    }
    async fn depth(&self) -> anyhow::Result<QueueDepth> {
        Ok(self.store.depth(SystemClock.now_unix()).await?)
    }
    async fn next_visible_in(&self) -> anyhow::Result<Option<i64>> {
        Ok(self.store.next_visible_in(SystemClock.now_unix()).await?)
    }
}

/// The deployed SQS queue and its dead-letter queue, when known.
pub struct SqsWork {
    pub queue: SqsQueue,
    pub dead_letters: Option<SqsQueue>,
    pub visibility_secs: i32,
}

/// The consumer's view of an SQS message.
fn sqs_delivery(m: ReceivedMessage) -> Delivery {
    let inbound = InboundMessage {
        message_id: m.message_id,
        body: m.body,
        event_id: m.attributes.event_id,
        event_type: m.attributes.event_type,
        source: m.attributes.source,
        receive_count: m.receive_count,
    };
    Delivery { inbound, handle: m.receipt_handle, row: 0 }
}

#[async_trait]
impl WorkQueue for SqsWork {
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        let got = self.queue.receive(max, 1, self.visibility_secs).await?;
        Ok(got.into_iter().map(sqs_delivery).collect())
    }
    async fn ack(&self, d: &Delivery) -> anyhow::Result<()> {
        Ok(self.queue.ack(&d.handle).await?)
    }
    async fn retry_later(&self, d: &Delivery, delay_secs: i64) -> anyhow::Result<()> {
        Ok(self.queue.change_visibility(&d.handle, delay_secs).await?)
    }
    async fn depth(&self) -> anyhow::Result<QueueDepth> {
        let c = self.queue.counts().await?;
        let dlq = match &self.dead_letters {
            Some(q) => {
                let d = q.counts().await?;
                d.visible + d.in_flight
            }
            None => 0,
        };
        Ok(QueueDepth { depth: c.visible + c.delayed + c.in_flight, in_flight: c.in_flight, dlq })
    }
    async fn next_visible_in(&self) -> anyhow::Result<Option<i64>> {
        let d = self.depth().await?;
        Ok((d.depth > 0).then_some(1))
    }
}
