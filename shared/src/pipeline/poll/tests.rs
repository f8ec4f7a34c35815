//! GIVEN a fake Stripe (objects in memory, listed like Stripe: newest
//! first, `created` filters, `starting_after`/`ending_before`, `types[]`),
//! the in-memory queue and cursor store, WHEN the poller runs, THEN …
#![allow(clippy::unwrap_used)]
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::*;
use crate::adapters::memory::{FixedClock, MemoryCursors, MemoryQueue};
use crate::pipeline::consume::Snapshot;
use crate::ports::{QueueMessage, RemoteErrorKind, Source, Vendor};
use crate::settings::SyncSettings;

const NOW: i64 = 1_767_225_600; // 2026-01-01

#[derive(Default)]
struct FakeStripe {
    lists: Mutex<BTreeMap<String, Vec<Value>>>,
    requests: AtomicU64,
    fail_next: AtomicU64,
    log: Mutex<Vec<String>>,
}

impl FakeStripe {
    fn insert(&self, path: &str, v: Value) {
        self.lists.lock().unwrap().entry(path.to_owned()).or_default().push(v);
    }
    fn sorted(&self, path: &str) -> Vec<Value> {
        let mut items = self.lists.lock().unwrap().get(path).cloned().unwrap_or_default();
        let key = |v: &Value| (v["created"].as_i64().unwrap_or(0), v["id"].as_str().unwrap_or("").to_owned());
        items.sort_by_key(|v| std::cmp::Reverse(key(v)));
        items
    }
    fn requests_to(&self, path: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|p| p.as_str() == path).count()
    }
}

#[async_trait]
impl StripeFeed for FakeStripe {
    fn is_live(&self) -> bool {
        false
    }
    async fn page(&self, path: &str, params: &[(&str, String)], position: Position<'_>) -> Result<FeedPage, FeedError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.log.lock().unwrap().push(path.to_owned());
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Err(FeedError::Remote(RemoteError::new(
                Vendor::Stripe,
                RemoteErrorKind::Unavailable,
                "Stripe server error (HTTP 500)",
            )));
        }
        let gte: Option<i64> = params.iter().find(|(k, _)| *k == "created[gte]").and_then(|(_, v)| v.parse().ok());
        let types: Vec<&str> = params.iter().filter(|(k, _)| *k == "types[]").map(|(_, v)| v.as_str()).collect();
        assert!(types.len() <= MAX_TYPES_PER_REQUEST, "at most 20 types per request");
        let all = self.sorted(path);
        let matches = |v: &Value| {
            gte.is_none_or(|g| v["created"].as_i64().unwrap_or(0) >= g)
                && (types.is_empty() || types.contains(&v["type"].as_str().unwrap_or("")))
        };
        let pos_of = |id: &str| all.iter().position(|v| v["id"] == id);
        let (items, has_more): (Vec<Value>, bool) = match position {
            Position::Start | Position::After(_) => {
                let start = match position {
                    Position::After(id) => pos_of(id).ok_or(FeedError::CursorGone)? + 1,
                    _ => 0,
                };
                let rest: Vec<Value> = all[start..].iter().filter(|v| matches(v)).cloned().collect();
                (rest.iter().take(100).cloned().collect(), rest.len() > 100)
            }
            Position::Before(id) => {
                let end = pos_of(id).ok_or(FeedError::CursorGone)?;
                let newer: Vec<Value> = all[..end].iter().filter(|v| matches(v)).cloned().collect();
                let n = newer.len();
                (newer[n.saturating_sub(100)..].to_vec(), n > 100)
            }
        };
        let items = items.iter().map(|v| RawValue::from_string(v.to_string()).unwrap()).collect();
        Ok(FeedPage { items, has_more })
    }
    fn usage(&self) -> FeedUsage {
        FeedUsage { requests: self.requests.load(Ordering::SeqCst), retries: 0 }
    }
}

type TestPoller = Poller<Arc<FakeStripe>, Arc<MemoryQueue>, Arc<MemoryCursors>, Arc<FixedClock>>;

fn only(sync: &[&str]) -> Settings {
    let mut s = Settings::default();
    s.stripe.sync = SyncSettings {
        customers: sync.contains(&"customers"),
        payments: sync.contains(&"payments"),
        subscriptions: sync.contains(&"subscriptions"),
        invoices: sync.contains(&"invoices"),
        products: sync.contains(&"products"),
    };
    s
}

