//! Unit tests of the Stripe sandbox, through HTTP like its clients.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{json, Value};

use super::auth::mask_key;
use super::*;

const RK: &str = "rk_test_restrictedkey000000000000wxyz";

async fn sandbox() -> StripeSandbox {
    StripeSandbox::start(StripeSandboxOptions::default().with_restricted_key(RK, &["customers", "charges"]))
        .await
        .unwrap()
}

async fn get_with(sb: &StripeSandbox, key: Option<&str>, path_and_query: &str) -> (u16, Value, HeaderMap) {
    let mut req = reqwest::Client::new().get(format!("{}{}", sb.base_url(), path_and_query));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap();
    (status, body, headers)
}

async fn get(sb: &StripeSandbox, path_and_query: &str) -> (u16, Value) {
    let (s, b, _) = get_with(sb, Some(DEFAULT_SECRET_KEY), path_and_query).await;
    (s, b)
}

fn ids(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn pages_through_250_customers_newest_first_without_gaps_or_repeats() {
    let sb = sandbox().await;
    for i in 0..250 {
        // Groups of five share a timestamp: ties are ordered by id desc.
        sb.insert("customers", Seed::customer(&format!("cus_{i:04}"), None, 1_700_000_000 + (i / 5) as i64));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut more_flags = Vec::new();
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/customers?limit=100&starting_after={c}"),
            None => "/v1/customers?limit=100".to_owned(),
        };
        let (status, body) = get(&sb, &q).await;
        assert_eq!(status, 200);
        assert_eq!(body["object"], "list");
        let page = ids(&body);
        more_flags.push(body["has_more"].as_bool().unwrap());
        cursor = page.last().cloned();
        seen.extend(page);
        if !body["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(more_flags, [true, true, false]);
    let expected: Vec<String> = (0..250).rev().map(|i| format!("cus_{i:04}")).collect();
    assert_eq!(seen, expected);

    // Default limit is 10; ending_before walks back towards newer objects.
    let (_, body) = get(&sb, "/v1/customers").await;
    assert_eq!(ids(&body).len(), 10);
    let (_, body) = get(&sb, "/v1/customers?limit=3&ending_before=cus_0100").await;
    assert_eq!(ids(&body), ["cus_0103", "cus_0102", "cus_0101"]);
    assert_eq!(body["has_more"], true);
    let (_, body) = get(&sb, "/v1/customers?limit=3&ending_before=cus_0248").await;
    assert_eq!(ids(&body), ["cus_0249"]);
    assert_eq!(body["has_more"], false);
}

#[tokio::test]
async fn rejects_bad_limits_and_unknown_cursors_like_stripe() {
    let sb = sandbox().await;
    sb.insert("customers", Seed::customer("cus_a", None, 1));
    for q in ["/v1/customers?limit=101", "/v1/customers?limit=0", "/v1/customers?limit=x"] {
        let (status, body) = get(&sb, q).await;
        assert_eq!(status, 400, "{q}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "limit");
    }
    let (status, body) = get(&sb, "/v1/customers?starting_after=cus_nope").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["param"], "starting_after");
    assert_eq!(body["error"]["message"], "No such customer: 'cus_nope'");
}

#[tokio::test]
async fn filters_by_created_range_and_customer() {
    let sb = sandbox().await;
    for i in 0..10 {
        let cus = if i % 2 == 0 { "cus_even" } else { "cus_odd" };
        sb.insert_charge(Seed::charge(&format!("ch_{i}"), Some(cus), 100, "usd", 1_000 + i), None);
    }
    let (_, body) = get(&sb, "/v1/charges?limit=100&created[gte]=1003&created[lt]=1007").await;
    assert_eq!(ids(&body), ["ch_6", "ch_5", "ch_4", "ch_3"]);
    let (_, body) = get(&sb, "/v1/charges?limit=100&created%5Bgt%5D=1003&created%5Blte%5D=1005").await;
    assert_eq!(ids(&body), ["ch_5", "ch_4"]);
    let (_, body) = get(&sb, "/v1/charges?limit=100&customer=cus_odd&created[gte]=1005").await;
    assert_eq!(ids(&body), ["ch_9", "ch_7", "ch_5"]);
    assert_eq!(sb.count("balance_transactions"), 10);
}

#[tokio::test]
async fn subscriptions_hide_ended_ones_unless_status_all() {
    let sb = sandbox().await;
    let price = Seed::price("price_m", "prod_x", 900, "usd", Some(("month", 1)), 1);
    for (i, status) in ["active", "canceled", "incomplete_expired", "trialing", "past_due"].iter().enumerate() {
        sb.insert("subscriptions", Seed::subscription(&format!("sub_{i}"), "cus_1", &price, 1, status, 10 + i as i64));
    }
    let (_, body) = get(&sb, "/v1/subscriptions?limit=100").await;
    assert_eq!(ids(&body), ["sub_4", "sub_3", "sub_0"]);
    let (_, body) = get(&sb, "/v1/subscriptions?limit=100&status=all").await;
    assert_eq!(ids(&body).len(), 5);
    let (_, body) = get(&sb, "/v1/subscriptions?status=canceled").await;
    assert_eq!(ids(&body), ["sub_1"]);
    let (_, body) = get(&sb, "/v1/subscriptions?status=all&customer=cus_2").await;
    assert!(ids(&body).is_empty());
    let (_, body) = get(&sb, "/v1/subscriptions?status=all&price=price_m&limit=2").await;
    assert_eq!(ids(&body), ["sub_4", "sub_3"]);
    assert_eq!(body["has_more"], true);
}

#[tokio::test]
async fn events_filter_by_type_and_types_and_cap_types_at_20() {
    let sb = sandbox().await;
    sb.set_now(5_000);
    let a = sb.emit_event("charge.refunded", json!({"id": "ch_1", "object": "charge"}));
    let b = sb.emit_event("customer.subscription.updated", json!({"id": "sub_1", "object": "subscription"}));
    sb.advance(10);
    let c = sb.emit_event("invoice.payment_failed", json!({"id": "in_1", "object": "invoice"}));
    let (_, body) = get(&sb, "/v1/events").await;
    assert_eq!(ids(&body), [c.clone(), b.clone(), a.clone()]);
    assert_eq!(body["data"][0]["created"], 5_010);
    assert_eq!(body["data"][0]["data"]["object"]["id"], "in_1");
    let (_, body) = get(&sb, "/v1/events?type=charge.refunded").await;
    assert_eq!(ids(&body), std::slice::from_ref(&a));
    let (_, body) = get(&sb, "/v1/events?type=customer.*").await;
    assert_eq!(ids(&body), std::slice::from_ref(&b));
    let (_, body) = get(&sb, "/v1/events?types[]=charge.refunded&types[]=invoice.payment_failed").await;
    assert_eq!(ids(&body), [c, a]);
    let many: String = (0..21).map(|i| format!("&types[]=t.{i}")).collect();
    let (status, body) = get(&sb, &format!("/v1/events?limit=10{many}")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "types");
}

#[tokio::test]
async fn expands_nested_ids_on_lists_and_single_objects() {
    let sb = sandbox().await;
    sb.insert("customers", Seed::customer("cus_1", Some("a@example.com"), 1));
    sb.insert("products", Seed::product("prod_1", "Gold", 1));
    let price = Seed::price("price_1", "prod_1", 1000, "usd", Some(("year", 1)), 1);
    sb.insert("prices", price.clone());
    sb.insert("subscriptions", Seed::subscription("sub_1", "cus_1", &price, 2, "active", 5));
    sb.insert_charge(Seed::charge("ch_1", Some("cus_1"), 5000, "eur", 7), Some(1.1));

    let (_, body) = get(&sb, "/v1/charges?expand[]=data.balance_transaction&expand[]=data.customer").await;
    let ch = &body["data"][0];
    assert_eq!(ch["balance_transaction"]["object"], "balance_transaction");
    assert_eq!(ch["balance_transaction"]["exchange_rate"], 1.1);
    assert_eq!(ch["balance_transaction"]["amount"], 5500);
    assert_eq!(ch["customer"]["email"], "a@example.com");

    let (_, body) = get(&sb, "/v1/subscriptions?expand[0]=data.items.data.price.product").await;
    assert_eq!(body["data"][0]["items"]["data"][0]["price"]["product"]["name"], "Gold");
    assert_eq!(body["data"][0]["items"]["data"][0]["quantity"], 2);

    let (_, body) = get(&sb, "/v1/charges/ch_1?expand[]=balance_transaction").await;
    assert_eq!(body["balance_transaction"]["id"], "txn_1");
    // Without expand, ids stay ids.
    let (_, body) = get(&sb, "/v1/charges/ch_1").await;
    assert_eq!(body["balance_transaction"], "txn_1");
    assert_eq!(body["customer"], "cus_1");
}

#[tokio::test]
async fn unknown_and_deleted_objects_answer_like_stripe() {
    let sb = sandbox().await;
    sb.insert("customers", Seed::customer("cus_1", None, 1));
    sb.insert("customers", Seed::customer("cus_2", None, 2));
    let (status, body) = get(&sb, "/v1/customers/cus_x").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                          "message": "No such customer: 'cus_x'", "param": "id"}})
    );
    assert!(sb.delete_customer("cus_1"));
    let (status, body) = get(&sb, "/v1/customers/cus_1").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"id": "cus_1", "object": "customer", "deleted": true}));
    let (_, body) = get(&sb, "/v1/customers").await;
    assert_eq!(ids(&body), ["cus_2"]);
    assert!(sb.update(
        "customers",
        "cus_2",
        json!({"email": "new@example.com", "metadata": {"customer_tier": "gold"}})
    ));
    let (_, body) = get(&sb, "/v1/customers/cus_2").await;
    assert_eq!(body["email"], "new@example.com");
    assert_eq!(body["metadata"]["customer_tier"], "gold");
    assert_eq!(body["object"], "customer");
    let (status, _) = get(&sb, "/v1/widgets").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn authenticates_like_stripe_with_masked_keys_and_restricted_permissions() {
    let sb = sandbox().await;
    let (status, body, _) = get_with(&sb, Some("sk_test_wrongkey1234abcd"), "/v1/customers").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "Invalid API Key provided: sk_test_****abcd");
    let (status, _, _) = get_with(&sb, None, "/v1/customers").await;
    assert_eq!(status, 401);

    let (status, _, _) = get_with(&sb, Some(RK), "/v1/customers").await;
    assert_eq!(status, 200);
    let (status, body, _) = get_with(&sb, Some(RK), "/v1/subscriptions?limit=1").await;
    assert_eq!(status, 403);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("'rk_test_****wxyz'"), "{msg}");
    assert!(msg.contains("'rak_subscription_read'"), "{msg}");
    assert!(!msg.contains(RK));

    let (status, body) = get(&sb, "/v1/account").await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "account");
    let (status, body) = get(&sb, "/v1/balance").await;
    assert_eq!((status, body["object"].as_str()), (200, Some("balance")));
}

