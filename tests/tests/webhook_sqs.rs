//! The webhook handler with the real SQS adapter against moto: the message
//! lands with its attributes; an unreachable SQS gives Stripe a 5xx and the
//! cause is logged; with moto's process killed Stripe gets a 5xx, and its
//! retry after moto is back is queued. And the adapter's receive side (what
//! `stripe-brevo --aws` works the queue with): attributes read back, retry
//! later, acknowledge, counts, the dead-letter queue from the redrive policy.

use e2e_tests::{aws, aws_unreachable, create_queue, unique, LogCapture, MotoProcess};
use lambda_http::{Body, Request};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::adapters::secrets::{LazySecret, SecretSource};
use shared::adapters::sqs::{MessageAttributes, QueueCounts, SqsQueue};
use shared::domain::signature::sign_header;
use shared::ports::{EventQueue, QueueMessage, Source, SystemClock};
use stripe_webhook::{handle, App};
use tracing::instrument::WithSubscriber;

const SECRET: &str = "whsec_moto_test";

fn request(body: &str) -> Request {
    let path = format!("{}/../events/webhook/apigw-v2/customer.created.json", env!("CARGO_MANIFEST_DIR"));
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
    let now = time_now();
    ev["headers"]["stripe-signature"] = json!(sign_header(&[SECRET], now, body.as_bytes()));
    ev["body"] = json!(body);
    lambda_http::request::from_str(&ev.to_string()).expect("request")
}

