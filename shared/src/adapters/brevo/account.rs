//! The account check: `GET /v3/account` proves the key works (for `check`).

use reqwest::Method;
use serde_json::Value;

use super::{BrevoClient, BrevoError};

/// The parts of `GET /v3/account` that `check` shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountInfo {
    pub company_name: Option<String>,
    pub email: Option<String>,
    /// Plan types (`free`, `payAsYouGo`, `subscription`, …).
    pub plans: Vec<String>,
}

impl BrevoClient {
    /// `GET /v3/account`: proves the key works (for `check`).
    pub async fn account(&self) -> Result<AccountInfo, BrevoError> {
        let v = self.call(Method::GET, "/v3/account", None).await?.json()?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let plans = v
            .get("plan")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p.get("type").and_then(Value::as_str).map(str::to_owned)).collect())
            .unwrap_or_default();
        Ok(AccountInfo { company_name: s("companyName"), email: s("email"), plans })
    }
}

#[cfg(test)]
mod tests;
