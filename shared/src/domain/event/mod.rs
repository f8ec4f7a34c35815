//! The Stripe event envelope: what the webhook must recognise before queuing,
//! and what the consumer reads first.
//!
//! Two kinds exist: snapshot events (`object: "event"`, with `data.object`) and
//! thin events (`object: "v2.core.event"`, with `related_object` and an RFC 3339
//! `created`). The body of `data` is kept as raw JSON so the webhook never pays
//! for parsing what it only forwards.
//! See <https://docs.stripe.com/api/events/object> and
//! <https://docs.stripe.com/event-destinations#thin-events>.
//!
//! A body is first checked for depth (`nesting.rs`: bit masks, no parse).

mod nesting;

use serde::Deserialize;
use serde_json::value::RawValue;

use nesting::nests_deeper_than;

/// Which envelope a body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Snapshot,
    Thin,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Thin => "thin",
        }
    }
}

/// The envelope fields every door and the consumer rely on.
#[derive(Debug, Clone)]
pub struct EventEnvelope<'a> {
    pub id: String,
    pub kind: EventKind,
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    pub livemode: Option<bool>,
    pub api_version: Option<String>,
    /// `data.object` for snapshot events (raw JSON object).
    pub object: Option<&'a RawValue>,
    /// `related_object.id` for thin events.
    pub related_object_id: Option<String>,
}

/// Why a body is not a Stripe event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a Stripe event: {0}")]
    NotAnEvent(&'static str),
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    id: Option<String>,
    object: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    #[serde(borrow)]
    created: Option<&'a RawValue>,
    livemode: Option<bool>,
    api_version: Option<String>,
    #[serde(borrow)]
    data: Option<RawData<'a>>,
    related_object: Option<RelatedObject>,
}

#[derive(Deserialize)]
struct RawData<'a> {
    #[serde(borrow)]
    object: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RelatedObject {
    id: Option<String>,
}

/// Maximum length of ids and types we accept (Stripe's are far shorter);
/// keeps hostile values out of SQS attributes and logs.
const MAX_FIELD_LEN: usize = 255;

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_FIELD_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Deepest nesting accepted. Real Stripe events nest well under 20 levels;
/// the consumer's parser refuses beyond 128, so refuse early here.
pub const MAX_DEPTH: usize = 64;

/// Parses and validates an envelope without materialising `data.object`.
pub fn parse_envelope(body: &[u8]) -> Result<EventEnvelope<'_>, EnvelopeError> {
    if nests_deeper_than(body, MAX_DEPTH) {
        return Err(EnvelopeError::NotAnEvent("JSON nests too deeply"));
    }
    let raw: RawEnvelope<'_> = serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.classify_name()))?;
    let kind = match raw.object.as_deref() {
        Some("event") => EventKind::Snapshot,
        Some("v2.core.event") => EventKind::Thin,
        _ => return Err(EnvelopeError::NotAnEvent("`object` is not \"event\" or \"v2.core.event\"")),
    };
    let id = raw.id.ok_or(EnvelopeError::NotAnEvent("no `id`"))?;
    if !id.starts_with("evt_") || !valid_token(&id) {
        return Err(EnvelopeError::NotAnEvent("`id` is not an event id"));
    }
    let event_type = raw.event_type.ok_or(EnvelopeError::NotAnEvent("no `type`"))?;
    if !valid_token(&event_type) {
        return Err(EnvelopeError::NotAnEvent("`type` is not a Stripe event type"));
    }
    let created = raw.created.ok_or(EnvelopeError::NotAnEvent("no `created`"))?;
    let created = parse_created(created.get()).ok_or(EnvelopeError::NotAnEvent("`created` is not a timestamp"))?;
    let (object, related_object_id) = match kind {
        EventKind::Snapshot => {
            let object = raw.data.and_then(|d| d.object).ok_or(EnvelopeError::NotAnEvent("no `data.object`"))?;
            if !object.get().starts_with('{') {
                return Err(EnvelopeError::NotAnEvent("`data.object` is not an object"));
            }
            (Some(object), None)
        }
        EventKind::Thin => (None, raw.related_object.and_then(|r| r.id)),
    };
    Ok(EventEnvelope {
        id,
        kind,
        event_type,
        created,
        livemode: raw.livemode,
        api_version: raw.api_version,
        object,
        related_object_id,
    })
}

/// `created` is unix seconds in v1 events and an RFC 3339 string in v2 ones.
fn parse_created(raw: &str) -> Option<i64> {
    if let Ok(n) = raw.parse::<i64>() {
        return (n >= 0).then_some(n);
    }
    let s: String = serde_json::from_str(raw).ok()?;
    let t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp())
}

trait ClassifyName {
    fn classify_name(&self) -> String;
}

impl ClassifyName for serde_json::Error {
    /// Category and position only: never the offending text, which is the
    /// caller's payload.
    fn classify_name(&self) -> String {
        let cat = match self.classify() {
            serde_json::error::Category::Io => "io error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "unexpected end",
        };
        format!("{cat} at line {} column {}", self.line(), self.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_snapshot_event() {
        let body = br#"{"id":"evt_1","object":"event","type":"customer.created","created":1700000000,"livemode":false,"api_version":"2024-06-20","data":{"object":{"id":"cus_1","object":"customer"}}}"#;
        let e = parse_envelope(body).unwrap();
        assert_eq!(e.id, "evt_1");
        assert_eq!(e.kind, EventKind::Snapshot);
        assert_eq!(e.event_type, "customer.created");
        assert_eq!(e.created, 1_700_000_000);
        assert_eq!(e.livemode, Some(false));
        assert!(e.object.unwrap().get().contains("cus_1"));
    }

    #[test]
    fn recognises_a_thin_event() {
        let body = br#"{"id":"evt_test_65R9","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","livemode":false,"created":"2024-09-17T06:20:52.246Z","related_object":{"id":"mtr_1","type":"billing.meter","url":"/v1/billing/meters/mtr_1"}}"#;
        let e = parse_envelope(body).unwrap();
        assert_eq!(e.kind, EventKind::Thin);
        assert_eq!(e.created, 1_726_554_052);
        assert_eq!(e.related_object_id.as_deref(), Some("mtr_1"));
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        for body in [
            &b""[..],
            b"not json",
            b"[]",
            b"{}",
            br#"{"id":"cus_1","object":"customer"}"#,
            br#"{"id":"evt_1","object":"event","type":"x","created":1}"#,
            br#"{"id":"evt_1","object":"event","type":"x","created":"yesterday","data":{"object":{}}}"#,
            br#"{"id":"evt_1","object":"event","type":"a b","created":1,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","object":"event","type":"x","created":1,"data":{"object":[]}}"#,
            br#"{"id":"1","object":"event","type":"x","created":1,"data":{"object":{}}}"#,
        ] {
            assert!(parse_envelope(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn errors_never_echo_the_payload() {
        let err = parse_envelope(b"{\"secret_payload\": tru").unwrap_err().to_string();
        assert!(!err.contains("secret_payload"), "{err}");
    }
}
