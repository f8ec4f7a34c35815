//! What goes on the wire to Brevo: its limits (as constants, each with its
//! doc link) and the request bodies, built here once for the client and for
//! `sync --dry-run`, so a dry run prints exactly what the client would send.
//!
//! Pure: no I/O, no client state.

use serde_json::{json, Value};

use super::client::Rate;
use crate::domain::brevo::{AttributeType, BrevoEvent, BrevoOrder, ContactUpdate};

/// Brevo's standard attribute for the mobile number (E.164).
pub const SMS_ATTRIBUTE: &str = "SMS";
/// `POST /v3/events/batch` accepts at most 200 events
/// (<https://developers.brevo.com/reference/create-batch-events>).
pub const EVENTS_BATCH_MAX: usize = 200;
/// List add/remove accept at most 150 e-mails per call
/// (<https://developers.brevo.com/reference/add-contact-to-list>).
pub const LIST_CHUNK_MAX: usize = 150;
/// `GET /v3/contacts/lists/{id}/contacts` returns at most 500 contacts a
/// page (`getContactsFromList`'s `limit`,
/// <https://developers.brevo.com/reference/getcontactsfromlist>).
pub const LIST_CONTACTS_PAGE_MAX: usize = 500;
/// Import JSON bodies should stay under about 8 MB
/// (<https://developers.brevo.com/reference/import-contacts>).
pub const IMPORT_MAX_BYTES: usize = 8_000_000;

// Default client-side rates: 80 % of the General plan's limits
// (<https://developers.brevo.com/docs/api-limits>).

/// `/v3/contacts/*`: 10 → 8 requests per second.
pub const DEFAULT_CONTACTS_RATE: Rate = Rate::per_second(8.0, 8);
/// `/v3/events*`: 10 → 8 requests per second.
pub const DEFAULT_EVENTS_RATE: Rate = Rate::per_second(8.0, 8);
/// `/v3/orders/*`: 5 → 4 requests per second.
pub const DEFAULT_ORDERS_RATE: Rate = Rate::per_second(4.0, 4);
/// Every other endpoint: 100 → 80 per hour, burst 10 so `check` is not
/// slowed down.
pub const DEFAULT_OTHER_RATE: Rate = Rate::per_hour(80.0, 10);

/// Lowercase Brevo name of an attribute type.
pub fn attribute_type_name(t: AttributeType) -> &'static str {
    match t {
        AttributeType::Float => "float",
        AttributeType::Date => "date",
        AttributeType::Text => "text",
        AttributeType::Boolean => "boolean",
    }
}

/// Body of `POST /v3/contacts` (also what `--dry-run` prints). Brevo's
/// `createContact` has no `unlinkListIds` (it answers 400
/// `invalid_parameter`): list removals are separate list calls, batched per
/// list by the consumer.
pub fn contact_body(c: &ContactUpdate) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("email".into(), json!(c.email));
    if !c.attributes.is_empty() {
        body.insert("attributes".into(), json!(c.attributes));
    }
    body.insert("updateEnabled".into(), json!(true));
    if !c.list_ids.is_empty() {
        body.insert("listIds".into(), json!(c.list_ids));
    }
    Value::Object(body)
}

/// One item of an import's `jsonBody` (per-contact list changes do not
/// apply: an import's `listIds` cover the whole import).
pub fn import_item(c: &ContactUpdate) -> Value {
    let mut item = serde_json::Map::new();
    item.insert("email".into(), json!(c.email));
    if !c.attributes.is_empty() {
        item.insert("attributes".into(), json!(c.attributes));
    }
    Value::Object(item)
}

/// One body of `POST /v3/contacts/import` and how many contacts it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportBody {
    pub json: Vec<u8>,
    pub contacts: usize,
}

