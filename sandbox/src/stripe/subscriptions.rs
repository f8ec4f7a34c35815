//! Subscriptions in the Stripe sandbox: the list's `status` filter (the
//! default hides `canceled` and `incomplete_expired`, `all` shows everything,
//! `ended` only those) and `price` filter, and [`Seed::subscription`].

use serde_json::{json, Value};

use super::pagination::field_matches;
use super::query::param;
use super::seed::{fixture, Seed};
use super::store::merge;

/// `GET /v1/subscriptions`' own filters; matches everything on other lists.
pub(super) struct SubscriptionFilter<'a> {
    /// `Some("")` when `status` is absent (the default view).
    status: Option<&'a str>,
    price: Option<&'a str>,
}

impl<'a> SubscriptionFilter<'a> {
    pub(super) fn parse(resource: &str, params: &'a [(String, String)]) -> Self {
        let status = (resource == "subscriptions").then(|| param(params, "status").unwrap_or(""));
        let price = if resource == "subscriptions" { param(params, "price") } else { None };
        Self { status, price }
    }

    pub(super) fn matches(&self, v: &Value) -> bool {
        if let Some(status) = self.status {
            let s = v.get("status").and_then(Value::as_str).unwrap_or("");
            let ok = match status {
                "" => !matches!(s, "canceled" | "incomplete_expired"),
                "all" => true,
                "ended" => matches!(s, "canceled" | "incomplete_expired"),
                other => s == other,
            };
            if !ok {
                return false;
            }
        }
        if let Some(price) = self.price {
            let has = v
                .pointer("/items/data")
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| field_matches(i, "price", price)));
            if !has {
                return false;
            }
        }
        true
    }
}

impl Seed {
    /// A subscription with one item of `price` (embedded, as Stripe does;
    /// its `product` stays an id, expandable). Status-dependent dates are
    /// filled in (trial for `trialing`, `canceled_at`/`ended_at` for `canceled`).
    pub fn subscription(id: &str, customer: &str, price: &Value, quantity: u32, status: &str, created: i64) -> Value {
        let item_id = format!("si_{}", id.trim_start_matches("sub_"));
        let item = merge(
            fixture("subscription_item"),
            json!({"id": item_id, "created": created, "quantity": quantity, "subscription": id,
                   "current_period_start": created, "current_period_end": created + 30 * 86_400}),
        );
        let mut item = item;
        item["price"] = price.clone();
        if let Some(m) = item.as_object_mut() {
            m.remove("plan");
        }
        let (trial_start, trial_end) = if status == "trialing" {
            (json!(created), json!(created + 14 * 86_400))
        } else {
            (Value::Null, Value::Null)
        };
        let ended = if matches!(status, "canceled" | "incomplete_expired") {
            json!(created + 60 * 86_400)
        } else {
            Value::Null
        };
        let mut s = merge(
            fixture("subscription"),
            json!({
                "id": id, "customer": customer, "status": status, "created": created, "start_date": created,
                "billing_cycle_anchor": created, "currency": price.get("currency").cloned().unwrap_or(json!("usd")),
                "cancel_at_period_end": false, "cancel_at": null, "canceled_at": ended, "ended_at": ended,
                "trial_start": trial_start, "trial_end": trial_end, "livemode": false, "pending_update": null,
                "pause_collection": null, "next_pending_invoice_item_invoice": null, "transfer_data": null,
                "billing_cycle_anchor_config": null, "billing_schedules": [], "pending_invoice_item_interval": null,
            }),
        );
        s["items"] = json!({"object": "list", "data": [item], "has_more": false, "total_count": 1,
                            "url": format!("/v1/subscription_items?subscription={id}")});
        s
    }
}
