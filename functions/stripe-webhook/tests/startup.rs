//! The real binary, started the way a misconfigured deployment would start
//! it: it must stop at once with an error naming what is missing or wrong,
//! never panic, never print a secret.

use std::process::Command;

/// Runs the binary with only `env`; returns (started cleanly?, stdout + stderr).
fn run(env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stripe-webhook"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "error");
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("the binary starts");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn without_queue_url_it_stops_naming_the_variable() {
    let (ok, all) = run(&[("STRIPE_WEBHOOK_SECRET", "whsec_startup_secret")]);
    assert!(!ok, "must not start: {all}");
    assert!(all.contains("QUEUE_URL"), "names the missing variable: {all}");
    assert!(!all.contains("panicked"), "an error, not a panic: {all}");
    assert!(!all.contains("startup_secret"), "no secret in the output: {all}");
}

#[test]
fn without_any_webhook_secret_it_stops_naming_the_variable() {
    let (ok, all) = run(&[("QUEUE_URL", "http://127.0.0.1:9/queue/q")]);
    assert!(!ok, "must not start: {all}");
    assert!(all.contains("STRIPE_WEBHOOK_SECRET"), "names the missing variable: {all}");
    assert!(!all.contains("panicked"), "an error, not a panic: {all}");
}

#[test]
fn an_unreadable_config_file_is_named() {
    let (ok, all) = run(&[
        ("QUEUE_URL", "http://127.0.0.1:9/queue/q"),
        ("CONNECTOR_CONFIG", "/nonexistent/stripe-brevo.yaml"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_startup_secret"),
    ]);
    assert!(!ok, "must not start: {all}");
    assert!(all.contains("/nonexistent/stripe-brevo.yaml"), "names the file: {all}");
    assert!(!all.contains("panicked"), "an error, not a panic: {all}");
    assert!(!all.contains("startup_secret"), "no secret in the output: {all}");
}
