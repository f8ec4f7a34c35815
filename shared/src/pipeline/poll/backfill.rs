//! Backfill: the resource's list walked with `created[gte]=since` and
//! `starting_after` paging, one [`Snapshot`] message per page, sent in
//! `SendMessageBatch` groups and checkpointed after each batch is queued. Also
//! where a backfill starts: a new record, an operator's override, or an
//! incremental cursor too old to follow.

use crate::pipeline::consume::{Snapshot, SNAPSHOT_OBJECT};
use crate::ports::{QueueError, QueueMessage, RemoteErrorKind, Source, Vendor};

use super::probe::{customer_of, last_id};
use super::{
    BackfillRequest, Clock, CursorRecord, CursorStore, EventQueue, FeedError, PollError, Poller, Position, RemoteError,
    ResourceReport, ResourceSpec, Run, StepError, StripeFeed, SyncMode,
};

/// SQS `SendMessageBatch` takes at most 10 entries.
pub const SNAPSHOTS_PER_BATCH: usize = 10;

impl<F, Q, S, C> Poller<F, Q, S, C>
where
    F: StripeFeed,
    Q: EventQueue,
    S: CursorStore,
    C: Clock,
{
    /// Applies an operator's override: restarts the named resources (every
    /// enabled one when none are named) from its `since`, else the config's.
    pub(super) async fn restart_backfills(
        &self,
        bf: &BackfillRequest,
        records: &mut [(&'static ResourceSpec, CursorRecord)],
        now: i64,
    ) -> Result<(), PollError> {
        if let Some(names) = &bf.resources {
            for n in names {
                if !records.iter().any(|(s, _)| s.name == n) {
                    tracing::warn!(resource = %n, "backfill requested for a resource the config's sync: section switches off; skipped");
                }
            }
        }
        for (spec, rec) in records.iter_mut() {
            let wanted = bf.resources.as_ref().is_none_or(|names| names.iter().any(|n| n == spec.name));
            if wanted {
                start_backfill(rec, bf.since.or(self.settings_since()), now);
                self.cursors.save(rec).await?;
                tracing::info!(resource = spec.name, since = ?rec.since, run = ?rec.run, "historical sync started");
            }
        }
        Ok(())
    }

    /// Walks the list from the record's checkpoint until it ends, the run's
    /// budget runs out, or Stripe fails; then switches the resource to
    /// incremental when the list was exhausted.
    pub(super) async fn backfill(
        &self,
        spec: &ResourceSpec,
        rec: &mut CursorRecord,
        run: &mut Run,
        rep: &mut ResourceReport,
    ) -> Result<(), StepError> {
        let run_id = match &rec.run {
            Some(r) => r.clone(),
            None => {
                let r = new_run_id(run.started);
                rec.run = Some(r.clone());
                r
            }
        };
        let mut params: Vec<(&str, String)> = spec.params.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        if let Some(since) = rec.since {
            params.push(("created[gte]", since.to_string()));
        }
        let flush_every = self.options.pages_per_flush.clamp(1, SNAPSHOTS_PER_BATCH);
        let live = Some(self.stripe.is_live());
        let mut cursor: Option<String> = rec.starting_after.clone();
        let mut buffer: Vec<QueueMessage> = Vec::with_capacity(flush_every);
        let mut pending_pages = 0usize;
        let mut pending_objects = 0u64;
        let mut restarted = false;
        let mut finished = false;
        while self.may_request(run) {
            let position = cursor.as_deref().map_or(Position::Start, Position::After);
            let page = match self.stripe.page(spec.path, &params, position).await {
                Ok(p) => p,
                Err(FeedError::CursorGone) if !restarted => {
                    // The object we stopped at is gone: start the list over
                    // (pages are keyed by their cursor; the consumer's reload
                    // is idempotent, so a replay only costs requests).
                    tracing::warn!(
                        resource = spec.name,
                        "backfill cursor object no longer exists; restarting the list"
                    );
                    self.flush(rec, &mut buffer, cursor.clone(), &mut pending_pages, &mut pending_objects, rep).await?;
                    restarted = true;
                    cursor = None;
                    continue;
                }
                Err(FeedError::CursorGone) => {
                    self.flush(rec, &mut buffer, cursor.clone(), &mut pending_pages, &mut pending_objects, rep).await?;
                    return Err(StepError::Stripe(RemoteError::new(
                        Vendor::Stripe,
                        RemoteErrorKind::Unavailable,
                        "backfill cursor object vanished twice",
                    )));
                }
                Err(FeedError::Remote(e)) => {
                    self.flush(rec, &mut buffer, cursor.clone(), &mut pending_pages, &mut pending_objects, rep).await?;
                    return Err(StepError::Stripe(e));
                }
            };
            rep.pages += 1;
            pending_pages += 1;
            pending_objects += page.items.len() as u64;
            let mut customers: Vec<String> = Vec::new();
            for item in &page.items {
                let Some(c) = customer_of(item.get()) else { continue };
                if run.named.contains(&c) {
                    continue;
                }
                if run.named.len() >= self.options.dedup_capacity {
                    run.named.clear();
                }
                run.named.insert(c.clone());
                customers.push(c);
            }
            if !customers.is_empty() {
                let key = format!("backfill:{}:{}:{}", spec.name, run_id, cursor.as_deref().unwrap_or("start"));
                let snapshot = Snapshot { object: SNAPSHOT_OBJECT.to_owned(), key: key.clone(), customers };
                let body = serde_json::to_string(&snapshot)
                    .map_err(|e| StepError::Fatal(PollError::Queue(QueueError::Rejected(e.to_string()))))?;
                buffer.push(QueueMessage {
                    body,
                    event_id: key,
                    event_type: SNAPSHOT_OBJECT.to_owned(),
                    livemode: live,
                    source: Source::Backfill,
                });
            }
            let next = if page.has_more { last_id(&page.items) } else { None };
            finished = next.is_none();
            cursor = next;
            if finished || pending_pages >= flush_every {
                self.flush(rec, &mut buffer, cursor.clone(), &mut pending_pages, &mut pending_objects, rep).await?;
            }
            if finished {
                break;
            }
        }
        self.flush(rec, &mut buffer, cursor, &mut pending_pages, &mut pending_objects, rep).await?;
        if finished {
            rep.backfill_finished = true;
            rec.mode = SyncMode::Incremental;
            rec.starting_after = None;
            // `events_created` was set when the backfill started: the
            // incremental walk picks up every change made since.
            self.cursors.save(rec).await?;
            tracing::info!(resource = spec.name, "backfill finished; following events from now on");
        }
        Ok(())
    }

    /// Sends the buffered snapshots, then checkpoints the cursor (never the
    /// other way round, so a failure replays pages instead of skipping them).
    async fn flush(
        &self,
        rec: &mut CursorRecord,
        buffer: &mut Vec<QueueMessage>,
        cursor: Option<String>,
        pending_pages: &mut usize,
        pending_objects: &mut u64,
        rep: &mut ResourceReport,
    ) -> Result<(), StepError> {
        if *pending_pages == 0 && buffer.is_empty() {
            return Ok(());
        }
        if !buffer.is_empty() {
            self.queue.send_all(buffer).await?;
        }
        rec.starting_after = cursor;
        rec.synced += *pending_objects;
        rec.messages_enqueued += buffer.len() as u64;
        rep.objects += *pending_objects;
        rep.messages += buffer.len() as u64;
        self.cursors.save(rec).await?;
        buffer.clear();
        *pending_pages = 0;
        *pending_objects = 0;
        Ok(())
    }
}

/// Resets a record to a new backfill from `since`; counters are kept. The
/// events cursor starts now, so changes made during the backfill are
/// followed afterwards.
pub(super) fn start_backfill(rec: &mut CursorRecord, since: Option<i64>, now: i64) {
    rec.mode = SyncMode::Backfill;
    rec.since = since;
    rec.run = Some(new_run_id(now));
    rec.starting_after = None;
    rec.events_created = Some(now);
    rec.events_last_id = None;
}

/// A fresh backfill run id: the start time plus randomness, so a restarted
/// backfill never shares snapshot keys (and thus dedup records) with an old one.
fn new_run_id(now: i64) -> String {
    let r: u32 = rand::random();
    format!("{now}-{r:08x}")
}
