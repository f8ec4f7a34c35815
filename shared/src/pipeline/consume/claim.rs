//! Step 2: claim each message's key in the idempotency store. A completed key
//! is a duplicate; a key another worker holds comes back later; the store
//! being down returns the message.

use super::item::Batch;
use super::{Consumer, Outcome, Retry, RetryCause};
use crate::ports::{Claim, IdempotencyStore};

impl<S, B, I: IdempotencyStore, C> Consumer<S, B, I, C> {
    pub(super) async fn claim(&self, batch: &mut Batch<'_>) {
        let now = batch.now;
        let (until, expires) = (now + self.options.in_progress_secs, now + self.options.dedup_ttl_secs);
        for item in &mut batch.items {
            let Some(key) = item.active().and_then(|w| w.dedup_key.clone()) else { continue };
            match self.dedup.claim(&key, now, until, expires).await {
                Ok(Claim::Acquired) => item.claim = Some(key),
                Ok(Claim::AlreadyCompleted) => item.finish(Outcome::Duplicate),
                Ok(Claim::InProgressElsewhere) => {
                    // Its twin may still fail: a delayed copy comes back after it
                    // (then a duplicate, or the one that does the work), without
                    // using up this message's receives.
                    let outcome = match &self.requeue {
                        Some(q) => match q.send_delayed(&item.copy(), self.options.twin_delay_secs).await {
                            Ok(()) => {
                                batch.stats.requeued += 1;
                                Outcome::Deferred("twin in progress elsewhere: a delayed copy is queued")
                            }
                            Err(e) => Outcome::Retry(Retry::new(
                                RetryCause::InProgressElsewhere,
                                format!("being processed by another worker (copy not queued: {e})"),
                            )),
                        },
                        None => Outcome::Retry(Retry::new(
                            RetryCause::InProgressElsewhere,
                            "being processed by another worker",
                        )),
                    };
                    item.finish(outcome);
                }
                Err(e) => {
                    item.span.in_scope(|| tracing::warn!(key = %key, cause = %e, "idempotency store unavailable"));
                    item.finish(Outcome::Retry(Retry::new(
                        RetryCause::IdempotencyStore,
                        format!("idempotency store: {e}"),
                    )));
                }
            }
        }
    }
}
