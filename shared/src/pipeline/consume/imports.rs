//! Imports followed to their end. Brevo's `POST /v3/contacts/import` checks
//! a request's shape at once (202 `{"processId"}`) and applies each row
//! later; a row it cannot take (an SMS that belongs to another contact, …)
//! is skipped, and only the import's process knows. So an import is never
//! taken as applied from its 202:
//!
//! - **Looking** ([`Consumer::look`]): the contacts of the import's list
//!   modified since it started are read (`GET
//!   /v3/contacts/lists/{id}/contacts?modifiedSince`, the `/v3/contacts`
//!   family: 10 per second); a row found there was applied. When every row
//!   is, the import is over without asking its process. Otherwise the
//!   process is asked (`GET /v3/processes/{id}`: 100 requests per **hour**
//!   on Brevo's General plan, so only when the client has a token free now
//!   — never waited for within a function's deadline): `completed` → the
//!   rows still missing were not applied; not completed, or not askable now
//!   → look again later.
//! - **With a queue** (the Lambda, `sync`): each import puts an
//!   [`ImportCheck`] on the queue, delayed by
//!   `connectors.brevo.import_check_delay` (60 s), and the import's messages
//!   are done. When the check comes back ([`Consumer::check_imports`]) it
//!   looks; an unfinished import is checked again, each time twice as late
//!   (at most 900 s, SQS's longest delay), up to
//!   [`ConsumeOptions::import_checks`](super::ConsumeOptions::import_checks)
//!   looks, after which every row still missing counts as not applied.
//!   The rows not applied are resolved in the same batch: their customers
//!   are reloaded and upserted one by one in real time, with the upsert's
//!   SMS fallback (an SMS refused as another contact's is dropped).
//! - **Without a queue** (the demo, the CLI's dry run, tests), or when the
//!   check cannot be queued: the same looks are made in place
//!   ([`Consumer::follow_in_place`]), sleeping between them while the
//!   deadline allows, and the rows not applied are upserted at once.
//!
//! When an import ends, each row's ledger mark (see [`super::ledger`]) is
//! finished: with the row's fingerprint when it was applied, unknown when
//! not. One `import ended` line is logged per import (process id, rows,
//! applied, resolved, looks).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::Instrument;

use super::contacts::{Pushed, Written};
use super::item::{Batch, Work};
use super::ledger::Pending;
use super::plan::Parsed;
use super::{Consumer, Outcome, Retry, RetryCause};
use crate::domain::brevo::{ContactUpdate, ProcessStatus};
use crate::ports::{BrevoApi, QueueMessage, RemoteError, RemoteErrorKind, Source};
use crate::settings::MAX_QUEUE_DELAY_SECS;

/// `object` of an [`ImportCheck`] message.
pub const IMPORT_CHECK_OBJECT: &str = "stripe_brevo.import_check";
/// Contacts modified since this long before an import started count as
/// written by it (Brevo's clock and ours may differ a little).
pub const MODIFIED_MARGIN_SECS: i64 = 5;
/// An import's rows are spread over check messages of at most this size.
const CHECK_MAX_BYTES: usize = 200_000;

/// "Look at this import again": a queue message of its own kind, next to
/// Stripe events and [`Snapshot`](super::Snapshot)s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCheck {
    /// Always [`IMPORT_CHECK_OBJECT`].
    pub object: String,
    /// `import:<process id>/<part>`; with `checks`, its idempotency key.
    pub key: String,
    #[serde(default)]
    pub process_id: Option<i64>,
    /// A list the import added its rows to (each applied row is in it).
    pub list_id: i64,
    /// When the import was sent (unix seconds).
    pub started_at: i64,
    pub rows: Vec<ImportRow>,
    /// Looks made so far.
    #[serde(default)]
    pub checks: u32,
}

/// One row of an import: whose contact, and its ledger mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRow {
    pub customer: String,
    /// Lower-cased, as sent.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<RowMark>,
}

/// The ledger's pending mark of an imported row (finished when the import ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowMark {
    pub key: String,
    pub token: String,
    pub fingerprint: String,
}

impl ImportCheck {
    /// The idempotency key of this look.
    fn dedup_key(&self) -> String {
        format!("import_check:{}#{}", self.key, self.checks)
    }

    fn message(&self) -> QueueMessage {
        QueueMessage {
            body: serde_json::to_string(self).unwrap_or_default(),
            event_id: format!("{}#{}", self.key, self.checks),
            event_type: IMPORT_CHECK_OBJECT.to_owned(),
            livemode: None,
            source: Source::Backfill,
        }
    }
}

