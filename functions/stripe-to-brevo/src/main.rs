//! `stripe-to-brevo`: consumes the SQS queue and pushes to Brevo.
//! Wiring only; see `lib.rs` and `shared::pipeline::consume`. Cold init reads
//! [`ConsumerConfig`] and builds the AWS clients (no network call); the
//! vendor secrets are read on the first invocation and the consumer is kept.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use shared::adapters::brevo::BrevoClient;
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::dynamodb_cursors::DynamoCursors;
use shared::adapters::sqs::{SqsDeadLetters, SqsQueue};
use shared::adapters::stripe::StripeReader;
use shared::config::{ConfigError, ProcessEnv};
use shared::pipeline::consume::{ConsumeOptions, Consumer};
use shared::ports::{CursorStore, DeadLetters, EventQueue, SystemClock};
use shared::wiring::{ConsumerConfig, Deferred};
use stripe_to_brevo::HandlerError;

type App = Consumer<StripeReader, BrevoClient, DynamoIdempotency, SystemClock>;

/// What cold start builds; the rest waits for the secrets.
struct Parts {
    config: ConsumerConfig,
    aws: aws_config::SdkConfig,
    dedup: DynamoIdempotency,
    dead_letters: Option<Arc<dyn DeadLetters>>,
    status: Option<Arc<dyn CursorStore>>,
    requeue: Option<Arc<dyn EventQueue>>,
}

/// The consumer, once both secrets are read.
async fn build(p: Arc<Parts>) -> Result<App, ConfigError> {
    let stripe_key = p.config.stripe.load_key(Some(&p.aws)).await?;
    let brevo_key = p.config.brevo.load_key(Some(&p.aws)).await?;
    Ok(Consumer {
        stripe: p.config.stripe.reader(stripe_key)?,
        brevo: p.config.brevo.client(brevo_key, &p.config.settings)?,
        dedup: p.dedup.clone(),
        clock: SystemClock,
        dead_letters: p.dead_letters.clone(),
        status: p.status.clone(),
        requeue: p.requeue.clone(),
        ledger: None,
        settings: Arc::clone(&p.config.settings),
        // A crashed invocation's claims block redelivery only this long:
        // twice the function's 60 s timeout, well under the visibility timeout.
        options: ConsumeOptions { in_progress_secs: 120, ..ConsumeOptions::default() },
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init("info");
    let config = ConsumerConfig::from_env(&ProcessEnv)?;
    let aws = shared::adapters::aws::load().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let parts = Arc::new(Parts {
        dedup: DynamoIdempotency::new(ddb.clone(), config.dedup_table.clone()),
        dead_letters: config
            .dead_letter_queue_url
            .clone()
            .map(|url| Arc::new(SqsDeadLetters(SqsQueue::new(sqs.clone(), url))) as Arc<dyn DeadLetters>),
        requeue: config.queue_url.clone().map(|url| Arc::new(SqsQueue::new(sqs, url)) as Arc<dyn EventQueue>),
        // Contact counters for `stripe-brevo status --aws` go to the cursor table.
        status: config.cursor_table.clone().map(|t| Arc::new(DynamoCursors::new(ddb, t)) as Arc<dyn CursorStore>),
        config,
        aws,
    });
    let app = Deferred::new(move || build(Arc::clone(&parts)));
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let consumer = app.get().await.map_err(HandlerError::from)?;
        let deadline = stripe_to_brevo::deadline_instant(event.context.deadline);
        Ok::<_, HandlerError>(stripe_to_brevo::handle_until(consumer, event.payload, deadline).await)
    }))
    .await
}
