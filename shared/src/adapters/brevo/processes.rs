//! Processes: where an asynchronous import stands (`GET
//! /v3/processes/{id}`, <https://developers.brevo.com/reference/getprocess>).
//! The endpoint is outside `/v3/contacts`, so it shares the `Other` family's
//! 100 requests per hour (General plan): it is asked only when a token is
//! free now, never waited for.

use reqwest::Method;
use serde_json::Value;

use super::{BrevoClient, BrevoError};
use crate::domain::brevo::ProcessStatus;

/// A process as `getProcess` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub id: i64,
    /// `None` for a status this client does not know.
    pub status: Option<ProcessStatus>,
    /// e.g. `IMPORTUSER`.
    pub name: String,
}

impl BrevoClient {
    /// The process `id`, if it can be asked now: `Ok(None)` when the `Other`
    /// family has no token free at this moment or Brevo answered 429 (ask
    /// later); [`BrevoError::NotFound`] for a process Brevo does not know.
    /// One attempt, no retry.
    pub async fn process_now(&self, id: i64) -> Result<Option<ProcessInfo>, BrevoError> {
        let Some(answer) = self.call_now(Method::GET, &format!("/v3/processes/{id}")).await? else {
            return Ok(None);
        };
        let v = answer.json()?;
        Ok(Some(ProcessInfo {
            id: v.get("id").and_then(Value::as_i64).unwrap_or(id),
            status: v.get("status").and_then(Value::as_str).and_then(ProcessStatus::parse),
            name: v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests;
