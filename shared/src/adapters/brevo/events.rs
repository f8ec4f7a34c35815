//! Custom events: one `POST /v3/events` for a single event,
//! `POST /v3/events/batch` in chunks of at most [`EVENTS_BATCH_MAX`]
//! otherwise, and the lenient reading of a 207 partial success.

use serde_json::Value;

use super::wire::{event_body, events_batch_body, EVENTS_BATCH_MAX};
use super::{BrevoClient, BrevoError};
use crate::adapters::http::redact::scrub_emails;
use crate::domain::brevo::BrevoEvent;

/// One event Brevo did not record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEvent {
    /// Index in the slice given to `send_events`.
    pub index: usize,
    pub message: String,
    /// True when sending it again later may succeed.
    pub retryable: bool,
    /// True when it was sent and no answer came: Brevo may have it.
    pub unconfirmed: bool,
}

/// What `send_events` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsOutcome {
    pub sent: usize,
    pub failed: Vec<FailedEvent>,
    pub requests: usize,
}

impl EventsOutcome {
    pub fn all_sent(&self) -> bool {
        self.failed.is_empty()
    }
}

impl BrevoClient {
    /// Sends custom events: one `POST /v3/events` for a single event,
    /// `POST /v3/events/batch` in chunks of at most 200 otherwise. A 207
    /// partial success lists the failed events. If the first request fails
    /// outright the error is returned (nothing was sent); if a later chunk
    /// fails, the events not sent are reported in `failed` with
    /// `retryable` set from the error.
    pub async fn send_events(&self, events: &[BrevoEvent]) -> Result<EventsOutcome, BrevoError> {
        let mut out = EventsOutcome::default();
        if events.is_empty() {
            return Ok(out);
        }
        if let [one] = events {
            let body = event_body(one).map_err(|e| BrevoError::Decode(e.to_string()))?;
            self.post_json_once("/v3/events", &body).await?;
            out.requests = 1;
            out.sent = 1;
            return Ok(out);
        }
        for (n, chunk) in events.chunks(EVENTS_BATCH_MAX).enumerate() {
            let offset = n * EVENTS_BATCH_MAX;
            out.requests += 1;
            match self.post_json_once("/v3/events/batch", &events_batch_body(chunk)).await {
                Ok(answer) if answer.status == 207 => {
                    let failed = partial_failures(&answer.json().unwrap_or(Value::Null), chunk.len());
                    out.sent += chunk.len() - failed.len();
                    out.failed.extend(failed.into_iter().map(|mut f| {
                        f.index += offset;
                        f
                    }));
                }
                Ok(_) => out.sent += chunk.len(),
                Err(e) if offset == 0 => return Err(e),
                Err(e) => {
                    // The failed chunk may have reached Brevo; the later ones were not sent.
                    let (message, retryable) = (e.to_string(), e.is_retryable());
                    let sent_unanswered = matches!(e, BrevoError::Unconfirmed(_));
                    out.failed.extend((offset..events.len()).map(|index| FailedEvent {
                        index,
                        message: message.clone(),
                        retryable,
                        unconfirmed: sent_unanswered && index < offset + chunk.len(),
                    }));
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Reads a 207 body leniently: an array of failures under `errors`,
/// `failed`, `failures` or `failedEvents`, each with an index (`index`,
/// `event_index`, `eventIndex`, `position`) that may be a number, a numeric
/// string or a list of those, and a message. Brevo took every event not
/// named: those are never reported failed (sending them again would fire
/// their automations twice, CONTRACT "Brevo events"). A failure whose index
/// cannot be read is logged and dropped for the same reason — at most once.
fn partial_failures(v: &Value, chunk_len: usize) -> Vec<FailedEvent> {
    let list =
        ["errors", "failed", "failures", "failedEvents"].iter().find_map(|k| v.get(*k).and_then(Value::as_array));
    let mut out: Vec<FailedEvent> = Vec::new();
    let mut unreadable = 0usize;
    for item in list.into_iter().flatten() {
        let indices: Vec<usize> = ["index", "event_index", "eventIndex", "position"]
            .iter()
            .find_map(|k| item.get(*k))
            .map(indices_of)
            .unwrap_or_default()
            .into_iter()
            .filter(|i| *i < chunk_len)
            .collect();
        if indices.is_empty() {
            unreadable += 1;
            continue;
        }
        let message = ["message", "error", "reason"]
            .iter()
            .find_map(|k| match item.get(*k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(o @ Value::Object(_)) => o.get("message").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .map(|m| scrub_emails(&m))
            .unwrap_or_else(|| "rejected by Brevo".to_owned());
        for index in indices {
            if !out.iter().any(|f| f.index == index) {
                out.push(FailedEvent { index, message: message.clone(), retryable: false, unconfirmed: false });
            }
        }
    }
    if unreadable > 0 || (list.is_none() && out.is_empty()) {
        tracing::warn!(
            unreadable,
            chunk = chunk_len,
            "Brevo's 207 names failures this client cannot place: those events are taken as sent (never sent twice)"
        );
    }
    out.sort_by_key(|f| f.index);
    out
}

/// An index as Brevo may write it: `3`, `"3"`, or `[1, 3]` / `["1", "3"]`.
fn indices_of(v: &Value) -> Vec<usize> {
    let one = |v: &Value| match v {
        Value::Number(n) => n.as_u64().and_then(|i| usize::try_from(i).ok()),
        Value::String(s) => s.trim().parse::<usize>().ok(),
        _ => None,
    };
    match v {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests;
