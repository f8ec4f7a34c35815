//! The account check against wiremock.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::test_support::*;

#[tokio::test]
async fn reads_the_account() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"email": "owner@example.com", "companyName": "Acme", "plan": [{"type": "free", "credits": 300}]}),
        ))
        .mount(&server)
        .await;
    let a = client(&server).account().await.unwrap();
    assert_eq!(a.company_name.as_deref(), Some("Acme"));
    assert_eq!(a.plans, vec!["free".to_owned()]);
    assert_eq!(client(&server).stats().other.requests, 0, "stats are per client");
}
