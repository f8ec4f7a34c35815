//! Lenient serde types of the Stripe objects the connector reads.
//!
//! Objects differ by API version and account age, so every field is optional
//! or defaulted (a `null` counts as absent), unknown fields are ignored, and
//! `metadata` accepts `null` and non-string values. Expandable references
//! ([`Expandable`]) are either an id or the expanded object.
//! See <https://docs.stripe.com/api> and
//! <https://docs.stripe.com/expand>.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod object_ref;

pub use object_ref::{customer_id_of, email_of_object, ObjectRef};

/// Anything with a Stripe id.
pub trait StripeObject {
    fn id(&self) -> &str;
}

/// A reference that is either the id (`"cus_123"`) or, when expanded, the
/// object itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T: StripeObject> Expandable<T> {
    /// The referenced object's id, expanded or not.
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Object(o) => o.id(),
        }
    }
}

impl<T> Expandable<T> {
    /// The expanded object, if it was expanded.
    pub fn as_object(&self) -> Option<&T> {
        match self {
            Self::Id(_) => None,
            Self::Object(o) => Some(o),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Expandable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = Expandable<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id string or an expanded object")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Expandable::Id(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Expandable::Id(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|o| Expandable::Object(Box::new(o)))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A Stripe list page (`object: "list"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct List<T> {
    #[serde(default, deserialize_with = "null_default")]
    pub data: Vec<T>,
    #[serde(default, deserialize_with = "null_default")]
    pub has_more: bool,
    #[serde(default)]
    pub url: Option<String>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self { data: Vec::new(), has_more: false, url: None }
    }
}

/// `null` or absent → `T::default()`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Subscription item quantity: absent or `null` → 1.
fn quantity_or_one<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.unwrap_or(1))
}

fn one() -> u64 {
    1
}

/// Metadata: `null` → empty; numbers and booleans → their text; `null` values
/// dropped. Stripe only stores strings, but older objects and hand-made
/// fixtures are not always that tidy.
fn lenient_metadata<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect())
}

macro_rules! stripe_object {
    ($($t:ty),*) => {$(
        impl StripeObject for $t {
            fn id(&self) -> &str {
                &self.id
            }
        }
    )*};
}

/// <https://docs.stripe.com/api/customers/object>; also the deleted stub
/// `{"id", "object": "customer", "deleted": true}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Customer {
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub deleted: bool,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub currency: Option<String>,
    #[serde(deserialize_with = "lenient_metadata")]
    pub metadata: BTreeMap<String, String>,
    pub created: Option<i64>,
    pub livemode: Option<bool>,
}

/// <https://docs.stripe.com/api/balance_transactions/object>
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BalanceTransaction {
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub amount: i64,
    #[serde(deserialize_with = "null_default")]
    pub currency: String,
    /// Multiplies the source amount (major units of the charge's currency)
    /// into this transaction's currency; `null` when no conversion happened.
    pub exchange_rate: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub fee: i64,
    #[serde(deserialize_with = "null_default")]
    pub net: i64,
    pub created: Option<i64>,
}

/// `payment_method_details`: only its `type` matters here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentMethodDetails {
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// <https://docs.stripe.com/api/charges/object>
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Charge {
    pub id: String,
    pub customer: Option<Expandable<Customer>>,
    #[serde(deserialize_with = "null_default")]
    pub amount: i64,
    /// Absent in old API versions: see [`Charge::captured_amount`].
    pub amount_captured: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub amount_refunded: i64,
    #[serde(deserialize_with = "null_default")]
    pub currency: String,
    /// `succeeded`, `pending` or `failed`.
    pub status: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub created: i64,
    #[serde(deserialize_with = "null_default")]
    pub paid: bool,
    #[serde(deserialize_with = "null_default")]
    pub captured: bool,
    #[serde(deserialize_with = "null_default")]
    pub refunded: bool,
    pub balance_transaction: Option<Expandable<BalanceTransaction>>,
    pub payment_method_details: Option<PaymentMethodDetails>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
    pub invoice: Option<Expandable<Invoice>>,
    pub description: Option<String>,
    pub receipt_email: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    #[serde(deserialize_with = "lenient_metadata")]
    pub metadata: BTreeMap<String, String>,
    pub livemode: Option<bool>,
}

