//! Typed configuration: the environment variables of CONTRACT.md and the
//! connector's YAML file. Loaded once per cold start; a missing or malformed
//! value is an error naming the variable (or YAML path), never a default.
//! Secrets are [`SecretString`]s and never print.
//!
//! The lowest floor of the crate: it uses nothing else of it. Every variable
//! the connector reads is named here once; the typed per-function configs
//! that read them are in `wiring` (the top floor).

use secrecy::SecretString;

pub const STRIPE_SECRET_KEY: &str = "STRIPE_SECRET_KEY";
pub const STRIPE_WEBHOOK_SECRET: &str = "STRIPE_WEBHOOK_SECRET";
pub const BREVO_API_KEY: &str = "BREVO_API_KEY";
pub const STRIPE_API_BASE: &str = "STRIPE_API_BASE";
pub const BREVO_API_BASE: &str = "BREVO_API_BASE";
pub const CONNECTOR_CONFIG: &str = "CONNECTOR_CONFIG";
pub const QUEUE_URL: &str = "QUEUE_URL";
pub const CURSOR_TABLE: &str = "CURSOR_TABLE";
pub const DEDUP_TABLE: &str = "DEDUP_TABLE";
/// Optional: the dead-letter queue the consumer copies unprocessable messages to.
pub const DLQ_URL: &str = "DLQ_URL";
/// Optional: signature tolerance in seconds (default 300, never 0).
pub const STRIPE_WEBHOOK_TOLERANCE_SECS: &str = "STRIPE_WEBHOOK_TOLERANCE_SECS";
/// Optional: **this process's own** client-side Stripe budget (requests/s),
/// not divided among anyone (the meaning it always had); when set it wins
/// over the part of [`STRIPE_ACCOUNT_REQUESTS_PER_SECOND`]. Without either:
/// 80 live, 20 test (of which the process takes its part when
/// [`CONSUMER_MAX_CONCURRENCY`] is set).
pub const STRIPE_REQUESTS_PER_SECOND: &str = "STRIPE_REQUESTS_PER_SECOND";
/// Optional: the Stripe budget (requests/s) of **the whole connector** on the
/// Stripe account — every process together; each takes its part (the poller
/// a tenth, the consumers the rest equally: see `wiring::budget`). The
/// template passes its `StripeRequestsPerSecond`.
pub const STRIPE_ACCOUNT_REQUESTS_PER_SECOND: &str = "STRIPE_ACCOUNT_REQUESTS_PER_SECOND";
/// Optional: how many consumer instances can run at once (the event source
/// mapping's `MaximumConcurrency`), so each process sizes its share of the
/// vendors' per-account limits. Unset: this process is alone (the CLI).
pub const CONSUMER_MAX_CONCURRENCY: &str = "CONSUMER_MAX_CONCURRENCY";
/// The log filter (read by `telemetry`).
pub const RUST_LOG: &str = "RUST_LOG";
/// `JSON` gives one JSON object per log line (read by `telemetry`).
pub const AWS_LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
/// A secret `VAR` deployed in AWS Secrets Manager is named by `VAR_ARN`…
pub const ARN_SUFFIX: &str = "_ARN";
/// …and one in SSM Parameter Store (SecureString) by `VAR_PARAM`.
pub const PARAM_SUFFIX: &str = "_PARAM";

pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_BREVO_API_BASE: &str = "https://api.brevo.com";
/// Stripe's own default signature tolerance (seconds) in every official SDK.
pub const DEFAULT_WEBHOOK_TOLERANCE_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set")]
    Missing { var: String },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: String, reason: String },
    #[error("could not read secret for {var}: {reason}")]
    SecretUnavailable { var: String, reason: String },
    #[error("config {path}: {reason}")]
    File { path: String, reason: String },
}

impl ConfigError {
    pub fn invalid(var: &str, reason: impl Into<String>) -> Self {
        Self::Invalid { var: var.to_owned(), reason: reason.into() }
    }

    /// A short name for the kind of failure (a Lambda's `errorType`):
    /// `SecretUnavailable` when a secret could not be read from AWS (may
    /// pass on a retry), `ConfigError` for a missing or wrong setting.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SecretUnavailable { .. } => "SecretUnavailable",
            Self::Missing { .. } | Self::Invalid { .. } | Self::File { .. } => "ConfigError",
        }
    }
}

