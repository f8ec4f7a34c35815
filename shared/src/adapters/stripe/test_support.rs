//! What the Stripe client's unit tests share: a test key, a fast retry
//! policy, a client on a wiremock server, list bodies and a leak check.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use wiremock::MockServer;

use super::{RetryPolicy, StripeClient};

pub const KEY: &str = "sk_test_51FakeKeyForUnitTests0123456789abcd";

pub fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(2),
    }
}

pub fn client(server: &MockServer) -> StripeClient {
    client_with_key(server, KEY)
}

pub fn client_with_key(server: &MockServer, key: &str) -> StripeClient {
    StripeClient::builder(server.uri(), SecretString::from(key.to_owned()))
        .retry_policy(fast())
        .timeout(Duration::from_secs(5))
        .requests_per_second(None)
        .build()
        .unwrap()
}

pub fn list(ids: &[&str], has_more: bool) -> Value {
    json!({
        "object": "list",
        "url": "/v1/customers",
        "has_more": has_more,
        "data": ids.iter().map(|id| json!({"id": id, "object": "customer"})).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
pub struct Obj {
    pub id: String,
}

pub fn assert_no_key(text: &str) {
    assert!(!text.contains(KEY), "key leaked: {text}");
    assert!(!text.contains("sk_test"), "key-like text leaked: {text}");
    assert!(!text.contains("rk_test"), "key-like text leaked: {text}");
    assert!(!text.contains("abcd"), "key suffix leaked: {text}");
}
