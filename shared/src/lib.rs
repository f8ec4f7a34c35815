//! The stripe-brevo connector as a library: the pure domain (signatures, Stripe
//! and Brevo types, metrics, mapping), the port traits the use cases need, the
//! adapters that implement them (SQS, DynamoDB, SQLite, Stripe and Brevo HTTP),
//! and the use cases themselves (ingest, consume, poll).
//!
//! Floors, each using only the ones below it:
//! `pipeline` → `ports` / `adapters` → `domain` → `config`.
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
