//! The poller as the CLI runs it (`sync` once, `serve` on a schedule): the
//! same [`Poller`] as the `stripe-poller` Lambda, over the CLI's state.
//! Uses only [`crate::state`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use shared::adapters::stripe::StripeClient;
use shared::pipeline::poll::{self, BackfillRequest, PollOptions, PollReport, PollRequest, Poller};
use shared::ports::SystemClock;
use shared::settings::Settings;

use crate::state::Backend;

/// A CLI run has no Lambda deadline; this only bounds a runaway pass.
const PASS_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// What to ask the poller for.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    pub request: PollRequest,
}

impl PassOptions {
    /// `full`, `since` or `resources` restart a historical sync (of the
    /// named resources, from `since` or the config's `since`); without
    /// them each resource resumes where its cursor is.
    pub fn new(full: bool, since: Option<time::Date>, resources: &[String]) -> anyhow::Result<Self> {
        let resources = if resources.is_empty() {
            None
        } else {
            let mut names = Vec::new();
            for r in resources {
                let spec = poll::resource(r).ok_or_else(|| {
                    let known: Vec<&str> = poll::RESOURCES.iter().map(|s| s.name).collect();
                    anyhow::anyhow!("--resources: unknown resource {r:?} (known: {})", known.join(", "))
                })?;
                names.push(spec.name.to_owned());
            }
            Some(names)
        };
        let backfill = full || since.is_some() || resources.is_some();
        let since = since.map(|d| d.midnight().assume_utc().unix_timestamp());
        Ok(Self { request: PollRequest { backfill: backfill.then_some(BackfillRequest { since, resources }) } })
    }
}

/// A lease owner name unique to this process.
pub fn owner() -> String {
    format!("stripe-brevo-cli-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

/// One poller pass over `backend`'s queue and cursors.
pub async fn run_once(
    settings: &Arc<Settings>,
    backend: &Backend,
    stripe: StripeClient,
    opts: &PassOptions,
    pb: &ProgressBar,
) -> anyhow::Result<PollReport> {
    let poller = Poller {
        stripe,
        queue: Arc::clone(&backend.queue),
        cursors: Arc::clone(&backend.cursors),
        clock: SystemClock,
        settings: Arc::clone(settings),
        options: PollOptions::default(),
    };
    pb.set_message("polling Stripe (pages are checkpointed; Ctrl-C resumes next time)…");
    let report = poller.run(&opts.request, &owner(), Instant::now() + PASS_DEADLINE).await?;
    if !report.ran {
        anyhow::bail!("another poller holds the lease on {} (a running `serve`, or a crashed run whose lease has not expired yet)", backend.describe);
    }
    for r in report.failed() {
        tracing::warn!(resource = %r.resource, error = r.error.as_deref().unwrap_or(""), "resource could not be polled");
    }
    Ok(report)
}