#[tokio::test]
async fn bursts_of_429_then_normal_answers_and_counters() {
    let sb = sandbox().await;
    sb.insert("customers", Seed::customer("cus_1", None, 1));
    sb.burst(Burst { count: 2, should_retry: Some(true), retry_after: Some(1) });
    for _ in 0..2 {
        let (status, body, headers) = get_with(&sb, Some(DEFAULT_SECRET_KEY), "/v1/customers").await;
        assert_eq!(status, 429);
        assert_eq!(body["error"]["code"], "rate_limit");
        assert_eq!(headers["stripe-should-retry"], "true");
        assert_eq!(headers["retry-after"], "1");
    }
    let (status, _) = get(&sb, "/v1/customers").await;
    assert_eq!(status, 200);
    assert_eq!(sb.request_count(), 3);
    assert_eq!(sb.request_count_for("/v1/customers"), 3);
    assert_eq!(sb.status_count(429), 2);
    assert_eq!(sb.requests()[2].status, 200);

    sb.set_outage(true);
    assert_eq!(get(&sb, "/v1/customers").await.0, 503);
    sb.clear_faults();
    sb.set_latency(Duration::from_millis(50));
    let started = std::time::Instant::now();
    assert_eq!(get(&sb, "/v1/customers").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(50));
    sb.reset_log();
    assert_eq!(sb.request_count(), 0);
}

