//! Contacts in the Brevo sandbox: `POST /v3/contacts` creates (201
//! `{"id"}`) or, with `updateEnabled`, updates (204) a contact; `PUT
//! /v3/contacts/{identifier}` (`?identifierType=`) updates one (204; 404
//! unknown), `attributes.EMAIL` renaming it, `unlinkListIds` leaving lists.
//! The body's shape is checked against Brevo's definition before (see
//! `http`); here are Brevo's rules on values: an attribute that does not
//! exist refuses the request, a value that does not fit its attribute's
//! type is silently ignored, a bad e-mail, an SMS not in E.164 or of another
//! contact, an unknown list refuse it. [`SandboxContact`] is how a contact
//! is held.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::http::{answer, error, Answer};
use super::spec;
use super::state::State;
use super::times::now_ms;
use super::validation::{fits, ids, valid_e164, valid_email};

/// A contact as the sandbox holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxContact {
    pub id: i64,
    /// Lower-cased.
    pub email: String,
    /// Upper-cased attribute names.
    pub attributes: BTreeMap<String, Value>,
    pub list_ids: BTreeSet<i64>,
    /// When it was created and last changed (unix milliseconds; Brevo's
    /// `createdAt`/`modifiedAt`).
    pub created_at: i64,
    pub modified_at: i64,
}

impl State {
    /// The contact held for `email` (already lower-cased), created without
    /// attributes or lists under `id` when there is none.
    pub(super) fn contact_entry(&mut self, email: &str, id: i64) -> &mut SandboxContact {
        self.contacts.entry(email.to_owned()).or_insert_with(|| {
            let now = now_ms();
            SandboxContact {
                id,
                email: email.to_owned(),
                attributes: BTreeMap::new(),
                list_ids: BTreeSet::new(),
                created_at: now,
                modified_at: now,
            }
        })
    }

    pub(super) fn upsert_contact(&mut self, b: &Value) -> Result<Answer, Answer> {
        let email = match b.get("email").and_then(Value::as_str) {
            Some(s) => s.trim().to_lowercase(),
            // Brevo also takes ext_id or attributes.SMS alone; the sandbox
            // keeps contacts by e-mail.
            None => return Err(error(400, "missing_parameter", "email is missing")),
        };
        if !valid_email(&email) {
            return Err(error(400, "invalid_parameter", "Invalid email address"));
        }
        let attrs = self.accepted_attributes(&email, b.get("attributes"))?;
        let list_ids = ids(b.get("listIds"))?;
        self.check_lists(&list_ids)?;
        let update_enabled = b.get("updateEnabled").and_then(Value::as_bool).unwrap_or(false);
        let created = !self.contacts.contains_key(&email);
        if !created && !update_enabled {
            return Err(error(400, "duplicate_parameter", "Contact already exist"));
        }
        let id = self.next_contact_id;
        let contact = self.contact_entry(&email, id);
        contact.attributes.extend(attrs);
        contact.list_ids.extend(list_ids);
        contact.modified_at = now_ms();
        if created {
            self.next_contact_id += 1;
            Ok(answer(201, Some(json!({ "id": id }))))
        } else {
            Ok(answer(204, None))
        }
    }

    /// `PUT /v3/contacts/{identifier}`: the contact found by
    /// `identifierType` (default: an id when all digits, else the e-mail),
    /// updated; `attributes.EMAIL` renames it.
    pub(super) fn update_contact(
        &mut self,
        identifier: &str,
        query: Option<&str>,
        b: &Value,
    ) -> Result<Answer, Answer> {
        let not_found = || error(404, "document_not_found", "Contact does not exist");
        let key = self.find_contact(identifier, query).ok_or_else(not_found)?;
        let mut attributes = b.get("attributes").cloned().unwrap_or(Value::Null);
        let new_email = match attributes.as_object_mut().and_then(|m| m.remove("EMAIL")) {
            Some(Value::String(e)) => Some(e.trim().to_lowercase()),
            Some(_) => return Err(error(400, "invalid_parameter", "Invalid email address")),
            None => None,
        };
        if let Some(e) = &new_email {
            if !valid_email(e) {
                return Err(error(400, "invalid_parameter", "Invalid email address"));
            }
            if *e != key && self.contacts.contains_key(e) {
                return Err(error(400, "duplicate_parameter", "Email is already associated with another Contact"));
            }
        }
        let attrs = self.accepted_attributes(&key, Some(&attributes))?;
        let (add, remove) = (ids(b.get("listIds"))?, ids(b.get("unlinkListIds"))?);
        self.check_lists(&add)?;
        self.check_lists(&remove)?;
        let mut contact = self.contacts.remove(&key).ok_or_else(not_found)?;
        contact.attributes.extend(attrs);
        contact.list_ids.extend(add);
        contact.list_ids.retain(|l| !remove.contains(l));
        contact.modified_at = now_ms();
        if let Some(e) = new_email {
            contact.email = e;
        }
        self.contacts.insert(contact.email.clone(), contact);
        Ok(answer(204, None))
    }

    /// The key of the contact `identifier` names.
    fn find_contact(&self, identifier: &str, query: Option<&str>) -> Option<String> {
        let ident = spec::decode(identifier, false).trim().to_lowercase();
        let pairs = spec::query_pairs(query);
        let kind = pairs.iter().find(|(k, _)| k == "identifierType").map(|(_, v)| v.as_str());
        let by_attribute = |name: &str| {
            self.contacts.values().find(|c| c.attributes.get(name).and_then(Value::as_str) == Some(ident.as_str()))
        };
        let found = match kind {
            Some("contact_id") => self.contacts.values().find(|c| c.id.to_string() == ident),
            Some("phone_id") => by_attribute("SMS"),
            Some("ext_id") => by_attribute("EXT_ID"),
            Some("whatsapp_id") => by_attribute("WHATSAPP"),
            Some("landline_number_id") => by_attribute("LANDLINE_NUMBER"),
            Some(_) => self.contacts.get(&ident),
            None if !ident.is_empty() && ident.bytes().all(|c| c.is_ascii_digit()) => {
                self.contacts.values().find(|c| c.id.to_string() == ident)
            }
            None => self.contacts.get(&ident),
        };
        found.map(|c| c.email.clone())
    }

    /// The attributes of a create or update that are applied: an attribute
    /// that does not exist refuses the request; a value that does not fit
    /// its attribute's type is left out (Brevo ignores it); the SMS must be
    /// E.164 and not another contact's.
    fn accepted_attributes(&self, email: &str, attributes: Option<&Value>) -> Result<BTreeMap<String, Value>, Answer> {
        let mut out = BTreeMap::new();
        for (k, v) in attributes.and_then(Value::as_object).into_iter().flatten() {
            let name = k.to_uppercase();
            let Some(t) = self.attributes.get(&name) else {
                return Err(error(400, "invalid_parameter", &format!("Attribute {name} does not exist")));
            };
            if name == "SMS" {
                if !v.as_str().is_some_and(valid_e164) {
                    return Err(error(400, "invalid_parameter", "Invalid phone number"));
                }
                if self.contacts.values().any(|c| c.email != email && c.attributes.get("SMS") == Some(v)) {
                    return Err(error(
                        400,
                        "duplicate_parameter",
                        "Unable to update contact, SMS is already associated with another Contact",
                    ));
                }
            } else if !fits(t, v) {
                continue;
            }
            out.insert(name, v.clone());
        }
        Ok(out)
    }
}
