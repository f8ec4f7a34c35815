//! Stripe's own example objects (`fixtures/stripe_fixtures.json`, MIT),
//! parsed once, and [`Seed`], the builders of realistic objects from them.
//! Seed's builders live with their family (`customers`, `charges`,
//! `catalog`, `subscriptions`, `events`).

use std::sync::OnceLock;

use serde_json::{json, Value};

const FIXTURES: &str = include_str!("../../fixtures/stripe_fixtures.json");

fn fixtures() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(FIXTURES).unwrap_or_else(|_| json!({"resources": {}})))
}

/// A copy of Stripe's example object `name` (e.g. `customer`, `charge`,
/// `checkout.session`); `{}` if unknown.
pub fn fixture(name: &str) -> Value {
    fixtures().get("resources").and_then(|r| r.get(name)).cloned().unwrap_or_else(|| json!({}))
}

/// Builders of realistic objects from Stripe's fixture shapes. Each returns
/// a `serde_json::Value`; adjust with [`merge`](super::merge).
pub struct Seed;
