//! The `BrevoApi` port against wiremock.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::ports::BrevoApi;

use super::super::test_support::*;

#[tokio::test]
async fn the_port_reports_failed_events_in_order_and_errors_as_remote_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/events/batch"))
        .respond_with(
            ResponseTemplate::new(207)
                .set_body_json(json!({"errors": [{"index": 2, "message": "Invalid event_name"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/v3/contacts")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let c = client(&server);
    let api: &dyn BrevoApi = &c;
    let events: Vec<_> = (0..3).map(event).collect();
    let per_event = api.send_events(&events).await.unwrap();
    assert_eq!(per_event.len(), 3);
    assert!(per_event[0].is_none() && per_event[1].is_none());
    assert_eq!(per_event[2].as_ref().map(|e| e.is_retryable()), Some(false));
    let err = api.upsert_contact(&contact("jane@example.com")).await.unwrap_err();
    assert!(err.is_retryable());
    assert!(!err.message.contains("jane@example.com"));
}
