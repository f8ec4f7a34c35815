//! Attribute creation and its cache against wiremock.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::test_support::*;
use super::*;

#[tokio::test]
async fn creates_only_missing_attributes_and_caches_what_exists() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/contacts/attributes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"attributes": [
            {"name": "FIRSTNAME", "category": "normal", "type": "text"},
            {"name": "TOTAL_SPENT", "category": "normal", "type": "text"},
            {"name": "SMS", "category": "normal", "type": "text"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts/attributes/normal/LTV"))
        .and(body_partial_json(json!({"type": "float"})))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts/attributes/normal/SUB_START_DATE"))
        .and(body_partial_json(json!({"type": "date"})))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": "invalid_parameter", "message": "Attribute name must be unique"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let wanted: BTreeMap<String, AttributeType> = [
        ("FIRSTNAME", AttributeType::Text),
        ("TOTAL_SPENT", AttributeType::Float),
        ("LTV", AttributeType::Float),
        ("SUB_START_DATE", AttributeType::Date),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let c = client(&server);
    let report = c.ensure_attributes(&wanted).await.unwrap();
    assert_eq!(report.created, vec!["LTV".to_owned()]);
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(report.mismatched[0].name, "TOTAL_SPENT");
    // Cached: a second call sends nothing.
    let again = c.ensure_attributes(&wanted).await.unwrap();
    assert!(again.created.is_empty());
    assert_eq!(received(&server).await.len(), 3);
}
