//! `sync --dry-run`: a [`BrevoApi`] that prints each request it would send
//! as one JSON line on stdout (`{"method","path","body"}`) and sends none,
//! and an idempotency store that reads the real records but writes nothing,
//! so a dry run shows exactly what a real run would send and changes no state:
//! the bodies, Brevo's limits and the import split come from the client's own
//! [`wire`](shared::adapters::brevo::wire) module. Reads are not printed: an
//! import is taken as completed with every row applied (the dry run cannot
//! know which rows Brevo would skip), so nothing is printed twice.
//! (The printed bodies are what the user asked to see; nothing is logged.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use shared::adapters::brevo::wire::{
    contact_body, event_body, events_batch_body, import_bodies, list_change_body, order_body, EVENTS_BATCH_MAX,
    IMPORT_MAX_BYTES, LIST_CHUNK_MAX,
};
use shared::adapters::brevo::{BrevoClient, BrevoError};
use shared::adapters::memory::MemoryIdempotency;
use shared::adapters::sqlite::SqliteStore;
use shared::domain::brevo::{AttributeType, BrevoEvent, BrevoOrder, ContactUpdate, ImportStarted, ProcessStatus};
use shared::ports::{BrevoApi, Claim, IdempotencyStore, RemoteError, StoreError};

/// Prints requests instead of sending them.
#[derive(Debug, Default)]
pub struct DryRunBrevo {
    lines: std::sync::Mutex<u64>,
    /// E-mails of the contacts it printed imports of.
    imported: std::sync::Mutex<BTreeSet<String>>,
}

