//! The SQS event source mapping, emulated over a real (moto) queue with the
//! real `aws-sdk-sqs`, the way Lambda polls a standard queue:
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html>
//!
//! - up to `maximum_concurrency` pollers, each invoking the function at
//!   most once at a time (so never more than that many invocations);
//! - a poller gathers a batch: `ReceiveMessage` of up to 10 (all system and
//!   message attributes), repeated until `batch_size` records, the batching
//!   window (from the first record) or the 6 MB payload limit is reached;
//! - it invokes the function with the exact [`sqs_event`] Lambda builds;
//! - on success it deletes every record that the answer does not return in
//!   `batchItemFailures` (with `ReportBatchItemFailures`; otherwise all), and
//!   leaves the returned ones in flight: they reappear after the queue's
//!   visibility timeout;
//! - on a function error, a timeout, a crash, or an answer Lambda would
//!   reject, the whole batch is left and reappears after the visibility
//!   timeout;
//! - the redrive policy is the queue's own: moto moves a message received
//!   `maxReceiveCount` times to the dead-letter queue on the next receive,
//!   as SQS does (checked by `deployed_shape::moto_redrives_…`).
//!
//! The visibility timeout is the queue's attribute: a test that cannot wait
//! the template's 420 s shortens it on the queue (and should say so).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::events::{batch_item_failures, record_size, sqs_event, PAYLOAD_LIMIT};
use super::runtime::{Function, InvokeError};
use super::template::SqsEventSource;

/// SQS returns at most 10 messages per `ReceiveMessage`.
pub const RECEIVE_MAX: usize = 10;
/// Pollers when the template sets no `MaximumConcurrency` (Lambda starts with five).
pub const DEFAULT_POLLERS: usize = 5;
/// The largest SQS message (so a batch stops gathering before it could overflow).
const MAX_MESSAGE: usize = 256 * 1024;

/// The mapping's settings (from the template's SQS event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMapping {
    pub batch_size: usize,
    pub batching_window: Duration,
    pub maximum_concurrency: usize,
    pub report_batch_item_failures: bool,
}

impl SqsMapping {
    pub fn from_template(source: &SqsEventSource) -> Self {
        Self {
            batch_size: source.batch_size.max(1),
            batching_window: source.batching_window,
            maximum_concurrency: source.maximum_concurrency.unwrap_or(DEFAULT_POLLERS).max(1),
            report_batch_item_failures: source.report_batch_item_failures,
        }
    }
}

/// A queue the mapping reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    pub url: String,
    pub arn: String,
    pub region: String,
}

/// What the mapping did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingStats {
    pub receive_calls: u64,
    /// Invocations (one per batch).
    pub batches: u64,
    /// Records delivered (a redelivered message counts again).
    pub records: u64,
    pub largest_batch: usize,
    pub deleted: u64,
    /// Records returned in `batchItemFailures` (left to reappear).
    pub item_failures: u64,
    /// Whole batches left to reappear, by reason.
    pub failed_batches: BTreeMap<String, u64>,
    /// Deletes SQS refused (a receipt handle gone stale: the message had
    /// already reappeared and been received again).
    pub delete_errors: u64,
    /// The highest `ApproximateReceiveCount` delivered.
    pub max_receive_count: u32,
}

impl MappingStats {
    pub fn failed_batch_count(&self) -> u64 {
        self.failed_batches.values().sum()
    }

    pub fn summary(&self) -> String {
        format!(
            "batches={} records={} largest_batch={} deleted={} item_failures={} failed_batches={:?} delete_errors={} \
             max_receive_count={} receive_calls={}",
            self.batches,
            self.records,
            self.largest_batch,
            self.deleted,
            self.item_failures,
            self.failed_batches,
            self.delete_errors,
            self.max_receive_count,
            self.receive_calls
        )
    }
}

struct Poller {
    sqs: aws_sdk_sqs::Client,
    queue: QueueRef,
    mapping: SqsMapping,
    function: Arc<Function>,
    stats: Arc<Mutex<MappingStats>>,
}

/// A running mapping; [`stop`](Self::stop) it (dropping aborts its pollers).
pub struct EventSourceMapping {
    stop: watch::Sender<bool>,
    pollers: Vec<JoinHandle<()>>,
    stats: Arc<Mutex<MappingStats>>,
}

impl EventSourceMapping {
    /// Starts `mapping.maximum_concurrency` pollers on `queue` for `function`.
    pub fn start(sqs: aws_sdk_sqs::Client, queue: QueueRef, mapping: SqsMapping, function: Arc<Function>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(Mutex::new(MappingStats::default()));
        let pollers = (0..mapping.maximum_concurrency)
            .map(|_| {
                let p = Poller {
                    sqs: sqs.clone(),
                    queue: queue.clone(),
                    mapping: mapping.clone(),
                    function: Arc::clone(&function),
                    stats: Arc::clone(&stats),
                };
                tokio::spawn(p.run(stopped.clone()))
            })
            .collect();
        Self { stop, pollers, stats }
    }

    pub fn stats(&self) -> MappingStats {
        lock(&self.stats).clone()
    }

    /// Stops polling; an invocation under way is awaited (its batch settled).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for p in self.pollers.drain(..) {
            let _ = p.await;
        }
    }
}

