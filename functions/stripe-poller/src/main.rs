//! `stripe-poller`: EventBridge schedule → Stripe → SQS. Wiring only; see
//! `lib.rs` and `shared::pipeline::poll`. Cold init reads [`PollerConfig`]
//! (`QUEUE_URL`, `CURSOR_TABLE`, `CONNECTOR_CONFIG`, the Stripe key or its
//! `_ARN`/`_PARAM`, optional `STRIPE_API_BASE` and
//! `STRIPE_REQUESTS_PER_SECOND`) and builds the AWS clients without any
//! network call; the Stripe key is fetched on the first invocation and the
//! poller is kept.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use shared::adapters::dynamodb_cursors::DynamoCursors;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::stripe::StripeClient;
use shared::config::{ConfigError, ProcessEnv};
use shared::pipeline::poll::{PollOptions, Poller};
use shared::ports::SystemClock;
use shared::wiring::{Deferred, PollerConfig};

type App = Poller<StripeClient, SqsQueue, DynamoCursors, SystemClock>;

/// What cold start builds; the Stripe client waits for the key.
struct Parts {
    config: PollerConfig,
    aws: aws_config::SdkConfig,
    queue: SqsQueue,
    cursors: DynamoCursors,
}

/// The poller, once the key is read.
async fn build(p: Arc<Parts>) -> Result<App, ConfigError> {
    let key = p.config.stripe.load_key(Some(&p.aws)).await?;
    Ok(Poller {
        stripe: p.config.stripe_client(key)?,
        queue: p.queue.clone(),
        cursors: p.cursors.clone(),
        clock: SystemClock,
        settings: Arc::clone(&p.config.settings),
        options: PollOptions::default(),
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init("info");
    let config = PollerConfig::from_env(&ProcessEnv)?;
    let aws = shared::adapters::aws::load().await;
    let parts = Arc::new(Parts {
        queue: SqsQueue::new(aws_sdk_sqs::Client::new(&aws), config.queue_url.clone()),
        cursors: DynamoCursors::new(aws_sdk_dynamodb::Client::new(&aws), config.cursor_table.clone()),
        config,
        aws,
    });
    let app = Deferred::new(move || build(Arc::clone(&parts)));
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let poller = app.get().await?;
        let deadline = stripe_poller::deadline_from_epoch_ms(event.context.deadline);
        stripe_poller::handle(poller, event.payload, &event.context.request_id, deadline).await
    }))
    .await
}
