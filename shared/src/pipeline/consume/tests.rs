//! The consumer's behaviours on in-memory fakes (no moto, no HTTP): each test
//! reads GIVEN (Stripe's current state, built from Stripe's own example
//! objects in `tests/fixtures/stripe/fixtures3.json`) / WHEN (a batch) /
//! THEN (outcomes and what Brevo holds). The moto-backed tests in
//! `tests/tests/consumer.rs` cover the same pipeline on the real adapters.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::*;
use crate::adapters::memory::{BrevoOp, FixedClock, MemoryBrevo, MemoryDeadLetters, MemoryIdempotency, MemoryStripe};
use crate::domain::stripe::{Charge, Customer, Subscription};
use crate::ports::{CustomerState, IdempotencyStore, RemoteError, RemoteErrorKind, Vendor};
use crate::settings::ListIds;

mod imports;

const NOW: i64 = 1_780_000_000;
const FIXTURES: &str = include_str!("../../../../tests/fixtures/stripe/fixtures3.json");

/// Stripe's example object for a resource, with `changes` merged in.
fn fixture(resource: &str, changes: Value) -> Value {
    let all: Value = serde_json::from_str(FIXTURES).unwrap();
    let mut obj = all["resources"][resource].clone();
    assert!(obj.is_object(), "fixtures3.json has no {resource}");
    for (k, v) in changes.as_object().unwrap() {
        obj[k] = v.clone();
    }
    obj
}

fn customer(id: &str, email: Option<&str>) -> Customer {
    serde_json::from_value(fixture("customer", json!({"id": id, "email": email, "name": "Ada Lovelace"}))).unwrap()
}

fn paid_charge(id: &str, customer: &str, amount: i64) -> Charge {
    serde_json::from_value(fixture(
        "charge",
        json!({"id": id, "customer": customer, "amount": amount, "amount_captured": amount,
               "captured": true, "paid": true, "status": "succeeded", "created": NOW - 3_600}),
    ))
    .unwrap()
}

fn subscription(id: &str, customer: &str, status: &str) -> Subscription {
    serde_json::from_value(fixture("subscription", json!({"id": id, "customer": customer, "status": status}))).unwrap()
}

/// A Stripe event (Stripe's example envelope) about `object`.
fn event(id: &str, event_type: &str, created: i64, livemode: bool, object: Value) -> String {
    fixture(
        "event",
        json!({"id": id, "type": event_type, "created": created, "livemode": livemode, "data": {"object": object}}),
    )
    .to_string()
}

fn charge_event(id: &str, event_type: &str, customer: &str) -> String {
    let ch = fixture("charge", json!({"id": format!("ch_{id}"), "customer": customer, "status": "succeeded"}));
    event(id, event_type, NOW - 60, false, ch)
}

fn invoice_failed(id: &str, customer: &str) -> String {
    event(
        id,
        "invoice.payment_failed",
        NOW - 60,
        false,
        fixture("invoice", json!({"id": format!("in_{id}"), "customer": customer})),
    )
}

fn msg(n: usize, body: String) -> InboundMessage {
    InboundMessage {
        message_id: format!("m{n}"),
        body,
        event_id: None,
        event_type: None,
        source: Some(Source::Webhook),
        receive_count: 1,
    }
}

fn batch(bodies: Vec<String>) -> Vec<InboundMessage> {
    bodies.into_iter().enumerate().map(|(i, b)| msg(i, b)).collect()
}

type TestConsumer = Consumer<Arc<MemoryStripe>, Arc<MemoryBrevo>, Arc<MemoryIdempotency>, Arc<FixedClock>>;

/// The fakes, and a consumer over them.
struct World {
    stripe: Arc<MemoryStripe>,
    brevo: Arc<MemoryBrevo>,
    dedup: Arc<MemoryIdempotency>,
    dlq: Arc<MemoryDeadLetters>,
    consumer: TestConsumer,
}

impl World {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings::default();
        settings.stripe.lists = ListIds { all_customers: Some(20), subscribers: Some(21), churned: Some(22) };
        // Imports followed in place are looked at without waiting.
        settings.brevo.import_check_delay = std::time::Duration::ZERO;
        configure(&mut settings);
        let clock = Arc::new(FixedClock::at(NOW));
        let (stripe, brevo) = (Arc::new(MemoryStripe::new(false)), Arc::new(MemoryBrevo::with_clock(clock.clone())));
        let (dedup, dlq) = (Arc::new(MemoryIdempotency::new()), Arc::new(MemoryDeadLetters::new()));
        let consumer = Consumer {
            stripe: stripe.clone(),
            brevo: brevo.clone(),
            dedup: dedup.clone(),
            clock,
            dead_letters: Some(dlq.clone() as Arc<dyn DeadLetters>),
            status: None,
            requeue: None,
            ledger: None,
            settings: Arc::new(settings),
            options: ConsumeOptions::default(),
        };
        Self { stripe, brevo, dedup, dlq, consumer }
    }

    /// A customer who paid `amount` cents once, with an active subscription.
    fn given_a_subscriber(&self, id: &str, email: &str, amount: i64) {
        self.stripe.put(CustomerState {
            customer: Some(customer(id, Some(email))),
            charges: vec![paid_charge(&format!("ch_{id}"), id, amount)],
            subscriptions: vec![subscription(&format!("sub_{id}"), id, "active")],
        });
    }

    async fn consume(&self, bodies: Vec<String>) -> BatchReport {
        self.consumer.consume(&batch(bodies)).await
    }
}

