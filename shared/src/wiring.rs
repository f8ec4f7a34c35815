//! Builds the real adapters from configuration, once per cold start (or CLI
//! run). Shared by the Lambda `main.rs` files and the CLI so they wire alike.
//! Nothing here calls the network: secrets from AWS are fetched by
//! [`LazySecret`] on first use.

use std::sync::Arc;

use secrecy::SecretString;

use crate::adapters::brevo::{BrevoClient, BrevoConfig, BrevoLimits, Rate};
use crate::adapters::secrets::{LazySecret, SecretSource};
use crate::adapters::stripe::StripeClient;
use crate::adapters::stripe::StripeReader;
use crate::config::{self, ConfigError, EnvSource};
use crate::settings::Settings;

/// How long a contact sent unchanged is not sent again (see
/// [`crate::adapters::brevo::SkipUnchanged`]).
pub const CONTACT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Where the three vendor secrets come from.
pub struct Secrets {
    pub stripe_key: LazySecret,
    pub brevo_key: LazySecret,
}

impl Secrets {
    pub fn from_env(
        env: &dyn EnvSource,
        settings: &Settings,
        aws: Option<aws_config::SdkConfig>,
    ) -> Result<Self, ConfigError> {
        let stripe = match &settings.stripe.secret_key {
            Some(k) => SecretSource::Value(k.clone()),
            None => SecretSource::from_env(env, config::STRIPE_SECRET_KEY)?,
        };
        let brevo = SecretSource::from_env(env, config::BREVO_API_KEY)?;
        Ok(Self {
            stripe_key: LazySecret::new(config::STRIPE_SECRET_KEY, stripe, aws.clone()),
            brevo_key: LazySecret::new(config::BREVO_API_KEY, brevo, aws),
        })
    }
}

/// The Stripe reader (client + product cache) for a key.
pub fn stripe_reader(env: &dyn EnvSource, key: SecretString) -> Result<StripeReader, ConfigError> {
    let base = config::base_url(env, config::STRIPE_API_BASE, config::DEFAULT_STRIPE_API_BASE)?;
    let client = StripeClient::builder(base, key)
        .build()
        .map_err(|e| ConfigError::invalid(config::STRIPE_API_BASE, e.to_string()))?;
    Ok(StripeReader::new(client))
}

/// The Brevo client for a key, rate limits from the settings.
pub fn brevo_client(env: &dyn EnvSource, key: SecretString, settings: &Settings) -> Result<BrevoClient, ConfigError> {
    let base = config::base_url(env, config::BREVO_API_BASE, config::DEFAULT_BREVO_API_BASE)?;
    let mut cfg = BrevoConfig::new(base, key);
    let r = settings.brevo.rate_limits;
    let d = BrevoLimits::default();
    cfg.limits = BrevoLimits {
        contacts: Rate::per_second(f64::from(r.contacts_rps), r.contacts_rps.max(1)),
        events: Rate::per_second(f64::from(r.events_rps), r.events_rps.max(1)),
        orders: Rate::per_second(f64::from(r.orders_rps), r.orders_rps.max(1)),
        other: d.other,
    };
    BrevoClient::new(cfg).map_err(|e| ConfigError::invalid(config::BREVO_API_BASE, e.to_string()))
}

/// The settings from `CONNECTOR_CONFIG` (or the built-in default), shared.
pub fn settings(env: &dyn EnvSource) -> Result<Arc<Settings>, ConfigError> {
    Settings::from_env(env).map(Arc::new)
}
