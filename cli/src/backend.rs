//! Wiring shared by the commands: settings, secrets, the state (SQLite file
//! or the deployed AWS resources) and the consumer, built like the Lambdas
//! build theirs (`shared::wiring`).

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use shared::adapters::brevo::BrevoClient;
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::secrets::{LazySecret, SecretSource};
use shared::adapters::sqlite::{QueueDepth, SqliteStore};
use shared::adapters::sqs::{SqsDeadLetters, SqsQueue};
use shared::adapters::stripe::StripeReader;
use shared::config::{self, ProcessEnv};
use shared::pipeline::consume::{ConsumeOptions, Consumer, InboundMessage};
use shared::ports::{Clock, CursorStore, DeadLetters, EventQueue, IdempotencyStore, Source, SystemClock};
use shared::settings::Settings;
use shared::wiring;

use crate::dry_run::CliBrevo;
use crate::StateChoice;

/// The consumer as the CLI runs it.
pub type AppConsumer = Consumer<StripeReader, CliBrevo, Arc<dyn IdempotencyStore>, SystemClock>;

/// The connector's settings (`CONNECTOR_CONFIG` or the built-in default).
pub fn settings() -> anyhow::Result<Arc<Settings>> {
    wiring::settings(&ProcessEnv).map_err(|e| anyhow::anyhow!("{e}"))
}

/// One message handed out by a [`WorkQueue`].
#[derive(Debug, Clone)]
pub struct Delivery {
    pub inbound: InboundMessage,
    /// SQLite receipt or SQS receipt handle.
    pub handle: String,
    /// SQLite row id (0 on SQS).
    pub row: i64,
}

/// The receive side of a queue: what the Lambda event source mapping does
/// for the deployed consumer.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Up to `max` visible messages, each hidden for the visibility timeout.
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>>;
    /// Deletes a processed message.
    async fn ack(&self, d: &Delivery) -> anyhow::Result<()>;
    /// Makes a message visible again after `delay_secs`.
    async fn retry_later(&self, d: &Delivery, delay_secs: i64) -> anyhow::Result<()>;
    async fn depth(&self) -> anyhow::Result<QueueDepth>;
    /// Seconds until a message may be visible again; `None` when the queue is empty.
    async fn next_visible_in(&self) -> anyhow::Result<Option<i64>>;
}

/// The SQLite queue.
pub struct LocalQueue {
    pub store: SqliteStore,
    pub visibility_secs: i64,
}

#[async_trait]
impl WorkQueue for LocalQueue {
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        let got = self.store.receive(max, self.visibility_secs, SystemClock.now_unix()).await?;
        Ok(got.into_iter().map(|r| Delivery { inbound: r.inbound(), handle: r.receipt, row: r.id }).collect())
    }
    async fn ack(&self, d: &Delivery) -> anyhow::Result<()> {
        if !self.store.ack(d.row, &d.handle).await? {
            tracing::warn!(
                message_id = d.row,
                "message was delivered again before its acknowledgement (visibility timeout too short?)"
            );
        }
        Ok(())
    }
    async fn retry_later(&self, d: &Delivery, delay_secs: i64) -> anyhow::Result<()> {
        self.store.nack(d.row, &d.handle, delay_secs, SystemClock.now_unix()).await?;
        Ok(())
    }
    async fn depth(&self) -> anyhow::Result<QueueDepth> {
        Ok(self.store.depth(SystemClock.now_unix()).await?)
    }
    async fn next_visible_in(&self) -> anyhow::Result<Option<i64>> {
        Ok(self.store.next_visible_in(SystemClock.now_unix()).await?)
    }
}

/// The deployed SQS queue (receive/delete/change visibility).
pub struct SqsWork {
    pub queue: SqsQueue,
    pub dlq_url: Option<String>,
    pub visibility_secs: i32,
}

fn sqs_err<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug + Send + Sync + 'static>(
    e: aws_sdk_sqs::error::SdkError<E, R>,
) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e))
}

impl SqsWork {
    async fn count(&self, url: &str, names: &[QueueAttributeName]) -> anyhow::Result<u64> {
        let out = self
            .queue
            .client()
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(sqs_err)?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        Ok(names.iter().filter_map(|n| attrs.get(n)).filter_map(|v| v.parse::<u64>().ok()).sum())
    }
}

