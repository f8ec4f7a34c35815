//! `stripe-brevo demo`: the whole pipeline against the built-in sandboxes.
//! Seeds the local Stripe with a realistic data set, syncs every customer
//! (backfill snapshots through the consumer), then posts signed webhooks
//! through the real ingest handler and consumes them, and prints what Brevo
//! now holds. No keys, no network beyond 127.0.0.1, no AWS.

use std::sync::Arc;

use anyhow::Context;
use sandbox::brevo::{BrevoSandbox, BrevoSandboxOptions};
use sandbox::stripe::{Seed, StripeSandbox, StripeSandboxOptions};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::brevo::{BrevoClient, BrevoConfig, BrevoLimits};
use shared::adapters::memory::{MemoryIdempotency, MemoryQueue};
use shared::adapters::stripe::StripeClient;
use shared::adapters::stripe::StripeReader;
use shared::domain::signature::{sign_header, Verifier};
use shared::pipeline::consume::{ConsumeOptions, Consumer, InboundMessage, Snapshot, SNAPSHOT_OBJECT};
use shared::pipeline::ingest::{Ingest, WebhookRequest};
use shared::ports::{Clock, SystemClock};
use shared::settings::Settings;

const DEMO_WEBHOOK_SECRET: &str = "whsec_demo_local_only";

