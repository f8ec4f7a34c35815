//! Unit tests of the emulator's pieces that need no process (the processes
//! are tested in `tests/tests/lambda_runtime.rs` with a fake function binary).

#![allow(clippy::unwrap_used)]

use super::container::{request_id, reserved_env};
use super::*;

#[test]
fn request_ids_are_uuid_v4_and_distinct() {
    let a = request_id();
    let b = request_id();
    assert_ne!(a, b);
    let parts: Vec<&str> = a.split('-').collect();
    assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12], "{a}");
    assert!(parts[2].starts_with('4'), "version 4: {a}");
    assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "RFC 4122 variant: {a}");
}

#[test]
fn counters_sort_outcomes_and_give_duration_quantiles() {
    let mut c = Counters::default();
    c.record(&Ok(Value::Null));
    c.record(&Err(InvokeError::Timeout(Duration::from_secs(60))));
    c.record(&Err(InvokeError::Crashed("x".into())));
    c.record(&Err(InvokeError::Throttled));
    assert_eq!((c.invocations, c.succeeded, c.timeouts, c.crashes, c.throttles), (4, 1, 1, 1, 1));
    assert_eq!(c.duration_quantile(0.5), None);
    c.durations = [30, 10, 20].into_iter().map(Duration::from_millis).collect();
    assert_eq!(c.duration_quantile(0.5), Some(Duration::from_millis(20)));
    assert_eq!(c.duration_quantile(1.0), Some(Duration::from_millis(30)));
    assert!(c.summary().contains("timeouts=1"), "{}", c.summary());
}

#[test]
fn error_bodies_come_from_the_json_or_the_header() {
    let mut h = HeaderMap::new();
    let e = ErrorBody::parse(&h, br#"{"errorType":"HandlerError","errorMessage":"boom"}"#);
    assert_eq!(e, ErrorBody { error_type: "HandlerError".into(), error_message: "boom".into() });
    h.insert("lambda-runtime-function-error-type", "Runtime.Unknown".parse().unwrap());
    assert_eq!(ErrorBody::parse(&h, b"not json").error_type, "Runtime.Unknown");
}

#[test]
fn overlay_replaces_and_adds() {
    let base = vec![("A".to_owned(), "1".to_owned()), ("B".to_owned(), "2".to_owned())];
    let out = overlay(base, &[("B", "3".into()), ("C", "4".into())]);
    assert_eq!(out, vec![("A".into(), "1".into()), ("B".into(), "3".into()), ("C".into(), "4".into())]);
}

#[test]
fn the_reserved_variables_are_lambdas() {
    let spec = FunctionSpec {
        name: "f".into(),
        binary: PathBuf::from("/opt/f/bootstrap"),
        timeout: Duration::from_secs(3),
        memory_mb: 256,
        env: Vec::new(),
        log_dir: PathBuf::from("/tmp"),
    };
    let env: BTreeMap<String, String> = reserved_env(&spec, "127.0.0.1:9001", "s").into_iter().collect();
    assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:9001");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["LAMBDA_TASK_ROOT"], "/opt/f");
    assert_eq!(spec.arn(), "arn:aws:lambda:us-east-1:123456789012:function:f");
}