fn outcomes(r: &BatchReport) -> Vec<&Outcome> {
    r.outcomes.iter().map(|(_, o)| o).collect()
}

fn event_ids(record: &crate::adapters::memory::BrevoRecord) -> Vec<String> {
    let mut ids: Vec<String> =
        record.events.iter().map(|e| e.event_properties["stripe_event_id"].to_string()).collect();
    ids.sort();
    ids
}

fn down(vendor: Vendor) -> RemoteError {
    RemoteError::new(vendor, RemoteErrorKind::Unavailable, "server error (HTTP 503)")
}

#[tokio::test]
async fn a_repeated_event_is_applied_once_within_a_batch_and_across_batches() {
    // GIVEN a subscriber
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 2_000);
    let e = charge_event("evt_1", "charge.refunded", "cus_ada");
    // WHEN the same event arrives twice in one batch, then again later
    let first = w.consume(vec![e.clone(), e.clone()]).await;
    let later = w.consume(vec![e]).await;
    // THEN it is applied once: one contact write, one Brevo event
    assert_eq!(outcomes(&first), [&Outcome::Done, &Outcome::Duplicate]);
    assert_eq!(outcomes(&later), [&Outcome::Duplicate]);
    let rec = w.brevo.record();
    assert_eq!(rec.upserts, 1);
    assert_eq!(event_ids(&rec), ["\"evt_1\""]);
    assert_eq!(first.stats.duplicates + later.stats.duplicates, 2);
    assert_eq!(w.stripe.reloads(), 1, "a duplicate reloads nothing");
}

#[tokio::test]
async fn events_in_any_order_leave_the_contact_at_stripes_current_state() {
    let bodies = vec![
        event(
            "evt_a",
            "customer.subscription.created",
            NOW - 120,
            false,
            fixture("subscription", json!({"customer": "cus_ada", "status": "incomplete"})),
        ),
        event(
            "evt_b",
            "customer.subscription.updated",
            NOW - 60,
            false,
            fixture("subscription", json!({"customer": "cus_ada", "status": "active"})),
        ),
        charge_event("evt_c", "charge.succeeded", "cus_ada"),
    ];
    let mut results = Vec::new();
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        // GIVEN the same current Stripe state
        let w = World::new();
        w.given_a_subscriber("cus_ada", "ada@example.com", 4_250);
        // WHEN the events arrive in this order, one batch each
        for i in order {
            let r = w.consume(vec![bodies[i].clone()]).await;
            assert_eq!(outcomes(&r), [&Outcome::Done]);
        }
        let mut rec = w.brevo.record();
        rec.events.sort_by(|a, b| {
            a.event_properties["stripe_event_id"].to_string().cmp(&b.event_properties["stripe_event_id"].to_string())
        });
        results.push(rec);
    }
    // THEN Brevo ends the same whatever the order, at the current state
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    let contact = &results[0].contacts["ada@example.com"];
    assert_eq!(contact["TOTAL_SPENT"], crate::domain::brevo::AttributeValue::Number(42.5));
    assert_eq!(contact["SUB_STATUS"], crate::domain::brevo::AttributeValue::Text("active".into()));
    assert!(results[0].lists[&21].contains("ada@example.com"), "in subscribers");
}

#[tokio::test]
async fn a_refused_event_fails_only_its_message_and_the_retry_sends_it_once() {
    // GIVEN two customers, and Brevo refusing one kind of event
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.given_a_subscriber("cus_bob", "bob@example.com", 1_000);
    let refusal = RemoteError::new(Vendor::Brevo, RemoteErrorKind::Rejected, "event refused");
    w.brevo.refuse_events("stripe_invoice_payment_failed", Some(refusal));
    let bodies = vec![invoice_failed("evt_inv", "cus_ada"), charge_event("evt_ref", "charge.refunded", "cus_bob")];
    // WHEN the batch is consumed
    let first = w.consume(bodies.clone()).await;
    // THEN only the refused event's message comes back, with the vendor and kind
    let Outcome::Retry(retry) = outcomes(&first)[0] else { panic!("{:?}", first.outcomes) };
    assert_eq!(retry.cause, RetryCause::Remote(Vendor::Brevo, RemoteErrorKind::Rejected));
    assert_eq!(outcomes(&first)[1], &Outcome::Done);
    assert_eq!(first.retry_ids(), ["m0"]);
    // WHEN Brevo takes it again and both are redelivered
    w.brevo.refuse_events("stripe_invoice_payment_failed", None);
    let second = w.consume(bodies).await;
    // THEN the retried one is done, the other a duplicate; each event sent once
    assert_eq!(outcomes(&second), [&Outcome::Done, &Outcome::Duplicate]);
    assert_eq!(event_ids(&w.brevo.record()), ["\"evt_inv\"", "\"evt_ref\""]);
}