#[tokio::test]
async fn random_errors_follow_the_seed() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sb = StripeSandbox::start(StripeSandboxOptions::default().with_seed(7)).await.unwrap();
        sb.set_error_rates(0.3, 0.2);
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(get(&sb, "/v1/customers").await.0);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&429) && runs[0].contains(&500) && runs[0].contains(&200));
}

#[test]
fn fixtures_parse_and_seeds_keep_stripe_shapes() {
    assert_eq!(fixture("customer")["object"], "customer");
    let c = Seed::charge("ch_1", Some("cus_1"), 1234, "jpy", 10);
    assert_eq!(c["object"], "charge");
    assert_eq!(c["amount_captured"], 1234);
    assert_eq!(c["payment_method_details"]["type"], "card");
    let txn = Seed::balance_transaction_for(&c, Some(0.0067));
    // 1234 JPY (zero-decimal) × 0.0067 = 8.27 USD.
    assert_eq!(txn["amount"], 827);
    assert_eq!(txn["currency"], "usd");
    assert_eq!(txn["source"], "ch_1");
    let s = Seed::subscription(
        "sub_1",
        "cus_1",
        &Seed::price("price_1", "prod_1", 500, "usd", Some(("week", 2)), 1),
        1,
        "trialing",
        100,
    );
    assert_eq!(s["items"]["data"][0]["price"]["recurring"]["interval_count"], 2);
    assert_eq!(s["trial_end"], 100 + 14 * 86_400);
    assert_eq!(s["status"], "trialing");
}

