//! The deployed shape, end to end: the three real function binaries driven
//! the way AWS drives them (`e2e_tests::lambda`), with every number read
//! from `template.yaml` — the consumer behind an SQS event source mapping
//! (batch size 100, 5 s window, maximum concurrency 2, partial batch
//! responses, the function's 60 s timeout enforced by killing it), the
//! poller on its schedule (reserved concurrency 1, its timeout from
//! `PollerTimeoutSeconds`), the webhook fed API Gateway HTTP API v2 events —
//! against the sandboxes at a vendor's pace (Stripe 200 ms, Brevo 120 ms,
//! with jitter) and the soak's data set.
//!
//! 1. Backfill: the poller lists Stripe and queues snapshots; the consumer
//!    must bring Brevo to the state computed from Stripe with **no function
//!    timeout** and an **empty DLQ**.
//! 2. A round of signed webhooks (the soak's changes for some customers)
//!    through the webhook function, the poller's copies from the Events API
//!    merged by the consumer: convergence again, each Brevo event once.
//!
//! In both phases the vendors' limits are the account's, shared by every
//! function: the Stripe sandbox enforces Stripe's test-mode 25 r/s for all
//! of them together, the Brevo sandbox the General plan's per-family limits;
//! the functions take their budget shares from the template
//! (`StripeRequestsPerSecond` among the poller and `MaximumConcurrency`
//! consumers). Asserted, as counts: the busiest second of Stripe requests
//! of all functions together stays within the template's budget (plus one
//! request per process at the second's edges and one for jitter: 24 of
//! Stripe's 25), and Brevo's 429s stay rare
//! ([`MAX_BREVO_429_PER_1000`]). The test's own checks read Stripe with an
//! observer key, outside the account's limit and figures.
//!
//! Figures are printed per phase (`DEPLOYED_SHAPE …` lines) before the
//! assertions, so a failing run still reports timeouts, cold starts, the DLQ.
//!
//! Knobs (environment, defaults in brackets): `DEPLOYED_SHAPE_CUSTOMERS`
//! [500], `DEPLOYED_SHAPE_WEBHOOK_CUSTOMERS` [100], `DEPLOYED_SHAPE_STRIPE_LATENCY_MS`
//! [200], `DEPLOYED_SHAPE_STRIPE_JITTER_MS` [50], `DEPLOYED_SHAPE_BREVO_LATENCY_MS`
//! [120], `DEPLOYED_SHAPE_BREVO_JITTER_MS` [30], `DEPLOYED_SHAPE_POLL_SECS` [20;
//! the template's schedule is 5 minutes], `DEPLOYED_SHAPE_VISIBILITY_SECS`
//! [the consumer's timeout + its batching window = 65; the template's 420 s
//! would outlast the test, so the queue attribute is shortened and the test
//! says so], `DEPLOYED_SHAPE_BUDGET_SECS` [420, per phase: an upper bound,
//! a phase ends as soon as Brevo holds the computed state; at the template's
//! budget of 20 Stripe requests per second for all functions together the
//! backfill of 500 customers needs a few minutes],
//! `DEPLOYED_SHAPE_WEBHOOK_CONCURRENCY` [4], `DEPLOYED_SHAPE_BREVO_RATE_LIMITS`
//! [1: the Brevo sandbox enforces the General plan's 10/s on contacts and
//! events and 5/s on orders; 0: unlimited], `DEPLOYED_SHAPE_STRIPE_RATE_LIMIT`
//! [25, Stripe's test-mode limit per account; 0: unlimited].
//!
//! Also here, smaller: moto's redrive policy (a message received
//! `maxReceiveCount` times moves to the DLQ) and the event source mapping's
//! settling of a batch, on the fake function binary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use e2e_tests::lambda::esm::{queue_depth, QueueDepth};
use e2e_tests::lambda::events::{http_api_event, http_status, sample, scheduled_event};
use e2e_tests::lambda::runtime::aws_stand_in_env;
use e2e_tests::lambda::stack::queue_arn;
use e2e_tests::lambda::template::parse_rate;
use e2e_tests::lambda::{
    function_binaries, scratch_dir, EventSourceMapping, Function, FunctionSpec, LocalStack, QueueRef, Schedule,
    SqsMapping, Template,
};
use e2e_tests::{aws, moto_endpoint, unique};
use futures::StreamExt;
use rand::SeedableRng;
use sandbox::brevo::{BrevoSandbox, BrevoSandboxOptions, Family};
use sandbox::stripe::{RateLimit, StripeSandbox, StripeSandboxOptions, TEST_MODE_PER_SECOND};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::dynamodb_cursors::DynamoCursors;
use shared::adapters::stripe::StripeClient;
use shared::adapters::stripe::StripeReader;
use shared::config::ProcessEnv;
use shared::domain::signature::sign_header;
use shared::settings::Settings;

