//! Secrets: from the YAML config or the environment locally; from AWS Secrets
//! Manager or SSM Parameter Store (SecureString) when deployed. The template
//! passes the secret's ARN/name as `{VAR}_ARN` (Secrets Manager) or
//! `{VAR}_PARAM` (SSM), never the secret. Fetched lazily (first use), once
//! per container, so cold init makes no network call.
//! [`SecretSource::resolve`] is the one place that says which source wins.
//!
//! A Secrets Manager value may be the secret itself or a JSON object holding
//! it under the variable's name (one secret for all three keys).

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use crate::config::{optional, ConfigError, EnvSource, ARN_SUFFIX, PARAM_SUFFIX};

#[derive(Clone)]
pub enum SecretSource {
    Value(SecretString),
    SecretsManager { id: String },
    Ssm { name: String },
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Value(_) => f.write_str("SecretSource::Value([redacted])"),
            Self::SecretsManager { id } => write!(f, "SecretSource::SecretsManager({id})"),
            Self::Ssm { name } => write!(f, "SecretSource::Ssm({name})"),
        }
    }
}

impl SecretSource {
    /// The value from the YAML config when it has one (`configured`), else
    /// [`SecretSource::from_env`].
    pub fn resolve(configured: Option<&SecretString>, env: &dyn EnvSource, var: &str) -> Result<Self, ConfigError> {
        match configured {
            Some(value) => Ok(Self::Value(value.clone())),
            None => Self::from_env(env, var),
        }
    }

    /// `VAR`, else `VAR_ARN`, else `VAR_PARAM`; none is an error naming `VAR`.
    pub fn from_env(env: &dyn EnvSource, var: &str) -> Result<Self, ConfigError> {
        if let Some(v) = optional(env, var) {
            return Ok(Self::Value(SecretString::from(v)));
        }
        if let Some(id) = optional(env, &format!("{var}{ARN_SUFFIX}")) {
            return Ok(Self::SecretsManager { id });
        }
        if let Some(name) = optional(env, &format!("{var}{PARAM_SUFFIX}")) {
            return Ok(Self::Ssm { name });
        }
        Err(ConfigError::Missing { var: var.to_owned() })
    }

    /// Reads the secret (a network call for the AWS sources).
    pub async fn load(&self, var: &str, aws: Option<&aws_config::SdkConfig>) -> Result<SecretString, ConfigError> {
        let unavailable = |reason: String| ConfigError::SecretUnavailable { var: var.to_owned(), reason };
        match self {
            Self::Value(v) => Ok(v.clone()),
            Self::SecretsManager { id } => {
                let aws = aws.ok_or_else(|| unavailable("no AWS configuration".into()))?;
                let out = aws_sdk_secretsmanager::Client::new(aws)
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| unavailable(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()))?;
                let raw = out.secret_string().ok_or_else(|| unavailable("secret has no string value".into()))?;
                let value = extract(raw, var).ok_or_else(|| unavailable("secret value is empty".into()))?;
                Ok(SecretString::from(value))
            }
            Self::Ssm { name } => {
                let aws = aws.ok_or_else(|| unavailable("no AWS configuration".into()))?;
                let out = aws_sdk_ssm::Client::new(aws)
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| unavailable(aws_sdk_ssm::error::DisplayErrorContext(&e).to_string()))?;
                let raw = out
                    .parameter()
                    .and_then(|p| p.value())
                    .ok_or_else(|| unavailable("parameter has no value".into()))?;
                let value = extract(raw, var).ok_or_else(|| unavailable("parameter value is empty".into()))?;
                Ok(SecretString::from(value))
            }
        }
    }
}

/// The plain value, or the `var` key of a JSON object.
fn extract(raw: &str, var: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(trimmed) {
            return map.get(var).and_then(|v| v.as_str()).map(str::to_owned).filter(|s| !s.is_empty());
        }
    }
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A secret fetched on first use and kept for the container's life.
pub struct LazySecret {
    var: String,
    source: SecretSource,
    aws: Option<aws_config::SdkConfig>,
    cell: OnceCell<SecretString>,
}

