//! The Brevo sandbox's HTTP side: the one axum handler ([`handle`]: count,
//! response latency, faults, `api-key`, route, log, capture), the router
//! from `/v3/...` paths to the endpoint families' handlers (405 on a known
//! path with another method, 404 otherwise), each request first checked
//! against its operation in Brevo's definition ([`super::spec`]; the first
//! problem is the 400 Brevo answers), and the answer helpers
//! (`{"code","message"}` errors).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::faults::{self, Family};
use super::spec::{self, Seg, Violation};
use super::state::{Shared, State};
use super::validation::import_size;
use super::LoggedRequest;

/// The operations of Brevo's definition the sandbox serves (by
/// `operationId`); every one is checked against the definition.
pub const SERVED_OPERATIONS: [&str; 15] = [
    "getAccount",
    "createContact",
    "updateContact",
    "importContacts",
    "getAttributes",
    "createAttribute",
    "getLists",
    "getList",
    "getContactsFromList",
    "getProcess",
    "addContactToList",
    "removeContactFromList",
    "createEvent",
    "createBatchEvents",
    "createOrder",
];

/// Status and JSON body (extra headers are added by [`handle`]).
pub(super) type Answer = (StatusCode, Option<Value>);

pub(super) fn answer(status: u16, body: Option<Value>) -> Answer {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

pub(super) fn error(status: u16, code: &str, message: &str) -> Answer {
    answer(status, Some(json!({ "code": code, "message": message })))
}

/// Brevo's 400 for the first problem of a request.
fn refusal(v: &Violation) -> Answer {
    error(400, v.kind.code(), &v.message)
}

fn into_response((status, body): Answer, headers: HeaderMap) -> Response {
    let mut resp = match body {
        Some(v) => (status, axum::Json(v)).into_response(),
        None => status.into_response(),
    };
    resp.headers_mut().extend(headers);
    resp
}

pub(super) async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let family = Family::of(&path);
    // Faults are decided first (a throttled or failing Brevo answers before
    // looking at the request); the response latency and delays are slept
    // outside the lock.
    let (delay, fault) = {
        let mut st = shared.lock();
        *st.counts_mut(family) += 1;
        (st.latency.next_delay(), st.fault_for(family))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut extra = HeaderMap::new();
    let injected = faults::apply(fault, family, &shared, &mut extra).await;
    let mut st = shared.lock();
    let out = match injected {
        Some(a) => a,
        None => {
            let key_ok = headers.get("api-key").and_then(|v| v.to_str().ok()).is_some_and(|k| k == st.api_key);
            if key_ok {
                st.route(&method, &path, uri.query(), &body)
            } else {
                error(401, "unauthorized", "Key not found")
            }
        }
    };
    st.log.push(LoggedRequest { method: method.to_string(), path: path.clone(), status: out.0.as_u16(), family });
    drop(st);
    if let Some(capture) = &shared.capture {
        let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        capture.record(agent, method.as_str(), &path, uri.query(), out.0.as_u16(), &body);
    }
    into_response(out, extra)
}

/// A request checked against operation `id` of Brevo's definition: its
/// body parsed (a JSON object when the operation takes one, `Null`
/// otherwise), or Brevo's 400 for its first problem.
fn checked(id: &str, path: &str, query: Option<&str>, body: &[u8]) -> Result<Value, Answer> {
    let (parsed, violations) = check(id, path, query, body)?;
    match violations.first() {
        Some(v) => Err(refusal(v)),
        None => Ok(parsed),
    }
}

/// The parsed body and every problem of the request against operation `id`.
fn check(id: &str, path: &str, query: Option<&str>, body: &[u8]) -> Result<(Value, Vec<Violation>), Answer> {
    let spec = spec::spec();
    let Some(op) = spec.operation(id) else {
        return Err(error(500, "internal_error", &format!("the sandbox routes {id}, which Brevo's definition lacks")));
    };
    let parsed = match (&op.body, serde_json::from_slice::<Value>(body)) {
        (None, _) => Value::Null,
        (Some(_), Ok(v @ Value::Object(_))) => v,
        (Some(_), _) => return Err(error(400, "bad_request", "Input must be a valid JSON object")),
    };
    let violations = spec.check(op, path, query, op.body.as_ref().map(|_| &parsed));
    Ok((parsed, violations))
}

/// `POST /v3/events/batch` checked: a problem of the envelope refuses the
/// whole request; a problem inside `events[i]` only that event (Brevo's 207).
fn checked_batch(path: &str, query: Option<&str>, body: &[u8]) -> Result<(Value, BTreeMap<usize, String>), Answer> {
    let (parsed, violations) = check("createBatchEvents", path, query, body)?;
    let mut per_event = BTreeMap::new();
    for v in &violations {
        match v.path.0.as_slice() {
            [Seg::Key(k), Seg::Index(i), ..] if k == "events" => {
                per_event.entry(*i).or_insert_with(|| v.message.clone());
            }
            _ => return Err(refusal(v)),
        }
    }
    Ok((parsed, per_event))
}

impl State {
    fn route(&mut self, method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> Answer {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let (is_get, is_post, is_put) = (method == Method::GET, method == Method::POST, method == Method::PUT);
        let req = |id: &str| checked(id, path, query, body);
        let result = match segs.as_slice() {
            ["v3", "account"] if is_get => req("getAccount").map(|_| self.account()),
            ["v3", "contacts"] if is_post => req("createContact").and_then(|b| self.upsert_contact(&b)),
            ["v3", "contacts", "import"] if is_post => {
                req("importContacts").and_then(|b| import_size(body.len()).and_then(|()| self.import(&b, body.len())))
            }
            ["v3", "contacts", "attributes"] if is_get => req("getAttributes").map(|_| self.list_attributes()),
            ["v3", "contacts", "attributes", category, name] if is_post => {
                req("createAttribute").and_then(|b| self.create_attribute(category, name, &b))
            }
            ["v3", "contacts", "lists"] if is_get => req("getLists").map(|_| self.all_lists()),
            ["v3", "contacts", "lists", id] if is_get => req("getList").and_then(|_| self.get_list(id)),
            ["v3", "contacts", "lists", id, "contacts"] if is_get => {
                req("getContactsFromList").and_then(|_| self.list_contacts(id, query))
            }
            ["v3", "processes", id] if is_get => req("getProcess").and_then(|_| self.process(id)),
            ["v3", "contacts", "lists", id, "contacts", verb @ ("add" | "remove")] if is_post => {
                let add = verb == &"add";
                req(if add { "addContactToList" } else { "removeContactFromList" })
                    .and_then(|b| self.change_list(id, add, &b))
            }
            ["v3", "contacts", identifier] if is_put => {
                req("updateContact").and_then(|b| self.update_contact(identifier, query, &b))
            }
            ["v3", "events"] if is_post => req("createEvent").and_then(|b| self.post_event(b)),
            ["v3", "events", "batch"] if is_post => {
                checked_batch(path, query, body).and_then(|(b, refused)| self.events_batch(b, &refused))
            }
            ["v3", "orders", "status"] if is_post => req("createOrder").and_then(|b| self.upsert_order(b)),
            ["v3", ..] if Self::known_path(&segs) => Err(error(405, "method_not_allowed", "Method not allowed")),
            _ => Err(error(404, "not_found", "Invalid route")),
        };
        result.unwrap_or_else(|e| e)
    }

    fn known_path(segs: &[&str]) -> bool {
        matches!(
            segs,
            ["v3", "account"]
                | ["v3", "contacts"]
                | ["v3", "contacts", _]
                | ["v3", "contacts", "attributes", ..]
                | ["v3", "contacts", "lists", ..]
                | ["v3", "events"]
                | ["v3", "events", "batch"]
                | ["v3", "orders", "status"]
                | ["v3", "processes", _]
        )
    }
}
