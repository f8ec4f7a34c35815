//! `POST /v3/contacts/import` in the Brevo sandbox: 202 `{"processId"}`,
//! applied at once; unknown attributes and values that do not fit are
//! silently ignored like Brevo's import; [`ImportRecord`] keeps each one.

use serde_json::{json, Value};

use super::http::{answer, error, Answer};
use super::state::State;
use super::validation::{fits, ids, valid_e164, valid_email};

/// One import as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    pub process_id: i64,
    pub list_ids: Vec<i64>,
    /// Contacts created or updated.
    pub applied: usize,
    /// Items skipped (invalid e-mail, existing contact without update).
    pub skipped: usize,
    pub body_bytes: usize,
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
        let update_existing = b.get("updateExistingContacts").and_then(Value::as_bool).unwrap_or(true);
        let erase_empty = b.get("emptyContactsAttributes").and_then(Value::as_bool).unwrap_or(false);
        let (mut applied, mut skipped) = (0, 0);
        for item in items {
            let Some(email) = item.get("email").and_then(Value::as_str).map(|s| s.trim().to_lowercase()) else {
                skipped += 1;
                continue;
            };
            if !valid_email(&email) || (!update_existing && self.contacts.contains_key(&email)) {
                skipped += 1;
                continue;
            }
            // Unknown attributes and values that do not fit are ignored, like Brevo's import.
            let mut set: Vec<(String, Option<Value>)> = Vec::new();
            if let Some(m) = item.get("attributes").and_then(Value::as_object) {
                for (k, v) in m {
                    let name = k.to_uppercase();
                    let Some(t) = self.attributes.get(&name) else { continue };
                    let empty = v.is_null() || v.as_str().is_some_and(str::is_empty);
                    if empty {
                        if erase_empty {
                            set.push((name, None));
                        }
                    } else if (name == "SMS" && v.as_str().is_some_and(valid_e164)) || (name != "SMS" && fits(t, v)) {
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
            contact.list_ids.extend(list_ids.iter().copied());
            applied += 1;
        }
        let process_id = self.next_process_id;
        self.next_process_id += 1;
        self.imports.push(ImportRecord { process_id, list_ids, applied, skipped, body_bytes });
        Ok(answer(202, Some(json!({ "processId": process_id }))))
    }
}