pub async fn run(customers: usize) -> anyhow::Result<()> {
    let stripe = StripeSandbox::start(StripeSandboxOptions::default()).await.context("starting the local Stripe")?;
    let brevo = BrevoSandbox::start(BrevoSandboxOptions::default()).await.context("starting the local Brevo")?;
    let summary = stripe.seed_demo_dataset(customers, 42);
    println!(
        "local Stripe  {}  ({} customers, {} charges, {} subscriptions)",
        stripe.base_url(),
        summary.count("customers"),
        summary.count("charges"),
        summary.count("subscriptions")
    );
    println!("local Brevo   {}  (lists 20 all_customers, 21 subscribers, 22 churned)", brevo.base_url());

    let key = StripeSandboxOptions::default().secret_keys.first().cloned().context("sandbox key")?;
    let client = StripeClient::builder(stripe.base_url(), SecretString::from(key)).requests_per_second(None).build()?;
    let mut cfg = BrevoConfig::new(brevo.base_url(), SecretString::from(brevo.api_key()));
    cfg.limits = BrevoLimits::unlimited();
    let mut settings = Settings::default();
    settings.stripe.lists.all_customers = Some(20);
    settings.stripe.lists.subscribers = Some(21);
    settings.stripe.lists.churned = Some(22);
    // The demo has no queue: imports are followed in place, looked at soon
    // (the local Brevo applies them after 100 ms) rather than after 60 s.
    settings.brevo.import_check_delay = std::time::Duration::from_millis(250);
    let consumer = Consumer {
        stripe: StripeReader::new(client.clone()),
        brevo: BrevoClient::new(cfg)?,
        dedup: MemoryIdempotency::new(),
        clock: SystemClock,
        dead_letters: None,
        status: None,
        requeue: None,
        ledger: None,
        settings: Arc::new(settings),
        options: ConsumeOptions::default(),
    };

    // 1. Backfill: every customer, as snapshots of up to 100 (one per page).
    let mut ids: Vec<String> = Vec::new();
    client
        .list_all::<Value, _>("/v1/customers", &[], |page| {
            ids.extend(page.iter().filter_map(|c| c["id"].as_str().map(str::to_owned)));
        })
        .await?;
    let snapshots: Vec<InboundMessage> = ids
        .chunks(100)
        .enumerate()
        .map(|(n, chunk)| {
            let s = Snapshot {
                object: SNAPSHOT_OBJECT.to_owned(),
                key: format!("demo:customers:{n}"),
                customers: chunk.to_vec(),
            };
            InboundMessage {
                message_id: format!("backfill-{n}"),
                body: serde_json::to_string(&s).unwrap_or_default(),
                event_id: None,
                event_type: None,
                source: None,
                receive_count: 1,
            }
        })
        .collect();
    let report = consumer.consume(&snapshots).await;
    let s = &report.stats;
    println!(
        "\nbackfill: {} customers reloaded, {} contacts synced, {} skipped (no email), {} failed",
        s.customers_reloaded, s.contacts_synced, s.contacts_skipped_no_email, s.contacts_failed
    );

    // 2. Webhooks: signed, verified, queued, consumed.
    let now = SystemClock.now_unix();
    let first = ids
        .iter()
        .find(|c| stripe.get("customers", c).and_then(|v| v.get("email").cloned()).is_some_and(|e| !e.is_null()));
    let Some(cid) = first.cloned() else { anyhow::bail!("the demo data set has no customer with an e-mail") };
    let events = vec![
        Seed::event(
            "evt_demo_failed",
            "payment_intent.payment_failed",
            json!({"id": "pi_demo_1", "object": "payment_intent", "customer": cid, "amount": 4900, "currency": "usd", "status": "requires_payment_method", "last_payment_error": {"code": "card_declined"}}),
            now - 5,
            false,
        ),
        Seed::event(
            "evt_demo_checkout",
            "checkout.session.expired",
            json!({"id": "cs_demo_1", "object": "checkout.session", "customer": null, "amount_total": 12900, "currency": "usd", "status": "expired", "customer_details": {"email": "guest.shopper@example.com"}}),
            now - 3,
            false,
        ),
        Seed::event(
            "evt_demo_updated",
            "customer.updated",
            stripe.get("customers", &cid).unwrap_or_default(),
            now - 1,
            false,
        ),
    ];
    let ingest = Ingest::new(
        Verifier::new(vec![SecretString::from(DEMO_WEBHOOK_SECRET.to_owned())], 300),
        MemoryQueue::new(),
        SystemClock,
    );
    for ev in &events {
        let body = ev.to_string();
        let sig = sign_header(&[DEMO_WEBHOOK_SECRET], now, body.as_bytes());
        let answer =
            ingest.handle(WebhookRequest { method: "POST", signature: Some(&sig), body: body.as_bytes() }).await;
        println!("webhook {:<32} → HTTP {} {}", ev["type"].as_str().unwrap_or(""), answer.status, answer.body);
    }
    let forged = events[0].to_string();
    let answer =
        ingest.handle(WebhookRequest { method: "POST", signature: Some("t=1,v1=00"), body: forged.as_bytes() }).await;
    println!("webhook {:<32} → HTTP {} {}", "(forged signature)", answer.status, answer.body);
    let queued: Vec<InboundMessage> = ingest
        .queue
        .messages()
        .into_iter()
        .enumerate()
        .map(|(n, m)| InboundMessage {
            message_id: format!("webhook-{n}"),
            body: m.body,
            event_id: Some(m.event_id),
            event_type: Some(m.event_type),
            source: Some(m.source),
            receive_count: 1,
        })
        .collect();
    let mut twice = queued.clone();
    twice.extend(queued.iter().cloned().map(|mut m| {
        m.message_id.push_str("-dup");
        m
    }));
    let report = consumer.consume(&twice).await;
    println!(
        "consumer: {} messages ({} duplicates), {} Brevo events sent",
        report.stats.messages, report.stats.duplicates, report.stats.events_sent
    );

    // 3. What Brevo holds now.
    println!(
        "\n{:<34} {:>9} {:>5} {:>9} {:>8} {:<10} {:<16} lists",
        "contact", "total", "paid", "ltv", "mrr", "status", "plan"
    );
    let mut contacts = brevo.contacts();
    contacts.sort_by(|a, b| a.email.cmp(&b.email));
    for c in &contacts {
        let a = |k: &str| {
            c.attributes
                .get(k)
                .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<34} {:>9} {:>5} {:>9} {:>8} {:<10} {:<16} {:?}",
            c.email,
            a("TOTAL_SPENT"),
            a("PAYMENT_COUNT"),
            a("LTV"),
            a("MONTHLY_REVENUE"),
            a("SUB_STATUS"),
            a("PLAN_NAME"),
            c.list_ids
        );
    }
    println!("\nBrevo events:");
    for e in brevo.events() {
        println!(
            "  {:<40} {:<34} {}",
            e.event_name,
            e.email.unwrap_or_default(),
            Value::Object(e.event_properties).to_string().chars().take(90).collect::<String>()
        );
    }
    println!(
        "\n{} contacts in Brevo; {} Stripe customers without e-mail were skipped.",
        contacts.len(),
        summary.customers_without_email
    );
    Ok(())
}
