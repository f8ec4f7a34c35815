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
            + attr(attr::EVENT_ID, &self.event_id)
            + attr(attr::EVENT_TYPE, &self.event_type)
            + attr(attr::SOURCE, self.source.as_str())
            + self.livemode.map_or(0, |_| attr(attr::LIVEMODE, "false"))
    }
}

/// The names a [`QueueMessage`]'s attributes carry on the queue (written and
/// read back by `adapters::sqs`, whose `attr` module adds the others).
pub mod attr {
    pub const EVENT_ID: &str = "event_id";
    pub const EVENT_TYPE: &str = "type";
    pub const SOURCE: &str = "source";
    pub const LIVEMODE: &str = "livemode";
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

    /// Sends a message that becomes visible only after `delay_secs` (SQS
    /// `DelaySeconds`, at most 900). The default ignores the delay: a queue
    /// that cannot delay delivers at once, which is still correct, only
    /// earlier.
    async fn send_delayed(&self, message: &QueueMessage, delay_secs: u32) -> Result<(), QueueError> {
        let _ = delay_secs;
        self.send(message).await
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
    async fn send_delayed(&self, message: &QueueMessage, delay_secs: u32) -> Result<(), QueueError> {
        (**self).send_delayed(message, delay_secs).await
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

/// Result of trying to claim an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller owns the key until it completes or releases it.
    Acquired,
    /// The work was done already: do nothing.
    AlreadyCompleted,
    /// Another worker holds an unexpired in-progress claim: try again later.
    InProgressElsewhere,
}

/// Idempotency records (Powertools-style): `claim` is a conditional insert
/// that also takes over expired records and stale in-progress ones;
/// `complete` marks done until `expires_at`; `release` deletes an in-progress
/// claim after a failure so a retry can run. Expiry is compared by value, so
/// correctness never depends on DynamoDB's TTL having deleted the item.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn claim(&self, key: &str, now: i64, in_progress_until: i64, expires_at: i64) -> Result<Claim, StoreError>;
    async fn complete(&self, key: &str, expires_at: i64) -> Result<(), StoreError>;
    async fn release(&self, key: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: IdempotencyStore + ?Sized> IdempotencyStore for std::sync::Arc<T> {
    async fn claim(&self, key: &str, now: i64, in_progress_until: i64, expires_at: i64) -> Result<Claim, StoreError> {
        (**self).claim(key, now, in_progress_until, expires_at).await
    }
    async fn complete(&self, key: &str, expires_at: i64) -> Result<(), StoreError> {
        (**self).complete(key, expires_at).await
    }
    async fn release(&self, key: &str) -> Result<(), StoreError> {
        (**self).release(key).await
    }
}

/// What the [`ContactLedger`] holds for one contact (keyed by a hash of its
/// e-mail address, never the address itself).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerEntry {
    /// Fingerprint of the contact state last confirmed written to Brevo;
    /// `None` when unknown (a push failed, or two pushes overlapped).
    pub fingerprint: Option<String>,
    /// When that state was written (unix seconds).
    pub sent_at: i64,
    /// A push of this contact is under way somewhere, or one ended without
    /// finishing (a crash): the contact is never skipped while it is set.
    pub pending: bool,
}

/// The contacts last written to Brevo, shared by every consumer instance, so
/// a contact whose state is unchanged since *anyone* last wrote it is not
/// sent again — and one that another instance has written since is.
///
/// The protocol (see `pipeline::consume::ledger`): read the entries; skip a
/// contact only when its fingerprint matches, is fresh and nothing is
/// pending; otherwise [`begin`](Self::begin) (adds this push's token to the
/// pending set) **before** pushing and [`finish`](Self::finish) after. A
/// finish records the fingerprint only when no other push of the contact
/// overlapped this one: the pending set was empty when it began, nobody
/// began since, and its token is the only one pending. (Being alone in the
/// set at finish is not enough: an overlapping push that finished first may
/// have reached Brevo last.) Otherwise the entry becomes unknown. So a
/// recorded fingerprint is always the state of the last push Brevo received.
#[async_trait]
pub trait ContactLedger: Send + Sync {
    /// The entries of these keys (absent keys are never written or expired).
    async fn entries(&self, keys: &[String]) -> Result<std::collections::HashMap<String, LedgerEntry>, StoreError>;
    /// Marks a push of `key` under way: adds `token` to its pending set and
    /// counts one more push begun.
    async fn begin(&self, key: &str, token: &str, expires_at: i64) -> Result<(), StoreError>;
    /// Ends the push `token` of `key`: with `sent = Some(fingerprint)` (Brevo
    /// took it) the fingerprint is recorded if no other push overlapped this
    /// one (see above), else the entry becomes unknown; with `None` (the push failed, or
    /// its effect is not known) the entry becomes unknown. `token` leaves
    /// the pending set either way.
    async fn finish(
        &self,
        key: &str,
        token: &str,
        sent: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
}

/// Which vendor a [`RemoteError`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    Stripe,
    Brevo,
}

impl Vendor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Brevo => "brevo",
        }
    }
}