#[tokio::test]
async fn a_stripe_outage_returns_the_message_with_its_cause_and_a_retry_completes_it() {
    // GIVEN Stripe failing to reload the customer
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.stripe.fail_customer("cus_ada", Some(down(Vendor::Stripe)));
    let body = charge_event("evt_1", "charge.refunded", "cus_ada");
    // WHEN the event is consumed
    let first = w.consume(vec![body.clone()]).await;
    // THEN it comes back (Stripe unavailable), nothing reached Brevo, the claim is released
    let Outcome::Retry(retry) = outcomes(&first)[0] else { panic!("{:?}", first.outcomes) };
    assert_eq!(retry.cause, RetryCause::Remote(Vendor::Stripe, RemoteErrorKind::Unavailable));
    assert_eq!(retry.key_refused(), None);
    assert_eq!(w.brevo.record(), Default::default());
    // WHEN Stripe is back
    w.stripe.fail_customer("cus_ada", None);
    let second = w.consume(vec![body]).await;
    // THEN the event is applied
    assert_eq!(outcomes(&second), [&Outcome::Done]);
    assert_eq!(event_ids(&w.brevo.record()), ["\"evt_1\""]);
}

#[tokio::test]
async fn a_refused_brevo_key_is_reported_by_kind_so_the_cli_can_stop() {
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    let refused =
        RemoteError::new(Vendor::Brevo, RemoteErrorKind::Unauthorized, "Brevo API key is invalid (Key not found)");
    w.brevo.fail_next(BrevoOp::Upsert, 1, refused);
    let r = w.consume(vec![charge_event("evt_1", "charge.refunded", "cus_ada")]).await;
    let Outcome::Retry(retry) = outcomes(&r)[0] else { panic!("{:?}", r.outcomes) };
    assert_eq!(retry.key_refused(), Some(Vendor::Brevo));
    assert!(retry.to_string().starts_with("permanent: "), "a permanent refusal says so in the log: {retry}");
    assert_eq!(r.stats.contacts_failed, 1);
    assert!(w.brevo.record().events.is_empty(), "no event for a contact that was not written");
}

#[tokio::test]
async fn a_body_that_is_not_an_event_goes_to_the_dead_letter_queue_and_nowhere_else() {
    // GIVEN hostile and malformed bodies beside a good event
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let no_object =
        fixture("event", json!({"id": "evt_x", "type": "charge.refunded", "data": {"object": 7}})).to_string();
    let bodies = vec!["not json".to_owned(), deep, no_object, charge_event("evt_ok", "charge.refunded", "cus_ada")];
    // WHEN consumed
    let r = w.consume(bodies).await;
    // THEN the three bad ones are dead-lettered, the good one applied, nothing retried
    let o = outcomes(&r);
    assert!(o[..3].iter().all(|o| matches!(o, Outcome::Dead(_))), "{o:?}");
    assert_eq!(o[3], &Outcome::Done);
    assert_eq!(r.stats.dead, 3);
    assert!(r.retry_ids().is_empty());
    assert_eq!(w.dlq.letters().len(), 3);
    assert_eq!(w.dlq.letters()[0].0, "not json", "the body is kept as it came");
    assert_eq!(event_ids(&w.brevo.record()), ["\"evt_ok\""]);
}

#[tokio::test]
async fn a_dead_message_is_returned_when_the_dead_letter_queue_is_unavailable_or_absent() {
    let w = World::new();
    w.dlq.set_down(true);
    let r = w.consume(vec!["not json".to_owned()]).await;
    let Outcome::Retry(retry) = outcomes(&r)[0] else { panic!("{:?}", r.outcomes) };
    assert_eq!(retry.cause, RetryCause::DeadLetterQueue);

    let mut w = World::new();
    w.consumer.dead_letters = None;
    let r = w.consume(vec!["not json".to_owned()]).await;
    let Outcome::Retry(retry) = outcomes(&r)[0] else { panic!("{:?}", r.outcomes) };
    assert_eq!(retry.cause, RetryCause::NoDeadLetterQueue, "the queue's redrive policy moves it");
}

