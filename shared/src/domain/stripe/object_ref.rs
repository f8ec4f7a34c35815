//! Whom an event's `data.object` concerns (customer id, charge, e-mail),
//! read in one lenient pass whatever the object's type.

use serde::Deserialize;

use super::{CustomerDetails, Expandable, IdOnly};

/// What an event's `data.object` says about whom it concerns, read in one
/// pass whatever the object's type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectRef {
    /// The object's `object` field (`customer`, `charge`, `checkout.session`…).
    pub object: Option<String>,
    pub id: Option<String>,
    /// The Stripe customer the object concerns.
    pub customer_id: Option<String>,
    /// An e-mail carried by the object itself (checkout sessions' and
    /// invoices' `customer_details.email` / `customer_email`, a customer's
    /// `email`, an expanded customer's `email`), trimmed, as written.
    pub email: Option<String>,
    /// The charge a dispute or refund is about (its customer is the charge's).
    pub charge_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ObjectProbe {
    object: Option<String>,
    id: Option<String>,
    email: Option<String>,
    customer: Option<Expandable<IdOnly>>,
    customer_email: Option<String>,
    customer_details: Option<CustomerDetails>,
    charge: Option<Expandable<IdOnly>>,
}

/// Event types whose `data.object` is the customer itself.
fn is_customer_event(event_type: &str) -> bool {
    matches!(event_type, "customer.created" | "customer.updated" | "customer.deleted")
}

fn non_blank(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl ObjectRef {
    /// Reads an event's `data.object` (JSON text, e.g. `RawValue::get()`).
    /// `None` when it is not a JSON object.
    pub fn parse(event_type: &str, object_json: &str) -> Option<ObjectRef> {
        if !object_json.trim_start().starts_with('{') {
            return None;
        }
        let probe: ObjectProbe = serde_json::from_str(object_json).ok()?;
        let is_customer = match probe.object.as_deref() {
            Some(kind) => kind == "customer",
            None => is_customer_event(event_type),
        };
        let customer_email = probe.customer.as_ref().and_then(|c| c.as_object()).and_then(|c| c.email.clone());
        let (customer_id, email) = if is_customer {
            (non_blank(probe.id.clone()), non_blank(probe.email))
        } else {
            let details = probe.customer_details.and_then(|d| d.email);
            let email =
                non_blank(details).or_else(|| non_blank(probe.customer_email)).or_else(|| non_blank(customer_email));
            (non_blank(probe.customer.as_ref().map(|c| c.id().to_owned())), email)
        };
        Some(ObjectRef {
            object: probe.object,
            id: probe.id,
            customer_id,
            email,
            charge_id: probe.charge.as_ref().map(|c| c.id().to_owned()).filter(|c| !c.is_empty()),
        })
    }
}

/// Which Stripe customer an event's `data.object` concerns: the object's own
/// id when it is a customer (`customer.created/updated/deleted`), else its
/// `customer` field, an id or an expanded object. `None` when absent (e.g. a
/// guest checkout session: see [`email_of_object`]; a dispute: resolve its
/// charge, see [`ObjectRef::charge_id`]).
pub fn customer_id_of(event_type: &str, object_json: &str) -> Option<String> {
    ObjectRef::parse(event_type, object_json)?.customer_id
}

/// The e-mail an object carries itself: a checkout session's
/// `customer_details.email` or `customer_email`, an invoice's
/// `customer_email`, a customer's `email`. Trimmed, not lower-cased.
pub fn email_of_object(event_type: &str, object_json: &str) -> Option<String> {
    ObjectRef::parse(event_type, object_json)?.email
}