use crate::common::soak_data::{
    contact_drift, customer_id, events_sent_twice, round_of_changes, seed_customers, Drift,
};
use crate::common::{now, stripe_key};

const WEBHOOK: &str = "StripeWebhookFunction";
const CONSUMER: &str = "StripeToBrevoFunction";
const POLLER: &str = "StripePollerFunction";
const WEBHOOK_SECRET: &str = "whsec_deployed_shape_0123456789";
/// The key the test's own checks read Stripe with (outside the account's figures).
const OBSERVER_KEY: &str = "sk_test_deployed_shape_observer_000000000";
/// Brevo 429s allowed per 1,000 Brevo requests. With the budget shared the
/// instances together stay within the plan's limits, so a 429 can only come
/// from requests bunched by scheduling at a second's edge; each one costs a
/// retry after Brevo's reset (≥ 1 s) and pauses that family in that instance.
/// 5 in 1,000 (0.5 %) keeps that cost negligible; the old per-process
/// budgets (8 rps per instance, 16 against 10) draw far more.
const MAX_BREVO_429_PER_1000: f64 = 5.0;
/// The connector config the functions and the expectations share.
const CONFIG: &str = "connectors:\n  stripe:\n    lists: {all_customers: 20, subscribers: 21, churned: 22}\n";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(env_u64(name, default))
}

/// The test's knobs (see the module doc).
#[derive(Debug, Clone)]
struct Knobs {
    customers: usize,
    webhook_customers: usize,
    stripe: (Duration, Duration),
    brevo: (Duration, Duration),
    poll_period: Duration,
    visibility: Duration,
    budget: Duration,
    webhook_concurrency: usize,
    brevo_rate_limits: bool,
    /// Stripe's per-account limit in the sandbox (`None`: unlimited).
    stripe_rate_limit: Option<u32>,
}

impl Knobs {
    fn from_env(template: &Template, mapping: &SqsMapping) -> Self {
        let customers = env_u64("DEPLOYED_SHAPE_CUSTOMERS", 500) as usize;
        let visibility_default = template.function_timeout(CONSUMER) + mapping.batching_window;
        Self {
            customers,
            webhook_customers: (env_u64("DEPLOYED_SHAPE_WEBHOOK_CUSTOMERS", 100) as usize).min(customers),
            stripe: (ms("DEPLOYED_SHAPE_STRIPE_LATENCY_MS", 200), ms("DEPLOYED_SHAPE_STRIPE_JITTER_MS", 50)),
            brevo: (ms("DEPLOYED_SHAPE_BREVO_LATENCY_MS", 120), ms("DEPLOYED_SHAPE_BREVO_JITTER_MS", 30)),
            poll_period: Duration::from_secs(env_u64("DEPLOYED_SHAPE_POLL_SECS", 20)),
            visibility: Duration::from_secs(env_u64("DEPLOYED_SHAPE_VISIBILITY_SECS", visibility_default.as_secs())),
            budget: Duration::from_secs(env_u64("DEPLOYED_SHAPE_BUDGET_SECS", 420)),
            webhook_concurrency: env_u64("DEPLOYED_SHAPE_WEBHOOK_CONCURRENCY", 4).max(1) as usize,
            brevo_rate_limits: env_u64("DEPLOYED_SHAPE_BREVO_RATE_LIMITS", 1) != 0,
            stripe_rate_limit: u32::try_from(env_u64("DEPLOYED_SHAPE_STRIPE_RATE_LIMIT", TEST_MODE_PER_SECOND.into()))
                .ok()
                .filter(|n| *n > 0),
        }
    }
}