/// An import Brevo accepted in this batch, with its rows.
#[derive(Debug, Clone)]
pub(super) struct StartedImport {
    pub process_id: Option<i64>,
    pub list_id: i64,
    pub started_at: i64,
    /// (customer, contact) in the import's order.
    pub rows: Vec<(String, ContactUpdate)>,
}

/// What one look found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Look {
    /// E-mails of the rows not (yet) found written.
    pub missing: BTreeSet<String>,
    /// The import is over: every row found, its process completed or
    /// unknown to Brevo, or no process to ask.
    pub ended: bool,
}

/// The wait before look number `checks_made + 1`: `first` for the first,
/// then doubling from `first` (at least 1 s), at most 900 s.
pub(super) fn check_delay(first: Duration, checks_made: u32) -> Duration {
    let max = Duration::from_secs(u64::from(MAX_QUEUE_DELAY_SECS));
    if checks_made == 0 {
        return first.min(max);
    }
    first.max(Duration::from_secs(1)).saturating_mul(1 << checks_made.min(20)).min(max)
}

/// A wait as SQS `DelaySeconds` (whole seconds, rounded up, at most 900).
fn delay_secs(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX).min(MAX_QUEUE_DELAY_SECS)
}

/// An [`ImportCheck`] message as work: no customers until its import ends.
pub(super) fn parse_import_check(body: &str) -> Option<Parsed> {
    let check = serde_json::from_str::<ImportCheck>(body).ok()?;
    if check.object != IMPORT_CHECK_OBJECT || check.key.is_empty() {
        return None;
    }
    let dedup_key = Some(check.dedup_key());
    Some(Parsed::Work(Work { dedup_key, import_check: Some(Box::new(check)), ..Work::default() }))
}

