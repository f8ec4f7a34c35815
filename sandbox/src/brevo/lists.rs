//! Contact lists in the Brevo sandbox: `GET /v3/contacts/lists[/{id}]` and
//! `POST /v3/contacts/lists/{id}/contacts/add|remove` (201 with
//! success/failure, 400 when nothing changes or > 150 e-mails, 404 unknown
//! list), and the list check the contact endpoints share.

use serde_json::{json, Value};

use super::http::{answer, error, Answer};
use super::state::State;

impl State {
    /// 404 when any of `list_ids` does not exist.
    pub(super) fn check_lists(&self, list_ids: &[i64]) -> Result<(), Answer> {
        match list_ids.iter().find(|id| !self.lists.contains_key(id)) {
            Some(_) => Err(error(404, "document_not_found", "List ID does not exist")),
            None => Ok(()),
        }
    }

    fn list_json(&self, id: i64, name: &str) -> Value {
        let members = self.contacts.values().filter(|c| c.list_ids.contains(&id)).count();
        json!({
            "id": id, "name": name, "folderId": 1,
            "totalSubscribers": members, "totalBlacklisted": 0, "uniqueSubscribers": members,
        })
    }

    pub(super) fn all_lists(&self) -> Answer {
        let lists: Vec<Value> = self.lists.iter().map(|(id, n)| self.list_json(*id, n)).collect();
        answer(200, Some(json!({ "lists": lists, "count": lists.len() })))
    }

    pub(super) fn get_list(&self, id: &str) -> Result<Answer, Answer> {
        let id: i64 = id.parse().map_err(|_| error(400, "invalid_parameter", "listId should be an integer"))?;
        match self.lists.get(&id) {
            Some(name) => Ok(answer(200, Some(self.list_json(id, name)))),
            None => Err(error(404, "document_not_found", "List ID does not exist")),
        }
    }

    pub(super) fn change_list(&mut self, id: &str, add: bool, b: &Value) -> Result<Answer, Answer> {
        let id: i64 = id.parse().map_err(|_| error(400, "invalid_parameter", "listId should be an integer"))?;
        if !self.lists.contains_key(&id) {
            return Err(error(404, "document_not_found", "List ID does not exist"));
        }
        let Some(emails) = b.get("emails").and_then(Value::as_array) else {
            return Err(error(400, "missing_parameter", "emails is missing"));
        };
        if emails.len() > 150 {
            return Err(error(400, "out_of_range", "A maximum of 150 emails is allowed per call"));
        }
        let (mut success, mut failure) = (Vec::new(), Vec::new());
        for e in emails {
            let Some(raw) = e.as_str() else {
                return Err(error(400, "invalid_parameter", "emails should be strings"));
            };
            let key = raw.trim().to_lowercase();
            let changed = match self.contacts.get_mut(&key) {
                Some(c) if add => c.list_ids.insert(id),
                Some(c) => c.list_ids.remove(&id),
                None => false,
            };
            if changed {
                success.push(raw.to_owned());
            } else {
                failure.push(raw.to_owned());
            }
        }
        if success.is_empty() {
            let message = if add {
                "Contact already in list and/or does not exist"
            } else {
                "Contact not in list and/or does not exist"
            };
            return Err(error(400, "invalid_parameter", message));
        }
        Ok(answer(201, Some(json!({ "contacts": { "success": success, "failure": failure } }))))
    }
}
