//! `POST /v3/contacts` in the Brevo sandbox: create (201 `{"id"}`) or, with
//! `updateEnabled`, update (204) a contact, with Brevo's validation (unknown
//! attribute, value not fitting its type, bad e-mail, SMS not E.164 or of
//! another contact, unknown list), and [`SandboxContact`], how it is held.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::http::{answer, error, Answer};
use super::state::State;
use super::times::now_ms;
use super::validation::{fits, ids, valid_e164, valid_email};

/// The properties of `components/schemas/createContact` in Brevo's API
/// definition (`openapi-v3.yml`), plus `forceMerge` and `getId` that later
/// SDKs send (`shared/brevo/NOTES.md`).
pub const CREATE_CONTACT_FIELDS: [&str; 10] = [
    "email",
    "ext_id",
    "attributes",
    "emailBlacklisted",
    "smsBlacklisted",
    "listIds",
    "updateEnabled",
    "smtpBlacklistSender",
    "forceMerge",
    "getId",
];

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
        // Brevo refuses a field its `createContact` schema does not have
        // (e.g. `unlinkListIds`, which only `PUT /v3/contacts/{id}` takes).
        if let Some(unknown) =
            b.as_object().and_then(|o| o.keys().find(|k| !CREATE_CONTACT_FIELDS.contains(&k.as_str())))
        {
            return Err(error(400, "invalid_parameter", &format!("{unknown} is not a valid parameter")));
        }
        let email = match b.get("email") {
            Some(Value::String(s)) => s.trim().to_lowercase(),
            None | Some(Value::Null) => return Err(error(400, "missing_parameter", "email is missing")),
            Some(_) => return Err(error(400, "invalid_parameter", "email should be a string")),
        };
        if !valid_email(&email) {
            return Err(error(400, "invalid_parameter", "Invalid email address"));
        }
        let mut attrs: BTreeMap<String, Value> = BTreeMap::new();
        match b.get("attributes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let name = k.to_uppercase();
                    let Some(t) = self.attributes.get(&name) else {
                        return Err(error(400, "invalid_parameter", &format!("Attribute {name} does not exist")));
                    };
                    if v.is_null() {
                        attrs.insert(name, Value::Null);
                        continue;
                    }
                    if name == "SMS" {
                        if !v.as_str().is_some_and(valid_e164) {
                            return Err(error(400, "invalid_parameter", "Invalid phone number"));
                        }
                        let taken =
                            self.contacts.values().any(|c| c.email != email && c.attributes.get("SMS") == Some(v));
                        if taken {
                            return Err(error(
                                400,
                                "duplicate_parameter",
                                "Unable to update contact, SMS is already associated with another Contact",
                            ));
                        }
                    } else if !fits(t, v) {
                        return Err(error(
                            400,
                            "invalid_parameter",
                            &format!("Invalid value for attribute {name} of type {t}"),
                        ));
                    }
                    attrs.insert(name, v.clone());
                }
            }
            Some(_) => return Err(error(400, "invalid_parameter", "attributes should be an object")),
        }
        let list_ids = ids(b.get("listIds"))?;
        self.check_lists(&list_ids)?;
        let update_enabled = b.get("updateEnabled").and_then(Value::as_bool).unwrap_or(false);
        let created = !self.contacts.contains_key(&email);
        if !created && !update_enabled {
            return Err(error(400, "duplicate_parameter", "Contact already exist"));
        }
        let id = self.next_contact_id;
        let contact = self.contact_entry(&email, id);
        for (k, v) in attrs {
            if v.is_null() {
                contact.attributes.remove(&k);
            } else {
                contact.attributes.insert(k, v);
            }
        }
        contact.list_ids.extend(list_ids);
        contact.modified_at = now_ms();
        if created {
            self.next_contact_id += 1;
            Ok(answer(201, Some(json!({ "id": id }))))
        } else {
            Ok(answer(204, None))
        }
    }
}
