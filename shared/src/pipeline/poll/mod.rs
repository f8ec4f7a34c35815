//! The poller: Stripe → queue, on a schedule. Makes the Brevo side complete
//! (history from before the connector, webhooks missed during an outage) and
//! keeps it complete. It never maps or pushes: it only enqueues messages the
//! consumer understands.
//!
//! Per resource (customers, charges, … see [`RESOURCES`]) the cursor table
//! holds a [`CursorRecord`] in one of two modes:
//!
//! - **Backfill**: the resource is listed with `created[gte]=since`,
//!   `limit=100`, `starting_after` paging. Each page becomes ONE
//!   [`Snapshot`] message naming the distinct customers it touched (customers
//!   already named earlier in the same run are left out), keyed
//!   `backfill:<resource>:<run>:<page cursor>` so a replayed page is
//!   deduplicated by the consumer. Snapshots are sent in `SendMessageBatch`
//!   groups of 10 ([`PollOptions::pages_per_flush`] pages per batch) and the
//!   cursor is checkpointed right after each batch is durably queued, so a
//!   crash replays at most one batch of pages and a stop never skips one.
//!   Prices and products name no customer and enqueue nothing (the
//!   subscriptions backfill recomputes every subscriber, plan names
//!   included); guest checkout sessions (no `customer`) are counted only.
//!   When the list is exhausted the resource switches to incremental.
//! - **Incremental**: `/v1/events` filtered with the resource's `types[]`
//!   (≤ 20 per request, split when more) is the change feed. Each event is
//!   enqueued as the webhook would ([`Source::Poller`], same event id) so the
//!   consumer's idempotency merges webhook and poller copies. The cursor is
//!   the newest processed event (`events_created`, `events_last_id`); the next
//!   run walks forward with `ending_before=<that id>` page by page
//!   (checkpointing each page), so events sharing a second are neither lost
//!   nor repeated. Without an id (right after a backfill, or when the id is
//!   gone) it lists `created[gte]=events_created` through every page and
//!   re-enqueues that second's events (the consumer deduplicates).
//!   Stripe keeps events 30 days: a cursor older than 25 days falls back to a
//!   backfill from the cursor time, with a warning.
//!   <https://docs.stripe.com/api/events/list>
//!
//! One poller at a time: a lease in the cursor table (expiring after the run's
//! deadline, so a crashed run does not block the next). The run stops cleanly
//! before its deadline (the Lambda's remaining time) and the next one resumes.
//! Counters (requests, objects, messages, retries) are logged at the end and
//! added to each resource's record for `stripe-brevo status`.
//!
//! Layout: `catalogue.rs` (the resources and their event types), `request.rs`
//! (what an invocation asks for), `lease.rs`, `backfill.rs`, `incremental.rs`
//! (each mode's walk), `probe.rs` (fields read from raw Stripe JSON),
//! `report.rs` (what a run did). This file holds the run itself.

mod backfill;
mod catalogue;
mod incremental;
mod lease;
mod probe;
mod report;
mod request;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ports::{Clock, CursorRecord, CursorStore, EventQueue, QueueError, RemoteError, StoreError, SyncMode};
use crate::settings::Settings;
use backfill::start_backfill;

pub use backfill::SNAPSHOTS_PER_BATCH;
pub use catalogue::{enabled_resources, event_types_for, resource, ResourceSpec, Toggle, RESOURCES};
pub use incremental::{EVENTS_FALLBACK_AGE_SECS, MAX_TYPES_PER_REQUEST};
pub use probe::customer_of;
pub use report::{PollReport, ResourceReport};
pub use request::{BackfillRequest, BadRequest, PollRequest};

// ---------------------------------------------------------------------------
// The Stripe port
// ---------------------------------------------------------------------------

pub use crate::ports::{FeedError, FeedPage, FeedUsage, Position, StripeFeed};

/// Tunables that are not part of the YAML config.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Stop starting requests when less than this is left before the deadline.
    pub deadline_margin: Duration,
    /// Added to the run's remaining time for the lease's expiry.
    pub lease_grace_secs: i64,
    /// Backfill pages per queue batch and checkpoint (≤ 10 snapshots per
    /// `SendMessageBatch`; 1 = checkpoint every page, 10× the SQS calls).
    pub pages_per_flush: usize,
    /// Stop after this many list pages in one run (tests, CLI dry steps).
    pub max_pages_per_run: Option<u64>,
    /// Incremental cursors older than this fall back to a re-list.
    pub events_fallback_age_secs: i64,
    /// Customer ids remembered per run to avoid naming one twice (bounded memory).
    pub dedup_capacity: usize,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            deadline_margin: Duration::from_secs(20),
            lease_grace_secs: 60,
            pages_per_flush: SNAPSHOTS_PER_BATCH,
            max_pages_per_run: None,
            events_fallback_age_secs: EVENTS_FALLBACK_AGE_SECS,
            dedup_capacity: 200_000,
        }
    }
}

/// What ends a run early.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    #[error("cursor table: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

impl PollError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::BadRequest(_) => false,
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
        }
    }
}

/// The poller's dependencies.
pub struct Poller<F, Q, S, C> {
    pub stripe: F,
    pub queue: Q,
    pub cursors: S,
    pub clock: C,
    pub settings: Arc<Settings>,
    pub options: PollOptions,
}

/// Mutable state of one run.
struct Run {
    deadline: Instant,
    pages_left: Option<u64>,
    stopped: bool,
    /// Customers already named in a snapshot during this run.
    named: HashSet<String>,
    started: i64,
}

