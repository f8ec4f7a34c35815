//! The real `stripe-webhook` handler driven with `lambda_http` requests built
//! from the samples in `events/` (API Gateway v2, REST v1, Function URL), and
//! a table of hostile input. Queue and clock are the in-memory fakes; the SQS
//! adapter itself is tested against moto in `tests/tests/webhook_sqs.rs`.

use base64::Engine;
use lambda_http::{Body, Request};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::memory::{FixedClock, MemoryQueue};
use shared::adapters::secrets::{LazySecret, SecretSource};
use shared::domain::signature::sign_header;
use shared::ports::Source;
use stripe_webhook::{handle, App};

const SECRET: &str = "whsec_test_primary";
const SECOND: &str = "whsec_test_rotated";
const NOW: i64 = 1_763_800_100;

fn sample(path: &str) -> Value {
    let p = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))).expect("sample is JSON")
}

fn raw_event(etype: &str) -> String {
    serde_json::to_string(&sample(&format!("stripe/{etype}.json"))).expect("serialises")
}

fn app(secrets: &str) -> App<MemoryQueue, FixedClock> {
    let secret =
        LazySecret::new("STRIPE_WEBHOOK_SECRET", SecretSource::Value(SecretString::from(secrets.to_owned())), None);
    App::new(MemoryQueue::new(), FixedClock::at(NOW), secret, 300)
}

/// An API Gateway v2 request with the given method, header and body.
fn v2_request(method: &str, signature: Option<&str>, body: &str, base64_body: bool) -> Request {
    let mut ev = sample("webhook/apigw-v2/customer.created.json");
    ev["requestContext"]["http"]["method"] = json!(method);
    ev["routeKey"] = json!(format!("{method} /webhooks/stripe"));
    let headers = ev["headers"].as_object_mut().expect("headers");
    headers.remove("stripe-signature");
    if let Some(s) = signature {
        headers.insert("stripe-signature".into(), json!(s));
    }
    if base64_body {
        ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
        ev["isBase64Encoded"] = json!(true);
    } else {
        ev["body"] = json!(body);
        ev["isBase64Encoded"] = json!(false);
    }
    lambda_http::request::from_str(&ev.to_string()).expect("valid API Gateway v2 request")
}

async fn call(app: &App<MemoryQueue, FixedClock>, req: Request) -> (u16, String) {
    let resp = handle(app, req).await;
    let status = resp.status().as_u16();
    let body = match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    (status, body)
}

