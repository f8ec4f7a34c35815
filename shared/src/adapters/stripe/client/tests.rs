//! The client against wiremock: headers, retries and their waits, error
//! mapping without the key, timeouts, the request budget.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::test_support::{assert_no_key, client, client_with_key, fast, list, Obj, KEY};
use super::super::Page;
use super::*;

#[tokio::test]
async fn get_sends_bearer_key_and_pinned_version_and_decodes_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers/cus_1"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("stripe-version", STRIPE_API_VERSION))
        .and(query_param("expand[]", "subscriptions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cus_1", "object": "customer"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let o: Obj = c.get("/v1/customers/cus_1", &[("expand[]", "subscriptions".to_owned())]).await.unwrap();
    assert_eq!(o.id, "cus_1");
    assert_eq!(c.stats().requests, 1);
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn a_429_is_retried_after_the_retry_after_delay() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Request rate limit exceeded."}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&["ch_1"], false)))
        .mount(&server)
        .await;
    let c = client(&server);
    let started = Instant::now();
    let page: Page<Obj> = c.list_page("/v1/charges", &[], None).await.unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After ignored: {:?}", started.elapsed());
    let s = c.stats();
    assert_eq!((s.requests, s.retries, s.rate_limited), (2, 1, 1));
    assert!(s.backoff_wait >= Duration::from_secs(1));
}

#[tokio::test]
async fn retry_after_is_clamped_to_the_policy_maximum() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "x"})))
        .mount(&server)
        .await;
    let c = StripeClient::builder(server.uri(), SecretString::from(KEY.to_owned()))
        .retry_policy(RetryPolicy { max_retry_after: Duration::from_millis(50), ..fast() })
        .build()
        .unwrap();
    let started = Instant::now();
    let _: Obj = c.get("/v1/account", &[]).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stripe_should_retry_false_on_a_500_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).insert_header("Stripe-Should-Retry", "false"))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.get::<Value>("/v1/customers", &[]).await.unwrap_err();
    assert_eq!(e, StripeError::Server(500));
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn stripe_should_retry_true_on_a_400_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("Stripe-Should-Retry", "true")
                .set_body_json(json!({"error": {"type": "invalid_request_error", "message": "try again"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cus_1"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let o: Obj = c.get("/v1/customers/cus_1", &[]).await.unwrap();
    assert_eq!(o.id, "cus_1");
    assert_eq!(c.stats().retries, 1);
}

#[tokio::test]
async fn a_plain_400_is_not_retried_and_keeps_code_and_message() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "parameter_invalid_integer", "param": "limit",
            "message": "This value must be less than or equal to 100."}})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.get::<Value>("/v1/customers", &[("limit", "500".to_owned())]).await.unwrap_err();
    match &e {
        StripeError::InvalidRequest { code, message } => {
            assert_eq!(code.as_deref(), Some("parameter_invalid_integer"));
            assert!(message.contains("less than or equal to 100"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn server_errors_and_409_are_retried_until_attempts_run_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/a"))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/b"))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"error": {"type": "invalid_request_error", "code": "lock_timeout", "message": "locked"}}),
        ))
        .expect(4)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/c"))
        .respond_with(ResponseTemplate::new(429))
        .expect(4)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.get::<Value>("/v1/a", &[]).await.unwrap_err();
    assert_eq!(e, StripeError::Server(503));
    assert!(e.is_retryable());
    assert!(matches!(c.get::<Value>("/v1/b", &[]).await.unwrap_err(), StripeError::Conflict { .. }));
    assert_eq!(c.get::<Value>("/v1/c", &[]).await.unwrap_err(), StripeError::RateLimited);
    assert_eq!(c.stats().requests, 12);
    assert_eq!(c.stats().retries, 9);
    assert_eq!(c.stats().rate_limited, 4);
}

#[tokio::test]
async fn a_401_maps_to_unauthorized_without_echoing_the_masked_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****abcd"}})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.get::<Value>("/v1/account", &[]).await.unwrap_err();
    assert_eq!(e, StripeError::Unauthorized);
    assert_eq!(e.to_string(), "Stripe API key is invalid");
    assert_no_key(&format!("{e} {e:?}"));
}

