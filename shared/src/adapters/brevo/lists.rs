//! Lists: adding and removing contacts (in calls of at most
//! [`LIST_CHUNK_MAX`], "already in list" counting as unchanged) and reading
//! one list.

use reqwest::Method;
use serde_json::Value;

use super::error::Refusal;
use super::wire::{list_change_body, LIST_CHUNK_MAX};
use super::{BrevoClient, BrevoError};

/// What a list add/remove did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListChange {
    /// Contacts added to (removed from) the list.
    pub changed: usize,
    /// Contacts already in (already out of) the list, or unknown to Brevo.
    pub unchanged: usize,
    pub requests: usize,
}

/// A contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub id: i64,
    pub name: String,
    pub total_subscribers: Option<i64>,
}

impl BrevoClient {
    async fn list_change(&self, list_id: i64, emails: &[String], verb: &str) -> Result<ListChange, BrevoError> {
        let path = format!("/v3/contacts/lists/{list_id}/contacts/{verb}");
        let mut out = ListChange::default();
        for chunk in emails.chunks(LIST_CHUNK_MAX) {
            out.requests += 1;
            match self.post_json(&path, &list_change_body(chunk)).await {
                Ok(answer) => {
                    let v = answer.json().unwrap_or(Value::Null);
                    let count =
                        |key: &str| v.pointer(&format!("/contacts/{key}")).and_then(Value::as_array).map(Vec::len);
                    match (count("success"), count("failure")) {
                        (None, None) => out.changed += chunk.len(),
                        (s, f) => {
                            out.changed += s.unwrap_or(0);
                            out.unchanged += f.unwrap_or(0);
                        }
                    }
                }
                Err(e) if e.refusal() == Some(Refusal::ListMembership) => {
                    out.unchanged += chunk.len();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Adds contacts to a list in calls of at most 150; contacts already in
    /// the list count as unchanged, not as an error.
    pub async fn add_to_list(&self, list_id: i64, emails: &[String]) -> Result<ListChange, BrevoError> {
        self.list_change(list_id, emails, "add").await
    }

    /// Removes contacts from a list in calls of at most 150; contacts not in
    /// the list count as unchanged, not as an error.
    pub async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<ListChange, BrevoError> {
        self.list_change(list_id, emails, "remove").await
    }

    /// `GET /v3/contacts/lists/{id}`; `None` when the list does not exist.
    pub async fn list(&self, id: i64) -> Result<Option<ListInfo>, BrevoError> {
        match self.call(Method::GET, &format!("/v3/contacts/lists/{id}"), None).await {
            Ok(a) => {
                let v = a.json()?;
                Ok(Some(ListInfo {
                    id: v.get("id").and_then(Value::as_i64).unwrap_or(id),
                    name: v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    total_subscribers: v.get("totalSubscribers").and_then(Value::as_i64),
                }))
            }
            Err(BrevoError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn list_exists(&self, id: i64) -> Result<bool, BrevoError> {
        Ok(self.list(id).await?.is_some())
    }
}

#[cfg(test)]
mod tests;
