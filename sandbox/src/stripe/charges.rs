//! Charges, their balance transactions and refunds in the Stripe sandbox:
//! the [`Seed`] builders (succeeded, failed, other payment methods, balance
//! transactions settled in USD at an exchange rate, refunds),
//! [`minor_per_major`], and the handle's [`StripeSandbox::insert_charge`] and
//! [`StripeSandbox::refund_charge`].

use serde_json::{json, Value};

use super::seed::{fixture, Seed};
use super::store::{created_of, lock, merge};
use super::StripeSandbox;

/// Minor units per major unit (Stripe's zero-decimal currencies are 1).
/// <https://docs.stripe.com/currencies#zero-decimal>
pub fn minor_per_major(currency: &str) -> i64 {
    const ZERO_DECIMAL: &[&str] = &[
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    ];
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        1
    } else {
        100
    }
}

impl Seed {
    /// A succeeded, captured card charge; its balance transaction id is
    /// `txn_` + the charge id's suffix (see [`Seed::balance_transaction_for`]).
    pub fn charge(id: &str, customer: Option<&str>, amount: i64, currency: &str, created: i64) -> Value {
        let suffix = id.trim_start_matches("ch_").trim_start_matches("py_");
        merge(
            fixture("charge"),
            json!({
                "id": id, "customer": customer, "amount": amount, "amount_captured": amount, "amount_refunded": 0,
                "currency": currency, "created": created, "captured": true, "paid": true, "refunded": false,
                "status": "succeeded", "balance_transaction": format!("txn_{suffix}"), "source": null,
                "receipt_url": null, "livemode": false, "description": null,
                "refunds": {"object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{id}/refunds")},
            }),
        )
    }

    /// A failed charge (nothing captured, no balance transaction).
    pub fn failed_charge(id: &str, customer: Option<&str>, amount: i64, currency: &str, created: i64) -> Value {
        merge(
            Self::charge(id, customer, amount, currency, created),
            json!({"status": "failed", "paid": false, "captured": false, "amount_captured": 0,
                   "balance_transaction": null, "failure_code": "card_declined",
                   "failure_message": "Your card was declined."}),
        )
    }

    /// Sets `payment_method_details.type` (e.g. `klarna`).
    pub fn with_payment_method(charge: Value, kind: &str) -> Value {
        let mut c = charge;
        c["payment_method_details"] = json!({ "type": kind, kind: {} });
        c
    }

    /// The balance transaction of `charge`. With `exchange_rate`, the charge
    /// settled in USD: amount = major units × rate, in cents.
    pub fn balance_transaction_for(charge: &Value, exchange_rate: Option<f64>) -> Value {
        let id = charge.get("balance_transaction").and_then(Value::as_str).unwrap_or("txn_unknown");
        let amount = charge.get("amount_captured").and_then(Value::as_i64).unwrap_or(0);
        let currency = charge.get("currency").and_then(Value::as_str).unwrap_or("usd");
        let created = created_of(charge);
        let (settled, settled_currency) = match exchange_rate {
            Some(rate) => {
                let major = amount as f64 / minor_per_major(currency) as f64;
                ((major * rate * 100.0).round() as i64, "usd")
            }
            None => (amount, currency),
        };
        let fee = settled * 29 / 1000 + 30;
        merge(
            fixture("balance_transaction"),
            json!({
                "id": id, "amount": settled, "currency": settled_currency, "exchange_rate": exchange_rate,
                "created": created, "available_on": created + 2 * 86_400, "fee": fee, "net": settled - fee,
                "source": charge.get("id").cloned().unwrap_or(Value::Null), "description": null,
            }),
        )
    }

    pub fn refund(id: &str, charge: &Value, amount: i64, created: i64) -> Value {
        merge(
            fixture("refund"),
            json!({
                "id": id, "amount": amount, "charge": charge.get("id").cloned().unwrap_or(Value::Null),
                "currency": charge.get("currency").cloned().unwrap_or(json!("usd")),
                "customer": charge.get("customer").cloned().unwrap_or(Value::Null),
                "created": created, "status": "succeeded",
            }),
        )
    }
}

impl StripeSandbox {
    /// Stores a charge and its balance transaction (`exchange_rate` set when
    /// the charge's currency differs from the account's, settled in USD).
    pub fn insert_charge(&self, charge: Value, exchange_rate: Option<f64>) -> String {
        let txn = Seed::balance_transaction_for(&charge, exchange_rate);
        let mut st = lock(&self.state);
        st.insert("balance_transactions", txn);
        st.insert("charges", charge)
    }

    /// Refunds `amount` of a stored charge: a `re_…` refund, the charge's
    /// `amount_refunded`/`refunded`/`refunds` updated. Returns the refund id.
    pub fn refund_charge(&self, charge_id: &str, amount: i64) -> Option<String> {
        let mut st = lock(&self.state);
        let charge = st.collections.get("charges")?.objects.get(charge_id)?.clone();
        let n = st.collections.get("refunds").map_or(0, |c| c.objects.len()) + 1;
        let created = created_of(&charge) + 86_400;
        let refund = Seed::refund(&format!("re_{}_{n}", charge_id.trim_start_matches("ch_")), &charge, amount, created);
        let refund_id = st.insert("refunds", refund.clone());
        let refunded_total = charge.get("amount_refunded").and_then(Value::as_i64).unwrap_or(0) + amount;
        let captured = charge.get("amount_captured").and_then(Value::as_i64).unwrap_or(0);
        let mut data = charge.pointer("/refunds/data").and_then(Value::as_array).cloned().unwrap_or_default();
        data.insert(0, refund);
        let patched = merge(
            charge,
            json!({
                "amount_refunded": refunded_total,
                "refunded": refunded_total >= captured,
                "refunds": {"object": "list", "data": data, "has_more": false, "total_count": null},
            }),
        );
        st.insert("charges", patched);
        Some(refund_id)
    }
}
