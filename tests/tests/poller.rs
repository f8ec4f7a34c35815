//! The poller end to end against the local Stripe sandbox seeded with
//! thousands of demo objects (Stripe's own example shapes): interrupted
//! backfills resume without gaps or duplicates, one poller at a time, events
//! sharing a second are all found, an expired events cursor falls back to a
//! re-list, 429 bursts are absorbed; and the cursor table and the queue
//! through moto with the real AWS SDK (`DynamoCursors`, `SqsQueue`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_tests::{aws, create_queue, unique};
use sandbox::stripe::{demo_dataset, Seed, StripeSandbox, StripeSandboxOptions, DEFAULT_SECRET_KEY, DEMO_EPOCH};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::dynamodb_cursors::DynamoCursors;
use shared::adapters::memory::{FixedClock, MemoryCursors, MemoryQueue};
use shared::adapters::sqs::SqsQueue;
use shared::adapters::stripe::{RetryPolicy, StripeClient};
use shared::pipeline::consume::Snapshot;
use shared::pipeline::poll::{PollOptions, PollReport, PollRequest, Poller};
use shared::ports::{ContactCounts, CursorRecord, CursorStore, EventQueue, QueueMessage, Source, SyncMode};
use shared::settings::{Settings, SyncSettings};

/// Within the demo data's 300 days.
const NOW: i64 = DEMO_EPOCH + 320 * 86_400;

fn client(sb: &StripeSandbox) -> StripeClient {
    StripeClient::builder(sb.base_url(), SecretString::from(DEFAULT_SECRET_KEY.to_owned()))
        .retry_policy(RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(10),
            max_retry_after: Duration::from_millis(20),
        })
        .requests_per_second(None)
        .build()
        .expect("stripe client")
}

fn settings(sync: SyncSettings) -> Arc<Settings> {
    let mut s = Settings::default();
    s.stripe.sync = sync;
    Arc::new(s)
}

fn only_customers() -> SyncSettings {
    SyncSettings { customers: true, payments: false, subscriptions: false, invoices: false, products: false }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

fn poller<Q: EventQueue, S: CursorStore>(
    sb: &StripeSandbox,
    queue: Q,
    cursors: S,
    sync: SyncSettings,
    options: PollOptions,
) -> Poller<StripeClient, Q, S, Arc<FixedClock>> {
    Poller {
        stripe: client(sb),
        queue,
        cursors,
        clock: Arc::new(FixedClock::at(NOW)),
        settings: settings(sync),
        options,
    }
}

async fn seeded(n_customers: usize) -> (StripeSandbox, BTreeMap<&'static str, Vec<Value>>) {
    let sb = StripeSandbox::start(StripeSandboxOptions::default().with_now(NOW)).await.expect("sandbox");
    let data = demo_dataset(n_customers, 7);
    let mut by: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    for (r, v) in &data {
        by.entry(*r).or_default().push(v.clone());
    }
    sb.insert_all(data.into_iter().map(|(r, v)| (r.to_owned(), v)));
    (sb, by)
}

fn snapshots(messages: &[QueueMessage]) -> Vec<Snapshot> {
    messages
        .iter()
        .filter(|m| m.source == Source::Backfill)
        .map(|m| serde_json::from_str(&m.body).expect("snapshot body"))
        .collect()
}

fn ids(values: &[Value]) -> BTreeSet<String> {
    values.iter().filter_map(|v| v["id"].as_str().map(str::to_owned)).collect()
}

async fn until_caught_up<F, Q, S, C>(p: &Poller<F, Q, S, C>) -> Vec<PollReport>
where
    F: shared::pipeline::poll::StripeFeed,
    Q: EventQueue,
    S: CursorStore,
    C: shared::ports::Clock,
{
    let mut reports = Vec::new();
    for i in 0..200 {
        let r = p.run(&PollRequest::default(), &format!("run-{i}"), far()).await.expect("run");
        assert!(r.failed().is_empty(), "{:?}", r.failed());
        let done = r.caught_up();
        reports.push(r);
        if done {
            return reports;
        }
    }
    panic!("the backfill never finished");
}

#[tokio::test]
async fn an_interrupted_backfill_of_thousands_resumes_without_gaps_or_duplicates() {
    let (sb, data) = seeded(2_500).await;
    let sync = SyncSettings { customers: true, payments: true, subscriptions: true, invoices: false, products: false };
    let queue = Arc::new(MemoryQueue::new());
    let cursors = Arc::new(MemoryCursors::new());
    let p = poller(
        &sb,
        queue.clone(),
        cursors.clone(),
        sync,
        PollOptions { max_pages_per_run: Some(7), ..PollOptions::default() },
    );
    let reports = until_caught_up(&p).await;
    assert!(reports.len() > 5, "interrupted several times ({} runs)", reports.len());
    assert!(reports[..reports.len() - 1].iter().all(|r| r.stopped_early));

    let snaps = snapshots(&queue.messages());
    let keys: BTreeSet<&str> = snaps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys.len(), snaps.len(), "no page enqueued twice");
    let named: BTreeSet<String> = snaps.iter().flat_map(|s| s.customers.iter().cloned()).collect();
    assert_eq!(named, ids(&data["customers"]), "every seeded customer, nothing else");
    // Every object of every resource seen exactly once (a replayed page would count twice).
    for (resource, seeded) in [
        ("customers", "customers"),
        ("charges", "charges"),
        ("subscriptions", "subscriptions"),
        ("refunds", "refunds"),
        ("balance_transactions", "balance_transactions"),
    ] {
        let rec = cursors.load(resource).await.expect("load").expect("record");
        assert_eq!(rec.synced as usize, data[seeded].len(), "{resource}");
        assert_eq!(rec.mode, SyncMode::Incremental, "{resource}");
    }
}

