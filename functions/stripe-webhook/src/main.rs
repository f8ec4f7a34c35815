//! `stripe-webhook`: verifies Stripe webhooks and queues them on SQS.
//! Wiring only; see `lib.rs` and `shared::pipeline::ingest`.
//! Cold init reads the environment and builds the SQS client: no network call.

use shared::adapters::secrets::{LazySecret, SecretSource};
use shared::adapters::sqs::SqsQueue;
use shared::config::{self, ProcessEnv};
use shared::ports::SystemClock;
use stripe_webhook::{handle, App};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init("info");
    let env = ProcessEnv;
    let queue_url = config::required(&env, config::QUEUE_URL)?;
    let tolerance = config::webhook_tolerance(&env)?;
    let source = SecretSource::from_env(&env, config::STRIPE_WEBHOOK_SECRET)?;
    let aws = shared::adapters::aws::load().await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
    let secret = LazySecret::new(config::STRIPE_WEBHOOK_SECRET, source, Some(aws));
    let app = App::new(queue, SystemClock, secret, tolerance);
    let app = &app;
    lambda_http::run(lambda_http::service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(handle(app, req).await)
    }))
    .await
}
