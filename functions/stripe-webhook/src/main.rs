//! `stripe-webhook`: verifies Stripe webhooks and queues them on SQS.
//! Wiring only; see `lib.rs` and `shared::pipeline::ingest`.
//! Cold init reads [`WebhookConfig`] (`QUEUE_URL`, `CONNECTOR_CONFIG`'s
//! `webhook_secret` else `STRIPE_WEBHOOK_SECRET` or its `_ARN`/`_PARAM`,
//! optional `STRIPE_WEBHOOK_TOLERANCE_SECS`) and builds the SQS client: no
//! network call; the secret is read on the first request and kept.

use shared::adapters::sqs::SqsQueue;
use shared::config::ProcessEnv;
use shared::ports::SystemClock;
use shared::wiring::WebhookConfig;
use stripe_webhook::{handle, App};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init("info");
    let config = WebhookConfig::from_env(&ProcessEnv)?;
    let aws = shared::adapters::aws::load().await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), config.queue_url);
    let secret = config.signature.lazy_secret(Some(aws));
    let app = App::new(queue, SystemClock, secret, config.signature.tolerance_secs);
    let app = &app;
    lambda_http::run(lambda_http::service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(handle(app, req).await)
    }))
    .await
}
