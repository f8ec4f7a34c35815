//! Imports followed to their end, on the in-memory fakes: an import's 202 is
//! never taken as success. GIVEN customers whose contacts go out by import
//! (threshold 2) / WHEN the batch, then the checks the queue gives back /
//! THEN what Brevo holds, what was re-checked and when, and what was
//! upserted instead.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;
use crate::adapters::memory::{MemoryLedger, MemoryQueue};
use crate::pipeline::consume::ledger::ledger_key;
use crate::ports::{ContactLedger, EventQueue};

const CUSTOMERS: [&str; 3] = ["cus_a", "cus_b", "cus_c"];

fn email(cid: &str) -> String {
    format!("{cid}@example.com")
}

/// Three subscribers, imports from 2 contacts on, the first look 60 s after
/// an import, and a queue (unless `configure` takes it away).
fn importing(configure: impl FnOnce(&mut Settings)) -> (World, Arc<MemoryQueue>) {
    let mut w = World::with(|s| {
        s.brevo.import_threshold = 2;
        s.brevo.import_check_delay = Duration::from_secs(60);
        configure(s);
    });
    for cid in CUSTOMERS {
        w.given_a_subscriber(cid, &email(cid), 1_200);
    }
    let queue = Arc::new(MemoryQueue::new());
    w.consumer.requeue = Some(queue.clone() as Arc<dyn EventQueue>);
    (w, queue)
}

fn snapshot(key: &str) -> String {
    json!({"object": SNAPSHOT_OBJECT, "key": key, "customers": CUSTOMERS}).to_string()
}

/// The import checks on the queue (taken off it) with their delays.
fn take_checks(queue: &MemoryQueue) -> Vec<(ImportCheck, u32)> {
    let delays = queue.delays();
    queue
        .take()
        .into_iter()
        .zip(delays)
        .filter(|(m, _)| m.event_type == IMPORT_CHECK_OBJECT)
        .map(|(m, d)| (serde_json::from_str(&m.body).unwrap(), d))
        .collect()
}

fn bodies(checks: &[(ImportCheck, u32)]) -> Vec<String> {
    checks.iter().map(|(c, _)| serde_json::to_string(c).unwrap()).collect()
}

fn in_brevo(w: &World) -> Vec<String> {
    w.brevo.record().contacts.keys().cloned().collect()
}

#[tokio::test]
async fn an_import_is_followed_by_a_delayed_check_and_counts_only_once_seen_applied() {
    // GIVEN three contacts that go out by import
    let (w, queue) = importing(|_| {});
    // WHEN their snapshot is consumed
    let r = w.consume(vec![snapshot("backfill:customers:r1:p1")]).await;
    // THEN the message is done, nothing is in Brevo yet (the import runs
    // later), nothing counts as synced, and a check waits 60 s on the queue
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert_eq!(w.brevo.record().imports, 1);
    assert!(in_brevo(&w).is_empty());
    assert_eq!((r.stats.contacts_synced, r.stats.requeued), (0, 1));
    let checks = take_checks(&queue);
    assert_eq!(checks.len(), 1);
    let (check, delay) = &checks[0];
    assert_eq!(*delay, 60);
    assert_eq!((check.process_id, check.list_id, check.started_at, check.checks), (Some(1), 20, NOW, 0));
    let rows: Vec<(&str, &str)> = check.rows.iter().map(|r| (r.customer.as_str(), r.email.as_str())).collect();
    assert_eq!(rows, [("cus_a", "cus_a@example.com"), ("cus_b", "cus_b@example.com"), ("cus_c", "cus_c@example.com")]);
    // WHEN the check comes back
    let r = w.consume(bodies(&checks)).await;
    // THEN Brevo applied every row: counted now, nothing upserted, nothing re-queued
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert_eq!(in_brevo(&w), ["cus_a@example.com", "cus_b@example.com", "cus_c@example.com"]);
    assert_eq!((r.stats.contacts_synced, r.stats.requeued, w.brevo.record().upserts), (3, 0, 0));
    assert!(queue.messages().is_empty());
    // AND the same check delivered again is a duplicate
    let again = w.consume(bodies(&checks)).await;
    assert_eq!(outcomes(&again), [&Outcome::Duplicate]);
}

