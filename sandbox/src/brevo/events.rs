//! Custom events in the Brevo sandbox: `POST /v3/events` (204; 400 bad
//! `event_name` or identifiers) and `POST /v3/events/batch` (204 all
//! recorded, 207 partial with `{"errors":[{"index","message"}]}`, 400 none
//! valid, empty or > 200), and [`RecordedEvent`], how each is kept.

use serde_json::{json, Map, Value};

use super::http::{answer, error, Answer};
use super::state::State;
use super::validation::valid_email;

/// An event as posted (single or batch).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub event_name: String,
    /// `identifiers.email_id`, lower-cased.
    pub email: Option<String>,
    pub event_date: Option<String>,
    pub event_properties: Map<String, Value>,
    /// The whole event object as received.
    pub raw: Value,
}

fn valid_event_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl State {
    /// `POST /v3/events`: one event, validated then recorded.
    pub(super) fn post_event(&mut self, b: Value) -> Result<Answer, Answer> {
        self.validate_event(&b).map_err(|m| error(400, "invalid_parameter", &m))?;
        self.record_event(b);
        Ok(answer(204, None))
    }

    fn validate_event(&self, e: &Value) -> Result<(), String> {
        let name = e.get("event_name").and_then(Value::as_str).ok_or("event_name is missing")?;
        if !valid_event_name(name) {
            return Err("event_name must contain only alphanumeric characters, - and _ (max 255)".to_owned());
        }
        let ids = e.get("identifiers").and_then(Value::as_object).ok_or("identifiers is missing")?;
        if ids.is_empty() {
            return Err("At least one identifier is required".to_owned());
        }
        if let Some(email) = ids.get("email_id") {
            if !email.as_str().is_some_and(valid_email) {
                return Err("Invalid email_id".to_owned());
            }
        }
        if e.get("event_date").is_some_and(|d| !d.is_string()) {
            return Err("event_date should be a string".to_owned());
        }
        if e.get("event_properties").is_some_and(|p| !p.is_object()) {
            return Err("event_properties should be an object".to_owned());
        }
        Ok(())
    }

    fn record_event(&mut self, e: Value) {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        self.events.push(RecordedEvent {
            event_name: s(e.get("event_name")).unwrap_or_default(),
            email: s(e.pointer("/identifiers/email_id")).map(|m| m.trim().to_lowercase()),
            event_date: s(e.get("event_date")),
            event_properties: e.get("event_properties").and_then(Value::as_object).cloned().unwrap_or_default(),
            raw: e,
        });
    }

    pub(super) fn events_batch(&mut self, b: Value) -> Result<Answer, Answer> {
        let Some(events) = b.get("events").and_then(Value::as_array) else {
            return Err(error(400, "missing_parameter", "events is missing"));
        };
        if events.is_empty() {
            return Err(error(400, "invalid_parameter", "events should not be empty"));
        }
        if events.len() > 200 {
            return Err(error(400, "out_of_range", "A batch accepts at most 200 events"));
        }
        let mut errors = Vec::new();
        let mut ok = Vec::new();
        for (index, e) in events.iter().enumerate() {
            match self.validate_event(e) {
                Ok(()) => ok.push(e.clone()),
                Err(message) => errors.push(json!({ "index": index, "message": message })),
            }
        }
        if ok.is_empty() {
            let first =
                errors.first().and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("invalid events");
            return Err(error(400, "invalid_parameter", first));
        }
        let recorded = ok.len();
        for e in ok {
            self.record_event(e);
        }
        if errors.is_empty() {
            Ok(answer(204, None))
        } else {
            Ok(answer(207, Some(json!({ "successCount": recorded, "failureCount": errors.len(), "errors": errors }))))
        }
    }
}
