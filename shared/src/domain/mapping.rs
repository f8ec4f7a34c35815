//! Pure mapping from Stripe to Brevo: a customer and their metrics become the
//! desired state of one Brevo contact ([`map_contact`]); a Stripe event
//! becomes at most one Brevo custom event ([`build_brevo_event`]).
//!
//! Contacts (CONTRACT "Metrics", "Precisions"):
//! - the e-mail, trimmed and lower-cased, is the identifier; a customer
//!   without a usable one (absent, blank, no `@`) is [`ContactOutcome::NoEmail`];
//! - a deleted customer is [`ContactOutcome::Deleted`]: nothing to upsert
//!   (an upsert would re-create the contact); the consumer removes the
//!   e-mail it knows from the configured lists instead;
//! - `name` → its attribute and, when `split_name` (default), FIRSTNAME and
//!   LASTNAME split on the last space (keys `first_name`/`last_name` rename
//!   them); `phone` → SMS only when it normalises to E.164, else dropped with
//!   [`MappingWarning::PhoneNotE164`], never failing the contact;
//! - numeric metrics are always sent (0 when nothing to count) except
//!   `average_order_value` and `last_payment_date`, unset without payments;
//!   `subscription_status`, `plan_name`, `subscription_start` are unset for a
//!   customer who never had a subscription (none but `incomplete_expired`);
//!   `mrr` is numeric and so always sent;
//! - `metadata.<key>` copies a metadata value when present (never clears);
//! - lists: `all_customers` always; `subscribers` (and out of `churned`)
//!   when subscribed; else `churned` (and out of `subscribers`) when they
//!   ever subscribed.
//!
//! Events (CONTRACT "Brevo events"): only configured types, only when not
//! older than `event_max_age`; properties hold ids, status, the amount in
//! major units and the currency, and a few fields automations use (invoice
//! number and hosted URL, checkout recovery URL, trial end…). Never secrets
//! (`client_secret`), metadata, descriptions or payment-method details.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::brevo::{AttributeType, AttributeValue, BrevoEvent, ContactUpdate, EventIdentifiers};
use super::metrics::CustomerMetrics;
use super::money;
use super::stripe::{Customer, Expandable, IdOnly, InvoiceParent, List, PaymentError, SubscriptionItem};
use crate::settings::{StripeSettings, FIRSTNAME, LASTNAME, METADATA_PREFIX};

/// Something the mapping dropped without failing the contact. Never carries
/// the offending value (PII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingWarning {
    /// The phone does not normalise to E.164: SMS left unset.
    PhoneNotE164,
}

impl fmt::Display for MappingWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PhoneNotE164 => f.write_str("phone is not E.164 (+ and 8–15 digits): SMS left unset"),
        }
    }
}

/// Why a customer produces no contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// No usable e-mail: skipped and counted, never sent.
    NoEmail,
    /// Deleted in Stripe: remove from the configured lists, upsert nothing.
    Deleted,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEmail => f.write_str("customer has no e-mail"),
            Self::Deleted => f.write_str("customer is deleted"),
        }
    }
}

/// What [`map_contact`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactOutcome {
    Contact { update: ContactUpdate, warnings: Vec<MappingWarning> },
    NoEmail,
    Deleted,
}

impl ContactOutcome {
    /// The contact, or why there is none (warnings dropped).
    pub fn into_result(self) -> Result<ContactUpdate, SkipReason> {
        match self {
            Self::Contact { update, .. } => Ok(update),
            Self::NoEmail => Err(SkipReason::NoEmail),
            Self::Deleted => Err(SkipReason::Deleted),
        }
    }
}

/// Trimmed, lower-cased e-mail; `None` when blank or not `local@domain`.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim();
    let (local, domain) = email.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || email.chars().any(char::is_whitespace) {
        return None;
    }
    Some(email.to_lowercase())
}

/// E.164 (`+` then 8–15 digits) once spaces, dashes, dots and parentheses
/// are removed; `None` otherwise.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(16);
    for c in raw.trim().chars() {
        match c {
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' | '\t' => {}
            '+' if out.is_empty() => out.push('+'),
            d if d.is_ascii_digit() && !out.is_empty() => out.push(d),
            _ => return None,
        }
    }
    let digits = out.len().saturating_sub(1);
    (out.starts_with('+') && (8..=15).contains(&digits)).then_some(out)
}

/// A full name split on its last space: `("Mary Ann", "Smith")`; a single
/// word is a first name only.
pub fn split_name(full: &str) -> (Option<&str>, Option<&str>) {
    let full = full.trim();
    if full.is_empty() {
        return (None, None);
    }
    match full.rsplit_once(char::is_whitespace) {
        Some((first, last)) => {
            let first = first.trim();
            (Some(first).filter(|f| !f.is_empty()), Some(last.trim()).filter(|l| !l.is_empty()))
        }
        None => (Some(full), None),
    }
}

struct Attributes<'a> {
    update: &'a mut ContactUpdate,
}

impl Attributes<'_> {
    fn set(&mut self, name: &str, value: AttributeValue, kind: AttributeType) {
        self.update.attributes.insert(name.to_owned(), value);
        self.update.attribute_types.insert(name.to_owned(), kind);
    }
    fn number(&mut self, name: &str, v: f64) {
        self.set(name, AttributeValue::Number(v), AttributeType::Float);
    }
    fn text(&mut self, name: &str, v: &str) {
        self.set(name, AttributeValue::Text(v.to_owned()), AttributeType::Text);
    }
    fn date(&mut self, name: &str, v: &str) {
        self.set(name, AttributeValue::date(v), AttributeType::Date);
    }
}

