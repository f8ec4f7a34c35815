//! Events in the Stripe sandbox: the list's `type` (a trailing `*` is a
//! wildcard) and `types[]` (at most 20) filters, [`Seed::event`], and
//! [`StripeSandbox::emit_event`] for tests that drive the poller.

use serde_json::{json, Value};

use super::http::ApiError;
use super::query::{array_param, param};
use super::seed::{fixture, Seed};
use super::store::{lock, merge};
use super::{StripeSandbox, SANDBOX_API_VERSION};

/// `GET /v1/events`' type filters; matches everything when none is given
/// (and on other lists).
pub(super) struct EventTypeFilter {
    types: Vec<String>,
}

impl EventTypeFilter {
    pub(super) fn parse(resource: &str, params: &[(String, String)]) -> Result<Self, ApiError> {
        let mut event_types: Vec<String> = Vec::new();
        if resource == "events" {
            let types = array_param(params, "types");
            if types.len() > 20 {
                return Err(ApiError::invalid(
                    "You may pass at most 20 event types in `types`.",
                    Some("types"),
                    Some("parameter_invalid_array"),
                ));
            }
            event_types = types;
            if let Some(t) = param(params, "type") {
                event_types.push(t.to_owned());
            }
        }
        Ok(Self { types: event_types })
    }

    pub(super) fn matches(&self, v: &Value) -> bool {
        if self.types.is_empty() {
            return true;
        }
        let t = v.get("type").and_then(Value::as_str).unwrap_or("");
        self.types.iter().any(|w| match w.strip_suffix('*') {
            Some(prefix) => t.starts_with(prefix),
            None => t == w,
        })
    }
}

impl Seed {
    /// An event in Stripe's shape.
    pub fn event(id: &str, event_type: &str, object: Value, created: i64, livemode: bool) -> Value {
        let mut e = merge(
            fixture("event"),
            json!({"id": id, "type": event_type, "created": created, "livemode": livemode,
                   "api_version": SANDBOX_API_VERSION, "pending_webhooks": 0,
                   "request": {"id": null, "idempotency_key": null}}),
        );
        e["data"] = json!({ "object": object });
        e
    }
}

impl StripeSandbox {
    /// Records an event (`evt_…`) with `data.object = object`, created at
    /// the sandbox clock; returns its id. Ids increase, so events emitted in
    /// the same second still list newest first. The object itself is not
    /// stored: `insert`/`update` it separately when the test needs it.
    pub fn emit_event(&self, event_type: &str, object: Value) -> String {
        let mut st = lock(&self.state);
        st.event_seq += 1;
        let id = format!("evt_1Sbx{:012}", st.event_seq);
        let created = st.now();
        let livemode = object.get("livemode").and_then(Value::as_bool).unwrap_or(false);
        let event = Seed::event(&id, event_type, object, created, livemode);
        st.insert("events", event);
        id
    }
}