#[tokio::test]
async fn every_sample_event_type_is_verified_and_queued() {
    let dir = format!("{}/../../events/webhook/apigw-v2", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("events/webhook/apigw-v2 exists") {
        let path = entry.expect("entry").path();
        let req: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let body = req["body"].as_str().expect("body").to_owned();
        let event: Value = serde_json::from_str(&body).expect("event json");
        let app = app(SECRET);
        let sig = sign_header(&[SECRET], NOW, body.as_bytes());
        let (status, answer) = call(&app, v2_request("POST", Some(&sig), &body, false)).await;
        assert_eq!((status, answer.as_str()), (200, r#"{"received":true}"#), "{}", path.display());
        let queued = app.queue.messages();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].event_id, event["id"].as_str().expect("id"));
        assert_eq!(queued[0].event_type, event["type"].as_str().expect("type"));
        assert_eq!(queued[0].livemode, Some(false));
        assert_eq!(queued[0].source, Source::Webhook);
        assert_eq!(queued[0].body, body, "the raw body is queued byte for byte");
        n += 1;
    }
    assert!(n >= 10, "expected a sample per handled type, found {n}");
}

#[tokio::test]
async fn a_rest_api_v1_request_is_accepted() {
    let mut ev = sample("webhook/apigw-v1/customer.created.json");
    let body = ev["body"].as_str().expect("body").to_owned();
    let sig = sign_header(&[SECRET], NOW, body.as_bytes());
    ev["headers"]["Stripe-Signature"] = json!(sig);
    ev["multiValueHeaders"]["Stripe-Signature"] = json!([sig]);
    let app = app(SECRET);
    let req = lambda_http::request::from_str(&ev.to_string()).expect("valid REST request");
    assert_eq!(call(&app, req).await.0, 200);
    assert_eq!(app.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_function_url_request_with_a_base64_body_is_decoded_before_verifying() {
    let mut ev = sample("webhook/function-url/customer.created.json");
    assert_eq!(ev["isBase64Encoded"], json!(true));
    let body = base64::engine::general_purpose::STANDARD.decode(ev["body"].as_str().expect("body")).expect("base64");
    ev["headers"]["stripe-signature"] = json!(sign_header(&[SECRET], NOW, &body));
    let app = app(SECRET);
    let req = lambda_http::request::from_str(&ev.to_string()).expect("valid Function URL request");
    assert_eq!(call(&app, req).await.0, 200);
    assert_eq!(app.queue.messages()[0].body.as_bytes(), &body[..]);
}

struct Case {
    name: &'static str,
    method: &'static str,
    signature: Option<String>,
    body: String,
    base64: bool,
    secrets: &'static str,
    status: u16,
    code: &'static str,
    queued: usize,
}

#[tokio::test]
async fn hostile_input_gets_the_exact_status_and_never_an_echo() {
    let good = raw_event("payment_intent.succeeded");
    let sig = |secrets: &[&str], t: i64, body: &str| sign_header(secrets, t, body.as_bytes());
    let tampered = good.replace("2000", "1");
    assert_ne!(tampered, good);
    let v1_good = sign_header(&[SECRET], NOW, good.as_bytes());
    let two_v1_good_second = format!("t={NOW},v1={},{}", "0".repeat(64), v1_good.split_once(',').expect("comma").1);
    let not_json = "this is not json".to_owned();
    let not_event = r#"{"id":"cus_123","object":"customer"}"#.to_owned();
    let huge = format!(
        r#"{{"id":"evt_big","object":"event","type":"x.y","created":1,"data":{{"object":{{"pad":"{}"}}}}}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let cases = vec![
        Case {
            name: "valid",
            method: "POST",
            signature: Some(v1_good.clone()),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 200,
            code: "",
            queued: 1,
        },
        Case {
            name: "tampered body",
            method: "POST",
            signature: Some(v1_good.clone()),
            body: tampered,
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "signature_mismatch",
            queued: 0,
        },
        Case {
            name: "wrong secret",
            method: "POST",
            signature: Some(sig(&["whsec_other"], NOW, &good)),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "signature_mismatch",
            queued: 0,
        },
        Case {
            name: "second configured secret",
            method: "POST",
            signature: Some(sig(&[SECOND], NOW, &good)),
            body: good.clone(),
            base64: false,
            secrets: "whsec_test_primary,whsec_test_rotated",
            status: 200,
            code: "",
            queued: 1,
        },
        Case {
            name: "two v1, good one second",
            method: "POST",
            signature: Some(two_v1_good_second),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 200,
            code: "",
            queued: 1,
        },
        Case {
            name: "v0 only",
            method: "POST",
            signature: Some(format!("t={NOW},v0={}", "a".repeat(64))),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "no_v1_signature",
            queued: 0,
        },
        Case {
            name: "timestamp 301 s old",
            method: "POST",
            signature: Some(sig(&[SECRET], NOW - 301, &good)),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "timestamp_out_of_tolerance",
            queued: 0,
        },
        Case {
            name: "timestamp 301 s ahead",
            method: "POST",
            signature: Some(sig(&[SECRET], NOW + 301, &good)),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "timestamp_out_of_tolerance",
            queued: 0,
        },
        Case {
            name: "timestamp 300 s old",
            method: "POST",
            signature: Some(sig(&[SECRET], NOW - 300, &good)),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 200,
            code: "",
            queued: 1,
        },
        Case {
            name: "t=abc",
            method: "POST",
            signature: Some(format!("t=abc,v1={}", "a".repeat(64))),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "malformed_signature",
            queued: 0,
        },
        Case {
            name: "t=123junk",
            method: "POST",
            signature: Some(format!("t=123junk,v1={}", "a".repeat(64))),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "malformed_signature",
            queued: 0,
        },
        Case {
            name: "empty header",
            method: "POST",
            signature: Some(String::new()),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "malformed_signature",
            queued: 0,
        },
        Case {
            name: "no header",
            method: "POST",
            signature: None,
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "missing_signature",
            queued: 0,
        },
        Case {
            name: "empty body",
            method: "POST",
            signature: Some(sig(&[SECRET], NOW, "")),
            body: String::new(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "invalid_event",
            queued: 0,
        },
        Case {
            name: "non-JSON with a valid signature",
            method: "POST",
            signature: Some(sig(&[SECRET], NOW, &not_json)),
            body: not_json.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "invalid_event",
            queued: 0,
        },
        Case {
            name: "JSON that is not an event",
            method: "POST",
            signature: Some(sig(&[SECRET], NOW, &not_event)),
            body: not_event.clone(),
            base64: false,
            secrets: SECRET,
            status: 400,
            code: "invalid_event",
            queued: 0,
        },
        Case {
            name: "2 MiB body",
            method: "POST",
            signature: Some(sig(&[SECRET], NOW, &huge)),
            body: huge.clone(),
            base64: false,
            secrets: SECRET,
            status: 413,
            code: "body_too_large",
            queued: 0,
        },
        Case {
            name: "GET",
            method: "GET",
            signature: Some(v1_good.clone()),
            body: good.clone(),
            base64: false,
            secrets: SECRET,
            status: 405,
            code: "method_not_allowed",
            queued: 0,
        },
        Case {
            name: "base64 body",
            method: "POST",
            signature: Some(v1_good.clone()),
            body: good.clone(),
            base64: true,
            secrets: SECRET,
            status: 200,
            code: "",
            queued: 1,
        },
    ];
    for c in cases {
        let app = app(c.secrets);
        let (status, answer) = call(&app, v2_request(c.method, c.signature.as_deref(), &c.body, c.base64)).await;
        assert_eq!(status, c.status, "{}: {answer}", c.name);
        if c.status == 200 {
            assert_eq!(answer, r#"{"received":true}"#, "{}", c.name);
        } else {
            let v: Value = serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{}: JSON error body", c.name));
            assert_eq!(v["error"], json!(c.code), "{}", c.name);
            assert!(answer.len() < 80, "{}: short answer", c.name);
        }
        for secret in [SECRET, SECOND] {
            assert!(!answer.contains(secret), "{}: echoes a secret", c.name);
        }
        assert!(!answer.contains("pi_") && !answer.contains("cus_"), "{}: echoes the body", c.name);
        assert_eq!(app.queue.messages().len(), c.queued, "{}", c.name);
    }
}

#[tokio::test]
async fn a_duplicate_delivery_is_acknowledged_and_queued_again_for_the_consumer_to_dedup() {
    let body = raw_event("invoice.payment_failed");
    let app = app(SECRET);
    for _ in 0..2 {
        let sig = sign_header(&[SECRET], NOW, body.as_bytes());
        assert_eq!(call(&app, v2_request("POST", Some(&sig), &body, false)).await.0, 200);
    }
    let q = app.queue.messages();
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].event_id, q[1].event_id, "both copies carry the same event id");
}

#[tokio::test]
async fn a_thin_event_is_queued_as_such() {
    let body = r#"{"id":"evt_test_65R9Ijk8ilLMRcGs8n","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","livemode":false,"created":"2025-11-22T08:26:40.000Z","related_object":{"id":"mtr_test_61R9","type":"billing.meter","url":"/v1/billing/meters/mtr_test_61R9"}}"#;
    let app = app(SECRET);
    let sig = sign_header(&[SECRET], NOW, body.as_bytes());
    assert_eq!(call(&app, v2_request("POST", Some(&sig), body, false)).await.0, 200);
    assert_eq!(app.queue.messages()[0].event_type, "v1.billing.meter.error_report_triggered");
}

#[tokio::test]
async fn a_queue_outage_answers_503_without_internal_text() {
    let body = raw_event("customer.created");
    let app = app(SECRET);
    app.queue.set_down(true);
    let sig = sign_header(&[SECRET], NOW, body.as_bytes());
    let (status, answer) = call(&app, v2_request("POST", Some(&sig), &body, false)).await;
    assert_eq!(status, 503);
    assert_eq!(answer, r#"{"error":"queue_unavailable"}"#);
    app.queue.set_down(false);
    assert_eq!(call(&app, v2_request("POST", Some(&sig), &body, false)).await.0, 200, "Stripe's retry succeeds");
}

#[tokio::test]
async fn an_unloadable_secret_answers_503_so_stripe_retries() {
    let secret = LazySecret::new("STRIPE_WEBHOOK_SECRET", SecretSource::SecretsManager { id: "missing".into() }, None);
    let app = App::new(MemoryQueue::new(), FixedClock::at(NOW), secret, 300);
    let body = raw_event("customer.created");
    let sig = sign_header(&[SECRET], NOW, body.as_bytes());
    let (status, answer) = call(&app, v2_request("POST", Some(&sig), &body, false)).await;
    assert_eq!(status, 503);
    assert!(!answer.contains("missing"));
    assert!(app.queue.messages().is_empty());
}

#[tokio::test]
async fn the_content_type_does_not_matter_only_the_signed_body_does() {
    let body = raw_event("customer.created");
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""] {
        let app = app(SECRET);
        let mut ev = sample("webhook/apigw-v2/customer.created.json");
        ev["headers"]["content-type"] = json!(ct);
        ev["headers"]["stripe-signature"] = json!(sign_header(&[SECRET], NOW, body.as_bytes()));
        ev["body"] = json!(body);
        let req = lambda_http::request::from_str(&ev.to_string()).expect("request");
        assert_eq!(call(&app, req).await.0, 200, "content-type {ct:?}");
        // The same body unsigned is refused whatever it claims to be.
        let mut bad = ev.clone();
        bad["headers"]["stripe-signature"] = json!(sign_header(&["whsec_wrong"], NOW, body.as_bytes()));
        let req = lambda_http::request::from_str(&bad.to_string()).expect("request");
        assert_eq!(call(&app, req).await.0, 400, "content-type {ct:?}");
    }
}

#[tokio::test]
async fn header_injection_attempts_are_refused_and_never_reflected() {
    let body = raw_event("customer.created");
    let good = sign_header(&[SECRET], NOW, body.as_bytes());
    let app = app(SECRET);
    for hostile in [
        format!("{good}\r\nX-Injected: 1"),
        format!("t={NOW}\nv1=abc"),
        format!("{good},t=1"),
        format!("t={NOW},v1={}", "a".repeat(10_000)),
        format!("{},v1=00", ",".repeat(100)),
        "t=\u{0}1,v1=00".to_owned(),
    ] {
        let answer = shared::pipeline::ingest::handle_webhook(
            &shared::domain::signature::Verifier::new(vec![SecretString::from(SECRET.to_owned())], 300),
            &app.queue,
            &app.clock,
            shared::pipeline::ingest::WebhookRequest {
                method: "POST",
                signature: Some(&hostile),
                body: body.as_bytes(),
            },
        )
        .await;
        assert_eq!(answer.status, 400, "{hostile:.60}");
        assert!(!answer.body.contains("X-Injected") && !answer.body.contains('\n'), "{}", answer.body);
    }
    assert!(app.queue.messages().is_empty());
}
