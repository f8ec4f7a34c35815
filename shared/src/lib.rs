//! The stripe-brevo connector as a library: the pure domain (signatures, Stripe
//! and Brevo types, metrics, mapping), the port traits the use cases need, the
//! adapters that implement them (SQS, DynamoDB, SQLite, Stripe and Brevo HTTP),
//! and the use cases themselves (ingest, consume, poll).
//!
//! Floors, each using only the ones below it:
//! `wiring` → `pipeline` → `ports` / `adapters` → `domain` → `settings` → `config`.
//! - `wiring`, the composition root (typed per-function configs, adapter
//!   builders, deferred init), may use every floor; nothing here uses it.
//! - `settings` (the YAML file) uses only `config` (the variables);
//!   `domain::mapping` reads the settings.
//! - `telemetry` and `error` are helpers any floor may use; they use only
//!   `config`.
//!
//! Nothing here knows about Lambda; the `functions/*` binaries only wire.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod error;
pub mod pipeline;
pub mod ports;
pub mod settings;
pub mod telemetry;
pub mod wiring;