/// What went wrong, as the use cases decide on it (never on the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteErrorKind {
    /// 401: the key is wrong, expired or revoked. Retrying cannot help until
    /// the operator fixes the key.
    Unauthorized,
    /// 403: the key lacks a permission, or a feature is not enabled.
    Forbidden,
    /// 404: the object or list does not exist.
    NotFound,
    /// 400 and other 4xx: the request itself was refused (a bug, or data the
    /// vendor will not take).
    Rejected,
    /// 429 still answered after the client's own retries.
    RateLimited,
    /// 5xx, timeouts, transport errors, unreadable answers: may work later.
    Unavailable,
}

impl RemoteErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }

    /// True when the same request may succeed later without anyone acting.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable)
    }
}

/// A vendor API failure reduced to what the use cases decide on: the vendor,
/// the kind, and a message for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub vendor: Vendor,
    pub kind: RemoteErrorKind,
    /// Safe to log: never a key, a body or a raw e-mail address.
    pub message: String,
    /// The request may have reached the vendor and been applied: it was sent
    /// and no answer came (a timeout, a connection lost after sending). A
    /// call that must not be repeated (a Brevo event) is then not re-sent.
    pub unconfirmed: bool,
}

impl RemoteError {
    pub fn new(vendor: Vendor, kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        Self { vendor, kind, message: message.into(), unconfirmed: false }
    }

