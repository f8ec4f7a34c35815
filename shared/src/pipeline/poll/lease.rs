//! One poller at a time: a lease in the cursor table that expires after the
//! run's deadline (plus a grace), so a crashed run does not block the next.

use std::time::Instant;

use super::{Clock, CursorStore, EventQueue, PollError, Poller, StripeFeed};

impl<F, Q, S, C> Poller<F, Q, S, C>
where
    F: StripeFeed,
    Q: EventQueue,
    S: CursorStore,
    C: Clock,
{
    /// Takes the lease until the run's remaining time plus the grace has
    /// passed; false when another poller holds it.
    pub(super) async fn take_lease(&self, owner: &str, deadline: Instant, now: i64) -> Result<bool, PollError> {
        let remaining =
            i64::try_from(deadline.saturating_duration_since(Instant::now()).as_secs()).unwrap_or(i64::MAX / 4);
        let until = now.saturating_add(remaining).saturating_add(self.options.lease_grace_secs.max(1));
        Ok(self.cursors.acquire_lease(owner, now, until).await?)
    }

    /// Gives the lease back; a failure is only logged (it expires on its own).
    pub(super) async fn drop_lease(&self, owner: &str) {
        if let Err(e) = self.cursors.release_lease(owner).await {
            tracing::warn!(cause = %e, "could not release the poller lease (it expires on its own)");
        }
    }
}
