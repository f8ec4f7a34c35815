//! Custom events in the Brevo sandbox: `POST /v3/events` (204; 400 bad
//! `event_name` or identifiers) and `POST /v3/events/batch` (204 all
//! recorded, 207 partial with `{"errors":[{"index","message"}]}`, 400 none
//! valid), and [`RecordedEvent`], how each is kept. The shapes (an empty
//! batch or one of more than 200, unknown fields, wrong types) are checked
//! against Brevo's definition before (see `http`); here are the value rules.

use std::collections::BTreeMap;

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

    /// Brevo's value rules for one event whose shape fits the definition.
    fn validate_event(&self, e: &Value) -> Result<(), String> {
        let name = e.get("event_name").and_then(Value::as_str).unwrap_or_default();
        if !valid_event_name(name) {
            return Err("event_name must contain only alphanumeric characters, - and _ (max 255)".to_owned());
        }
        if let Some(email) = e.pointer("/identifiers/email_id") {
            if !email.as_str().is_some_and(valid_email) {
                return Err("Invalid email_id".to_owned());
            }
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

    /// `refused`: the events (by index) whose shape the definition refused,
    /// with the reason.
    pub(super) fn events_batch(&mut self, b: Value, refused: &BTreeMap<usize, String>) -> Result<Answer, Answer> {
        let events = match b {
            Value::Object(mut m) => match m.remove("events") {
                Some(Value::Array(events)) => events,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let mut errors = Vec::new();
        let mut ok = Vec::new();
        for (index, e) in events.into_iter().enumerate() {
            let verdict = match refused.get(&index) {
                Some(why) => Err(why.clone()),
                None => self.validate_event(&e),
            };
            match verdict {
                Ok(()) => ok.push(e),
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
