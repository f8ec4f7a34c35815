//! A stand-in Lambda function on the real `lambda_runtime` client, for the
//! Runtime API emulator's own tests (`tests/tests/lambda_runtime.rs`). What it
//! does is chosen by the payload:
//! - `{"sleep_ms": N}`: answers after N ms;
//! - `{"error": "message"}`: returns a handler error;
//! - `{"exit": CODE}`: exits the process without answering;
//! - an SQS event (`{"Records": [...]}`): a record whose body is `fail` is
//!   returned in `batchItemFailures`, `error` fails the invocation, `hang`
//!   never answers (the deadline ends it); the others succeed;
//! - anything else: echoes it with the invocation's context (request id,
//!   deadline, function ARN), the process id and the `PROBE` and `HOME`
//!   variables, so a test sees what the emulator handed over.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let p = event.payload;
    if let Some(records) = p.get("Records").and_then(Value::as_array) {
        let body = |r: &Value| r["body"].as_str().unwrap_or_default().to_owned();
        if records.iter().any(|r| body(r) == "hang") {
            std::future::pending::<()>().await;
        }
        if records.iter().any(|r| body(r) == "error") {
            return Err("a record asked for an error".into());
        }
        let failures: Vec<Value> =
            records.iter().filter(|r| body(r) == "fail").map(|r| json!({"itemIdentifier": r["messageId"]})).collect();
        return Ok(json!({ "batchItemFailures": failures }));
    }
    if let Some(ms) = p.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if let Some(msg) = p.get("error").and_then(Value::as_str) {
        return Err(msg.into());
    }
    if let Some(code) = p.get("exit").and_then(Value::as_i64) {
        std::process::exit(i32::try_from(code).unwrap_or(1));
    }
    Ok(json!({
        "echo": p,
        "request_id": event.context.request_id,
        "deadline_ms": event.context.deadline,
        "arn": event.context.invoked_function_arn,
        "pid": std::process::id(),
        "probe": std::env::var("PROBE").ok(),
        "home": std::env::var("HOME").ok(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
