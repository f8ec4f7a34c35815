//! Events, batches and 207 partial successes against wiremock.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::test_support::*;

#[tokio::test]
async fn sends_one_event_alone_and_many_in_batches_of_at_most_200() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/events"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/events/batch"))
        .respond_with(ResponseTemplate::new(201))
        .expect(3)
        .mount(&server)
        .await;
    let c = client(&server);
    let one = c.send_events(&[event(0)]).await.unwrap();
    assert_eq!((one.sent, one.requests), (1, 1));
    let many: Vec<_> = (0..450).map(event).collect();
    let out = c.send_events(&many).await.unwrap();
    assert_eq!((out.sent, out.requests), (450, 3));
    assert!(out.all_sent());
    let sizes: Vec<usize> = received(&server)
        .await
        .iter()
        .filter(|r| r.url.path() == "/v3/events/batch")
        .map(|r| json_body(r)["events"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![200, 200, 50]);
    let single = &received(&server).await[0];
    assert_eq!(json_body(single)["identifiers"]["email_id"], "user0@example.com");
}

#[tokio::test]
async fn reports_which_events_failed_in_a_207_partial_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/events/batch"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({
            "errors": [{"index": 1, "message": "Invalid event_name"}, {"index": 3, "message": "bad identifiers for x@example.com"}]
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/events/batch"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let events: Vec<_> = (0..205).map(event).collect();
    let out = client(&server).send_events(&events).await.unwrap();
    // First chunk: 198 sent, 1 and 3 failed; second chunk (5) failed on 500s.
    assert_eq!(out.sent, 198);
    let idx: Vec<usize> = out.failed.iter().map(|f| f.index).collect();
    assert_eq!(idx, vec![1, 3, 200, 201, 202, 203, 204]);
    assert!(!out.failed[0].retryable && out.failed[2].retryable);
    assert!(!out.failed[1].message.contains("x@example.com"));
}

#[tokio::test]
async fn a_batch_refused_outright_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/events/batch"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": "invalid_parameter", "message": "too many events"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let events: Vec<_> = (0..3).map(event).collect();
    let err = client(&server).send_events(&events).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_parameter"));
}

#[tokio::test]
async fn a_207_never_reports_an_accepted_event_failed_whatever_the_index_shape() {
    // Brevo has written the index as a number, a numeric string and a list;
    // one failure carries no index at all. Only the named events failed.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/events/batch"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({
            "errors": [
                {"eventIndex": [0, 4], "message": "Invalid event_name"},
                {"index": "2", "message": "bad date"},
                {"message": "something without an index"}
            ]
        })))
        .mount(&server)
        .await;
    let events: Vec<_> = (0..6).map(event).collect();
    let out = client(&server).send_events(&events).await.unwrap();
    let idx: Vec<usize> = out.failed.iter().map(|f| f.index).collect();
    assert_eq!(idx, vec![0, 2, 4], "only the events Brevo named are failed");
    assert_eq!(out.sent, 3, "the others were taken and are never sent again");
    // A 207 with no readable detail: nothing is taken as failed (at most once).
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/events/batch"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({"status": "partial"})))
        .mount(&server)
        .await;
    let out = client(&server).send_events(&events).await.unwrap();
    assert!(out.failed.is_empty() && out.sent == 6, "{out:?}");
}