fn poller(settings: Settings, options: PollOptions) -> TestPoller {
    Poller {
        stripe: Arc::new(FakeStripe::default()),
        queue: Arc::new(MemoryQueue::new()),
        cursors: Arc::new(MemoryCursors::new()),
        clock: Arc::new(FixedClock::at(NOW)),
        settings: Arc::new(settings),
        options,
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

fn seed_customers(p: &TestPoller, n: usize) {
    for i in 0..n {
        p.stripe.insert(
            "/v1/customers",
            json!({"id": format!("cus_{i:05}"), "object": "customer", "created": NOW - 100_000 + i as i64}),
        );
    }
}

fn snapshots(q: &MemoryQueue) -> Vec<Snapshot> {
    q.messages()
        .iter()
        .filter(|m| m.source == Source::Backfill)
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect()
}

fn event(id: &str, t: &str, created: i64, customer: &str) -> Value {
    json!({"id": id, "object": "event", "type": t, "created": created, "livemode": false,
           "data": {"object": {"id": "x", "object": "customer", "customer": customer}}})
}

#[tokio::test]
async fn backfill_sends_one_snapshot_per_page_in_batches_and_switches_to_incremental() {
    let p = poller(only(&["customers"]), PollOptions::default());
    seed_customers(&p, 1_050);
    let report = p.run(&PollRequest::default(), "a", far()).await.unwrap();
    let snaps = snapshots(&p.queue);
    assert_eq!(snaps.len(), 11, "ceil(1050/100) pages, one snapshot each");
    let ids: BTreeSet<String> = snaps.iter().flat_map(|s| s.customers.clone()).collect();
    assert_eq!(ids.len(), 1_050);
    assert_eq!(snaps.iter().map(|s| s.customers.len()).sum::<usize>(), 1_050, "no customer named twice");
    let keys: BTreeSet<&str> = snaps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys.len(), 11);
    assert!(snaps[0].key.starts_with("backfill:customers:") && snaps[0].key.ends_with(":start"), "{}", snaps[0].key);
    assert_eq!(p.stripe.requests_to("/v1/customers"), 11, "exactly the minimum number of list requests");
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!(rec.mode, SyncMode::Incremental);
    assert_eq!(rec.synced, 1_050);
    assert_eq!(rec.messages_enqueued, 11);
    assert_eq!(rec.events_created, Some(NOW), "events are followed from the backfill's start");
    assert_eq!(rec.last_success, Some(NOW));
    assert!(report.resources[0].backfill_finished && report.caught_up());
}

#[tokio::test]
async fn an_interrupted_backfill_resumes_without_gaps_or_duplicates() {
    let opts = PollOptions { max_pages_per_run: Some(3), pages_per_flush: 2, ..PollOptions::default() };
    let p = poller(only(&["customers"]), opts);
    seed_customers(&p, 1_234);
    let mut runs = 0;
    loop {
        runs += 1;
        let r = p.run(&PollRequest::default(), &format!("run{runs}"), far()).await.unwrap();
        if r.caught_up() {
            break;
        }
        assert!(r.stopped_early);
        assert!(runs < 20);
    }
    assert_eq!(runs, 5, "13 pages at 3 per run");
    let snaps = snapshots(&p.queue);
    let keys: BTreeSet<&str> = snaps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys.len(), snaps.len(), "no page enqueued twice");
    let ids: Vec<String> = snaps.iter().flat_map(|s| s.customers.clone()).collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 1_234, "no gap");
    assert_eq!(ids.len(), 1_234, "no duplicate");
}

#[tokio::test]
async fn snapshots_name_customers_through_expanded_charges_and_skip_catalog_objects() {
    let p = poller(only(&["payments", "products"]), PollOptions::default());
    p.stripe.insert("/v1/refunds", json!({"id": "re_1", "object": "refund", "created": 10, "charge": {"id": "ch_1", "object": "charge", "customer": "cus_R"}}));
    p.stripe.insert("/v1/balance_transactions", json!({"id": "txn_1", "object": "balance_transaction", "created": 10, "source": {"id": "ch_2", "object": "charge", "customer": {"id": "cus_B", "object": "customer"}}}));
    p.stripe.insert("/v1/checkout/sessions", json!({"id": "cs_1", "object": "checkout.session", "created": 10, "customer": null, "customer_details": {"email": "guest@example.com"}}));
    p.stripe.insert("/v1/products", json!({"id": "prod_1", "object": "product", "created": 10}));
    p.stripe.insert("/v1/prices", json!({"id": "price_1", "object": "price", "created": 10, "product": "prod_1"}));
    p.stripe.insert("/v1/charges", json!({"id": "ch_1", "object": "charge", "created": 10, "customer": "cus_R"}));
    let report = p.run(&PollRequest::default(), "a", far()).await.unwrap();
    let names: BTreeSet<String> = snapshots(&p.queue).into_iter().flat_map(|s| s.customers).collect();
    assert_eq!(names, BTreeSet::from(["cus_B".to_owned(), "cus_R".to_owned()]));
    assert_eq!(snapshots(&p.queue).len(), 2, "cus_R once across charges and refunds; nothing for catalog or guests");
    let listed: BTreeSet<&str> = report.resources.iter().map(|r| r.resource.as_str()).collect();
    assert_eq!(
        listed,
        BTreeSet::from([
            "charges",
            "payment_intents",
            "refunds",
            "balance_transactions",
            "checkout_sessions",
            "products",
            "prices"
        ])
    );
}

