//! `stripe-poller`: EventBridge schedule → Stripe → SQS. Wiring only; see
//! `lib.rs` and `shared::pipeline::poll`. Cold init reads the environment
//! (`QUEUE_URL`, `CURSOR_TABLE`, `CONNECTOR_CONFIG`, `STRIPE_SECRET_KEY` or
//! `STRIPE_SECRET_KEY_ARN`/`_PARAM`, optional `STRIPE_API_BASE` and
//! `STRIPE_REQUESTS_PER_SECOND`) and builds the AWS clients without any
//! network call; the Stripe key is fetched on the first invocation and kept.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use shared::adapters::dynamodb_cursors::DynamoCursors;
use shared::adapters::secrets::{LazySecret, SecretSource};
use shared::adapters::sqs::SqsQueue;
use shared::adapters::stripe::StripeClient;
use shared::config::{self, ConfigError, ProcessEnv};
use shared::pipeline::poll::{PollOptions, Poller};
use shared::ports::SystemClock;
use shared::wiring;
use tokio::sync::OnceCell;

type App = Poller<StripeClient, SqsQueue, DynamoCursors, SystemClock>;

/// Optional client-side Stripe budget (requests/s); default 80 live, 20 test.
const STRIPE_REQUESTS_PER_SECOND: &str = "STRIPE_REQUESTS_PER_SECOND";

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init("info");
    let env = ProcessEnv;
    let settings = wiring::settings(&env)?;
    let queue_url = config::required(&env, config::QUEUE_URL)?;
    let table = config::required(&env, config::CURSOR_TABLE)?;
    let stripe_base = config::base_url(&env, config::STRIPE_API_BASE, config::DEFAULT_STRIPE_API_BASE)?;
    let rps = match config::optional(&env, STRIPE_REQUESTS_PER_SECOND) {
        Some(v) => Some(
            v.parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or_else(|| ConfigError::invalid(STRIPE_REQUESTS_PER_SECOND, "must be a positive number"))?,
        ),
        None => None,
    };
    let aws = shared::adapters::aws::load().await;
    let source = match &settings.stripe.secret_key {
        Some(k) => SecretSource::Value(k.clone()),
        None => SecretSource::from_env(&env, config::STRIPE_SECRET_KEY)?,
    };
    let stripe_key = LazySecret::new(config::STRIPE_SECRET_KEY, source, Some(aws.clone()));
    let parts = std::sync::Mutex::new(Some((
        SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url),
        DynamoCursors::new(aws_sdk_dynamodb::Client::new(&aws), table),
    )));
    let app: OnceCell<App> = OnceCell::new();

    let init = || async {
        let key = stripe_key.get().await?.clone();
        let mut builder = StripeClient::builder(stripe_base.clone(), key);
        if let Some(r) = rps {
            builder = builder.requests_per_second(Some(r));
        }
        let stripe = builder.build().map_err(|e| ConfigError::invalid(config::STRIPE_API_BASE, e.to_string()))?;
        let (queue, cursors) = parts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| ConfigError::invalid("poller", "initialised twice"))?;
        Ok::<App, ConfigError>(Poller {
            stripe,
            queue,
            cursors,
            clock: SystemClock,
            settings: Arc::clone(&settings),
            options: PollOptions::default(),
        })
    };
    let app = &app;
    let init = &init;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let poller = app.get_or_try_init(init).await?;
        let deadline = stripe_poller::deadline_from_epoch_ms(event.context.deadline);
        let out = stripe_poller::handle(poller, event.payload, &event.context.request_id, deadline).await?;
        Ok::<Value, lambda_runtime::Error>(out)
    }))
    .await
}
