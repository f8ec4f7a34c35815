//! Lists: adding and removing contacts (in calls of at most
//! [`LIST_CHUNK_MAX`], "already in list" counting as unchanged), reading
//! one list, and the list's contacts modified since a time (every page of
//! `GET /v3/contacts/lists/{id}/contacts`).

use reqwest::Method;
use serde_json::Value;

use super::error::Refusal;
use super::wire::{list_change_body, modified_since_param, LIST_CHUNK_MAX, LIST_CONTACTS_PAGE_MAX};
use super::{BrevoClient, BrevoError};

/// Pages read at most by [`BrevoClient::contacts_modified_since`] (×500
/// contacts); what lies beyond is left out, with a warning.
const LIST_CONTACTS_MAX_PAGES: usize = 40;

/// A contact as a list's listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContact {
    /// Lower-cased.
    pub email: String,
    pub id: Option<i64>,
    /// Brevo's `modifiedAt` as sent (`YYYY-MM-DDTHH:mm:ss.SSSZ`).
    pub modified_at: String,
}

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

    /// The contacts of list `list_id` modified after `since_unix` (seconds),
    /// every page (`getContactsFromList`: `modifiedSince`, `limit` 500,
    /// `offset`, `sort=asc` so contacts created meanwhile come last and do
    /// not shift the pages already read). At most 40 pages.
    pub async fn contacts_modified_since(
        &self,
        list_id: i64,
        since_unix: i64,
    ) -> Result<Vec<ListedContact>, BrevoError> {
        let since = modified_since_param(since_unix);
        let mut out = Vec::new();
        for page in 0..LIST_CONTACTS_MAX_PAGES {
            let offset = page * LIST_CONTACTS_PAGE_MAX;
            let path = format!(
                "/v3/contacts/lists/{list_id}/contacts?modifiedSince={since}&limit={LIST_CONTACTS_PAGE_MAX}&offset={offset}&sort=asc"
            );
            let v = self.call(Method::GET, &path, None).await?.json()?;
            let contacts = v.get("contacts").and_then(Value::as_array).cloned().unwrap_or_default();
            let got = contacts.len();
            out.extend(contacts.iter().filter_map(|c| {
                Some(ListedContact {
                    email: c.get("email").and_then(Value::as_str)?.trim().to_lowercase(),
                    id: c.get("id").and_then(Value::as_i64),
                    modified_at: c.get("modifiedAt").and_then(Value::as_str).unwrap_or_default().to_owned(),
                })
            }));
            let count = v.get("count").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok());
            if got < LIST_CONTACTS_PAGE_MAX || count.is_some_and(|n| offset + got >= n) {
                return Ok(out);
            }
        }
        tracing::warn!(
            list_id,
            pages = LIST_CONTACTS_MAX_PAGES,
            "more contacts modified than read: the rest is left out"
        );
        Ok(out)
    }

    pub async fn list_exists(&self, id: i64) -> Result<bool, BrevoError> {
        Ok(self.list(id).await?.is_some())
    }
}

#[cfg(test)]
mod tests;