#[tokio::test]
async fn a_backfill_override_restarts_only_the_named_resources_from_its_since() {
    let p = poller(only(&["customers", "subscriptions"]), PollOptions::default());
    seed_customers(&p, 5);
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    let before = p.cursors.load("subscriptions").await.unwrap().unwrap();
    assert_eq!(before.mode, SyncMode::Incremental);
    let req = PollRequest::from_event(&json!({"mode": "backfill", "since": "2025-12-30", "resources": ["customers"]}))
        .unwrap();
    p.stripe.log.lock().unwrap().clear();
    p.run(&req, "b", far()).await.unwrap();
    let snaps = snapshots(&p.queue);
    assert_eq!(snaps.len(), 2, "the first backfill and the restarted one");
    assert_ne!(snaps[0].key, snaps[1].key, "a restarted backfill has a new run id");
    assert_eq!(snaps[1].customers.len(), 5);
    assert_eq!(p.stripe.requests_to("/v1/customers"), 1);
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!(rec.since, Some(NOW - 2 * 86_400));
    assert_eq!(p.cursors.load("subscriptions").await.unwrap().unwrap().run, before.run);
}

#[tokio::test]
async fn events_sharing_one_second_are_all_enqueued_once_across_runs() {
    let p = poller(only(&["customers"]), PollOptions::default());
    p.run(&PollRequest::default(), "a", far()).await.unwrap(); // empty backfill → incremental
    for i in 0..250 {
        p.stripe.insert("/v1/events", event(&format!("evt_a{i:04}"), "customer.updated", NOW + 5, "cus_1"));
    }
    p.stripe.insert("/v1/events", event("evt_other", "payout.paid", NOW + 5, "cus_1"));
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    // More in the very same second, then the next second.
    for i in 250..400 {
        p.stripe.insert("/v1/events", event(&format!("evt_a{i:04}"), "customer.updated", NOW + 5, "cus_1"));
    }
    p.stripe.insert("/v1/events", event("evt_b", "customer.created", NOW + 6, "cus_2"));
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    let events: Vec<QueueMessage> = p.queue.messages().into_iter().filter(|m| m.source == Source::Poller).collect();
    let ids: BTreeSet<&str> = events.iter().map(|m| m.event_id.as_str()).collect();
    assert_eq!(ids.len(), 401, "every matching event");
    assert!(!ids.contains("evt_other"), "types[] filter applies");
    // The first incremental run lists by time (no id yet) and may repeat
    // only the cursor's second; later runs walk by id and repeat nothing.
    assert!(events.len() <= 401 + 1, "{} messages", events.len());
    let m = events.iter().find(|m| m.event_id == "evt_b").unwrap();
    assert_eq!((m.event_type.as_str(), m.livemode), ("customer.created", Some(false)));
    assert!(m.body.contains("\"data\""), "the raw event is queued");
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!((rec.events_created, rec.events_last_id.as_deref()), (Some(NOW + 6), Some("evt_b")));
}

#[tokio::test]
async fn a_cursor_older_than_25_days_falls_back_to_a_full_relist_so_objects_older_than_the_gap_are_recomputed() {
    let p = poller(only(&["customers"]), PollOptions::default());
    let mut rec = CursorRecord::new("customers");
    rec.mode = SyncMode::Incremental;
    rec.events_created = Some(NOW - 30 * 86_400);
    rec.events_last_id = Some("evt_gone".into());
    p.cursors.save(&rec).await.unwrap();
    p.stripe.insert("/v1/customers", json!({"id": "cus_old", "object": "customer", "created": NOW - 40 * 86_400}));
    p.stripe.insert("/v1/customers", json!({"id": "cus_gap", "object": "customer", "created": NOW - 20 * 86_400}));
    let report = p.run(&PollRequest::default(), "a", far()).await.unwrap();
    assert!(report.resources[0].fell_back);
    assert_eq!(p.stripe.requests_to("/v1/events"), 0, "no events request for the gap");
    let mut names: Vec<String> = snapshots(&p.queue).into_iter().flat_map(|s| s.customers).collect();
    names.sort();
    // cus_old was created before the gap but may have changed during it.
    assert_eq!(names, vec!["cus_gap".to_owned(), "cus_old".to_owned()], "the whole resource is re-listed");
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!((rec.mode, rec.since, rec.events_created), (SyncMode::Incremental, None, Some(NOW)));
}