impl Charge {
    /// `amount_captured`, or for API versions without it, `amount` when the
    /// charge was captured.
    pub fn captured_amount(&self) -> i64 {
        self.amount_captured.unwrap_or(if self.captured { self.amount } else { 0 })
    }

    /// `status == "succeeded"`; objects without a status (very old API
    /// versions) count when paid and captured.
    pub fn is_succeeded(&self) -> bool {
        match self.status.as_deref() {
            Some(s) => s == "succeeded",
            None => self.paid && self.captured,
        }
    }

    /// `payment_method_details.type`.
    pub fn payment_method_type(&self) -> Option<&str> {
        self.payment_method_details.as_ref()?.kind.as_deref()
    }

    /// The customer's id, expanded or not.
    pub fn customer_id(&self) -> Option<&str> {
        self.customer.as_ref().map(Expandable::id)
    }
}

/// A subscription's status. Unknown values (new ones Stripe may add) are kept
/// in `Other`.
/// See <https://docs.stripe.com/api/subscriptions/object#subscription_object-status>.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    Other(String),
}

impl SubscriptionStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
            Self::Other(s) => s,
        }
    }
}

impl Default for SubscriptionStatus {
    /// A subscription without a status is of an unknown status.
    fn default() -> Self {
        Self::Other(String::new())
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SubscriptionStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SubscriptionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(|s| Self::parse(&s)).unwrap_or_default())
    }
}

/// <https://docs.stripe.com/api/subscriptions/object>
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscription {
    pub id: String,
    pub customer: Option<Expandable<Customer>>,
    pub status: SubscriptionStatus,
    #[serde(deserialize_with = "null_default")]
    pub created: i64,
    pub start_date: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub items: List<SubscriptionItem>,
    pub currency: Option<String>,
    pub trial_end: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    #[serde(deserialize_with = "lenient_metadata")]
    pub metadata: BTreeMap<String, String>,
    pub livemode: Option<bool>,
}

impl Subscription {
    pub fn customer_id(&self) -> Option<&str> {
        self.customer.as_ref().map(Expandable::id)
    }
}

/// <https://docs.stripe.com/api/subscription_items/object>
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscriptionItem {
    pub id: String,
    pub price: Option<Price>,
    /// Absent or `null` → 1.
    #[serde(deserialize_with = "quantity_or_one")]
    pub quantity: u64,
}

impl Default for SubscriptionItem {
    fn default() -> Self {
        Self { id: String::new(), price: None, quantity: one() }
    }
}

/// `price.recurring`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recurring {
    /// `day`, `week`, `month` or `year`.
    pub interval: Option<String>,
    #[serde(deserialize_with = "quantity_or_one")]
    pub interval_count: u64,
    /// `licensed` or `metered`.
    pub usage_type: Option<String>,
}

impl Default for Recurring {
    fn default() -> Self {
        Self { interval: None, interval_count: one(), usage_type: None }
    }
}

/// <https://docs.stripe.com/api/prices/object>
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Price {
    pub id: String,
    pub unit_amount: Option<i64>,
    /// Sub-minor-unit prices (up to 12 decimals), as text.
    pub unit_amount_decimal: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub currency: String,
    pub recurring: Option<Recurring>,
    pub product: Option<Expandable<Product>>,
    pub nickname: Option<String>,
    pub active: Option<bool>,
    #[serde(deserialize_with = "null_default")]
    pub deleted: bool,
}

impl Price {
    /// The expanded product's name, if expanded and non-blank.
    pub fn product_name(&self) -> Option<&str> {
        self.product.as_ref()?.as_object()?.name.as_deref().map(str::trim).filter(|n| !n.is_empty())
    }
}

/// <https://docs.stripe.com/api/products/object>
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Product {
    pub id: String,
    pub name: Option<String>,
    pub active: Option<bool>,
    #[serde(deserialize_with = "null_default")]
    pub deleted: bool,
}