/// The desired state of a customer's Brevo contact.
pub fn map_contact(customer: &Customer, metrics: &CustomerMetrics, settings: &StripeSettings) -> ContactOutcome {
    if customer.deleted {
        return ContactOutcome::Deleted;
    }
    let Some(email) = customer.email.as_deref().and_then(normalize_email) else {
        return ContactOutcome::NoEmail;
    };
    let mut update = ContactUpdate { email, ..ContactUpdate::default() };
    let mut warnings = Vec::new();
    let had_subscription = metrics.newest_subscription_id.is_some();
    let name = customer.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let mut attrs = Attributes { update: &mut update };

    for (key, attribute) in &settings.field_mapping {
        let attribute = attribute.as_str();
        match key.as_str() {
            "email" => {
                // The identifier itself; another attribute name gets a copy.
                if !attribute.eq_ignore_ascii_case("email") {
                    let email = attrs.update.email.clone();
                    attrs.text(attribute, &email);
                }
            }
            "name" => {
                if let Some(name) = name {
                    attrs.text(attribute, name);
                }
            }
            "first_name" | "last_name" => {} // with `name` below
            "phone" => {
                if let Some(raw) = customer.phone.as_deref().filter(|p| !p.trim().is_empty()) {
                    match normalize_phone(raw) {
                        Some(phone) => attrs.text(attribute, &phone),
                        None => warnings.push(MappingWarning::PhoneNotE164),
                    }
                }
            }
            "total_spent" => attrs.number(attribute, metrics.total_spent),
            "payment_count" => attrs.number(attribute, metrics.payment_count as f64),
            "lifetime_value" => attrs.number(attribute, metrics.lifetime_value),
            "refunded" => attrs.number(attribute, metrics.refunded),
            "mrr" => attrs.number(attribute, metrics.mrr),
            "average_order_value" => {
                if let Some(aov) = metrics.average_order_value {
                    attrs.number(attribute, aov);
                }
            }
            "last_payment_date" => {
                if let Some(d) = &metrics.last_payment_date {
                    attrs.date(attribute, d);
                }
            }
            "subscription_status" => {
                if let (true, Some(s)) = (had_subscription, &metrics.subscription_status) {
                    attrs.text(attribute, s.as_str());
                }
            }
            "plan_name" => {
                if let (true, Some(p)) = (had_subscription, &metrics.plan_name) {
                    attrs.text(attribute, p);
                }
            }
            "subscription_start" => {
                if let (true, Some(d)) = (had_subscription, &metrics.subscription_start) {
                    attrs.date(attribute, d);
                }
            }
            "pay_later_used" => {
                attrs.set(attribute, AttributeValue::Bool(metrics.pay_later_used), AttributeType::Boolean)
            }
            other => {
                if let Some(meta_key) = other.strip_prefix(METADATA_PREFIX) {
                    if let Some(v) = customer.metadata.get(meta_key) {
                        attrs.text(attribute, v);
                    }
                }
                // Unknown keys are refused when the settings load.
            }
        }
    }

    if let Some(name) = name {
        let first_target = settings.field_mapping.get("first_name").map(String::as_str);
        let last_target = settings.field_mapping.get("last_name").map(String::as_str);
        let by_default = settings.split_name && settings.field_mapping.contains_key("name");
        let first_target = first_target.or(by_default.then_some(FIRSTNAME));
        let last_target = last_target.or(by_default.then_some(LASTNAME));
        let (first, last) = split_name(name);
        if let (Some(target), Some(first)) = (first_target, first) {
            attrs.text(target, first);
        }
        if let (Some(target), Some(last)) = (last_target, last) {
            attrs.text(target, last);
        }
    }

    let lists = &settings.lists;
    update.list_ids.extend(lists.all_customers);
    if metrics.is_subscriber {
        update.list_ids.extend(lists.subscribers);
        update.unlink_list_ids.extend(lists.churned);
    } else if metrics.ever_subscribed {
        update.list_ids.extend(lists.churned);
        update.unlink_list_ids.extend(lists.subscribers);
    }
    ContactOutcome::Contact { update, warnings }
}

/// `stripe_` + the type with `.` → `_` and anything outside `[A-Za-z0-9_-]`
/// → `_` (Brevo's allowed characters).
pub fn brevo_event_name(stripe_type: &str) -> String {
    let mut name = String::with_capacity(7 + stripe_type.len());
    name.push_str("stripe_");
    name.extend(stripe_type.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }));
    name
}

/// What [`build_brevo_event`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum EventDecision {
    Send(BrevoEvent),
    /// Older than `event_max_age`: update the contact, send no event.
    TooOld,
    /// Not in the config's `events` (or its date cannot be written).
    NotConfigured,
}

impl EventDecision {
    pub fn into_option(self) -> Option<BrevoEvent> {
        match self {
            Self::Send(e) => Some(e),
            _ => None,
        }
    }
}

/// RFC 3339 (UTC, `Z`) of a unix timestamp.
pub fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix).ok()?.format(&time::format_description::well_known::Rfc3339).ok()
}