/// Everything running, and what the figures are read from.
struct Deployment {
    stripe: StripeSandbox,
    brevo: BrevoSandbox,
    sqs: aws_sdk_sqs::Client,
    queue: QueueRef,
    dlq: QueueRef,
    webhook: Arc<Function>,
    consumer: Arc<Function>,
    poller: Arc<Function>,
    mapping: EventSourceMapping,
    schedule: Schedule,
    settings: Settings,
    reader: StripeReader,
    customers: usize,
    /// Stripe requests made by the checks, not by the functions.
    check_requests: std::sync::atomic::AtomicU64,
    /// The template's Stripe budget (all functions together, r/s) and the
    /// processes sharing it (poller + consumer instances).
    stripe_budget: f64,
    stripe_processes: u32,
    /// The consumer instances that can run at once (`MaximumConcurrency`).
    consumer_instances: usize,
    /// Brevo requests and 429s when the phase began.
    brevo_at_phase_start: std::sync::Mutex<(u64, u64)>,
}

/// The vendors' request figures of one phase (all functions together).
#[derive(Debug, Clone, Copy)]
struct Rates {
    /// Stripe requests of the account (the functions'), and its 429s.
    stripe_requests: u64,
    stripe_429: u64,
    /// The most Stripe requests that arrived within any one second.
    stripe_peak_1s: u32,
    stripe_mean_rps: f64,
    brevo_requests: u64,
    brevo_429: u64,
}

impl Rates {
    fn brevo_429_per_1000(&self) -> f64 {
        if self.brevo_requests == 0 {
            0.0
        } else {
            self.brevo_429 as f64 * 1_000.0 / self.brevo_requests as f64
        }
    }
}

/// How a phase ended.
struct Outcome {
    converged: bool,
    wall: Duration,
    drifted: usize,
    examples: Vec<String>,
    queue_left: QueueDepth,
    dlq: u64,
}

impl Deployment {
    /// Contacts that differ from the state computed now (count, a few examples).
    async fn drift(&self) -> (usize, Vec<String>) {
        let before = self.stripe.request_count();
        let results: Vec<(String, Drift)> = futures::stream::iter((0..self.customers).map(customer_id))
            .map(|cid| async move {
                let d = contact_drift(&self.reader, &self.brevo, &self.settings, &cid).await;
                (cid, d)
            })
            .buffer_unordered(32)
            .collect()
            .await;
        self.check_requests.fetch_add(self.stripe.request_count() - before, std::sync::atomic::Ordering::Relaxed);
        let mut bad: Vec<String> = results
            .into_iter()
            .filter_map(|(cid, d)| match d {
                Drift::Equal | Drift::NoEmail => None,
                Drift::Differs(v) => Some(format!("{cid}: {}", v.join("; "))),
                other => Some(format!("{cid}: {other:?}")),
            })
            .collect();
        bad.sort();
        let n = bad.len();
        bad.truncate(3);
        (n, bad)
    }

