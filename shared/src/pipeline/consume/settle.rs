//! Step 6: settle. Each message gets its outcome (done, or retry with the
//! first failure of its customers or parts); its claim is completed when done
//! and released otherwise; permanently bad messages go to the dead-letter
//! queue; one log line per message; the contact counters for `status`.

use super::item::Batch;
use super::{Consumer, Outcome, Retry, RetryCause};
use crate::ports::{ContactCounts, IdempotencyStore};

impl<S, B, I: IdempotencyStore, C> Consumer<S, B, I, C> {
    pub(super) async fn settle(&self, batch: &mut Batch<'_>) {
        let expires = batch.now + self.options.dedup_ttl_secs;
        for item in &mut batch.items {
            let decided = item.active().map(|w| match batch.customers.failure_of(w).or(item.part_failed.as_ref()) {
                None => Outcome::Done,
                Some(e) => Outcome::Retry(Retry::remote(e)),
            });
            if decided.is_some() {
                item.outcome = decided;
            }
            let Some(key) = item.claim.take() else { continue };
            let res = if item.outcome == Some(Outcome::Done) {
                self.dedup.complete(&key, expires).await
            } else {
                self.dedup.release(&key).await
            };
            if let Err(e) = res {
                item.span
                    .in_scope(|| tracing::warn!(key = %key, cause = %e, "could not settle the idempotency record"));
            }
        }
    }

    pub(super) async fn dead_letter_and_log(&self, batch: &mut Batch<'_>) {
        for item in &mut batch.items {
            let m = item.message;
            let mut o = item.outcome.take().unwrap_or(Outcome::Ignored("nothing to do"));
            if let Outcome::Dead(reason) = &o {
                match &self.dead_letters {
                    Some(dl) => {
                        if let Err(e) = dl.dead_letter(&m.body, m.event_id.as_deref(), reason).await {
                            item.span.in_scope(|| tracing::error!(message_id = %m.message_id, cause = %e, "could not dead-letter; will be retried"));
                            o = Outcome::Retry(Retry::new(
                                RetryCause::DeadLetterQueue,
                                format!("dead-letter queue: {e}"),
                            ));
                        }
                    }
                    // No DLQ configured: return it so the queue's redrive policy moves it.
                    None => o = Outcome::Retry(Retry::new(RetryCause::NoDeadLetterQueue, reason.clone())),
                }
            }
            let _in = item.span.enter();
            match &o {
                Outcome::Done => tracing::info!(message_id = %m.message_id, event_id = ?m.event_id, "message applied"),
                Outcome::Duplicate => {
                    batch.stats.duplicates += 1;
                    tracing::info!(message_id = %m.message_id, event_id = ?m.event_id, "duplicate: nothing sent");
                }
                Outcome::Ignored(r) => {
                    tracing::info!(message_id = %m.message_id, event_id = ?m.event_id, reason = r, "message acknowledged without action")
                }
                Outcome::Deferred(r) => {
                    batch.stats.deferred += 1;
                    tracing::info!(message_id = %m.message_id, event_id = ?m.event_id, reason = r, "message deferred");
                }
                Outcome::Retry(r) => {
                    batch.stats.retries += 1;
                    tracing::warn!(message_id = %m.message_id, event_id = ?m.event_id, reason = %r, "message returned for retry");
                }
                Outcome::Dead(r) => {
                    batch.stats.dead += 1;
                    tracing::error!(message_id = %m.message_id, event_id = ?m.event_id, reason = %r, "message dead-lettered");
                }
            }
            drop(_in);
            item.outcome = Some(o);
        }
    }

    pub(super) async fn record_counts(&self, batch: &Batch<'_>) {
        let Some(store) = &self.status else { return };
        let s = &batch.stats;
        let delta = ContactCounts {
            synced: s.contacts_synced as u64,
            skipped_no_email: s.contacts_skipped_no_email as u64,
            failed: s.contacts_failed as u64,
        };
        if delta != ContactCounts::default() {
            if let Err(e) = store.add_contact_counts(delta).await {
                tracing::warn!(cause = %e, "could not record contact counters for status");
            }
        }
    }
}
