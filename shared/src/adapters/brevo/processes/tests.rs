//! Process status against wiremock: one attempt, never a wait.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::test_support::*;
use super::super::{BrevoClient, BrevoError, Family, Rate};
use super::*;

#[tokio::test]
async fn reads_a_process_status_in_brevos_words() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/processes/78"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 78, "status": "in_process", "name": "IMPORTUSER"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/processes/79"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": "invalid_parameter", "message": "processId is invalid"})),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    let p = c.process_now(78).await.unwrap().unwrap();
    assert_eq!(p, ProcessInfo { id: 78, status: Some(ProcessStatus::InProcess), name: "IMPORTUSER".into() });
    assert!(matches!(c.process_now(79).await, Err(BrevoError::NotFound { .. })));
    assert_eq!((c.stats().other.requests, c.stats().contacts.requests), (2, 0), "processes are in the Other family");
}

#[tokio::test]
async fn asks_only_when_a_token_is_free_and_a_429_is_not_waited_for_or_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/processes/1"))
        .respond_with(ResponseTemplate::new(429).insert_header("x-sib-ratelimit-reset", "3600"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/processes/1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 1, "status": "completed", "name": "IMPORTUSER"})),
        )
        .mount(&server)
        .await;
    // GIVEN Brevo's hourly budget as the client keeps it: one token left
    let mut cfg = config(&server);
    cfg.limits.other = Rate::per_hour(80.0, 1);
    cfg.rate_limit_wait_max = std::time::Duration::from_secs(3_600);
    let c = BrevoClient::new(cfg).unwrap();
    // WHEN asked and Brevo answers 429: not known now, one request, no retry
    assert_eq!(c.process_now(1).await.unwrap(), None);
    assert_eq!(c.stats().other.requests, 1);
    assert_eq!(c.stats().other.retries, 0);
    // THEN the next ask finds no token (spent, and the bucket paused for
    // Brevo's reset): answered at once without a request
    assert_eq!(c.process_now(1).await.unwrap(), None);
    assert_eq!(received(&server).await.len(), 1);
    assert_eq!(c.limiter(Family::Other).stats().waits, 0, "nobody waited for a token");
}