    /// Waits until the queue is empty after a poller run that started after
    /// `since` and found Stripe caught up, and Brevo holds the computed state;
    /// or until `budget` has passed.
    async fn converge(&self, since: Instant, budget: Duration) -> Outcome {
        let mut last = (usize::MAX, Vec::new());
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let run = self.schedule.last_run_since(since);
            let caught_up = run.as_ref().is_some_and(|r| r.result.as_ref().is_ok_and(|v| v["caught_up"] == true));
            let depth = queue_depth(&self.sqs, &self.queue.url)
                .await
                .unwrap_or(QueueDepth { visible: 1, ..QueueDepth::default() });
            let quiet = caught_up && depth.total() == 0 && self.consumer.busy() == 0 && self.poller.busy() == 0;
            let over = since.elapsed() >= budget;
            if quiet || over {
                last = self.drift().await;
                if quiet && last.0 == 0 {
                    break;
                }
            }
            if over {
                break;
            }
        }
        Outcome {
            converged: last.0 == 0,
            wall: since.elapsed(),
            drifted: last.0,
            examples: last.1,
            queue_left: queue_depth(&self.sqs, &self.queue.url).await.unwrap_or_default(),
            dlq: queue_depth(&self.sqs, &self.dlq.url).await.map(|d| d.total()).unwrap_or(u64::MAX),
        }
    }

    /// The phase's vendor figures; the counters start again for the next phase.
    fn take_rates(&self, wall: Duration) -> Rates {
        let s = self.stripe.rate_stats();
        self.stripe.reset_rate_stats();
        let now = (self.brevo.request_counts().total(), self.brevo.rate_limited().total());
        let before = std::mem::replace(&mut *self.brevo_at_phase_start.lock().expect("phase counters"), now);
        Rates {
            stripe_requests: s.requests,
            stripe_429: s.rate_limited,
            stripe_peak_1s: s.peak_per_second,
            stripe_mean_rps: s.requests as f64 / wall.as_secs_f64().max(0.001),
            brevo_requests: now.0 - before.0,
            brevo_429: now.1 - before.1,
        }
    }

    /// The budget assertions of a phase: counts, not timings. Requests are
    /// paced at least `1/rate` apart per process, so a one-second window
    /// holds at most the budget plus one request per process at its edges;
    /// one more is allowed for the scheduling jitter between a token and the
    /// request's arrival (the 5,000-customer run reached budget + processes).
    fn assert_within_budgets(&self, phase: &str, r: &Rates) {
        let allowed = self.stripe_budget + f64::from(self.stripe_processes) + 1.0;
        assert!(
            f64::from(r.stripe_peak_1s) <= allowed,
            "{phase}: {} Stripe requests in one second from all functions together, over the budget of {} \
             (+ one per process at the second's edges, + one for jitter): {r:?}",
            r.stripe_peak_1s,
            self.stripe_budget
        );
        assert!(
            r.brevo_429_per_1000() <= MAX_BREVO_429_PER_1000,
            "{phase}: {} Brevo 429s in {} requests ({:.1} per 1,000, at most {MAX_BREVO_429_PER_1000}): {r:?}",
            r.brevo_429,
            r.brevo_requests,
            r.brevo_429_per_1000()
        );
    }

    /// One `DEPLOYED_SHAPE` line (and the functions' counters) for the phase.
    fn report(&self, phase: &str, o: &Outcome, knobs: &Knobs, r: &Rates) {
        let stripe = self.stripe.request_count() - self.check_requests.load(std::sync::atomic::Ordering::Relaxed);
        let brevo_log = self.brevo.request_log();
        let brevo_429 = brevo_log.iter().filter(|r| r.status == 429).count();
        let secs = o.wall.as_secs_f64().max(0.001);
        let c = self.consumer.counters();
        println!(
            "DEPLOYED_SHAPE phase={phase} customers={} converged={} wall={secs:.1}s drifted={} \
             consumer_invocations={} consumer_timeouts={} consumer_cold_starts={} queue_left={:?} dlq={} \
             stripe_requests={stripe} stripe_rps={:.1} brevo_requests={} brevo_429={brevo_429} \
             stripe_latency={:?}±{:?} brevo_latency={:?}±{:?} visibility={:?}",
            self.customers,
            o.converged,
            o.drifted,
            c.invocations,
            c.timeouts,
            c.cold_starts,
            o.queue_left,
            o.dlq,
            stripe as f64 / secs,
            brevo_log.len(),
            knobs.stripe.0,
            knobs.stripe.1,
            knobs.brevo.0,
            knobs.brevo.1,
            knobs.visibility,
        );
        println!(
            "DEPLOYED_SHAPE rates phase={phase} customers={} stripe_budget={} stripe_processes={} \
             stripe_account_limit={} stripe_account_requests={} stripe_mean_rps={:.1} stripe_peak_1s={} \
             stripe_429={} brevo_phase_requests={} brevo_phase_429={} brevo_429_per_1000={:.2} consumer_instances={}",
            self.customers,
            self.stripe_budget,
            self.stripe_processes,
            knobs.stripe_rate_limit.map_or("none".to_owned(), |n| n.to_string()),
            r.stripe_requests,
            r.stripe_mean_rps,
            r.stripe_peak_1s,
            r.stripe_429,
            r.brevo_requests,
            r.brevo_429,
            r.brevo_429_per_1000(),
            self.consumer_instances,
        );
        println!("  consumer: {}", c.summary());
        println!("  poller:   {}", self.poller.counters().summary());
        println!("  webhook:  {}", self.webhook.counters().summary());
        println!("  mapping:  {}", self.mapping.stats().summary());
        let runs = self.schedule.runs();
        let last = runs.iter().rev().find_map(|r| r.result.as_ref().ok());
        println!("  poller runs={} last={}", runs.len(), last.map_or("-".to_owned(), Value::to_string));
        for e in &o.examples {
            println!("  drift: {e}");
        }
    }

    fn failure_context(&self) -> String {
        format!("consumer log tail:\n{}\npoller log tail:\n{}", self.consumer.log_tail(8), self.poller.log_tail(5))
    }
}

