//! The soak's data set and the Brevo state it must end in, shared by the
//! soak (`soak.rs`) and the deployed-shape test (`deployed_shape.rs`):
//! - [`seed_customers`]: a product and its monthly price, then customers
//!   `cus_soak00000…` (every 20th without e-mail), each with an active
//!   subscription and a first payment;
//! - [`round_of_changes`]: one round of Stripe moving on for a range of
//!   those customers (a payment and its payment intent, sometimes a refund,
//!   a plan change or a rename), each change an event in the sandbox's log;
//! - [`contact_drift`]: how Brevo's contact differs from the state computed
//!   now from Stripe (through the connector's own metrics and mapping);
//! - [`events_sent_twice`]: Stripe event ids Brevo recorded more than once.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use rand::rngs::StdRng;
use rand::Rng;
use sandbox::brevo::BrevoSandbox;
use sandbox::stripe::{Seed, StripeSandbox};
use serde_json::{json, Value};
use shared::domain::brevo::AttributeValue;
use shared::domain::mapping::{map_contact, ContactOutcome};
use shared::domain::metrics::compute_metrics;
use shared::ports::StripeApi;
use shared::settings::Settings;

/// Customer `i`'s id.
pub fn customer_id(i: usize) -> String {
    format!("cus_soak{i:05}")
}

/// Whether customer `i` has an e-mail (every 20th has none).
pub fn has_email(i: usize) -> bool {
    i % 20 != 19
}

/// Seeds `customers` customers created at `t0`; returns the plan's price.
pub fn seed_customers(stripe: &StripeSandbox, customers: usize, t0: i64) -> Value {
    stripe.insert("products", Seed::product("prod_soak", "Soak plan", t0));
    let price = Seed::price("price_soak", "prod_soak", 2_000, "usd", Some(("month", 1)), t0);
    stripe.insert("prices", price.clone());
    for i in 0..customers {
        let cid = customer_id(i);
        let email = has_email(i).then(|| format!("soak.{i}@example.com"));
        stripe.insert(
            "customers",
            Seed::customer_full(&cid, email.as_deref(), Some(&format!("Soak Customer{i}")), None, t0),
        );
        stripe
            .insert("subscriptions", Seed::subscription(&format!("sub_soak{i:05}"), &cid, &price, 1, "active", t0 + 1));
        stripe.insert_charge(Seed::charge(&format!("ch_soak{i:05}_0"), Some(&cid), 2_000, "usd", t0 + 2), None);
    }
    price
}

/// Round `r` (from 1) of changes for `customers`; returns the events, in order.
pub fn round_of_changes(
    stripe: &StripeSandbox,
    rng: &mut StdRng,
    r: usize,
    customers: Range<usize>,
    now: i64,
) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    for i in customers {
        let cid = customer_id(i);
        let ch = Seed::charge(
            &format!("ch_soak{i:05}_{r}"),
            Some(&cid),
            1_000 + (i * 7 + r * 13) as i64,
            "usd",
            now - 100 + r as i64,
        );
        stripe.insert_charge(ch.clone(), None);
        let mut emit = |etype: &str, obj: Value| {
            let id = stripe.emit_event(etype, obj);
            events.push(stripe.get("events", &id).expect("event"));
        };
        emit("charge.succeeded", ch.clone());
        let pi = json!({"id": format!("pi_soak{i:05}_{r}"), "object": "payment_intent", "customer": cid, "amount": ch["amount"], "amount_received": ch["amount"], "currency": "usd", "status": "succeeded"});
        emit("payment_intent.succeeded", pi);
        if rng.random_bool(0.3) {
            stripe.refund_charge(&format!("ch_soak{i:05}_{r}"), 500);
            emit("charge.refunded", stripe.get("charges", &format!("ch_soak{i:05}_{r}")).expect("charge"));
        }
        if rng.random_bool(0.15) {
            let status = if rng.random_bool(0.5) { "canceled" } else { "active" };
            stripe.update("subscriptions", &format!("sub_soak{i:05}"), json!({"status": status}));
            emit(
                "customer.subscription.updated",
                stripe.get("subscriptions", &format!("sub_soak{i:05}")).expect("sub"),
            );
        }
        if rng.random_bool(0.5) {
            stripe.update("customers", &cid, json!({"name": format!("Soak Customer{i} r{r}")}));
            emit("customer.updated", stripe.get("customers", &cid).expect("customer"));
        }
    }
    events
}

/// How one customer's Brevo contact compares with the state computed now.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    /// Every mapped attribute and the managed lists are as computed.
    Equal,
    /// The customer has no e-mail: nothing to hold.
    NoEmail,
    /// The customer is deleted in Stripe.
    Deleted,
    /// Brevo has no contact for the customer's e-mail.
    Missing,
    /// What differs, one `field: brevo …, expected …` per line.
    Differs(Vec<String>),
}

/// Compares Brevo's contact for `cid` with the contact computed from the
/// customer's current Stripe state (numbers compared as numbers).
pub async fn contact_drift(stripe: &impl StripeApi, brevo: &BrevoSandbox, settings: &Settings, cid: &str) -> Drift {
    let state = stripe.customer_state(cid).await.expect("state");
    let customer = state.customer.expect("customer exists");
    let metrics = compute_metrics(&state.charges, &state.subscriptions, &settings.stripe.reporting_currency);
    let update = match map_contact(&customer, &metrics, &settings.stripe) {
        ContactOutcome::Contact { update, .. } => update,
        ContactOutcome::NoEmail => return Drift::NoEmail,
        ContactOutcome::Deleted => return Drift::Deleted,
    };
    let Some(got) = brevo.contact(&update.email) else { return Drift::Missing };
    let mut differences = Vec::new();
    for (k, v) in &update.attributes {
        let want = serde_json::to_value(v).expect("value");
        let Some(have) = got.attributes.get(k) else {
            differences.push(format!("{k}: missing, expected {want}"));
            continue;
        };
        let equal = match v {
            AttributeValue::Number(_) => want.as_f64() == have.as_f64(),
            _ => &want == have,
        };
        if !equal {
            differences.push(format!("{k}: brevo {have}, expected {want}"));
        }
    }
    let lists = update.list_ids.iter().copied().collect::<BTreeSet<_>>();
    if got.list_ids != lists {
        differences.push(format!("lists: brevo {:?}, expected {lists:?}", got.list_ids));
    }
    if differences.is_empty() {
        Drift::Equal
    } else {
        Drift::Differs(differences)
    }
}

/// Stripe event ids (`event_properties.stripe_event_id`) Brevo recorded more
/// than once, with their counts; and how many distinct ids it recorded.
pub fn events_sent_twice(brevo: &BrevoSandbox) -> (Vec<(String, usize)>, HashMap<String, usize>) {
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for e in brevo.events() {
        let id = e.event_properties.get("stripe_event_id").and_then(Value::as_str).expect("id").to_owned();
        *per_id.entry(id).or_default() += 1;
    }
    let twice = per_id.iter().filter(|(_, n)| **n > 1).map(|(id, n)| (id.clone(), *n)).collect();
    (twice, per_id)
}
