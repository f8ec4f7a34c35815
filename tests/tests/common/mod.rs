//! Shared set-up of the end-to-end consumer tests and the soak test:
//! sandboxes, the real consumer over moto, an SQS drain that plays Lambda's
//! event source mapping, and a per-customer story of Stripe events; the
//! soak's data set and expected state in [`soak_data`].
#![allow(dead_code)]

pub mod soak_data;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use e2e_tests::{aws, create_queue, unique};
use sandbox::brevo::{BrevoSandbox, BrevoSandboxOptions};
use sandbox::stripe::{Seed, StripeSandbox, StripeSandboxOptions};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::brevo::{BrevoClient, BrevoConfig, BrevoLimits};
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::http::Backoff;
use shared::adapters::stripe::StripeReader;
use shared::adapters::stripe::{RetryPolicy, StripeClient};
use shared::domain::mapping::{map_contact, ContactOutcome};
use shared::domain::metrics::compute_metrics;
use shared::domain::stripe::{Charge, Customer, Subscription};
use shared::pipeline::consume::{ConsumeOptions, Consumer};
use shared::ports::{QueueMessage, Source, SystemClock};
use shared::settings::Settings;

pub type App = Consumer<StripeReader, BrevoClient, DynamoIdempotency, SystemClock>;

pub struct World {
    pub stripe: StripeSandbox,
    pub brevo: BrevoSandbox,
    pub app: App,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub now: i64,
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

pub async fn world() -> World {
    let stripe = StripeSandbox::start(StripeSandboxOptions::default()).await.expect("stripe sandbox");
    let brevo = BrevoSandbox::start(BrevoSandboxOptions::default()).await.expect("brevo sandbox");
    let key = stripe_key();
    let client = StripeClient::builder(stripe.base_url(), SecretString::from(key))
        .retry_policy(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
        })
        .requests_per_second(None)
        .build()
        .expect("stripe client");
    let mut cfg = BrevoConfig::new(brevo.base_url(), SecretString::from(brevo.api_key()));
    cfg.backoff = Backoff { base: Duration::from_millis(5), cap: Duration::from_millis(20), max_attempts: 3 };
    cfg.limits = BrevoLimits::unlimited();
    cfg.rate_limit_wait_min = Duration::from_millis(10);
    cfg.rate_limit_wait_max = Duration::from_millis(50);
    let mut settings = Settings::default();
    settings.stripe.lists.all_customers = Some(20);
    settings.stripe.lists.subscribers = Some(21);
    settings.stripe.lists.churned = Some(22);
    settings.brevo.import_threshold = 1_000; // real-time upserts in these tests
                                             // Where imports are used (the soak, followed in place), their outcome is
                                             // looked at after 250 ms (the sandbox applies them after 100 ms), not
                                             // the deployed 60 s.
    settings.brevo.import_check_delay = Duration::from_millis(250);
    let aws = aws().await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let table = unique("dedup");
    DynamoIdempotency::create_table(&ddb, &table).await.expect("dedup table");
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue_url = create_queue(&aws, &unique("events")).await;
    let app = Consumer {
        stripe: StripeReader::new(client),
        brevo: BrevoClient::new(cfg).expect("brevo client"),
        dedup: DynamoIdempotency::new(ddb, table),
        clock: SystemClock,
        dead_letters: None,
        status: None,
        requeue: None,
        ledger: None,
        settings: Arc::new(settings),
        options: ConsumeOptions::default(),
    };
    World { stripe, brevo, app, sqs, queue_url, now: now() }
}

pub fn stripe_key() -> String {
    StripeSandboxOptions::default().secret_keys.first().cloned().expect("a sandbox key")
}

/// Seeds `n` customers: each with a monthly plan subscription and payments.
pub fn seed(w: &World, n: usize) {
    let t0 = w.now - 90 * 86_400;
    w.stripe.insert("products", Seed::product("prod_gold", "Gold plan", t0));
    let price = Seed::price("price_gold", "prod_gold", 1_500, "usd", Some(("month", 1)), t0);
    w.stripe.insert("prices", price.clone());
    for i in 0..n {
        let cid = format!("cus_e2e{i:03}");
        let email = format!("Customer.{i}@Example.com");
        w.stripe.insert(
            "customers",
            Seed::customer_full(
                &cid,
                Some(&email),
                Some(&format!("Cust Omer{i}")),
                Some(&format!("+1 415 555 {:04}", 100 + i)),
                t0,
            ),
        );
        w.stripe
            .insert("subscriptions", Seed::subscription(&format!("sub_e2e{i:03}"), &cid, &price, 1, "active", t0 + 10));
        w.stripe.insert_charge(Seed::charge(&format!("ch_e2e{i:03}a"), Some(&cid), 1_500, "usd", t0 + 20), None);
    }
}