#[tokio::test]
async fn bursts_of_429_are_absorbed_and_counted() {
    let (sb, data) = seeded(1_200).await;
    let queue = Arc::new(MemoryQueue::new());
    let cursors = Arc::new(MemoryCursors::new());
    let p = poller(&sb, queue.clone(), cursors.clone(), only_customers(), PollOptions::default());
    sb.burst_429(5);
    let first = p.run(&PollRequest::default(), "a", far()).await.expect("run");
    assert!(first.failed().is_empty() && first.caught_up());
    assert!(first.retries() >= 5, "retries {}", first.retries());
    assert_eq!(sb.status_count(429), 5);
    let named: BTreeSet<String> = snapshots(&queue.messages()).into_iter().flat_map(|s| s.customers).collect();
    assert_eq!(named, ids(&data["customers"]));
    let rec = cursors.load("customers").await.expect("load").expect("record");
    assert_eq!((rec.retries, rec.requests), (first.retries(), 12 + first.retries()));
}

#[tokio::test]
async fn many_events_in_the_same_second_are_all_enqueued_once() {
    let sb = StripeSandbox::start(StripeSandboxOptions::default().with_now(NOW)).await.expect("sandbox");
    let queue = Arc::new(MemoryQueue::new());
    let cursors = Arc::new(MemoryCursors::new());
    let p = poller(&sb, queue.clone(), cursors.clone(), only_customers(), PollOptions::default());
    assert!(p.run(&PollRequest::default(), "a", far()).await.expect("run").caught_up(), "empty backfill");
    let cus = Seed::customer("cus_same", Some("same@example.com"), NOW);
    let mut expected = BTreeSet::new();
    for _ in 0..350 {
        expected.insert(sb.emit_event("customer.updated", cus.clone()));
    }
    sb.emit_event("invoice.paid", json!({"id": "in_1", "object": "invoice", "customer": "cus_same"})); // not this resource's
    p.run(&PollRequest::default(), "a", far()).await.expect("run");
    for _ in 0..120 {
        expected.insert(sb.emit_event("customer.updated", cus.clone())); // the very same second
    }
    p.run(&PollRequest::default(), "a", far()).await.expect("run");
    p.run(&PollRequest::default(), "a", far()).await.expect("run");
    let polled: Vec<QueueMessage> = queue.messages().into_iter().filter(|m| m.source == Source::Poller).collect();
    let got: BTreeSet<String> = polled.iter().map(|m| m.event_id.clone()).collect();
    assert_eq!(got, expected, "none lost");
    assert_eq!(polled.len(), expected.len(), "none repeated");
    let rec = cursors.load("customers").await.expect("load").expect("record");
    assert_eq!(rec.events_created, Some(NOW));
}