/// The check messages of an import's rows (several when they would not fit one).
fn checks_of(import: &StartedImport, rows: Vec<ImportRow>) -> Vec<ImportCheck> {
    let base = match import.process_id {
        Some(id) => format!("import:{id}"),
        None => format!("import:{}:{}", import.started_at, rows.first().map_or("", |r| r.customer.as_str())),
    };
    let mut parts: Vec<Vec<ImportRow>> = vec![Vec::new()];
    let mut bytes = 0;
    for row in rows {
        let size = serde_json::to_string(&row).map_or(0, |s| s.len() + 1);
        if bytes + size > CHECK_MAX_BYTES && parts.last().is_some_and(|p| !p.is_empty()) {
            parts.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(part) = parts.last_mut() {
            part.push(row);
        }
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(n, rows)| ImportCheck {
            object: IMPORT_CHECK_OBJECT.to_owned(),
            key: format!("{base}/{n}"),
            process_id: import.process_id,
            list_id: import.list_id,
            started_at: import.started_at,
            rows,
            checks: 0,
        })
        .collect()
}

impl<S, B: BrevoApi, I, C> Consumer<S, B, I, C> {
    /// One look at an import (see the module doc): which of `emails` are not
    /// found written, and whether the import is over. A failed listing is an
    /// error; a process that cannot be asked now only means "not over yet".
    pub(super) async fn look(
        &self,
        process_id: Option<i64>,
        list_id: i64,
        started_at: i64,
        emails: &BTreeSet<String>,
    ) -> Result<Look, RemoteError> {
        let since = started_at - MODIFIED_MARGIN_SECS;
        let found = self.brevo.modified_since(list_id, since).await?;
        let missing: BTreeSet<String> = emails.difference(&found).cloned().collect();
        let Some(id) = process_id.filter(|_| !missing.is_empty()) else {
            return Ok(Look { missing, ended: true });
        };
        match self.brevo.import_status(id).await {
            Ok(Some(ProcessStatus::Completed)) => {
                // Rows applied since the first listing are written too.
                let found = self.brevo.modified_since(list_id, since).await?;
                Ok(Look { missing: missing.difference(&found).cloned().collect(), ended: true })
            }
            Err(e) if e.kind == RemoteErrorKind::NotFound => {
                tracing::warn!(
                    process_id = id,
                    "Brevo does not know the import's process: its missing rows are resolved"
                );
                Ok(Look { missing, ended: true })
            }
            Ok(Some(_)) | Ok(None) => Ok(Look { missing, ended: false }),
            Err(e) => {
                tracing::warn!(process_id = id, cause = %e, "could not ask Brevo about the import: looked at again later");
                Ok(Look { missing, ended: false })
            }
        }
    }

    /// After this batch's imports were accepted: each one's rows still
    /// pending (`Ok(Imported)` in `pushed`) are followed by check messages on
    /// the queue, or else in place (their results in `pushed` then say what
    /// Brevo has).
    pub(super) async fn follow_imports(
        &self,
        imports: Vec<StartedImport>,
        pushed: &mut Pushed,
        marks: &BTreeMap<String, Pending>,
        batch: &mut Batch<'_>,
    ) {
        for import in imports {
            let open: BTreeSet<&str> =
                pushed.iter().filter(|(_, r)| *r == Ok(Written::Imported)).map(|(c, _)| c.as_str()).collect();
            let rows: Vec<(String, ContactUpdate)> =
                import.rows.iter().filter(|(cid, _)| open.contains(cid.as_str())).cloned().collect();
            if rows.is_empty() {
                continue;
            }
            let mut in_place = rows.clone();
            if let Some(queue) = &self.requeue {
                let delay = delay_secs(check_delay(self.settings.brevo.import_check_delay, 0));
                let marked: Vec<ImportRow> = rows
                    .iter()
                    .map(|(cid, c)| ImportRow {
                        customer: cid.clone(),
                        email: c.email.clone(),
                        ledger: marks.get(cid).map(|p| RowMark {
                            key: p.key.clone(),
                            token: p.token.clone(),
                            fingerprint: p.fingerprint.clone(),
                        }),
                    })
                    .collect();
                in_place.clear();
                for check in checks_of(&import, marked) {
                    match queue.send_delayed(&check.message(), delay).await {
                        Ok(()) => {
                            batch.stats.requeued += 1;
                            tracing::info!(process_id = ?import.process_id, rows = check.rows.len(), delay_secs = delay, "import accepted: its outcome is checked later");
                        }
                        Err(e) => {
                            tracing::warn!(process_id = ?import.process_id, cause = %e, "could not queue the import's check: followed in place");
                            let customers: BTreeSet<&str> = check.rows.iter().map(|r| r.customer.as_str()).collect();
                            in_place.extend(rows.iter().filter(|(c, _)| customers.contains(c.as_str())).cloned());
                        }
                    }
                }
            }
            if in_place.is_empty() {
                continue;
            }
            let results = self.follow_in_place(&import, &in_place, batch.reload_until).await;
            let by_customer: BTreeMap<String, Result<Written, RemoteError>> = results.into_iter().collect();
            for (cid, res) in pushed.iter_mut() {
                if let Some(r) = by_customer.get(cid) {
                    *res = r.clone();
                }
            }
        }
    }

    /// Follows an import here and now: looks (sleeping the check delays
    /// between them while `until` allows) until it ends or the looks run
    /// out, then upserts its rows not applied. Every row's result says what
    /// Brevo has: `Now` (applied, or upserted), or the failure.
    pub(super) async fn follow_in_place(
        &self,
        import: &StartedImport,
        rows: &[(String, ContactUpdate)],
        until: Option<Instant>,
    ) -> Pushed {
        let emails: BTreeSet<String> = rows.iter().map(|(_, c)| c.email.clone()).collect();
        let first = self.settings.brevo.import_check_delay;
        let max = self.options.import_checks.max(1);
        let mut checks = 0;
        let look = loop {
            let mut wait = check_delay(first, checks);
            let mut last = checks + 1 >= max;
            if until.is_some_and(|u| Instant::now() + wait >= u) {
                (wait, last) = (Duration::ZERO, true);
            }
            tokio::time::sleep(wait).await;
            checks += 1;
            match self.look(import.process_id, import.list_id, import.started_at, &emails).await {
                Err(e) => return rows.iter().map(|(cid, _)| (cid.clone(), Err(e.clone()))).collect(),
                Ok(l) if l.ended || last => break l,
                Ok(_) => {}
            }
        };
        let not_applied: Vec<(&String, &ContactUpdate)> =
            rows.iter().filter(|(_, c)| look.missing.contains(&c.email)).map(|(cid, c)| (cid, c)).collect();
        log_end(import.process_id, rows.len(), not_applied.len(), checks, look.ended);
        let mut out: Pushed = rows
            .iter()
            .filter(|(_, c)| !look.missing.contains(&c.email))
            .map(|(cid, _)| (cid.clone(), Ok(Written::Now)))
            .collect();
        out.extend(self.upsert_each(not_applied.into_iter()).await);
        out
    }

    /// The step for [`ImportCheck`] messages (right after the claims): look;
    /// an unfinished import is checked again later; an ended one's ledger
    /// marks are finished and its rows not applied become the message's
    /// customers, reloaded and upserted in real time by the next steps.
    pub(super) async fn check_imports(&self, batch: &mut Batch<'_>) {
        let first = self.settings.brevo.import_check_delay;
        let max = self.options.import_checks.max(1);
        for item in &mut batch.items {
            let Some(check) = item.active().and_then(|w| w.import_check.clone()) else { continue };
            let span = item.span.clone();
            let emails: BTreeSet<String> = check.rows.iter().map(|r| r.email.clone()).collect();
            let looked =
                self.look(check.process_id, check.list_id, check.started_at, &emails).instrument(span.clone()).await;
            let look = match looked {
                Err(e) => {
                    span.in_scope(|| tracing::warn!(cause = %e, "could not read the import's contacts from Brevo"));
                    item.part_failed = Some(e);
                    continue;
                }
                Ok(l) => l,
            };
            let checks = check.checks + 1;
            if !look.ended && checks < max {
                let next = ImportCheck { checks, ..*check };
                let delay = delay_secs(check_delay(first, checks));
                let outcome = match &self.requeue {
                    Some(q) => match q.send_delayed(&next.message(), delay).instrument(span.clone()).await {
                        Ok(()) => {
                            batch.stats.requeued += 1;
                            span.in_scope(|| tracing::info!(process_id = ?next.process_id, missing = look.missing.len(), checks, delay_secs = delay, "import not finished: checked again later"));
                            Outcome::Done
                        }
                        Err(e) => {
                            Outcome::Retry(Retry::new(RetryCause::Requeue, format!("import check not queued: {e}")))
                        }
                    },
                    None => Outcome::Retry(Retry::new(
                        RetryCause::Requeue,
                        "import not finished, no queue to check it later",
                    )),
                };
                item.finish(outcome);
                continue;
            }
            let marks: Vec<(Pending, bool)> = check
                .rows
                .iter()
                .filter_map(|r| {
                    let m = r.ledger.as_ref()?;
                    let p = Pending { key: m.key.clone(), token: m.token.clone(), fingerprint: m.fingerprint.clone() };
                    Some((p, !look.missing.contains(&r.email)))
                })
                .collect();
            self.settle_ledger(marks, batch.now).await;
            let not_applied: Vec<String> =
                check.rows.iter().filter(|r| look.missing.contains(&r.email)).map(|r| r.customer.clone()).collect();
            batch.stats.contacts_synced += check.rows.len() - not_applied.len();
            span.in_scope(|| log_end(check.process_id, check.rows.len(), not_applied.len(), checks, look.ended));
            if let Some(w) = item.work.as_mut() {
                w.customers = not_applied;
                w.realtime = true;
            }
        }
    }
}

/// The `import ended` line.
fn log_end(process_id: Option<i64>, rows: usize, resolved: usize, checks: u32, ended: bool) {
    tracing::info!(
        process_id = ?process_id,
        rows,
        applied = rows - resolved,
        resolved,
        checks,
        gave_up = !ended,
        "import ended: rows not applied are upserted one by one"
    );
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn checks_back_off_from_the_first_delay_up_to_sqs_longest() {
        let s = Duration::from_secs;
        let delays: Vec<u32> = (0..6).map(|n| delay_secs(check_delay(s(60), n))).collect();
        assert_eq!(delays, [60, 120, 240, 480, 900, 900]);
        assert_eq!((check_delay(s(0), 0), check_delay(s(0), 1), check_delay(s(0), 3)), (s(0), s(2), s(8)));
        let quarter = Duration::from_millis(250);
        assert_eq!((check_delay(quarter, 0), delay_secs(quarter)), (quarter, 1), "SQS delays are whole seconds");
        assert_eq!(delay_secs(check_delay(s(5_000), 0)), 900);
    }

    #[test]
    fn an_import_check_round_trips_and_big_imports_take_several_messages() {
        let import = StartedImport { process_id: Some(7), list_id: 20, started_at: 1_000, rows: Vec::new() };
        let row = |i: usize| ImportRow {
            customer: format!("cus_{i}"),
            email: format!("user{i}@example.com"),
            ledger: Some(RowMark { key: format!("contact#{i}"), token: "t".into(), fingerprint: "f".repeat(32) }),
        };
        let one = checks_of(&import, (0..3).map(row).collect());
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].key.as_str(), one[0].dedup_key()), ("import:7/0", "import_check:import:7/0#0".to_owned()));
        let Some(Parsed::Work(w)) = parse_import_check(&one[0].message().body) else { panic!("not parsed") };
        assert_eq!(w.import_check.as_deref(), Some(&one[0]));
        assert!(w.customers.is_empty(), "no customer is reloaded before the import ends");
        let many = checks_of(&import, (0..3_000).map(row).collect());
        assert!(many.len() > 1 && many.iter().all(|c| c.message().sqs_size() <= CHECK_MAX_BYTES + 1_000));
        assert_eq!(many.iter().map(|c| c.rows.len()).sum::<usize>(), 3_000);
        assert!(parse_import_check(
            r#"{"object":"stripe_brevo.snapshot","key":"k","list_id":1,"started_at":1,"rows":[]}"#
        )
        .is_none());
    }
}