impl DryRunBrevo {
    fn print(&self, method: &str, path: &str, body: Value) {
        let line = json!({"method": method, "path": path, "body": body});
        let mut n = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) must not fail the run.
        let _ = writeln!(out, "{line}");
    }

    /// Requests printed so far.
    pub fn printed(&self) -> u64 {
        *self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl BrevoApi for DryRunBrevo {
    async fn ensure_attributes(&self, _types: &BTreeMap<String, AttributeType>) -> Result<(), RemoteError> {
        // Creating attributes is set-up, not data: `check --fix` does it.
        Ok(())
    }
    async fn upsert_contact(&self, contact: &ContactUpdate) -> Result<(), RemoteError> {
        self.print("POST", "/v3/contacts", contact_body(contact));
        Ok(())
    }
    async fn import_contacts(
        &self,
        contacts: &[ContactUpdate],
        list_ids: &[i64],
    ) -> Result<Vec<ImportStarted>, RemoteError> {
        // Split as the client splits (at its default size limit).
        let bodies = import_bodies(contacts, list_ids, IMPORT_MAX_BYTES)
            .map_err(|e| RemoteError::from(BrevoError::Decode(e.to_string())))?;
        let mut started = Vec::with_capacity(bodies.len());
        for body in bodies {
            self.print("POST", "/v3/contacts/import", serde_json::from_slice(&body.json).unwrap_or(Value::Null));
            started.push(ImportStarted { process_id: None, contacts: body.contacts });
        }
        self.imported.lock().unwrap_or_else(|p| p.into_inner()).extend(contacts.iter().map(|c| c.email.clone()));
        Ok(started)
    }
    async fn import_status(&self, _process_id: i64) -> Result<Option<ProcessStatus>, RemoteError> {
        Ok(Some(ProcessStatus::Completed))
    }
    async fn modified_since(&self, _list_id: i64, _since: i64) -> Result<BTreeSet<String>, RemoteError> {
        // Every row of every import printed is taken as applied.
        Ok(self.imported.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
    async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<(), RemoteError> {
        for chunk in emails.chunks(LIST_CHUNK_MAX) {
            self.print("POST", &format!("/v3/contacts/lists/{list_id}/contacts/remove"), list_change_body(chunk));
        }
        Ok(())
    }
    async fn send_events(&self, events: &[BrevoEvent]) -> Result<Vec<Option<RemoteError>>, RemoteError> {
        if let [one] = events {
            self.print("POST", "/v3/events", event_body(one).unwrap_or(Value::Null));
        } else {
            for chunk in events.chunks(EVENTS_BATCH_MAX) {
                self.print("POST", "/v3/events/batch", events_batch_body(chunk));
            }
        }
        Ok(vec![None; events.len()])
    }
    async fn upsert_order(&self, order: &BrevoOrder) -> Result<(), RemoteError> {
        self.print("POST", "/v3/orders/status", order_body(order));
        Ok(())
    }
}

/// The Brevo side the CLI's consumer talks to.
pub enum CliBrevo {
    Real(BrevoClient),
    DryRun(Arc<DryRunBrevo>),
}

#[async_trait]
impl BrevoApi for CliBrevo {
    async fn ensure_attributes(&self, types: &BTreeMap<String, AttributeType>) -> Result<(), RemoteError> {
        match self {
            Self::Real(b) => BrevoApi::ensure_attributes(b, types).await,
            Self::DryRun(b) => b.ensure_attributes(types).await,
        }
    }
    async fn upsert_contact(&self, contact: &ContactUpdate) -> Result<(), RemoteError> {
        match self {
            Self::Real(b) => BrevoApi::upsert_contact(b, contact).await,
            Self::DryRun(b) => b.upsert_contact(contact).await,
        }
    }
    async fn import_contacts(
        &self,
        contacts: &[ContactUpdate],
        list_ids: &[i64],
    ) -> Result<Vec<ImportStarted>, RemoteError> {
        match self {
            Self::Real(b) => BrevoApi::import_contacts(b, contacts, list_ids).await,
            Self::DryRun(b) => b.import_contacts(contacts, list_ids).await,
        }
    }
    async fn import_status(&self, process_id: i64) -> Result<Option<ProcessStatus>, RemoteError> {
        match self {
            Self::Real(b) => BrevoApi::import_status(b, process_id).await,
            Self::DryRun(b) => b.import_status(process_id).await,
        }
    }
    async fn modified_since(&self, list_id: i64, since: i64) -> Result<BTreeSet<String>, RemoteError> {
        match self {
            Self::Real(b) => BrevoApi::modified_since(b, list_id, since).await,
            Self::DryRun(b) => b.modified_since(list_id, since).await,
        }
    }
    async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<(), RemoteError> {
        match self {
            Self::Real(b) => BrevoApi::remove_from_list(b, list_id, emails).await,
            Self::DryRun(b) => b.remove_from_list(list_id, emails).await,
        }
    }
    async fn send_events(&self, events: &[BrevoEvent]) -> Result<Vec<Option<RemoteError>>, RemoteError> {
        match self {
            Self::Real(b) => BrevoApi::send_events(b, events).await,
            Self::DryRun(b) => b.send_events(events).await,
        }
    }
    async fn upsert_order(&self, order: &BrevoOrder) -> Result<(), RemoteError> {
        match self {
            Self::Real(b) => BrevoApi::upsert_order(b, order).await,
            Self::DryRun(b) => b.upsert_order(order).await,
        }
    }
}

/// Reads the real dedup records (local state only), writes to memory.
pub struct ReadOnlyDedup {
    real: Option<SqliteStore>,
    scratch: MemoryIdempotency,
}

impl ReadOnlyDedup {
    pub fn new(real: Option<SqliteStore>) -> Self {
        Self { real, scratch: MemoryIdempotency::new() }
    }
}

#[async_trait]
impl IdempotencyStore for ReadOnlyDedup {
    async fn claim(&self, key: &str, now: i64, in_progress_until: i64, expires_at: i64) -> Result<Claim, StoreError> {
        if let Some(real) = &self.real {
            if let Some(Claim::AlreadyCompleted) = real.peek_claim(key, now).await? {
                return Ok(Claim::AlreadyCompleted);
            }
        }
        self.scratch.claim(key, now, in_progress_until, expires_at).await
    }
    async fn complete(&self, key: &str, expires_at: i64) -> Result<(), StoreError> {
        self.scratch.complete(key, expires_at).await
    }
    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.scratch.release(key).await
    }
}