#[test]
fn the_demo_dataset_is_deterministic_and_covers_the_edge_cases() {
    let a = demo_dataset(60, 1);
    assert_eq!(a, demo_dataset(60, 1));
    assert_ne!(a, demo_dataset(60, 2));
    let summary = DemoSummary::of(&a);
    assert_eq!(summary.count("customers"), 60);
    assert_eq!(summary.customers_without_email, 6);
    let of = |r: &'static str| a.iter().filter(move |(res, _)| *res == r).map(|(_, v)| v);
    assert!(of("charges").any(|c| c["currency"] == "jpy"));
    assert!(of("charges").any(|c| c["currency"] == "eur"));
    assert!(of("balance_transactions").any(|t| t["exchange_rate"] == 1.08));
    assert!(of("charges").any(|c| c["refunded"] == true));
    assert!(of("charges").any(|c| c["refunded"] == false && c["amount_refunded"].as_i64().unwrap() > 0));
    assert!(of("charges").any(|c| c["status"] == "failed"));
    assert!(of("charges").any(|c| c["payment_method_details"]["type"] == "klarna"));
    assert!(summary.count("refunds") > 0);
    let statuses: HashSet<&str> = of("subscriptions").map(|s| s["status"].as_str().unwrap()).collect();
    for s in ["active", "trialing", "past_due", "canceled", "incomplete_expired"] {
        assert!(statuses.contains(s), "missing {s}");
    }
    let intervals: HashSet<String> =
        of("subscriptions").map(|s| s["items"]["data"][0]["price"]["recurring"]["interval"].to_string()).collect();
    assert!(intervals.len() >= 3);
    // Every charge's balance transaction exists.
    let txns: HashSet<&str> = of("balance_transactions").map(|t| t["id"].as_str().unwrap()).collect();
    assert!(of("charges")
        .filter(|c| c["status"] == "succeeded")
        .all(|c| txns.contains(c["balance_transaction"].as_str().unwrap())));
    // Small sets still have the special cases.
    let small = demo_dataset(4, 9);
    assert!(small.iter().any(|(r, v)| *r == "charges" && v["currency"] == "jpy"));
    assert!(small.iter().any(|(r, v)| *r == "charges" && v["currency"] == "eur"));
}

#[tokio::test]
async fn seeded_demo_data_is_served() {
    let sb = sandbox().await;
    let summary = sb.seed_demo_dataset(30, 3);
    assert_eq!(sb.count("customers"), 30);
    assert_eq!(sb.count("charges"), summary.count("charges"));
    let (_, body) = get(&sb, "/v1/customers?limit=100").await;
    assert_eq!(ids(&body).len(), 30);
}

#[tokio::test]
async fn refund_charge_updates_the_charge() {
    let sb = sandbox().await;
    sb.insert_charge(Seed::charge("ch_r", Some("cus_1"), 1000, "usd", 10), None);
    let re = sb.refund_charge("ch_r", 400).unwrap();
    let c = sb.get("charges", "ch_r").unwrap();
    assert_eq!((c["amount_refunded"].as_i64(), c["refunded"].as_bool()), (Some(400), Some(false)));
    sb.refund_charge("ch_r", 600).unwrap();
    let c = sb.get("charges", "ch_r").unwrap();
    assert_eq!(c["refunded"], true);
    assert_eq!(sb.get("refunds", &re).unwrap()["amount"], 400);
    assert!(sb.refund_charge("ch_none", 1).is_none());
}

#[test]
fn masks_keys_like_stripe() {
    assert_eq!(mask_key("sk_test_abcdefgh1234"), "sk_test_****1234");
    assert_eq!(mask_key("rk_live_zz9876"), "rk_live_****9876");
}