/// A function of the template, wired like the deployed one with the local stand-ins.
fn function(
    template: &Template,
    stack: &LocalStack,
    logical_id: &str,
    binary: std::path::PathBuf,
    overrides: &[(&str, String)],
    log_dir: &std::path::Path,
) -> FunctionSpec {
    let mut extra: Vec<(&str, String)> = overrides.to_vec();
    if let Some(format) = template.log_format(logical_id) {
        extra.push(("AWS_LAMBDA_LOG_FORMAT", format));
    }
    let mut env = stack.environment(template, logical_id, &extra).unwrap_or_else(|e| panic!("{e}"));
    env.extend(aws_stand_in_env());
    FunctionSpec {
        name: binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        binary,
        timeout: template.function_timeout(logical_id),
        memory_mb: template.function_memory_mb(logical_id),
        env,
        log_dir: log_dir.to_path_buf(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto and the release-shaped binaries: run scripts/test"]
async fn backfill_then_webhooks_converge_through_the_lambda_binaries_at_vendor_latency_without_timeouts() {
    let _ = moto_endpoint();
    let started = Instant::now();
    let bin_dir = function_binaries();
    let template = Template::workspace();
    let source = template.sqs_event_source(CONSUMER).expect("the consumer's SQS event");
    let mapping = SqsMapping::from_template(&source);
    let knobs = Knobs::from_env(&template, &mapping);
    let template_visibility = template.queue(&source.queue).expect("the event queue").visibility_timeout;
    println!(
        "DEPLOYED_SHAPE setup: {knobs:?}; mapping {mapping:?}; consumer timeout {:?}, poller timeout {:?} (reserved {:?}); \
         the queue's VisibilityTimeout is shortened from the template's {template_visibility:?} to {:?}",
        template.function_timeout(CONSUMER),
        template.function_timeout(POLLER),
        template.reserved_concurrency(POLLER),
        knobs.visibility
    );

    // Vendors at their pace, and the soak's data set.
    let mut stripe_opts =
        StripeSandboxOptions::default().with_latency(knobs.stripe.0, knobs.stripe.1).with_observer_key(OBSERVER_KEY);
    if let Some(n) = knobs.stripe_rate_limit {
        // Stripe's limit is the account's: every function shares it.
        stripe_opts = stripe_opts.with_rate_limit(RateLimit::per_second(n));
    }
    let stripe = StripeSandbox::start(stripe_opts).await.expect("stripe sandbox");
    let mut brevo_opts = BrevoSandboxOptions::default().with_latency(knobs.brevo.0, knobs.brevo.1);
    if knobs.brevo_rate_limits {
        // The General plan's limits (CONTRACT.md, "Vendor facts").
        brevo_opts = brevo_opts
            .with_rate_limit(Family::Contacts, 10)
            .with_rate_limit(Family::Events, 10)
            .with_rate_limit(Family::Orders, 5);
    }
    let brevo = BrevoSandbox::start(brevo_opts).await.expect("brevo sandbox");
    seed_customers(&stripe, knobs.customers, now() - 90 * 86_400);
    let settings = Settings::from_yaml(CONFIG, &ProcessEnv).expect("the test's connector config");
    let scratch = scratch_dir(&format!("deployed_shape-{}", std::process::id()));
    let config_path = scratch.join("connector.yaml");
    std::fs::write(&config_path, CONFIG).expect("config file");

    // The template's resources on moto.
    let aws = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let mut stack = LocalStack::new();
    let (dlq_id, _) = template.queue(&source.queue).and_then(|q| q.redrive).expect("a redrive policy");
    let dlq = stack.create_queue(&sqs, &template, &dlq_id, &unique("ds-dlq"), None).await.expect("DLQ");
    let queue = stack
        .create_queue(&sqs, &template, &source.queue, &unique("ds-events"), Some(knobs.visibility))
        .await
        .expect("queue");
    for (logical, create) in [("DedupTable", true), ("CursorTable", false)] {
        let name = unique(&format!("ds-{logical}"));
        if create {
            DynamoIdempotency::create_table(&ddb, &name).await.expect("dedup table");
        } else {
            DynamoCursors::create_table(&ddb, &name).await.expect("cursor table");
        }
        stack.add(logical, name, None);
    }
    let id = unique("ds");
    stack.create_secret("StripeSecretKeySecret", &format!("{id}-stripe"), &stripe_key());
    stack.create_secret("StripeWebhookSecretSecret", &format!("{id}-webhook"), WEBHOOK_SECRET);
    stack.create_secret("BrevoApiKeySecret", &format!("{id}-brevo"), &brevo.api_key());

    // The three functions, wired from the template.
    let overrides = [
        ("STRIPE_API_BASE", stripe.base_url()),
        ("BREVO_API_BASE", brevo.base_url()),
        ("CONNECTOR_CONFIG", config_path.display().to_string()),
    ];
    let spec = |logical: &str, bin: &str| function(&template, &stack, logical, bin_dir.join(bin), &overrides, &scratch);
    let webhook = Arc::new(Function::new(spec(WEBHOOK, "stripe-webhook"), knobs.webhook_concurrency));
    let consumer = Arc::new(Function::new(spec(CONSUMER, "stripe-to-brevo"), mapping.maximum_concurrency));
    let poller =
        Arc::new(Function::new(spec(POLLER, "stripe-poller"), template.reserved_concurrency(POLLER).unwrap_or(1)));
    let template_period = template.schedule(POLLER).map(|s| parse_rate(&s));
    // The budget the template gives all functions together, and who shares it.
    let stripe_budget = template
        .parameter_default("StripeRequestsPerSecond")
        .and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .expect("the template's StripeRequestsPerSecond");
    let stripe_processes =
        u32::try_from(mapping.maximum_concurrency + template.reserved_concurrency(POLLER).unwrap_or(1))
            .expect("a small number of processes");
    println!("DEPLOYED_SHAPE schedule: template {template_period:?}, test every {:?}", knobs.poll_period);

    // AWS drives them: the event source mapping and the schedule.
    let esm = EventSourceMapping::start(sqs.clone(), queue.clone(), mapping.clone(), Arc::clone(&consumer));
    let scheduled = sample("schedule/scheduled.json");
    let schedule =
        Schedule::start(Arc::clone(&poller), knobs.poll_period, move || scheduled_event(&scheduled, &unique("tick")));
    let reader = StripeReader::new(
        StripeClient::builder(stripe.base_url(), SecretString::from(OBSERVER_KEY.to_owned()))
            .requests_per_second(None)
            .build()
            .expect("stripe client"),
    );
    let d = Deployment {
        stripe,
        brevo,
        sqs,
        queue,
        dlq,
        webhook,
        consumer,
        poller,
        mapping: esm,
        schedule,
        settings,
        reader,
        customers: knobs.customers,
        check_requests: Default::default(),
        stripe_budget,
        stripe_processes,
        consumer_instances: mapping.maximum_concurrency,
        brevo_at_phase_start: Default::default(),
    };

    // 1. Backfill.
    let backfill = d.converge(started, knobs.budget + started.elapsed()).await;
    let rates = d.take_rates(backfill.wall);
    d.report("backfill", &backfill, &knobs, &rates);
    let timeouts = d.consumer.counters().timeouts;
    assert_eq!(
        timeouts,
        0,
        "the consumer overran its timeout {timeouts} times during the backfill\n{}",
        d.failure_context()
    );
    assert!(
        backfill.converged,
        "Brevo did not converge within {:?}: {} contacts differ\n{}",
        knobs.budget,
        backfill.drifted,
        d.failure_context()
    );
    assert_eq!(backfill.dlq, 0, "the DLQ holds {} messages", backfill.dlq);
    d.assert_within_budgets("backfill", &rates);

    // 2. A round of signed webhooks through the webhook function.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let events = round_of_changes(&d.stripe, &mut rng, 1, 0..knobs.webhook_customers, now());
    let http_sample = sample("webhook/apigw-v2/customer.created.json");
    let delivered = Instant::now();
    let statuses: Vec<Result<u16, String>> = futures::stream::iter(events.iter().enumerate())
        .map(|(i, ev)| {
            let (webhook, http_sample) = (&d.webhook, &http_sample);
            async move {
                let body = ev.to_string();
                let sig = sign_header(&[WEBHOOK_SECRET], now(), body.as_bytes());
                let req = http_api_event(http_sample, &body, &sig, &format!("ds-{i}"));
                match webhook.invoke(&req).await {
                    Ok(resp) => http_status(&resp).ok_or_else(|| resp.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .buffer_unordered(knobs.webhook_concurrency)
        .collect()
        .await;
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for s in &statuses {
        *by_status.entry(s.as_ref().map_or_else(|e| e.clone(), u16::to_string)).or_default() += 1;
    }
    println!(
        "DEPLOYED_SHAPE webhooks={} statuses={by_status:?} delivery={:.1}s",
        events.len(),
        delivered.elapsed().as_secs_f64()
    );
    let after_webhooks = d.converge(delivered, knobs.budget).await;
    let rates = d.take_rates(after_webhooks.wall);
    d.report("webhooks", &after_webhooks, &knobs, &rates);
    assert_eq!(by_status.get("200"), Some(&events.len()), "every webhook queued: {by_status:?}");
    let timeouts = d.consumer.counters().timeouts;
    assert_eq!(timeouts, 0, "the consumer overran its timeout {timeouts} times\n{}", d.failure_context());
    assert!(after_webhooks.converged, "Brevo did not converge after the webhooks: {} differ", after_webhooks.drifted);
    assert_eq!(after_webhooks.dlq, 0, "the DLQ holds {} messages", after_webhooks.dlq);
    let (twice, _) = events_sent_twice(&d.brevo);
    assert!(twice.is_empty(), "Brevo events recorded twice: {twice:?}");
    d.assert_within_budgets("webhooks", &rates);
    println!("DEPLOYED_SHAPE done in {:.1}s", started.elapsed().as_secs_f64());

    d.schedule.stop();
    d.mapping.stop().await;
    for f in [&d.webhook, &d.consumer, &d.poller] {
        f.shut_down().await;
    }
}

// ---------------------------------------------------------------------------
// The pieces, on moto and the fake function
// ---------------------------------------------------------------------------

async fn queue_with_redrive(sqs: &aws_sdk_sqs::Client, max_receive: u32, visibility_secs: u32) -> (QueueRef, QueueRef) {
    let mut refs = Vec::new();
    for (name, redrive) in [(unique("rd-dlq"), None), (unique("rd-q"), Some(max_receive))] {
        let mut req = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility_secs.to_string());
        if let (Some(max), Some(dlq)) = (redrive, refs.first()) {
            let dlq: &QueueRef = dlq;
            let policy = json!({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": max}).to_string();
            req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
        }
        let url = req.send().await.expect("queue").queue_url.expect("url");
        let arn = queue_arn(sqs, &url).await.expect("arn");
        refs.push(QueueRef { url, arn, region: "us-east-1".into() });
    }
    let q = refs.pop().expect("queue");
    (q, refs.pop().expect("dlq"))
}

/// Takes what a queue holds (received and deleted).
async fn take_bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("receive");
    for m in out.messages() {
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().expect("handle"))
            .send()
            .await
            .expect("delete");
    }
    out.messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect()
}

#[tokio::test]
#[ignore = "needs moto and the release-shaped binaries: run scripts/test"]
async fn moto_redrives_a_message_received_max_receive_count_times_to_the_dlq() {
    let sqs = aws_sdk_sqs::Client::new(&aws().await);
    let (q, dlq) = queue_with_redrive(&sqs, 3, 30).await;
    sqs.send_message().queue_url(&q.url).message_body("poison").send().await.expect("send");
    for n in 1..=3 {
        let got = sqs.receive_message().queue_url(&q.url).visibility_timeout(0).send().await.expect("receive");
        assert_eq!(got.messages().len(), 1, "receive {n} gets the message");
    }
    let fourth = sqs.receive_message().queue_url(&q.url).visibility_timeout(0).send().await.expect("receive");
    assert!(fourth.messages().is_empty(), "after maxReceiveCount receives it is not delivered again");
    assert_eq!(take_bodies(&sqs, &dlq.url).await, vec!["poison".to_owned()], "it moved to the DLQ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto and the release-shaped binaries: run scripts/test"]
async fn the_event_source_mapping_deletes_successes_and_lets_failures_and_timeouts_return_until_the_dlq() {
    let sqs = aws_sdk_sqs::Client::new(&aws().await);
    let (q, dlq) = queue_with_redrive(&sqs, 2, 1).await;
    for body in ["ok-1", "ok-2", "fail"] {
        sqs.send_message().queue_url(&q.url).message_body(body).send().await.expect("send");
    }
    let spec = FunctionSpec {
        name: "fake-function".into(),
        binary: env!("CARGO_BIN_EXE_fake-function").into(),
        timeout: Duration::from_secs(2),
        memory_mb: 128,
        env: Vec::new(),
        log_dir: scratch_dir(&format!("deployed_shape-esm-{}", std::process::id())),
    };
    let f = Arc::new(Function::new(spec, 1));
    let mapping = SqsMapping {
        batch_size: 10,
        // No window: a batch is one receive, so a message whose 1 s
        // visibility ran out cannot come twice into one batch.
        batching_window: Duration::ZERO,
        maximum_concurrency: 1,
        report_batch_item_failures: true,
    };
    let esm = EventSourceMapping::start(sqs.clone(), q.clone(), mapping, Arc::clone(&f));
    let wait_empty = |what: &'static str| {
        let (sqs, url) = (sqs.clone(), q.url.clone());
        async move {
            let t = Instant::now();
            while queue_depth(&sqs, &url).await.expect("depth").total() > 0 {
                assert!(t.elapsed() < Duration::from_secs(40), "{what}: the queue did not empty");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    wait_empty("failures").await;
    let s = esm.stats();
    assert_eq!(s.deleted, 2, "the two successes were deleted: {s:?}");
    assert!(s.item_failures == 2 && s.max_receive_count == 2, "the failure came back once more: {s:?}");
    assert_eq!(take_bodies(&sqs, &dlq.url).await, vec!["fail".to_owned()], "then the redrive policy moved it");

    sqs.send_message().queue_url(&q.url).message_body("hang").send().await.expect("send");
    wait_empty("timeouts").await;
    let c = f.counters();
    assert_eq!(c.timeouts, 2, "the hanging batch timed out on each of its 2 receives: {c:?}");
    assert!(c.cold_starts >= 2, "a timeout ends the container: {c:?}");
    assert_eq!(esm.stats().failed_batches.get("timeout"), Some(&2));
    assert_eq!(take_bodies(&sqs, &dlq.url).await, vec!["hang".to_owned()]);
    esm.stop().await;
    f.shut_down().await;
}
