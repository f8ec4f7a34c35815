//! Contact upserts and imports against wiremock.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::{BrevoClient, BrevoError};
use crate::domain::brevo::AttributeValue;

use super::super::test_support::*;
use super::*;

#[tokio::test]
async fn upserts_a_contact_with_update_enabled_and_reports_created_or_updated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts"))
        .and(header("api-key", KEY))
        .and(header("accept", "application/json"))
        .and(body_partial_json(json!({
            "email": "jane@example.com", "updateEnabled": true,
            "listIds": [20, 21],
            "attributes": {"TOTAL_SPENT": 12.5, "FIRSTNAME": "Jane"}
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 7})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let body = crate::adapters::brevo::wire::contact_body(&contact("jane@example.com"));
    assert!(body.get("unlinkListIds").is_none(), "createContact has no unlinkListIds: {body}");
    let first = c.upsert_contact(&contact("jane@example.com")).await.unwrap();
    assert!(first.created && !first.sms_dropped);
    let second = c.upsert_contact(&contact("jane@example.com")).await.unwrap();
    assert!(!second.created);
    assert_eq!(c.stats().contacts.requests, 2);
    assert_eq!(c.stats().total_requests(), 2);
}

#[tokio::test]
async fn surfaces_brevo_code_and_message_on_400_without_retrying_or_leaking_the_email() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                json!({"code": "invalid_parameter", "message": "Invalid email address jane@example.com"}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).upsert_contact(&contact("jane@example.com")).await.unwrap_err();
    match &err {
        BrevoError::BadRequest { status, code, message, .. } => {
            assert_eq!(*status, 400);
            assert_eq!(code, "invalid_parameter");
            assert!(message.starts_with("Invalid email address"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("jane@example.com"), "{err}");
    assert!(err.to_string().contains("invalid_parameter"));
}

#[tokio::test]
async fn splits_an_import_that_would_exceed_the_size_limit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts/import"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"processId": 78})))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.max_import_bytes = 2_000;
    let c = BrevoClient::new(cfg).unwrap();
    let contacts: Vec<_> = (0..50).map(|i| contact(&format!("user{i}@example.com"))).collect();
    let receipt = c.import_contacts(&contacts, &[20]).await.unwrap();
    assert!(receipt.requests > 1, "{receipt:?}");
    assert_eq!(receipt.contacts, 50);
    assert_eq!(receipt.process_ids.len(), receipt.requests);
    assert_eq!(receipt.processes.len(), receipt.requests);
    assert!(receipt.processes.iter().all(|p| p.process_id == Some(78)));
    assert_eq!(receipt.processes.iter().map(|p| p.contacts).sum::<usize>(), 50, "each import says how many it holds");
    let mut seen = Vec::new();
    for r in received(&server).await {
        assert!(r.body.len() <= 2_000, "body of {} bytes", r.body.len());
        let v = json_body(&r);
        assert_eq!(v["listIds"], json!([20]));
        assert_eq!(v["updateExistingContacts"], json!(true));
        assert_eq!(v["emptyContactsAttributes"], json!(false));
        for item in v["jsonBody"].as_array().unwrap() {
            assert_eq!(item["attributes"]["TOTAL_SPENT"], json!(12.5));
            seen.push(item["email"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..50).map(|i| format!("user{i}@example.com")).collect();
    assert_eq!(seen, expected, "every contact once, in order");
    assert_eq!(c.import_contacts(&[], &[20]).await.unwrap().requests, 0);
}

#[tokio::test]
async fn drops_the_sms_and_retries_once_when_brevo_rejects_the_number() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts"))
        .and(body_partial_json(json!({"attributes": {"SMS": "+33612345678"}})))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": "invalid_parameter", "message": "Invalid phone number"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/contacts"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = contact("jane@example.com");
    c.attributes.insert(SMS_ATTRIBUTE.into(), AttributeValue::Text("+33612345678".into()));
    let out = client(&server).upsert_contact(&c).await.unwrap();
    assert!(out.sms_dropped && out.created);
    assert!(out.sms_error.unwrap().contains("Invalid phone number"));
    let reqs = received(&server).await;
    let second = json_body(&reqs[1]);
    assert!(second["attributes"].get("SMS").is_none());
    assert_eq!(second["attributes"]["FIRSTNAME"], "Jane");
}

#[tokio::test]
async fn a_phone_error_without_an_sms_attribute_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": "invalid_parameter", "message": "Invalid phone number"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).upsert_contact(&contact("jane@example.com")).await.unwrap_err();
    assert!(matches!(err, BrevoError::BadRequest { .. }));
}
