//! Consumer load figures against the local Stripe and Brevo sandboxes (no
//! fault injection, client-side rate limits off so nothing is throttled).
//!
//! 200 customers with e-mails (the sandbox's demo data set: charges with
//! refunds and converted currencies, subscriptions of several statuses)
//! and 1,000 Stripe events over them, created now, run through the real
//! `Consumer` (StripeReader + BrevoClient over HTTP, MemoryIdempotency,
//! SystemClock) in SQS-like batches of 100, 10 and 1 (batch size 1 is the
//! naive one-message-at-a-time design). Prints Brevo requests per 1,000
//! events, Stripe requests per recomputed customer, wall time; then runs
//! itself again as a fresh child process that handles a single 10-message
//! batch and reports its peak RSS (VmHWM). The sandboxes stay in this
//! (parent) process, so the child's RSS is the consumer's alone.
//! Imports are followed to their end in place (no queue here), looked at
//! 250 ms after their 202 (the sandbox applies them after 100 ms; deployed,
//! the look comes from the queue after 60 s): the figures include those
//! looks and count the requests of Brevo's hourly family per import.
//!
//! Run: `cargo bench -p e2e-tests --bench consumer_load`.
//! Figures are printed, never asserted.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::brevo::{BrevoSandbox, BrevoSandboxOptions, SANDBOX_API_KEY};
use sandbox::stripe::{demo_dataset, fixture, merge, StripeSandbox, StripeSandboxOptions, DEFAULT_SECRET_KEY};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::brevo::{BrevoClient, BrevoConfig, BrevoLimits};
use shared::adapters::memory::MemoryIdempotency;
use shared::adapters::stripe::StripeClient;
use shared::adapters::stripe::StripeReader;
use shared::pipeline::consume::{ConsumeOptions, ConsumeStats, Consumer, InboundMessage, Outcome};
use shared::ports::{Source, SystemClock};
use shared::settings::Settings;

const CUSTOMERS: usize = 200;
const EVENTS: usize = 1_000;
const RSS_CHILD_ARG: &str = "--rss-child";

/// As deployed: the Brevo client, and a contact ledger (in memory here; the
/// dedup table when deployed) shared by the batches.
type RealConsumer = Consumer<StripeReader, BrevoClient, MemoryIdempotency, SystemClock>;

fn settings() -> Arc<Settings> {
    let mut s = Settings::default();
    // The contract's example config manages three lists.
    s.stripe.lists.all_customers = Some(20);
    s.stripe.lists.subscribers = Some(21);
    s.stripe.lists.churned = Some(22);
    s.brevo.import_check_delay = Duration::from_millis(250);
    Arc::new(s)
}

fn consumer(stripe_base: &str, brevo_base: &str, settings: Arc<Settings>) -> RealConsumer {
    let client = StripeClient::builder(stripe_base, SecretString::from(DEFAULT_SECRET_KEY.to_owned()))
        .requests_per_second(None)
        .build()
        .expect("stripe client");
    let mut cfg = BrevoConfig::new(brevo_base, SecretString::from(SANDBOX_API_KEY.to_owned()));
    cfg.limits = BrevoLimits::unlimited();
    Consumer {
        stripe: StripeReader::new(client),
        brevo: BrevoClient::new(cfg).expect("brevo client"),
        dedup: MemoryIdempotency::new(),
        clock: SystemClock,
        dead_letters: None,
        status: None,
        requeue: None,
        ledger: Some(Arc::new(shared::adapters::memory::MemoryLedger::new())),
        settings,
        options: ConsumeOptions::default(),
    }
}

fn message(n: usize, body: &str) -> InboundMessage {
    let v: Value = serde_json::from_str(body).expect("event json");
    InboundMessage {
        message_id: format!("msg-{n:05}"),
        body: body.to_owned(),
        event_id: v["id"].as_str().map(str::to_owned),
        event_type: v["type"].as_str().map(str::to_owned),
        source: Some(Source::Webhook),
        receive_count: 1,
    }
}

/// Deterministic xorshift, so every run sees the same events.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct CustomerData {
    id: String,
    email: String,
    customer: Value,
    charges: Vec<Value>,
    subscriptions: Vec<Value>,
}

