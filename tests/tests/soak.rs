//! Soak: a stream of Stripe events for many customers through the real
//! pipeline — signed webhooks through the ingest handler onto a moto SQS
//! queue, the poller (Events API) against the Stripe sandbox enqueuing its
//! copies, and the consumer (moto DynamoDB dedup) pushing to the Brevo
//! sandbox — with duplicate deliveries, shuffled order, Brevo 429/5xx on ~10 %
//! of requests, Stripe 429 bursts and errors, and consumer crashes in the
//! middle of batches. Then: Brevo equals the state computed from the final
//! Stripe data, no Brevo event is recorded twice for one Stripe event id,
//! the queue is empty, and the figures are printed.
//!
//! CI size by default (`SOAK_CUSTOMERS=60`, `SOAK_ROUNDS=4`: ~700 events);
//! `scripts/soak` runs the full size (1,000 customers, 10,000 events). The
//! consumer drains the queue after every `SOAK_CHUNK` (500) deliveries.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::soak_data::{
    contact_drift, customer_id, events_sent_twice, round_of_changes, seed_customers, Drift,
};
use crate::common::*;
use aws_lambda_events::event::sqs::SqsEvent;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sandbox::brevo::{Family, Fault};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::memory::MemoryCursors;
use shared::adapters::sqs::{SqsDeadLetters, SqsQueue};
use shared::adapters::stripe::StripeClient;
use shared::domain::signature::{sign_header, Verifier};
use shared::pipeline::ingest::{Ingest, WebhookRequest};
use shared::pipeline::poll::{PollOptions, PollRequest, Poller};
use shared::ports::{DeadLetters, EventQueue, QueueMessage, Source, SystemClock};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const SECRET: &str = "whsec_soak";

