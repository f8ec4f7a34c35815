//! The consumer's [`BrevoApi`] port on [`BrevoClient`]: the client's
//! outcomes reduced to what the use cases need, warnings logged (with
//! redacted addresses), errors as [`RemoteError`]s.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::wire::attribute_type_name;
use super::BrevoClient;
use crate::domain::brevo::{AttributeType, BrevoEvent, BrevoOrder, ContactUpdate, ImportStarted, ProcessStatus};
use crate::ports::{BrevoApi, RemoteError, RemoteErrorKind, Vendor};
use crate::telemetry::redact_email;

#[async_trait]
impl BrevoApi for BrevoClient {
    async fn ensure_attributes(&self, types: &BTreeMap<String, AttributeType>) -> Result<(), RemoteError> {
        let report = BrevoClient::ensure_attributes(self, types).await?;
        if !report.created.is_empty() {
            tracing::info!(created = ?report.created, "created Brevo contact attributes");
        }
        for m in &report.mismatched {
            tracing::warn!(attribute = %m.name, wanted = attribute_type_name(m.wanted), found = %m.found, "Brevo attribute exists with another type");
        }
        Ok(())
    }

    async fn upsert_contact(&self, contact: &ContactUpdate) -> Result<(), RemoteError> {
        let out = BrevoClient::upsert_contact(self, contact).await?;
        if out.sms_dropped {
            tracing::warn!(
                contact = %redact_email(&contact.email),
                cause = out.sms_error.as_deref().unwrap_or(""),
                "Brevo refused the phone number; contact written without SMS"
            );
        }
        Ok(())
    }

    async fn import_contacts(
        &self,
        contacts: &[ContactUpdate],
        list_ids: &[i64],
    ) -> Result<Vec<ImportStarted>, RemoteError> {
        let receipt = BrevoClient::import_contacts(self, contacts, list_ids).await?;
        tracing::debug!(contacts = receipt.contacts, imports = receipt.requests, process_ids = ?receipt.process_ids, "Brevo imports started");
        Ok(receipt.processes)
    }

    async fn import_status(&self, process_id: i64) -> Result<Option<ProcessStatus>, RemoteError> {
        let Some(info) = self.process_now(process_id).await? else { return Ok(None) };
        match info.status {
            Some(s) => Ok(Some(s)),
            // A status this client does not know: not finished as far as it can tell.
            None => Ok(Some(ProcessStatus::InProcess)),
        }
    }

    async fn modified_since(&self, list_id: i64, since: i64) -> Result<BTreeSet<String>, RemoteError> {
        let listed = self.contacts_modified_since(list_id, since).await?;
        Ok(listed.into_iter().map(|c| c.email).collect())
    }

    async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<(), RemoteError> {
        BrevoClient::remove_from_list(self, list_id, emails).await?;
        Ok(())
    }

    async fn send_events(&self, events: &[BrevoEvent]) -> Result<Vec<Option<RemoteError>>, RemoteError> {
        let out = BrevoClient::send_events(self, events).await?;
        let mut per_event: Vec<Option<RemoteError>> = vec![None; events.len()];
        for f in out.failed {
            if let Some(slot) = per_event.get_mut(f.index) {
                let kind = if f.retryable { RemoteErrorKind::Unavailable } else { RemoteErrorKind::Rejected };
                let e = RemoteError::new(Vendor::Brevo, kind, f.message);
                *slot = Some(if f.unconfirmed { e.unconfirmed() } else { e });
            }
        }
        Ok(per_event)
    }

    async fn upsert_order(&self, order: &BrevoOrder) -> Result<(), RemoteError> {
        Ok(BrevoClient::upsert_order(self, order).await?)
    }
}

#[cfg(test)]
mod tests;
