//! End to end through the real Lambda binaries, without Docker:
//! `cargo lambda watch --only-lambda-apis` emulates the Lambda runtime API and
//! invoke endpoints, and this test starts the three compiled function binaries
//! (`stripe-webhook`, `stripe-to-brevo`, `stripe-poller`) against it, wired as
//! `template.yaml` wires them: queue and tables on moto, the three secrets in
//! (moto's) Secrets Manager passed as `*_ARN`, Stripe and Brevo as the local
//! sandboxes.
//!
//! 1. A signed webhook posted to the webhook function's local URL is queued.
//! 2. The consumer, invoked with an SQS event built from what is in the queue,
//!    makes the right Brevo contact and reports no failures.
//! 3. The poller, invoked with a backfill override then the schedule event,
//!    queues the seeded customers' objects.
//!
//! Needs the venv (`cargo-lambda`, moto, boto3) and moto: run via `scripts/test`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::lambda::events::sqs_event;
use e2e_tests::lambda::stack::create_secret;
use e2e_tests::lambda::{function_binaries, workspace_root as root};
use e2e_tests::{aws, closed_port, create_queue, moto_endpoint, python, unique};
use sandbox::brevo::{BrevoSandbox, BrevoSandboxOptions};
use sandbox::stripe::{Seed, StripeSandbox, StripeSandboxOptions};
use serde_json::{json, Value};
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::dynamodb_cursors::DynamoCursors;
use shared::domain::signature::sign_header;

const WEBHOOK_SECRET: &str = "whsec_lambda_e2e_0123456789";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Kills (by its own handle) every process this test started.
struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Procs {
    fn log_tail(&self) -> String {
        let mut out = String::new();
        for (name, _) in &self.0 {
            let text = std::fs::read_to_string(log_path(name)).unwrap_or_default();
            let tail: String =
                text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            out.push_str(&format!("--- {name}\n{tail}\n"));
        }
        out
    }
}

fn log_path(name: &str) -> PathBuf {
    let dir = root().join(".tmp").join("lambda_e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}.log", std::process::id()))
}

fn venv_bin(tool: &str) -> PathBuf {
    Path::new(&python()).parent().unwrap().join(tool)
}

