//! The consumer: queue messages → Brevo. The only place that maps and pushes.
//!
//! For a batch it: parses every message (a Stripe event, or a backfill
//! snapshot naming customers); drops what must not act (livemode mismatch,
//! thin events, in-batch duplicates); claims each event id in the idempotency
//! store (a completed id is a duplicate and sends nothing); reloads every
//! touched customer's *current* state from Stripe once per batch (so events
//! arriving late or out of order converge on the newest state); computes
//! metrics and the contact; pushes contacts (upserts, or an import for big
//! batches) and list removals; then forwards the young, configured events.
//! A message whose part failed is released and returned for retry; the rest
//! are completed. Permanently bad messages go to the dead-letter queue.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Deserialize;

use crate::domain::brevo::{BrevoEvent, ContactUpdate};
use crate::domain::event::{parse_envelope, EventKind};
use crate::domain::mapping::{self, ContactOutcome};
use crate::domain::metrics::compute_metrics;
use crate::domain::stripe::ObjectRef;
use crate::ports::{
    BrevoApi, Claim, Clock, ContactCounts, CursorStore, CustomerState, DeadLetters, IdempotencyStore, RemoteError,
    Source, StripeApi,
};
use crate::settings::Settings;
use crate::telemetry::redact_email;

/// One message as the queue delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The queue's id for it (SQS `messageId`), used to report failures.
    pub message_id: String,
    pub body: String,
    /// Attributes, when present (the body is authoritative).
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub source: Option<Source>,
    pub receive_count: u32,
}

/// A backfill snapshot: "these customers changed", no event to forward.
/// Written by the poller; `key` is its own idempotency key space.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Snapshot {
    /// Always `"stripe_brevo.snapshot"`.
    pub object: String,
    /// e.g. `backfill:charges:<run>:<page cursor>`.
    pub key: String,
    pub customers: Vec<String>,
}

pub const SNAPSHOT_OBJECT: &str = "stripe_brevo.snapshot";

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (contact pushed, event forwarded when due).
    Done,
    /// Already processed (idempotency record, or a copy in the same batch).
    Duplicate,
    /// Acknowledged without action, with the reason (logged).
    Ignored(&'static str),
    /// Must come back: reported as a batch item failure.
    Retry(String),
    /// Permanently unprocessable: sent to the dead-letter queue.
    Dead(String),
}

impl Outcome {
    pub fn is_retry(&self) -> bool {
        matches!(self, Self::Retry(_))
    }
}

/// Counters of one batch (also summed by `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeStats {
    pub messages: usize,
    pub duplicates: usize,
    pub customers_reloaded: usize,
    pub contacts_synced: usize,
    pub contacts_skipped_no_email: usize,
    pub contacts_failed: usize,
    pub events_sent: usize,
    pub events_too_old: usize,
    pub retries: usize,
    pub dead: usize,
}

impl std::ops::AddAssign<&ConsumeStats> for ConsumeStats {
    /// Sums batches (the CLI's totals, the benches).
    fn add_assign(&mut self, s: &ConsumeStats) {
        self.messages += s.messages;
        self.duplicates += s.duplicates;
        self.customers_reloaded += s.customers_reloaded;
        self.contacts_synced += s.contacts_synced;
        self.contacts_skipped_no_email += s.contacts_skipped_no_email;
        self.contacts_failed += s.contacts_failed;
        self.events_sent += s.events_sent;
        self.events_too_old += s.events_too_old;
        self.retries += s.retries;
        self.dead += s.dead;
    }
}

impl ConsumeStats {
    /// One `batch done` log line with every counter.
    pub fn log(&self) {
        tracing::info!(
            messages = self.messages,
            duplicates = self.duplicates,
            customers = self.customers_reloaded,
            contacts_synced = self.contacts_synced,
            skipped_no_email = self.contacts_skipped_no_email,
            contacts_failed = self.contacts_failed,
            events_sent = self.events_sent,
            events_too_old = self.events_too_old,
            retries = self.retries,
            dead = self.dead,
            "batch done"
        );
    }
}