    /// The same error, marked as possibly applied (see [`Self::unconfirmed`]).
    pub fn unconfirmed(mut self) -> Self {
        self.unconfirmed = true;
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// What the metrics need of one customer, as Stripe has it now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerState {
    /// `None` when the customer is deleted or does not exist.
    pub customer: Option<crate::domain::stripe::Customer>,
    /// Every charge, balance transactions expanded.
    pub charges: Vec<crate::domain::stripe::Charge>,
    /// Every subscription (`status=all`), prices expanded, product names filled.
    pub subscriptions: Vec<crate::domain::stripe::Subscription>,
}

/// The Stripe reads the consumer needs.
#[async_trait]
pub trait StripeApi: Send + Sync {
    /// True for a live-mode key (`sk_live_`/`rk_live_`).
    fn is_live(&self) -> bool;
    /// Reloads a customer and what its metrics need (≈3 requests).
    async fn customer_state(&self, customer_id: &str) -> Result<CustomerState, RemoteError>;
    /// The customer of a charge (for disputes and refunds), if any.
    async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, RemoteError>;
    /// Customers with a subscription on a price, or on any price of a
    /// product (for `price.*`, `plan.*` and `product.*` events: renamed or
    /// deleted plans change `plan_name`). Forgets cached product names.
    async fn customers_of(&self, price_id: Option<&str>, product_id: Option<&str>) -> Result<Vec<String>, RemoteError>;
}

#[async_trait]
impl<T: StripeApi + ?Sized> StripeApi for std::sync::Arc<T> {
    fn is_live(&self) -> bool {
        (**self).is_live()
    }
    async fn customer_state(&self, customer_id: &str) -> Result<CustomerState, RemoteError> {
        (**self).customer_state(customer_id).await
    }
    async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, RemoteError> {
        (**self).charge_customer(charge_id).await
    }
    async fn customers_of(&self, price_id: Option<&str>, product_id: Option<&str>) -> Result<Vec<String>, RemoteError> {
        (**self).customers_of(price_id, product_id).await
    }
}

/// The Brevo writes the consumer needs.
#[async_trait]
pub trait BrevoApi: Send + Sync {
    /// Creates the attributes missing in the account (cached after the first call).
    async fn ensure_attributes(
        &self,
        types: &std::collections::BTreeMap<String, crate::domain::brevo::AttributeType>,
    ) -> Result<(), RemoteError>;
    /// Real-time upsert of one contact: attributes, and the lists in
    /// `list_ids` added. `unlink_list_ids` is NOT applied here (Brevo's
    /// create-or-update takes no removals): the caller removes through
    /// [`BrevoApi::remove_from_list`], batched per list.
    async fn upsert_contact(&self, contact: &crate::domain::brevo::ContactUpdate) -> Result<(), RemoteError>;
    /// Bulk upsert (asynchronous import) of contacts that share `list_ids`:
    /// the imports Brevo *accepted* (their rows are applied later, and a row
    /// Brevo cannot take is skipped: follow each with
    /// [`import_status`](Self::import_status) and
    /// [`modified_since`](Self::modified_since)), in the contacts' order.
    async fn import_contacts(
        &self,
        contacts: &[crate::domain::brevo::ContactUpdate],
        list_ids: &[i64],
    ) -> Result<Vec<crate::domain::brevo::ImportStarted>, RemoteError>;
    /// Where an import's process stands, asked only if that can be done now:
    /// `Ok(None)` when the budget of its endpoint (100 per hour on Brevo's
    /// General plan) has no room at this moment — ask later; never waits.
    async fn import_status(&self, process_id: i64) -> Result<Option<crate::domain::brevo::ProcessStatus>, RemoteError>;
    /// The e-mails (lower-cased) of the contacts in `list_id` that Brevo
    /// modified after `since` (unix seconds), all pages.
    async fn modified_since(&self, list_id: i64, since: i64)
        -> Result<std::collections::BTreeSet<String>, RemoteError>;
    /// Removes e-mails from a list (absent ones are not an error).
    async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<(), RemoteError>;
    /// Sends events; the outer error fails all, the inner vector (same order)
    /// says which single events failed.
    async fn send_events(
        &self,
        events: &[crate::domain::brevo::BrevoEvent],
    ) -> Result<Vec<Option<RemoteError>>, RemoteError>;
    /// eCommerce order upsert (optional feature).
    async fn upsert_order(&self, order: &crate::domain::brevo::BrevoOrder) -> Result<(), RemoteError>;
}

#[async_trait]
impl<T: BrevoApi + ?Sized> BrevoApi for std::sync::Arc<T> {
    async fn ensure_attributes(
        &self,
        types: &std::collections::BTreeMap<String, crate::domain::brevo::AttributeType>,
    ) -> Result<(), RemoteError> {
        (**self).ensure_attributes(types).await
    }
    async fn upsert_contact(&self, contact: &crate::domain::brevo::ContactUpdate) -> Result<(), RemoteError> {
        (**self).upsert_contact(contact).await
    }
    async fn import_contacts(
        &self,
        contacts: &[crate::domain::brevo::ContactUpdate],
        list_ids: &[i64],
    ) -> Result<Vec<crate::domain::brevo::ImportStarted>, RemoteError> {
        (**self).import_contacts(contacts, list_ids).await
    }
    async fn import_status(&self, process_id: i64) -> Result<Option<crate::domain::brevo::ProcessStatus>, RemoteError> {
        (**self).import_status(process_id).await
    }
    async fn modified_since(
        &self,
        list_id: i64,
        since: i64,
    ) -> Result<std::collections::BTreeSet<String>, RemoteError> {
        (**self).modified_since(list_id, since).await
    }
    async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<(), RemoteError> {
        (**self).remove_from_list(list_id, emails).await
    }
    async fn send_events(
        &self,
        events: &[crate::domain::brevo::BrevoEvent],
    ) -> Result<Vec<Option<RemoteError>>, RemoteError> {
        (**self).send_events(events).await
    }
    async fn upsert_order(&self, order: &crate::domain::brevo::BrevoOrder) -> Result<(), RemoteError> {
        (**self).upsert_order(order).await
    }
}

/// Where permanently failing messages go (the DLQ), so they are kept for
/// inspection without being retried in vain.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn dead_letter(&self, body: &str, event_id: Option<&str>, reason: &str) -> Result<(), QueueError>;
}

/// How a resource is being synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Listing `created[gte]=since` page by page (`starting_after`).
    #[default]
    Backfill,
    /// Following the Events API from (`events_created`, `events_last_id`).
    Incremental,
}

/// The poller's progress and counters for one resource (`customers`,
/// `charges`, … or `events`), as stored in the cursor table.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CursorRecord {
    pub resource: String,
    pub mode: SyncMode,
    /// Backfill lower bound (unix seconds).
    pub since: Option<i64>,
    /// Backfill run id (new per started backfill; part of snapshot keys).
    pub run: Option<String>,
    /// Backfill position: the last object id handed to the queue.
    pub starting_after: Option<String>,
    /// Incremental position: newest processed event's `created` and id.
    pub events_created: Option<i64>,
    pub events_last_id: Option<String>,
    /// An unfinished walk of the events by time (`created[gte]`), so a
    /// window that needs several runs resumes where the last one stopped:
    /// its lower bound, the `types[]` chunk and position in it, and the
    /// newest event seen so far (the cursor once the walk is complete).
    pub down_since: Option<i64>,
    pub down_chunk: Option<u64>,
    pub down_after: Option<String>,
    pub down_newest_created: Option<i64>,
    pub down_newest_id: Option<String>,
    /// Objects (or events) seen in total.
    pub synced: u64,
    pub requests: u64,
    pub messages_enqueued: u64,
    pub retries: u64,
    pub last_run: Option<i64>,
    pub last_success: Option<i64>,
    pub last_error: Option<String>,
}