#[tokio::test]
async fn an_event_older_than_event_max_age_updates_the_contact_but_sends_no_event() {
    // GIVEN an event two days old (event_max_age is 24 h)
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    let old = fixture("charge", json!({"id": "ch_old", "customer": "cus_ada"}));
    // WHEN consumed
    let r = w.consume(vec![event("evt_old", "charge.refunded", NOW - 2 * 86_400, false, old)]).await;
    // THEN the contact is written, no Brevo event
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert_eq!(r.stats.events_too_old, 1);
    let rec = w.brevo.record();
    assert!(rec.contacts.contains_key("ada@example.com"));
    assert!(rec.events.is_empty());
}

#[tokio::test]
async fn an_event_of_the_other_mode_is_ignored_without_touching_stripe_or_brevo() {
    // GIVEN a test-mode key, and a live-mode event
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    let live = event("evt_live", "charge.refunded", NOW - 60, true, fixture("charge", json!({"customer": "cus_ada"})));
    // WHEN consumed
    let r = w.consume(vec![live]).await;
    // THEN it is acknowledged and does nothing
    assert_eq!(outcomes(&r), [&Outcome::Ignored("livemode differs from the key's mode")]);
    assert_eq!(w.stripe.reloads(), 0);
    assert_eq!(w.brevo.record(), Default::default());
}

#[tokio::test]
async fn a_key_held_by_another_worker_comes_back_later_without_any_push() {
    // GIVEN another worker holding the event's claim
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.dedup.claim("evt_1", NOW, NOW + 900, NOW + 86_400).await.unwrap();
    // WHEN its copy is consumed here
    let r = w.consume(vec![charge_event("evt_1", "charge.refunded", "cus_ada")]).await;
    // THEN it is returned with that cause, and nothing was done
    let Outcome::Retry(retry) = outcomes(&r)[0] else { panic!("{:?}", r.outcomes) };
    assert_eq!(retry.cause, RetryCause::InProgressElsewhere);
    assert_eq!(w.stripe.reloads(), 0);
    assert_eq!(w.brevo.record(), Default::default());
}

#[tokio::test]
async fn a_snapshot_pushes_its_customers_sends_no_event_and_skips_those_without_email() {
    // GIVEN two customers, one without e-mail
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.stripe.put(CustomerState { customer: Some(customer("cus_anon", None)), ..CustomerState::default() });
    let snap = json!({"object": SNAPSHOT_OBJECT, "key": "backfill:customers:r1:p1", "customers": ["cus_ada", "cus_anon", "not_a_customer"]});
    // WHEN the backfill snapshot is consumed twice
    let r = w.consume(vec![snap.to_string()]).await;
    let again = w.consume(vec![snap.to_string()]).await;
    // THEN one contact, one skipped, no event; the copy is a duplicate
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert_eq!((r.stats.customers_reloaded, r.stats.contacts_synced, r.stats.contacts_skipped_no_email), (2, 1, 1));
    assert_eq!(outcomes(&again), [&Outcome::Duplicate]);
    let rec = w.brevo.record();
    assert_eq!(rec.contacts.keys().collect::<Vec<_>>(), ["ada@example.com"]);
    assert!(rec.events.is_empty());
}

#[tokio::test]
async fn a_failed_order_fails_its_message_after_the_event_went_out() {
    // GIVEN eCommerce orders on, and Brevo's orders endpoint down
    let w = World::with(|s| s.brevo.ecommerce_orders = true);
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.brevo.fail_next(BrevoOp::Order, 1, down(Vendor::Brevo));
    let pi = fixture(
        "payment_intent",
        json!({"id": "pi_1", "customer": "cus_ada", "amount_received": 1099, "status": "succeeded"}),
    );
    // WHEN a succeeded payment is consumed
    let r = w.consume(vec![event("evt_pi", "payment_intent.succeeded", NOW - 60, false, pi)]).await;
    // THEN the message comes back for the order's failure
    let Outcome::Retry(retry) = outcomes(&r)[0] else { panic!("{:?}", r.outcomes) };
    assert_eq!(retry.cause, RetryCause::Remote(Vendor::Brevo, RemoteErrorKind::Unavailable));
    assert_eq!(r.stats.events_sent, 1);
}

#[tokio::test]
async fn a_deleted_customer_leaves_the_managed_lists() {
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.consume(vec![charge_event("evt_1", "charge.refunded", "cus_ada")]).await;
    assert!(w.brevo.record().lists[&20].contains("ada@example.com"));
    // WHEN Stripe says the customer is deleted
    w.stripe.remove("cus_ada");
    let gone = fixture("customer", json!({"id": "cus_ada", "email": "Ada@Example.com"}));
    let r = w.consume(vec![event("evt_del", "customer.deleted", NOW - 60, false, gone)]).await;
    // THEN the address is out of every managed list
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    let rec = w.brevo.record();
    assert!(
        [20, 21, 22].iter().all(|l| !rec.lists.get(l).is_some_and(|m| m.contains("ada@example.com"))),
        "{:?}",
        rec.lists
    );
}