#[tokio::test]
async fn an_import_found_applied_costs_no_process_request() {
    // GIVEN Brevo finishing imports by itself before anyone looks
    let (w, queue) = importing(|_| {});
    w.brevo.complete_imports_at_check(0);
    w.consume(vec![snapshot("backfill:customers:r1:p1")]).await;
    // WHEN the check comes back
    let r = w.consume(bodies(&take_checks(&queue))).await;
    // THEN one listing showed every row: the hourly process endpoint is not asked
    let rec = w.brevo.record();
    assert_eq!((rec.listings, rec.status_checks), (1, 0));
    assert_eq!(r.stats.contacts_synced, 3);
}

#[tokio::test]
async fn an_unfinished_import_is_checked_again_later_each_time_later() {
    // GIVEN Brevo completing the import at its third status check, and no
    // budget for the process endpoint at the first look
    let (w, queue) = importing(|_| {});
    w.brevo.complete_imports_at_check(2);
    w.brevo.no_status_budget(1);
    w.consume(vec![snapshot("backfill:customers:r1:p1")]).await;
    let mut delays = Vec::new();
    let mut checks = take_checks(&queue);
    let mut looks = 0;
    // WHEN every check is consumed as it comes back
    while !checks.is_empty() {
        delays.extend(checks.iter().map(|(_, d)| *d));
        let r = w.consume(bodies(&checks)).await;
        assert_eq!(outcomes(&r), [&Outcome::Done]);
        looks += 1;
        if looks < 3 {
            assert!(in_brevo(&w).is_empty(), "not applied before the process completes");
        }
        checks = take_checks(&queue);
    }
    // THEN it was looked at three times (no budget: later; queued: later;
    // completed), each check later than the one before; then everything is in
    assert_eq!(looks, 3);
    assert_eq!(delays, [60, 120, 240]);
    assert_eq!(in_brevo(&w).len(), 3);
    let rec = w.brevo.record();
    assert_eq!((rec.status_checks, rec.upserts), (2, 0), "a check without budget made no request");
}

#[tokio::test]
async fn a_row_the_import_did_not_apply_is_reloaded_and_upserted_in_real_time() {
    // GIVEN Brevo skipping one row of the import (as it skips an SMS of another contact)
    let (w, queue) = importing(|_| {});
    w.brevo.skip_import_rows(&["cus_b@example.com"]);
    w.consume(vec![snapshot("backfill:customers:r1:p1")]).await;
    let reloads = w.stripe.reloads();
    // WHEN the check comes back
    let r = w.consume(bodies(&take_checks(&queue))).await;
    // THEN the import ended with that row missing: its customer was reloaded
    // and upserted one by one (never imported again), the others counted
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    let rec = w.brevo.record();
    assert_eq!((rec.imports, rec.upserts, rec.status_checks), (1, 1, 1));
    assert_eq!(w.stripe.reloads(), reloads + 1);
    assert_eq!(in_brevo(&w).len(), 3);
    assert!(rec.lists[&20].contains("cus_b@example.com"));
    assert_eq!(r.stats.contacts_synced, 3);
    assert!(queue.messages().is_empty(), "resolved in the same batch");
}

#[tokio::test]
async fn an_import_that_never_finishes_is_given_up_after_the_last_look_and_its_rows_upserted() {
    // GIVEN an import Brevo never completes, and two looks allowed
    let (mut w, queue) = importing(|_| {});
    w.consumer.options.import_checks = 2;
    w.brevo.complete_imports_at_check(1_000);
    w.consume(vec![snapshot("backfill:customers:r1:p1")]).await;
    // WHEN both checks have come back
    let first = w.consume(bodies(&take_checks(&queue))).await;
    let second = take_checks(&queue);
    assert_eq!((second.len(), second[0].0.checks), (1, 1));
    let r = w.consume(bodies(&second)).await;
    // THEN every row counts as not applied: each customer upserted in real time
    assert!(outcomes(&first).iter().chain(outcomes(&r).iter()).all(|o| **o == Outcome::Done));
    assert_eq!(w.brevo.record().upserts, 3);
    assert_eq!(in_brevo(&w).len(), 3);
    assert!(take_checks(&queue).is_empty());
}

