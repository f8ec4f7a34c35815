//! The real binary, started the way a misconfigured deployment would start
//! it: it must stop at once with an error naming what is missing or wrong,
//! never panic, never print a secret. (Also makes `cargo test --workspace`
//! build the binary that `tests/tests/lambda_e2e.rs` runs.)

use std::process::{Command, Output};

fn run(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stripe-to-brevo"));
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
fn without_dedup_table_it_stops_naming_the_variable() {
    let out = run(&[("STRIPE_SECRET_KEY", "sk_test_startup_secret"), ("BREVO_API_KEY", "xkeysib-startup-secret")]);
    let all = text(&out);
    assert!(!out.status.success(), "must not start: {all}");
    assert!(all.contains("DEDUP_TABLE"), "names the missing variable: {all}");
    assert!(!all.contains("panicked"), "an error, not a panic: {all}");
    assert!(!all.contains("startup_secret") && !all.contains("startup-secret"), "no secret in the output: {all}");
}

#[test]
fn an_unreadable_config_file_is_named() {
    let out = run(&[
        ("DEDUP_TABLE", "dedup"),
        ("CONNECTOR_CONFIG", "/nonexistent/stripe-brevo.yaml"),
        ("STRIPE_SECRET_KEY", "sk_test_startup_secret"),
        ("BREVO_API_KEY", "xkeysib-startup-secret"),
    ]);
    let all = text(&out);
    assert!(!out.status.success(), "must not start: {all}");
    assert!(all.contains("/nonexistent/stripe-brevo.yaml"), "names the file: {all}");
    assert!(!all.contains("panicked"), "an error, not a panic: {all}");
    assert!(!all.contains("startup_secret") && !all.contains("startup-secret"), "no secret in the output: {all}");
}
