//! Incremental: `/v1/events` filtered by the resource's `types[]` is the
//! change feed. Walks forward from the cursor event (`ending_before`), or
//! lists by time when there is no usable id; falls back to a backfill when the
//! cursor is older than Stripe keeps events.
//! <https://docs.stripe.com/api/events/list>

use std::collections::HashSet;

use crate::ports::{QueueMessage, RemoteErrorKind, Source, Vendor};

use super::backfill::start_backfill;
use super::probe::{last_id, EventHead};
use super::{
    event_types_for, Clock, CursorRecord, CursorStore, EventQueue, FeedError, Poller, Position, RemoteError,
    ResourceReport, ResourceSpec, Run, StepError, StripeFeed,
};

/// Stripe keeps events for 30 days; past 25 the poller re-lists instead.
/// <https://docs.stripe.com/api/events>
pub const EVENTS_FALLBACK_AGE_SECS: i64 = 25 * 86_400;

/// At most 20 `types[]` per `/v1/events` request.
pub const MAX_TYPES_PER_REQUEST: usize = 20;

impl<F, Q, S, C> Poller<F, Q, S, C>
where
    F: StripeFeed,
    Q: EventQueue,
    S: CursorStore,
    C: Clock,
{
    /// Follows the events feed from the record's cursor, or falls back to a
    /// backfill from the cursor time when Stripe no longer keeps its events.
    pub(super) async fn incremental(
        &self,
        spec: &ResourceSpec,
        rec: &mut CursorRecord,
        run: &mut Run,
        rep: &mut ResourceReport,
    ) -> Result<(), StepError> {
        let now = run.started;
        let cursor_time = rec.events_created.unwrap_or(now);
        if cursor_time < now - self.options.events_fallback_age_secs {
            // Objects created before the gap may have changed during it (a
            // subscription cancelled, a charge refunded): only a full re-list
            // (from the config's `since`) finds every customer to recompute.
            tracing::warn!(
                resource = spec.name,
                cursor_age_days = (now - cursor_time) / 86_400,
                "events cursor is older than Stripe's event retention allows: re-listing the whole resource (every customer whose data may have changed is recomputed)"
            );
            rep.fell_back = true;
            start_backfill(rec, self.settings_since(), now);
            self.cursors.save(rec).await?;
            return self.backfill(spec, rec, run, rep).await;
        }
        let types = event_types_for(spec, &self.settings);
        if types.is_empty() {
            rec.events_created = Some(now);
            return Ok(());
        }
        let chunks: Vec<&[String]> = types.chunks(MAX_TYPES_PER_REQUEST).collect();
        let found_new = match (&rec.events_last_id, chunks.len()) {
            // An unfinished walk by time finishes first.
            _ if rec.down_since.is_some() => self.walk_down(&chunks, cursor_time, rec, run, rep).await?,
            (Some(last), 1) => {
                let last = last.clone();
                match self.walk_up(chunks[0], &last, rec, run, rep).await {
                    Ok(n) => n,
                    Err(Walk::CursorGone) => {
                        tracing::warn!(
                            resource = spec.name,
                            "events cursor id no longer exists; listing by time instead"
                        );
                        self.walk_down(&chunks, cursor_time, rec, run, rep).await?
                    }
                    Err(Walk::Step(e)) => return Err(e),
                }
            }
            _ => self.walk_down(&chunks, cursor_time, rec, run, rep).await?,
        };
        // Idle for a day: move the cursor time (not the id) to this run's
        // start minus 5 minutes of listing lag, so a quiet resource does not
        // trip the 25-day fallback.
        if !found_new && !run.stopped && rec.events_created.is_some_and(|t| t < now - 86_400) {
            rec.events_created = Some(now - 300);
        }
        Ok(())
    }

    /// Walks forward from the cursor event with `ending_before`, oldest page
    /// first, checkpointing each page. Returns whether any event was found.
    async fn walk_up(
        &self,
        types: &[String],
        last: &str,
        rec: &mut CursorRecord,
        run: &mut Run,
        rep: &mut ResourceReport,
    ) -> Result<bool, Walk> {
        let params: Vec<(&str, String)> = types.iter().map(|t| ("types[]", t.clone())).collect();
        let mut before = last.to_owned();
        let mut found = false;
        while self.may_request(run) {
            let page = match self.stripe.page("/v1/events", &params, Position::Before(&before)).await {
                Ok(p) => p,
                Err(FeedError::CursorGone) => return Err(Walk::CursorGone),
                Err(FeedError::Remote(e)) => return Err(Walk::Step(StepError::Stripe(e))),
            };
            rep.pages += 1;
            if page.items.is_empty() {
                break;
            }
            found = true;
            // Newest first in the page: enqueue oldest first.
            let messages: Vec<QueueMessage> = page.items.iter().rev().filter_map(|r| event_message(r.get())).collect();
            self.queue.send_all(&messages).await.map_err(|e| Walk::Step(e.into()))?;
            let newest = page.items.first().and_then(|r| serde_json::from_str::<EventHead>(r.get()).ok());
            let n = page.items.len() as u64;
            rec.synced += n;
            rec.messages_enqueued += messages.len() as u64;
            rep.objects += n;
            rep.messages += messages.len() as u64;
            if let Some(EventHead { id: Some(id), created, .. }) = newest {
                rec.events_created = created.or(rec.events_created);
                rec.events_last_id = Some(id.clone());
                before = id;
            }
            self.cursors.save(rec).await.map_err(|e| Walk::Step(e.into()))?;
            if !page.has_more {
                break;
            }
        }
        Ok(found)
    }

    /// Lists `created[gte]=since` through every page of each type chunk,
    /// newest first, enqueueing as it goes; the cursor moves to the newest
    /// event only when every chunk was read to its end. Each page is
    /// checkpointed (`down_*` in the record), so a window longer than one run
    /// resumes at its position instead of starting over (and never stalls).
    async fn walk_down(
        &self,
        chunks: &[&[String]],
        since: i64,
        rec: &mut CursorRecord,
        run: &mut Run,
        rep: &mut ResourceReport,
    ) -> Result<bool, StepError> {
        let skip = rec.events_last_id.clone();
        let mut seen: HashSet<String> = HashSet::new();
        // Resume an unfinished walk (same window), else start one.
        let resume = rec.down_since.is_some() && rec.down_chunk.is_some_and(|c| (c as usize) < chunks.len());
        let (since, first_chunk, mut resume_after) = if resume {
            (rec.down_since.unwrap_or(since), rec.down_chunk.unwrap_or(0) as usize, rec.down_after.clone())
        } else {
            (since, 0, None)
        };
        let mut newest: Option<(i64, String)> = match (resume, rec.down_newest_created, rec.down_newest_id.clone()) {
            (true, Some(c), Some(id)) => Some((c, id)),
            _ => None,
        };
        if resume {
            tracing::info!(since, chunk = first_chunk, "resuming an unfinished walk of the events by time");
        }
        for (ci, chunk) in chunks.iter().enumerate().skip(first_chunk) {
            let mut params: Vec<(&str, String)> = chunk.iter().map(|t| ("types[]", t.clone())).collect();
            params.push(("created[gte]", since.to_string()));
            let mut after: Option<String> = resume_after.take();
            let mut first_page = after.is_none();
            loop {
                if !self.may_request(run) {
                    checkpoint_down(rec, since, ci, after, &newest);
                    self.cursors.save(rec).await?;
                    return Ok(false);
                }
                let position = after.as_deref().map_or(Position::Start, Position::After);
                let page = match self.stripe.page("/v1/events", &params, position).await {
                    Ok(p) => p,
                    Err(FeedError::CursorGone) => {
                        return Err(StepError::Stripe(RemoteError::new(
                            Vendor::Stripe,
                            RemoteErrorKind::Unavailable,
                            "events page cursor vanished",
                        )))
                    }
                    Err(FeedError::Remote(e)) => return Err(StepError::Stripe(e)),
                };
                rep.pages += 1;
                if first_page {
                    if let Some(EventHead { id: Some(id), created: Some(c), .. }) =
                        page.items.first().and_then(|r| serde_json::from_str::<EventHead>(r.get()).ok())
                    {
                        if newest.as_ref().is_none_or(|(nc, _)| c > *nc) {
                            newest = Some((c, id));
                        }
                    }
                    first_page = false;
                }
                let mut messages = Vec::with_capacity(page.items.len());
                for item in &page.items {
                    let Some(m) = event_message(item.get()) else { continue };
                    if skip.as_deref() == Some(m.event_id.as_str()) || !seen.insert(m.event_id.clone()) {
                        continue;
                    }
                    messages.push(m);
                }
                self.queue.send_all(&messages).await?;
                let n = page.items.len() as u64;
                rec.synced += n;
                rec.messages_enqueued += messages.len() as u64;
                rep.objects += n;
                rep.messages += messages.len() as u64;
                match (page.has_more, last_id(&page.items)) {
                    (true, Some(id)) => after = Some(id),
                    _ => break,
                }
                checkpoint_down(rec, since, ci, after.clone(), &newest);
                self.cursors.save(rec).await?;
            }
            // The next chunk starts at its newest page.
            checkpoint_down(rec, since, ci + 1, None, &newest);
        }
        let found = !seen.is_empty() || resume;
        if let Some((c, id)) = newest {
            rec.events_created = Some(c);
            rec.events_last_id = Some(id);
        }
        clear_down(rec);
        self.cursors.save(rec).await?;
        Ok(found)
    }
}

