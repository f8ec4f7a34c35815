//! `POST /v3/contacts/import` and `GET /v3/processes/{id}` in the Brevo
//! sandbox, asynchronous like Brevo's: the import's shape is checked at once
//! (202 `{"processId"}`), its rows are applied *later* — when its
//! [`ImportPace`] says — and its process moves `queued` → `in_process` →
//! `completed`. A row Brevo would skip is not applied and only counted in
//! the process's [`ImportRecord`]: an invalid e-mail, an existing contact
//! without `updateExistingContacts`, an `SMS` that belongs to another
//! contact. Unknown attributes and values that do not fit their type are
//! silently ignored, like Brevo's import.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::{answer, error, Answer};
use super::state::State;
use super::times::now_ms;
use super::validation::{fits, ids, valid_e164, valid_email};

/// When an import's rows are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPace {
    /// Once this long has passed since the import was received (as Brevo
    /// does, whether anyone looks or not); `queued` for the first half,
    /// `in_process` for the second.
    After(Duration),
    /// At the n-th `GET /v3/processes/{id}` of the import (deterministic, for
    /// tests): the reads before answer `queued` (the first) then
    /// `in_process`. Never applied otherwise (see
    /// [`BrevoSandbox::complete_imports`](super::BrevoSandbox::complete_imports)).
    OnCheck(u32),
}

impl Default for ImportPace {
    /// 100 ms after the import: later than its 202, soon enough for tests.
    fn default() -> Self {
        Self::After(Duration::from_millis(100))
    }
}

/// A process's status, as `getProcess` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStatus {
    Queued,
    InProcess,
    Completed,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProcess => "in_process",
            Self::Completed => "completed",
        }
    }
}

/// One import as received, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    pub process_id: i64,
    pub list_ids: Vec<i64>,
    pub status: ImportStatus,
    /// Contacts created or updated (0 until completed).
    pub applied: usize,
    /// Rows skipped: invalid e-mail, existing contact without update, SMS of
    /// another contact (0 until completed).
    pub skipped: usize,
    pub body_bytes: usize,
    /// `GET /v3/processes/{id}` answered for it so far.
    pub status_checks: u32,
}

/// An import's rows waiting to be applied.
#[derive(Debug, Clone)]
pub(super) struct PendingImport {
    items: Vec<Value>,
    list_ids: Vec<i64>,
    update_existing: bool,
    erase_empty: bool,
    received: Instant,
}

impl State {
    pub(super) fn import(&mut self, b: &Value, body_bytes: usize) -> Result<Answer, Answer> {
        let Some(items) = b.get("jsonBody").and_then(Value::as_array) else {
            return Err(error(400, "missing_parameter", "fileUrl, fileBody or jsonBody is mandatory"));
        };
        let list_ids = ids(b.get("listIds"))?;
        if list_ids.is_empty() {
            return Err(error(400, "missing_parameter", "listIds or newList is mandatory"));
        }
        self.check_lists(&list_ids)?;
        let process_id = self.next_process_id;
        self.next_process_id += 1;
        self.pending_imports.insert(
            process_id,
            PendingImport {
                items: items.clone(),
                list_ids: list_ids.clone(),
                update_existing: b.get("updateExistingContacts").and_then(Value::as_bool).unwrap_or(true),
                erase_empty: b.get("emptyContactsAttributes").and_then(Value::as_bool).unwrap_or(false),
                received: Instant::now(),
            },
        );
        self.imports.push(ImportRecord {
            process_id,
            list_ids,
            status: ImportStatus::Queued,
            applied: 0,
            skipped: 0,
            body_bytes,
            status_checks: 0,
        });
        Ok(answer(202, Some(json!({ "processId": process_id }))))
    }