/// Seeds the sandbox and returns the 200 customers with e-mails.
fn seed(stripe: &StripeSandbox) -> Vec<CustomerData> {
    // Every 10th demo customer has no e-mail: 223 hold 201 with one.
    let data = demo_dataset(223, 2026);
    let mut out: Vec<CustomerData> = Vec::new();
    for (res, v) in &data {
        let cus = v.get("customer").and_then(Value::as_str).unwrap_or_default().to_owned();
        match *res {
            "customers" => {
                if let Some(email) = v.get("email").and_then(Value::as_str) {
                    out.push(CustomerData {
                        id: v["id"].as_str().expect("id").to_owned(),
                        email: email.to_owned(),
                        customer: v.clone(),
                        charges: Vec::new(),
                        subscriptions: Vec::new(),
                    });
                }
            }
            "charges" => {
                if let Some(c) = out.iter_mut().find(|c| c.id == cus) {
                    c.charges.push(v.clone());
                }
            }
            "subscriptions" => {
                if let Some(c) = out.iter_mut().find(|c| c.id == cus) {
                    c.subscriptions.push(v.clone());
                }
            }
            _ => {}
        }
    }
    stripe.insert_all(data.into_iter().map(|(r, v)| (r.to_owned(), v)));
    out.truncate(CUSTOMERS);
    out
}

/// 1,000 events of realistic types over the customers, created now.
fn generate_events(stripe: &StripeSandbox, customers: &[CustomerData]) -> (Vec<String>, Vec<(String, usize)>) {
    let mut rng = Rng(0x5eed_2026_cafe_f00d);
    let now = stripe.now();
    let mut bodies = Vec::with_capacity(EVENTS);
    let mut mix: std::collections::BTreeMap<String, usize> = Default::default();
    for n in 0..EVENTS {
        let c = &customers[rng.below(customers.len())];
        let roll = rng.below(100);
        let (ty, object) = if roll < 30 {
            let amount = 500 + rng.below(40_000) as i64;
            let pi = merge(
                fixture("payment_intent"),
                json!({"id": format!("pi_Load{n:06}"), "customer": c.id, "amount": amount, "amount_received": amount,
                       "currency": "usd", "status": "succeeded", "created": now, "livemode": false,
                       "receipt_email": c.email}),
            );
            ("payment_intent.succeeded", pi)
        } else if roll < 45 && !c.charges.is_empty() {
            let ch = c.charges[rng.below(c.charges.len())].clone();
            let ch = merge(ch, json!({"refunded": true, "livemode": false}));
            ("charge.refunded", ch)
        } else if roll < 65 {
            ("customer.updated", merge(c.customer.clone(), json!({"livemode": false})))
        } else if roll < 80 && !c.subscriptions.is_empty() {
            let s = c.subscriptions[rng.below(c.subscriptions.len())].clone();
            ("customer.subscription.updated", merge(s, json!({"livemode": false})))
        } else if roll < 90 {
            let inv = merge(
                fixture("invoice"),
                json!({"id": format!("in_Load{n:06}"), "customer": c.id, "customer_email": c.email,
                       "status": "open", "attempted": true, "created": now, "livemode": false}),
            );
            ("invoice.payment_failed", inv)
        } else {
            let pi = merge(
                fixture("payment_intent"),
                json!({"id": format!("pi_LoadF{n:06}"), "customer": c.id, "amount": 2_000, "currency": "usd",
                       "status": "requires_payment_method", "created": now, "livemode": false}),
            );
            ("payment_intent.payment_failed", pi)
        };
        *mix.entry(ty.to_owned()).or_default() += 1;
        let id = stripe.emit_event(ty, object);
        let ev = stripe.get("events", &id).expect("event stored");
        bodies.push(serde_json::to_string(&ev).expect("serialises"));
    }
    (bodies, mix.into_iter().collect())
}

struct RunFigures {
    brevo_requests: u64,
    brevo_by_family: String,
    stripe_requests: u64,
    customers_reloaded: usize,
    wall: Duration,
}

