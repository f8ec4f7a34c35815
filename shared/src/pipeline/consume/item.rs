//! The state of one batch as it goes through the steps: one [`Item`] per
//! message, and what the batch learnt about each customer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{BatchReport, ConsumeStats, InboundMessage, Outcome};
use crate::domain::brevo::{BrevoOrder, ContactUpdate};
use crate::ports::{QueueMessage, RemoteError, Source};

/// A Stripe event to forward as a Brevo event.
#[derive(Debug, Clone)]
pub(super) struct Forward {
    pub event_id: String,
    pub event_type: String,
    pub created: i64,
    pub object_json: String,
    /// E-mail carried by the object (guest checkouts, deleted customers).
    pub email_hint: Option<String>,
}

/// What one message asks for.
#[derive(Debug, Clone, Default)]
pub(super) struct Work {
    pub dedup_key: Option<String>,
    pub customers: Vec<String>,
    /// A charge whose customer must be looked up (disputes, refunds).
    pub charge: Option<String>,
    /// A price or product whose subscribers must be recomputed.
    pub catalog: Option<(Option<String>, Option<String>)>,
    /// An eCommerce order to upsert (succeeded payments, when enabled).
    pub order: Option<BrevoOrder>,
    pub forward: Option<Forward>,
    /// The e-mail of a customer the event says was deleted.
    pub deleted_email: Option<String>,
    /// An import to look at (an [`ImportCheck`](super::ImportCheck) message).
    pub import_check: Option<Box<super::ImportCheck>>,
    /// Its customers' contacts are upserted one by one, never imported, and
    /// never split into units (the rows an import did not apply).
    pub realtime: bool,
}

/// One message and everything the steps decided about it.
pub(super) struct Item<'m> {
    pub message: &'m InboundMessage,
    /// What it asks for; `None` once it needs nothing more (duplicate,
    /// ignored, dead, or held elsewhere).
    pub work: Option<Work>,
    /// The idempotency key this batch holds for it (completed or released
    /// when the message settles).
    pub claim: Option<String>,
    /// Set by the first step that decides it; `None` = still in progress.
    pub outcome: Option<Outcome>,
    /// The message's tracing span (message id, Stripe event id and type).
    pub span: tracing::Span,
    /// A failure of one of its own parts (its event or order).
    pub part_failed: Option<RemoteError>,
}

impl Item<'_> {
    /// A fresh copy of the message for the queue (same body and attributes;
    /// the body is authoritative).
    pub fn copy(&self) -> QueueMessage {
        let m = self.message;
        let forward = self.work.as_ref().and_then(|w| w.forward.as_ref());
        QueueMessage {
            body: m.body.clone(),
            event_id: m.event_id.clone().or_else(|| forward.map(|f| f.event_id.clone())).unwrap_or_default(),
            event_type: m.event_type.clone().or_else(|| forward.map(|f| f.event_type.clone())).unwrap_or_default(),
            livemode: None,
            // Without the attribute, say what the body is: a snapshot comes
            // from a backfill, an event (most likely) from the webhook.
            source: m.source.unwrap_or_else(|| {
                let snapshot =
                    self.work.as_ref().and_then(|w| w.dedup_key.as_deref()).is_some_and(|k| k.starts_with("snapshot:"));
                if snapshot {
                    Source::Backfill
                } else {
                    Source::Webhook
                }
            }),
        }
    }

    /// The work of a message no step has decided yet.
    pub fn active(&self) -> Option<&Work> {
        if self.outcome.is_some() {
            return None;
        }
        self.work.as_ref()
    }

    /// Decides the outcome and drops the work: nothing more is done for it.
    pub fn finish(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.work = None;
    }
}

/// What the batch learnt about each customer it reloaded.
#[derive(Debug, Default)]
pub(super) struct Customers {
    /// Contacts to push, by customer id.
    pub contacts: BTreeMap<String, ContactUpdate>,
    /// Customer id → the e-mail its contact was computed with.
    pub email: HashMap<String, String>,
    /// Customer id → why it could not be reloaded or pushed.
    pub failed: HashMap<String, RemoteError>,
    /// Customers that are deleted or gone.
    pub deleted: BTreeSet<String>,
    /// Customers not reloaded because the deadline was near.
    pub unreached: BTreeSet<String>,
}

impl Customers {
    /// The first failure among a work's customers.
    pub fn failure_of(&self, work: &Work) -> Option<&RemoteError> {
        work.customers.iter().find_map(|c| self.failed.get(c))
    }

    /// True when one of the work's customers was not reached in time.
    pub fn unreached_in(&self, work: &Work) -> bool {
        work.customers.iter().any(|c| self.unreached.contains(c))
    }

    /// True when nothing more may be forwarded for this work now: a customer
    /// failed, or was not reached (its copy will forward it).
    pub fn holds_back(&self, work: &Work) -> bool {
        self.failure_of(work).is_some() || self.unreached_in(work)
    }
}

/// One batch in flight.
pub(super) struct Batch<'m> {
    pub now: i64,
    /// No Stripe reload starts after this (the deadline less the reserve).
    pub reload_until: Option<tokio::time::Instant>,
    pub items: Vec<Item<'m>>,
    pub customers: Customers,
    pub stats: ConsumeStats,
}

impl<'m> Batch<'m> {
    pub fn new(now: i64, messages: &'m [InboundMessage], reload_until: Option<tokio::time::Instant>) -> Self {
        let items = messages
            .iter()
            .map(|m| Item {
                message: m,
                work: None,
                claim: None,
                outcome: None,
                span: tracing::info_span!(
                    "message",
                    message_id = %m.message_id,
                    event_id = tracing::field::Empty,
                    event_type = tracing::field::Empty,
                ),
                part_failed: None,
            })
            .collect();
        Self {
            now,
            reload_until,
            items,
            customers: Customers::default(),
            stats: ConsumeStats { messages: messages.len(), ..ConsumeStats::default() },
        }
    }

    /// Items still in progress with their work.
    pub fn active(&self) -> impl Iterator<Item = (&Item<'m>, &Work)> {
        self.items.iter().filter_map(|it| it.active().map(|w| (it, w)))
    }

    pub fn report(self) -> BatchReport {
        let outcomes = self
            .items
            .into_iter()
            .map(|it| (it.message.message_id.clone(), it.outcome.unwrap_or(Outcome::Ignored("nothing to do"))))
            .collect();
        BatchReport { outcomes, stats: self.stats }
    }
}
