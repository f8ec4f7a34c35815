//! `stripe-brevo`: the connector on one machine, and the operator's tool.
//! Today: `demo`. The local runner (`sync`, `serve`, `check`, `status`) with
//! its embedded SQLite store is being built (see README, "Status").

use clap::{Parser, Subcommand};

mod demo;

#[derive(Parser)]
#[command(name = "stripe-brevo", version, about = "Keeps Brevo contacts in step with Stripe payments")]
struct Cli {
    /// Embedded state file (used by the local runner).
    #[arg(long, global = true, default_value = "./stripe-brevo.db")]
    state: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the whole pipeline against built-in local Stripe and Brevo sandboxes
    /// seeded with sample data: no keys, no network, no AWS.
    Demo {
        /// How many sample Stripe customers to create.
        #[arg(long, default_value_t = 25)]
        customers: usize,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::telemetry::init("warn");
    let cli = Cli::parse();
    let _ = &cli.state;
    let res = match cli.command {
        Command::Demo { customers } => demo::run(customers).await,
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
