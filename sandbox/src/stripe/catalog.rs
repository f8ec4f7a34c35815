//! Products and prices in the Stripe sandbox: [`Seed::product`] and
//! [`Seed::price`] (one-time or recurring).

use serde_json::{json, Value};

use super::seed::{fixture, Seed};
use super::store::merge;

impl Seed {
    pub fn product(id: &str, name: &str, created: i64) -> Value {
        merge(
            fixture("product"),
            json!({"id": id, "name": name, "created": created, "updated": created, "default_price": null,
                   "description": null, "package_dimensions": null, "livemode": false}),
        )
    }

    /// A price; `recurring = Some((interval, interval_count))` for
    /// subscriptions (`day|week|month|year`), `None` for one-time.
    pub fn price(
        id: &str,
        product: &str,
        unit_amount: i64,
        currency: &str,
        recurring: Option<(&str, u32)>,
        created: i64,
    ) -> Value {
        let (kind, rec) = match recurring {
            Some((interval, count)) => (
                "recurring",
                json!({"interval": interval, "interval_count": count, "meter": null,
                       "trial_period_days": null, "usage_type": "licensed"}),
            ),
            None => ("one_time", Value::Null),
        };
        let mut p = merge(
            fixture("price"),
            json!({"id": id, "product": product, "unit_amount": unit_amount,
                   "unit_amount_decimal": unit_amount.to_string(), "currency": currency,
                   "type": kind, "created": created, "transform_quantity": null, "livemode": false}),
        );
        p["recurring"] = rec;
        p
    }
}
