//! Paging through lists against wiremock: cursors both ways, stopping
//! without a cursor, and bodies that are not a list.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::test_support::{client, list, Obj};
use super::*;

#[tokio::test]
async fn pages_through_a_list_with_starting_after_the_last_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&["cus_c", "cus_b"], true)))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("starting_after", "cus_b"))
        .and(query_param("created[gte]", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&["cus_a"], false)))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let mut seen = Vec::new();
    let n = c
        .list_all::<Obj, _>("/v1/customers", &[("created[gte]", "100".to_owned())], |page| {
            seen.extend(page.into_iter().map(|o| o.id))
        })
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(seen, ["cus_c", "cus_b", "cus_a"]);
    assert_eq!(c.stats().requests, 2);

    // The same first page through list_page exposes the cursor.
    let first: Page<Obj> = c.list_page("/v1/customers", &[], None).await.unwrap();
    assert_eq!(first.next_cursor.as_deref(), Some("cus_b"));
    assert!(first.has_more);
}

#[tokio::test]
async fn stops_when_there_is_no_next_cursor_even_if_has_more_is_true() {
    let server = MockServer::start().await;
    // An empty page that still claims has_more: no cursor, so stop.
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&[], true)))
        .expect(1)
        .mount(&server)
        .await;
    // Items without ids: nothing to continue from either.
    Mock::given(method("GET"))
        .and(path("/v1/balance_history"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object":"list","has_more":true,"data":[{"amount":1}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let n = c.list_all::<Value, _>("/v1/events", &[], |_| {}).await.unwrap();
    assert_eq!(n, 0);
    let mut pager = c.pager::<Value>("/v1/balance_history", &[]);
    assert_eq!(pager.next_page().await.unwrap().map(|p| p.len()), Some(1));
    assert!(pager.is_done());
    assert!(pager.next_page().await.unwrap().is_none());
    assert_eq!(c.stats().requests, 2);
}

#[tokio::test]
async fn pager_walks_backwards_with_ending_before_the_first_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("ending_before", "evt_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&["evt_3", "evt_2"], true)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("ending_before", "evt_3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&["evt_4"], false)))
        .mount(&server)
        .await;
    let c = client(&server);
    let mut pager = c.pager::<Obj>("/v1/events", &[]).ending_before("evt_1");
    let p1: Vec<String> = pager.next_page().await.unwrap().unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(p1, ["evt_3", "evt_2"]);
    assert_eq!(pager.cursor(), Some(&Cursor::EndingBefore("evt_3".to_owned())));
    let p2: Vec<String> = pager.next_page().await.unwrap().unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(p2, ["evt_4"]);
    assert!(pager.next_page().await.unwrap().is_none());
}

#[tokio::test]
async fn a_body_that_is_not_the_expected_json_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200).set_body_string("<html>")).mount(&server).await;
    let c = client(&server);
    let e = c.list_page::<Obj>("/v1/customers", &[], None).await.unwrap_err();
    assert!(matches!(e, StripeError::Decode(_)));
    assert!(!e.is_retryable());
}
