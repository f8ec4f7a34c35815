//! Customers in the Stripe sandbox: [`Seed::customer`] /
//! [`Seed::customer_full`] and [`StripeSandbox::delete_customer`] (Stripe's
//! deleted stub, answered on retrieve and hidden from lists).

use serde_json::{json, Value};

use super::seed::{fixture, Seed};
use super::store::{lock, merge};
use super::StripeSandbox;

impl Seed {
    pub fn customer(id: &str, email: Option<&str>, created: i64) -> Value {
        merge(
            fixture("customer"),
            json!({"id": id, "email": email, "created": created, "discount": null, "livemode": false}),
        )
    }

    /// A customer with a name and phone too.
    pub fn customer_full(
        id: &str,
        email: Option<&str>,
        name: Option<&str>,
        phone: Option<&str>,
        created: i64,
    ) -> Value {
        merge(Self::customer(id, email, created), json!({"name": name, "phone": phone}))
    }
}

impl StripeSandbox {
    /// Replaces the customer by Stripe's deleted stub. False if unknown.
    pub fn delete_customer(&self, id: &str) -> bool {
        let mut st = lock(&self.state);
        let Some(coll) = st.collections.get_mut("customers") else { return false };
        let Some(current) = coll.objects.get(id) else { return false };
        let mut stub = json!({"id": id, "object": "customer", "deleted": true});
        // Keep `created` only for the index; lists hide deleted customers.
        if let (Some(m), Some(c)) = (stub.as_object_mut(), current.get("created").cloned()) {
            m.insert("created".to_owned(), c);
        }
        coll.upsert(id.to_owned(), stub);
        true
    }
}