async fn run(
    label: &str,
    batch_size: usize,
    stripe: &StripeSandbox,
    brevo: &BrevoSandbox,
    msgs: &[InboundMessage],
    settings: Arc<Settings>,
) -> RunFigures {
    stripe.reset_log();
    brevo.clear_request_log();
    let imports_before = brevo.imports().len();
    let c = consumer(&stripe.base_url(), &brevo.base_url(), settings);
    let mut total = ConsumeStats::default();
    let mut not_done = 0usize;
    let mut batch_times: Vec<Duration> = Vec::new();
    let t = Instant::now();
    for chunk in msgs.chunks(batch_size) {
        let bt = Instant::now();
        let report = c.consume(chunk).await;
        batch_times.push(bt.elapsed());
        not_done += report.outcomes.iter().filter(|(_, o)| *o != Outcome::Done).count();
        total += &report.stats;
    }
    let wall = t.elapsed();
    let counts = brevo.request_counts();
    let imports = brevo.imports().len() - imports_before;
    let client_stats = c.brevo.stats();
    let stripe_requests = stripe.request_count();
    batch_times.sort();
    let p50 = batch_times[batch_times.len() / 2];
    let max = batch_times[batch_times.len() - 1];
    let per_1000 = counts.total() as f64 * 1000.0 / msgs.len() as f64;
    let per_customer = stripe_requests as f64 / total.customers_reloaded.max(1) as f64;
    println!("--- {label}: {} events in batches of {batch_size} ({} batches)", msgs.len(), batch_times.len());
    println!(
        "    outcomes: done={} not_done={not_done}; customers reloaded={} contacts synced={} events sent={} retries={} dead={}",
        msgs.len() - not_done,
        total.customers_reloaded,
        total.contacts_synced,
        total.events_sent,
        total.retries,
        total.dead
    );
    println!(
        "    Brevo requests: {} (sandbox count; client count {}) = {:.0} per 1,000 events  [contacts {}, events {}, orders {}, other {}]",
        counts.total(),
        client_stats.total_requests(),
        per_1000,
        counts.contacts,
        counts.events,
        counts.orders,
        counts.other
    );
    let log = stripe.requests();
    let by = |p: &str| log.iter().filter(|r| r.path.starts_with(p)).count();
    println!(
        "    Stripe requests: {stripe_requests} (client count {}) over {} recomputed customers = {per_customer:.2} per customer \
         [customers {}, charges {}, subscriptions {}, products {}]",
        c.stripe.client().stats().requests,
        total.customers_reloaded,
        by("/v1/customers"),
        by("/v1/charges"),
        by("/v1/subscriptions"),
        by("/v1/products")
    );
    let processes = brevo.request_log().iter().filter(|r| r.path.starts_with("/v3/processes/")).count();
    println!(
        "    imports: {imports}, followed to their end with {processes} process status requests = {:.2} requests of the hourly (other) family per import",
        if imports == 0 { 0.0 } else { counts.other as f64 / imports as f64 }
    );
    println!(
        "    wall time {:.2} s = {:.0} events/s; batch latency p50 {:.1} ms, max {:.1} ms",
        wall.as_secs_f64(),
        msgs.len() as f64 / wall.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    RunFigures {
        brevo_requests: counts.total(),
        brevo_by_family: format!("contacts {}, events {}, other {}", counts.contacts, counts.events, counts.other),
        stripe_requests,
        customers_reloaded: total.customers_reloaded,
        wall,
    }
}

fn status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The child: one 10-message batch, fresh process, then VmHWM.
fn rss_child() {
    let stripe_base = std::env::var("BENCH_STRIPE_BASE").expect("BENCH_STRIPE_BASE");
    let brevo_base = std::env::var("BENCH_BREVO_BASE").expect("BENCH_BREVO_BASE");
    let bodies: Vec<String> = std::io::stdin().lock().lines().map(|l| l.expect("stdin line")).collect();
    let before = status_kb("VmHWM:").unwrap_or(0);
    // The Lambda runtime's default: a multi-threaded tokio runtime.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let report = rt.block_on(async {
        let c = consumer(&stripe_base, &brevo_base, settings());
        let msgs: Vec<InboundMessage> = bodies.iter().enumerate().map(|(n, b)| message(n, b)).collect();
        c.consume(&msgs).await
    });
    let done = report.outcomes.iter().filter(|(_, o)| *o == Outcome::Done).count();
    println!(
        "RSS_CHILD messages={} done={} contacts_synced={} events_sent={} vmhwm_before_kb={} vmhwm_kb={} vmrss_kb={}",
        report.outcomes.len(),
        done,
        report.stats.contacts_synced,
        report.stats.events_sent,
        before,
        status_kb("VmHWM:").unwrap_or(0),
        status_kb("VmRSS:").unwrap_or(0)
    );
}

