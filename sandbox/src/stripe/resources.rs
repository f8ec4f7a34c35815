//! The resources the Stripe sandbox serves under `/v1/{path}`, their
//! singular names and the equality filters each list accepts: one table for
//! every family (customers, charges, balance transactions, subscriptions,
//! prices, products, invoices, refunds, payment intents, checkout sessions,
//! events, disputes, webhook endpoints), which otherwise share the generic
//! retrieve ([`super::http`]) and list ([`super::pagination`]).

/// The resources served under `/v1/{path}`: (path, singular name used in
/// messages and `rak_{singular}_read` permissions).
pub const RESOURCES: &[(&str, &str)] = &[
    ("customers", "customer"),
    ("charges", "charge"),
    ("balance_transactions", "balance_transaction"),
    ("subscriptions", "subscription"),
    ("prices", "price"),
    ("products", "product"),
    ("invoices", "invoice"),
    ("refunds", "refund"),
    ("payment_intents", "payment_intent"),
    ("checkout/sessions", "checkout_session"),
    ("events", "event"),
    ("disputes", "dispute"),
    ("webhook_endpoints", "webhook_endpoint"),
];

/// Equality filters each list accepts (`?customer=cus_…`); other parameters
/// besides the common ones are ignored.
pub(super) fn equality_filters(resource: &str) -> &'static [&'static str] {
    match resource {
        "customers" => &["email"],
        "charges" => &["customer", "payment_intent"],
        "balance_transactions" => &["source", "type", "currency"],
        "subscriptions" => &["customer", "collection_method"],
        "prices" => &["product", "active", "type", "currency"],
        "products" => &["active"],
        "invoices" => &["customer", "subscription", "status", "collection_method"],
        "refunds" => &["charge", "payment_intent"],
        "payment_intents" => &["customer"],
        "checkout/sessions" => &["customer", "payment_intent", "subscription", "status"],
        "disputes" => &["charge", "payment_intent"],
        _ => &[],
    }
}

pub(super) fn singular(resource: &str) -> String {
    RESOURCES
        .iter()
        .find(|(p, _)| *p == resource)
        .map(|(_, s)| (*s).to_owned())
        .unwrap_or_else(|| resource.trim_end_matches('s').to_owned())
}