/// A minimal HTTP/1.1 request (the test crate has no HTTP client).
async fn http(port: u16, method: &str, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("a response within 120 s");
        raw
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

async fn invoke(port: u16, function: &str, payload: &Value) -> Value {
    let (status, body) = http(
        port,
        "POST",
        &format!("/2015-03-31/functions/{function}/invocations"),
        &[("Content-Type", "application/json".into())],
        &payload.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{function} invocation: {body}");
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("{function} returned {body}"))
}

async fn wait_for_port(port: u16, procs: &Procs) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "cargo lambda watch did not listen\n{}", procs.log_tail());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, at_least: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < at_least && start.elapsed() < Duration::from_secs(20) {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        got.extend(out.messages().iter().cloned());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto and the venv's cargo-lambda: run scripts/test"]
async fn signed_webhook_to_brevo_contact_and_poller_backfill_through_the_lambda_binaries() {
    let _ = moto_endpoint();
    let started = Instant::now();
    let bin_dir = function_binaries();
    eprintln!("function binaries ready after {:?}", started.elapsed());
    let aws = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let ddb = aws_sdk_dynamodb::Client::new(&aws);

    // Stripe: a customer with one payment; Brevo: an empty account.
    let stripe = StripeSandbox::start(StripeSandboxOptions::default()).await.unwrap();
    let brevo = BrevoSandbox::start(BrevoSandboxOptions::default()).await.unwrap();
    let t0 = now() - 30 * 86_400;
    let email = "lambda.e2e@example.com";
    stripe.insert("customers", Seed::customer_full("cus_lambda1", Some(email), Some("Lam Bda"), None, t0));
    let charge = Seed::charge("ch_lambda1", Some("cus_lambda1"), 4_200, "usd", now() - 60);
    stripe.insert_charge(charge.clone(), None);
    stripe.insert("customers", Seed::customer("cus_lambda2", Some("second.e2e@example.com"), t0));
    let stripe_key = StripeSandboxOptions::default().secret_keys[0].clone();

    // AWS side, as template.yaml creates it.
    let queue_url = create_queue(&aws, &unique("l-events")).await;
    let dlq_url = create_queue(&aws, &unique("l-dlq")).await;
    let dedup = unique("l-dedup");
    let cursors = unique("l-cursor");
    DynamoIdempotency::create_table(&ddb, &dedup).await.unwrap();
    DynamoCursors::create_table(&ddb, &cursors).await.unwrap();
    let id = unique("l");
    let stripe_arn = create_secret(&format!("{id}-stripe"), &stripe_key);
    let webhook_arn = create_secret(&format!("{id}-webhook"), WEBHOOK_SECRET);
    // A JSON secret keyed by the variable name works too.
    let brevo_arn = create_secret(&format!("{id}-brevo"), &json!({"BREVO_API_KEY": brevo.api_key()}).to_string());
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap();

    // The runtime emulator, then the three functions attached to it.
    let port = closed_port();
    let mut procs = Procs(Vec::new());
    let watch = Command::new(venv_bin("cargo-lambda"))
        .current_dir(root())
        .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string(), "--timeout", "120"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log_path("watch")).unwrap())
        .stderr(std::fs::File::create(log_path("watch")).unwrap())
        .spawn()
        .expect("cargo lambda watch starts");
    procs.0.push(("watch".into(), watch));
    wait_for_port(port, &procs).await;

    let functions: [(&str, Vec<(&str, String)>); 3] = [
        ("stripe-webhook", vec![("QUEUE_URL", queue_url.clone()), ("STRIPE_WEBHOOK_SECRET_ARN", webhook_arn)]),
        (
            "stripe-to-brevo",
            vec![
                ("DEDUP_TABLE", dedup.clone()),
                ("CURSOR_TABLE", cursors.clone()),
                ("DLQ_URL", dlq_url.clone()),
                ("STRIPE_SECRET_KEY_ARN", stripe_arn.clone()),
                ("BREVO_API_KEY_ARN", brevo_arn),
            ],
        ),
        (
            "stripe-poller",
            vec![
                ("QUEUE_URL", queue_url.clone()),
                ("CURSOR_TABLE", cursors.clone()),
                ("STRIPE_SECRET_KEY_ARN", stripe_arn),
            ],
        ),
    ];
    for (name, env) in functions {
        let mut cmd = Command::new(bin_dir.join(name));
        cmd.env_remove("STRIPE_SECRET_KEY")
            .env_remove("STRIPE_WEBHOOK_SECRET")
            .env_remove("BREVO_API_KEY")
            .env_remove("CONNECTOR_CONFIG")
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{name}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("STRIPE_API_BASE", stripe.base_url())
            .env("BREVO_API_BASE", brevo.base_url())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log_path(name)).unwrap())
            .stderr(std::fs::File::create(log_path(&format!("{name}.err"))).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        procs.0.push((name.to_owned(), cmd.spawn().expect("function binary starts")));
    }

    // 1. A signed webhook through the webhook function's local URL.
    let event = Seed::event("evt_lambda_e2e_1", "charge.succeeded", charge, now() - 30, false);
    let body = event.to_string();
    let sig = sign_header(&[WEBHOOK_SECRET], now(), body.as_bytes());
    let headers = [("Content-Type", "application/json".to_owned()), ("Stripe-Signature", sig)];
    let (status, resp) = http(port, "POST", "/lambda-url/stripe-webhook/webhooks/stripe", &headers, &body).await;
    assert_eq!(status, 200, "webhook: {resp}\n{}", procs.log_tail());
    assert!(resp.contains("\"received\":true"), "{resp}");
    let bad = [
        ("Content-Type", "application/json".to_owned()),
        ("Stripe-Signature", sign_header(&["whsec_wrong"], now(), body.as_bytes())),
    ];
    let (status, _) = http(port, "POST", "/lambda-url/stripe-webhook/webhooks/stripe", &bad, &body).await;
    assert_eq!(status, 400, "a wrong signature is refused");

    // 2. The consumer with what is in the queue.
    let msgs = drain(&sqs, &queue_url, 1).await;
    assert_eq!(msgs.len(), 1, "exactly the verified event was queued");
    assert_eq!(msgs[0].body(), Some(body.as_str()));
    let out = invoke(port, "stripe-to-brevo", &sqs_event(&msgs, &queue_arn, "us-east-1")).await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out}\n{}", procs.log_tail());
    let contact = brevo.contact(email).unwrap_or_else(|| panic!("Brevo contact for {email}\n{}", procs.log_tail()));
    let attr = |c: &sandbox::brevo::SandboxContact, k: &str| c.attributes.get(k).and_then(Value::as_f64);
    assert_eq!(attr(&contact, "PAYMENT_COUNT"), Some(1.0), "{contact:?}");
    assert_eq!(attr(&contact, "TOTAL_SPENT"), Some(42.0), "{contact:?}");
    // The same batch again (an SQS redelivery) changes nothing.
    let again = invoke(port, "stripe-to-brevo", &sqs_event(&msgs, &queue_arn, "us-east-1")).await;
    assert_eq!(again["batchItemFailures"], json!([]));
    assert_eq!(attr(&brevo.contact(email).unwrap(), "PAYMENT_COUNT"), Some(1.0));

    // 3. The poller: a backfill override, then the schedule event.
    let backfill = json!({"mode": "backfill", "since": "2020-01-01", "resources": ["customers"]});
    let report = invoke(port, "stripe-poller", &backfill).await;
    assert_eq!(report["ran"], true, "the poller took the lease and ran: {report}\n{}", procs.log_tail());
    // `cargo lambda watch` (1.9) sends a constant `Lambda-Runtime-Deadline-Ms:
    // 600000`; the poller treats such a deadline as unknown and uses its
    // default budget, so the backfill really runs here.
    assert!(
        report["messages"].as_u64().unwrap_or(0) >= 1 && report["requests"].as_u64().unwrap_or(0) >= 1,
        "backfill queued the customers: {report}\n{}",
        procs.log_tail()
    );
    let queued = drain(&sqs, &queue_url, 2).await;
    let bodies: Vec<String> = queued.iter().filter_map(|m| m.body().map(str::to_owned)).collect();
    for cid in ["cus_lambda1", "cus_lambda2"] {
        assert!(bodies.iter().any(|b| b.contains(cid)), "{cid} queued by the backfill: {bodies:?}");
    }
    let scheduled: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("events/schedule/scheduled.json")).unwrap()).unwrap();
    let tick = invoke(port, "stripe-poller", &scheduled).await;
    assert_eq!(tick["ran"], true, "the schedule event runs the poller: {tick}");
    eprintln!("done after {:?}", started.elapsed());
    drop(procs);
}
