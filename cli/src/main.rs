//! `stripe-brevo`: the connector on one machine, and the operator's tool.
//!
//! - `sync`   one poller pass, then the consumer until the queue is empty;
//! - `serve`  the webhook endpoint, a queue worker and the poller on a schedule;
//! - `check`  Stripe and Brevo connection, permissions, lists, attributes;
//! - `status` cursors, contact counters, queue and dead-letter depth;
//! - `demo`   the whole pipeline against built-in local sandboxes.
//!
//! State is an embedded SQLite file (`--state`, default `./stripe-brevo.db`)
//! unless `--aws` is given: then the deployed stack's SQS queue and DynamoDB
//! tables (`QUEUE_URL`, `CURSOR_TABLE`, `DEDUP_TABLE`). This file only
//! parses the command line and dispatches; each command has its module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::state::StateChoice;

// Commands (used only by `main`).
mod check;
mod demo;
mod serve;
mod status;
mod sync;
// What the commands run on, none of which uses a command:
// `worker` → `clients`, `queue`; `poll` → `state`; `clients` → `state`,
// `dry_run`; `state` → `queue`; `dry_run`, `progress`, `queue` → (shared only).
mod clients;
mod dry_run;
mod poll;
mod progress;
mod queue;
mod state;
mod worker;

#[derive(Parser)]
#[command(name = "stripe-brevo", version, about = "Keeps Brevo contacts in step with Stripe payments")]
struct Cli {
    /// Embedded state file (queue, dedup records, cursors). Ignored with --aws.
    #[arg(long, global = true, default_value = "./stripe-brevo.db", value_name = "PATH")]
    state: PathBuf,
    /// Use the deployed stack's SQS queue and DynamoDB tables
    /// (QUEUE_URL, CURSOR_TABLE, DEDUP_TABLE) instead of the state file.
    #[arg(long, global = true)]
    aws: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One pass of the poller, then the consumer until the queue is empty.
    Sync(sync::SyncArgs),
    /// Webhook endpoint (POST /webhooks/stripe), queue worker and scheduled poller.
    Serve(serve::ServeArgs),
    /// Tests the connection: Stripe key and permissions, Brevo key, lists,
    /// attributes; one ✓/✗ line each; exits non-zero on any ✗.
    Check(check::CheckArgs),
    /// Per resource: last sync, cursor, synced count; contacts; queue depths.
    Status(status::StatusArgs),
    /// Runs the whole pipeline against built-in local Stripe and Brevo sandboxes
    /// seeded with sample data: no keys, no network, no AWS.
    Demo {
        /// How many sample Stripe customers to create.
        #[arg(long, default_value_t = 25)]
        customers: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    shared::telemetry::init(default_log);
    let state = if cli.aws { StateChoice::Aws } else { StateChoice::Local(cli.state) };
    let res = match cli.command {
        Command::Sync(args) => sync::run(state, args).await,
        Command::Serve(args) => serve::run(state, args).await,
        Command::Check(args) => check::run(args).await,
        Command::Status(args) => status::run(state, args).await,
        Command::Demo { customers } => demo::run(customers).await.map(|()| ExitCode::SUCCESS),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