    /// `GET /v3/processes/{id}`: `{id, status, name}`; 404 for an unknown id.
    pub(super) fn process(&mut self, id: &str) -> Result<Answer, Answer> {
        let id: i64 = id.parse().map_err(|_| error(400, "invalid_parameter", "processId should be an integer"))?;
        let Some(n) = self.imports.iter().position(|r| r.process_id == id) else {
            return Err(error(404, "invalid_parameter", "processId is invalid"));
        };
        self.imports[n].status_checks += 1;
        let checks = self.imports[n].status_checks;
        if let (ImportPace::OnCheck(due), Some(_)) = (self.import_pace, self.pending_imports.get(&id)) {
            if checks >= due {
                self.apply_import(id);
            } else {
                self.imports[n].status = if checks == 1 { ImportStatus::Queued } else { ImportStatus::InProcess };
            }
        }
        let status = self.imports[n].status.as_str();
        Ok(answer(200, Some(json!({ "id": id, "status": status, "name": "IMPORTUSER" }))))
    }

    /// Applies the imports whose time has come ([`ImportPace::After`]) and
    /// moves the others' status on; called whenever the state is looked at.
    pub(super) fn advance_imports(&mut self) {
        let ImportPace::After(delay) = self.import_pace else { return };
        if self.pending_imports.is_empty() {
            return;
        }
        let ready: Vec<i64> =
            self.pending_imports.iter().filter(|(_, p)| p.received.elapsed() >= delay).map(|(id, _)| *id).collect();
        for id in ready {
            self.apply_import(id);
        }
        for r in &mut self.imports {
            if let Some(p) = self.pending_imports.get(&r.process_id) {
                r.status =
                    if p.received.elapsed() >= delay / 2 { ImportStatus::InProcess } else { ImportStatus::Queued };
            }
        }
    }

    /// Applies every import still pending, whatever the pace.
    pub(super) fn complete_all_imports(&mut self) {
        let ids: Vec<i64> = self.pending_imports.keys().copied().collect();
        for id in ids {
            self.apply_import(id);
        }
    }

    /// Applies an import's rows in order; its process is then `completed`.
    fn apply_import(&mut self, process_id: i64) {
        let Some(p) = self.pending_imports.remove(&process_id) else { return };
        let (mut applied, mut skipped) = (0, 0);
        for item in &p.items {
            if self.import_row(item, &p) {
                applied += 1;
            } else {
                skipped += 1;
            }
        }
        if let Some(r) = self.imports.iter_mut().find(|r| r.process_id == process_id) {
            r.status = ImportStatus::Completed;
            r.applied = applied;
            r.skipped = skipped;
        }
    }

    /// One row: true when applied, false when Brevo would skip it.
    fn import_row(&mut self, item: &Value, p: &PendingImport) -> bool {
        let Some(email) = item.get("email").and_then(Value::as_str).map(|s| s.trim().to_lowercase()) else {
            return false;
        };
        if !valid_email(&email) || (!p.update_existing && self.contacts.contains_key(&email)) {
            return false;
        }
        let mut set: Vec<(String, Option<Value>)> = Vec::new();
        if let Some(m) = item.get("attributes").and_then(Value::as_object) {
            for (k, v) in m {
                let name = k.to_uppercase();
                let Some(t) = self.attributes.get(&name) else { continue };
                let empty = v.is_null() || v.as_str().is_some_and(str::is_empty);
                if empty {
                    if p.erase_empty {
                        set.push((name, None));
                    }
                } else if name == "SMS" {
                    if !v.as_str().is_some_and(valid_e164) {
                        continue;
                    }
                    // A number another contact holds: Brevo skips the row.
                    if self.contacts.values().any(|c| c.email != email && c.attributes.get("SMS") == Some(v)) {
                        return false;
                    }
                    set.push((name, Some(v.clone())));
                } else if fits(t, v) {
                    set.push((name, Some(v.clone())));
                }
            }
        }
        let id = self.next_contact_id;
        if !self.contacts.contains_key(&email) {
            self.next_contact_id += 1;
        }
        let contact = self.contact_entry(&email, id);
        for (k, v) in set {
            match v {
                Some(v) => contact.attributes.insert(k, v),
                None => contact.attributes.remove(&k),
            };
        }
        contact.list_ids.extend(p.list_ids.iter().copied());
        contact.modified_at = now_ms();
        true
    }
}