/// Where values come from; the process environment in production, a map in
/// tests (so tests never mutate the global environment).
pub trait EnvSource {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

/// A non-empty value or `None`.
pub fn optional(env: &dyn EnvSource, name: &str) -> Option<String> {
    env.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A non-empty value or an error naming the variable.
pub fn required(env: &dyn EnvSource, name: &str) -> Result<String, ConfigError> {
    optional(env, name).ok_or_else(|| ConfigError::Missing { var: name.to_owned() })
}

/// A secret held directly in the environment (local runs).
pub fn required_secret(env: &dyn EnvSource, name: &str) -> Result<SecretString, ConfigError> {
    required(env, name).map(SecretString::from)
}

/// A base URL: `http(s)://host[:port]` without a trailing slash.
pub fn base_url(env: &dyn EnvSource, name: &str, default: &str) -> Result<String, ConfigError> {
    let raw = optional(env, name).unwrap_or_else(|| default.to_owned());
    let parsed = url::Url::parse(&raw).map_err(|e| ConfigError::invalid(name, e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::invalid(name, "must be an http(s) URL"));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// Signature tolerance (seconds); 300 by default, never below 1.
pub fn webhook_tolerance(env: &dyn EnvSource) -> Result<u64, ConfigError> {
    match optional(env, STRIPE_WEBHOOK_TOLERANCE_SECS) {
        None => Ok(DEFAULT_WEBHOOK_TOLERANCE_SECS),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ConfigError::invalid(STRIPE_WEBHOOK_TOLERANCE_SECS, "must be a whole number of seconds ≥ 1")),
        },
    }
}

/// An optional positive, finite number (e.g. a rate), or an error naming the variable.
pub fn positive_number(env: &dyn EnvSource, name: &str) -> Result<Option<f64>, ConfigError> {
    optional(env, name)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or_else(|| ConfigError::invalid(name, "must be a positive number"))
        })
        .transpose()
}

/// An optional whole number ≥ 1 (e.g. a count of instances), or an error naming the variable.
pub fn positive_integer(env: &dyn EnvSource, name: &str) -> Result<Option<u32>, ConfigError> {
    optional(env, name)
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ConfigError::invalid(name, "must be a whole number ≥ 1"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = required(&env(&[]), STRIPE_WEBHOOK_SECRET).unwrap_err();
        assert_eq!(e.to_string(), "STRIPE_WEBHOOK_SECRET is not set");
        let e = required(&env(&[(STRIPE_WEBHOOK_SECRET, "  ")]), STRIPE_WEBHOOK_SECRET).unwrap_err();
        assert!(matches!(e, ConfigError::Missing { .. }));
    }

    #[test]
    fn base_urls_default_and_validate() {
        assert_eq!(base_url(&env(&[]), STRIPE_API_BASE, DEFAULT_STRIPE_API_BASE).unwrap(), "https://api.stripe.com");
        assert_eq!(
            base_url(&env(&[(STRIPE_API_BASE, "http://127.0.0.1:9/")]), STRIPE_API_BASE, DEFAULT_STRIPE_API_BASE)
                .unwrap(),
            "http://127.0.0.1:9"
        );
        assert!(base_url(&env(&[(STRIPE_API_BASE, "ftp://x")]), STRIPE_API_BASE, "").is_err());
    }

    #[test]
    fn tolerance_is_never_zero() {
        assert_eq!(webhook_tolerance(&env(&[])).unwrap(), 300);
        assert_eq!(webhook_tolerance(&env(&[(STRIPE_WEBHOOK_TOLERANCE_SECS, "60")])).unwrap(), 60);
        assert!(webhook_tolerance(&env(&[(STRIPE_WEBHOOK_TOLERANCE_SECS, "0")])).is_err());
        assert!(webhook_tolerance(&env(&[(STRIPE_WEBHOOK_TOLERANCE_SECS, "x")])).is_err());
    }

    #[test]
    fn a_rate_must_be_a_positive_number() {
        let rate = |v: &str| positive_number(&env(&[(STRIPE_REQUESTS_PER_SECOND, v)]), STRIPE_REQUESTS_PER_SECOND);
        assert_eq!(positive_number(&env(&[]), STRIPE_REQUESTS_PER_SECOND).unwrap(), None);
        assert_eq!(rate("12.5").unwrap(), Some(12.5));
        for bad in ["-3", "0", "NaN", "inf", "fast"] {
            let e = rate(bad).unwrap_err().to_string();
            assert!(e.contains(STRIPE_REQUESTS_PER_SECOND) && e.contains("positive"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_count_must_be_a_whole_number_of_at_least_one() {
        let count = |v: &str| positive_integer(&env(&[(CONSUMER_MAX_CONCURRENCY, v)]), CONSUMER_MAX_CONCURRENCY);
        assert_eq!(positive_integer(&env(&[]), CONSUMER_MAX_CONCURRENCY).unwrap(), None);
        assert_eq!(count(" 2 ").unwrap(), Some(2));
        for bad in ["0", "-1", "1.5", "two", "4294967296"] {
            let e = count(bad).unwrap_err().to_string();
            assert!(e.contains(CONSUMER_MAX_CONCURRENCY) && e.contains("whole number"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_an_unreadable_secret_is_a_secret_unavailable_kind() {
        let unavailable = ConfigError::SecretUnavailable { var: BREVO_API_KEY.into(), reason: "timeout".into() };
        assert_eq!(unavailable.kind(), "SecretUnavailable");
        assert_eq!(ConfigError::Missing { var: QUEUE_URL.into() }.kind(), "ConfigError");
        assert_eq!(ConfigError::invalid(QUEUE_URL, "x").kind(), "ConfigError");
        assert_eq!(ConfigError::File { path: "c.yaml".into(), reason: "x".into() }.kind(), "ConfigError");
    }
}