/// Captures formatted log lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_message_logs_inside_its_own_span_with_the_stripe_event_id_and_type() {
    // tracing caches per-callsite interest process-wide: with `cargo test`'s
    // threads, a parallel test without a subscriber can leave this test's
    // span disabled. nextest (the README's test command) runs each test in
    // its own process, where the check is exact.
    if std::env::var_os("NEXTEST").is_none() {
        eprintln!("skipped: needs a process of its own (run with cargo nextest, as scripts/test does)");
        return;
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    let e = charge_event("evt_1", "charge.refunded", "cus_ada");
    w.consume(vec![e.clone(), e]).await;
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let dup = text.lines().find(|l| l.contains("duplicate: nothing sent")).expect(&text);
    assert!(dup.contains("message{message_id=m1 event_id=evt_1 event_type=charge.refunded}"), "{dup}");
}

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
        deferred: 11,
        requeued: 12,
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
        deferred: 22,
        requeued: 24,
    };
    assert_eq!(total, doubled);
}

/// A world whose consumer puts units and copies back on `queue`.
fn world_with_queue() -> (World, Arc<crate::adapters::memory::MemoryQueue>) {
    let mut w = World::new();
    let queue = Arc::new(crate::adapters::memory::MemoryQueue::new());
    w.consumer.requeue = Some(queue.clone() as Arc<dyn crate::ports::EventQueue>);
    (w, queue)
}

fn bodies_of(queue: &crate::adapters::memory::MemoryQueue) -> Vec<String> {
    queue.messages().into_iter().map(|m| m.body).collect()
}

#[tokio::test]
async fn a_snapshot_naming_many_customers_is_split_into_units_on_the_queue() {
    // GIVEN 25 customers and a snapshot naming them all (units of 10)
    let (w, queue) = world_with_queue();
    let ids: Vec<String> = (0..25).map(|i| format!("cus_{i:02}")).collect();
    for id in &ids {
        w.given_a_subscriber(id, &format!("{id}@example.com"), 500);
    }
    let snap = json!({"object": SNAPSHOT_OBJECT, "key": "backfill:customers:r1:p1", "customers": ids}).to_string();
    // WHEN it is consumed
    let r = w.consume(vec![snap.clone()]).await;
    // THEN nothing is reloaded now: three units are queued and the snapshot is done
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert_eq!((w.stripe.reloads(), r.stats.requeued), (0, 3));
    let units = bodies_of(&queue);
    let sizes: Vec<usize> =
        units.iter().map(|b| serde_json::from_str::<Snapshot>(b).unwrap().customers.len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    // WHEN the units are consumed (their 25 contacts are one import, whose
    // check comes back from the queue), and the snapshot comes again
    let done = w.consume(units.clone()).await;
    let checks: Vec<String> =
        queue.take().into_iter().filter(|m| m.event_type == IMPORT_CHECK_OBJECT).map(|m| m.body).collect();
    assert_eq!(checks.len(), 1);
    assert!(outcomes(&w.consume(checks).await).iter().all(|o| **o == Outcome::Done));
    let again = w.consume(vec![snap]).await;
    let units_again = w.consume(units).await;
    // THEN every customer is in Brevo once; the copies are duplicates
    assert!(outcomes(&done).iter().all(|o| **o == Outcome::Done));
    assert_eq!(w.brevo.record().contacts.len(), 25);
    assert_eq!(outcomes(&again), [&Outcome::Duplicate]);
    assert!(outcomes(&units_again).iter().all(|o| **o == Outcome::Duplicate));
    assert_eq!(w.stripe.reloads(), 25);
}

#[tokio::test(start_paused = true)]
async fn near_the_deadline_no_reload_starts_and_the_rest_goes_back_as_copies() {
    // GIVEN 40 events of 40 customers, Stripe taking 3 s per reload, and a
    // deadline 25 s away (half of a budget under 2 × 20 s is kept in reserve:
    // 12.5 s of reloads, 4 at a time, so 5 rounds)
    let (w, queue) = world_with_queue();
    let mut bodies = Vec::new();
    for i in 0..40 {
        let id = format!("cus_{i:02}");
        w.given_a_subscriber(&id, &format!("{id}@example.com"), 500);
        bodies.push(charge_event(&format!("evt_{i:02}"), "charge.refunded", &id));
    }
    w.stripe.set_latency(std::time::Duration::from_secs(3));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(25);
    // WHEN the batch is consumed
    let r = w.consumer.consume_until(&batch(bodies), Some(deadline)).await;
    // THEN it ends before the deadline, what was reloaded is done, the rest
    // is deferred as copies on the queue; nothing is returned as a failure
    assert!(tokio::time::Instant::now() <= deadline);
    let done = outcomes(&r).iter().filter(|o| ***o == Outcome::Done).count();
    let deferred = outcomes(&r).iter().filter(|o| matches!(o, Outcome::Deferred(_))).count();
    assert!((16..=24).contains(&done), "{done} done");
    assert_eq!(done + deferred, 40);
    assert!(r.retry_ids().is_empty());
    assert_eq!(queue.messages().len(), deferred);
    assert_eq!(w.brevo.record().events.len(), done);
    // WHEN the copies are consumed (no deadline)
    let rest = w.consume(bodies_of(&queue)).await;
    // THEN every event was sent exactly once
    assert!(outcomes(&rest).iter().all(|o| **o == Outcome::Done));
    let ids = event_ids(&w.brevo.record());
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (40, 40));
}

