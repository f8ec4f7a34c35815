//! Adapters: the code that talks to the outside world, each behind a port
//! trait from [`crate::ports`].

pub mod aws;
pub mod brevo_cache;
pub mod brevo_http;
pub mod dynamodb;
pub mod dynamodb_cursors;
pub mod memory;
pub mod rate_limit;
pub mod secrets;
pub mod sqlite;
pub mod sqs;
pub mod stripe_http;
pub mod vendor_ports;
