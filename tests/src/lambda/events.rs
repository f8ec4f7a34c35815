//! The payloads AWS hands the functions, built the way AWS builds them, and
//! the rules Lambda applies to an SQS function's answer:
//! - [`sqs_event`]: the event source mapping's batch (every field of the
//!   real event: `messageId`, `receiptHandle`, `body`, the system
//!   `attributes` such as `ApproximateReceiveCount`, `messageAttributes` with
//!   `stringValue`/`binaryValue`/`dataType`, `md5OfBody`, `eventSource`,
//!   `eventSourceARN`, `awsRegion`);
//!   <https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html>
//! - [`batch_item_failures`]: which records a partial batch response
//!   returns, or why Lambda would treat the whole batch as failed;
//!   <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>
//! - [`http_api_event`]: an API Gateway HTTP API (payload 2.0) request, on
//!   the shape of `events/webhook/apigw-v2/` (what `scripts/sign-event` signs);
//! - [`scheduled_event`]: an EventBridge scheduled event
//!   (`events/schedule/scheduled.json`) with a fresh id and time.

use std::collections::HashSet;

use aws_sdk_sqs::types::Message;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Lambda's synchronous invocation payload limit (6 MB).
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// The SQS event for `messages` received from the queue `queue_arn`.
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages.iter().map(|m| sqs_record(m, queue_arn, region)).collect();
    json!({ "Records": records })
}

fn sqs_record(m: &Message, queue_arn: &str, region: &str) -> Value {
    let attributes: Map<String, Value> =
        m.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect()).unwrap_or_default();
    let message_attributes: Map<String, Value> = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    let mut attr = json!({
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v.data_type(),
                    });
                    if let Some(s) = v.string_value() {
                        attr["stringValue"] = json!(s);
                    }
                    if let Some(b) = v.binary_value() {
                        attr["binaryValue"] = json!(base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
                    }
                    (k.clone(), attr)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut record = json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    });
    if let Some(md5) = m.md5_of_message_attributes() {
        record["md5OfMessageAttributes"] = json!(md5);
    }
    record
}

/// The size a record adds to the event (for the 6 MB payload limit).
pub fn record_size(m: &Message) -> usize {
    let attrs: usize = m
        .message_attributes()
        .map(|a| a.iter().map(|(k, v)| k.len() + v.string_value().map_or(0, str::len) + 80).sum())
        .unwrap_or(0);
    m.body().map_or(0, str::len) * 6 / 5 + m.receipt_handle().map_or(0, str::len) + attrs + 600
}

/// The message ids an SQS function's answer returns for retry, by Lambda's
/// rules for `ReportBatchItemFailures`: null, `{}`, or a null/empty
/// `batchItemFailures` is complete success; an item without a non-empty
/// string `itemIdentifier` naming a record of the batch, or an answer that
/// is not an object, fails the whole batch (`Err` says why).
pub fn batch_item_failures(response: &Value, batch_ids: &HashSet<String>) -> Result<HashSet<String>, String> {
    let obj = match response {
        Value::Null => return Ok(HashSet::new()),
        Value::Object(o) => o,
        other => return Err(format!("the response is not an object: {other}")),
    };
    let items = match obj.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(HashSet::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
    };
    let mut failed = HashSet::new();
    for item in items {
        match item.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && batch_ids.contains(id) => {
                failed.insert(id.clone());
            }
            Some(Value::String(id)) if !id.is_empty() => {
                return Err(format!("itemIdentifier {id:?} is not in the batch"))
            }
            _ => return Err(format!("an item without a usable itemIdentifier: {item}")),
        }
    }
    Ok(failed)
}

/// An API Gateway HTTP API (payload format 2.0) `POST` of `body` with this
/// `Stripe-Signature`, on the sample request `template` (one of
/// `events/webhook/apigw-v2/*.json`): headers, request context and time
/// refreshed, the body not base64-encoded.
pub fn http_api_event(template: &Value, body: &str, signature: &str, request_id: &str) -> Value {
    let mut e = template.clone();
    let now_ms = epoch_ms();
    e["body"] = json!(body);
    e["isBase64Encoded"] = json!(false);
    e["headers"]["stripe-signature"] = json!(signature);
    e["headers"]["content-length"] = json!(body.len().to_string());
    e["requestContext"]["requestId"] = json!(request_id);
    e["requestContext"]["timeEpoch"] = json!(now_ms);
    e
}