#[tokio::test]
async fn a_copy_whose_twin_is_in_progress_elsewhere_is_delayed_not_failed() {
    // GIVEN another worker holding the event's claim, and a queue to put copies on
    let (w, queue) = world_with_queue();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.dedup.claim("evt_1", NOW, NOW + 900, NOW + 86_400).await.unwrap();
    let body = charge_event("evt_1", "charge.refunded", "cus_ada");
    // WHEN its copy is consumed here
    let r = w.consume(vec![body.clone()]).await;
    // THEN it is acknowledged (not a failure that uses up a receive), and a
    // copy waits on the queue
    assert!(matches!(outcomes(&r)[0], Outcome::Deferred(_)), "{:?}", r.outcomes);
    assert!(r.retry_ids().is_empty());
    assert_eq!(bodies_of(&queue), [body]);
    assert_eq!(w.stripe.reloads(), 0);
}

#[tokio::test]
async fn a_cancelled_subscriber_leaves_subscribers_through_a_list_call_not_the_upsert() {
    // GIVEN a subscriber in Brevo's subscribers list
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.consume(vec![charge_event("evt_1", "charge.refunded", "cus_ada")]).await;
    assert!(w.brevo.record().lists[&21].contains("ada@example.com"));
    // WHEN the subscription is cancelled in Stripe and its event arrives
    w.stripe.put(CustomerState {
        customer: Some(customer("cus_ada", Some("ada@example.com"))),
        charges: vec![paid_charge("ch_cus_ada", "cus_ada", 1_000)],
        subscriptions: vec![subscription("sub_cus_ada", "cus_ada", "canceled")],
    });
    let sub = fixture("subscription", json!({"id": "sub_cus_ada", "customer": "cus_ada", "status": "canceled"}));
    let r = w.consume(vec![event("evt_2", "customer.subscription.deleted", NOW - 60, false, sub)]).await;
    // THEN (upserts cannot remove: Brevo's createContact has no unlinkListIds)
    // the contact is out of subscribers and in churned
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    let rec = w.brevo.record();
    assert!(!rec.lists[&21].contains("ada@example.com"), "{:?}", rec.lists);
    assert!(rec.lists[&22].contains("ada@example.com"));
}

#[tokio::test]
async fn contacts_with_an_event_due_are_written_in_real_time_not_by_the_asynchronous_import() {
    // GIVEN an import threshold of 2 and a batch with two events due and a snapshot of two others
    let w = World::with(|s| s.brevo.import_threshold = 2);
    for id in ["cus_a", "cus_b", "cus_c", "cus_d"] {
        w.given_a_subscriber(id, &format!("{id}@example.com"), 700);
    }
    let snap = json!({"object": SNAPSHOT_OBJECT, "key": "backfill:customers:r9:p1", "customers": ["cus_c", "cus_d"]});
    let bodies = vec![invoice_failed("evt_a", "cus_a"), invoice_failed("evt_b", "cus_b"), snap.to_string()];
    // WHEN consumed
    let r = w.consume(bodies).await;
    // THEN the two whose events go out now were upserted, the snapshot's
    // contacts imported; both events sent
    assert!(outcomes(&r).iter().all(|o| **o == Outcome::Done), "{:?}", r.outcomes);
    let rec = w.brevo.record();
    assert_eq!((rec.upserts, rec.imports), (2, 1));
    assert_eq!(rec.events.len(), 2);
}

/// A second consumer instance (another Lambda container) over the same
/// Stripe, Brevo, dedup store and contact ledger as `w`'s.
fn second_instance(w: &World) -> TestConsumer {
    Consumer {
        stripe: w.stripe.clone(),
        brevo: w.brevo.clone(),
        dedup: w.dedup.clone(),
        clock: Arc::new(FixedClock::at(NOW)),
        dead_letters: None,
        status: None,
        requeue: None,
        ledger: w.consumer.ledger.clone(),
        settings: Arc::clone(&w.consumer.settings),
        options: ConsumeOptions::default(),
    }
}

