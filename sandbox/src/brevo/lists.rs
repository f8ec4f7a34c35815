//! Contact lists in the Brevo sandbox: `GET /v3/contacts/lists[/{id}]` and
//! `POST /v3/contacts/lists/{id}/contacts/add|remove` by `emails`, `ids` or
//! `extIds` (or `all` to remove), 201 with success/failure, 400 when nothing
//! changes (every contact already in / not in the list, or unknown), 404
//! unknown list; more than 150 is refused by the definition's check (see
//! `http`). Also the list check the contact endpoints share.

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
        if !add && b.get("all").and_then(Value::as_bool) == Some(true) {
            let mut total = 0;
            for c in self.contacts.values_mut() {
                total += usize::from(c.list_ids.remove(&id));
            }
            return Ok(answer(201, Some(json!({ "contacts": { "total": total } }))));
        }
        // Each member as sent, and the key of the contact it names.
        let members: Vec<(Value, Option<String>)> = if let Some(emails) = b.get("emails").and_then(Value::as_array) {
            emails.iter().map(|e| (e.clone(), e.as_str().map(|s| s.trim().to_lowercase()))).collect()
        } else if let Some(ids) = b.get("ids").and_then(Value::as_array) {
            let key = |id: &Value| self.contacts.values().find(|c| Some(c.id) == id.as_i64()).map(|c| c.email.clone());
            ids.iter().map(|i| (i.clone(), key(i))).collect()
        } else if let Some(ext) = b.get("extIds").and_then(Value::as_array) {
            let key = |x: &Value| {
                self.contacts.values().find(|c| c.attributes.get("EXT_ID") == Some(x)).map(|c| c.email.clone())
            };
            ext.iter().map(|x| (x.clone(), key(x))).collect()
        } else {
            return Err(error(400, "missing_parameter", "emails, ids or extIds is missing"));
        };
        let (mut success, mut failure) = (Vec::new(), Vec::new());
        for (sent, key) in members {
            let changed = match key.and_then(|k| self.contacts.get_mut(&k)) {
                Some(c) if add => c.list_ids.insert(id),
                Some(c) => c.list_ids.remove(&id),
                None => false,
            };
            if changed {
                success.push(sent);
            } else {
                failure.push(sent);
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