#[tokio::test]
async fn a_quiet_resource_moves_its_cursor_time_so_it_never_falls_back() {
    let p = poller(only(&["customers"]), PollOptions::default());
    let mut rec = CursorRecord::new("customers");
    rec.mode = SyncMode::Incremental;
    rec.events_created = Some(NOW - 2 * 86_400);
    rec.events_last_id = Some("evt_last".into());
    p.cursors.save(&rec).await.unwrap();
    p.stripe.insert("/v1/events", event("evt_last", "customer.updated", NOW - 2 * 86_400, "cus_1"));
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!((rec.events_created, rec.events_last_id.as_deref()), (Some(NOW - 300), Some("evt_last")));
    assert!(p.queue.messages().is_empty());
}

#[tokio::test]
async fn a_vanished_cursor_event_falls_back_to_listing_by_time() {
    let p = poller(only(&["customers"]), PollOptions::default());
    let mut rec = CursorRecord::new("customers");
    rec.mode = SyncMode::Incremental;
    rec.events_created = Some(NOW - 10);
    rec.events_last_id = Some("evt_missing".into());
    p.cursors.save(&rec).await.unwrap();
    p.stripe.insert("/v1/events", event("evt_1", "customer.updated", NOW - 5, "cus_1"));
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    assert_eq!(p.queue.messages().len(), 1);
    assert_eq!(p.cursors.load("customers").await.unwrap().unwrap().events_last_id.as_deref(), Some("evt_1"));
}

#[tokio::test]
async fn a_held_lease_skips_the_run_and_a_finished_run_releases_it() {
    let p = poller(only(&["customers"]), PollOptions::default());
    seed_customers(&p, 3);
    assert!(p.cursors.acquire_lease("other", NOW, NOW + 600).await.unwrap());
    let r = p.run(&PollRequest::default(), "me", far()).await.unwrap();
    assert!(!r.ran);
    assert_eq!(p.stripe.requests.load(Ordering::SeqCst), 0);
    p.clock.advance(601); // the other run crashed: its lease expires
    assert!(p.run(&PollRequest::default(), "me", far()).await.unwrap().ran);
    assert!(p.cursors.acquire_lease("third", NOW + 601, NOW + 700).await.unwrap(), "released at the end");
}

#[tokio::test]
async fn a_passed_deadline_makes_no_request_and_keeps_the_cursor() {
    let p = poller(only(&["customers"]), PollOptions::default());
    seed_customers(&p, 300);
    let r = p.run(&PollRequest::default(), "a", Instant::now() + Duration::from_secs(5)).await.unwrap();
    assert!(r.ran && r.stopped_early);
    assert_eq!(p.stripe.requests.load(Ordering::SeqCst), 0);
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!((rec.mode, rec.starting_after.as_deref()), (SyncMode::Backfill, None));
}

#[tokio::test]
async fn a_queue_outage_fails_the_run_without_moving_the_cursor() {
    let p = poller(only(&["customers"]), PollOptions::default());
    seed_customers(&p, 250);
    p.queue.set_down(true);
    let e = p.run(&PollRequest::default(), "a", far()).await.unwrap_err();
    assert!(matches!(e, PollError::Queue(_)) && e.is_retryable());
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!(rec.starting_after, None);
    assert!(rec.last_error.is_some());
    assert!(p.cursors.acquire_lease("b", NOW, NOW + 1).await.unwrap(), "lease released after a failure");
    p.cursors.release_lease("b").await.unwrap();
    p.queue.set_down(false);
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    assert_eq!(snapshots(&p.queue).iter().map(|s| s.customers.len()).sum::<usize>(), 250);
}

