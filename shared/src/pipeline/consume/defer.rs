//! Bounded work: what goes back on the queue instead of being done now.
//! Fan-out (a snapshot or catalogue event naming many customers) is split
//! into child snapshots of at most `max_customers_per_message` customers;
//! a message whose customers were not reached before the deadline is
//! re-enqueued as a fresh copy. Both are idempotent: children have stable
//! keys (`<parent key>/<n>`), copies keep their event id.

use tracing::Instrument;

use super::item::Batch;
use super::{Consumer, Outcome, Retry, RetryCause, Snapshot, SNAPSHOT_OBJECT};
use crate::ports::{QueueMessage, Source};

impl<S, B, I, C> Consumer<S, B, I, C> {
    /// Splits every active message naming too many customers into child
    /// snapshots on the queue; the parent is then done (its claim completed,
    /// so a redelivered parent is a duplicate).
    pub(super) async fn split_fanout(&self, batch: &mut Batch<'_>) {
        let Some(queue) = &self.requeue else { return };
        let max = self.options.max_customers_per_message.max(1);
        for item in &mut batch.items {
            let Some(w) = item.active() else { continue };
            if w.customers.len() <= max || w.realtime {
                continue;
            }
            let parent = match w.dedup_key.as_deref() {
                Some(k) => k.strip_prefix("snapshot:").map_or_else(|| format!("fanout:{k}"), str::to_owned),
                None => continue,
            };
            let mut customers = w.customers.clone();
            customers.sort();
            customers.dedup();
            let children: Vec<QueueMessage> = customers
                .chunks(max)
                .enumerate()
                .map(|(n, chunk)| {
                    let key = format!("{parent}/{n}");
                    let body =
                        Snapshot { object: SNAPSHOT_OBJECT.to_owned(), key: key.clone(), customers: chunk.to_vec() };
                    QueueMessage {
                        body: serde_json::to_string(&body).unwrap_or_default(),
                        event_id: key,
                        event_type: SNAPSHOT_OBJECT.to_owned(),
                        livemode: None,
                        source: Source::Backfill,
                    }
                })
                .collect();
            match queue.send_all(&children).instrument(item.span.clone()).await {
                Ok(()) => {
                    item.span.in_scope(|| {
                        tracing::info!(
                            customers = customers.len(),
                            units = children.len(),
                            "fan-out split into units on the queue"
                        )
                    });
                    batch.stats.requeued += children.len();
                    item.outcome = Some(Outcome::Done);
                }
                Err(e) => {
                    // Units already sent are harmless (their keys dedupe).
                    item.span.in_scope(
                        || tracing::warn!(cause = %e, "could not queue the fan-out units: processed in place"),
                    );
                }
            }
        }
    }

    /// Re-enqueues each active message that has a customer the reloads did
    /// not reach before the deadline (or returns it, without a queue).
    pub(super) async fn defer_unreached(&self, batch: &mut Batch<'_>) {
        if batch.customers.unreached.is_empty() {
            return;
        }
        for item in &mut batch.items {
            let Some(w) = item.active() else { continue };
            if !batch.customers.unreached_in(w) {
                continue;
            }
            let outcome = match &self.requeue {
                Some(q) => match q.send(&item.copy()).await {
                    Ok(()) => {
                        batch.stats.requeued += 1;
                        Outcome::Deferred("deadline near: a copy is queued")
                    }
                    Err(e) => {
                        Outcome::Retry(Retry::new(RetryCause::Requeue, format!("deadline near, copy not queued: {e}")))
                    }
                },
                None => Outcome::Retry(Retry::new(RetryCause::Deadline, "deadline near: not reached")),
            };
            item.finish(outcome);
        }
    }
}