/// The fields of an event's `data.object` that event properties use, for
/// whatever object type. Unknown fields ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct EventObject {
    id: Option<String>,
    object: Option<String>,
    customer: Option<Expandable<IdOnly>>,
    amount: Option<i64>,
    amount_received: Option<i64>,
    amount_captured: Option<i64>,
    amount_refunded: Option<i64>,
    amount_due: Option<i64>,
    amount_paid: Option<i64>,
    amount_total: Option<i64>,
    currency: Option<String>,
    status: Option<String>,
    subscription: Option<Expandable<IdOnly>>,
    invoice: Option<Expandable<IdOnly>>,
    charge: Option<Expandable<IdOnly>>,
    payment_intent: Option<Expandable<IdOnly>>,
    parent: Option<InvoiceParent>,
    // invoice
    number: Option<String>,
    billing_reason: Option<String>,
    attempt_count: Option<u64>,
    next_payment_attempt: Option<i64>,
    hosted_invoice_url: Option<String>,
    // subscription
    items: Option<List<SubscriptionItem>>,
    trial_end: Option<i64>,
    cancel_at_period_end: Option<bool>,
    cancel_at: Option<i64>,
    canceled_at: Option<i64>,
    // payment intent / charge
    last_payment_error: Option<PaymentError>,
    failure_code: Option<String>,
    // dispute / refund
    reason: Option<String>,
    // checkout session
    mode: Option<String>,
    payment_status: Option<String>,
    after_expiration: Option<AfterExpiration>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AfterExpiration {
    recovery: Option<Recovery>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Recovery {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IdProbe {
    id: Option<String>,
    object: Option<String>,
}

/// The object's kind: its `object` field, else guessed from the event type.
fn object_kind<'a>(object: Option<&'a str>, event_type: &'a str) -> &'a str {
    if let Some(o) = object {
        return o;
    }
    for (prefix, kind) in [
        ("customer.subscription.", "subscription"),
        ("checkout.session.", "checkout.session"),
        ("charge.dispute.", "dispute"),
        ("charge.refund.", "refund"),
        ("payment_intent.", "payment_intent"),
        ("invoice.", "invoice"),
        ("charge.", "charge"),
        ("refund.", "refund"),
        ("customer.", "customer"),
    ] {
        if event_type.starts_with(prefix) {
            return kind;
        }
    }
    ""
}

/// The amount (minor units) an event is about, as fits the object.
fn event_amount(o: &EventObject, kind: &str, event_type: &str) -> Option<i64> {
    let positive = |v: Option<i64>| v.filter(|a| *a > 0);
    match kind {
        "payment_intent" => {
            if event_type.ends_with(".succeeded") {
                positive(o.amount_received).or(o.amount)
            } else {
                o.amount
            }
        }
        "charge" => {
            if event_type.contains("refund") {
                o.amount_refunded.or(o.amount)
            } else {
                positive(o.amount_captured).or(o.amount)
            }
        }
        "invoice" => {
            let paid = o.status.as_deref() == Some("paid")
                || event_type.ends_with(".paid")
                || event_type.ends_with("payment_succeeded");
            if paid {
                o.amount_paid.or(o.amount_due)
            } else {
                o.amount_due.or(o.amount_total).or(o.amount)
            }
        }
        "checkout.session" => o.amount_total,
        "subscription" => {
            // One billing period at list price: Σ unit_amount × quantity of
            // the licensed items, all in one currency.
            let items = &o.items.as_ref()?.data;
            let mut sum: i64 = 0;
            let mut any = false;
            for item in items {
                let price = item.price.as_ref()?;
                if price.recurring.as_ref().and_then(|r| r.usage_type.as_deref()) == Some("metered") {
                    continue;
                }
                let unit = price.unit_amount?;
                sum = sum.checked_add(unit.checked_mul(i64::try_from(item.quantity).ok()?)?)?;
                any = true;
            }
            any.then_some(sum)
        }
        _ => o.amount.or(o.amount_total).or(o.amount_due),
    }
}

fn put_str(props: &mut Map<String, Value>, key: &str, v: Option<&str>) {
    if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
        props.insert(key.to_owned(), Value::String(v.to_owned()));
    }
}

fn put_time(props: &mut Map<String, Value>, key: &str, v: Option<i64>) {
    if let Some(t) = v.and_then(rfc3339) {
        props.insert(key.to_owned(), Value::String(t));
    }
}

/// One Brevo event for a Stripe event, if its type is configured and it is
/// young enough. `email` is the contact's; `object_json` the event's
/// `data.object` (JSON text).
pub fn build_brevo_event(
    event_id: &str,
    event_type: &str,
    created: i64,
    object_json: &str,
    email: &str,
    settings: &StripeSettings,
    now_unix: i64,
) -> EventDecision {
    if !settings.sends_event(event_type) {
        return EventDecision::NotConfigured;
    }
    if now_unix.saturating_sub(created) > settings.event_max_age_secs() {
        return EventDecision::TooOld;
    }
    let Some(event_date) = rfc3339(created) else {
        return EventDecision::NotConfigured;
    };

    let mut props = Map::new();
    props.insert("stripe_event_id".to_owned(), Value::String(event_id.to_owned()));
    props.insert("stripe_event_type".to_owned(), Value::String(event_type.to_owned()));
    match serde_json::from_str::<EventObject>(object_json) {
        Ok(o) => fill_properties(&mut props, &o, event_type),
        Err(_) => {
            // A shape we did not expect: still send the ids.
            if let Ok(p) = serde_json::from_str::<IdProbe>(object_json) {
                let kind = object_kind(p.object.as_deref(), event_type).to_owned();
                put_str(&mut props, "object", Some(&kind));
                put_str(&mut props, "object_id", p.id.as_deref());
            }
        }
    }

    EventDecision::Send(BrevoEvent {
        event_name: brevo_event_name(event_type),
        event_date,
        identifiers: EventIdentifiers { email_id: email.trim().to_lowercase() },
        event_properties: props,
    })
}

fn fill_properties(props: &mut Map<String, Value>, o: &EventObject, event_type: &str) {
    let kind = object_kind(o.object.as_deref(), event_type);
    put_str(props, "object", Some(kind));
    put_str(props, "object_id", o.id.as_deref());
    if kind == "customer" {
        put_str(props, "customer_id", o.id.as_deref());
    } else {
        put_str(props, "customer_id", o.customer.as_ref().map(Expandable::id));
    }
    put_str(props, "status", o.status.as_deref());

    let sub_currency =
        || o.items.as_ref()?.data.first()?.price.as_ref().map(|p| p.currency.as_str()).filter(|c| !c.is_empty());
    let currency = o
        .currency
        .as_deref()
        .filter(|c| !c.is_empty())
        .or_else(|| (kind == "subscription").then(sub_currency).flatten());
    if let (Some(amount), Some(currency)) = (event_amount(o, kind, event_type), currency) {
        props.insert("amount".to_owned(), Value::from(money::minor_to_major(amount, currency)));
        props.insert("currency".to_owned(), Value::String(currency.to_ascii_lowercase()));
    }

    // Related ids.
    let subscription = o
        .subscription
        .as_ref()
        .map(Expandable::id)
        .or_else(|| Some(o.parent.as_ref()?.subscription_details.as_ref()?.subscription.as_ref()?.id()));
    if kind == "subscription" {
        put_str(props, "subscription_id", o.id.as_deref());
    } else {
        put_str(props, "subscription_id", subscription);
    }
    if kind == "invoice" {
        put_str(props, "invoice_id", o.id.as_deref());
    } else {
        put_str(props, "invoice_id", o.invoice.as_ref().map(Expandable::id));
    }
    if kind == "charge" {
        put_str(props, "charge_id", o.id.as_deref());
    } else {
        put_str(props, "charge_id", o.charge.as_ref().map(Expandable::id));
    }
    if kind == "payment_intent" {
        put_str(props, "payment_intent_id", o.id.as_deref());
    } else {
        put_str(props, "payment_intent_id", o.payment_intent.as_ref().map(Expandable::id));
    }

    match kind {
        "subscription" => {
            if let Some(first) = o.items.as_ref().and_then(|i| i.data.first()).and_then(|i| i.price.as_ref()) {
                let plan = first.product_name().or(first.nickname.as_deref());
                put_str(props, "plan_name", plan);
                put_str(props, "price_id", Some(&first.id));
                if let Some(r) = &first.recurring {
                    put_str(props, "interval", r.interval.as_deref());
                    props.insert("interval_count".to_owned(), Value::from(r.interval_count));
                }
            }
            if let Some(b) = o.cancel_at_period_end {
                props.insert("cancel_at_period_end".to_owned(), Value::Bool(b));
            }
            put_time(props, "trial_end", o.trial_end);
            put_time(props, "cancel_at", o.cancel_at);
            put_time(props, "canceled_at", o.canceled_at);
        }
        "invoice" => {
            put_str(props, "invoice_number", o.number.as_deref());
            put_str(props, "billing_reason", o.billing_reason.as_deref());
            put_str(props, "hosted_invoice_url", o.hosted_invoice_url.as_deref());
            if let Some(n) = o.attempt_count {
                props.insert("attempt_count".to_owned(), Value::from(n));
            }
            put_time(props, "next_payment_attempt", o.next_payment_attempt);
        }
        "payment_intent" => {
            if let Some(err) = &o.last_payment_error {
                put_str(props, "failure_code", err.decline_code.as_deref().or(err.code.as_deref()));
            }
        }
        "charge" => {
            put_str(props, "failure_code", o.failure_code.as_deref());
            if let (Some(total), Some(currency)) = (o.amount, o.currency.as_deref()) {
                if event_type.contains("refund") {
                    props.insert("charge_amount".to_owned(), Value::from(money::minor_to_major(total, currency)));
                }
            }
        }
        "dispute" | "refund" => put_str(props, "reason", o.reason.as_deref()),
        "checkout.session" => {
            put_str(props, "mode", o.mode.as_deref());
            put_str(props, "payment_status", o.payment_status.as_deref());
            let recovery = o.after_expiration.as_ref().and_then(|a| a.recovery.as_ref()).and_then(|r| r.url.as_deref());
            put_str(props, "recovery_url", recovery);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::compute_metrics;
    use crate::domain::stripe::{Charge, Subscription, SubscriptionStatus};
    use crate::settings::{ListIds, Settings};
    use serde_json::json;

    use crate::domain::fixtures::fixture;

    const T0: i64 = 1_710_072_000; // 2024-03-10T12:00:00Z

    fn settings() -> StripeSettings {
        let mut s = Settings::default().stripe;
        s.lists = ListIds { all_customers: Some(20), subscribers: Some(21), churned: Some(22) };
        s
    }

    fn customer(email: Option<&str>, name: Option<&str>, phone: Option<&str>) -> Customer {
        let mut c = fixture("customer");
        c["email"] = json!(email);
        c["name"] = json!(name);
        c["phone"] = json!(phone);
        c["metadata"] = json!({"customer_tier": "gold", "internal": "x"});
        serde_json::from_value(c).unwrap()
    }

    fn jenny() -> Customer {
        customer(Some("  Jenny.Rosen@Example.COM "), Some("Jenny Rosen"), Some("+1 (415) 555-0100"))
    }

    fn paid_charge(amount: i64) -> Charge {
        let mut c = fixture("charge");
        c["amount"] = json!(amount);
        c["amount_captured"] = json!(amount);
        c["status"] = json!("succeeded");
        c["created"] = json!(T0);
        serde_json::from_value(c).unwrap()
    }

    fn sub(status: &str) -> Subscription {
        let mut s = fixture("subscription");
        s["status"] = json!(status);
        s["created"] = json!(T0);
        s["start_date"] = json!(T0);
        s["items"]["data"][0]["price"]["nickname"] = json!("Pro");
        serde_json::from_value(s).unwrap()
    }

    fn contact(c: &Customer, m: &CustomerMetrics, s: &StripeSettings) -> (ContactUpdate, Vec<MappingWarning>) {
        match map_contact(c, m, s) {
            ContactOutcome::Contact { update, warnings } => (update, warnings),
            other => panic!("expected a contact, got {other:?}"),
        }
    }

    fn attr<'a>(u: &'a ContactUpdate, name: &str) -> Option<&'a AttributeValue> {
        u.attributes.get(name)
    }

    #[test]
    fn the_email_is_trimmed_and_lower_cased() {
        let (u, w) = contact(&jenny(), &compute_metrics(&[], &[], "usd"), &settings());
        assert_eq!(u.email, "jenny.rosen@example.com");
        assert!(w.is_empty());
        // `email: email` is the identifier, not an attribute.
        assert!(attr(&u, "email").is_none());
    }

    #[test]
    fn a_customer_without_email_is_skipped() {
        let m = compute_metrics(&[], &[], "usd");
        for email in [None, Some(""), Some("   "), Some("not-an-email"), Some("@example.com"), Some("a b@x.com")] {
            let c = customer(email, Some("X"), None);
            assert_eq!(map_contact(&c, &m, &settings()), ContactOutcome::NoEmail, "{email:?}");
            assert_eq!(map_contact(&c, &m, &settings()).into_result(), Err(SkipReason::NoEmail));
        }
    }

    #[test]
    fn a_deleted_customer_is_not_upserted() {
        let m = compute_metrics(&[], &[], "usd");
        let stub: Customer = serde_json::from_value(fixture("deleted_customer")).unwrap();
        assert_eq!(map_contact(&stub, &m, &settings()), ContactOutcome::Deleted);
        let mut full = jenny();
        full.deleted = true;
        assert_eq!(map_contact(&full, &m, &settings()).into_result(), Err(SkipReason::Deleted));
    }

    #[test]
    fn the_name_fills_fullname_and_a_split_first_and_last_name() {
        let (u, _) = contact(&jenny(), &compute_metrics(&[], &[], "usd"), &settings());
        assert_eq!(attr(&u, "FULLNAME"), Some(&AttributeValue::Text("Jenny Rosen".into())));
        assert_eq!(attr(&u, "FIRSTNAME"), Some(&AttributeValue::Text("Jenny".into())));
        assert_eq!(attr(&u, "LASTNAME"), Some(&AttributeValue::Text("Rosen".into())));
        assert_eq!(u.attribute_types.get("FIRSTNAME"), Some(&AttributeType::Text));
    }

    #[test]
    fn names_split_on_the_last_space() {
        assert_eq!(split_name("Mary Ann Smith"), (Some("Mary Ann"), Some("Smith")));
        assert_eq!(split_name("  Cher "), (Some("Cher"), None));
        assert_eq!(split_name(""), (None, None));
        assert_eq!(split_name("Jean-Luc Picard"), (Some("Jean-Luc"), Some("Picard")));
    }

    #[test]
    fn splitting_can_be_turned_off_or_renamed() {
        let m = compute_metrics(&[], &[], "usd");
        let mut s = settings();
        s.split_name = false;
        let (u, _) = contact(&jenny(), &m, &s);
        assert!(attr(&u, "FIRSTNAME").is_none() && attr(&u, "LASTNAME").is_none());
        assert!(attr(&u, "FULLNAME").is_some());
        s.field_mapping.insert("first_name".into(), "PRENOM".into());
        let (u, _) = contact(&jenny(), &m, &s);
        assert_eq!(attr(&u, "PRENOM"), Some(&AttributeValue::Text("Jenny".into())));
        assert!(attr(&u, "LASTNAME").is_none());
    }

    #[test]
    fn a_phone_that_normalises_to_e164_goes_to_sms() {
        let (u, w) = contact(&jenny(), &compute_metrics(&[], &[], "usd"), &settings());
        assert_eq!(attr(&u, "SMS"), Some(&AttributeValue::Text("+14155550100".into())));
        assert!(w.is_empty());
    }

    #[test]
    fn a_phone_that_is_not_e164_is_dropped_with_a_warning() {
        let m = compute_metrics(&[], &[], "usd");
        for phone in ["415 555 0100", "+1 555", "+1234567890123456", "call me", "+44 20 7946 0958 ext 2"] {
            let c = customer(Some("a@b.co"), None, Some(phone));
            let (u, w) = contact(&c, &m, &settings());
            assert!(attr(&u, "SMS").is_none(), "{phone}");
            assert_eq!(w, vec![MappingWarning::PhoneNotE164], "{phone}");
            assert!(!w[0].to_string().contains(phone));
        }
    }

    #[test]
    fn phones_normalise_per_the_contract() {
        assert_eq!(normalize_phone("+33 6 12.34.56.78").as_deref(), Some("+33612345678"));
        assert_eq!(normalize_phone("+1-(415)-555-0100").as_deref(), Some("+14155550100"));
        assert_eq!(normalize_phone("+12345678").as_deref(), Some("+12345678")); // 8 digits
        assert_eq!(normalize_phone("+123456789012345").as_deref(), Some("+123456789012345")); // 15
        assert_eq!(normalize_phone("+1234567"), None); // 7
        assert_eq!(normalize_phone("0033612345678"), None);
        assert_eq!(normalize_phone("++33612345678"), None);
        assert_eq!(normalize_phone("+33 6 12 34 56 78 / 2"), None);
    }

    #[test]
    fn numeric_metrics_are_sent_as_zero_when_there_is_nothing() {
        let (u, _) = contact(&jenny(), &compute_metrics(&[], &[], "usd"), &settings());
        for name in ["TOTAL_SPENT", "PAYMENT_COUNT", "LTV", "MONTHLY_REVENUE"] {
            assert_eq!(attr(&u, name), Some(&AttributeValue::Number(0.0)), "{name}");
            assert_eq!(u.attribute_types.get(name), Some(&AttributeType::Float), "{name}");
        }
        // Unset without payments.
        assert!(attr(&u, "AOV").is_none());
        assert!(attr(&u, "LAST_PAYMENT_DATE").is_none());
        // Unset without a subscription.
        assert!(attr(&u, "SUB_STATUS").is_none());
        assert!(attr(&u, "PLAN_NAME").is_none());
        assert!(attr(&u, "SUB_START_DATE").is_none());
    }

    #[test]
    fn payments_fill_the_money_attributes() {
        let m = compute_metrics(&[paid_charge(1234), paid_charge(766)], &[], "usd");
        let mut s = settings();
        s.field_mapping.insert("refunded".into(), "REFUNDED".into());
        s.field_mapping.insert("pay_later_used".into(), "PAY_LATER".into());
        let (u, _) = contact(&jenny(), &m, &s);
        assert_eq!(attr(&u, "TOTAL_SPENT"), Some(&AttributeValue::Number(20.0)));
        assert_eq!(attr(&u, "PAYMENT_COUNT"), Some(&AttributeValue::Number(2.0)));
        assert_eq!(attr(&u, "AOV"), Some(&AttributeValue::Number(10.0)));
        assert_eq!(attr(&u, "LTV"), Some(&AttributeValue::Number(20.0)));
        assert_eq!(attr(&u, "REFUNDED"), Some(&AttributeValue::Number(0.0)));
        assert_eq!(attr(&u, "LAST_PAYMENT_DATE"), Some(&AttributeValue::Text("2024-03-10".into())));
        assert_eq!(u.attribute_types.get("LAST_PAYMENT_DATE"), Some(&AttributeType::Date));
        assert_eq!(attr(&u, "PAY_LATER"), Some(&AttributeValue::Bool(false)));
        assert_eq!(u.attribute_types.get("PAY_LATER"), Some(&AttributeType::Boolean));
    }

    #[test]
    fn a_subscription_fills_status_plan_start_and_mrr() {
        let m = compute_metrics(&[], &[sub("active")], "usd");
        let (u, _) = contact(&jenny(), &m, &settings());
        assert_eq!(attr(&u, "SUB_STATUS"), Some(&AttributeValue::Text("active".into())));
        assert_eq!(attr(&u, "PLAN_NAME"), Some(&AttributeValue::Text("Pro".into())));
        assert_eq!(attr(&u, "SUB_START_DATE"), Some(&AttributeValue::Text("2024-03-10".into())));
        assert_eq!(u.attribute_types.get("SUB_START_DATE"), Some(&AttributeType::Date));
        assert_eq!(attr(&u, "MONTHLY_REVENUE"), Some(&AttributeValue::Number(20.0)));
    }

    #[test]
    fn only_incomplete_expired_subscriptions_leave_subscription_attributes_unset() {
        let m = compute_metrics(&[], &[sub("incomplete_expired")], "usd");
        let (u, _) = contact(&jenny(), &m, &settings());
        assert!(attr(&u, "SUB_STATUS").is_none());
        assert_eq!(u.list_ids, vec![20]);
        assert!(u.unlink_list_ids.is_empty());
    }

    #[test]
    fn metadata_paths_copy_metadata_values() {
        let (u, _) = contact(&jenny(), &compute_metrics(&[], &[], "usd"), &settings());
        assert_eq!(attr(&u, "VIP_TIER"), Some(&AttributeValue::Text("gold".into())));
        assert!(!u.attributes.values().any(|v| v == &AttributeValue::Text("x".into())));
        let mut c = jenny();
        c.metadata.clear();
        let (u, _) = contact(&c, &compute_metrics(&[], &[], "usd"), &settings());
        assert!(attr(&u, "VIP_TIER").is_none());
    }

    #[test]
    fn every_attribute_has_a_type() {
        let m = compute_metrics(&[paid_charge(1000)], &[sub("active")], "usd");
        let (u, _) = contact(&jenny(), &m, &settings());
        let names: Vec<_> = u.attributes.keys().collect();
        let typed: Vec<_> = u.attribute_types.keys().collect();
        assert_eq!(names, typed);
    }

    #[test]
    fn a_customer_who_never_subscribed_is_only_in_all_customers() {
        let (u, _) = contact(&jenny(), &compute_metrics(&[paid_charge(100)], &[], "usd"), &settings());
        assert_eq!(u.list_ids, vec![20]);
        assert!(u.unlink_list_ids.is_empty());
    }

    #[test]
    fn a_subscriber_joins_subscribers_and_leaves_churned() {
        for status in ["active", "trialing", "past_due"] {
            let (u, _) = contact(&jenny(), &compute_metrics(&[], &[sub(status)], "usd"), &settings());
            assert_eq!(u.list_ids, vec![20, 21], "{status}");
            assert_eq!(u.unlink_list_ids, vec![22], "{status}");
        }
    }

    #[test]
    fn a_canceled_subscriber_moves_to_churned() {
        let (u, _) = contact(&jenny(), &compute_metrics(&[], &[sub("canceled")], "usd"), &settings());
        assert_eq!(u.list_ids, vec![20, 22]);
        assert_eq!(u.unlink_list_ids, vec![21]);
        assert_eq!(attr(&u, "SUB_STATUS"), Some(&AttributeValue::Text("canceled".into())));
    }

    #[test]
    fn a_resubscribed_customer_leaves_churned() {
        let mut old = sub("canceled");
        old.id = "sub_old".into();
        old.created = T0 - 86_400;
        let m = compute_metrics(&[], &[old, sub("active")], "usd");
        let (u, _) = contact(&jenny(), &m, &settings());
        assert_eq!(u.list_ids, vec![20, 21]);
        assert_eq!(u.unlink_list_ids, vec![22]);
    }

    #[test]
    fn an_incomplete_subscription_is_not_churn() {
        let (u, _) = contact(&jenny(), &compute_metrics(&[], &[sub("incomplete")], "usd"), &settings());
        assert_eq!(u.list_ids, vec![20]);
        assert!(u.unlink_list_ids.is_empty());
    }

    #[test]
    fn unconfigured_lists_are_left_alone() {
        let s = Settings::default().stripe;
        let (u, _) = contact(&jenny(), &compute_metrics(&[], &[sub("canceled")], "usd"), &s);
        assert!(u.list_ids.is_empty() && u.unlink_list_ids.is_empty());
    }

    #[test]
    fn unmapped_metrics_are_not_sent() {
        let mut s = settings();
        s.field_mapping.retain(|k, _| k == "email");
        let (u, _) = contact(&jenny(), &compute_metrics(&[paid_charge(100)], &[sub("active")], "usd"), &s);
        assert!(u.attributes.is_empty(), "{:?}", u.attributes);
    }

    #[test]
    fn event_names_follow_brevos_alphabet() {
        assert_eq!(brevo_event_name("invoice.payment_failed"), "stripe_invoice_payment_failed");
        assert_eq!(brevo_event_name("charge.dispute.created"), "stripe_charge_dispute_created");
        assert_eq!(brevo_event_name("a b/c:d-e"), "stripe_a_b_c_d-e");
        assert_eq!(brevo_event_name("café"), "stripe_caf_");
    }

    fn build(event_type: &str, object: &Value, created: i64, now: i64) -> EventDecision {
        build_brevo_event("evt_123", event_type, created, &object.to_string(), " Jenny@Example.com", &settings(), now)
    }

    fn sent(d: EventDecision) -> BrevoEvent {
        d.into_option().expect("an event")
    }

    #[test]
    fn a_configured_event_becomes_a_brevo_event() {
        let mut inv = fixture("invoice");
        inv["status"] = json!("open");
        inv["number"] = json!("7FE1103-0001");
        inv["hosted_invoice_url"] = json!("https://invoice.stripe.com/i/x");
        let ev = sent(build("invoice.payment_failed", &inv, T0, T0 + 60));
        assert_eq!(ev.event_name, "stripe_invoice_payment_failed");
        assert_eq!(ev.event_date, "2024-03-10T12:00:00Z");
        assert_eq!(ev.identifiers.email_id, "jenny@example.com");
        let p = &ev.event_properties;
        assert_eq!(p["stripe_event_id"], json!("evt_123"));
        assert_eq!(p["object_id"], json!("in_1Pgc6tB7WZ01zgkWu9fdqL6I"));
        assert_eq!(p["invoice_id"], json!("in_1Pgc6tB7WZ01zgkWu9fdqL6I"));
        assert_eq!(p["amount"], json!(10.0));
        assert_eq!(p["currency"], json!("usd"));
        assert_eq!(p["customer_id"], json!("cus_QXg1o8vcGmoR32"));
        assert_eq!(p["subscription_id"], json!("subscription"));
        assert_eq!(p["invoice_number"], json!("7FE1103-0001"));
        assert_eq!(p["hosted_invoice_url"], json!("https://invoice.stripe.com/i/x"));
        assert_eq!(p["status"], json!("open"));
    }

    #[test]
    fn an_unconfigured_type_sends_nothing() {
        assert_eq!(build("invoice.paid", &fixture("invoice"), T0, T0), EventDecision::NotConfigured);
        assert_eq!(build("customer.updated", &fixture("customer"), T0, T0), EventDecision::NotConfigured);
    }

    #[test]
    fn an_event_older_than_max_age_sends_nothing() {
        let pi = fixture("payment_intent");
        assert_eq!(build("payment_intent.succeeded", &pi, T0, T0 + 86_401), EventDecision::TooOld);
        assert!(matches!(build("payment_intent.succeeded", &pi, T0, T0 + 86_400), EventDecision::Send(_)));
        let mut s = settings();
        s.event_max_age = std::time::Duration::from_secs(60);
        let d = build_brevo_event("evt_1", "payment_intent.succeeded", T0, &pi.to_string(), "a@b.co", &s, T0 + 61);
        assert_eq!(d, EventDecision::TooOld);
    }

    #[test]
    fn a_succeeded_payment_intent_reports_the_amount_received() {
        let mut pi = fixture("payment_intent");
        pi["status"] = json!("succeeded");
        pi["amount_received"] = json!(1099);
        pi["customer"] = json!("cus_1");
        let ev = sent(build("payment_intent.succeeded", &pi, T0, T0));
        let p = &ev.event_properties;
        assert_eq!(p["amount"], json!(10.99));
        assert_eq!(p["currency"], json!("usd"));
        assert_eq!(p["payment_intent_id"], json!("pi_1PgafyB7WZ01zgkWSjxsAJo3"));
        assert_eq!(p["customer_id"], json!("cus_1"));
        // Its client secret never leaves.
        assert!(!ev.event_properties.values().any(|v| v.to_string().contains("secret")));
    }

    #[test]
    fn a_failed_payment_intent_reports_the_amount_and_decline_code() {
        let mut pi = fixture("payment_intent");
        pi["last_payment_error"] =
            json!({"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"});
        let ev = sent(build("payment_intent.payment_failed", &pi, T0, T0));
        assert_eq!(ev.event_properties["amount"], json!(10.99));
        assert_eq!(ev.event_properties["failure_code"], json!("insufficient_funds"));
    }

    #[test]
    fn a_refund_event_reports_the_refunded_amount_in_major_units() {
        let mut ch = fixture("charge");
        ch["currency"] = json!("jpy");
        ch["amount"] = json!(5000);
        ch["amount_refunded"] = json!(1500);
        let ev = sent(build("charge.refunded", &ch, T0, T0));
        let p = &ev.event_properties;
        assert_eq!(p["amount"], json!(1500.0));
        assert_eq!(p["charge_amount"], json!(5000.0));
        assert_eq!(p["currency"], json!("jpy"));
        assert_eq!(p["charge_id"], json!("ch_1PgafuB7WZ01zgkWXYmPNZs8"));
    }

    #[test]
    fn a_dispute_reports_its_amount_reason_and_charge() {
        let ev = sent(build("charge.dispute.created", &fixture("dispute"), T0, T0));
        let p = &ev.event_properties;
        assert_eq!(p["amount"], json!(10.0));
        assert_eq!(p["reason"], json!("general"));
        assert_eq!(p["charge_id"], json!("ch_1PgafuB7WZ01zgkWXYmPNZs8"));
        assert_eq!(p["object"], json!("dispute"));
    }

    #[test]
    fn a_subscription_event_reports_plan_status_and_trial_end() {
        let mut s = fixture("subscription");
        s["status"] = json!("trialing");
        s["trial_end"] = json!(T0 + 3 * 86_400);
        s["items"]["data"][0]["price"]["nickname"] = json!("Pro");
        s["items"]["data"][0]["quantity"] = json!(2);
        let ev = sent(build("customer.subscription.trial_will_end", &s, T0, T0));
        let p = &ev.event_properties;
        assert_eq!(ev.event_name, "stripe_customer_subscription_trial_will_end");
        assert_eq!(p["subscription_id"], json!("sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"));
        assert_eq!(p["status"], json!("trialing"));
        assert_eq!(p["plan_name"], json!("Pro"));
        assert_eq!(p["interval"], json!("month"));
        assert_eq!(p["trial_end"], json!("2024-03-13T12:00:00Z"));
        assert_eq!(p["amount"], json!(40.0));
        assert_eq!(p["currency"], json!("usd"));
        assert_eq!(p["cancel_at_period_end"], json!(true));
    }

    #[test]
    fn an_expired_checkout_reports_its_total_and_recovery_url_but_no_secret() {
        let mut cs = fixture("checkout.session");
        cs["status"] = json!("expired");
        cs["amount_total"] = json!(2500);
        cs["currency"] = json!("eur");
        cs["client_secret"] = json!("cs_secret_abc");
        cs["after_expiration"]["recovery"]["url"] = json!("https://buy.stripe.com/r/abc");
        let ev = sent(build("checkout.session.expired", &cs, T0, T0));
        let p = &ev.event_properties;
        assert_eq!(p["amount"], json!(25.0));
        assert_eq!(p["currency"], json!("eur"));
        assert_eq!(p["recovery_url"], json!("https://buy.stripe.com/r/abc"));
        assert_eq!(p["object"], json!("checkout.session"));
        let text = serde_json::to_string(p).unwrap();
        assert!(!text.contains("cs_secret_abc") && !text.contains("example@example.com"), "{text}");
    }

    #[test]
    fn an_object_without_money_has_no_amount() {
        let mut cs = fixture("checkout.session");
        cs["amount_total"] = Value::Null;
        let ev = sent(build("checkout.session.expired", &cs, T0, T0));
        assert!(!ev.event_properties.contains_key("amount"));
        assert!(!ev.event_properties.contains_key("currency"));
    }

    #[test]
    fn an_unexpected_object_shape_still_sends_the_ids() {
        let odd = json!({"id": "pi_odd", "object": "payment_intent", "amount": "lots", "currency": 3});
        let ev = sent(build("payment_intent.succeeded", &odd, T0, T0));
        assert_eq!(ev.event_properties["object_id"], json!("pi_odd"));
        assert_eq!(ev.event_properties["stripe_event_id"], json!("evt_123"));
        assert!(!ev.event_properties.contains_key("amount"));
    }

    #[test]
    fn event_metrics_status_strings_round_trip() {
        // The attribute text is Stripe's own status string.
        let m = compute_metrics(&[], &[sub("past_due")], "usd");
        assert_eq!(m.subscription_status, Some(SubscriptionStatus::PastDue));
        let (u, _) = contact(&jenny(), &m, &settings());
        assert_eq!(attr(&u, "SUB_STATUS"), Some(&AttributeValue::Text("past_due".into())));
    }
}
