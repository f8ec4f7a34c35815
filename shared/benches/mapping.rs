//! Mapping throughput, in-process, no I/O: per event, parse the envelope
//! (`parse_envelope` + `ObjectRef::parse`, as the consumer does), compute the
//! customer's metrics, map the contact and build the Brevo event.
//!
//! The customer state is realistic: 5 charges (one partially refunded, one in
//! EUR converted through its balance transaction, one failed) and 2
//! subscriptions (an active monthly one, a canceled yearly one), built from
//! Stripe's own example objects (`sandbox/fixtures/stripe_fixtures.json`).
//! Run: `cargo bench -p shared --bench mapping` (prints events/s at the end).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use serde_json::{json, Value};
use shared::domain::event::parse_envelope;
use shared::domain::mapping::{build_brevo_event, map_contact, ContactOutcome, EventDecision};
use shared::domain::metrics::compute_metrics;
use shared::domain::stripe::{Charge, Customer, ObjectRef, Subscription};
use shared::settings::StripeSettings;

const FIXTURES: &str = include_str!("../../sandbox/fixtures/stripe_fixtures.json");
const NOW: i64 = 1_763_800_000;

fn fixture(all: &Value, name: &str) -> Value {
    all["resources"][name].clone()
}

/// JSON merge: objects merge key by key, anything else replaces.
fn merge(base: Value, patch: Value) -> Value {
    match (base, patch) {
        (Value::Object(mut b), Value::Object(p)) => {
            for (k, v) in p {
                let cur = b.remove(&k).unwrap_or(Value::Null);
                b.insert(k, merge(cur, v));
            }
            Value::Object(b)
        }
        (_, p) => p,
    }
}

struct State {
    customer: Customer,
    charges: Vec<Charge>,
    subscriptions: Vec<Subscription>,
    event_body: Vec<u8>,
}

fn state() -> State {
    let all: Value = serde_json::from_str(FIXTURES).expect("fixtures parse");
    let cus = "cus_Bench0001";
    let t0 = NOW - 200 * 86_400;
    let customer = merge(
        fixture(&all, "customer"),
        json!({"id": cus, "email": "Ada.Lovelace@Example.com", "name": "Ada Lovelace", "phone": "+1 (415) 555-0100",
               "created": t0, "livemode": false, "metadata": {"customer_tier": "gold"}}),
    );
    let charge = |id: &str, amount: i64, currency: &str, created: i64, rate: Option<f64>| {
        let settled = match rate {
            Some(r) => ((amount as f64 / 100.0) * r * 100.0).round() as i64,
            None => amount,
        };
        let txn = merge(
            fixture(&all, "balance_transaction"),
            json!({"id": format!("txn_{id}"), "amount": settled, "currency": "usd", "exchange_rate": rate,
                   "created": created, "fee": settled * 29 / 1000 + 30, "net": settled - (settled * 29 / 1000 + 30),
                   "source": id}),
        );
        merge(
            fixture(&all, "charge"),
            json!({"id": id, "customer": cus, "amount": amount, "amount_captured": amount, "amount_refunded": 0,
                   "currency": currency, "created": created, "captured": true, "paid": true, "refunded": false,
                   "status": "succeeded", "balance_transaction": txn, "livemode": false}),
        )
    };
    let mut charges = vec![
        charge("ch_Bench1", 4_900, "usd", t0 + 3_600, None),
        charge("ch_Bench2", 12_000, "eur", t0 + 20 * 86_400, Some(1.08)),
        merge(charge("ch_Bench3", 7_500, "usd", t0 + 40 * 86_400, None), json!({"amount_refunded": 2_500})),
        charge("ch_Bench4", 29_000, "usd", t0 + 60 * 86_400, None),
        merge(
            charge("ch_Bench5", 1_500, "usd", t0 + 80 * 86_400, None),
            json!({"status": "failed", "paid": false, "captured": false, "amount_captured": 0,
                   "balance_transaction": null, "failure_code": "card_declined"}),
        ),
    ];
    charges[0]["payment_method_details"] = json!({"type": "klarna", "klarna": {}});

    let sub = |id: &str, price: Value, status: &str, created: i64| {
        let mut item = merge(
            fixture(&all, "subscription_item"),
            json!({"id": format!("si_{id}"), "created": created, "quantity": 2, "subscription": id,
                   "current_period_start": created, "current_period_end": created + 30 * 86_400}),
        );
        item["price"] = price;
        let mut s = merge(
            fixture(&all, "subscription"),
            json!({"id": id, "customer": cus, "status": status, "created": created, "start_date": created,
                   "currency": "usd", "cancel_at_period_end": false, "livemode": false,
                   "canceled_at": if status == "canceled" { json!(created + 60 * 86_400) } else { Value::Null },
                   "ended_at": if status == "canceled" { json!(created + 60 * 86_400) } else { Value::Null }}),
        );
        s["items"] = json!({"object": "list", "data": [item], "has_more": false, "total_count": 1});
        s
    };
    let price = |id: &str, amount: i64, interval: &str, product: &str| {
        let mut p = merge(
            fixture(&all, "price"),
            json!({"id": id, "unit_amount": amount, "unit_amount_decimal": amount.to_string(), "currency": "usd",
                   "type": "recurring", "livemode": false}),
        );
        p["recurring"] = json!({"interval": interval, "interval_count": 1, "usage_type": "licensed"});
        p["product"] = merge(fixture(&all, "product"), json!({"id": format!("prod_{id}"), "name": product}));
        p
    };
    let subscriptions = vec![
        sub("sub_Bench1", price("price_BenchMonthly", 2_900, "month", "Pro"), "active", t0 + 60 * 86_400),
        sub("sub_Bench2", price("price_BenchYearly", 29_000, "year", "Team"), "canceled", t0 + 10 * 86_400),
    ];

    let pi = merge(
        fixture(&all, "payment_intent"),
        json!({"id": "pi_Bench1", "customer": cus, "amount": 4_900, "amount_received": 4_900, "currency": "usd",
               "status": "succeeded", "created": NOW - 5, "livemode": false, "latest_charge": "ch_Bench1"}),
    );
    let mut event = merge(
        fixture(&all, "event"),
        json!({"id": "evt_1BenchMapping000001", "type": "payment_intent.succeeded", "created": NOW - 5,
               "livemode": false, "api_version": "2024-06-20", "pending_webhooks": 1,
               "request": {"id": null, "idempotency_key": null}}),
    );
    event["data"] = json!({ "object": pi });

    State {
        customer: serde_json::from_value(customer).expect("customer"),
        charges: charges.into_iter().map(|c| serde_json::from_value(c).expect("charge")).collect(),
        subscriptions: subscriptions.into_iter().map(|s| serde_json::from_value(s).expect("subscription")).collect(),
        event_body: serde_json::to_vec(&event).expect("serialises"),
    }
}

