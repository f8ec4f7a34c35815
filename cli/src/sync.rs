//! `stripe-brevo sync`: one poller pass (backfill or incremental, per the
//! cursors), then the consumer until the queue is empty. Running it twice
//! sends nothing new the second time: event ids and backfill snapshot keys
//! are deduplicated in the state. `--dry-run` prints the Brevo requests as
//! JSON lines on stdout, sends none and leaves the state untouched.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use shared::adapters::sqlite::SqliteStore;
use shared::ports::{CursorStore, EventQueue, IdempotencyStore};

use crate::clients;
use crate::dry_run::{CliBrevo, DryRunBrevo};
use crate::queue::LocalQueue;
use crate::state::{Backend, StateChoice};
use crate::{poll, progress, worker};

#[derive(clap::Args, Debug, Clone)]
pub struct SyncArgs {
    /// Earliest creation date a backfill enumerates (overrides the config's `since`).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub since: Option<time::Date>,
    /// Backfill these resources again (comma-separated, e.g. customers,charges;
    /// the others resume where they are).
    #[arg(long, value_delimiter = ',', value_name = "a,b,…")]
    pub resources: Vec<String>,
    /// Start a full backfill from `since` again, ignoring the saved cursors.
    #[arg(long)]
    pub full: bool,
    /// Print the Brevo requests that would be sent (JSON lines) and send none.
    #[arg(long)]
    pub dry_run: bool,
    /// Only enqueue (with --aws: leave the messages to the deployed consumer).
    #[arg(long)]
    pub no_consume: bool,
    /// Seconds a received message stays invisible before it is retried.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub visibility_timeout: u64,
}

pub fn parse_date(s: &str) -> Result<time::Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt).map_err(|_| format!("{s:?} is not a date like 2024-01-31"))
}

pub async fn run(choice: StateChoice, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let settings = clients::settings()?;
    let visibility = i64::try_from(args.visibility_timeout.max(1)).unwrap_or(120);
    let real = Backend::open(&choice, visibility).await?;
    let backend = if args.dry_run { scratch_copy(&real, visibility).await? } else { real };
    let stripe = clients::stripe_reader(&settings, backend.aws.clone()).await?;
    let dry = Arc::new(DryRunBrevo::default());
    let brevo = if args.dry_run {
        CliBrevo::DryRun(Arc::clone(&dry))
    } else {
        CliBrevo::Real(clients::brevo_client(&settings, backend.aws.clone()).await?)
    };
    // With --dry-run stdout carries only the JSON lines.
    let say = |line: String| if args.dry_run { eprintln!("{line}") } else { println!("{line}") };

    let dlq_before = backend.work.depth().await.map(|d| d.dlq).unwrap_or(0);
    let pb = progress::spinner("polling Stripe…");
    let pass = poll::PassOptions::new(args.full, args.since, &args.resources)?;
    let polled =
        poll::run_once(&settings, &backend, stripe.client().clone(), &pass, &pb).await.context("polling Stripe")?;
    pb.finish_and_clear();
    say(format!(
        "poll: {} requests to Stripe, {} objects seen, {} messages enqueued",
        polled.requests(),
        polled.objects(),
        polled.messages()
    ));
    let poll_failed: Vec<String> =
        polled.failed().iter().map(|r| format!("{}: {}", r.resource, r.error.as_deref().unwrap_or(""))).collect();
    if args.no_consume {
        let depth = backend.work.depth().await?;
        say(format!("queue: {} messages waiting in {}", depth.depth, backend.describe));
        return Ok(if report_poll_failures(&poll_failed) { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }

    let consumer = clients::consumer(settings.clone(), &backend, brevo, stripe, visibility, args.dry_run);
    let pb = progress::spinner("consuming the queue…");
    let totals = worker::drain(backend.work.as_ref(), &consumer, |t, left| {
        pb.set_message(format!(
            "{} messages done, {} contacts pushed, {} events sent, {} left",
            t.consumed.messages, t.consumed.contacts_synced, t.consumed.events_sent, left
        ));
    })
    .await
    .context("consuming the queue")?;
    pb.finish_and_clear();
    say(format!(
        "consume: {} messages ({} duplicates), {} contacts {}, {} skipped (no email), {} failed, {} Brevo events {}",
        totals.consumed.messages,
        totals.consumed.duplicates,
        totals.consumed.contacts_synced,
        if args.dry_run { "would be pushed" } else { "pushed" },
        totals.consumed.contacts_skipped_no_email,
        totals.consumed.contacts_failed,
        totals.consumed.events_sent,
        if args.dry_run { "would be sent" } else { "sent" },
    ));
    if args.dry_run {
        say(format!("dry run: {} Brevo requests printed, none sent; state unchanged", dry.printed()));
    }
    let dlq_after = backend.work.depth().await.map(|d| d.dlq).unwrap_or(0);
    if report_poll_failures(&poll_failed) {
        return Ok(ExitCode::FAILURE);
    }
    if dlq_after > dlq_before {
        eprintln!(
            "error: {} messages could not be processed and were moved to the dead-letter queue (see `stripe-brevo status`; fix the cause, then sync again)",
            dlq_after - dlq_before
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the resources the poller could not read; true when there were any.
fn report_poll_failures(failed: &[String]) -> bool {
    for f in failed {
        let hint = if f.contains("API key is invalid") { " (401 Unauthorized: check STRIPE_SECRET_KEY)" } else { "" };
        eprintln!("error: polling {f}{hint}");
    }
    !failed.is_empty()
}

/// A throw-away in-memory state seeded with the real cursors, so a dry run
/// computes exactly what a real run would and changes nothing.
async fn scratch_copy(real: &Backend, visibility: i64) -> anyhow::Result<Backend> {
    let scratch = SqliteStore::open(":memory:")?;
    for rec in real.cursors.list().await.context("reading the cursors")? {
        scratch.save(&rec).await?;
    }
    Ok(Backend {
        queue: Arc::new(scratch.clone()) as Arc<dyn EventQueue>,
        work: Arc::new(LocalQueue { store: scratch.clone(), visibility_secs: visibility }),
        dedup: Arc::new(scratch.clone()) as Arc<dyn IdempotencyStore>,
        ledger: Arc::new(scratch.clone()),
        cursors: Arc::new(scratch.clone()) as Arc<dyn CursorStore>,
        dead_letters: None,
        local: real.local.clone(),
        aws: real.aws.clone(),
        describe: "(dry run)".to_owned(),
    })
}