/// The bodies of `POST /v3/contacts/import` for `contacts` into `list_ids`
/// (existing contacts updated, empty values not erasing anything): as few
/// as fit, each at most `max_bytes` unless a single contact is bigger; none
/// for no contacts. The items keep the contacts' order.
pub fn import_bodies(
    contacts: &[ContactUpdate],
    list_ids: &[i64],
    max_bytes: usize,
) -> Result<Vec<ImportBody>, serde_json::Error> {
    if contacts.is_empty() {
        return Ok(Vec::new());
    }
    let tail = serde_json::to_string(&json!({
        "listIds": list_ids,
        "updateExistingContacts": true,
        "emptyContactsAttributes": false,
    }))?;
    // `{"jsonBody":[` + items + `],` + tail without its leading `{`.
    let head = b"{\"jsonBody\":[";
    let envelope = head.len() + 2 + tail.len() - 1;
    let mut chunks: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut count = 0usize;
    for c in contacts {
        let item = serde_json::to_vec(&import_item(c))?;
        let extra = item.len() + usize::from(count > 0);
        if count > 0 && envelope + cur.len() + extra > max_bytes {
            chunks.push((std::mem::take(&mut cur), count));
            count = 0;
        }
        if count > 0 {
            cur.push(b',');
        }
        cur.extend_from_slice(&item);
        count += 1;
    }
    chunks.push((cur, count));
    let bodies = chunks
        .into_iter()
        .map(|(items, n)| {
            let mut json = Vec::with_capacity(envelope + items.len());
            json.extend_from_slice(head);
            json.extend_from_slice(&items);
            json.extend_from_slice(b"],");
            json.extend_from_slice(&tail.as_bytes()[1..]);
            ImportBody { json, contacts: n }
        })
        .collect();
    Ok(bodies)
}

/// Body of a list add or remove (`POST /v3/contacts/lists/{id}/contacts/{add,remove}`),
/// at most [`LIST_CHUNK_MAX`] e-mails.
pub fn list_change_body(emails: &[String]) -> Value {
    json!({ "emails": emails })
}

/// The `modifiedSince` query value for a unix time (seconds):
/// `YYYY-MM-DDTHH:mm:ss.SSSZ` in UTC, URL-encoded as Brevo asks.
pub fn modified_since_param(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    let text = t.format(&fmt).unwrap_or_default();
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Body of `POST /v3/contacts/attributes/normal/{name}`.
pub fn attribute_body(t: AttributeType) -> Value {
    json!({ "type": attribute_type_name(t) })
}

/// Body of `POST /v3/events` (one event).
pub fn event_body(e: &BrevoEvent) -> Result<Value, serde_json::Error> {
    serde_json::to_value(e)
}

/// Body of `POST /v3/events/batch`.
pub fn events_batch_body(events: &[BrevoEvent]) -> Value {
    json!({ "events": events })
}

/// Body of `POST /v3/orders/status`. [`BrevoOrder`] carries no line items;
/// `products` is required by Brevo, so an empty list is sent.
pub fn order_body(o: &BrevoOrder) -> Value {
    json!({
        "id": o.id,
        "createdAt": o.created_at,
        "updatedAt": o.updated_at,
        "status": o.status,
        "amount": o.amount,
        "identifiers": { "email_id": o.email },
        "products": [],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn contact(i: usize) -> ContactUpdate {
        ContactUpdate { email: format!("user{i}@example.com"), list_ids: vec![20], ..ContactUpdate::default() }
    }

    #[test]
    fn modified_since_is_utc_with_milliseconds_and_url_encoded() {
        assert_eq!(modified_since_param(1_767_323_045), "2026-01-02T03%3A04%3A05.000Z");
    }

    #[test]
    fn import_bodies_fit_the_limit_keep_the_order_and_carry_the_import_options() {
        assert!(import_bodies(&[], &[20], 100).unwrap().is_empty());
        let contacts: Vec<_> = (0..30).map(contact).collect();
        let one = import_bodies(&contacts, &[20, 21], IMPORT_MAX_BYTES).unwrap();
        assert_eq!(one.len(), 1);
        let v: Value = serde_json::from_slice(&one[0].json).unwrap();
        assert_eq!(v["listIds"], json!([20, 21]));
        assert_eq!(
            (v["updateExistingContacts"].clone(), v["emptyContactsAttributes"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(v["jsonBody"].as_array().unwrap().len(), 30);
        let split = import_bodies(&contacts, &[20], 300).unwrap();
        assert!(split.len() > 1);
        assert!(
            split.iter().all(|b| b.json.len() <= 300),
            "{:?}",
            split.iter().map(|b| b.json.len()).collect::<Vec<_>>()
        );
        let emails: Vec<String> = split
            .iter()
            .flat_map(|b| {
                let v: Value = serde_json::from_slice(&b.json).unwrap();
                v["jsonBody"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["email"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(emails, contacts.iter().map(|c| c.email.clone()).collect::<Vec<_>>());
        assert_eq!(split.iter().map(|b| b.contacts).sum::<usize>(), 30);
        // A single contact bigger than the limit still gets its body.
        assert_eq!(import_bodies(&contacts[..2], &[20], 10).unwrap().len(), 2);
    }
}