fn time_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn event_body() -> String {
    let path = format!("{}/../events/stripe/invoice.payment_failed.json", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
    v.to_string()
}

fn app(queue: SqsQueue) -> App<SqsQueue, SystemClock> {
    let secret =
        LazySecret::new("STRIPE_WEBHOOK_SECRET", SecretSource::Value(SecretString::from(SECRET.to_owned())), None);
    App::new(queue, SystemClock, secret, 300)
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn a_verified_webhook_lands_on_sqs_with_its_attributes() {
    let aws = aws().await;
    let url = create_queue(&aws, &unique("webhook")).await;
    let client = aws_sdk_sqs::Client::new(&aws);
    let app = app(SqsQueue::new(client.clone(), url.clone()));
    let body = event_body();
    let resp = handle(&app, request(&body)).await;
    assert_eq!(resp.status().as_u16(), 200);

    let got = client
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    let msgs = got.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.body(), Some(body.as_str()));
    let attrs = m.message_attributes().expect("attributes");
    let attr = |k: &str| attrs.get(k).and_then(|a| a.string_value()).map(str::to_owned);
    assert_eq!(attr("event_id").as_deref(), Some("evt_sample_12_invoice_payment_failed"));
    assert_eq!(attr("type").as_deref(), Some("invoice.payment_failed"));
    assert_eq!(attr("source").as_deref(), Some("webhook"));
    assert_eq!(attr("livemode").as_deref(), Some("false"));
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn a_batch_of_25_is_sent_in_groups_of_10_and_all_land() {
    let aws = aws().await;
    let url = create_queue(&aws, &unique("batch")).await;
    let client = aws_sdk_sqs::Client::new(&aws);
    let q = SqsQueue::new(client.clone(), url.clone());
    let msgs: Vec<QueueMessage> = (0..25)
        .map(|i| QueueMessage {
            body: format!(r#"{{"n":{i}}}"#),
            event_id: format!("evt_{i}"),
            event_type: "customer.updated".into(),
            livemode: None,
            source: Source::Poller,
        })
        .collect();
    q.send_all(&msgs).await.expect("sent");
    let attrs = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attrs");
    let n = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .expect("count");
    assert_eq!(n, "25");
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn an_unreachable_queue_answers_503_and_logs_the_cause() {
    let aws = aws_unreachable().await;
    let app = app(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), "http://127.0.0.1:1/000000000000/missing"));
    let logs = LogCapture::default();
    let body = event_body();
    let resp = handle(&app, request(&body)).with_subscriber(logs.subscriber()).await;
    assert_eq!(resp.status().as_u16(), 503);
    let Body::Text(answer) = resp.body() else { panic!("text body") };
    assert_eq!(answer, r#"{"error":"queue_unavailable"}"#);
    let text = logs.text();
    assert!(text.contains("webhook could not be queued"), "{text}");
    assert!(text.contains("evt_sample_12_invoice_payment_failed"), "{text}");
    assert!(
        text.to_lowercase().contains("dispatch") || text.to_lowercase().contains("connect"),
        "cause is logged: {text}"
    );
    assert!(!text.contains(SECRET), "secret leaked into logs");
}

#[tokio::test]
#[ignore = "starts the venv's moto_server: run scripts/test"]
async fn with_moto_stopped_stripe_gets_a_5xx_and_its_retry_after_the_restart_is_queued() {
    let mut moto = MotoProcess::start();
    let aws = moto.aws().await;
    let name = unique("outage");
    let url = create_queue(&aws, &name).await;
    let client = aws_sdk_sqs::Client::new(&aws);
    let app = app(SqsQueue::new(client.clone(), url.clone()));
    let body = event_body();

    moto.stop();
    let resp = handle(&app, request(&body)).await;
    assert_eq!(resp.status().as_u16(), 503, "Stripe must see a failure so it retries");

    // SQS is back (moto restarts empty: the queue is re-created at the same URL).
    moto.restart();
    assert_eq!(create_queue(&aws, &name).await, url);
    let resp = handle(&app, request(&body)).await;
    assert_eq!(resp.status().as_u16(), 200, "Stripe's retry is accepted");
    let got = client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    let msgs = got.messages();
    assert_eq!(msgs.len(), 1, "the retried event is queued once");
    let queued: Value = serde_json::from_str(msgs[0].body().expect("body")).expect("json");
    let sent: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(queued, sent, "the verified raw event, unchanged");
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn received_messages_carry_their_attributes_and_are_retried_or_acknowledged() {
    let aws = aws().await;
    let client = aws_sdk_sqs::Client::new(&aws);
    let dlq_url = create_queue(&aws, &unique("recv-dlq")).await;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attrs")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    let url = client
        .create_queue()
        .queue_name(unique("recv"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}).to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let q = SqsQueue::new(client.clone(), url.clone());
    assert_eq!(q.dead_letter_queue_url().await.as_deref(), Some(dlq_url.as_str()), "found from the redrive policy");
    q.send(&QueueMessage {
        body: event_body(),
        event_id: "evt_recv_1".into(),
        event_type: "invoice.payment_failed".into(),
        livemode: Some(true),
        source: Source::Webhook,
    })
    .await
    .expect("sent");

    let got = q.receive(10, 1, 30).await.expect("received");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, event_body());
    assert_eq!(
        got[0].attributes,
        MessageAttributes {
            event_id: Some("evt_recv_1".into()),
            event_type: Some("invoice.payment_failed".into()),
            source: Some(Source::Webhook),
            livemode: Some(true),
        }
    );
    assert_eq!(got[0].receive_count, 1);
    assert_eq!(q.counts().await.expect("counts").in_flight, 1);

    // Retry later (now), then it comes back as a second delivery.
    q.change_visibility(&got[0].receipt_handle, 0).await.expect("visible again");
    let again = q.receive(10, 1, 30).await.expect("received");
    assert_eq!((again.len(), again[0].message_id.as_str()), (1, got[0].message_id.as_str()));
    assert_eq!(again[0].receive_count, 2);

    q.ack(&again[0].receipt_handle).await.expect("acknowledged");
    assert_eq!(q.counts().await.expect("counts"), QueueCounts::default(), "nothing left");
    assert!(q.receive(10, 0, 30).await.expect("received").is_empty());
}