#[derive(Debug, Clone)]
pub struct BatchReport {
    /// One per input message, same order.
    pub outcomes: Vec<(String, Outcome)>,
    pub stats: ConsumeStats,
}

impl BatchReport {
    /// Message ids to report as batch item failures (never empty ids).
    pub fn retry_ids(&self) -> Vec<String> {
        self.outcomes.iter().filter(|(id, o)| o.is_retry() && !id.is_empty()).map(|(id, _)| id.clone()).collect()
    }
}

/// Tunables that are not part of the YAML config.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// How long an event id stays deduplicated (≥ 7 days: Stripe retries for 3).
    pub dedup_ttl_secs: i64,
    /// How long an in-progress claim blocks others (longer than one run).
    pub in_progress_secs: i64,
    /// Customers reloaded from Stripe at the same time.
    pub reload_concurrency: usize,
    /// Contacts upserted at the same time (the Brevo client rate-limits).
    pub push_concurrency: usize,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self { dedup_ttl_secs: 7 * 86_400, in_progress_secs: 900, reload_concurrency: 4, push_concurrency: 4 }
    }
}

/// The consumer's dependencies.
pub struct Consumer<S, B, I, C> {
    pub stripe: S,
    pub brevo: B,
    pub dedup: I,
    pub clock: C,
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
    /// Where the contact counters for `status` are added (the cursor table).
    pub status: Option<Arc<dyn CursorStore>>,
    pub settings: Arc<Settings>,
    pub options: ConsumeOptions,
}

/// A Stripe event to forward as a Brevo event.
#[derive(Debug, Clone)]
struct Forward {
    event_id: String,
    event_type: String,
    created: i64,
    object_json: String,
    /// E-mail carried by the object (guest checkouts, deleted customers).
    email_hint: Option<String>,
}

/// What one message asks for.
#[derive(Debug, Clone, Default)]
struct Work {
    dedup_key: Option<String>,
    customers: Vec<String>,
    /// A charge whose customer must be looked up (disputes, refunds).
    charge: Option<String>,
    /// A price or product whose subscribers must be recomputed.
    catalog: Option<(Option<String>, Option<String>)>,
    /// An eCommerce order to upsert (succeeded payments, when enabled).
    order: Option<crate::domain::brevo::BrevoOrder>,
    forward: Option<Forward>,
    /// The e-mail of a customer the event says was deleted.
    deleted_email: Option<String>,
}

