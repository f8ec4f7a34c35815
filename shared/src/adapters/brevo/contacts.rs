//! Contacts: the real-time upsert (`POST /v3/contacts`, retried without
//! the SMS number when Brevo refuses it) and the asynchronous import
//! (`POST /v3/contacts/import`, split to stay under Brevo's size limit).

use reqwest::Method;
use serde_json::Value;

use super::error::Refusal;
use super::wire::{contact_body, import_bodies, SMS_ATTRIBUTE};
use super::{BrevoClient, BrevoError};
use crate::domain::brevo::{ContactUpdate, ImportStarted};
use crate::telemetry::redact_email;

/// What `upsert_contact` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpsertOutcome {
    /// 201 (new contact) rather than 204 (updated).
    pub created: bool,
    /// Brevo refused the SMS number, so the contact was written without it;
    /// the caller should log a warning.
    pub sms_dropped: bool,
    /// Brevo's reason for refusing the number (no PII).
    pub sms_error: Option<String>,
}

/// What `import_contacts` started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReceipt {
    /// One per import request (the import runs asynchronously in Brevo).
    pub process_ids: Vec<i64>,
    /// Each import request in order: its process and how many contacts it
    /// holds.
    pub processes: Vec<ImportStarted>,
    pub contacts: usize,
    pub requests: usize,
}

impl BrevoClient {
    /// Creates or updates one contact (`POST /v3/contacts`, `updateEnabled`).
    /// If Brevo refuses the SMS number, writes the contact again without it
    /// and says so in the outcome.
    pub async fn upsert_contact(&self, contact: &ContactUpdate) -> Result<UpsertOutcome, BrevoError> {
        match self.post_json("/v3/contacts", &contact_body(contact)).await {
            Ok(a) => Ok(UpsertOutcome { created: a.status == 201, ..Default::default() }),
            Err(e) if contact.attributes.contains_key(SMS_ATTRIBUTE) && e.refusal() == Some(Refusal::SmsNumber) => {
                let reason = e.to_string();
                tracing::debug!(contact = %redact_email(&contact.email), error = %reason, "Brevo refused the SMS number; writing the contact without it");
                let mut without = contact.clone();
                without.attributes.remove(SMS_ATTRIBUTE);
                let a = self.post_json("/v3/contacts", &contact_body(&without)).await?;
                Ok(UpsertOutcome { created: a.status == 201, sms_dropped: true, sms_error: Some(reason) })
            }
            Err(e) => Err(e),
        }
    }

    /// Starts asynchronous imports (`POST /v3/contacts/import`) of the
    /// contacts' attributes into `list_ids`, existing contacts updated, empty
    /// values not erasing anything. Split into several imports when one
    /// body would exceed `max_import_bytes`. Brevo ignores unknown attributes.
    pub async fn import_contacts(
        &self,
        contacts: &[ContactUpdate],
        list_ids: &[i64],
    ) -> Result<ImportReceipt, BrevoError> {
        let mut receipt = ImportReceipt::default();
        let bodies = import_bodies(contacts, list_ids, self.inner.max_import_bytes)
            .map_err(|e| BrevoError::Decode(e.to_string()))?;
        for body in bodies {
            let answer = self.call(Method::POST, "/v3/contacts/import", Some(body.json)).await?;
            receipt.requests += 1;
            receipt.contacts += body.contacts;
            let process_id = answer.json()?.get("processId").and_then(Value::as_i64);
            receipt.process_ids.extend(process_id);
            receipt.processes.push(ImportStarted { process_id, contacts: body.contacts });
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests;