#[tokio::test]
async fn a_30_day_old_events_cursor_falls_back_to_a_full_relist_with_a_warning() {
    let (sb, data) = seeded(600).await;
    let queue = Arc::new(MemoryQueue::new());
    let cursors = Arc::new(MemoryCursors::new());
    // The demo customers' creation times, and a clock 30 days after the median.
    let mut created: Vec<i64> = data["customers"].iter().filter_map(|c| c["created"].as_i64()).collect();
    created.sort_unstable();
    let cursor_time = created[created.len() / 2];
    let now = cursor_time + 30 * 86_400;
    let mut rec = CursorRecord::new("customers");
    rec.mode = SyncMode::Incremental;
    rec.events_created = Some(cursor_time);
    rec.events_last_id = Some("evt_expired_long_ago".into());
    cursors.save(&rec).await.expect("save");
    let p = poller(&sb, queue.clone(), cursors.clone(), only_customers(), PollOptions::default());
    p.clock.set(now);
    let report = p.run(&PollRequest::default(), "a", far()).await.expect("run");
    assert!(report.resources[0].fell_back);
    assert_eq!(sb.request_count_for("/v1/events"), 0);
    // Every customer, those created before the gap included: their
    // subscriptions and charges may have changed during it.
    let expected: BTreeSet<String> =
        data["customers"].iter().filter_map(|c| c["id"].as_str().map(str::to_owned)).collect();
    let before_gap = data["customers"].iter().filter(|c| c["created"].as_i64().unwrap_or(0) < cursor_time).count();
    assert!(before_gap > 0, "the data set has customers older than the cursor");
    let named: BTreeSet<String> = snapshots(&queue.messages()).into_iter().flat_map(|s| s.customers).collect();
    assert_eq!(named, expected, "the whole resource, re-listed");
    let rec = cursors.load("customers").await.expect("load").expect("record");
    assert_eq!((rec.mode, rec.since), (SyncMode::Incremental, None));
}

#[tokio::test]
async fn the_lambda_handler_runs_the_operator_backfill_override() {
    let (sb, data) = seeded(300).await;
    let queue = Arc::new(MemoryQueue::new());
    let cursors = Arc::new(MemoryCursors::new());
    let p = poller(&sb, queue.clone(), cursors.clone(), SyncSettings::default(), PollOptions::default());
    let payload: Value = serde_json::from_str(include_str!("../../events/schedule/backfill.json")).expect("event");
    let out = stripe_poller::handle(&p, payload, "req-1", far()).await.expect("handled");
    assert_eq!(out["ran"], true);
    let named: BTreeSet<String> = snapshots(&queue.messages()).into_iter().flat_map(|s| s.customers).collect();
    assert_eq!(named, ids(&data["customers"]));
    let scheduled: Value = serde_json::from_str(include_str!("../../events/schedule/scheduled.json")).expect("event");
    let out = stripe_poller::handle(&p, scheduled, "req-2", far()).await.expect("handled");
    assert_eq!(out["caught_up"], true);
    assert!(stripe_poller::handle(&p, json!({"mode": "nope"}), "req-3", far()).await.is_err());
    let text = out.to_string();
    assert!(!text.contains("@example.com") && !text.contains(DEFAULT_SECRET_KEY));
}

// --- through moto ------------------------------------------------------------