/// Why one resource's step stopped with an error.
enum StepError {
    /// Recorded on the resource; the run goes on with the others.
    Stripe(RemoteError),
    Fatal(PollError),
}

impl From<QueueError> for StepError {
    fn from(e: QueueError) -> Self {
        Self::Fatal(PollError::Queue(e))
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self::Fatal(PollError::Store(e))
    }
}

impl<F, Q, S, C> Poller<F, Q, S, C>
where
    F: StripeFeed,
    Q: EventQueue,
    S: CursorStore,
    C: Clock,
{
    /// One run: takes the lease (returns `ran: false` when another poller
    /// holds it), applies a backfill override, follows incremental resources,
    /// then advances backfills until done or `deadline`, releases the lease.
    pub async fn run(&self, request: &PollRequest, owner: &str, deadline: Instant) -> Result<PollReport, PollError> {
        let now = self.clock.now_unix();
        if !self.take_lease(owner, deadline, now).await? {
            tracing::info!(owner, "another poller holds the lease: skipping this run");
            return Ok(PollReport::default());
        }
        let result = self.run_leased(request, deadline, now).await;
        self.drop_lease(owner).await;
        let report = result?;
        report.log();
        Ok(report)
    }

    async fn run_leased(&self, request: &PollRequest, deadline: Instant, now: i64) -> Result<PollReport, PollError> {
        let mut records = self.load_records(now).await?;
        if let Some(bf) = &request.backfill {
            self.restart_backfills(bf, &mut records, now).await?;
        }

        let mut run = Run {
            deadline,
            pages_left: self.options.max_pages_per_run,
            stopped: false,
            named: HashSet::new(),
            started: now,
        };
        let mut report = PollReport { ran: true, ..PollReport::default() };
        // Incremental first (cheap, keeps contacts fresh), then backfills.
        let (incremental, backfill): (Vec<_>, Vec<_>) =
            records.into_iter().partition(|(_, r)| r.mode == SyncMode::Incremental);
        for (spec, mut rec) in incremental.into_iter().chain(backfill) {
            let r = self.step(spec, &mut rec, &mut run).await?;
            report.resources.push(r);
        }
        report.stopped_early = run.stopped;
        Ok(report)
    }

    /// Every enabled resource's record; a resource never seen starts a
    /// backfill from the config's `since`.
    async fn load_records(&self, now: i64) -> Result<Vec<(&'static ResourceSpec, CursorRecord)>, PollError> {
        let settings_since = self.settings_since();
        let enabled = enabled_resources(&self.settings.stripe.sync);
        let mut records: Vec<(&'static ResourceSpec, CursorRecord)> = Vec::with_capacity(enabled.len());
        for spec in &enabled {
            let rec = match self.cursors.load(spec.name).await? {
                Some(r) => r,
                None => {
                    let mut r = CursorRecord::new(spec.name);
                    start_backfill(&mut r, settings_since, now);
                    r
                }
            };
            records.push((spec, rec));
        }
        Ok(records)
    }

    /// The config's `since` (UTC midnight) in unix seconds.
    pub(super) fn settings_since(&self) -> Option<i64> {
        self.settings.stripe.since.map(|d| d.midnight().assume_utc().unix_timestamp())
    }

    /// One resource: its mode's work, counters, status fields, a final save.
    async fn step(
        &self,
        spec: &'static ResourceSpec,
        rec: &mut CursorRecord,
        run: &mut Run,
    ) -> Result<ResourceReport, PollError> {
        let before = self.stripe.usage();
        let mut rep = ResourceReport { resource: spec.name.to_owned(), ..ResourceReport::default() };
        rec.last_run = Some(run.started);
        let outcome = match rec.mode {
            SyncMode::Incremental => self.incremental(spec, rec, run, &mut rep).await,
            SyncMode::Backfill => self.backfill(spec, rec, run, &mut rep).await,
        };
        let after = self.stripe.usage();
        rep.requests = after.requests.saturating_sub(before.requests);
        rep.retries = after.retries.saturating_sub(before.retries);
        rec.requests += rep.requests;
        rec.retries += rep.retries;
        rep.mode = rec.mode;
        match outcome {
            Ok(()) => {
                rec.last_success = Some(run.started);
                rec.last_error = None;
            }
            Err(StepError::Stripe(e)) => {
                tracing::error!(resource = spec.name, cause = %e, retryable = e.is_retryable(), kind = e.kind.as_str(), "poller could not read Stripe");
                rec.last_error = Some(e.message.clone());
                rep.error = Some(e.message);
            }
            Err(StepError::Fatal(e)) => {
                rec.last_error = Some(e.to_string());
                if let Err(se) = self.cursors.save(rec).await {
                    tracing::warn!(cause = %se, "could not record the error on the cursor");
                }
                return Err(e);
            }
        }
        self.cursors.save(rec).await?;
        Ok(rep)
    }

    /// False once the deadline (minus the margin) or the page budget is reached.
    fn may_request(&self, run: &mut Run) -> bool {
        if run.stopped {
            return false;
        }
        let out_of_pages = run.pages_left == Some(0);
        let out_of_time = Instant::now() + self.options.deadline_margin >= run.deadline;
        if out_of_pages || out_of_time {
            run.stopped = true;
            return false;
        }
        if let Some(p) = run.pages_left.as_mut() {
            *p -= 1;
        }
        true
    }
}
