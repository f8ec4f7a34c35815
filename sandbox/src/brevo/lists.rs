//! Contact lists in the Brevo sandbox: `GET /v3/contacts/lists[/{id}]`,
//! `POST /v3/contacts/lists/{id}/contacts/add|remove` by `emails`, `ids` or
//! `extIds` (or `all` to remove), 201 with success/failure, 400 when nothing
//! changes (every contact already in / not in the list, or unknown), 404
//! unknown list; more than 150 is refused by the definition's check (see
//! `http`); `GET /v3/contacts/lists/{id}/contacts` (`getContactsFromList`:
//! `modifiedSince`, `limit` ≤ 500, `offset`, `sort` by creation). Also the
//! list check the contact endpoints share.

use serde_json::{json, Value};

use super::contacts::SandboxContact;
use super::http::{answer, error, Answer};
use super::state::State;
use super::times::{format_ms, now_ms, parse_ms};

/// `getContactsFromList`'s largest `limit` (`openapi-v3.yml`).
const LIST_CONTACTS_MAX_LIMIT: i64 = 500;

/// The value of `name` in a query string, `%XX` decoded (a `+` is kept: it
/// is a time zone's sign more often than a space here).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let raw = query?.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// An integer query parameter in `[0, max]`, `default` when absent.
fn int_param(query: Option<&str>, name: &str, default: i64, max: i64) -> Result<i64, Answer> {
    match query_param(query, name) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (0..=max).contains(&n) => Ok(n),
            Ok(_) => Err(error(400, "out_of_range", &format!("{name} should be between 0 and {max}"))),
            Err(_) => Err(error(400, "invalid_parameter", &format!("{name} should be an integer"))),
        },
    }
}

fn contact_json(c: &SandboxContact) -> Value {
    json!({
        "email": c.email, "id": c.id, "emailBlacklisted": false, "smsBlacklisted": false,
        "createdAt": format_ms(c.created_at), "modifiedAt": format_ms(c.modified_at),
        "listIds": c.list_ids, "attributes": c.attributes,
    })
}

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

    /// `GET /v3/contacts/lists/{id}/contacts`: the list's contacts modified
    /// after `modifiedSince` (all without it), by creation (`desc` unless
    /// `sort=asc`), one page of `limit` (default 50, at most 500) from
    /// `offset`; `count` is the number of all that match.
    pub(super) fn list_contacts(&self, id: &str, query: Option<&str>) -> Result<Answer, Answer> {
        let id: i64 = id.parse().map_err(|_| error(400, "invalid_parameter", "listId should be an integer"))?;
        if !self.lists.contains_key(&id) {
            return Err(error(404, "document_not_found", "List ID does not exist"));
        }
        let since = match query_param(query, "modifiedSince") {
            None => None,
            Some(s) => Some(parse_ms(&s).ok_or_else(|| error(400, "invalid_parameter", "modifiedSince is invalid"))?),
        };
        let limit = int_param(query, "limit", 50, LIST_CONTACTS_MAX_LIMIT)?;
        let offset = int_param(query, "offset", 0, i64::MAX)?;
        let asc = match query_param(query, "sort").as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(_) => return Err(error(400, "invalid_parameter", "sort should be asc or desc")),
        };
        let mut matching: Vec<&SandboxContact> = self
            .contacts
            .values()
            .filter(|c| c.list_ids.contains(&id) && since.is_none_or(|s| c.modified_at > s))
            .collect();
        matching.sort_by_key(|c| c.id);
        if !asc {
            matching.reverse();
        }
        let page: Vec<Value> = matching
            .iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|c| contact_json(c))
            .collect();
        Ok(answer(200, Some(json!({ "contacts": page, "count": matching.len() }))))
    }

    pub(super) fn change_list(&mut self, id: &str, add: bool, b: &Value) -> Result<Answer, Answer> {
        let id: i64 = id.parse().map_err(|_| error(400, "invalid_parameter", "listId should be an integer"))?;
        if !self.lists.contains_key(&id) {
            return Err(error(404, "document_not_found", "List ID does not exist"));
        }
        if !add && b.get("all").and_then(Value::as_bool) == Some(true) {
            let mut total = 0;
            for c in self.contacts.values_mut() {
                if c.list_ids.remove(&id) {
                    c.modified_at = now_ms();
                    total += 1;
                }
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
                Some(c) => {
                    let changed = if add { c.list_ids.insert(id) } else { c.list_ids.remove(&id) };
                    if changed {
                        c.modified_at = now_ms();
                    }
                    changed
                }
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
