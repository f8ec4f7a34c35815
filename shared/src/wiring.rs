//! Wiring, the composition root: the typed configuration of each function
//! ([`WebhookConfig`], [`ConsumerConfig`], [`PollerConfig`]) and the builders
//! of the real adapters, used alike by the Lambda `main.rs` files and the
//! CLI, once per cold start (or CLI run). Nothing here calls the network at
//! cold start: what needs a secret held in AWS is built on first use by a
//! [`Deferred`]. [`budget`] sizes each process's share of the vendors'
//! per-account rate limits.
//!
//! The top floor of the crate: it may use every other module; none uses it.

use std::sync::Arc;

use crate::config::{ConfigError, EnvSource};
use crate::settings::Settings;

pub mod budget;
mod configs;
mod deferred;
#[cfg(test)]
mod tests;

pub use configs::{
    verifier, BrevoApiConfig, ConsumerConfig, PollerConfig, SignatureConfig, StripeApiConfig, WebhookConfig,
};
pub use deferred::Deferred;

/// The settings from `CONNECTOR_CONFIG` (or the built-in default), shared.
pub fn settings(env: &dyn EnvSource) -> Result<Arc<Settings>, ConfigError> {
    Settings::from_env(env).map(Arc::new)
}