/// One event through the pure part of the consumer.
fn one_event(st: &State, settings: &StripeSettings) -> usize {
    let env = parse_envelope(&st.event_body).expect("event");
    let object_json = env.object.map(|o| o.get()).unwrap_or_default();
    let r = ObjectRef::parse(&env.event_type, object_json).expect("object");
    let metrics = compute_metrics(&st.charges, &st.subscriptions, &settings.reporting_currency);
    let ContactOutcome::Contact { update, .. } = map_contact(&st.customer, &metrics, settings) else {
        panic!("the customer maps to a contact");
    };
    debug_assert_eq!(r.customer_id.as_deref(), Some(st.customer.id.as_str()));
    match build_brevo_event(&env.id, &env.event_type, env.created, object_json, &update.email, settings, NOW) {
        EventDecision::Send(ev) => update.attributes.len() + usize::from(!ev.event_name.is_empty()),
        other => panic!("event not sent: {other:?}"),
    }
}

fn main() {
    let st = state();
    let mut settings = StripeSettings::default();
    settings.lists.all_customers = Some(20);
    settings.lists.subscribers = Some(21);
    settings.lists.churned = Some(22);

    // Sanity: the state is what the doc says.
    let m = compute_metrics(&st.charges, &st.subscriptions, "usd");
    println!(
        "state: {} charges, {} subscriptions, event body {} B; metrics: payment_count={} total_spent={:?} mrr={:?}",
        st.charges.len(),
        st.subscriptions.len(),
        st.event_body.len(),
        m.payment_count,
        m.total_spent,
        m.mrr
    );

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("mapping");
        g.throughput(Throughput::Elements(1));
        g.bench_function("parse_envelope", |b| {
            b.iter(|| parse_envelope(black_box(&st.event_body)).expect("event").created)
        });
        g.bench_function("compute_metrics", |b| {
            b.iter(|| compute_metrics(black_box(&st.charges), black_box(&st.subscriptions), "usd").payment_count)
        });
        g.bench_function("map_contact", |b| b.iter(|| map_contact(black_box(&st.customer), black_box(&m), &settings)));
        g.bench_function("event_end_to_end", |b| b.iter(|| one_event(black_box(&st), &settings)));
        g.finish();
    }
    c.final_summary();

    // A plain timed loop on this thread for the headline figure.
    let n = 200_000u32;
    for _ in 0..10_000 {
        black_box(one_event(&st, &settings));
    }
    let t = Instant::now();
    for _ in 0..n {
        black_box(one_event(black_box(&st), &settings));
    }
    let el = t.elapsed();
    let per_sec = f64::from(n) / el.as_secs_f64();
    println!(
        "MAPPING: {n} events in {:.3} s on one thread = {:.0} events/s ({:.2} µs/event); target >= 50000 events/s: {}",
        el.as_secs_f64(),
        per_sec,
        el.as_secs_f64() * 1e6 / f64::from(n),
        if per_sec >= 50_000.0 { "MET" } else { "MISSED" }
    );
}
