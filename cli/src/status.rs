//! `stripe-brevo status [--json]`: per resource the last successful sync,
//! the cursor and the synced count; the consumer's contact counters; queue
//! and dead-letter depth. Reads the state only (no Stripe or Brevo key needed).

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{json, Value};
use shared::pipeline::poll;
use shared::ports::{ContactCounts, CursorRecord, SyncMode};

use crate::clients;
use crate::state::{Backend, StateChoice};

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// One JSON object on stdout (for scripts).
    #[arg(long)]
    pub json: bool,
}

fn rfc3339(t: Option<i64>) -> Option<String> {
    t.and_then(shared::domain::mapping::rfc3339)
}

fn mode_name(m: SyncMode) -> &'static str {
    match m {
        SyncMode::Backfill => "backfill",
        SyncMode::Incremental => "incremental",
    }
}

pub async fn run(choice: StateChoice, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let settings = clients::settings()?;
    // A state file that does not exist yet is an empty state (not created here).
    let choice = match &choice {
        StateChoice::Local(p) if !p.exists() => StateChoice::Local(":memory:".into()),
        other => other.clone(),
    };
    let backend = Backend::open(&choice, 60).await?;
    let mut records: BTreeMap<String, Option<CursorRecord>> =
        poll::enabled_resources(&settings.stripe.sync).iter().map(|s| (s.name.to_owned(), None)).collect();
    for r in backend.cursors.list().await? {
        records.insert(r.resource.clone(), Some(r));
    }
    let counts: ContactCounts = backend.cursors.contact_counts().await?;
    let depth = backend.work.depth().await?;

    if args.json {
        let resources: serde_json::Map<String, Value> = records
            .iter()
            .map(|(name, r)| {
                let v = match r {
                    Some(r) => json!({
                        "last_sync": rfc3339(r.last_success),
                        "cursor": r.cursor_text(),
                        "synced": r.synced,
                        "mode": mode_name(r.mode),
                        "last_run": rfc3339(r.last_run),
                        "last_error": r.last_error,
                        "requests": r.requests,
                        "messages_enqueued": r.messages_enqueued,
                    }),
                    None => json!({"last_sync": null, "cursor": null, "synced": 0, "mode": null, "last_run": null, "last_error": null, "requests": 0, "messages_enqueued": 0}),
                };
                (name.clone(), v)
            })
            .collect();
        let out = json!({
            "resources": resources,
            "contacts": {"synced": counts.synced, "skipped_no_email": counts.skipped_no_email, "failed": counts.failed},
            "queue": {"depth": depth.depth, "dlq": depth.dlq, "in_flight": depth.in_flight},
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }

    println!("state: {}", backend.describe);
    println!("{:<22} {:<12} {:<21} {:>9}  cursor", "resource", "mode", "last sync", "synced");
    for (name, r) in &records {
        match r {
            Some(r) => {
                println!(
                    "{:<22} {:<12} {:<21} {:>9}  {}",
                    name,
                    mode_name(r.mode),
                    rfc3339(r.last_success).unwrap_or_else(|| "never".into()),
                    r.synced,
                    r.cursor_text().unwrap_or_else(|| "-".into())
                );
                if let Some(e) = &r.last_error {
                    println!("{:<22} last error: {e}", "");
                }
            }
            None => println!("{:<22} {:<12} {:<21} {:>9}  -", name, "-", "never", 0),
        }
    }
    println!(
        "contacts: {} synced, {} skipped (no email), {} failed",
        counts.synced, counts.skipped_no_email, counts.failed
    );
    println!("queue: {} waiting ({} in flight), dead-letter queue: {}", depth.depth, depth.in_flight, depth.dlq);
    Ok(ExitCode::SUCCESS)
}