/// Records where an unfinished walk by time stands.
fn checkpoint_down(
    rec: &mut CursorRecord,
    since: i64,
    chunk: usize,
    after: Option<String>,
    newest: &Option<(i64, String)>,
) {
    rec.down_since = Some(since);
    rec.down_chunk = Some(chunk as u64);
    rec.down_after = after;
    rec.down_newest_created = newest.as_ref().map(|(c, _)| *c);
    rec.down_newest_id = newest.as_ref().map(|(_, id)| id.clone());
}

fn clear_down(rec: &mut CursorRecord) {
    rec.down_since = None;
    rec.down_chunk = None;
    rec.down_after = None;
    rec.down_newest_created = None;
    rec.down_newest_id = None;
}

/// Why a walk by id stopped early: the cursor event is gone (list by time
/// instead), or the step failed.
enum Walk {
    CursorGone,
    Step(StepError),
}

/// An event as the webhook would queue it; `None` (logged) when it lacks an
/// id or type, or does not fit one SQS message.
fn event_message(raw: &str) -> Option<QueueMessage> {
    let head: EventHead = match serde_json::from_str(raw) {
        Ok(h) => h,
        Err(_) => {
            tracing::warn!("events list returned an object that is not an event; skipped");
            return None;
        }
    };
    let (Some(id), Some(event_type)) = (head.id, head.event_type) else {
        tracing::warn!("event without id or type; skipped");
        return None;
    };
    let m = QueueMessage {
        body: raw.to_owned(),
        event_id: id,
        event_type,
        livemode: head.livemode,
        source: Source::Poller,
    };
    if m.sqs_size() > crate::ports::MAX_MESSAGE_BYTES {
        tracing::warn!(event_id = %m.event_id, bytes = m.sqs_size(), "event does not fit one queue message; skipped");
        return None;
    }
    Some(m)
}
