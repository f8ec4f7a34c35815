//! List changes and reads against wiremock.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::test_support::*;
use super::*;

#[tokio::test]
async fn changes_lists_in_chunks_of_150_and_treats_already_in_list_as_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts/lists/20/contacts/add"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": "invalid_parameter", "message": "Contact already in list and/or does not exist"}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts/lists/20/contacts/add"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"contacts": {"success": ["a@x.io"], "failure": []}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts/lists/22/contacts/remove"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": "invalid_parameter", "message": "Contact not in list and/or does not exist"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let emails: Vec<String> = (0..320).map(|i| format!("u{i}@example.com")).collect();
    let c = client(&server);
    let out = c.add_to_list(20, &emails).await.unwrap();
    assert_eq!(out.requests, 3);
    assert_eq!(out.unchanged, 150);
    assert_eq!(out.changed, 2, "one success reported per later chunk");
    let sizes: Vec<usize> =
        received(&server).await.iter().map(|r| json_body(r)["emails"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, vec![150, 150, 20]);
    let removed = c.remove_from_list(22, &emails[..3]).await.unwrap();
    assert_eq!((removed.changed, removed.unchanged), (0, 3));
}

#[tokio::test]
async fn a_missing_list_is_not_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": "document_not_found", "message": "List ID does not exist"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/contacts/lists/21"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 21, "name": "subscribers", "totalSubscribers": 4})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/contacts/lists/99"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": "document_not_found", "message": "List ID does not exist"})),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    let err = c.add_to_list(99, &["a@example.com".to_owned()]).await.unwrap_err();
    assert!(matches!(err, BrevoError::NotFound { .. }), "{err:?}");
    assert!(c.list_exists(21).await.unwrap());
    assert!(!c.list_exists(99).await.unwrap());
    assert_eq!(c.list(21).await.unwrap().unwrap().name, "subscribers");
}

#[tokio::test]
async fn lists_every_page_of_a_lists_contacts_modified_since_a_time() {
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    let page = |from: usize, n: usize| {
        let contacts: Vec<_> = (from..from + n)
            .map(|i| json!({"email": format!("U{i}@Example.com"), "id": i, "modifiedAt": "2026-01-02T03:04:06.000Z"}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"contacts": contacts, "count": 503}))
    };
    for (offset, from, n) in [("0", 0, 500), ("500", 500, 3)] {
        Mock::given(method("GET"))
            .and(path("/v3/contacts/lists/20/contacts"))
            .and(query_param("modifiedSince", "2026-01-02T03:04:05.000Z"))
            .and(query_param("limit", "500"))
            .and(query_param("offset", offset))
            .and(query_param("sort", "asc"))
            .respond_with(page(from, n))
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let listed = c.contacts_modified_since(20, 1_767_323_045).await.unwrap();
    assert_eq!(listed.len(), 503);
    assert_eq!(listed[502].email, "u502@example.com", "lower-cased");
    assert_eq!(listed[0].modified_at, "2026-01-02T03:04:06.000Z");
    assert_eq!(c.stats().contacts.requests, 2, "a listing is in the contacts family");
}