enum Parsed {
    Work(Work),
    Ignore(&'static str),
    Dead(String),
}

impl<S, B, I, C> Consumer<S, B, I, C>
where
    S: StripeApi,
    B: BrevoApi,
    I: IdempotencyStore,
    C: Clock,
{
    /// Processes one batch; never fails as a whole.
    pub async fn consume(&self, batch: &[InboundMessage]) -> BatchReport {
        let now = self.clock.now_unix();
        let mut stats = ConsumeStats { messages: batch.len(), ..ConsumeStats::default() };
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut works: Vec<Option<Work>> = vec![None; batch.len()];

        // 1. Parse, filter, deduplicate within the batch.
        let mut seen_keys: HashSet<String> = HashSet::new();
        for (i, m) in batch.iter().enumerate() {
            match self.parse(m) {
                Parsed::Work(w) => {
                    if let Some(k) = &w.dedup_key {
                        if !seen_keys.insert(k.clone()) {
                            outcomes[i] = Some(Outcome::Duplicate);
                            continue;
                        }
                    }
                    works[i] = Some(w);
                }
                Parsed::Ignore(reason) => outcomes[i] = Some(Outcome::Ignored(reason)),
                Parsed::Dead(reason) => outcomes[i] = Some(Outcome::Dead(reason)),
            }
        }

        // 2. Claim idempotency keys.
        let mut claimed: Vec<bool> = vec![false; batch.len()];
        for i in 0..batch.len() {
            let Some(w) = &works[i] else { continue };
            let Some(key) = &w.dedup_key else { continue };
            let res = self
                .dedup
                .claim(key, now, now + self.options.in_progress_secs, now + self.options.dedup_ttl_secs)
                .await;
            match res {
                Ok(Claim::Acquired) => claimed[i] = true,
                Ok(Claim::AlreadyCompleted) => {
                    outcomes[i] = Some(Outcome::Duplicate);
                    works[i] = None;
                }
                Ok(Claim::InProgressElsewhere) => {
                    outcomes[i] = Some(Outcome::Retry("being processed by another worker".into()));
                    works[i] = None;
                }
                Err(e) => {
                    tracing::warn!(key = %key, cause = %e, "idempotency store unavailable");
                    outcomes[i] = Some(Outcome::Retry(format!("idempotency store: {e}")));
                    works[i] = None;
                }
            }
        }

        // 3. Charges → customers (disputes, refunds without `customer`).
        let charges: BTreeSet<String> = works.iter().flatten().filter_map(|w| w.charge.clone()).collect();
        let mut charge_owner: HashMap<String, Result<Option<String>, RemoteError>> = HashMap::new();
        for ch in charges {
            let r = self.stripe.charge_customer(&ch).await;
            charge_owner.insert(ch, r);
        }
        for i in 0..batch.len() {
            let Some(w) = works[i].as_mut() else { continue };
            if let Some((price, product)) = w.catalog.take() {
                match self.stripe.customers_of(price.as_deref(), product.as_deref()).await {
                    Ok(cs) => w.customers.extend(cs),
                    Err(e) => outcomes[i] = Some(Outcome::Retry(format!("stripe: {e}"))),
                }
            }
            if let Some(ch) = w.charge.take() {
                match charge_owner.get(&ch) {
                    Some(Ok(Some(c))) => w.customers.push(c.clone()),
                    Some(Ok(None)) | None => {}
                    Some(Err(e)) => {
                        outcomes[i] = Some(Outcome::Retry(format!("stripe: {e}")));
                    }
                }
            }
        }

        // 4. Reload every touched customer once.
        let customers: BTreeSet<String> = works
            .iter()
            .enumerate()
            .filter(|(i, _)| outcomes[*i].is_none())
            .filter_map(|(_, w)| w.as_ref())
            .flat_map(|w| w.customers.iter().cloned())
            .collect();
        stats.customers_reloaded = customers.len();
        let states: HashMap<String, Result<CustomerState, RemoteError>> = stream::iter(customers)
            .map(|c| async move {
                let r = self.stripe.customer_state(&c).await;
                (c, r)
            })
            .buffer_unordered(self.options.reload_concurrency.max(1))
            .collect()
            .await;

        // 5. Map to contacts.
        let stripe_settings = &self.settings.stripe;
        let mut contacts: BTreeMap<String, ContactUpdate> = BTreeMap::new(); // by customer id
        let mut customer_email: HashMap<String, String> = HashMap::new();
        let mut customer_failed: HashMap<String, RemoteError> = HashMap::new();
        let mut deleted: BTreeSet<String> = BTreeSet::new(); // customer ids
        for (cid, res) in &states {
            match res {
                Err(e) => {
                    tracing::warn!(customer = %cid, retryable = e.is_retryable(), cause = %e, "could not reload customer from Stripe");
                    customer_failed.insert(cid.clone(), e.clone());
                }
                Ok(state) => match &state.customer {
                    None => {
                        deleted.insert(cid.clone());
                    }
                    Some(customer) if customer.deleted => {
                        deleted.insert(cid.clone());
                    }
                    Some(customer) => {
                        let metrics =
                            compute_metrics(&state.charges, &state.subscriptions, &stripe_settings.reporting_currency);
                        for ex in &metrics.excluded_charges {
                            tracing::warn!(customer = %cid, charge = %ex.charge_id, reason = %ex.reason, "charge left out of the metrics");
                        }
                        for ex in &metrics.excluded_subscriptions {
                            tracing::warn!(customer = %cid, subscription = %ex.subscription_id, reason = %ex.reason, "subscription left out of mrr");
                        }
                        match mapping::map_contact(customer, &metrics, stripe_settings) {
                            ContactOutcome::Contact { update, warnings } => {
                                for w in warnings {
                                    tracing::warn!(customer = %cid, warning = %w, "contact mapped with a warning");
                                }
                                customer_email.insert(cid.clone(), update.email.clone());
                                contacts.insert(cid.clone(), update);
                            }
                            ContactOutcome::NoEmail => {
                                stats.contacts_skipped_no_email += 1;
                                tracing::info!(customer = %cid, "customer has no e-mail: skipped, not sent");
                            }
                            ContactOutcome::Deleted => {
                                deleted.insert(cid.clone());
                            }
                        }
                    }
                },
            }
        }

        // 6. Push contacts.
        if !contacts.is_empty() {
            let mut types = BTreeMap::new();
            for c in contacts.values() {
                types.extend(c.attribute_types.iter().map(|(k, v)| (k.clone(), *v)));
            }
            if let Err(e) = self.brevo.ensure_attributes(&types).await {
                tracing::warn!(cause = %e, "could not ensure Brevo attributes");
                for cid in contacts.keys() {
                    customer_failed.insert(cid.clone(), e.clone());
                }
                contacts.clear();
            }
        }
        let pushed = self.push_contacts(&contacts).await;
        for (cid, res) in pushed {
            match res {
                Ok(()) => stats.contacts_synced += 1,
                Err(e) => {
                    stats.contacts_failed += 1;
                    tracing::warn!(customer = %cid, retryable = e.is_retryable(), cause = %e, "Brevo refused the contact");
                    customer_failed.insert(cid, e);
                }
            }
        }

        // 7. Deleted customers: take them out of the lists we manage.
        let lists = stripe_settings.lists.all();
        if !lists.is_empty() {
            let mut emails: Vec<(String, String)> = Vec::new();
            for (i, w) in works.iter().enumerate() {
                let Some(w) = w else { continue };
                if outcomes[i].is_some() {
                    continue;
                }
                if let Some(email) = &w.deleted_email {
                    for c in &w.customers {
                        if deleted.contains(c) {
                            emails.push((c.clone(), email.trim().to_lowercase()));
                        }
                    }
                }
            }
            if !emails.is_empty() {
                let addrs: Vec<String> =
                    emails.iter().map(|(_, e)| e.clone()).collect::<BTreeSet<_>>().into_iter().collect();
                for list in &lists {
                    if let Err(e) = self.brevo.remove_from_list(*list, &addrs).await {
                        for (c, _) in &emails {
                            customer_failed.insert(c.clone(), e.clone());
                        }
                    }
                }
            }
        }

        // 8. Events to forward.
        let mut to_send: Vec<(usize, BrevoEvent)> = Vec::new();
        for (i, w) in works.iter().enumerate() {
            let Some(w) = w else { continue };
            if outcomes[i].is_some() {
                continue;
            }
            let Some(f) = &w.forward else { continue };
            if w.customers.iter().any(|c| customer_failed.contains_key(c)) {
                continue; // retried as a whole
            }
            let email = w
                .customers
                .iter()
                .find_map(|c| customer_email.get(c).cloned())
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
                stripe_settings,
                now,
            ) {
                mapping::EventDecision::Send(ev) => to_send.push((i, ev)),
                mapping::EventDecision::TooOld => {
                    stats.events_too_old += 1;
                    tracing::info!(event_id = %f.event_id, event_type = %f.event_type, "event older than event_max_age: contact updated, no Brevo event");
                }
                mapping::EventDecision::NotConfigured => {}
            }
        }
        let mut event_failed: HashMap<usize, RemoteError> = HashMap::new();
        if !to_send.is_empty() {
            let events: Vec<BrevoEvent> = to_send.iter().map(|(_, e)| e.clone()).collect();
            match self.brevo.send_events(&events).await {
                Ok(per_event) => {
                    for ((i, _), r) in to_send.iter().zip(per_event.into_iter().chain(std::iter::repeat(None))) {
                        match r {
                            None => stats.events_sent += 1,
                            Some(e) => {
                                event_failed.insert(*i, e);
                            }
                        }
                    }
                }
                Err(e) => {
                    for (i, _) in &to_send {
                        event_failed.insert(*i, e.clone());
                    }
                }
            }
        }

        // 8b. eCommerce orders for succeeded payments (optional).
        if self.settings.brevo.ecommerce_orders {
            for (i, w) in works.iter().enumerate() {
                let Some(w) = w else { continue };
                if outcomes[i].is_some() || w.customers.iter().any(|c| customer_failed.contains_key(c)) {
                    continue;
                }
                let Some(order) = &w.order else { continue };
                let Some(email) = w.customers.iter().find_map(|c| customer_email.get(c)) else { continue };
                let order = crate::domain::brevo::BrevoOrder { email: email.clone(), ..order.clone() };
                if let Err(e) = self.brevo.upsert_order(&order).await {
                    tracing::warn!(order = %order.id, cause = %e, "Brevo refused the order");
                    event_failed.insert(i, e);
                }
            }
        }

        // 9. Settle every message.
        for i in 0..batch.len() {
            if outcomes[i].is_none() {
                let Some(w) = &works[i] else { continue };
                let failure = w.customers.iter().find_map(|c| customer_failed.get(c)).or_else(|| event_failed.get(&i));
                outcomes[i] = Some(match failure {
                    None => Outcome::Done,
                    Some(e) if e.is_retryable() => Outcome::Retry(e.message.clone()),
                    // A permanent Stripe/Brevo refusal (e.g. a missing permission)
                    // may succeed once the operator fixes it: retry, then DLQ by redrive.
                    Some(e) => Outcome::Retry(format!("permanent: {}", e.message)),
                });
            }
            let outcome = outcomes[i].clone().unwrap_or(Outcome::Ignored("nothing to do"));
            let key = works[i].as_ref().and_then(|w| w.dedup_key.clone());
            if claimed[i] {
                if let Some(key) = key {
                    let res = if outcome == Outcome::Done {
                        self.dedup.complete(&key, now + self.options.dedup_ttl_secs).await
                    } else {
                        self.dedup.release(&key).await
                    };
                    if let Err(e) = res {
                        tracing::warn!(key = %key, cause = %e, "could not settle the idempotency record");
                    }
                }
            }
            outcomes[i] = Some(outcome);
        }

        // 10. Dead letters, and logs.
        let mut report = Vec::with_capacity(batch.len());
        for (m, o) in batch.iter().zip(outcomes) {
            let mut o = o.unwrap_or(Outcome::Ignored("nothing to do"));
            if let Outcome::Dead(reason) = &o {
                match &self.dead_letters {
                    Some(dl) => {
                        if let Err(e) = dl.dead_letter(&m.body, m.event_id.as_deref(), reason).await {
                            tracing::error!(message_id = %m.message_id, cause = %e, "could not dead-letter; will be retried");
                            o = Outcome::Retry(format!("dead-letter queue: {e}"));
                        }
                    }
                    // No DLQ configured: return it so the queue's redrive policy moves it.
                    None => o = Outcome::Retry(format!("permanent: {reason}")),
                }
            }
            match &o {
                Outcome::Done => tracing::debug!(message_id = %m.message_id, event_id = ?m.event_id, "message applied"),
                Outcome::Duplicate => {
                    stats.duplicates += 1;
                    tracing::info!(message_id = %m.message_id, event_id = ?m.event_id, "duplicate: nothing sent");
                }
                Outcome::Ignored(r) => {
                    tracing::info!(message_id = %m.message_id, event_id = ?m.event_id, reason = r, "message acknowledged without action")
                }
                Outcome::Retry(r) => {
                    stats.retries += 1;
                    tracing::warn!(message_id = %m.message_id, event_id = ?m.event_id, reason = %r, "message returned for retry");
                }
                Outcome::Dead(r) => {
                    stats.dead += 1;
                    tracing::error!(message_id = %m.message_id, event_id = ?m.event_id, reason = %r, "message dead-lettered");
                }
            }
            report.push((m.message_id.clone(), o));
        }
        if let Some(store) = &self.status {
            let delta = ContactCounts {
                synced: stats.contacts_synced as u64,
                skipped_no_email: stats.contacts_skipped_no_email as u64,
                failed: stats.contacts_failed as u64,
            };
            if delta != ContactCounts::default() {
                if let Err(e) = store.add_contact_counts(delta).await {
                    tracing::warn!(cause = %e, "could not record contact counters for status");
                }
            }
        }
        BatchReport { outcomes: report, stats }
    }