#[tokio::test]
async fn a_failed_listing_returns_the_check_for_a_retry() {
    let (w, queue) = importing(|_| {});
    w.consume(vec![snapshot("backfill:customers:r1:p1")]).await;
    let checks = take_checks(&queue);
    w.brevo.fail_next(BrevoOp::Listing, 1, down(Vendor::Brevo));
    let r = w.consume(bodies(&checks)).await;
    assert!(outcomes(&r)[0].is_retry(), "{:?}", r.outcomes);
    let r = w.consume(bodies(&checks)).await;
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert_eq!(in_brevo(&w).len(), 3);
}

#[tokio::test]
async fn imported_rows_stay_pending_in_the_ledger_until_their_import_ends() {
    // GIVEN a contact ledger, and Brevo skipping one row
    let (mut w, queue) = importing(|_| {});
    let ledger = Arc::new(MemoryLedger::new());
    w.consumer.ledger = Some(ledger.clone() as Arc<dyn ContactLedger>);
    w.brevo.skip_import_rows(&["cus_b@example.com"]);
    let keys: Vec<String> = CUSTOMERS.iter().map(|c| ledger_key(&email(c))).collect();
    // WHEN the import is accepted
    w.consume(vec![snapshot("backfill:customers:r1:p1")]).await;
    // THEN every row is pending, and its check carries the marks
    let entries = ledger.entries(&keys).await.unwrap();
    assert!(keys.iter().all(|k| entries[k].pending), "{entries:?}");
    let checks = take_checks(&queue);
    assert!(checks[0].0.rows.iter().all(|r| r.ledger.as_ref().is_some_and(|m| keys.contains(&m.key))));
    // WHEN the check ends the import
    w.consume(bodies(&checks)).await;
    // THEN the applied rows' states are recorded, and the skipped one's is the
    // state its real-time upsert wrote
    let entries = ledger.entries(&keys).await.unwrap();
    for (cid, key) in CUSTOMERS.iter().zip(&keys) {
        let e = &entries[key];
        assert!(!e.pending && e.fingerprint.is_some(), "{cid}: {e:?}");
    }
    let rec = w.brevo.record();
    assert_eq!(rec.upserts, 1);
    let a = checks[0].0.rows[0].ledger.clone().unwrap();
    assert_eq!(entries[&keys[0]].fingerprint.as_deref(), Some(a.fingerprint.as_str()));
    // AND the same states computed again are not sent again
    let r = w.consume(vec![snapshot("backfill:customers:r2:p1")]).await;
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert_eq!((w.brevo.record().imports, w.brevo.record().upserts), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn without_a_queue_an_import_is_followed_in_place_and_a_skipped_row_upserted_at_once() {
    // GIVEN no queue, Brevo completing the import at its second status
    // check and skipping one row
    let (mut w, _queue) = importing(|_| {});
    w.consumer.requeue = None;
    w.brevo.complete_imports_at_check(2);
    w.brevo.skip_import_rows(&["cus_c@example.com"]);
    // WHEN the snapshot is consumed
    let started = tokio::time::Instant::now();
    let r = w.consume(vec![snapshot("backfill:customers:r1:p1")]).await;
    // THEN the batch waited for the import (60 s, then 120 s), saw it
    // complete, and upserted the row it skipped: all three synced
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert!(started.elapsed() >= Duration::from_secs(180));
    let rec = w.brevo.record();
    assert_eq!((rec.imports, rec.upserts, rec.status_checks), (1, 1, 2));
    assert_eq!(in_brevo(&w).len(), 3);
    assert_eq!(r.stats.contacts_synced, 3);
}

#[tokio::test(start_paused = true)]
async fn in_place_the_deadline_cuts_the_wait_and_the_rows_still_missing_are_upserted() {
    // GIVEN no queue, an import Brevo does not finish, and a deadline 30 s
    // away (shorter than the 60 s before a first look)
    let (mut w, _queue) = importing(|_| {});
    w.consumer.requeue = None;
    w.brevo.complete_imports_at_check(1_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // WHEN the snapshot is consumed within it
    let r = w.consumer.consume_until(&batch(vec![snapshot("backfill:customers:r1:p1")]), Some(deadline)).await;
    // THEN the import was looked at once, at once, and its rows upserted
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert!(tokio::time::Instant::now() < deadline);
    let rec = w.brevo.record();
    assert_eq!((rec.status_checks, rec.upserts), (1, 3));
    assert_eq!(r.stats.contacts_synced, 3);
}