async fn moto_cursors() -> DynamoCursors {
    let aws = aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let table = unique("cursors");
    DynamoCursors::create_table(&client, &table).await.expect("cursor table");
    DynamoCursors::new(client, table)
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let r = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        let msgs = r.messages();
        if msgs.is_empty() {
            empty += 1;
            continue;
        }
        for m in msgs {
            let attrs = m
                .message_attributes()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.string_value().unwrap_or("").to_owned())).collect())
                .unwrap_or_default();
            out.push((m.body().unwrap_or("").to_owned(), attrs));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or(""))
                .send()
                .await
                .expect("delete");
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn backfill_and_events_through_moto_sqs_and_the_dynamodb_cursor_table() {
    let (sb, data) = seeded(1_500).await;
    let aws = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let url = create_queue(&aws, &unique("poller")).await;
    let cursors = moto_cursors().await;
    let p = poller(
        &sb,
        SqsQueue::new(sqs.clone(), url.clone()),
        cursors.clone(),
        only_customers(),
        PollOptions { max_pages_per_run: Some(4), ..PollOptions::default() },
    );
    let reports = until_caught_up(&p).await;
    assert_eq!(reports.len(), 4, "15 pages at 4 per run");
    let ev = sb.emit_event("customer.updated", Seed::customer("cus_Demo000001", Some("x@example.com"), NOW));
    p.run(&PollRequest::default(), "again", far()).await.expect("run");

    let got = drain(&sqs, &url).await;
    let mut keys = BTreeSet::new();
    let mut named = BTreeSet::new();
    let mut events = Vec::new();
    for (body, attrs) in &got {
        match attrs.get("source").map(String::as_str) {
            Some("backfill") => {
                let s: Snapshot = serde_json::from_str(body).expect("snapshot");
                assert_eq!(attrs.get("event_id"), Some(&s.key));
                assert!(keys.insert(s.key), "no page enqueued twice");
                named.extend(s.customers);
            }
            Some("poller") => events.push(attrs.clone()),
            other => panic!("unexpected source {other:?}"),
        }
    }
    assert_eq!(named, ids(&data["customers"]));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("event_id"), Some(&ev));
    assert_eq!(events[0].get("type").map(String::as_str), Some("customer.updated"));
    assert_eq!(events[0].get("livemode").map(String::as_str), Some("false"));

    let rec = cursors.load("customers").await.expect("load").expect("record");
    assert_eq!(rec.mode, SyncMode::Incremental);
    assert_eq!(rec.synced as usize, data["customers"].len() + 1);
    assert_eq!(rec.messages_enqueued, 16);
    assert_eq!(rec.events_last_id.as_deref(), Some(ev.as_str()));
    assert_eq!(rec.last_success, Some(NOW));
    assert_eq!(cursors.list().await.expect("list"), vec![rec]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn two_concurrent_invocations_do_not_both_run() {
    let (sb, _) = seeded(400).await;
    sb.set_latency(Duration::from_millis(30));
    let cursors = moto_cursors().await;
    let q1 = Arc::new(MemoryQueue::new());
    let q2 = Arc::new(MemoryQueue::new());
    let p1 = poller(&sb, q1.clone(), cursors.clone(), only_customers(), PollOptions::default());
    let p2 = poller(&sb, q2.clone(), cursors.clone(), only_customers(), PollOptions::default());
    let req = PollRequest::default();
    let (a, b) = tokio::join!(p1.run(&req, "invocation-1", far()), p2.run(&req, "invocation-2", far()));
    let (a, b) = (a.expect("run 1"), b.expect("run 2"));
    assert!(a.ran ^ b.ran, "exactly one ran: {} {}", a.ran, b.ran);
    assert_eq!(sb.request_count_for("/v1/customers"), 4, "one backfill's requests only");
    assert_eq!(q1.messages().len() + q2.messages().len(), 4);
    // Released at the end: a later run proceeds.
    assert!(p2.run(&PollRequest::default(), "invocation-3", far()).await.expect("run").ran);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn the_dynamodb_lease_expires_is_owner_bound_and_counters_add_atomically() {
    let c = moto_cursors().await;
    assert!(c.acquire_lease("a", 1_000, 1_100).await.expect("lease"));
    assert!(!c.acquire_lease("b", 1_050, 1_150).await.expect("lease"), "held by a");
    assert!(c.acquire_lease("a", 1_060, 1_200).await.expect("lease"), "renewed by its owner");
    c.release_lease("b").await.expect("not b's: no-op");
    assert!(!c.acquire_lease("b", 1_100, 1_200).await.expect("lease"), "still a's");
    assert!(c.acquire_lease("b", 1_201, 1_300).await.expect("lease"), "expired: taken over by value");
    c.release_lease("b").await.expect("release");
    assert!(c.acquire_lease("c", 1_202, 1_300).await.expect("lease"));

    assert_eq!(c.contact_counts().await.expect("counts"), ContactCounts::default());
    let adds: Vec<_> = (0..10)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.add_contact_counts(ContactCounts { synced: 3, skipped_no_email: 1, failed: 0 }).await
            })
        })
        .collect();
    for h in adds {
        h.await.expect("task").expect("add");
    }
    assert_eq!(
        c.contact_counts().await.expect("counts"),
        ContactCounts { synced: 30, skipped_no_email: 10, failed: 0 }
    );
    assert!(c.load("nothing").await.expect("load").is_none());
}