impl Drop for EventSourceMapping {
    fn drop(&mut self) {
        for p in &self.pollers {
            p.abort();
        }
    }
}

fn lock(stats: &Mutex<MappingStats>) -> std::sync::MutexGuard<'_, MappingStats> {
    stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Poller {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        loop {
            if *stopped.borrow() {
                return;
            }
            let batch = tokio::select! {
                b = self.gather() => b,
                _ = stopped.changed() => return,
            };
            if !batch.is_empty() {
                self.deliver(batch).await;
            }
        }
    }

    /// One batch: receives until the batch size, the window or the payload limit.
    async fn gather(&self) -> Vec<Message> {
        let mut batch: Vec<Message> = Vec::new();
        let mut bytes = 0usize;
        let mut window_end: Option<Instant> = None;
        loop {
            let left = window_end.map(|end| end.saturating_duration_since(Instant::now()));
            // Long polls of 1 s while waiting for a first record (so a stop
            // is noticed quickly), then at most what is left of the window.
            let wait_secs = left.map_or(1, |l| i32::try_from(l.as_secs()).unwrap_or(0).min(1));
            let want = RECEIVE_MAX.min(self.mapping.batch_size - batch.len());
            let got = self.receive(want, wait_secs).await;
            let empty = got.is_empty();
            for m in got {
                bytes += record_size(&m);
                batch.push(m);
            }
            if window_end.is_none() && !batch.is_empty() {
                window_end = Some(Instant::now() + self.mapping.batching_window);
            }
            let full = batch.len() >= self.mapping.batch_size || bytes + MAX_MESSAGE > PAYLOAD_LIMIT;
            let window_over = window_end.is_some_and(|end| Instant::now() >= end);
            if full || window_over {
                return batch;
            }
            if empty && wait_secs == 0 {
                let pause = window_end.map_or(Duration::ZERO, |e| e.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause.min(Duration::from_millis(200))).await;
            }
        }
    }

    async fn receive(&self, max: usize, wait_secs: i32) -> Vec<Message> {
        lock(&self.stats).receive_calls += 1;
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue.url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        match out {
            Ok(o) => o.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "event source mapping: ReceiveMessage failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                Vec::new()
            }
        }
    }

    /// Invokes the function with the batch and settles it.
    async fn deliver(&self, batch: Vec<Message>) {
        {
            let mut s = lock(&self.stats);
            s.batches += 1;
            s.records += batch.len() as u64;
            s.largest_batch = s.largest_batch.max(batch.len());
            let counts = batch.iter().filter_map(|m| {
                m.attributes()?.get(&MessageSystemAttributeName::ApproximateReceiveCount)?.parse::<u32>().ok()
            });
            s.max_receive_count = s.max_receive_count.max(counts.max().unwrap_or(0));
        }
        let event = sqs_event(&batch, &self.queue.arn, &self.queue.region);
        let result = self.function.invoke(&event).await;
        let ids: HashSet<String> = batch.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect();
        let failed = match &result {
            Ok(answer) if self.mapping.report_batch_item_failures => batch_item_failures(answer, &ids),
            Ok(_) => Ok(HashSet::new()),
            Err(e) => Err(reason(e)),
        };
        match failed {
            Ok(failed) => {
                lock(&self.stats).item_failures += failed.len() as u64;
                let done: Vec<&Message> =
                    batch.iter().filter(|m| m.message_id().is_none_or(|id| !failed.contains(id))).collect();
                self.delete(&done).await;
            }
            Err(why) => {
                tracing::warn!(function = %self.function.spec().name, messages = batch.len(), reason = %why, "event source mapping: the whole batch returns after the visibility timeout");
                let key = why.split(':').next().unwrap_or("error").to_owned();
                *lock(&self.stats).failed_batches.entry(key).or_default() += 1;
            }
        }
    }

    async fn delete(&self, messages: &[&Message]) {
        for chunk in messages.chunks(RECEIVE_MAX) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .build()
                        .ok()
                })
                .collect();
            let n = entries.len() as u64;
            match self.sqs.delete_message_batch().queue_url(&self.queue.url).set_entries(Some(entries)).send().await {
                Ok(out) => {
                    let refused = out.failed().len() as u64;
                    let mut s = lock(&self.stats);
                    s.deleted += n - refused;
                    s.delete_errors += refused;
                }
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "event source mapping: DeleteMessageBatch failed");
                    lock(&self.stats).delete_errors += n;
                }
            }
        }
    }
}

fn reason(e: &InvokeError) -> String {
    match e {
        InvokeError::Timeout(_) => "timeout".into(),
        InvokeError::FunctionError(b) => format!("function_error: {}", b.error_type),
        InvokeError::InitError(b) => format!("init_error: {}", b.error_type),
        InvokeError::Crashed(why) => format!("crashed: {why}"),
        InvokeError::Throttled => "throttled".into(),
    }
}

/// Visible, in-flight and delayed messages of a queue (SQS's approximate counts).
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<QueueDepth, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::All)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    let a = out.attributes().cloned().unwrap_or_default();
    let n = |k: A| a.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(QueueDepth {
        visible: n(A::ApproximateNumberOfMessages),
        in_flight: n(A::ApproximateNumberOfMessagesNotVisible),
        delayed: n(A::ApproximateNumberOfMessagesDelayed),
    })
}

/// A queue's approximate counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl QueueDepth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}