impl LazySecret {
    pub fn new(var: &str, source: SecretSource, aws: Option<aws_config::SdkConfig>) -> Self {
        Self { var: var.to_owned(), source, aws, cell: OnceCell::new() }
    }

    pub async fn get(&self) -> Result<&SecretString, ConfigError> {
        self.cell.get_or_try_init(|| self.source.load(&self.var, self.aws.as_ref())).await
    }

    /// True when the secret is already known (env) or was fetched.
    pub fn is_loaded(&self) -> bool {
        self.cell.initialized() || matches!(self.source, SecretSource::Value(_))
    }
}

/// Whether a secret looks like a live-mode Stripe key.
pub fn is_live_key(key: &SecretString) -> bool {
    let k = key.expose_secret();
    k.starts_with("sk_live_") || k.starts_with("rk_live_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_variable_wins_then_arn_then_param() {
        let mut env: HashMap<String, String> = HashMap::new();
        assert_eq!(SecretSource::from_env(&env, "BREVO_API_KEY").unwrap_err().to_string(), "BREVO_API_KEY is not set");
        env.insert("BREVO_API_KEY_PARAM".into(), "/sb/brevo".into());
        assert!(matches!(SecretSource::from_env(&env, "BREVO_API_KEY").unwrap(), SecretSource::Ssm { .. }));
        env.insert("BREVO_API_KEY_ARN".into(), "arn:aws:secretsmanager:x".into());
        assert!(matches!(SecretSource::from_env(&env, "BREVO_API_KEY").unwrap(), SecretSource::SecretsManager { .. }));
        env.insert("BREVO_API_KEY".into(), "xkeysib-1".into());
        let s = SecretSource::from_env(&env, "BREVO_API_KEY").unwrap();
        assert!(matches!(s, SecretSource::Value(_)));
        assert!(!format!("{s:?}").contains("xkeysib"));
    }

    #[test]
    fn the_yaml_value_wins_over_every_variable() {
        let env: HashMap<String, String> =
            [("STRIPE_WEBHOOK_SECRET", "whsec_env"), ("STRIPE_WEBHOOK_SECRET_ARN", "arn:aws:secretsmanager:x")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let yaml = SecretString::from("whsec_yaml".to_owned());
        match SecretSource::resolve(Some(&yaml), &env, "STRIPE_WEBHOOK_SECRET").unwrap() {
            SecretSource::Value(v) => assert_eq!(v.expose_secret(), "whsec_yaml"),
            other => panic!("{other:?}"),
        }
        match SecretSource::resolve(None, &env, "STRIPE_WEBHOOK_SECRET").unwrap() {
            SecretSource::Value(v) => assert_eq!(v.expose_secret(), "whsec_env"),
            other => panic!("{other:?}"),
        }
        let e = SecretSource::resolve(None, &HashMap::new(), "STRIPE_WEBHOOK_SECRET").unwrap_err();
        assert_eq!(e.to_string(), "STRIPE_WEBHOOK_SECRET is not set");
    }

    #[test]
    fn json_secrets_are_read_by_variable_name() {
        assert_eq!(extract(r#"{"BREVO_API_KEY":"k1","X":"y"}"#, "BREVO_API_KEY").as_deref(), Some("k1"));
        assert_eq!(extract(r#"{"X":"y"}"#, "BREVO_API_KEY"), None);
        assert_eq!(extract(" plain \n", "BREVO_API_KEY").as_deref(), Some("plain"));
    }

    #[tokio::test]
    async fn env_values_need_no_network() {
        let s = LazySecret::new("V", SecretSource::Value(SecretString::from("abc".to_owned())), None);
        assert_eq!(s.get().await.unwrap().expose_secret(), "abc");
    }
}