    fn parse(&self, m: &InboundMessage) -> Parsed {
        let env = match parse_envelope(m.body.as_bytes()) {
            Ok(e) => e,
            Err(e) => {
                // Not an event: maybe a backfill snapshot.
                if let Ok(s) = serde_json::from_str::<Snapshot>(&m.body) {
                    if s.object == SNAPSHOT_OBJECT && !s.key.is_empty() {
                        let customers = s.customers.into_iter().filter(|c| c.starts_with("cus_")).collect();
                        return Parsed::Work(Work {
                            dedup_key: Some(format!("snapshot:{}", s.key)),
                            customers,
                            ..Work::default()
                        });
                    }
                }
                return Parsed::Dead(format!("not a Stripe event: {e}"));
            }
        };
        if env.kind == EventKind::Thin {
            return Parsed::Ignore("thin events are not mapped");
        }
        if let Some(live) = env.livemode {
            if live != self.stripe.is_live() {
                tracing::warn!(event_id = %env.id, event_livemode = live, "event's livemode differs from the Stripe key's mode: ignored");
                return Parsed::Ignore("livemode differs from the key's mode");
            }
        }
        let object_json = env.object.map(|o| o.get().to_owned()).unwrap_or_default();
        let Some(r) = ObjectRef::parse(&env.event_type, &object_json) else {
            return Parsed::Dead("event has no data.object".into());
        };
        let mut work = Work { dedup_key: Some(env.id.clone()), ..Work::default() };
        if let Some(c) = &r.customer_id {
            work.customers.push(c.clone());
        } else if let Some(ch) = &r.charge_id {
            work.charge = Some(ch.clone());
        }
        let family = env.event_type.split('.').next().unwrap_or("");
        if matches!(family, "price" | "plan" | "product") {
            let id = r.id.clone();
            work.catalog = Some(if family == "product" { (None, id) } else { (id, None) });
        }
        if self.settings.brevo.ecommerce_orders
            && matches!(env.event_type.as_str(), "payment_intent.succeeded" | "charge.succeeded")
        {
            work.order = order_of(&env.event_type, &object_json);
        }
        let is_customer_deleted = env.event_type == "customer.deleted";
        if is_customer_deleted {
            work.deleted_email = r.email.clone();
        }
        work.forward = Some(Forward {
            event_id: env.id.clone(),
            event_type: env.event_type.clone(),
            created: env.created,
            email_hint: r.email.clone(),
            object_json,
        });
        if self.settings.stripe.debug {
            tracing::info!(event_id = %env.id, event_type = %env.event_type, customer = ?r.customer_id, email = ?r.email.as_deref().map(redact_email), "event parsed");
        }
        Parsed::Work(work)
    }

