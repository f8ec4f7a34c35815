//! The connector's settings, the Stripe and Brevo clients and the consumer
//! as the CLI runs them, built with the same typed configs as the Lambdas
//! (`shared::wiring`). A CLI run reads its secrets at once: a missing or
//! unreadable one is an error naming its variable before any work starts.
//! Uses [`crate::state`] and [`crate::dry_run`].

use std::sync::Arc;

use shared::adapters::brevo::BrevoClient;
use shared::adapters::stripe::StripeReader;
use shared::config::ProcessEnv;
use shared::pipeline::consume::{ConsumeOptions, Consumer};
use shared::ports::{IdempotencyStore, SystemClock};
use shared::settings::Settings;
use shared::wiring::{self, BrevoApiConfig, StripeApiConfig};

use crate::dry_run::{CliBrevo, ReadOnlyDedup};
use crate::state::Backend;

/// The consumer as the CLI runs it.
pub type AppConsumer = Consumer<StripeReader, CliBrevo, Arc<dyn IdempotencyStore>, SystemClock>;

/// The connector's settings (`CONNECTOR_CONFIG` or the built-in default).
pub fn settings() -> anyhow::Result<Arc<Settings>> {
    Ok(wiring::settings(&ProcessEnv)?)
}

/// The Stripe reader from the environment; a missing key names its variable.
pub async fn stripe_reader(settings: &Settings, aws: Option<aws_config::SdkConfig>) -> anyhow::Result<StripeReader> {
    let config = StripeApiConfig::from_env(&ProcessEnv, settings)?;
    let key = config.load_key(aws.as_ref()).await?;
    Ok(config.reader(key)?)
}

/// The Brevo client from the environment; a missing key names its variable.
pub async fn brevo_client(settings: &Settings, aws: Option<aws_config::SdkConfig>) -> anyhow::Result<BrevoClient> {
    let config = BrevoApiConfig::from_env(&ProcessEnv)?;
    let key = config.load_key(aws.as_ref()).await?;
    Ok(config.client(key, settings)?)
}

/// The consumer over `backend`'s stores. With `dry_run`, Brevo writes are
/// printed instead of sent, and nothing is recorded as done.
pub fn consumer(
    settings: Arc<Settings>,
    backend: &Backend,
    brevo: CliBrevo,
    stripe: StripeReader,
    visibility_secs: i64,
    dry_run: bool,
) -> AppConsumer {
    let dedup: Arc<dyn IdempotencyStore> =
        if dry_run { Arc::new(ReadOnlyDedup::new(backend.local.clone())) } else { Arc::clone(&backend.dedup) };
    Consumer {
        stripe,
        brevo,
        dedup,
        clock: SystemClock,
        dead_letters: if dry_run { None } else { backend.dead_letters.clone() },
        status: if dry_run { None } else { Some(Arc::clone(&backend.cursors)) },
        // Fan-out units go back on the same queue, as in the Lambda.
        requeue: if dry_run { None } else { Some(Arc::clone(&backend.queue)) },
        // A dry run sends nothing, so it must record nothing either.
        ledger: if dry_run { None } else { Some(Arc::clone(&backend.ledger)) },
        settings,
        // A claim must not outlive the message's invisibility: after a crash
        // the redelivered message can then take the stale claim over. So a
        // copy whose twin holds the claim is due back once that claim has
        // expired (the local queue honours delays, as SQS does).
        options: ConsumeOptions {
            in_progress_secs: visibility_secs.max(1),
            twin_delay_secs: u32::try_from(visibility_secs.max(1)).unwrap_or(60),
            ..ConsumeOptions::default()
        },
    }
}
