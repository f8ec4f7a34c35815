//! Poller load figures. Printed, never asserted.
//!
//! 1. Stripe requests for a backfill of every resource of the sandbox's demo
//!    data set (N objects per resource) against the minimum `ceil(N/100)`
//!    (target ≤ 1.05 × minimum + 1 per resource).
//! 2. SQS send calls per 1,000 enqueued messages (backfill snapshots and
//!    1,000 polled events), counted by a queue wrapper that charges what
//!    `SqsQueue` would: one `SendMessageBatch` per 10 messages of a
//!    `send_all`, one `SendMessage` per `send` (target ≤ 101).
//! 3. Objects/s processed in-process, network excluded: a fake Stripe feed
//!    serving pre-built page bodies (100 demo charges each, parsed per
//!    request like the HTTP adapter does) through the real `Poller` with the
//!    in-memory cursor store (target ≥ 20,000/s).
//! 4. Peak RSS (VmHWM) of a fresh child process backfilling 100,000 objects
//!    that way (target ≤ 64 MB).
//!
//! Run: `cargo bench -p e2e-tests --bench poller_load`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::stripe::{Seed, StripeSandbox, StripeSandboxOptions, DEFAULT_SECRET_KEY, DEMO_EPOCH};
use secrecy::SecretString;
use serde_json::value::RawValue;
use shared::adapters::memory::{FixedClock, MemoryCursors};
use shared::adapters::stripe::StripeClient;
use shared::pipeline::poll::{
    FeedError, FeedPage, FeedUsage, PollOptions, PollRequest, Poller, Position, StripeFeed, RESOURCES,
};
use shared::ports::{CursorStore, EventQueue, QueueError, QueueMessage};
use shared::settings::{Settings, SyncSettings};

const RSS_CHILD_ARG: &str = "--rss-child";
const NOW: i64 = DEMO_EPOCH + 320 * 86_400;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if std::env::args().any(|a| a == RSS_CHILD_ARG) {
        rt.block_on(rss_child());
        return;
    }
    rt.block_on(async {
        requests_vs_minimum().await;
        sqs_calls_per_1000().await;
        throughput().await;
    });
    rss_parent();
}

/// Counts the SQS API calls `SqsQueue` would make; keeps nothing.
#[derive(Default)]
struct CountingQueue {
    calls: AtomicU64,
    messages: AtomicU64,
}

