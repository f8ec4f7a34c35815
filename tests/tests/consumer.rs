//! The consumer end to end: Stripe events through a moto SQS queue into the
//! real `stripe-to-brevo` handler (SqsEvent → SqsBatchResponse), with the
//! DynamoDB idempotency table on moto and the sandbox Stripe and Brevo
//! servers. Checks convergence to the state computed from the final Stripe
//! data whatever the order and duplication, at most one Brevo event per Stripe
//! event, and partial batch failures while Brevo's server or DynamoDB (a moto
//! process killed and restarted) is down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::common::*;
use aws_lambda_events::event::sqs::SqsEvent;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sandbox::brevo::{Family, Fault};
use sandbox::stripe::Seed;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::sqs::SqsQueue;
use shared::ports::{EventQueue, QueueMessage, Source};

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn a_shuffled_duplicated_stream_converges_to_the_final_stripe_state_with_each_event_sent_once() {
    let w = world().await;
    let n = 12;
    seed(&w, n);
    let mut events = Vec::new();
    for i in 0..n {
        story(&w, i, &mut events);
    }
    // 25% duplicates (webhook + poller copies, Stripe retries), then shuffle.
    let mut stream: Vec<Value> = events.clone();
    stream.extend(events.iter().step_by(4).cloned());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    stream.shuffle(&mut rng);
    let queue = SqsQueue::new(w.sqs.clone(), w.queue_url.clone());
    queue.send_all(&stream.iter().map(message).collect::<Vec<_>>()).await.expect("queued");

    // Both vendors misbehave: Stripe 429s and 500s, Brevo 429s (with the
    // x-sib-ratelimit headers) and 503s, and slow answers.
    w.stripe.set_error_rates(0.08, 0.04);
    w.brevo.fail_randomly(Family::Contacts, 0.08, Fault::RateLimited);
    w.brevo.fail_randomly(Family::Events, 0.08, Fault::Status(503));
    let (invocations, _failures) = drain(&w, 200).await;
    assert!(invocations >= stream.len() / 10, "the queue was consumed in batches");
    w.stripe.clear_faults();
    w.brevo.reset_faults();
    drain(&w, 60).await; // anything still invisible-then-visible is finished

    let settings = w.app.settings.clone();
    for i in 0..n {
        let cid = format!("cus_e2e{i:03}");
        let want = expected(&w, &settings, &cid).expect("mapped");
        let got = w.brevo.contact(&want.email).unwrap_or_else(|| panic!("{cid} pushed"));
        for (k, v) in &want.attributes {
            let g = got.attributes.get(k).unwrap_or_else(|| panic!("{cid}: attribute {k} missing"));
            assert_eq!(&serde_json::to_value(v).expect("value"), g, "{cid}: {k}");
        }
        let lists: BTreeSet<i64> = want.list_ids.iter().copied().collect();
        assert_eq!(got.list_ids, lists, "{cid}: lists");
        for l in &want.unlink_list_ids {
            assert!(!got.list_ids.contains(l), "{cid}: still in list {l}");
        }
    }
    // Canceled → churned, never subscribers; refunds lower LTV.
    let c1 = w.brevo.contact("customer.1@example.com").expect("c1");
    assert!(c1.list_ids.contains(&22) && !c1.list_ids.contains(&21));
    let c0 = w.brevo.contact("customer.0@example.com").expect("c0");
    assert_eq!(c0.attributes.get("LTV"), Some(&json!(30.0)), "15.00 + 25.00 − 10.00 refunded");
    assert_eq!(c0.attributes.get("TOTAL_SPENT"), Some(&json!(40.0)));

    // Every configured event exactly once, keyed by its Stripe id.
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for e in w.brevo.events() {
        let id = e.event_properties.get("stripe_event_id").and_then(Value::as_str).expect("stripe_event_id").to_owned();
        *per_id.entry(id).or_default() += 1;
    }
    let forwarded: BTreeSet<String> = events
        .iter()
        .filter(|e| w.app.settings.stripe.sends_event(e["type"].as_str().expect("type")))
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(!forwarded.is_empty());
    for id in &forwarded {
        assert_eq!(per_id.get(id), Some(&1), "{id} sent exactly once");
    }
    assert_eq!(per_id.len(), forwarded.len(), "nothing else was sent");
    let names: BTreeMap<String, usize> = w.brevo.events().iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e.event_name.clone()).or_default() += 1;
        m
    });
    assert!(names.contains_key("stripe_payment_intent_succeeded"), "{names:?}");
    assert!(names.keys().all(|n| n.starts_with("stripe_") && !n.contains('.')), "{names:?}");

    // A redelivery of everything afterwards sends nothing new.
    let before = w.brevo.events().len();
    queue.send_all(&events.iter().map(message).collect::<Vec<_>>()).await.expect("queued");
    drain(&w, 60).await;
    assert_eq!(w.brevo.events().len(), before, "duplicates send no Brevo event");
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn a_brevo_events_outage_fails_only_the_affected_messages_and_a_retry_completes_them() {
    let w = world().await;
    seed(&w, 4);
    let mut events = Vec::new();
    for i in 0..4 {
        story(&w, i, &mut events);
    }
    let forwarded: usize =
        events.iter().filter(|e| w.app.settings.stripe.sends_event(e["type"].as_str().expect("t"))).count();
    let not_forwarded = events.len() - forwarded;
    assert!(forwarded > 0 && not_forwarded > 0);
    // Brevo's events endpoint is down (longer than the client's retries).
    w.brevo.fail_next(Family::Events, 1_000, Fault::Status(503));
    let batch: Vec<Value> = events.iter().take(10).cloned().collect();
    let records: Vec<Value> = batch
        .iter()
        .enumerate()
        .map(|(k, e)| json!({"messageId": format!("m{k}"), "body": e.to_string(), "attributes": {}, "messageAttributes": {}}))
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).expect("SqsEvent");
    let resp = stripe_to_brevo::handle(&w.app, event.clone()).await;
    let failed: BTreeSet<String> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    let expect_failed: BTreeSet<String> = batch
        .iter()
        .enumerate()
        .filter(|(_, e)| w.app.settings.stripe.sends_event(e["type"].as_str().expect("t")))
        .map(|(k, _)| format!("m{k}"))
        .collect();
    assert_eq!(failed, expect_failed, "exactly the messages whose Brevo event could not be sent");
    assert!(w.brevo.events().is_empty());
    assert!(w.brevo.contact("customer.0@example.com").is_some(), "contacts still went through");

    // Recovery: the retried messages go through; the others are duplicates now.
    w.brevo.reset_faults();
    let resp = stripe_to_brevo::handle(&w.app, event).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(w.brevo.events().len(), expect_failed.len(), "each sent once after recovery");
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn malformed_hostile_and_stale_messages_never_fail_the_batch_or_reach_brevo() {
    let w = world().await;
    seed(&w, 1);
    let stale = Seed::event(
        "evt_stale_1",
        "payment_intent.payment_failed",
        json!({"id": "pi_x", "object": "payment_intent", "customer": "cus_e2e000", "amount": 500, "currency": "usd"}),
        w.now - 3 * 86_400,
        false,
    );
    let live = Seed::event(
        "evt_live_1",
        "payment_intent.payment_failed",
        json!({"id": "pi_y", "object": "payment_intent", "customer": "cus_e2e000", "amount": 500, "currency": "usd"}),
        w.now,
        true,
    );
    let records = vec![
        json!({"messageId": "bad-json", "body": "{not json", "attributes": {}, "messageAttributes": {}}),
        json!({"messageId": "not-event", "body": "{\"id\":\"cus_1\",\"object\":\"customer\"}", "attributes": {}, "messageAttributes": {}}),
        json!({"messageId": "", "body": stale.to_string(), "attributes": {}, "messageAttributes": {}}),
        json!({"messageId": "live", "body": live.to_string(), "attributes": {}, "messageAttributes": {}}),
        json!({"messageId": "stale", "body": stale.to_string(), "attributes": {}, "messageAttributes": {}}),
    ];
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).expect("SqsEvent");
    let resp = stripe_to_brevo::handle(&w.app, event).await;
    let failed: BTreeSet<String> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    // No DLQ wired in this test: permanent failures are returned so the
    // queue's redrive policy moves them to the DLQ; never an empty id.
    assert_eq!(failed, BTreeSet::from(["bad-json".to_owned(), "not-event".to_owned()]));
    assert!(
        w.brevo.events().is_empty(),
        "stale events update the contact but send no event; livemode mismatch is ignored"
    );
    assert!(w.brevo.contact("customer.0@example.com").is_some(), "the stale event still updated the contact");
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn a_renamed_product_reaches_every_subscriber_and_orders_are_sent_when_enabled() {
    let mut w = world().await;
    seed(&w, 3);
    let mut settings = (*w.app.settings).clone();
    settings.brevo.ecommerce_orders = true;
    w.app.settings = Arc::new(settings);
    // First sync everyone (snapshot), then rename the product.
    let snap = json!({"object": "stripe_brevo.snapshot", "key": "t:1", "customers": ["cus_e2e000", "cus_e2e001", "cus_e2e002"]});
    let ev = |id: &str, body: Value| json!({"messageId": id, "body": body.to_string(), "attributes": {}, "messageAttributes": {}});
    let event: SqsEvent = serde_json::from_value(json!({"Records": [ev("s1", snap)]})).expect("SqsEvent");
    assert!(stripe_to_brevo::handle(&w.app, event).await.batch_item_failures.is_empty());
    assert_eq!(
        w.brevo.contact("customer.2@example.com").expect("c2").attributes.get("PLAN_NAME"),
        Some(&json!("Gold plan"))
    );

    w.stripe.update("products", "prod_gold", json!({"name": "Platinum plan"}));
    let renamed = Seed::event(
        "evt_prod_1",
        "product.updated",
        w.stripe.get("products", "prod_gold").expect("product"),
        w.now,
        false,
    );
    let pi = json!({"id": "pi_order_1", "object": "payment_intent", "customer": "cus_e2e001", "amount": 4_200, "amount_received": 4_200, "currency": "usd", "status": "succeeded", "created": w.now});
    let paid = Seed::event("evt_pi_order_1", "payment_intent.succeeded", pi, w.now, false);
    let event: SqsEvent =
        serde_json::from_value(json!({"Records": [ev("p1", renamed), ev("o1", paid)]})).expect("SqsEvent");
    assert!(stripe_to_brevo::handle(&w.app, event).await.batch_item_failures.is_empty());
    for i in 0..3 {
        let c = w.brevo.contact(&format!("customer.{i}@example.com")).expect("contact");
        assert_eq!(c.attributes.get("PLAN_NAME"), Some(&json!("Platinum plan")), "customer {i}");
    }
    let orders = w.brevo.orders();
    let order = orders.get("pi_order_1").expect("order sent");
    assert_eq!(order["amount"], json!(42.0));
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn no_key_secret_or_raw_email_reaches_any_log_line_at_any_level() {
    use shared::adapters::memory::{FixedClock, MemoryQueue};
    use shared::domain::signature::{sign_header, Verifier};
    use shared::pipeline::ingest::{Ingest, WebhookRequest};
    use tracing::instrument::WithSubscriber;

    let mut w = world().await;
    let mut settings = (*w.app.settings).clone();
    settings.stripe.debug = true; // the most verbose per-event logging
    w.app.settings = Arc::new(settings);
    let n = 6;
    seed(&w, n);
    let mut events = Vec::new();
    for i in 0..n {
        story(&w, i, &mut events);
    }
    let logs = e2e_tests::LogCapture::default();
    let webhook_secret = "whsec_log_hygiene_secret_value";
    let scenario = async {
        // Webhooks: good, forged, stale, garbage.
        let ingest = Ingest::new(
            Verifier::new(vec![SecretString::from(webhook_secret.to_owned())], 300),
            MemoryQueue::new(),
            FixedClock::at(w.now),
        );
        for ev in &events {
            let body = ev.to_string();
            let sig = sign_header(&[webhook_secret], w.now, body.as_bytes());
            ingest.handle(WebhookRequest { method: "POST", signature: Some(&sig), body: body.as_bytes() }).await;
            let stale = sign_header(&[webhook_secret], w.now - 1_000, body.as_bytes());
            ingest.handle(WebhookRequest { method: "POST", signature: Some(&stale), body: body.as_bytes() }).await;
            ingest.handle(WebhookRequest { method: "POST", signature: Some("t=1,v1=00"), body: body.as_bytes() }).await;
        }
        ingest
            .handle(WebhookRequest {
                method: "POST",
                signature: Some("garbage"),
                body: b"{\"email\":\"customer.1@example.com\"",
            })
            .await;
        // Consumer under faults, so error and retry paths log too.
        w.stripe.set_error_rates(0.1, 0.05);
        w.brevo.fail_randomly(Family::Contacts, 0.1, Fault::RateLimited);
        w.brevo.fail_randomly(Family::Events, 0.1, Fault::Status(503));
        let queue = SqsQueue::new(w.sqs.clone(), w.queue_url.clone());
        queue.send_all(&ingest.queue.messages()).await.expect("queued");
        queue
            .send_all(&[QueueMessage {
                body: "{\"email\":\"customer.2@example.com\"}".into(),
                event_id: "x".into(),
                event_type: "x".into(),
                livemode: None,
                source: Source::Webhook,
            }])
            .await
            .expect("queued");
        drain(&w, 200).await;
        w.stripe.clear_faults();
        w.brevo.reset_faults();
        drain(&w, 60).await;
    };
    scenario.with_subscriber(logs.subscriber()).await;
    let text = logs.text();
    assert!(text.lines().count() > 20, "the scenario logged: {} lines", text.lines().count());
    assert!(text.contains("***@"), "addresses appear only redacted");
    let stripe_key = stripe_key();
    for secret in [stripe_key.as_str(), w.brevo.api_key().as_str(), webhook_secret] {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
    for i in 0..n {
        let email = format!("customer.{i}@example.com");
        let leak = text.lines().find(|l| l.to_lowercase().contains(&email));
        assert!(
            leak.is_none(),
            "raw e-mail {email} reached the logs: {}",
            leak.unwrap_or_default().chars().take(400).collect::<String>()
        );
    }
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL) and the venv's moto_server: run scripts/test"]
async fn a_dynamodb_outage_returns_every_message_and_nothing_is_lost_or_applied_twice() {
    let mut w = world().await;
    seed(&w, 3);
    let mut events = Vec::new();
    for i in 0..3 {
        story(&w, i, &mut events);
    }
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(k, e)| json!({"messageId": format!("m{k}"), "body": e.to_string(), "attributes": {}, "messageAttributes": {}}))
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).expect("SqsEvent");
    // The dedup table lives on a moto process of this test's own, which is killed.
    let mut moto = e2e_tests::MotoProcess::start();
    let ddb = aws_sdk_dynamodb::Client::new(&moto.aws().await);
    let table = e2e_tests::unique("dedup-outage");
    DynamoIdempotency::create_table(&ddb, &table).await.expect("dedup table");
    w.app.dedup = DynamoIdempotency::new(ddb.clone(), table.clone());
    moto.stop();
    let resp = stripe_to_brevo::handle(&w.app, event.clone()).await;
    assert_eq!(resp.batch_item_failures.len(), events.len(), "every message comes back");
    assert!(w.brevo.events().is_empty() && w.brevo.contacts().is_empty(), "nothing applied without a claim");
    // DynamoDB is back (moto restarts empty; nothing had been claimed): each
    // event is applied once, and a second delivery is a duplicate.
    moto.restart();
    DynamoIdempotency::create_table(&ddb, &table).await.expect("dedup table again");
    assert!(stripe_to_brevo::handle(&w.app, event.clone()).await.batch_item_failures.is_empty());
    let sent = w.brevo.events().len();
    assert!(sent > 0);
    assert!(stripe_to_brevo::handle(&w.app, event).await.batch_item_failures.is_empty());
    assert_eq!(w.brevo.events().len(), sent, "no event applied twice");
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn a_full_brevo_outage_returns_the_batch_and_it_goes_through_after_recovery() {
    let mut w = world().await;
    seed(&w, 2);
    let mut events = Vec::new();
    for i in 0..2 {
        story(&w, i, &mut events);
    }
    let queue = SqsQueue::new(w.sqs.clone(), w.queue_url.clone());
    queue.send_all(&events.iter().map(message).collect::<Vec<_>>()).await.expect("queued");
    // Brevo's server is stopped (connections refused) for several batches.
    w.brevo.stop().await;
    let (_, failures) = drain(&w, 3).await;
    assert!(failures >= events.len(), "the whole batch came back at least once");
    w.brevo.restart().await.expect("Brevo sandbox restarts on its port");
    assert!(w.brevo.events().is_empty() && w.brevo.contacts().is_empty(), "nothing reached Brevo while it was down");
    drain(&w, 60).await;
    let forwarded = events.iter().filter(|e| w.app.settings.stripe.sends_event(e["type"].as_str().expect("t"))).count();
    assert_eq!(w.brevo.events().len(), forwarded, "each forwarded event exactly once after recovery");
    assert_eq!(w.brevo.contacts().len(), 2);
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn an_imported_row_brevo_skips_for_its_sms_still_gets_its_attributes_without_the_sms() {
    // GIVEN three customers whose backfill goes out by import, the first
    // one's phone number already held by another Brevo contact, and the
    // consumer putting its follow-ups on the queue (checked after 1 s)
    let mut w = world().await;
    seed(&w, 3);
    let mut settings = (*w.app.settings).clone();
    settings.brevo.import_threshold = 2;
    settings.brevo.import_check_delay = std::time::Duration::from_secs(1);
    w.app.settings = Arc::new(settings);
    let queue = SqsQueue::new(w.sqs.clone(), w.queue_url.clone());
    w.app.requeue = Some(Arc::new(queue.clone()) as Arc<dyn EventQueue>);
    let settings = w.app.settings.clone();
    let first = expected(&w, &settings, "cus_e2e000").expect("mapped");
    let sms = serde_json::to_value(&first.attributes["SMS"]).expect("sms");
    w.brevo.seed_contact("holder@example.com", [("SMS".to_owned(), sms.clone())].into(), &[]);
    let snapshot = shared::pipeline::consume::Snapshot {
        object: shared::pipeline::consume::SNAPSHOT_OBJECT.to_owned(),
        key: "backfill:customers:e2e:p1".to_owned(),
        customers: (0..3).map(|i| format!("cus_e2e{i:03}")).collect(),
    };
    let body = serde_json::to_string(&snapshot).expect("json");
    let msg = QueueMessage {
        body,
        event_id: snapshot.key.clone(),
        event_type: "stripe_brevo.snapshot".into(),
        livemode: None,
        source: Source::Backfill,
    };
    queue.send(&msg).await.expect("queued");

    // WHEN the consumer drains the queue (the snapshot, then the import's check)
    drain_all(&w, std::time::Duration::from_secs(30)).await;

    // THEN Brevo skipped that row of the import, and the contact still has
    // every attribute, without the SMS (the contract's SMS fallback), in its list
    let import = &w.brevo.imports()[0];
    assert_eq!((import.applied, import.skipped), (2, 1), "{import:?}");
    let got = w.brevo.contact(&first.email).expect("the skipped contact was written after all");
    for (k, v) in first.attributes.iter().filter(|(k, _)| k.as_str() != "SMS") {
        assert_eq!(got.attributes.get(k), Some(&serde_json::to_value(v).expect("value")), "{k}");
    }
    assert!(!got.attributes.contains_key("SMS"), "{:?}", got.attributes);
    assert!(got.list_ids.contains(&20));
    assert_eq!(w.brevo.contact("holder@example.com").expect("holder").attributes["SMS"], sms);
    for i in 1..3 {
        let want = expected(&w, &settings, &format!("cus_e2e{i:03}")).expect("mapped");
        let c = w.brevo.contact(&want.email).expect("imported");
        assert_eq!(c.attributes.get("SMS"), Some(&serde_json::to_value(&want.attributes["SMS"]).expect("v")));
    }
    // The figure: requests of Brevo's hourly family per import.
    let other = w.brevo.requests(Family::Other);
    let processes = w.brevo.request_log().iter().filter(|r| r.path.starts_with("/v3/processes/")).count();
    println!("IMPORT_FOLLOW_UP imports=1 other_family_requests={other} process_requests={processes}");
    assert!(other <= 2, "{other} requests of the 100/hour family for one import");
}