fn main() {
    if std::env::args().any(|a| a == RSS_CHILD_ARG) {
        rss_child();
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(parent());
}

async fn parent() {
    let started = Instant::now();
    let stripe = StripeSandbox::start(StripeSandboxOptions::default()).await.expect("stripe sandbox");
    let brevo = BrevoSandbox::start(BrevoSandboxOptions::default()).await.expect("brevo sandbox");
    let customers = seed(&stripe);
    let (bodies, mix) = generate_events(&stripe, &customers);
    let msgs: Vec<InboundMessage> = bodies.iter().enumerate().map(|(n, b)| message(n, b)).collect();
    let distinct: std::collections::BTreeSet<&str> = bodies
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter_map(|v| {
            let o = &v["data"]["object"];
            let id = if o["object"] == "customer" { o["id"].as_str() } else { o["customer"].as_str() };
            id.map(|s| customers.iter().find(|c| c.id == s).map_or("", |c| c.id.as_str()))
        })
        .collect();
    let avg_len = bodies.iter().map(String::len).sum::<usize>() / bodies.len();
    println!(
        "consumer_load: {} customers with e-mail, {} events (mean body {avg_len} B) touching {} distinct customers; mix {:?}",
        customers.len(),
        bodies.len(),
        distinct.len(),
        mix
    );

    let s = settings();
    // The same with `connectors.brevo.import_threshold: 2` (a config knob,
    // no code change): contacts go through the batch import endpoint.
    let mut low = (*s).clone();
    low.brevo.import_threshold = 2;
    let low = Arc::new(low);
    let mut figures: Vec<(String, RunFigures)> = Vec::new();
    for (label, batch, st) in [
        ("batch 100", 100, s.clone()),
        ("batch 10", 10, s.clone()),
        ("batch 1 (naive: one message at a time)", 1, s.clone()),
        ("batch 100, import_threshold 2", 100, low.clone()),
        ("batch 10, import_threshold 2", 10, low.clone()),
    ] {
        let f = run(label, batch, &stripe, &brevo, &msgs, st).await;
        figures.push((label.to_owned(), f));
    }

    // The same 1,000 events if each one were handled on its own by a design
    // without coalescing or batch endpoints: one contact upsert per event
    // plus one event POST per forwarded event.
    let forwarded = mix.iter().filter(|(t, _)| s.stripe.sends_event(t)).map(|(_, n)| n).sum::<usize>();
    let naive = EVENTS + forwarded;

    println!();
    println!("SUMMARY (Brevo requests per 1,000 queued events; target <= 250):");
    for (label, f) in &figures {
        let per_1000 = f.brevo_requests as f64 * 1000.0 / EVENTS as f64;
        println!(
            "  {label:>38}: {per_1000:>5.0} per 1,000 [{}] -> {}; Stripe {:.2} requests per recomputed customer ({} / {}) (target <= 3); wall {:.2} s",
            f.brevo_by_family,
            if per_1000 <= 250.0 { "MET" } else { "MISSED" },
            f.stripe_requests as f64 / f.customers_reloaded.max(1) as f64,
            f.stripe_requests,
            f.customers_reloaded,
            f.wall.as_secs_f64()
        );
    }
    println!("  naive one-call-per-event design (computed: 1 upsert per event + 1 event POST per forwarded event): {naive} per 1,000 events");

    // Peak RSS of a fresh process handling one 10-message batch.
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg(RSS_CHILD_ARG)
        .env("BENCH_STRIPE_BASE", stripe.base_url())
        .env("BENCH_BREVO_BASE", brevo.base_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("child starts");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        // Ten events not seen before by that process (its dedup store is new).
        for b in bodies.iter().take(10) {
            writeln!(stdin, "{b}").expect("write");
        }
    }
    // The child's requests are served by this process's runtime; wait without blocking it.
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("child output")).await.expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if let Some(kb) =
        text.split_whitespace().find_map(|w| w.strip_prefix("vmhwm_kb=")).and_then(|v| v.parse::<u64>().ok())
    {
        let mb = kb as f64 / 1024.0;
        println!(
            "  peak RSS (VmHWM) of a fresh process after one 10-message batch: {mb:.1} MiB (target <= 64 MB) -> {}",
            if mb <= 64.0 { "MET" } else { "MISSED" }
        );
    } else {
        println!("  peak RSS: the child reported nothing (status {:?})", out.status);
    }
    println!("total bench time {:.1} s", started.elapsed().as_secs_f64());
}