/// `invoice.parent.subscription_details` (API 2025-03-31 and later).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InvoiceParent {
    pub subscription_details: Option<InvoiceSubscriptionDetails>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InvoiceSubscriptionDetails {
    pub subscription: Option<Expandable<Subscription>>,
}

/// <https://docs.stripe.com/api/invoices/object>
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Invoice {
    pub id: String,
    pub customer: Option<Expandable<Customer>>,
    pub customer_email: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub amount_due: i64,
    #[serde(deserialize_with = "null_default")]
    pub amount_paid: i64,
    #[serde(deserialize_with = "null_default")]
    pub amount_remaining: i64,
    pub total: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub currency: String,
    /// `draft`, `open`, `paid`, `uncollectible`, `void`.
    pub status: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub created: i64,
    pub number: Option<String>,
    pub billing_reason: Option<String>,
    pub attempt_count: Option<u64>,
    pub next_payment_attempt: Option<i64>,
    pub hosted_invoice_url: Option<String>,
    /// Before API 2025-03-31.
    pub subscription: Option<Expandable<Subscription>>,
    pub parent: Option<InvoiceParent>,
    pub livemode: Option<bool>,
}

impl Invoice {
    /// The subscription id, from `subscription` (older API versions) or
    /// `parent.subscription_details.subscription`.
    pub fn subscription_id(&self) -> Option<&str> {
        if let Some(s) = &self.subscription {
            return Some(s.id());
        }
        Some(self.parent.as_ref()?.subscription_details.as_ref()?.subscription.as_ref()?.id())
    }
}

/// <https://docs.stripe.com/api/refunds/object>
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Refund {
    pub id: String,
    pub charge: Option<Expandable<Charge>>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
    #[serde(deserialize_with = "null_default")]
    pub amount: i64,
    #[serde(deserialize_with = "null_default")]
    pub currency: String,
    pub status: Option<String>,
    pub reason: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub created: i64,
}

/// `payment_intent.last_payment_error` (never its `payment_method`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentError {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub code: Option<String>,
    pub decline_code: Option<String>,
}

/// <https://docs.stripe.com/api/payment_intents/object> (its `client_secret`
/// is deliberately not read).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentIntent {
    pub id: String,
    pub customer: Option<Expandable<Customer>>,
    #[serde(deserialize_with = "null_default")]
    pub amount: i64,
    #[serde(deserialize_with = "null_default")]
    pub amount_received: i64,
    #[serde(deserialize_with = "null_default")]
    pub currency: String,
    pub status: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub created: i64,
    pub description: Option<String>,
    pub receipt_email: Option<String>,
    pub latest_charge: Option<Expandable<Charge>>,
    pub last_payment_error: Option<PaymentError>,
    #[serde(deserialize_with = "lenient_metadata")]
    pub metadata: BTreeMap<String, String>,
}

/// `checkout.session.customer_details`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerDetails {
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// <https://docs.stripe.com/api/checkout/sessions/object> (its
/// `client_secret` is deliberately not read).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckoutSession {
    pub id: String,
    pub customer: Option<Expandable<Customer>>,
    pub customer_email: Option<String>,
    pub customer_details: Option<CustomerDetails>,
    pub amount_total: Option<i64>,
    pub amount_subtotal: Option<i64>,
    pub currency: Option<String>,
    /// `open`, `complete`, `expired`.
    pub status: Option<String>,
    pub payment_status: Option<String>,
    pub mode: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub created: i64,
    pub expires_at: Option<i64>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
    pub subscription: Option<Expandable<Subscription>>,
}

impl CheckoutSession {
    /// `customer_details.email`, else `customer_email`.
    pub fn email(&self) -> Option<&str> {
        let details = self.customer_details.as_ref().and_then(|d| d.email.as_deref());
        details.or(self.customer_email.as_deref()).map(str::trim).filter(|e| !e.is_empty())
    }
}

/// <https://docs.stripe.com/api/disputes/object>
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Dispute {
    pub id: String,
    pub charge: Option<Expandable<Charge>>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
    #[serde(deserialize_with = "null_default")]
    pub amount: i64,
    #[serde(deserialize_with = "null_default")]
    pub currency: String,
    pub status: Option<String>,
    pub reason: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub created: i64,
}

