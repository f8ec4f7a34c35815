//! End to end: the real `StripeClient` against the local Stripe sandbox —
//! paging, retries under 429 bursts and random faults, permissions, expand,
//! and the sandbox's per-account rate limit (its 429s and the clients'
//! shares of an account budget).

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use sandbox::stripe::{Burst, RateLimit, Seed, StripeSandbox, StripeSandboxOptions, DEFAULT_SECRET_KEY};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::stripe::{RetryPolicy, StripeClient, StripeError};

const RK: &str = "rk_test_e2erestricted0000000000000qrst";

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_millis(50),
    }
}

fn client(sb: &StripeSandbox, key: &str, attempts: u32) -> StripeClient {
    StripeClient::builder(sb.base_url(), SecretString::from(key.to_owned()))
        .retry_policy(fast(attempts))
        .timeout(Duration::from_secs(5))
        .requests_per_second(None)
        .build()
        .unwrap()
}

async fn sandbox_with_customers(n: usize) -> StripeSandbox {
    let sb =
        StripeSandbox::start(StripeSandboxOptions::default().with_restricted_key(RK, &["customers"])).await.unwrap();
    for i in 0..n {
        // Ten customers per second: ties must be broken by id, not lost.
        sb.insert(
            "customers",
            Seed::customer(&format!("cus_{i:05}"), Some(&format!("c{i}@example.com")), 1_700_000_000 + (i / 10) as i64),
        );
    }
    sb
}

#[tokio::test]
async fn pages_through_1000_customers_absorbing_429_bursts() {
    const N: usize = 1_000;
    let sb = sandbox_with_customers(N).await;
    let c = client(&sb, DEFAULT_SECRET_KEY, 5);

    sb.burst(Burst { count: 2, should_retry: None, retry_after: None });
    let mut pager = c.pager::<Value>("/v1/customers", &[]);
    let mut ids = Vec::with_capacity(N);
    while let Some(page) = pager.next_page().await.unwrap() {
        assert!(page.len() <= 100);
        ids.extend(page.iter().map(|v| v["id"].as_str().unwrap().to_owned()));
        if pager.pages_fetched() == 4 {
            // Mid-walk burst, this time with Retry-After (clamped to 50 ms).
            sb.burst(Burst { count: 3, should_retry: None, retry_after: Some(30) });
        }
    }

    let expected: Vec<String> = (0..N).rev().map(|i| format!("cus_{i:05}")).collect();
    assert_eq!(ids, expected, "every customer once, newest first");
    let stats = c.stats();
    assert_eq!(stats.retries, 5);
    assert_eq!(stats.rate_limited, 5);
    let pages = N.div_ceil(100) as u64;
    assert_eq!(sb.request_count(), pages + stats.retries);
    assert_eq!(stats.requests, sb.request_count());
    assert_eq!(sb.status_count(429), 5);
    assert_eq!(sb.status_count(200), pages);
    assert!(
        stats.backoff_wait >= Duration::from_millis(150),
        "Retry-After (clamped) honoured: {:?}",
        stats.backoff_wait
    );
}

#[tokio::test]
async fn list_all_survives_random_429s_and_500s() {
    const N: usize = 1_000;
    let sb = sandbox_with_customers(N).await;
    sb.set_error_rates(0.15, 0.1);
    let c = client(&sb, DEFAULT_SECRET_KEY, 10);
    let mut seen = HashSet::new();
    let n = c
        .list_all::<Value, _>("/v1/customers", &[("created[gte]", "1700000050".to_owned())], |page| {
            for v in page {
                assert!(seen.insert(v["id"].as_str().unwrap().to_owned()), "duplicate");
            }
        })
        .await
        .unwrap();
    assert_eq!(n, 500);
    assert_eq!(seen.len(), 500);
    let stats = c.stats();
    assert!(stats.retries > 0, "the seeded faults fired");
    assert_eq!(sb.request_count(), 5 + stats.retries);
}

