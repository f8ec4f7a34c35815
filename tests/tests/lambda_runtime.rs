//! The Lambda Runtime API emulator (`e2e_tests::lambda::runtime`) against a
//! stand-in function on the real `lambda_runtime` client (`src/bin/fake-function.rs`):
//! Lambda's headers and variables, warm reuse, the deadline enforced by
//! SIGKILL and followed by a cold start, handler errors, crashes, and a pool's
//! concurrency. No moto needed.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e_tests::lambda::runtime::{ExecutionEnvironment, Function, FunctionSpec, InvokeError};
use e2e_tests::lambda::scratch_dir;
use serde_json::{json, Value};

fn spec(timeout: Duration) -> FunctionSpec {
    FunctionSpec {
        name: "fake-function".into(),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_fake-function")),
        timeout,
        memory_mb: 128,
        env: vec![("PROBE".into(), "from the spec".into())],
        log_dir: scratch_dir(&format!("lambda_runtime-{}", std::process::id())),
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn pid(v: &Value) -> u64 {
    v["pid"].as_u64().expect("pid")
}

fn is_running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[tokio::test]
async fn hands_events_with_lambdas_headers_and_reuses_the_warm_process() {
    let env = ExecutionEnvironment::standalone(spec(Duration::from_secs(5)));
    let before = epoch_ms();
    let a = env.invoke(&json!({"n": 1})).await.unwrap();
    assert_eq!(a["echo"], json!({"n": 1}));
    let deadline = a["deadline_ms"].as_u64().unwrap();
    assert!(
        deadline >= before + 5_000 && deadline <= epoch_ms() + 5_000,
        "deadline = handed out + timeout: {deadline}"
    );
    assert_eq!(a["arn"], "arn:aws:lambda:us-east-1:123456789012:function:fake-function");
    assert_eq!(a["request_id"].as_str().unwrap().len(), 36);
    assert_eq!(a["probe"], "from the spec", "the function's environment");
    assert_eq!(a["home"], Value::Null, "nothing inherited from the test process");
    let b = env.invoke(&json!({"n": 2})).await.unwrap();
    assert_eq!(pid(&a), pid(&b), "warm: the same process");
    assert_ne!(a["request_id"], b["request_id"]);
    let c = env.counters();
    assert_eq!((c.invocations, c.succeeded, c.cold_starts), (2, 2, 1), "{c:?}");
    assert_eq!(c.durations.len(), 2);
    assert_eq!(c.init_durations.len(), 1);
}

#[tokio::test]
async fn a_function_past_its_deadline_is_killed_and_the_next_invocation_is_a_cold_start() {
    let env = ExecutionEnvironment::standalone(spec(Duration::from_millis(800)));
    let first = env.invoke(&json!({})).await.unwrap();
    let started = Instant::now();
    let late = env.invoke(&json!({"sleep_ms": 30_000})).await;
    assert_eq!(late, Err(InvokeError::Timeout(Duration::from_millis(800))));
    assert!(started.elapsed() < Duration::from_secs(3), "ended at the deadline: {:?}", started.elapsed());
    assert!(!is_running(pid(&first)), "the timed-out process was killed");
    let next = env.invoke(&json!({})).await.unwrap();
    assert_ne!(pid(&next), pid(&first), "a new process");
    let c = env.counters();
    assert_eq!((c.invocations, c.succeeded, c.timeouts, c.cold_starts), (3, 2, 1, 2), "{c:?}");
}

#[tokio::test]
async fn a_handler_error_keeps_the_container_and_a_crash_ends_it() {
    let env = ExecutionEnvironment::standalone(spec(Duration::from_secs(5)));
    let first = env.invoke(&json!({})).await.unwrap();
    match env.invoke(&json!({"error": "no luck"})).await {
        Err(InvokeError::FunctionError(e)) => assert!(e.error_message.contains("no luck"), "{e:?}"),
        other => panic!("{other:?}"),
    }
    let same = env.invoke(&json!({})).await.unwrap();
    assert_eq!(pid(&same), pid(&first), "an error does not end the container");
    match env.invoke(&json!({"exit": 3})).await {
        Err(InvokeError::Crashed(why)) => assert!(why.contains('3'), "{why}"),
        other => panic!("{other:?}"),
    }
    let after = env.invoke(&json!({})).await.unwrap();
    assert_ne!(pid(&after), pid(&first), "a crash means a cold start");
    let c = env.counters();
    assert_eq!((c.function_errors, c.crashes, c.cold_starts), (1, 1, 2), "{c:?}");
}

#[tokio::test]
async fn a_binary_that_cannot_start_is_a_crash() {
    let mut s = spec(Duration::from_secs(1));
    s.binary = PathBuf::from("/nonexistent/bootstrap");
    let env = ExecutionEnvironment::standalone(s);
    assert!(matches!(env.invoke(&json!({})).await, Err(InvokeError::Crashed(w)) if w.contains("could not start")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_runs_up_to_its_concurrency_and_throttles_asynchronous_invocations_beyond() {
    let f = std::sync::Arc::new(Function::new(spec(Duration::from_secs(5)), 2));
    // Warm both environments.
    let warm = json!({"sleep_ms": 200});
    let (a, b) = tokio::join!(f.invoke(&warm), f.invoke(&warm));
    assert_ne!(pid(&a.unwrap()), pid(&b.unwrap()), "two containers");
    let started = Instant::now();
    let slow = |f: std::sync::Arc<Function>| async move { f.invoke(&json!({"sleep_ms": 600})).await };
    let (x, y) = (tokio::spawn(slow(f.clone())), tokio::spawn(slow(f.clone())));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(f.busy(), 2);
    assert_eq!(f.try_invoke(&json!({})).await, Err(InvokeError::Throttled));
    x.await.unwrap().unwrap();
    y.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_millis(1_100), "in parallel: {:?}", started.elapsed());
    let c = f.counters();
    assert_eq!((c.invocations, c.succeeded, c.throttles, c.cold_starts), (5, 4, 1, 2), "{c:?}");
    assert!(f.log_tail(5).contains("cold start 1"), "{}", f.log_tail(5));
    f.shut_down().await;
}
