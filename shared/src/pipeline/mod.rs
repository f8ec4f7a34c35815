//! Use cases. Every door (webhook, poller, CLI) produces a queue message; the
//! consumer is the only place that maps and pushes to Brevo.

pub mod consume;
pub mod ingest;
pub mod poll;