/// Times `n` sequential requests one by one.
async fn timed(sb: &StripeSandbox, n: usize) -> Vec<Duration> {
    let mut out = Vec::new();
    for _ in 0..n {
        let started = std::time::Instant::now();
        assert_eq!(get(sb, "/v1/customers").await.0, 200);
        out.push(started.elapsed());
    }
    out
}

#[tokio::test]
async fn answers_at_once_by_default_and_after_the_configured_latency_with_jitter() {
    let sb = sandbox().await;
    assert!(timed(&sb, 3).await.iter().all(|d| *d < Duration::from_millis(40)), "no latency by default");

    let opts = StripeSandboxOptions::default().with_latency(Duration::from_millis(60), Duration::from_millis(30));
    let sb = StripeSandbox::start(opts).await.unwrap();
    let times = timed(&sb, 12).await;
    assert!(times.iter().all(|d| *d >= Duration::from_millis(30)), "at least latency − jitter: {times:?}");
    let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(*max - *min > Duration::from_millis(5), "jittered, not constant: {times:?}");

    // A pace, not a fault: clear_faults keeps it; it can be changed at run time.
    sb.clear_faults();
    assert_eq!(
        sb.response_latency(),
        crate::latency::Latency::new(Duration::from_millis(60), Duration::from_millis(30))
    );
    sb.set_response_latency(Duration::ZERO, Duration::ZERO);
    assert!(timed(&sb, 3).await.iter().all(|d| *d < Duration::from_millis(25)));
}

/// `n` requests at once with `key`: their statuses and the 429 bodies.
async fn at_once(sb: &StripeSandbox, key: &str, n: usize) -> Vec<(u16, Value)> {
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let req = client.get(format!("{}/v1/customers", sb.base_url())).bearer_auth(key);
            tokio::spawn(async move {
                let resp = req.send().await.unwrap();
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_account_rate_limit_is_shared_by_every_key_and_client_of_the_sandbox() {
    let opts = StripeSandboxOptions::default()
        .with_restricted_key(RK, &["customers"])
        .with_rate_limit(RateLimit { per_second: 10, ..RateLimit::TEST });
    let sb = StripeSandbox::start(opts).await.unwrap();
    // Eight each: under the limit for either key alone, over it together.
    let (a, b) = tokio::join!(at_once(&sb, DEFAULT_SECRET_KEY, 8), at_once(&sb, RK, 8));
    let all: Vec<&(u16, Value)> = a.iter().chain(b.iter()).collect();
    let limited: Vec<&&(u16, Value)> = all.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "16 requests at once against 10 per second: {:?}", sb.rate_stats());
    assert!(all.iter().all(|(s, _)| *s == 200 || *s == 429));
    for (_, body) in &limited {
        assert_eq!(body["error"]["code"], "rate_limit");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    let stats = sb.rate_stats();
    assert_eq!(stats.requests, 16);
    assert_eq!(stats.rate_limited, limited.len() as u64);
    assert_eq!(sb.status_count(429), stats.rate_limited);
    assert!(stats.peak_per_second > 10, "{stats:?}");
    sb.reset_rate_stats();
    assert_eq!(sb.rate_stats(), RateStats::default());
    sb.set_rate_limit(None);
    assert!(at_once(&sb, DEFAULT_SECRET_KEY, 12).await.iter().all(|(s, _)| *s == 200), "lifted at run time");
    assert_eq!(sb.rate_limit(), None);
}

#[tokio::test]
async fn without_a_limit_the_account_is_only_counted_and_observers_are_outside_it() {
    const OBSERVER: &str = "sk_test_observer_00000000000000000000000";
    let sb = StripeSandbox::start(StripeSandboxOptions::default().with_observer_key(OBSERVER)).await.unwrap();
    assert_eq!(sb.rate_limit(), None, "off by default");
    assert!(at_once(&sb, DEFAULT_SECRET_KEY, 30).await.iter().all(|(s, _)| *s == 200));
    let stats = sb.rate_stats();
    assert_eq!((stats.requests, stats.rate_limited), (30, 0));
    assert!(stats.peak_per_second >= 1);

    sb.set_rate_limit(Some(RateLimit::per_second(1)));
    assert!(at_once(&sb, OBSERVER, 5).await.iter().all(|(s, _)| *s == 200), "an observer is never limited");
    assert_eq!(get_with(&sb, Some("sk_test_unknown_key_1234"), "/v1/customers").await.0, 401);
    assert_eq!(sb.rate_stats(), stats, "neither an observer nor an unknown key is the account's");
}