#[async_trait::async_trait]
impl EventQueue for CountingQueue {
    async fn send(&self, _m: &QueueMessage) -> Result<(), QueueError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.messages.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn send_all(&self, ms: &[QueueMessage]) -> Result<(), QueueError> {
        self.calls.fetch_add(ms.len().div_ceil(10) as u64, Ordering::Relaxed);
        self.messages.fetch_add(ms.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn client(sb: &StripeSandbox) -> StripeClient {
    StripeClient::builder(sb.base_url(), SecretString::from(DEFAULT_SECRET_KEY.to_owned()))
        .requests_per_second(None)
        .build()
        .expect("stripe client")
}

async fn requests_vs_minimum() {
    let sb = StripeSandbox::start(StripeSandboxOptions::default().with_now(NOW)).await.expect("sandbox");
    sb.seed_demo_dataset(3_000, 7);
    let cursors = Arc::new(MemoryCursors::new());
    let p = Poller {
        stripe: client(&sb),
        queue: Arc::new(CountingQueue::default()),
        cursors: cursors.clone(),
        clock: FixedClock::at(NOW),
        settings: Arc::new(Settings::default()),
        options: PollOptions::default(),
    };
    let started = Instant::now();
    let r = p.run(&PollRequest::default(), "bench", Instant::now() + Duration::from_secs(3600)).await.expect("run");
    println!(
        "== 1. Stripe requests per backfilled resource (demo data set, 3,000 customers; {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("{:<22} {:>8} {:>9} {:>9} {:>10} {:>6}", "resource", "objects", "requests", "minimum", "target", "met");
    let (mut tot_req, mut tot_min) = (0u64, 0u64);
    for spec in RESOURCES {
        let rec = cursors.load(spec.name).await.expect("load").expect("record");
        let requests = sb.request_count_for(spec.path);
        let min = rec.synced.div_ceil(100);
        let target = 1.05 * min as f64 + 1.0;
        tot_req += requests;
        tot_min += min;
        println!(
            "{:<22} {:>8} {:>9} {:>9} {:>10.2} {:>6}",
            spec.name,
            rec.synced,
            requests,
            min,
            target,
            if requests as f64 <= target { "yes" } else { "NO" }
        );
    }
    println!("total: {tot_req} requests for a minimum of {tot_min} (caught up: {})", r.caught_up());
}

async fn sqs_calls_per_1000() {
    let sb = StripeSandbox::start(StripeSandboxOptions::default().with_now(NOW)).await.expect("sandbox");
    sb.seed_demo_dataset(3_000, 7);
    let queue = Arc::new(CountingQueue::default());
    let p = Poller {
        stripe: client(&sb),
        queue: queue.clone(),
        cursors: Arc::new(MemoryCursors::new()),
        clock: FixedClock::at(NOW),
        settings: Arc::new(Settings::default()),
        options: PollOptions::default(),
    };
    let far = || Instant::now() + Duration::from_secs(3600);
    p.run(&PollRequest::default(), "bench", far()).await.expect("backfill");
    let (bc, bm) = (queue.calls.load(Ordering::Relaxed), queue.messages.load(Ordering::Relaxed));
    for i in 0..1_000 {
        let cus = Seed::customer(&format!("cus_Demo{:06}", i % 3_000), None, NOW);
        sb.emit_event("customer.updated", cus);
    }
    p.run(&PollRequest::default(), "bench", far()).await.expect("incremental");
    let (ec, em) = (queue.calls.load(Ordering::Relaxed) - bc, queue.messages.load(Ordering::Relaxed) - bm);
    println!("== 2. SQS send calls per 1,000 enqueued messages");
    println!(
        "backfill snapshots: {bm} messages in {bc} calls = {:.1} per 1,000",
        bc as f64 * 1000.0 / bm.max(1) as f64
    );
    println!(
        "polled events:      {em} messages in {ec} calls = {:.1} per 1,000",
        ec as f64 * 1000.0 / em.max(1) as f64
    );
}

/// Serves `pages` pages cycling over pre-built bodies (parsed per request).
struct SyntheticFeed {
    bodies: Vec<String>,
    pages: usize,
    served: AtomicUsize,
}

impl SyntheticFeed {
    fn new(pages: usize) -> Self {
        let bodies = (0..20)
            .map(|k| {
                let data: Vec<serde_json::Value> = (0..100)
                    .map(|j| {
                        let cus = format!("cus_Syn{k:02}x{j:03}");
                        Seed::charge(&format!("ch_Syn{k:02}x{j:03}"), Some(&cus), 1_000 + j, "usd", NOW - (k * 100 + j))
                    })
                    .collect();
                serde_json::json!({"object": "list", "url": "/v1/charges", "has_more": true, "data": data}).to_string()
            })
            .collect();
        Self { bodies, pages, served: AtomicUsize::new(0) }
    }
}

#[async_trait::async_trait]
impl StripeFeed for SyntheticFeed {
    fn is_live(&self) -> bool {
        false
    }
    async fn page(
        &self,
        _path: &str,
        _params: &[(&str, String)],
        _position: Position<'_>,
    ) -> Result<FeedPage, FeedError> {
        let n = self.served.fetch_add(1, Ordering::Relaxed);
        let list: std::collections::HashMap<String, Box<RawValue>> =
            serde_json::from_str(&self.bodies[n % self.bodies.len()]).expect("page");
        let items: Vec<Box<RawValue>> = serde_json::from_str(list["data"].get()).expect("data");
        Ok(FeedPage { items, has_more: n + 1 < self.pages })
    }
    fn usage(&self) -> FeedUsage {
        FeedUsage { requests: self.served.load(Ordering::Relaxed) as u64, retries: 0 }
    }
}

/// Backfills `pages` × 100 synthetic charges (the `charges` resource only;
/// the other payments resources see the same feed once exhausted).
async fn synthetic_backfill(pages: usize) -> (u64, Duration) {
    let feed = Arc::new(SyntheticFeed::new(pages));
    let cursors = Arc::new(MemoryCursors::new());
    let mut settings = Settings::default();
    settings.stripe.sync =
        SyncSettings { customers: false, payments: true, subscriptions: false, invoices: false, products: false };
    let p = Poller {
        stripe: feed.clone(),
        queue: Arc::new(CountingQueue::default()),
        cursors: cursors.clone(),
        clock: FixedClock::at(NOW),
        settings: Arc::new(settings),
        options: PollOptions { max_pages_per_run: Some(pages as u64), ..PollOptions::default() },
    };
    let started = Instant::now();
    p.run(&PollRequest::default(), "bench", Instant::now() + Duration::from_secs(3600)).await.expect("run");
    let elapsed = started.elapsed();
    let rec = cursors.load("charges").await.expect("load").expect("record");
    (rec.synced, elapsed)
}

async fn throughput() {
    let page_bytes = SyntheticFeed::new(1).bodies[0].len();
    let (objects, elapsed) = synthetic_backfill(1_000).await;
    println!("== 3. In-process throughput (fake feed, {page_bytes} bytes per 100-charge page, parsed per request)");
    println!(
        "{objects} objects in {:.3} s = {:.0} objects/s",
        elapsed.as_secs_f64(),
        objects as f64 / elapsed.as_secs_f64()
    );
}

fn rss_parent() {
    let exe = std::env::current_exe().expect("exe");
    let out = std::process::Command::new(exe).arg(RSS_CHILD_ARG).output().expect("child");
    println!("== 4. Peak RSS backfilling 100,000 objects (child process)");
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

async fn rss_child() {
    let (objects, elapsed) = synthetic_backfill(1_000).await;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: ?").to_owned();
    println!("{objects} objects in {:.3} s; {hwm}", elapsed.as_secs_f64());
}
