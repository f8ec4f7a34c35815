//! The queue worker: receive → [`Consumer`] → acknowledge or retry later,
//! as the Lambda event source mapping does with partial batch failures.
//! Used by `sync` (until the queue is empty) and `serve` (forever).

use std::time::Duration;

use shared::pipeline::consume::{ConsumeStats, Outcome};
use shared::ports::Vendor;
use tracing::Instrument;

use crate::clients::AppConsumer;
use crate::queue::{Delivery, WorkQueue};

/// Messages taken per batch (the consumer reloads each customer once per batch).
pub const BATCH_SIZE: usize = 100;

/// Delay before a failed message is visible again: 1, 2, 4 … 60 s.
pub fn retry_delay(receive_count: u32) -> i64 {
    1i64 << receive_count.saturating_sub(1).min(6).min(63)
}

/// What happened to the messages of one or more batches.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// The consumer's own counters, summed over the batches.
    pub consumed: ConsumeStats,
    /// How the messages were settled on the local queue.
    pub acked: usize,
    pub retried: usize,
    pub dead: usize,
    /// Set when Stripe or Brevo refused the key (401): retrying cannot help
    /// until the operator fixes it, so `sync` stops instead.
    pub key_refused: Option<String>,
}

/// Consumes one batch and settles every message.
pub async fn run_batch(
    queue: &dyn WorkQueue,
    consumer: &AppConsumer,
    deliveries: &[Delivery],
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let batch: Vec<_> = deliveries.iter().map(|d| d.inbound.clone()).collect();
    let span = tracing::info_span!("batch", messages = batch.len());
    let report = consumer.consume(&batch).instrument(span).await;
    totals.consumed += &report.stats;
    for (d, (_, outcome)) in deliveries.iter().zip(&report.outcomes) {
        match outcome {
            Outcome::Retry(retry) => {
                if let Some(vendor) = retry.key_refused() {
                    totals.key_refused = Some(key_hint(vendor));
                }
                totals.retried += 1;
                queue.retry_later(d, retry_delay(d.inbound.receive_count)).await?;
            }
            Outcome::Dead(_) => {
                // The consumer copied it to the dead-letter queue.
                totals.dead += 1;
                queue.ack(d).await?;
            }
            Outcome::Done | Outcome::Duplicate | Outcome::Ignored(_) | Outcome::Deferred(_) => {
                totals.acked += 1;
                queue.ack(d).await?;
            }
        }
    }
    report.stats.log();
    Ok(())
}

/// What to tell the operator about a refused key (never the key itself).
fn key_hint(vendor: Vendor) -> String {
    match vendor {
        Vendor::Brevo => "Brevo API key is invalid (401 Unauthorized): check BREVO_API_KEY".to_owned(),
        Vendor::Stripe => "Stripe API key is invalid (401 Unauthorized): check STRIPE_SECRET_KEY".to_owned(),
    }
}

/// Consumes until the queue is empty (waiting for messages that come back
/// after a retry delay or a crashed worker's visibility timeout).
/// `on_batch` is told the running totals and the remaining depth.
pub async fn drain(
    queue: &dyn WorkQueue,
    consumer: &AppConsumer,
    mut on_batch: impl FnMut(&Totals, u64),
) -> anyhow::Result<Totals> {
    let mut totals = Totals::default();
    loop {
        let deliveries = queue.receive(BATCH_SIZE).await?;
        if deliveries.is_empty() {
            match queue.next_visible_in().await? {
                None => break,
                Some(secs) => {
                    tokio::time::sleep(Duration::from_millis(
                        u64::try_from(secs.clamp(0, 5)).unwrap_or(1) * 1000 + 100,
                    ))
                    .await;
                    continue;
                }
            }
        }
        run_batch(queue, consumer, &deliveries, &mut totals).await?;
        if let Some(hint) = &totals.key_refused {
            anyhow::bail!("{hint}; the messages stay queued and are retried by the next run");
        }
        let left = queue.depth().await.map(|d| d.depth).unwrap_or(0);
        on_batch(&totals, left);
    }
    Ok(totals)
}