stripe_object!(
    Customer,
    BalanceTransaction,
    Charge,
    Subscription,
    SubscriptionItem,
    Price,
    Product,
    Invoice,
    Refund,
    PaymentIntent,
    CheckoutSession,
    Dispute
);

/// Any object with an `id`, for references whose body we do not need.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IdOnly {
    pub id: String,
    pub email: Option<String>,
}

stripe_object!(IdOnly);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    use crate::domain::fixtures::fixture;

    #[test]
    fn every_fixture_object_parses() {
        let _: Customer = serde_json::from_value(fixture("customer")).unwrap();
        let _: Customer = serde_json::from_value(fixture("deleted_customer")).unwrap();
        let _: Charge = serde_json::from_value(fixture("charge")).unwrap();
        let _: BalanceTransaction = serde_json::from_value(fixture("balance_transaction")).unwrap();
        let _: Subscription = serde_json::from_value(fixture("subscription")).unwrap();
        let _: SubscriptionItem = serde_json::from_value(fixture("subscription_item")).unwrap();
        let _: Price = serde_json::from_value(fixture("price")).unwrap();
        let _: Price = serde_json::from_value(fixture("deleted_price")).unwrap();
        let _: Product = serde_json::from_value(fixture("product")).unwrap();
        let _: Product = serde_json::from_value(fixture("deleted_product")).unwrap();
        let _: Invoice = serde_json::from_value(fixture("invoice")).unwrap();
        let _: Refund = serde_json::from_value(fixture("refund")).unwrap();
        let _: PaymentIntent = serde_json::from_value(fixture("payment_intent")).unwrap();
        let _: CheckoutSession = serde_json::from_value(fixture("checkout.session")).unwrap();
        let _: Dispute = serde_json::from_value(fixture("dispute")).unwrap();
    }

    #[test]
    fn a_charge_reads_the_fields_the_metrics_need() {
        let c: Charge = serde_json::from_value(fixture("charge")).unwrap();
        assert_eq!(c.id, "ch_1PgafuB7WZ01zgkWXYmPNZs8");
        assert_eq!(c.amount, 100);
        assert_eq!(c.amount_captured, Some(0));
        assert_eq!(c.currency, "usd");
        assert!(c.is_succeeded());
        assert_eq!(c.payment_method_type(), Some("card"));
        assert_eq!(c.balance_transaction.as_ref().unwrap().id(), "txn_1PgaxNB7WZ01zgkWEV3TLf40");
        assert!(c.balance_transaction.as_ref().unwrap().as_object().is_none());
        assert!(c.customer.is_none());
    }

    #[test]
    fn an_expanded_balance_transaction_is_an_object_with_its_rate() {
        let mut c = fixture("charge");
        let mut bt = fixture("balance_transaction");
        bt["exchange_rate"] = json!(1.234);
        c["balance_transaction"] = bt;
        c["customer"] = fixture("customer");
        let c: Charge = serde_json::from_value(c).unwrap();
        let bt = c.balance_transaction.as_ref().unwrap().as_object().unwrap();
        assert_eq!(bt.exchange_rate, Some(1.234));
        assert_eq!(bt.id, "txn_1PgaxNB7WZ01zgkWEV3TLf40");
        assert_eq!(c.customer_id(), Some("cus_QXg1o8vcGmoR32"));
    }

    #[test]
    fn a_deleted_customer_stub_is_marked_deleted() {
        let c: Customer = serde_json::from_value(fixture("deleted_customer")).unwrap();
        assert!(c.deleted);
        assert_eq!(c.id, "cus_QXg1o8vcGmoR32");
        assert!(c.email.is_none());
        let live: Customer = serde_json::from_value(fixture("customer")).unwrap();
        assert!(!live.deleted);
    }

    #[test]
    fn metadata_tolerates_null_and_non_string_values() {
        let mut c = fixture("customer");
        c["metadata"] = Value::Null;
        let parsed: Customer = serde_json::from_value(c.clone()).unwrap();
        assert!(parsed.metadata.is_empty());
        c["metadata"] = json!({"tier": "gold", "seats": 3, "vip": true, "gone": null});
        let parsed: Customer = serde_json::from_value(c).unwrap();
        assert_eq!(parsed.metadata.get("tier").map(String::as_str), Some("gold"));
        assert_eq!(parsed.metadata.get("seats").map(String::as_str), Some("3"));
        assert_eq!(parsed.metadata.get("vip").map(String::as_str), Some("true"));
        assert!(!parsed.metadata.contains_key("gone"));
    }

    #[test]
    fn nulls_count_as_absent() {
        let c: Charge =
            serde_json::from_value(json!({"id": "ch_1", "amount": null, "currency": null, "refunded": null})).unwrap();
        assert_eq!(c.amount, 0);
        assert_eq!(c.currency, "");
        assert!(!c.refunded);
    }

    #[test]
    fn a_subscription_reads_its_items_prices_and_status() {
        let s: Subscription = serde_json::from_value(fixture("subscription")).unwrap();
        assert_eq!(s.status, SubscriptionStatus::Active);
        assert_eq!(s.customer_id(), Some("cus_QXg1o8vcGmoR32"));
        assert_eq!(s.start_date, Some(1_234_567_890));
        let item = &s.items.data[0];
        assert_eq!(item.quantity, 1);
        let price = item.price.as_ref().unwrap();
        assert_eq!(price.unit_amount, Some(2000));
        let rec = price.recurring.as_ref().unwrap();
        assert_eq!(rec.interval.as_deref(), Some("month"));
        assert_eq!(rec.interval_count, 1);
        assert_eq!(rec.usage_type.as_deref(), Some("licensed"));
        assert_eq!(price.product.as_ref().unwrap().id(), "prod_QXg1hqf4jFNsqG");
        assert_eq!(price.product_name(), None);
    }

    #[test]
    fn a_missing_or_null_quantity_is_one() {
        let mut item = fixture("subscription_item");
        item.as_object_mut().unwrap().remove("quantity");
        let parsed: SubscriptionItem = serde_json::from_value(item.clone()).unwrap();
        assert_eq!(parsed.quantity, 1);
        item["quantity"] = Value::Null;
        let parsed: SubscriptionItem = serde_json::from_value(item.clone()).unwrap();
        assert_eq!(parsed.quantity, 1);
        item["quantity"] = json!(4);
        let parsed: SubscriptionItem = serde_json::from_value(item).unwrap();
        assert_eq!(parsed.quantity, 4);
    }

    #[test]
    fn unknown_subscription_statuses_are_kept() {
        let mut s = fixture("subscription");
        for (raw, want) in [
            ("incomplete_expired", SubscriptionStatus::IncompleteExpired),
            ("past_due", SubscriptionStatus::PastDue),
            ("trialing", SubscriptionStatus::Trialing),
            ("frozen", SubscriptionStatus::Other("frozen".into())),
        ] {
            s["status"] = json!(raw);
            let parsed: Subscription = serde_json::from_value(s.clone()).unwrap();
            assert_eq!(parsed.status, want);
            assert_eq!(parsed.status.as_str(), raw);
            assert_eq!(serde_json::to_value(&parsed.status).unwrap(), json!(raw));
        }
    }

    #[test]
    fn an_expanded_product_gives_the_plan_name() {
        let mut p = fixture("price");
        p["product"] = fixture("product");
        let p: Price = serde_json::from_value(p).unwrap();
        assert_eq!(p.product_name(), Some("T-shirt"));
        assert_eq!(p.product.as_ref().unwrap().id(), "prod_QXg1hqf4jFNsqG");
    }

    #[test]
    fn an_expandable_is_neither_a_number_nor_a_list() {
        assert!(serde_json::from_value::<Expandable<Customer>>(json!(12)).is_err());
        assert!(serde_json::from_value::<Expandable<Customer>>(json!(["cus_1"])).is_err());
        let e: Expandable<Customer> = serde_json::from_value(json!("cus_1")).unwrap();
        assert_eq!(e.id(), "cus_1");
        assert_eq!(serde_json::to_value(&e).unwrap(), json!("cus_1"));
    }

    #[test]
    fn a_list_page_parses() {
        let page = json!({"object": "list", "data": [fixture("customer")], "has_more": true, "url": "/v1/customers"});
        let page: List<Customer> = serde_json::from_value(page).unwrap();
        assert_eq!(page.data.len(), 1);
        assert!(page.has_more);
        assert_eq!(page.url.as_deref(), Some("/v1/customers"));
    }

    #[test]
    fn invoices_find_their_subscription_in_old_and_new_shapes() {
        let mut inv = fixture("invoice");
        let parsed: Invoice = serde_json::from_value(inv.clone()).unwrap();
        assert_eq!(parsed.subscription_id(), Some("subscription"));
        inv["subscription"] = json!("sub_old");
        let parsed: Invoice = serde_json::from_value(inv.clone()).unwrap();
        assert_eq!(parsed.subscription_id(), Some("sub_old"));
        inv["subscription"] = Value::Null;
        inv["parent"] = Value::Null;
        let parsed: Invoice = serde_json::from_value(inv).unwrap();
        assert_eq!(parsed.subscription_id(), None);
    }

    #[test]
    fn the_customer_of_a_customer_event_is_the_object_itself() {
        let c = fixture("customer").to_string();
        assert_eq!(customer_id_of("customer.updated", &c).as_deref(), Some("cus_QXg1o8vcGmoR32"));
        let deleted = fixture("deleted_customer").to_string();
        assert_eq!(customer_id_of("customer.deleted", &deleted).as_deref(), Some("cus_QXg1o8vcGmoR32"));
        // Without `object`, the event type decides.
        assert_eq!(customer_id_of("customer.created", r#"{"id":"cus_9"}"#).as_deref(), Some("cus_9"));
    }

    #[test]
    fn the_customer_of_other_events_is_their_customer_field() {
        let sub = fixture("subscription").to_string();
        assert_eq!(customer_id_of("customer.subscription.updated", &sub).as_deref(), Some("cus_QXg1o8vcGmoR32"));
        let mut pi = fixture("payment_intent");
        pi["customer"] = json!({"id": "cus_expanded", "object": "customer", "email": "x@example.com"});
        assert_eq!(customer_id_of("payment_intent.succeeded", &pi.to_string()).as_deref(), Some("cus_expanded"));
        assert_eq!(email_of_object("payment_intent.succeeded", &pi.to_string()).as_deref(), Some("x@example.com"));
        pi["customer"] = Value::Null;
        assert_eq!(customer_id_of("payment_intent.succeeded", &pi.to_string()), None);
    }

    #[test]
    fn a_guest_checkout_session_has_no_customer_but_an_email() {
        let mut cs = fixture("checkout.session");
        let text = cs.to_string();
        assert_eq!(customer_id_of("checkout.session.expired", &text), None);
        assert_eq!(email_of_object("checkout.session.expired", &text).as_deref(), Some("example@example.com"));
        cs["customer_details"] = Value::Null;
        cs["customer_email"] = json!("  Guest@Example.com ");
        assert_eq!(email_of_object("checkout.session.expired", &cs.to_string()).as_deref(), Some("Guest@Example.com"));
        cs["customer_email"] = Value::Null;
        assert_eq!(email_of_object("checkout.session.expired", &cs.to_string()), None);
    }

    #[test]
    fn a_dispute_points_at_its_charge() {
        let d = fixture("dispute").to_string();
        let r = ObjectRef::parse("charge.dispute.created", &d).unwrap();
        assert_eq!(r.customer_id, None);
        assert_eq!(r.charge_id.as_deref(), Some("ch_1PgafuB7WZ01zgkWXYmPNZs8"));
        assert_eq!(r.object.as_deref(), Some("dispute"));
        assert_eq!(r.id.as_deref(), Some("dp_1Pgc71B7WZ01zgkWMevJiAUx"));
    }

    #[test]
    fn a_non_object_is_not_read() {
        assert!(ObjectRef::parse("customer.created", "[]").is_none());
        assert!(customer_id_of("customer.created", "not json").is_none());
    }
}
