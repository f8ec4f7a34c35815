//! The Brevo sandbox's HTTP side: the one axum handler ([`handle`]: count,
//! response latency, faults, `api-key`, route, log), the router from
//! `/v3/...` paths to the endpoint families' handlers (405 on a known path
//! with another method, 404 otherwise), and the answer helpers
//! (`{"code","message"}` errors).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::faults::{self, Family};
use super::state::{Shared, State};
use super::LoggedRequest;

/// Status and JSON body (extra headers are added by [`handle`]).
pub(super) type Answer = (StatusCode, Option<Value>);

pub(super) fn answer(status: u16, body: Option<Value>) -> Answer {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

pub(super) fn error(status: u16, code: &str, message: &str) -> Answer {
    answer(status, Some(json!({ "code": code, "message": message })))
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
    st.log.push(LoggedRequest { method: method.to_string(), path, status: out.0.as_u16(), family });
    drop(st);
    into_response(out, extra)
}

impl State {
    fn route(&mut self, method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> Answer {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let is_get = method == Method::GET;
        let is_post = method == Method::POST;
        let parsed = || -> Result<Value, Answer> {
            match serde_json::from_slice::<Value>(body) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(error(400, "bad_request", "Input must be a valid JSON object")),
            }
        };
        let result = match segs.as_slice() {
            ["v3", "account"] if is_get => Ok(self.account()),
            ["v3", "contacts"] if is_post => parsed().and_then(|b| self.upsert_contact(&b)),
            ["v3", "contacts", "import"] if is_post => parsed().and_then(|b| self.import(&b, body.len())),
            ["v3", "contacts", "attributes"] if is_get => Ok(self.list_attributes()),
            ["v3", "contacts", "attributes", category, name] if is_post => {
                parsed().and_then(|b| self.create_attribute(category, name, &b))
            }
            ["v3", "contacts", "lists"] if is_get => Ok(self.all_lists()),
            ["v3", "contacts", "lists", id] if is_get => self.get_list(id),
            ["v3", "contacts", "lists", id, "contacts"] if is_get => self.list_contacts(id, query),
            ["v3", "processes", id] if is_get => self.process(id),
            ["v3", "contacts", "lists", id, "contacts", verb @ ("add" | "remove")] if is_post => {
                parsed().and_then(|b| self.change_list(id, verb == &"add", &b))
            }
            ["v3", "events"] if is_post => parsed().and_then(|b| self.post_event(b)),
            ["v3", "events", "batch"] if is_post => parsed().and_then(|b| self.events_batch(b)),
            ["v3", "orders", "status"] if is_post => parsed().and_then(|b| self.upsert_order(b)),
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
                | ["v3", "contacts", "import"]
                | ["v3", "contacts", "attributes", ..]
                | ["v3", "contacts", "lists", ..]
                | ["v3", "events"]
                | ["v3", "events", "batch"]
                | ["v3", "orders", "status"]
                | ["v3", "processes", _]
        )
    }
}