/// Events for customer `i`, while Stripe moves on to its final state.
pub fn story(w: &World, i: usize, events: &mut Vec<Value>) {
    let cid = format!("cus_e2e{i:03}");
    let t = w.now - 600 + (i as i64);
    let mut ev = |id: String, etype: &str, object: Value, created: i64| {
        events.push(Seed::event(&id, etype, object, created, false));
    };
    let ch2 = Seed::charge(&format!("ch_e2e{i:03}b"), Some(&cid), 2_500 + i as i64, "usd", t);
    w.stripe.insert_charge(ch2.clone(), None);
    ev(format!("evt_e2e{i:03}_1"), "charge.succeeded", ch2.clone(), t);
    let pi = json!({"id": format!("pi_e2e{i:03}"), "object": "payment_intent", "customer": cid, "amount": 2_500 + i as i64, "amount_received": 2_500 + i as i64, "currency": "usd", "status": "succeeded", "created": t});
    ev(format!("evt_e2e{i:03}_2"), "payment_intent.succeeded", pi, t + 1);
    if i % 3 == 0 {
        w.stripe.refund_charge(&format!("ch_e2e{i:03}b"), 1_000);
        let refunded = w.stripe.get("charges", &format!("ch_e2e{i:03}b")).expect("charge");
        ev(format!("evt_e2e{i:03}_3"), "charge.refunded", refunded, t + 2);
    }
    if i % 4 == 1 {
        w.stripe.update(
            "subscriptions",
            &format!("sub_e2e{i:03}"),
            json!({"status": "canceled", "canceled_at": t + 3, "ended_at": t + 3}),
        );
        let sub = w.stripe.get("subscriptions", &format!("sub_e2e{i:03}")).expect("sub");
        ev(format!("evt_e2e{i:03}_4"), "customer.subscription.deleted", sub, t + 3);
    }
    w.stripe.update("customers", &cid, json!({"name": format!("Final Name{i}"), "metadata": {"customer_tier": "vip"}}));
    let cus = w.stripe.get("customers", &cid).expect("customer");
    ev(format!("evt_e2e{i:03}_5"), "customer.updated", cus, t + 4);
}

pub fn message(ev: &Value) -> QueueMessage {
    QueueMessage {
        body: ev.to_string(),
        event_id: ev["id"].as_str().expect("id").to_owned(),
        event_type: ev["type"].as_str().expect("type").to_owned(),
        livemode: Some(false),
        source: Source::Webhook,
    }
}

/// Plays Lambda's event source mapping: receive up to 10, invoke the handler,
/// delete what succeeded, make failures visible again. Returns (invocations,
/// failures reported).
pub async fn drain(w: &World, max_rounds: usize) -> (usize, usize) {
    let (mut invocations, mut failures) = (0, 0);
    let mut empty_rounds = 0;
    for _ in 0..max_rounds {
        let got = w
            .sqs
            .receive_message()
            .queue_url(&w.queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .expect("receive");
        let msgs = got.messages();
        if msgs.is_empty() {
            empty_rounds += 1;
            if empty_rounds >= 2 {
                break;
            }
            continue;
        }
        empty_rounds = 0;
        let records: Vec<Value> = msgs
            .iter()
            .map(|m| {
                let attrs: serde_json::Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.clone(), json!({"stringValue": v.string_value(), "dataType": "String"})))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                       "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": attrs,
                       "eventSource": "aws:sqs"})
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({"Records": records})).expect("SqsEvent");
        let resp = stripe_to_brevo::handle(&w.app, event).await;
        invocations += 1;
        let failed: BTreeSet<String> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        failures += failed.len();
        for m in msgs {
            let id = m.message_id().expect("id").to_owned();
            let handle = m.receipt_handle().expect("handle");
            if failed.contains(&id) {
                w.sqs
                    .change_message_visibility()
                    .queue_url(&w.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .expect("visibility");
            } else {
                w.sqs.delete_message().queue_url(&w.queue_url).receipt_handle(handle).send().await.expect("delete");
            }
        }
    }
    (invocations, failures)
}

/// Waits until the queue holds nothing, visible, in flight or delayed,
/// draining it; returns the batch item failures reported meanwhile.
pub async fn drain_all(w: &World, limit: Duration) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as N;
    let start = std::time::Instant::now();
    let mut failures = 0;
    loop {
        let (_, f) = drain(w, 10_000).await;
        failures += f;
        let attrs = w
            .sqs
            .get_queue_attributes()
            .queue_url(&w.queue_url)
            .attribute_names(N::All)
            .send()
            .await
            .expect("attributes");
        let a = attrs.attributes().cloned().unwrap_or_default();
        let n = |k: N| a.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let left = n(N::ApproximateNumberOfMessages)
            + n(N::ApproximateNumberOfMessagesNotVisible)
            + n(N::ApproximateNumberOfMessagesDelayed);
        if left == 0 {
            return failures;
        }
        assert!(start.elapsed() < limit, "queue not empty after {limit:?}: {left} left");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The contact computed directly from the sandbox's final Stripe objects.
pub fn expected(w: &World, settings: &Settings, cid: &str) -> Option<shared::domain::brevo::ContactUpdate> {
    let customer: Customer = serde_json::from_value(w.stripe.get("customers", cid)?).expect("customer");
    let charges: Vec<Charge> = (0..2)
        .filter_map(|k| w.stripe.get("charges", &format!("ch_{}{}", &cid[4..], if k == 0 { "a" } else { "b" })))
        .map(|c| serde_json::from_value(c).expect("charge"))
        .collect();
    let mut sub = w.stripe.get("subscriptions", &format!("sub_{}", &cid[4..]))?;
    sub["items"]["data"][0]["price"]["product"] = json!({"id": "prod_gold", "object": "product", "name": "Gold plan"});
    let subs: Vec<Subscription> = vec![serde_json::from_value(sub).expect("sub")];
    let metrics = compute_metrics(&charges, &subs, "usd");
    match map_contact(&customer, &metrics, &settings.stripe) {
        ContactOutcome::Contact { update, .. } => Some(update),
        _ => None,
    }
}