#[async_trait]
impl WorkQueue for SqsWork {
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        let out = self
            .queue
            .client()
            .receive_message()
            .queue_url(self.queue.queue_url())
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(1)
            .visibility_timeout(self.visibility_secs)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sqs_err)?;
        Ok(out
            .messages()
            .iter()
            .map(|m| {
                let attr = |k: &str| {
                    m.message_attributes().and_then(|a| a.get(k)).and_then(|v| v.string_value().map(str::to_owned))
                };
                Delivery {
                    inbound: InboundMessage {
                        message_id: m.message_id().unwrap_or_default().to_owned(),
                        body: m.body().unwrap_or_default().to_owned(),
                        event_id: attr("event_id"),
                        event_type: attr("type"),
                        source: attr("source").as_deref().and_then(Source::parse),
                        receive_count: m
                            .attributes()
                            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(1),
                    },
                    handle: m.receipt_handle().unwrap_or_default().to_owned(),
                    row: 0,
                }
            })
            .collect())
    }
    async fn ack(&self, d: &Delivery) -> anyhow::Result<()> {
        self.queue
            .client()
            .delete_message()
            .queue_url(self.queue.queue_url())
            .receipt_handle(&d.handle)
            .send()
            .await
            .map_err(sqs_err)?;
        Ok(())
    }
    async fn retry_later(&self, d: &Delivery, delay_secs: i64) -> anyhow::Result<()> {
        self.queue
            .client()
            .change_message_visibility()
            .queue_url(self.queue.queue_url())
            .receipt_handle(&d.handle)
            .visibility_timeout(i32::try_from(delay_secs.clamp(0, 43_200)).unwrap_or(0))
            .send()
            .await
            .map_err(sqs_err)?;
        Ok(())
    }
    async fn depth(&self) -> anyhow::Result<QueueDepth> {
        let url = self.queue.queue_url().to_owned();
        let visible = self
            .count(
                &url,
                &[
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesDelayed,
                ],
            )
            .await?;
        let in_flight = self.count(&url, &[QueueAttributeName::ApproximateNumberOfMessagesNotVisible]).await?;
        let dlq = match &self.dlq_url {
            Some(u) => {
                self.count(
                    u,
                    &[
                        QueueAttributeName::ApproximateNumberOfMessages,
                        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    ],
                )
                .await?
            }
            None => 0,
        };
        Ok(QueueDepth { depth: visible + in_flight, in_flight, dlq })
    }
    async fn next_visible_in(&self) -> anyhow::Result<Option<i64>> {
        let d = self.depth().await?;
        Ok((d.depth > 0).then_some(1))
    }
}

/// The state a command works on.
pub struct Backend {
    pub queue: Arc<dyn EventQueue>,
    pub work: Arc<dyn WorkQueue>,
    pub dedup: Arc<dyn IdempotencyStore>,
    pub cursors: Arc<dyn CursorStore>,
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
    /// The SQLite store in local mode.
    pub local: Option<SqliteStore>,
    /// The AWS SDK configuration in `--aws` mode (for secrets held in AWS).
    pub aws: Option<aws_config::SdkConfig>,
    /// Where the state lives, for messages.
    pub describe: String,
}

