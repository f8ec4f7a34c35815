//! The real binary, started the way a misconfigured deployment would start
//! it: it must stop at once with an error naming what is missing or wrong,
//! never panic, never print a secret. (Also makes `cargo test --workspace`
//! build the binary that `tests/tests/lambda_e2e.rs` runs.)

use std::process::{Command, Output};

fn run(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stripe-poller"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary starts")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn without_queue_url_it_stops_naming_the_variable() {
    let out = run(&[("CURSOR_TABLE", "cursors"), ("STRIPE_SECRET_KEY", "sk_test_startup_secret")]);
    let all = text(&out);
    assert!(!out.status.success(), "must not start: {all}");
    assert!(all.contains("QUEUE_URL"), "names the missing variable: {all}");
    assert!(!all.contains("panicked"), "an error, not a panic: {all}");
    assert!(!all.contains("startup_secret"), "no secret in the output: {all}");
}

#[test]
fn a_bad_rate_budget_is_refused_with_its_reason() {
    let out = run(&[
        ("QUEUE_URL", "http://127.0.0.1:9/queue/q"),
        ("CURSOR_TABLE", "cursors"),
        ("STRIPE_SECRET_KEY", "sk_test_startup_secret"),
        ("STRIPE_REQUESTS_PER_SECOND", "-3"),
    ]);
    let all = text(&out);
    assert!(!out.status.success(), "must not start: {all}");
    assert!(
        all.contains("STRIPE_REQUESTS_PER_SECOND") && all.contains("positive"),
        "names the variable and why: {all}"
    );
    assert!(!all.contains("panicked"), "an error, not a panic: {all}");
    assert!(!all.contains("startup_secret"), "no secret in the output: {all}");
}
