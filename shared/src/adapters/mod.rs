//! Adapters: the code that talks to the outside world, each behind a port
//! trait from [`crate::ports`].

pub mod aws;
pub mod brevo;
pub mod dynamodb;
pub mod dynamodb_cursors;
pub mod dynamodb_ledger;
pub mod http;
pub mod memory;
pub mod secrets;
pub mod sqlite;
pub mod sqs;
pub mod stripe;
