//! Typed configuration: the environment variables of CONTRACT.md and the
//! connector's YAML file. Loaded once per cold start; a missing or malformed
//! value is an error naming the variable (or YAML path), never a default.
//! Secrets are [`SecretString`]s and never print.

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
/// Optional: signature tolerance in seconds (default 300, never 0).
pub const STRIPE_WEBHOOK_TOLERANCE_SECS: &str = "STRIPE_WEBHOOK_TOLERANCE_SECS";

pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_BREVO_API_BASE: &str = "https://api.brevo.com";

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
        None => Ok(crate::domain::signature::DEFAULT_TOLERANCE_SECS),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ConfigError::invalid(STRIPE_WEBHOOK_TOLERANCE_SECS, "must be a whole number of seconds ≥ 1")),
        },
    }
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
}
