//! The demo data set of `stripe-brevo demo` and the benchmarks:
//! [`demo_dataset`] (deterministic for a seed, realistic, any size, with the
//! edge cases the connector must handle) and [`DemoSummary`] of what it holds.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::seed::Seed;
use super::store::merge;

/// How many objects of each resource a data set holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub counts: BTreeMap<String, usize>,
    /// Customers without an email (the connector must skip them).
    pub customers_without_email: usize,
}

impl DemoSummary {
    pub(super) fn of(data: &[(&'static str, Value)]) -> Self {
        let mut s = Self::default();
        for (r, v) in data {
            *s.counts.entry((*r).to_owned()).or_default() += 1;
            if *r == "customers" && v.get("email").is_none_or(Value::is_null) {
                s.customers_without_email += 1;
            }
        }
        s
    }

    pub fn count(&self, resource: &str) -> usize {
        self.counts.get(resource).copied().unwrap_or(0)
    }
}

/// First `created` of the demo data (2025-01-01T00:00:00Z).
pub const DEMO_EPOCH: i64 = 1_735_689_600;

/// A deterministic, realistic data set: 4 products, 7 prices (monthly,
/// yearly, weekly, daily, every-3-months, metered, EUR), `n_customers`
/// customers (every 10th without email, some with phone and
/// `metadata.customer_tier`), 0–4 charges each (USD; customer 1 and every
/// 7th has a JPY charge and customer 2 and every 5th a EUR one, both with an
/// exchange rate; partial and full refunds; failed charges; Klarna), their
/// balance transactions, refunds, and subscriptions of several intervals and
/// statuses. Objects come in insertion order (products and prices first).
pub fn demo_dataset(n_customers: usize, seed: u64) -> Vec<(&'static str, Value)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let t0 = DEMO_EPOCH;

    let products = [
        ("prod_DemoStarter", "Starter"),
        ("prod_DemoPro", "Pro"),
        ("prod_DemoTeam", "Team"),
        ("prod_DemoUsage", "API usage"),
    ];
    for (i, (id, name)) in products.iter().enumerate() {
        out.push(("products", Seed::product(id, name, t0 - 86_400 * (10 - i as i64))));
    }
    let mut prices = vec![
        Seed::price("price_DemoStarterMonthly", "prod_DemoStarter", 900, "usd", Some(("month", 1)), t0 - 86_400),
        Seed::price("price_DemoProYearly", "prod_DemoPro", 29_000, "usd", Some(("year", 1)), t0 - 86_400),
        Seed::price("price_DemoTeamWeekly", "prod_DemoTeam", 1_500, "usd", Some(("week", 1)), t0 - 86_400),
        Seed::price("price_DemoStarterDaily", "prod_DemoStarter", 100, "usd", Some(("day", 1)), t0 - 86_400),
        Seed::price("price_DemoProQuarterly", "prod_DemoPro", 7_500, "usd", Some(("month", 3)), t0 - 86_400),
        Seed::price("price_DemoUsageMetered", "prod_DemoUsage", 5, "usd", Some(("month", 1)), t0 - 86_400),
        Seed::price("price_DemoProMonthlyEur", "prod_DemoPro", 2_500, "eur", Some(("month", 1)), t0 - 86_400),
    ];
    prices[5]["recurring"]["usage_type"] = json!("metered");
    prices[0]["nickname"] = json!("Starter monthly");
    for p in &prices {
        out.push(("prices", p.clone()));
    }

    const FIRST: &[&str] =
        &["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Linus"];
    const LAST: &[&str] =
        &["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Torvalds"];
    const STATUSES: &[&str] =
        &["active", "trialing", "past_due", "canceled", "active", "incomplete_expired", "unpaid", "active"];
    let span = 300 * 86_400i64;
    let mut refund_seq = 0usize;

    for i in 0..n_customers {
        let cus = format!("cus_Demo{i:06}");
        let created = t0 + (i as i64 * 7_919) % span;
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len()) % LAST.len()];
        let email = (i % 10 != 9).then(|| format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i));
        let phone = (i % 3 == 0).then(|| format!("+1 (415) 555-{:04}", i % 10_000));
        let mut customer =
            Seed::customer_full(&cus, email.as_deref(), Some(&format!("{first} {last}")), phone.as_deref(), created);
        if i % 4 == 0 {
            customer["metadata"] = json!({"customer_tier": if i % 8 == 0 { "gold" } else { "silver" }});
        }
        out.push(("customers", customer));

        let n_charges = rng.random_range(0..=4usize).max(usize::from(i < 6));
        for j in 0..n_charges {
            let ch = format!("ch_Demo{i:06}x{j}");
            let when = created + 3_600 + (j as i64) * 20 * 86_400 + rng.random_range(0..3_600);
            let (currency, amount, rate) = if j == 0 && (i == 1 || i % 7 == 1) {
                ("jpy", rng.random_range(10..200) * 100, Some(0.0067))
            } else if j == 0 && (i == 2 || i % 5 == 2) {
                ("eur", rng.random_range(500..20_000), Some(1.08))
            } else {
                ("usd", rng.random_range(500..50_000), None)
            };
            if (i + j) % 13 == 6 {
                out.push(("charges", Seed::failed_charge(&ch, Some(&cus), amount, currency, when)));
                continue;
            }
            let mut charge = Seed::charge(&ch, Some(&cus), amount, currency, when);
            if (i + j) % 9 == 5 {
                charge = Seed::with_payment_method(charge, "klarna");
            }
            let refund = if i == 3 || (i + j) % 11 == 4 {
                Some(amount) // full refund
            } else if (i + j) % 4 == 3 {
                Some(amount / 4)
            } else {
                None
            };
            out.push(("balance_transactions", Seed::balance_transaction_for(&charge, rate)));
            if let Some(r) = refund {
                refund_seq += 1;
                let re = Seed::refund(&format!("re_Demo{refund_seq:07}"), &charge, r, when + 86_400);
                charge = merge(
                    charge,
                    json!({"amount_refunded": r, "refunded": r >= amount,
                           "refunds": {"object": "list", "data": [re.clone()], "has_more": false}}),
                );
                out.push(("refunds", re));
            }
            out.push(("charges", charge));
        }

        if i % 5 < 2 || i < 4 {
            let price = &prices[(i / 2) % prices.len()];
            let status = STATUSES[i % STATUSES.len()];
            let sub = format!("sub_Demo{i:06}");
            let quantity = if i % 6 == 0 { 3 } else { 1 };
            out.push(("subscriptions", Seed::subscription(&sub, &cus, price, quantity, status, created + 600)));
            if status == "canceled" && i % 2 == 1 {
                // Came back later on another plan.
                let again = &prices[(i / 2 + 1) % prices.len()];
                out.push((
                    "subscriptions",
                    Seed::subscription(&format!("{sub}b"), &cus, again, 1, "active", created + 90 * 86_400),
                ));
            }
        }
    }
    out
}
