//! `stripe-to-brevo`: consumes the SQS queue and pushes to Brevo.
//! Wiring only; see `lib.rs` and `shared::pipeline::consume`. Cold init reads
//! the environment and config and builds AWS clients (no network call); the
//! vendor secrets are read on the first invocation and kept.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use shared::adapters::brevo::BrevoClient;
use shared::adapters::brevo::SkipUnchanged;
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::dynamodb_cursors::DynamoCursors;
use shared::adapters::sqs::{SqsDeadLetters, SqsQueue};
use shared::adapters::stripe::StripeReader;
use shared::config::{self, ProcessEnv};
use shared::pipeline::consume::{ConsumeOptions, Consumer};
use shared::ports::{CursorStore, DeadLetters, SystemClock};
use shared::wiring::{self, Secrets};
use tokio::sync::OnceCell;

type App = Consumer<StripeReader, SkipUnchanged<BrevoClient>, DynamoIdempotency, SystemClock>;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init("info");
    let env = ProcessEnv;
    let settings = wiring::settings(&env)?;
    let dedup_table = config::required(&env, config::DEDUP_TABLE)?;
    let aws = shared::adapters::aws::load().await;
    let secrets = Secrets::from_env(&env, &settings, Some(aws.clone()))?;
    let dead_letters: Option<Arc<dyn DeadLetters>> = config::optional(&env, "DLQ_URL").map(|url| {
        Arc::new(SqsDeadLetters(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), url))) as Arc<dyn DeadLetters>
    });
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let dedup = DynamoIdempotency::new(ddb.clone(), dedup_table);
    // Contact counters for `stripe-brevo status --aws` go to the cursor table.
    let status: Option<Arc<dyn CursorStore>> = config::optional(&env, config::CURSOR_TABLE)
        .map(|t| Arc::new(DynamoCursors::new(ddb.clone(), t)) as Arc<dyn CursorStore>);
    let parts = std::sync::Mutex::new(Some((dedup, dead_letters, status)));
    let app: OnceCell<App> = OnceCell::new();

    let init = || async {
        let stripe_key = secrets.stripe_key.get().await?.clone();
        let brevo_key = secrets.brevo_key.get().await?.clone();
        let (dedup, dead_letters, status) = parts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| config::ConfigError::invalid("consumer", "initialised twice"))?;
        Ok::<App, config::ConfigError>(Consumer {
            stripe: wiring::stripe_reader(&env, stripe_key)?,
            brevo: SkipUnchanged::new(wiring::brevo_client(&env, brevo_key, &settings)?, wiring::CONTACT_CACHE_TTL),
            dedup,
            clock: SystemClock,
            dead_letters,
            status,
            requeue: None,
            settings: settings.clone(),
            // A crashed invocation's claims block redelivery only this long:
            // twice the function's 60 s timeout, well under the visibility timeout.
            options: ConsumeOptions { in_progress_secs: 120, ..ConsumeOptions::default() },
        })
    };
    let app = &app;
    let init = &init;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let consumer = app.get_or_try_init(init).await?;
        Ok::<SqsBatchResponse, lambda_runtime::Error>(stripe_to_brevo::handle(consumer, event.payload).await)
    }))
    .await
}
