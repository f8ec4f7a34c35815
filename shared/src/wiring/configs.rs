//! One typed configuration per function — [`WebhookConfig`],
//! [`ConsumerConfig`], [`PollerConfig`] — each read once from an
//! [`EnvSource`] and the YAML [`Settings`], failing fast with the variable's
//! name; and the parts they share ([`StripeApiConfig`], [`BrevoApiConfig`],
//! [`SignatureConfig`]), which the CLI reads for the same things.
//!
//! Reading a config makes no network call: a secret held in AWS stays a
//! [`SecretSource`] until it is loaded (on the first invocation, see
//! [`super::Deferred`]). Every variable is a constant of [`crate::config`];
//! `Debug` never prints a secret.

use std::sync::Arc;

use aws_config::SdkConfig;
use secrecy::SecretString;

use super::budget::{self, Instances, Role, StripeBudget};
use crate::adapters::brevo::{BrevoClient, BrevoConfig};
use crate::adapters::secrets::{LazySecret, SecretSource};
use crate::adapters::stripe::StripeClient;
use crate::adapters::stripe::StripeReader;
use crate::config::{self, ConfigError, EnvSource};
use crate::domain::signature::Verifier;
use crate::settings::Settings;

/// The Stripe API: where it is and the key.
#[derive(Debug, Clone)]
pub struct StripeApiConfig {
    /// `STRIPE_API_BASE` (default `https://api.stripe.com`).
    pub base_url: String,
    /// `connectors.stripe.secret_key`, else `STRIPE_SECRET_KEY` / `_ARN` / `_PARAM`.
    pub secret_key: SecretSource,
    /// `STRIPE_REQUESTS_PER_SECOND`, optional: this process's own
    /// client-side Stripe budget, not divided (poller and consumer alike);
    /// wins over [`StripeApiConfig::budget`]'s share when set.
    pub requests_per_second: Option<f64>,
    /// How this process paces Stripe: its own figure, else its part of
    /// `STRIPE_ACCOUNT_REQUESTS_PER_SECOND` given the poller and the
    /// `CONSUMER_MAX_CONCURRENCY` consumers (see [`super::budget`]).
    pub budget: StripeBudget,
}

impl StripeApiConfig {
    /// The consumer's (and the CLI's: alone, the role does not matter).
    pub fn from_env(env: &dyn EnvSource, settings: &Settings) -> Result<Self, ConfigError> {
        Self::for_role(env, settings, Role::Consumer)
    }

    /// A process in `role` (its part of the account's Stripe budget).
    pub fn for_role(env: &dyn EnvSource, settings: &Settings, role: Role) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: config::base_url(env, config::STRIPE_API_BASE, config::DEFAULT_STRIPE_API_BASE)?,
            secret_key: SecretSource::resolve(settings.stripe.secret_key.as_ref(), env, config::STRIPE_SECRET_KEY)?,
            requests_per_second: config::positive_number(env, config::STRIPE_REQUESTS_PER_SECOND)?,
            budget: StripeBudget::from_env(env, Instances::from_env(env)?, role)?,
        })
    }

    /// Reads the key (a network call when it is held in AWS).
    pub async fn load_key(&self, aws: Option<&SdkConfig>) -> Result<SecretString, ConfigError> {
        self.secret_key.load(config::STRIPE_SECRET_KEY, aws).await
    }

    /// A client for `key`, paced by [`StripeApiConfig::budget`] (the
    /// client's default when nothing is configured and the process is alone).
    pub fn client(&self, key: SecretString) -> Result<StripeClient, ConfigError> {
        let mut builder = StripeClient::builder(self.base_url.clone(), key);
        if let Some(pace) = self.budget.pace(builder.key_is_live()) {
            builder = builder.requests_per_second(Some(pace.per_second));
            if let Some(burst) = pace.burst {
                builder = builder.burst(burst);
            }
        }
        let client = builder.build().map_err(|e| ConfigError::invalid(config::STRIPE_API_BASE, e.to_string()))?;
        let (rate, burst) = client.budget();
        tracing::info!(requests_per_second = rate, burst, budget = ?self.budget, "Stripe request budget");
        Ok(client)
    }

    /// The consumer's Stripe side (client + product cache) for `key`.
    pub fn reader(&self, key: SecretString) -> Result<StripeReader, ConfigError> {
        self.client(key).map(StripeReader::new)
    }
}

/// The Brevo API: where it is and the key (the YAML holds no Brevo key).
#[derive(Debug, Clone)]
pub struct BrevoApiConfig {
    /// `BREVO_API_BASE` (default `https://api.brevo.com`).
    pub base_url: String,
    /// `BREVO_API_KEY` / `_ARN` / `_PARAM`.
    pub api_key: SecretSource,
    /// `CONSUMER_MAX_CONCURRENCY`: the consumers that share the Brevo budget.
    pub instances: Instances,
}

impl BrevoApiConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: config::base_url(env, config::BREVO_API_BASE, config::DEFAULT_BREVO_API_BASE)?,
            api_key: SecretSource::resolve(None, env, config::BREVO_API_KEY)?,
            instances: Instances::from_env(env)?,
        })
    }

    /// Reads the key (a network call when it is held in AWS).
    pub async fn load_key(&self, aws: Option<&SdkConfig>) -> Result<SecretString, ConfigError> {
        self.api_key.load(config::BREVO_API_KEY, aws).await
    }

    /// The client for `key`, rate limits this process's share of the
    /// connector's Brevo budget (`connectors.brevo.rate_limits`, see
    /// [`budget::brevo_limits`]).
    pub fn client(&self, key: SecretString, settings: &Settings) -> Result<BrevoClient, ConfigError> {
        let mut cfg = BrevoConfig::new(self.base_url.clone(), key);
        cfg.limits = budget::brevo_limits(&settings.brevo.rate_limits, self.instances);
        let l = &cfg.limits;
        tracing::info!(
            contacts_rps = l.contacts.per_second,
            events_rps = l.events.per_second,
            orders_rps = l.orders.per_second,
            shares = self.instances.brevo_shares(),
            "Brevo request budget"
        );
        BrevoClient::new(cfg).map_err(|e| ConfigError::invalid(config::BREVO_API_BASE, e.to_string()))
    }
}