    /// Upserts one by one below the import threshold, imports above it.
    async fn push_contacts(
        &self,
        contacts: &BTreeMap<String, ContactUpdate>,
    ) -> Vec<(String, Result<(), RemoteError>)> {
        if contacts.is_empty() {
            return Vec::new();
        }
        let threshold = self.settings.brevo.import_threshold.max(1);
        if contacts.len() < threshold {
            return stream::iter(contacts.iter())
                .map(|(cid, c)| async move { (cid.clone(), self.brevo.upsert_contact(c).await) })
                .buffer_unordered(self.options.push_concurrency.max(1))
                .collect()
                .await;
        }
        // Import: one per distinct set of lists; then list removals.
        let mut groups: BTreeMap<Vec<i64>, Vec<(&String, &ContactUpdate)>> = BTreeMap::new();
        for (cid, c) in contacts {
            let mut lists = c.list_ids.clone();
            lists.sort_unstable();
            groups.entry(lists).or_default().push((cid, c));
        }
        let mut out = Vec::with_capacity(contacts.len());
        for (lists, members) in groups {
            if lists.is_empty() {
                // An import needs at least one list: upsert these one by one.
                let done: Vec<_> = stream::iter(members)
                    .map(|(cid, c)| async move { (cid.clone(), self.brevo.upsert_contact(c).await) })
                    .buffer_unordered(self.options.push_concurrency.max(1))
                    .collect()
                    .await;
                out.extend(done);
                continue;
            }
            let batch: Vec<ContactUpdate> = members.iter().map(|(_, c)| (*c).clone()).collect();
            let res = self.brevo.import_contacts(&batch, &lists).await;
            for (cid, _) in &members {
                out.push(((*cid).clone(), res.clone()));
            }
        }
        let mut removals: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
        for (cid, c) in contacts {
            for l in &c.unlink_list_ids {
                removals.entry(*l).or_default().push((cid.clone(), c.email.clone()));
            }
        }
        let mut failed: HashMap<String, RemoteError> = HashMap::new();
        for (list, members) in removals {
            let emails: Vec<String> = members.iter().map(|(_, e)| e.clone()).collect();
            if let Err(e) = self.brevo.remove_from_list(list, &emails).await {
                for (cid, _) in members {
                    failed.insert(cid, e.clone());
                }
            }
        }
        for (cid, res) in out.iter_mut() {
            if res.is_ok() {
                if let Some(e) = failed.remove(cid.as_str()) {
                    *res = Err(e);
                }
            }
        }
        out
    }
}