#[tokio::test]
async fn an_unchanged_contact_is_not_resent_but_one_another_instance_wrote_since_always_is() {
    // GIVEN two consumer instances sharing one contact ledger, and a subscriber
    let mut w = World::new();
    w.consumer.ledger = Some(Arc::new(crate::adapters::memory::MemoryLedger::new()) as Arc<dyn ContactLedger>);
    let b = second_instance(&w);
    w.given_a_subscriber("cus_ada", "ada@example.com", 2_000);
    // WHEN instance A applies two events whose reloads give the same contact
    assert_eq!(
        outcomes(&w.consume(vec![charge_event("evt_1", "charge.succeeded", "cus_ada")]).await),
        [&Outcome::Done]
    );
    assert_eq!(outcomes(&w.consume(vec![charge_event("evt_2", "charge.captured", "cus_ada")]).await), [&Outcome::Done]);
    // THEN the second write is skipped, and counted as synced
    assert_eq!(w.brevo.record().upserts, 1, "unchanged since A wrote it");
    // WHEN Stripe changes (S2) and instance B writes it…
    w.given_a_subscriber("cus_ada", "ada@example.com", 5_000);
    assert_eq!(
        outcomes(&b.consume(&batch(vec![charge_event("evt_3", "charge.succeeded", "cus_ada")])).await),
        [&Outcome::Done]
    );
    assert_eq!(w.brevo.record().upserts, 2);
    // …and Stripe's state returns to what A wrote first (S1), seen by A
    w.given_a_subscriber("cus_ada", "ada@example.com", 2_000);
    let r = w.consume(vec![charge_event("evt_4", "charge.refunded", "cus_ada")]).await;
    // THEN A sends it again (a per-container cache would have skipped it,
    // leaving Brevo at B's S2), and Brevo holds the current state
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    let rec = w.brevo.record();
    assert_eq!(rec.upserts, 3, "B's write since makes A's state new again");
    assert_eq!(rec.contacts["ada@example.com"]["TOTAL_SPENT"], crate::domain::brevo::AttributeValue::Number(20.0));
}

#[tokio::test]
async fn without_the_ledger_a_contact_is_not_sent_and_its_message_comes_back() {
    // GIVEN a ledger that is down
    let mut w = World::new();
    let ledger = Arc::new(crate::adapters::memory::MemoryLedger::new());
    ledger.set_down(true);
    w.consumer.ledger = Some(ledger.clone() as Arc<dyn ContactLedger>);
    w.given_a_subscriber("cus_ada", "ada@example.com", 2_000);
    // WHEN an event comes
    let r = w.consume(vec![charge_event("evt_1", "charge.succeeded", "cus_ada")]).await;
    // THEN nothing is written (the ledger could not be kept right), the
    // message is retried, and once the ledger is back it is applied
    assert!(r.outcomes[0].1.is_retry(), "{:?}", r.outcomes);
    assert_eq!(w.brevo.record().upserts, 0);
    ledger.set_down(false);
    let again = w.consume(vec![charge_event("evt_1", "charge.succeeded", "cus_ada")]).await;
    assert_eq!(outcomes(&again), [&Outcome::Done]);
    assert_eq!(w.brevo.record().upserts, 1);
}

#[tokio::test]
async fn a_failed_push_leaves_the_contact_unknown_so_the_next_one_is_sent() {
    // GIVEN a ledger, a subscriber already written, and Brevo failing the next upsert
    let mut w = World::new();
    w.consumer.ledger = Some(Arc::new(crate::adapters::memory::MemoryLedger::new()) as Arc<dyn ContactLedger>);
    w.given_a_subscriber("cus_ada", "ada@example.com", 2_000);
    w.consume(vec![charge_event("evt_1", "charge.succeeded", "cus_ada")]).await;
    w.given_a_subscriber("cus_ada", "ada@example.com", 3_000);
    w.brevo.fail_next(BrevoOp::Upsert, 1, down(Vendor::Brevo));
    // WHEN the changed contact's push fails, then Stripe returns to the first state
    let failed = w.consume(vec![charge_event("evt_2", "charge.succeeded", "cus_ada")]).await;
    assert!(failed.outcomes[0].1.is_retry());
    w.given_a_subscriber("cus_ada", "ada@example.com", 2_000);
    w.consume(vec![charge_event("evt_3", "charge.refunded", "cus_ada")]).await;
    // THEN that state is sent again (Brevo may have applied the failed push)
    assert_eq!(w.brevo.record().upserts, 2, "first write + the one after the failure");
}