/// Webhook signature checking: the endpoint secret(s) and the tolerance.
#[derive(Debug, Clone)]
pub struct SignatureConfig {
    /// `connectors.stripe.webhook_secret`, else `STRIPE_WEBHOOK_SECRET` /
    /// `_ARN` / `_PARAM`; several, comma-separated, during a rotation.
    pub secret: SecretSource,
    /// `STRIPE_WEBHOOK_TOLERANCE_SECS` (default 300, never 0).
    pub tolerance_secs: u64,
}

impl SignatureConfig {
    pub fn from_env(env: &dyn EnvSource, settings: &Settings) -> Result<Self, ConfigError> {
        let tolerance_secs = config::webhook_tolerance(env)?;
        let secret =
            SecretSource::resolve(settings.stripe.webhook_secret.as_ref(), env, config::STRIPE_WEBHOOK_SECRET)?;
        Ok(Self { secret, tolerance_secs })
    }

    /// The secret, fetched on first use and kept.
    pub fn lazy_secret(&self, aws: Option<SdkConfig>) -> LazySecret {
        LazySecret::new(config::STRIPE_WEBHOOK_SECRET, self.secret.clone(), aws)
    }

    /// Reads the secret now (a network call when it is held in AWS).
    pub async fn verifier(&self, aws: Option<&SdkConfig>) -> Result<Verifier, ConfigError> {
        let secret = self.secret.load(config::STRIPE_WEBHOOK_SECRET, aws).await?;
        verifier(&secret, self.tolerance_secs)
    }
}

/// The verifier for a (comma-separated) secret; one that holds no secret at
/// all is an error naming `STRIPE_WEBHOOK_SECRET`.
pub fn verifier(secret: &SecretString, tolerance_secs: u64) -> Result<Verifier, ConfigError> {
    let v = Verifier::from_comma_separated(secret, tolerance_secs);
    if v.secret_count() == 0 {
        return Err(ConfigError::invalid(config::STRIPE_WEBHOOK_SECRET, "holds no secret"));
    }
    Ok(v)
}

/// `stripe-webhook`: verify, then queue.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `QUEUE_URL`.
    pub queue_url: String,
    pub signature: SignatureConfig,
}

impl WebhookConfig {
    /// Reads `CONNECTOR_CONFIG` (for `webhook_secret`), then the rest.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let settings = Settings::from_env(env)?;
        Ok(Self {
            queue_url: config::required(env, config::QUEUE_URL)?,
            signature: SignatureConfig::from_env(env, &settings)?,
        })
    }
}

/// `stripe-to-brevo`: SQS batches to Brevo.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `CONNECTOR_CONFIG`, or the built-in default.
    pub settings: Arc<Settings>,
    /// `DEDUP_TABLE`.
    pub dedup_table: String,
    pub stripe: StripeApiConfig,
    pub brevo: BrevoApiConfig,
    /// `DLQ_URL`, optional: unprocessable messages are copied there.
    pub dead_letter_queue_url: Option<String>,
    /// `CURSOR_TABLE`, optional: where the contact counters go (for
    /// `stripe-brevo status --aws`).
    pub cursor_table: Option<String>,
    /// `QUEUE_URL`, optional: the event queue the consumer puts fan-out units
    /// and deferred copies back on (without it, fan-out is processed in place
    /// and work not reached before the deadline is returned for retry).
    pub queue_url: Option<String>,
}

impl ConsumerConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let settings = super::settings(env)?;
        let dedup_table = config::required(env, config::DEDUP_TABLE)?;
        Ok(Self {
            stripe: StripeApiConfig::from_env(env, &settings)?,
            brevo: BrevoApiConfig::from_env(env)?,
            dead_letter_queue_url: config::optional(env, config::DLQ_URL),
            cursor_table: config::optional(env, config::CURSOR_TABLE),
            queue_url: config::optional(env, config::QUEUE_URL),
            dedup_table,
            settings,
        })
    }
}

/// `stripe-poller`: Stripe to the queue, on a schedule.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// `CONNECTOR_CONFIG`, or the built-in default.
    pub settings: Arc<Settings>,
    /// `QUEUE_URL`.
    pub queue_url: String,
    /// `CURSOR_TABLE`: cursors and the lease.
    pub cursor_table: String,
    /// The Stripe API, with its budget (`STRIPE_REQUESTS_PER_SECOND`).
    pub stripe: StripeApiConfig,
}

impl PollerConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let settings = super::settings(env)?;
        let queue_url = config::required(env, config::QUEUE_URL)?;
        let cursor_table = config::required(env, config::CURSOR_TABLE)?;
        let stripe = StripeApiConfig::for_role(env, &settings, Role::Poller)?;
        Ok(Self { stripe, settings, queue_url, cursor_table })
    }

    /// The poller's Stripe client for `key`, with its budget.
    pub fn stripe_client(&self, key: SecretString) -> Result<StripeClient, ConfigError> {
        self.stripe.client(key)
    }
}