/// Receives one batch and drops the consumer mid-way (a crash): nothing acked.
async fn crash_mid_batch(w: &World) -> bool {
    let got = w.sqs.receive_message().queue_url(&w.queue_url).max_number_of_messages(10).send().await.expect("receive");
    let msgs = got.messages();
    if msgs.is_empty() {
        return false;
    }
    let records: Vec<Value> = msgs
        .iter()
        .map(|m| json!({"messageId": m.message_id(), "body": m.body(), "attributes": {}, "messageAttributes": {}}))
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).expect("SqsEvent");
    // Long enough to claim some ids and call Stripe, too short to finish.
    let _ = tokio::time::timeout(Duration::from_millis(15), stripe_to_brevo::handle(&w.app, event)).await;
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test (CI size) or scripts/soak (full size)"]
async fn soak_under_faults_converges_with_every_event_sent_once() {
    let customers = env_usize("SOAK_CUSTOMERS", 60);
    let rounds = env_usize("SOAK_ROUNDS", 4);
    let started = Instant::now();
    let mut w = world().await;
    // Crashed claims expire fast and invisible messages return fast.
    w.app.options.in_progress_secs = 3;
    let mut settings = (*w.app.settings).clone();
    settings.brevo.import_threshold = 10; // the deployed default: imports for big batches
    w.app.settings = Arc::new(settings);
    w.sqs
        .set_queue_attributes()
        .queue_url(&w.queue_url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "2")
        .send()
        .await
        .expect("visibility");
    // Permanent failures go to a dead-letter queue, as in the template.
    let dlq_url = e2e_tests::create_queue(&e2e_tests::aws().await, &e2e_tests::unique("soak-dlq")).await;
    w.app.dead_letters =
        Some(Arc::new(SqsDeadLetters(SqsQueue::new(w.sqs.clone(), dlq_url.clone()))) as Arc<dyn DeadLetters>);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);

    // Customers with a subscription and a first payment.
    let t0 = w.now - 90 * 86_400;
    seed_customers(&w.stripe, customers, t0);

    // The poller's first run: backfill (snapshots), then it follows events.
    let feed = StripeClient::builder(w.stripe.base_url(), SecretString::from(stripe_key()))
        .requests_per_second(None)
        .build()
        .expect("feed");
    let poller = Poller {
        stripe: feed,
        queue: SqsQueue::new(w.sqs.clone(), w.queue_url.clone()),
        cursors: MemoryCursors::new(),
        clock: SystemClock,
        settings: w.app.settings.clone(),
        options: PollOptions::default(),
    };
    let scheduled = PollRequest::from_event(&json!({})).expect("scheduled request");
    w.stripe.burst_429(5);
    poller.run(&scheduled, "soak", Instant::now() + Duration::from_secs(120)).await.expect("backfill run");

    // Stripe moves on; every change is an event (in the sandbox's event log too).
    let mut events: Vec<Value> = Vec::new();
    for r in 1..=rounds {
        events.extend(round_of_changes(&w.stripe, &mut rng, r, 0..customers, w.now));
    }

    // Webhooks: 5 % delivered twice, all shuffled, each signed and verified.
    let mut deliveries: Vec<&Value> = events.iter().collect();
    let dups: Vec<&Value> = events.iter().filter(|_| rng.random_bool(0.05)).collect();
    deliveries.extend(dups.iter().copied());
    deliveries.shuffle(&mut rng);
    let ingest = Ingest::new(
        Verifier::new(vec![SecretString::from(SECRET.to_owned())], 300),
        SqsQueue::new(w.sqs.clone(), w.queue_url.clone()),
        SystemClock,
    );
    // Faults on; the consumer keeps up while the webhooks arrive (as the
    // deployed event source mapping does), crashing in the middle of a batch
    // after each of the first chunks. Draining per chunk also keeps moto fast:
    // its SQS slows down as a queue grows (~2,300 → ~400 requests/min by
    // 10,000 queued messages).
    w.brevo.fail_randomly(Family::Contacts, 0.10, Fault::RateLimited);
    w.brevo.fail_randomly(Family::Events, 0.10, Fault::Status(503));
    w.stripe.set_error_rates(0.03, 0.02);
    let (mut crashes, mut failures) = (0usize, 0usize);
    // Poison among them: messages no webhook would have queued (a bad
    // redrive, a hand-sent test). They must end in the DLQ, nothing else.
    let poison = [
        "not json at all".to_owned(),
        json!({"id": "evt_poison_1", "object": "customer"}).to_string(),
        json!({"id": "evt_poison_2", "object": "event", "type": "charge.succeeded", "created": 1, "data": {"object": "x"}}).to_string(),
        format!(r#"{{"id":"evt_poison_3","object":"event","type":"a.b","created":1,"data":{{"object":{{"x":{}{}}}}}}}"#, "[".repeat(500), "]".repeat(500)),
    ];
    let poison_messages: Vec<QueueMessage> = poison
        .iter()
        .map(|body| QueueMessage {
            body: body.clone(),
            event_id: "poison".into(),
            event_type: "poison".into(),
            livemode: None,
            source: Source::Webhook,
        })
        .collect();
    SqsQueue::new(w.sqs.clone(), w.queue_url.clone()).send_all(&poison_messages).await.expect("poison queued");
    for (k, chunk) in deliveries.chunks(env_usize("SOAK_CHUNK", 500).max(1)).enumerate() {
        for ev in chunk {
            let body = ev.to_string();
            // Signed at delivery time, as Stripe does (at full size the
            // deliveries alone outlast the 300 s tolerance).
            let sig = sign_header(&[SECRET], now(), body.as_bytes());
            let a =
                ingest.handle(WebhookRequest { method: "POST", signature: Some(&sig), body: body.as_bytes() }).await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
        if k < 3 {
            crashes += usize::from(crash_mid_batch(&w).await);
        }
        failures += drain_all(&w, Duration::from_secs(600)).await;
    }
    w.stripe.clear_faults();
    w.stripe.burst_429(5);
    let report =
        poller.run(&scheduled, "soak", Instant::now() + Duration::from_secs(120)).await.expect("incremental run");
    crashes += usize::from(crash_mid_batch(&w).await);
    failures += drain_all(&w, Duration::from_secs(600)).await;
    w.brevo.reset_faults();
    failures += drain_all(&w, Duration::from_secs(120)).await;

    // Brevo equals the state computed from the final Stripe data.
    let settings = w.app.settings.clone();
    let mut checked = 0;
    for i in 0..customers {
        let cid = customer_id(i);
        match contact_drift(&w.app.stripe, &w.brevo, &settings, &cid).await {
            Drift::Equal => checked += 1,
            Drift::NoEmail => assert!(i % 20 == 19),
            Drift::Deleted => panic!("{cid} deleted?"),
            Drift::Missing => panic!("{cid} missing in Brevo"),
            Drift::Differs(d) => panic!("{cid}: {}", d.join("; ")),
        }
    }
    // Each forwarded Stripe event exactly once.
    let (twice, per_id) = events_sent_twice(&w.brevo);
    assert!(twice.is_empty(), "events recorded twice: {twice:?}");
    let has_email = |e: &Value| {
        let o = &e["data"]["object"];
        let cid = if o["object"] == "customer" { o["id"].as_str() } else { o["customer"].as_str() };
        cid.and_then(|c| c.trim_start_matches("cus_soak").parse::<usize>().ok()).is_some_and(|n| n % 20 != 19)
    };
    let forwarded: BTreeSet<String> = events
        .iter()
        .filter(|e| settings.stripe.sends_event(e["type"].as_str().expect("type")) && has_email(e))
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(per_id.len(), forwarded.len(), "nothing but the forwarded events was sent");
    for id in &forwarded {
        assert_eq!(per_id.get(id), Some(&1), "{id} sent once");
    }

    // Nothing left but what the DLQ holds by design: exactly the poison.
    let dlq = w
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("dlq attributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages).cloned())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("dlq count");
    assert_eq!(dlq, poison.len(), "the DLQ holds the poison and nothing else");

    let brevo_requests = w.brevo.request_counts().total();
    println!(
        "SOAK customers={customers} events={} deliveries={} (duplicates {}) poller_events_enqueued={} crashes={crashes} batch_item_failures={failures} dlq={dlq} \
         contacts_checked={checked} brevo_events={} brevo_requests={brevo_requests} duration={:.1}s",
        events.len(),
        deliveries.len(),
        dups.len(),
        report.resources.iter().map(|r| r.messages).sum::<u64>(),
        per_id.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(crashes > 0 && checked > 0);
}