impl CursorRecord {
    pub fn new(resource: &str) -> Self {
        Self { resource: resource.to_owned(), ..Self::default() }
    }

    /// The cursor as `status` prints it.
    pub fn cursor_text(&self) -> Option<String> {
        match self.mode {
            SyncMode::Backfill => self.starting_after.clone(),
            SyncMode::Incremental => match (self.events_created, &self.events_last_id) {
                (Some(t), Some(id)) => Some(format!("{t}:{id}")),
                (Some(t), None) => Some(t.to_string()),
                _ => None,
            },
        }
    }
}

/// What the consumer has done to contacts, summed over its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ContactCounts {
    pub synced: u64,
    pub skipped_no_email: u64,
    pub failed: u64,
}

/// The cursor table: per-resource progress, a single-poller lease, and the
/// consumer's contact counters (for `status`).
#[async_trait]
pub trait CursorStore: Send + Sync {
    async fn load(&self, resource: &str) -> Result<Option<CursorRecord>, StoreError>;
    /// Writes the whole record (last writer wins: only the lease holder writes).
    async fn save(&self, record: &CursorRecord) -> Result<(), StoreError>;
    /// Every resource record.
    async fn list(&self) -> Result<Vec<CursorRecord>, StoreError>;
    /// Takes (or renews, for the same owner) the poller lease until
    /// `until`; false when another owner holds an unexpired lease.
    async fn acquire_lease(&self, owner: &str, now: i64, until: i64) -> Result<bool, StoreError>;
    /// Gives the lease up (only if `owner` holds it).
    async fn release_lease(&self, owner: &str) -> Result<(), StoreError>;
    /// Adds to the contact counters (atomic increments).
    async fn add_contact_counts(&self, delta: ContactCounts) -> Result<(), StoreError>;
    async fn contact_counts(&self) -> Result<ContactCounts, StoreError>;
}

#[async_trait]
impl<T: CursorStore + ?Sized> CursorStore for std::sync::Arc<T> {
    async fn load(&self, resource: &str) -> Result<Option<CursorRecord>, StoreError> {
        (**self).load(resource).await
    }
    async fn save(&self, record: &CursorRecord) -> Result<(), StoreError> {
        (**self).save(record).await
    }
    async fn list(&self) -> Result<Vec<CursorRecord>, StoreError> {
        (**self).list().await
    }
    async fn acquire_lease(&self, owner: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        (**self).acquire_lease(owner, now, until).await
    }
    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        (**self).release_lease(owner).await
    }
    async fn add_contact_counts(&self, delta: ContactCounts) -> Result<(), StoreError> {
        (**self).add_contact_counts(delta).await
    }
    async fn contact_counts(&self) -> Result<ContactCounts, StoreError> {
        (**self).contact_counts().await
    }
}

// The poller's Stripe port: one page of a list at a time, as raw JSON.

/// Where a list request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position<'a> {
    /// The newest objects.
    Start,
    /// Objects older than this id (`starting_after`).
    After(&'a str),
    /// Objects newer than this id (`ending_before`; the page is still newest first).
    Before(&'a str),
}

/// One page of a Stripe list: the objects as raw JSON, newest first.
#[derive(Debug, Default)]
pub struct FeedPage {
    pub items: Vec<Box<serde_json::value::RawValue>>,
    pub has_more: bool,
}

/// Requests made by a feed so far (monotonic; the poller takes differences).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedUsage {
    pub requests: u64,
    pub retries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The `starting_after`/`ending_before` object no longer exists.
    #[error("the list cursor object no longer exists")]
    CursorGone,
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// The Stripe reads the poller needs: one page of a list at a time.
#[async_trait]
pub trait StripeFeed: Send + Sync {
    /// True for a live-mode key.
    fn is_live(&self) -> bool;
    /// `GET path?params&limit=100` from `position` (params may repeat keys,
    /// e.g. `types[]`). Retries and rate limits are the adapter's business.
    async fn page(&self, path: &str, params: &[(&str, String)], position: Position<'_>) -> Result<FeedPage, FeedError>;
    /// Requests sent so far, retries included.
    fn usage(&self) -> FeedUsage;
}

#[async_trait]
impl<T: StripeFeed + ?Sized> StripeFeed for std::sync::Arc<T> {
    fn is_live(&self) -> bool {
        (**self).is_live()
    }
    async fn page(&self, path: &str, params: &[(&str, String)], position: Position<'_>) -> Result<FeedPage, FeedError> {
        (**self).page(path, params, position).await
    }
    fn usage(&self) -> FeedUsage {
        (**self).usage()
    }
}
