//! The one `call` against wiremock: 401 without the key, 429 waits and
//! give-ups, 5xx retries, timeouts, unreachable servers, pacing per family,
//! the default limits.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::adapters::http::Backoff;

use super::super::test_support::*;
use super::*;

#[tokio::test]
async fn maps_401_to_an_invalid_key_error_that_does_not_show_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/account"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"code": "unauthorized", "message": "Key not found"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).account().await.unwrap_err();
    assert!(matches!(err, BrevoError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("Brevo API key is invalid"));
    assert!(!err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY));
    assert!(!err.is_retryable());
    assert!(!format!("{:?}", config(&server)).contains(KEY), "config Debug must not print the key");
}

#[tokio::test]
async fn waits_for_the_rate_limit_reset_then_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/events"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-sib-ratelimit-limit", "10")
                .insert_header("x-sib-ratelimit-remaining", "0")
                .insert_header("x-sib-ratelimit-reset", "1"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/v3/events")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let c = client(&server);
    let start = Instant::now();
    let out = c.send_events(&[event(1)]).await.unwrap();
    // reset = 1 s, clamped to the test's 150 ms maximum.
    assert!(start.elapsed() >= Duration::from_millis(140), "did not wait: {:?}", start.elapsed());
    assert_eq!(out.sent, 1);
    assert_eq!(received(&server).await.len(), 2);
    let s = c.stats().events;
    assert_eq!((s.requests, s.rate_limited, s.retries), (2, 1, 1));
}

#[tokio::test]
async fn gives_up_with_rate_limited_after_the_last_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/orders/status"))
        .respond_with(ResponseTemplate::new(429).insert_header("x-sib-ratelimit-reset", "0"))
        .expect(3)
        .mount(&server)
        .await;
    let order = order();
    let err = client(&server).upsert_order(&order).await.unwrap_err();
    assert!(matches!(err, BrevoError::RateLimited { attempts: 3 }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/orders/status"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/orders/status"))
        .and(body_partial_json(json!({"id": "in_1", "identifiers": {"email_id": "jane@example.com"}, "products": []})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let order = order();
    let c = client(&server);
    c.upsert_order(&order).await.unwrap();
    let s = c.stats().orders;
    assert_eq!((s.requests, s.server_errors, s.retries), (3, 2, 2));
}

#[tokio::test]
async fn a_persistent_server_error_is_reported_after_bounded_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(502)).expect(3).mount(&server).await;
    let err = client(&server).list_exists(20).await.unwrap_err();
    assert!(matches!(err, BrevoError::Server(502)) && err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn times_out_retries_and_reports_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/account"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.timeout = Duration::from_millis(100);
    cfg.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(1), 2);
    let c = BrevoClient::new(cfg).unwrap();
    let err = c.account().await.unwrap_err();
    assert!(matches!(err, BrevoError::Timeout(_)) && err.is_retryable(), "{err:?}");
    assert_eq!(c.stats().other.timeouts, 2);
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_transport_error() {
    let mut cfg = BrevoConfig::new("http://127.0.0.1:9", SecretString::from(KEY));
    cfg.backoff = Backoff::none();
    let err = BrevoClient::new(cfg).unwrap().account().await.unwrap_err();
    assert!(matches!(err, BrevoError::Transport(_) | BrevoError::Timeout(_)) && err.is_retryable(), "{err:?}");
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn paces_requests_per_family_with_the_configured_limits() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let mut cfg = config(&server);
    cfg.limits = BrevoLimits { contacts: Rate::per_second(20.0, 1), ..BrevoLimits::unlimited() };
    let c = BrevoClient::new(cfg).unwrap();
    let start = Instant::now();
    for i in 0..6 {
        c.upsert_contact(&contact(&format!("u{i}@example.com"))).await.unwrap();
    }
    // Burst 1 then 5 × 50 ms.
    assert!(start.elapsed() >= Duration::from_millis(240), "too fast: {:?}", start.elapsed());
    let s = c.stats();
    assert_eq!(s.contacts.requests, 6);
    assert!(s.contacts.limiter.waits >= 4);
    // Events are not paced by the contacts bucket.
    c.send_events(&[event(1)]).await.unwrap();
    c.send_events(&[event(2)]).await.unwrap();
    assert_eq!(c.stats().events.limiter.waits, 0);
}

#[test]
fn default_limits_are_80_percent_of_the_general_plan() {
    let l = BrevoLimits::default();
    assert_eq!(l.contacts.per_second, 8.0);
    assert_eq!(l.events.per_second, 8.0);
    assert_eq!(l.orders.per_second, 4.0);
    assert!((l.other.per_second * 3600.0 - 80.0).abs() < 1e-9);
    assert_eq!(Family::of("/v3/contacts/lists/2/contacts/add"), Family::Contacts);
    assert_eq!(Family::of("/v3/events/batch"), Family::Events);
    assert_eq!(Family::of("/v3/orders/status"), Family::Orders);
    assert_eq!(Family::of("/v3/account"), Family::Other);
}

#[tokio::test]
async fn an_event_sent_unanswered_is_not_sent_again_but_one_never_sent_is_retried() {
    use crate::domain::brevo::{BrevoEvent, EventIdentifiers};
    let ev = |id: &str| BrevoEvent {
        event_name: "stripe_charge_refunded".into(),
        identifiers: EventIdentifiers { email_id: "a@example.com".into() },
        event_date: "2026-12-01T00:00:00Z".into(),
        event_properties: [("stripe_event_id".to_owned(), json!(id))].into_iter().collect(),
    };
    // A Brevo that takes the events but answers after the client's timeout.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_millis(1500)))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.timeout = Duration::from_millis(100);
    cfg.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(1), 4);
    let c = BrevoClient::new(cfg).unwrap();
    for events in [vec![ev("evt_1")], vec![ev("evt_2"), ev("evt_3")]] {
        let err = c.send_events(&events).await.unwrap_err();
        assert!(matches!(err, BrevoError::Unconfirmed(_)), "{err:?}");
        assert!(crate::ports::RemoteError::from(err).unconfirmed);
    }
    // One request per call: never a second copy of events Brevo may have.
    assert_eq!(received(&server).await.len(), 2);
    // A contact upsert (safe to repeat) is still retried after a timeout.
    let c2 = {
        let mut cfg = config(&server);
        cfg.timeout = Duration::from_millis(100);
        cfg.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(1), 2);
        BrevoClient::new(cfg).unwrap()
    };
    let contact = crate::domain::brevo::ContactUpdate { email: "a@example.com".into(), ..Default::default() };
    assert!(c2.upsert_contact(&contact).await.is_err());
    assert_eq!(received(&server).await.len(), 4, "two attempts of the upsert");
    // Nobody listening: nothing was sent, so events are retried as usual.
    let mut cfg = BrevoConfig::new("http://127.0.0.1:9", SecretString::from(KEY));
    cfg.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(1), 3);
    let c3 = BrevoClient::new(cfg).unwrap();
    let err = c3.send_events(&[ev("evt_4")]).await.unwrap_err();
    assert!(!matches!(err, BrevoError::Unconfirmed(_)), "{err:?}");
    assert_eq!(c3.stats().events.retries, 2);
}