/// The status code of an HTTP API answer (`{"statusCode": …}`).
pub fn http_status(response: &Value) -> Option<u16> {
    response.get("statusCode").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok())
}

/// An EventBridge scheduled event on the sample `template`
/// (`events/schedule/scheduled.json`), with a fresh `id` and `time`.
pub fn scheduled_event(template: &Value, id: &str) -> Value {
    let mut e = template.clone();
    e["id"] = json!(id);
    e["time"] = json!(rfc3339_now());
    e
}

/// A sample event from the workspace's `events/` (panics when missing).
pub fn sample(relative: &str) -> Value {
    let path = super::workspace_root().join("events").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn rfc3339_now() -> String {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};

    fn ids(v: &[&str]) -> HashSet<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn partial_batch_responses_follow_lambdas_rules() {
        let batch = ids(&["a", "b", "c"]);
        for ok in [Value::Null, json!({}), json!({"batchItemFailures": null}), json!({"batchItemFailures": []})] {
            assert_eq!(batch_item_failures(&ok, &batch), Ok(HashSet::new()), "{ok}");
        }
        let some = json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]});
        assert_eq!(batch_item_failures(&some, &batch), Ok(ids(&["b", "c"])));
        for whole_batch_fails in [
            json!("ok"),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"itemId": "a"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "z"}]}),
            json!({"batchItemFailures": "a"}),
        ] {
            assert!(batch_item_failures(&whole_batch_fails, &batch).is_err(), "{whole_batch_fails}");
        }
    }

    #[test]
    fn an_sqs_record_has_the_fields_lambda_sends_and_parses_as_the_consumers_event_type() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body("{\"id\":\"evt_1\"}")
            .md5_of_body("d41d8cd98f00b204e9800998ecf8427e")
            .md5_of_message_attributes("0123")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1763800100000")
            .message_attributes(
                "event_id",
                MessageAttributeValue::builder().data_type("String").string_value("evt_1").build().unwrap(),
            )
            .message_attributes(
                "blob",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(aws_sdk_sqs::primitives::Blob::new(b"hi".to_vec()))
                    .build()
                    .unwrap(),
            )
            .build();
        let e = sqs_event(&[m], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1");
        let r = &e["Records"][0];
        assert_eq!(r["messageId"], "m-1");
        assert_eq!(r["receiptHandle"], "rh-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "3");
        assert_eq!(
            r["messageAttributes"]["event_id"],
            json!({"stringValue": "evt_1", "dataType": "String", "stringListValues": [], "binaryListValues": []})
        );
        assert_eq!(r["messageAttributes"]["blob"]["binaryValue"], "aGk=");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(r["awsRegion"], "us-east-1");
        assert_eq!(r["md5OfMessageAttributes"], "0123");
        // The same keys as the sample batch in events/sqs (plus md5OfMessageAttributes).
        let sample_keys: HashSet<String> =
            sample("sqs/batch.json")["Records"][0].as_object().unwrap().keys().cloned().collect();
        let keys: HashSet<String> = r.as_object().unwrap().keys().cloned().collect();
        assert!(sample_keys.is_subset(&keys), "{sample_keys:?} ⊄ {keys:?}");
        let parsed: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.records[0].attributes.get("ApproximateReceiveCount").map(String::as_str), Some("3"));
    }

    #[test]
    fn an_http_api_event_carries_the_body_and_signature_and_parses_as_lambda_http_does() {
        let sample = sample("webhook/apigw-v2/customer.created.json");
        let e = http_api_event(&sample, "{\"id\":\"evt_x\"}", "t=1,v1=ab", "req-1");
        assert_eq!(e["body"], "{\"id\":\"evt_x\"}");
        assert_eq!(e["headers"]["stripe-signature"], "t=1,v1=ab");
        assert_eq!(e["requestContext"]["requestId"], "req-1");
        let req: aws_lambda_events::event::apigw::ApiGatewayV2httpRequest = serde_json::from_value(e).unwrap();
        assert_eq!(req.request_context.http.method.as_str(), "POST");
        assert_eq!(http_status(&json!({"statusCode": 200, "body": "{}"})), Some(200));
    }

    #[test]
    fn a_scheduled_event_gets_a_fresh_id_and_time() {
        let e = scheduled_event(&sample("schedule/scheduled.json"), "abc");
        assert_eq!(e["id"], "abc");
        assert_eq!(e["detail-type"], "Scheduled Event");
        let t = e["time"].as_str().unwrap();
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
    }
}
