//! Stripe's own example objects (`sandbox/fixtures/stripe_fixtures.json`,
//! from Stripe's OpenAPI repository, MIT) for the domain's unit tests.

use serde_json::Value;

const FIXTURES: &str = include_str!("../../../sandbox/fixtures/stripe_fixtures.json");

/// The example object of one resource (`customer`, `charge`, …).
pub(crate) fn fixture(name: &str) -> Value {
    let all: Value = serde_json::from_str(FIXTURES).expect("fixtures file is JSON");
    let obj = all["resources"][name].clone();
    assert!(!obj.is_null(), "no fixture named {name}");
    obj
}
