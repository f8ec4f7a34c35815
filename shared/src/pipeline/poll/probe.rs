//! Raw probes: the few fields the poller reads from Stripe's JSON (an event's
//! head, the customer a listed object concerns, a page's last id) without
//! parsing the rest. Pure; no I/O.

use serde::Deserialize;
use serde_json::value::RawValue;

/// The fields of an event the queue attributes need.
#[derive(Deserialize)]
pub(super) struct EventHead {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) event_type: Option<String>,
    pub(super) created: Option<i64>,
    pub(super) livemode: Option<bool>,
}

/// The fields of a listed object that say which customer it concerns.
#[derive(Deserialize)]
struct ObjectHead<'a> {
    id: Option<String>,
    object: Option<String>,
    #[serde(borrow)]
    customer: Option<&'a RawValue>,
    /// Refunds (`expand[]=data.charge`).
    #[serde(borrow)]
    charge: Option<&'a RawValue>,
    /// Balance transactions (`expand[]=data.source`).
    #[serde(borrow)]
    source: Option<&'a RawValue>,
}

/// An id or an expanded object's `id`.
fn id_of(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else if text.starts_with('{') {
        #[derive(Deserialize)]
        struct Id {
            id: Option<String>,
        }
        serde_json::from_str::<Id>(text).ok().and_then(|o| o.id)
    } else {
        None
    }
}

/// The customer an expanded object (a refund's charge, a balance
/// transaction's source) belongs to; `None` for a bare id.
fn customer_of_expanded(raw: &RawValue) -> Option<String> {
    if !raw.get().starts_with('{') {
        return None;
    }
    let head: ObjectHead<'_> = serde_json::from_str(raw.get()).ok()?;
    head.customer.and_then(id_of)
}

/// The customer a listed object concerns (`None`: guest checkout, price, product…).
pub fn customer_of(object_json: &str) -> Option<String> {
    let head: ObjectHead<'_> = serde_json::from_str(object_json).ok()?;
    let found = if head.object.as_deref() == Some("customer") {
        head.id
    } else if let Some(c) = head.customer.and_then(id_of) {
        Some(c)
    } else if let Some(c) = head.charge.and_then(customer_of_expanded) {
        Some(c)
    } else {
        head.source.and_then(customer_of_expanded)
    };
    found.filter(|c| c.starts_with("cus_"))
}

pub(super) fn last_id(items: &[Box<RawValue>]) -> Option<String> {
    items.last().and_then(|r| id_of(r))
}
