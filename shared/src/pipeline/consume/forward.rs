//! Step 5: forward. The configured Stripe events young enough become Brevo
//! events, all in one `send_events` call; with `ecommerce_orders` on,
//! succeeded payments also become orders. A message whose customer failed is
//! retried as a whole, so nothing of it is forwarded now.
//!
//! **At most once per Stripe event id, per part.** Each part (the Brevo
//! event, the order) has its own record in the idempotency store, key
//! `<event key>#event` / `#order`, written *before* the part is sent and
//! deleted only when Brevo definitely did not take it (an error answer, a
//! per-event refusal in a 207, a failure to connect). So a retry caused by
//! another part (the order failing after the event went out) or by a crash
//! after sending never sends it again. The trade-off, chosen because an
//! automation firing twice (two "payment failed" e-mails) is worse than a
//! missing one: a crash between writing the record and sending, or a send
//! that went out unanswered (a timeout), is not retried — that event is
//! logged and not sent rather than risk sending it twice. The contact
//! itself is always brought up to date (contacts are idempotent).

use super::item::Batch;
use super::Consumer;
use crate::domain::brevo::{BrevoEvent, BrevoOrder};
use crate::domain::mapping::{self, EventDecision};
use crate::ports::{BrevoApi, Claim, IdempotencyStore, RemoteError, RemoteErrorKind, Vendor};

/// A forwarding part: what it is called in its record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Event,
    Order,
}

impl Part {
    fn key(self, message_key: &str) -> String {
        match self {
            Self::Event => format!("{message_key}#event"),
            Self::Order => format!("{message_key}#order"),
        }
    }
}

/// Whether to send a part now.
enum Go {
    /// Send it; `Some(record key)` to delete if Brevo does not take it.
    Send(Option<String>),
    /// An earlier attempt sent it (or may have): never again.
    AlreadySent,
    /// The store could not say: the message comes back, nothing sent.
    Unknown(RemoteError),
}

impl<S, B: BrevoApi, I: IdempotencyStore, C> Consumer<S, B, I, C> {
    /// Writes the part's record before it is sent (see the module doc).
    async fn reserve(&self, message_key: Option<&str>, part: Part, now: i64) -> Go {
        let Some(message_key) = message_key else { return Go::Send(None) };
        let key = part.key(message_key);
        let expires = now + self.options.dedup_ttl_secs;
        // In progress until it expires: only a definite refusal deletes it.
        match self.dedup.claim(&key, now, expires, expires).await {
            Ok(Claim::Acquired) => Go::Send(Some(key)),
            Ok(Claim::AlreadyCompleted | Claim::InProgressElsewhere) => Go::AlreadySent,
            Err(e) => Go::Unknown(RemoteError::new(
                Vendor::Brevo,
                RemoteErrorKind::Unavailable,
                format!("idempotency store unavailable, {part:?} not sent: {e}"),
            )),
        }
    }

    /// After a part failed: frees its record when Brevo surely did not take
    /// it (so the retry sends it); keeps it when it may have (never twice).
    /// True when the message must come back for this part.
    async fn unreserve(&self, record: Option<&str>, e: &RemoteError) -> bool {
        if e.unconfirmed {
            tracing::warn!(cause = %e, "sent and unanswered: Brevo may have it, so it is not sent again (at most once)");
            return false;
        }
        if let Some(key) = record {
            if let Err(err) = self.dedup.release(key).await {
                tracing::warn!(cause = %err, "could not free the part's record: it will not be sent again");
            }
        }
        true
    }

    pub(super) async fn forward_events(&self, batch: &mut Batch<'_>) {
        let settings = &self.settings.stripe;
        let mut to_send: Vec<(usize, BrevoEvent, Option<String>)> = Vec::new();
        for (i, item) in batch.items.iter().enumerate() {
            let Some(w) = item.active() else { continue };
            let Some(f) = &w.forward else { continue };
            if batch.customers.holds_back(w) {
                continue;
            }
            let _in = item.span.enter();
            let email = w
                .customers
                .iter()
                .find_map(|c| batch.customers.email.get(c).cloned())
                .or_else(|| f.email_hint.as_ref().map(|e| e.trim().to_lowercase()));
            let Some(email) = email else {
                tracing::info!(event_id = %f.event_id, "event concerns no one with an e-mail: not forwarded");
                continue;
            };
            match mapping::build_brevo_event(
                &f.event_id,
                &f.event_type,
                f.created,
                &f.object_json,
                &email,
                settings,
                batch.now,
            ) {
                EventDecision::Send(ev) => to_send.push((i, ev, w.dedup_key.clone())),
                EventDecision::TooOld => {
                    batch.stats.events_too_old += 1;
                    tracing::info!(event_id = %f.event_id, event_type = %f.event_type, "event older than event_max_age: contact updated, no Brevo event");
                }
                EventDecision::NotConfigured => {}
            }
        }
        let mut sending: Vec<(usize, BrevoEvent, Option<String>)> = Vec::new();
        for (i, ev, message_key) in to_send {
            match self.reserve(message_key.as_deref(), Part::Event, batch.now).await {
                Go::Send(record) => sending.push((i, ev, record)),
                Go::AlreadySent => batch.items[i].span.in_scope(|| {
                    tracing::info!(event_id = %ev.event_properties["stripe_event_id"], "Brevo event sent by an earlier attempt: not sent again")
                }),
                Go::Unknown(e) => batch.items[i].part_failed = Some(e),
            }
        }
        if sending.is_empty() {
            return;
        }
        let events: Vec<BrevoEvent> = sending.iter().map(|(_, e, _)| e.clone()).collect();
        let per_event: Vec<Option<RemoteError>> = match self.brevo.send_events(&events).await {
            // A missing answer counts as accepted (as before the split).
            Ok(per_event) => per_event.into_iter().chain(std::iter::repeat(None)).take(sending.len()).collect(),
            Err(e) => vec![Some(e); sending.len()],
        };
        for ((i, _, record), r) in sending.iter().zip(per_event) {
            match r {
                None => batch.stats.events_sent += 1,
                Some(e) => {
                    if self.unreserve(record.as_deref(), &e).await {
                        batch.items[*i].part_failed = Some(e);
                    }
                }
            }
        }
    }

    pub(super) async fn forward_orders(&self, batch: &mut Batch<'_>) {
        if !self.settings.brevo.ecommerce_orders {
            return;
        }
        for item in &mut batch.items {
            let Some(w) = item.active() else { continue };
            if batch.customers.holds_back(w) {
                continue;
            }
            let Some(order) = &w.order else { continue };
            let Some(email) = w.customers.iter().find_map(|c| batch.customers.email.get(c)) else { continue };
            let order = BrevoOrder { email: email.clone(), ..order.clone() };
            let record = match self.reserve(w.dedup_key.as_deref(), Part::Order, batch.now).await {
                Go::Send(record) => record,
                Go::AlreadySent => {
                    item.span.in_scope(
                        || tracing::info!(order = %order.id, "order sent by an earlier attempt: not sent again"),
                    );
                    continue;
                }
                Go::Unknown(e) => {
                    item.part_failed = Some(e);
                    continue;
                }
            };
            if let Err(e) = self.brevo.upsert_order(&order).await {
                item.span.in_scope(|| tracing::warn!(order = %order.id, cause = %e, "Brevo refused the order"));
                if self.unreserve(record.as_deref(), &e).await {
                    item.part_failed = Some(e);
                }
            }
        }
    }
}