impl Backend {
    pub async fn open(choice: &StateChoice, visibility_secs: i64) -> anyhow::Result<Self> {
        match choice {
            StateChoice::Local(path) => {
                let store = SqliteStore::open(path)
                    .with_context(|| format!("opening the state file {} (--state)", path.display()))?;
                Ok(Self {
                    queue: Arc::new(store.clone()),
                    work: Arc::new(LocalQueue { store: store.clone(), visibility_secs }),
                    dedup: Arc::new(store.clone()),
                    cursors: Arc::new(store.clone()),
                    dead_letters: Some(Arc::new(store.clone())),
                    local: Some(store),
                    aws: None,
                    describe: path.display().to_string(),
                })
            }
            StateChoice::Aws => {
                let env = ProcessEnv;
                let queue_url =
                    config::required(&env, config::QUEUE_URL).map_err(|e| anyhow::anyhow!("{e} (needed by --aws)"))?;
                let cursor_table = config::required(&env, config::CURSOR_TABLE)
                    .map_err(|e| anyhow::anyhow!("{e} (needed by --aws)"))?;
                let dedup_table = config::required(&env, config::DEDUP_TABLE)
                    .map_err(|e| anyhow::anyhow!("{e} (needed by --aws)"))?;
                let aws = shared::adapters::aws::load().await;
                let sqs = aws_sdk_sqs::Client::new(&aws);
                let ddb = aws_sdk_dynamodb::Client::new(&aws);
                let queue = SqsQueue::new(sqs.clone(), queue_url.clone());
                let dlq_url = match config::optional(&env, "DLQ_URL") {
                    Some(u) => Some(u),
                    None => dlq_of(&queue).await,
                };
                let dead_letters = dlq_url
                    .clone()
                    .map(|u| Arc::new(SqsDeadLetters(SqsQueue::new(sqs.clone(), u))) as Arc<dyn DeadLetters>);
                Ok(Self {
                    queue: Arc::new(queue.clone()),
                    work: Arc::new(SqsWork {
                        queue,
                        dlq_url,
                        visibility_secs: i32::try_from(visibility_secs).unwrap_or(60),
                    }),
                    dedup: Arc::new(DynamoIdempotency::new(ddb.clone(), dedup_table)),
                    cursors: crate::poll::aws_cursors(ddb, cursor_table)?,
                    dead_letters,
                    local: None,
                    aws: Some(aws),
                    describe: format!("SQS {queue_url}"),
                })
            }
        }
    }
}

/// The DLQ URL from the queue's redrive policy, when it has one.
async fn dlq_of(queue: &SqsQueue) -> Option<String> {
    let out = queue
        .client()
        .get_queue_attributes()
        .queue_url(queue.queue_url())
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .ok()?;
    let policy = out.attributes()?.get(&QueueAttributeName::RedrivePolicy)?.clone();
    let arn = serde_json::from_str::<serde_json::Value>(&policy).ok()?.get("deadLetterTargetArn")?.as_str()?.to_owned();
    let name = arn.rsplit(':').next()?.to_owned();
    let url = queue.client().get_queue_url().queue_name(name).send().await.ok()?;
    url.queue_url().map(str::to_owned)
}

/// The Stripe reader from the environment; a missing key names its variable.
pub async fn stripe_reader(settings: &Settings, aws: Option<aws_config::SdkConfig>) -> anyhow::Result<StripeReader> {
    let env = ProcessEnv;
    let source = match &settings.stripe.secret_key {
        Some(k) => SecretSource::Value(k.clone()),
        None => SecretSource::from_env(&env, config::STRIPE_SECRET_KEY).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let key = LazySecret::new(config::STRIPE_SECRET_KEY, source, aws);
    let key = key.get().await.map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    wiring::stripe_reader(&env, key).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The Brevo client from the environment; a missing key names its variable.
pub async fn brevo_client(settings: &Settings, aws: Option<aws_config::SdkConfig>) -> anyhow::Result<BrevoClient> {
    let env = ProcessEnv;
    let source = SecretSource::from_env(&env, config::BREVO_API_KEY).map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = LazySecret::new(config::BREVO_API_KEY, source, aws);
    let key = key.get().await.map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    wiring::brevo_client(&env, key, settings).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The consumer over `backend`'s stores. With `dry_run`, Brevo writes are
/// printed instead of sent, and nothing is recorded as done.
pub async fn consumer(
    settings: Arc<Settings>,
    backend: &Backend,
    brevo: CliBrevo,
    stripe: StripeReader,
    visibility_secs: i64,
    dry_run: bool,
) -> AppConsumer {
    let dedup: Arc<dyn IdempotencyStore> = if dry_run {
        Arc::new(crate::dry_run::ReadOnlyDedup::new(backend.local.clone()))
    } else {
        Arc::clone(&backend.dedup)
    };
    Consumer {
        stripe,
        brevo,
        dedup,
        clock: SystemClock,
        dead_letters: if dry_run { None } else { backend.dead_letters.clone() },
        status: if dry_run { None } else { Some(Arc::clone(&backend.cursors)) },
        requeue: None,
        settings,
        // A claim must not outlive the message's invisibility: after a crash
        // the redelivered message can then take the stale claim over.
        options: ConsumeOptions { in_progress_secs: visibility_secs.max(1), ..ConsumeOptions::default() },
    }
}