#[tokio::test]
async fn a_403_keeps_the_missing_permission_but_redacts_the_key() {
    let server = MockServer::start().await;
    let rk = "rk_test_51FakeRestricted0123456789abcd";
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {
            "type": "invalid_request_error",
            "message": format!("The provided key 'rk_test_****abcd' does not have the required permissions for this endpoint on account 'acct_1'. Having the 'rak_subscription_read' permission would allow this request to continue. ({rk})")}})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client_with_key(&server, rk);
    assert!(c.key_is_restricted());
    let e = c.check_permission("/v1/subscriptions").await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(matches!(e, StripeError::PermissionDenied { .. }));
    assert!(text.contains("rak_subscription_read"), "{text}");
    assert!(!text.contains(rk));
    assert_no_key(&text);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_404_maps_to_not_found_with_the_resource_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "resource_missing", "param": "id",
            "message": "No such customer: 'cus_missing'"}})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.get::<Value>("/v1/customers/cus_missing", &[]).await.unwrap_err();
    assert_eq!(e, StripeError::NotFound { resource_id: Some("cus_missing".to_owned()) });
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_after_bounded_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "x"})).set_delay(Duration::from_millis(800)),
        )
        .expect(2)
        .mount(&server)
        .await;
    let c = StripeClient::builder(server.uri(), SecretString::from(KEY.to_owned()))
        .retry_policy(RetryPolicy { max_attempts: 2, ..fast() })
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = c.get::<Value>("/v1/account", &[]).await.unwrap_err();
    assert_eq!(e, StripeError::Timeout);
    assert!(e.is_retryable());
    assert!(started.elapsed() < Duration::from_millis(700));
    assert_eq!(c.stats().requests, 2);
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_transport_error_without_the_key() {
    // Bind then drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = StripeClient::builder(format!("http://127.0.0.1:{port}"), SecretString::from(KEY.to_owned()))
        .retry_policy(RetryPolicy { max_attempts: 2, ..fast() })
        .build()
        .unwrap();
    let e = c.get::<Value>("/v1/account", &[]).await.unwrap_err();
    assert!(matches!(e, StripeError::Transport(_)), "{e:?}");
    assert!(e.is_retryable());
    assert_no_key(&format!("{e} {e:?} {c:?}"));
    assert_eq!(c.stats().retries, 1);
}

#[tokio::test]
async fn the_request_budget_spaces_requests_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "x"})))
        .mount(&server)
        .await;
    let c = StripeClient::builder(server.uri(), SecretString::from(KEY.to_owned()))
        .requests_per_second(Some(20.0))
        .build()
        .unwrap();
    let started = Instant::now();
    for _ in 0..25 {
        let _: Obj = c.get("/v1/account", &[]).await.unwrap();
    }
    // 20 tokens up front, then 5 more at 50 ms each.
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    assert!(c.stats().budget_wait >= Duration::from_millis(150));
}

#[test]
fn key_mode_and_default_budget_follow_the_key_prefix() {
    let live = StripeClient::new("https://api.stripe.com", SecretString::from("rk_live_x".to_owned())).unwrap();
    assert!(live.key_is_live());
    assert_eq!(live.inner.budget.rate(), Some(DEFAULT_LIVE_RPS));
    assert_eq!(live.inner.budget.burst(), 80, "burst = rate");
    let test = StripeClient::new("https://api.stripe.com/", SecretString::from("sk_test_x".to_owned())).unwrap();
    assert!(!test.key_is_live());
    assert_eq!(test.base_url(), "https://api.stripe.com");
    assert_eq!(test.inner.budget.rate(), Some(DEFAULT_TEST_RPS));
    assert_no_key(&format!("{test:?}"));
}

#[test]
fn a_share_of_an_account_budget_has_a_burst_of_one() {
    let key = || SecretString::from("sk_test_x".to_owned());
    let b = StripeClient::builder("https://api.stripe.com", key());
    assert!(!b.key_is_live());
    let shared = b.requests_per_second(Some(6.5)).burst(1).build().unwrap();
    assert_eq!(shared.budget(), (Some(6.5), 1));
    let own = StripeClient::builder("https://api.stripe.com", key()).requests_per_second(Some(12.0)).build().unwrap();
    assert_eq!(own.budget(), (Some(12.0), 12), "without a burst: one second's worth, as before");
    assert!(StripeClient::builder("https://api.stripe.com", SecretString::from("rk_live_x".to_owned())).key_is_live());
}