#[tokio::test]
async fn permissions_and_keys_map_to_typed_errors_without_leaking_the_key() {
    let sb = sandbox_with_customers(3).await;
    let restricted = client(&sb, RK, 3);
    assert!(restricted.check_permission("/v1/customers").await.is_ok());
    let e = restricted.check_permission("/v1/subscriptions").await.unwrap_err();
    let text = format!("{e} | {e:?}");
    assert!(matches!(e, StripeError::PermissionDenied { .. }), "{text}");
    assert!(text.contains("rak_subscription_read"), "{text}");
    assert!(!text.contains("rk_test") && !text.contains("qrst"), "{text}");
    assert_eq!(sb.request_count_for("/v1/subscriptions"), 1, "403 is not retried");

    let bad = client(&sb, "sk_test_not_a_real_key_9999", 3);
    let e = bad.get::<Value>("/v1/account", &[]).await.unwrap_err();
    assert_eq!(e, StripeError::Unauthorized);
    assert!(!format!("{e:?}").contains("9999"));
    assert_eq!(sb.request_count_for("/v1/account"), 1, "401 is not retried");
}

#[tokio::test]
async fn single_objects_expand_and_missing_or_deleted_ones_are_typed() {
    let sb = StripeSandbox::start(StripeSandboxOptions::default()).await.unwrap();
    sb.insert("customers", Seed::customer("cus_1", Some("a@example.com"), 1));
    sb.insert("customers", Seed::customer("cus_2", None, 2));
    sb.insert_charge(Seed::charge("ch_1", Some("cus_1"), 10_000, "jpy", 3), Some(0.0067));
    let c = client(&sb, DEFAULT_SECRET_KEY, 3);

    let ch: Value = c
        .get("/v1/charges/ch_1", &[("expand[]", "balance_transaction".to_owned()), ("expand[]", "customer".to_owned())])
        .await
        .unwrap();
    assert_eq!(ch["balance_transaction"]["exchange_rate"], 0.0067);
    assert_eq!(ch["balance_transaction"]["amount"], 6_700);
    assert_eq!(ch["customer"]["email"], "a@example.com");

    let page = c
        .list_page::<Value>(
            "/v1/charges",
            &[("expand[]", "data.balance_transaction".to_owned()), ("customer", "cus_1".to_owned())],
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(!page.has_more && page.next_cursor.is_none());
    assert_eq!(page.data[0]["balance_transaction"]["object"], "balance_transaction");

    let e = c.get::<Value>("/v1/customers/cus_nope", &[]).await.unwrap_err();
    assert_eq!(e, StripeError::NotFound { resource_id: Some("cus_nope".to_owned()) });

    sb.delete_customer("cus_2");
    let d: Value = c.get("/v1/customers/cus_2", &[]).await.unwrap();
    assert_eq!(d, json!({"id": "cus_2", "object": "customer", "deleted": true}));

    let e = c.list_page::<Value>("/v1/customers", &[], Some("cus_gone")).await.unwrap_err();
    assert!(
        matches!(e, StripeError::InvalidRequest { ref code, .. } if code.as_deref() == Some("resource_missing")),
        "{e:?}"
    );
}

#[tokio::test]
async fn stripe_should_retry_false_stops_retries_and_exhaustion_is_rate_limited() {
    let sb = sandbox_with_customers(5).await;
    let c = client(&sb, DEFAULT_SECRET_KEY, 4);
    sb.burst(Burst { count: 1, should_retry: Some(false), retry_after: None });
    assert_eq!(c.list_page::<Value>("/v1/customers", &[], None).await.unwrap_err(), StripeError::RateLimited);
    assert_eq!(sb.request_count(), 1);

    sb.burst_429(10);
    let e = c.list_page::<Value>("/v1/customers", &[], None).await.unwrap_err();
    assert_eq!(e, StripeError::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(sb.request_count(), 1 + 4);

    sb.set_outage(true);
    assert_eq!(c.get::<Value>("/v1/balance", &[]).await.unwrap_err(), StripeError::Server(503));
}

#[tokio::test]
async fn events_can_be_polled_by_type_across_pages_with_the_demo_dataset() {
    let sb = StripeSandbox::start(StripeSandboxOptions::default().with_now(1_750_000_000)).await.unwrap();
    let summary = sb.seed_demo_dataset(200, 11);
    for i in 0..150 {
        let t = if i % 3 == 0 { "charge.refunded" } else { "customer.subscription.updated" };
        sb.emit_event(t, json!({"id": format!("obj_{i}"), "object": "x"}));
    }
    let c = client(&sb, DEFAULT_SECRET_KEY, 3);
    let n = c
        .list_all::<Value, _>("/v1/events", &[("types[]", "charge.refunded".to_owned())], |page| {
            assert!(page.iter().all(|e| e["type"] == "charge.refunded"));
        })
        .await
        .unwrap();
    assert_eq!(n, 50);

    let subs = c
        .list_all::<Value, _>(
            "/v1/subscriptions",
            &[("status", "all".to_owned()), ("expand[]", "data.items.data.price.product".to_owned())],
            |page| {
                assert!(page.iter().all(|s| s["items"]["data"][0]["price"]["product"]["object"] == "product"));
            },
        )
        .await
        .unwrap();
    assert_eq!(subs as usize, summary.count("subscriptions"));
}

/// A sandbox with `n` customers and this account rate limit.
async fn limited_sandbox(limit: RateLimit) -> StripeSandbox {
    let sb = StripeSandbox::start(StripeSandboxOptions::default().with_rate_limit(limit)).await.unwrap();
    sb.insert("customers", Seed::customer("cus_1", Some("c1@example.com"), 1_700_000_000));
    sb
}

/// `n` retrieves at once through `c`.
async fn retrieves(c: &StripeClient, n: usize) -> Vec<Result<Value, StripeError>> {
    futures::future::join_all((0..n).map(|_| c.get::<Value>("/v1/customers/cus_1", &[]))).await
}

#[tokio::test]
async fn a_429_of_the_account_limit_is_retried_after_retry_after_and_then_admitted() {
    let sb = limited_sandbox(RateLimit { per_second: 2, should_retry: None, retry_after: Some(1) }).await;
    let c = StripeClient::builder(sb.base_url(), SecretString::from(DEFAULT_SECRET_KEY.to_owned()))
        .retry_policy(RetryPolicy { max_retry_after: Duration::from_secs(2), ..fast(3) })
        .requests_per_second(None)
        .build()
        .unwrap();
    let got = retrieves(&c, 4).await;
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    let (ours, theirs) = (c.stats(), sb.rate_stats());
    assert!(theirs.rate_limited >= 1, "four at once against two per second: {theirs:?}");
    assert_eq!((ours.rate_limited, ours.requests), (theirs.rate_limited, theirs.requests));
    assert_eq!(ours.retries, ours.rate_limited, "each 429 retried once, a second later, into a free window");
}

#[tokio::test]
async fn a_429_of_the_account_limit_saying_stripe_should_retry_false_is_not_retried() {
    let sb = limited_sandbox(RateLimit { per_second: 1, should_retry: Some(false), retry_after: None }).await;
    let c = client(&sb, DEFAULT_SECRET_KEY, 4);
    let got = retrieves(&c, 3).await;
    let refused = got.iter().filter(|r| matches!(r, Err(StripeError::RateLimited))).count() as u64;
    assert_eq!(got.iter().filter(|r| r.is_ok()).count() as u64 + refused, 3, "{got:?}");
    assert!(refused >= 1);
    assert_eq!(c.stats().retries, 0, "Stripe said not to");
    assert_eq!(sb.rate_stats().requests, 3);
}

#[tokio::test]
async fn clients_pacing_at_their_shares_of_an_account_budget_stay_under_the_accounts_limit() {
    // The template's numbers: a poller and two consumers sharing 20 r/s,
    // against Stripe's test-mode 25 r/s, each paced at its part with a
    // burst of one.
    use shared::wiring::budget::{Instances, Role};
    let sb = limited_sandbox(RateLimit::TEST).await;
    let instances = Instances::Deployed { consumers: 2 };
    let clients: Vec<StripeClient> = [Role::Poller, Role::Consumer, Role::Consumer]
        .into_iter()
        .map(|role| {
            StripeClient::builder(sb.base_url(), SecretString::from(DEFAULT_SECRET_KEY.to_owned()))
                .retry_policy(fast(1))
                .requests_per_second(Some(20.0 * instances.stripe_part(role)))
                .burst(1)
                .build()
                .unwrap()
        })
        .collect();
    let runs = clients.iter().map(|c| async move {
        for _ in 0..10 {
            c.get::<Value>("/v1/customers/cus_1", &[]).await.unwrap();
        }
    });
    futures::future::join_all(runs).await;
    let stats = sb.rate_stats();
    assert_eq!((stats.requests, stats.rate_limited), (30, 0), "{stats:?}");
    assert!(stats.peak_per_second <= 25, "{stats:?}");
}