/// The eCommerce order of a succeeded payment (e-mail filled in later).
fn order_of(event_type: &str, object_json: &str) -> Option<crate::domain::brevo::BrevoOrder> {
    #[derive(Deserialize)]
    struct Paid {
        id: String,
        #[serde(default)]
        amount: i64,
        #[serde(default)]
        amount_received: Option<i64>,
        #[serde(default)]
        amount_captured: Option<i64>,
        #[serde(default)]
        currency: String,
        #[serde(default)]
        created: i64,
    }
    let p: Paid = serde_json::from_str(object_json).ok()?;
    let minor = match event_type {
        "payment_intent.succeeded" => p.amount_received.unwrap_or(p.amount),
        _ => p.amount_captured.unwrap_or(p.amount),
    };
    let at = crate::domain::mapping::rfc3339(p.created)?;
    Some(crate::domain::brevo::BrevoOrder {
        id: p.id,
        created_at: at.clone(),
        updated_at: at,
        status: "completed".to_owned(),
        amount: crate::domain::money::minor_to_major(minor, &p.currency),
        email: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_add_up_field_by_field() {
        let one = ConsumeStats {
            messages: 1,
            duplicates: 2,
            customers_reloaded: 3,
            contacts_synced: 4,
            contacts_skipped_no_email: 5,
            contacts_failed: 6,
            events_sent: 7,
            events_too_old: 8,
            retries: 9,
            dead: 10,
        };
        let mut total = ConsumeStats::default();
        total += &one;
        total += &one;
        let doubled = ConsumeStats {
            messages: 2,
            duplicates: 4,
            customers_reloaded: 6,
            contacts_synced: 8,
            contacts_skipped_no_email: 10,
            contacts_failed: 12,
            events_sent: 14,
            events_too_old: 16,
            retries: 18,
            dead: 20,
        };
        assert_eq!(total, doubled);
    }
}
