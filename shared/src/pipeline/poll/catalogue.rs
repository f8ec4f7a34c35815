//! The resource catalogue: which Stripe lists the poller walks, which `sync:`
//! toggle switches each, and which event types follow it in incremental mode.
//! Pure data and lookups; no I/O.

use crate::settings::{Settings, SyncSettings};

/// Which `sync:` toggle switches a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    Customers,
    Payments,
    Subscriptions,
    Invoices,
    Products,
}

impl Toggle {
    pub fn is_on(self, sync: &SyncSettings) -> bool {
        match self {
            Self::Customers => sync.customers,
            Self::Payments => sync.payments,
            Self::Subscriptions => sync.subscriptions,
            Self::Invoices => sync.invoices,
            Self::Products => sync.products,
        }
    }
}

/// One Stripe resource the poller lists and follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSpec {
    /// The name in the cursor table, `status` and the backfill override.
    pub name: &'static str,
    pub path: &'static str,
    /// Extra list parameters (`status=all` so canceled subscriptions count;
    /// expansions that carry the customer of refunds and balance transactions
    /// without one request per object).
    pub params: &'static [(&'static str, &'static str)],
    pub toggle: Toggle,
    /// Event types followed in incremental mode.
    pub events: &'static [&'static str],
}

/// Every resource, in processing order. `sync:` toggles map as: customers →
/// customers; payments → charges, payment_intents, refunds,
/// balance_transactions, checkout_sessions; subscriptions → subscriptions;
/// invoices → invoices; products → products, prices.
pub const RESOURCES: &[ResourceSpec] = &[
    ResourceSpec {
        name: "customers",
        path: "/v1/customers",
        params: &[],
        toggle: Toggle::Customers,
        events: &["customer.created", "customer.updated", "customer.deleted"],
    },
    ResourceSpec {
        name: "subscriptions",
        path: "/v1/subscriptions",
        params: &[("status", "all")],
        toggle: Toggle::Subscriptions,
        events: &[
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.trial_will_end",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.pending_update_applied",
            "customer.subscription.pending_update_expired",
        ],
    },
    ResourceSpec {
        name: "charges",
        path: "/v1/charges",
        params: &[],
        toggle: Toggle::Payments,
        events: &[
            "charge.succeeded",
            "charge.captured",
            "charge.failed",
            "charge.updated",
            "charge.refunded",
            "charge.refund.updated",
            "charge.dispute.created",
            "charge.dispute.updated",
            "charge.dispute.closed",
        ],
    },
    ResourceSpec {
        name: "payment_intents",
        path: "/v1/payment_intents",
        params: &[],
        toggle: Toggle::Payments,
        events: &[
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "payment_intent.canceled",
            "payment_intent.processing",
            "payment_intent.requires_action",
        ],
    },
    ResourceSpec {
        name: "invoices",
        path: "/v1/invoices",
        params: &[],
        toggle: Toggle::Invoices,
        events: &[
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.payment_action_required",
            "invoice.voided",
            "invoice.marked_uncollectible",
        ],
    },
    ResourceSpec {
        name: "refunds",
        path: "/v1/refunds",
        params: &[("expand[]", "data.charge")],
        toggle: Toggle::Payments,
        events: &["refund.created", "refund.updated", "refund.failed"],
    },
    ResourceSpec {
        name: "balance_transactions",
        path: "/v1/balance_transactions",
        params: &[("expand[]", "data.source")],
        toggle: Toggle::Payments,
        // No events of their own: charges' events cover them.
        events: &[],
    },
    ResourceSpec {
        name: "checkout_sessions",
        path: "/v1/checkout/sessions",
        params: &[],
        toggle: Toggle::Payments,
        events: &[
            "checkout.session.completed",
            "checkout.session.expired",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
        ],
    },
    ResourceSpec {
        name: "products",
        path: "/v1/products",
        params: &[],
        toggle: Toggle::Products,
        events: &["product.created", "product.updated", "product.deleted"],
    },
    ResourceSpec {
        name: "prices",
        path: "/v1/prices",
        params: &[],
        toggle: Toggle::Products,
        events: &["price.created", "price.updated", "price.deleted", "plan.created", "plan.updated", "plan.deleted"],
    },
];

/// The resource named `name` (`checkout.sessions` and `checkout/sessions` are
/// accepted for `checkout_sessions`).
pub fn resource(name: &str) -> Option<&'static ResourceSpec> {
    let n = name.trim().replace(['.', '/'], "_");
    RESOURCES.iter().find(|r| r.name == n)
}

/// The resources the config's `sync:` toggles switch on.
pub fn enabled_resources(sync: &SyncSettings) -> Vec<&'static ResourceSpec> {
    RESOURCES.iter().filter(|r| r.toggle.is_on(sync)).collect()
}

/// The resource whose events family an event type belongs to.
fn family_of(event_type: &str) -> Option<&'static str> {
    let prefixes: [(&str, &str); 10] = [
        ("customer.subscription.", "subscriptions"),
        ("customer.", "customers"),
        ("charge.", "charges"),
        ("payment_intent.", "payment_intents"),
        ("invoice.", "invoices"),
        ("refund.", "refunds"),
        ("checkout.session.", "checkout_sessions"),
        ("product.", "products"),
        ("price.", "prices"),
        ("plan.", "prices"),
    ];
    prefixes.iter().find(|(p, _)| event_type.starts_with(p)).map(|(_, r)| *r)
}

/// The event types followed for `spec`: its own, plus the config's `events:`
/// of its family (so every event that may become a Brevo event is polled
/// while its resource is on). Sorted, distinct.
pub fn event_types_for(spec: &ResourceSpec, settings: &Settings) -> Vec<String> {
    let mut types: Vec<String> = spec.events.iter().map(|s| (*s).to_owned()).collect();
    for t in &settings.stripe.events {
        if family_of(t) == Some(spec.name) {
            types.push(t.clone());
        }
    }
    types.sort();
    types.dedup();
    types
}