#[tokio::test]
async fn a_stripe_failure_is_recorded_on_the_resource_and_the_next_run_resumes() {
    let opts = PollOptions { pages_per_flush: 1, ..PollOptions::default() };
    let p = poller(only(&["customers"]), opts);
    seed_customers(&p, 250);
    p.run(&PollRequest { backfill: None }, "a", far()).await.unwrap();
    // Simulate: a fresh backfill that fails on its second page.
    let req = PollRequest::from_event(&json!({"mode": "backfill"})).unwrap();
    let p2 = Poller {
        stripe: p.stripe.clone(),
        queue: p.queue.clone(),
        cursors: p.cursors.clone(),
        clock: p.clock.clone(),
        settings: p.settings.clone(),
        options: PollOptions { max_pages_per_run: Some(1), pages_per_flush: 1, ..PollOptions::default() },
    };
    p2.run(&req, "a", far()).await.unwrap();
    p.stripe.fail_next.store(1, Ordering::SeqCst);
    let r = p.run(&PollRequest::default(), "a", far()).await.unwrap();
    assert_eq!(r.failed().len(), 1);
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!(rec.last_error.as_deref(), Some("Stripe server error (HTTP 500)"));
    assert!(rec.starting_after.is_some(), "progress kept");
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!((rec.mode, rec.last_error.as_deref()), (SyncMode::Incremental, None));
}

#[test]
fn event_types_are_split_by_resource_and_never_exceed_20_per_request() {
    let mut s = Settings::default();
    s.stripe.events = (0..30)
        .map(|i| format!("charge.custom_{i}"))
        .chain(["customer.subscription.trial_will_end".to_owned()])
        .collect();
    let charges = event_types_for(resource("charges").unwrap(), &s);
    assert_eq!(charges.len(), 39);
    assert!(charges.chunks(MAX_TYPES_PER_REQUEST).all(|c| c.len() <= 20));
    let subs = event_types_for(resource("subscriptions").unwrap(), &s);
    assert!(subs.contains(&"customer.subscription.trial_will_end".to_owned()));
    assert!(!event_types_for(resource("customers").unwrap(), &s)
        .iter()
        .any(|t| t.starts_with("customer.subscription.")));
    for r in RESOURCES {
        assert!(r.events.len() <= MAX_TYPES_PER_REQUEST);
    }
}

#[tokio::test]
async fn more_than_20_types_are_polled_in_several_requests() {
    let mut s = only(&["payments"]);
    s.stripe.events = (0..30).map(|i| format!("charge.custom_{i}")).collect();
    let p = poller(s, PollOptions::default());
    p.run(&PollRequest::default(), "a", far()).await.unwrap(); // backfills (empty)
    p.stripe.insert("/v1/events", event("evt_x", "charge.custom_29", NOW + 1, "cus_1"));
    p.stripe.insert("/v1/events", event("evt_y", "charge.succeeded", NOW + 1, "cus_1"));
    p.run(&PollRequest::default(), "a", far()).await.unwrap();
    let ids: BTreeSet<String> = p.queue.messages().into_iter().map(|m| m.event_id).collect();
    assert_eq!(ids, BTreeSet::from(["evt_x".to_owned(), "evt_y".to_owned()]));
}

#[test]
fn sync_toggles_map_to_resources() {
    let names = |s: SyncSettings| enabled_resources(&s).iter().map(|r| r.name).collect::<Vec<_>>();
    let off =
        SyncSettings { customers: false, payments: false, subscriptions: false, invoices: false, products: false };
    assert_eq!(
        names(SyncSettings { payments: true, ..off }),
        ["charges", "payment_intents", "refunds", "balance_transactions", "checkout_sessions"]
    );
    assert_eq!(names(SyncSettings { products: true, ..off }), ["products", "prices"]);
    assert_eq!(names(SyncSettings::default()).len(), 10);
}

#[tokio::test]
async fn a_window_of_events_longer_than_one_run_advances_run_after_run() {
    // GIVEN 250 events to read by time (no cursor id), and runs that may
    // read only one page each
    let options = PollOptions { max_pages_per_run: Some(1), ..PollOptions::default() };
    let p = poller(only(&["customers"]), options);
    let mut rec = CursorRecord::new("customers");
    rec.mode = SyncMode::Incremental;
    rec.events_created = Some(NOW - 10_000);
    p.cursors.save(&rec).await.unwrap();
    for i in 0..250 {
        p.stripe.insert("/v1/events", event(&format!("evt_{i:03}"), "customer.updated", NOW - 5_000 + i, "cus_1"));
    }
    // WHEN three runs go by
    for _ in 0..3 {
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
    }
    // THEN every event was queued once and the cursor is at the newest
    let mut ids: Vec<String> = p.queue.messages().iter().map(|m| m.event_id.clone()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!((n, ids.len()), (250, 250), "each event once");
    let rec = p.cursors.load("customers").await.unwrap().unwrap();
    assert_eq!((rec.events_created, rec.events_last_id.as_deref()), (Some(NOW - 5_000 + 249), Some("evt_249")));
    assert!(rec.down_since.is_none(), "the walk is finished");
}