fn succeeded_payment(id: &str, customer: &str) -> String {
    let pi = fixture(
        "payment_intent",
        json!({"id": format!("pi_{id}"), "customer": customer, "amount_received": 1099, "status": "succeeded"}),
    );
    event(id, "payment_intent.succeeded", NOW - 60, false, pi)
}

#[tokio::test]
async fn an_order_that_failed_is_retried_without_sending_its_event_again() {
    // GIVEN orders on, and the orders endpoint failing once
    let w = World::with(|s| s.brevo.ecommerce_orders = true);
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.brevo.fail_next(BrevoOp::Order, 1, down(Vendor::Brevo));
    // WHEN the payment's message fails for its order, then comes back
    let first = w.consume(vec![succeeded_payment("evt_pi", "cus_ada")]).await;
    assert!(first.outcomes[0].1.is_retry());
    let again = w.consume(vec![succeeded_payment("evt_pi", "cus_ada")]).await;
    // THEN the retry sends the order, and the event went out once only
    assert_eq!(outcomes(&again), [&Outcome::Done]);
    let rec = w.brevo.record();
    assert_eq!(event_ids(&rec), ["\"evt_pi\""], "the event once");
    assert_eq!(rec.orders.len(), 1);
    assert_eq!(first.stats.events_sent + again.stats.events_sent, 1);
}

#[tokio::test]
async fn after_a_crash_past_sending_the_retaken_message_does_not_send_its_event_again() {
    // GIVEN an attempt that wrote the event's part record, sent it and
    // crashed before completing (its claim on the message has gone stale)
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.dedup.claim("evt_pi", NOW - 1_000, NOW - 100, NOW + 86_400).await.unwrap();
    w.dedup.claim("evt_pi#event", NOW - 1_000, NOW + 86_400, NOW + 86_400).await.unwrap();
    // WHEN the message is redelivered
    let r = w.consume(vec![succeeded_payment("evt_pi", "cus_ada")]).await;
    // THEN the contact is brought up to date and no second event is sent
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    let rec = w.brevo.record();
    assert!(rec.events.is_empty(), "{:?}", rec.events);
    assert_eq!(rec.upserts, 1);
}

#[tokio::test]
async fn an_event_sent_without_an_answer_is_never_sent_again_one_refused_is() {
    // GIVEN Brevo's events call going out unanswered once (a timeout)
    let w = World::new();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    w.given_a_subscriber("cus_bob", "bob@example.com", 1_000);
    w.brevo.fail_next(BrevoOp::Events, 1, down(Vendor::Brevo).unconfirmed());
    // WHEN the message is consumed, and redelivered anyway
    let r = w.consume(vec![succeeded_payment("evt_a", "cus_ada")]).await;
    let again = w.consume(vec![succeeded_payment("evt_a", "cus_ada")]).await;
    // THEN it is done (Brevo may have the event: at most once), never re-sent
    assert_eq!(outcomes(&r), [&Outcome::Done]);
    assert_eq!(outcomes(&again), [&Outcome::Duplicate]);
    assert!(w.brevo.record().events.is_empty());
    // AND an answered failure frees the part: the retry sends it, once
    w.brevo.fail_next(BrevoOp::Events, 1, down(Vendor::Brevo));
    let refused = w.consume(vec![succeeded_payment("evt_b", "cus_bob")]).await;
    assert!(refused.outcomes[0].1.is_retry());
    let retried = w.consume(vec![succeeded_payment("evt_b", "cus_bob")]).await;
    assert_eq!(outcomes(&retried), [&Outcome::Done]);
    assert_eq!(event_ids(&w.brevo.record()), ["\"evt_b\""]);
}

#[tokio::test]
async fn a_copy_says_where_its_message_came_from_even_without_the_attribute() {
    // GIVEN a snapshot and an event delivered without a source attribute,
    // each with its twin in progress elsewhere
    let (w, queue) = world_with_queue();
    w.given_a_subscriber("cus_ada", "ada@example.com", 1_000);
    let snap = json!({"object": SNAPSHOT_OBJECT, "key": "backfill:customers:r2:p1", "customers": ["cus_ada"]});
    w.dedup.claim("snapshot:backfill:customers:r2:p1", NOW, NOW + 900, NOW + 86_400).await.unwrap();
    w.dedup.claim("evt_1", NOW, NOW + 900, NOW + 86_400).await.unwrap();
    let mut messages = batch(vec![snap.to_string(), charge_event("evt_1", "charge.refunded", "cus_ada")]);
    for m in &mut messages {
        m.source = None;
    }
    // WHEN they are consumed
    w.consumer.consume(&messages).await;
    // THEN the snapshot's copy is a backfill's, the event's a webhook's
    let sources: Vec<Source> = queue.messages().iter().map(|m| m.source).collect();
    assert_eq!(sources, [Source::Backfill, Source::Webhook]);
}
