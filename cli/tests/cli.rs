//! The `stripe-brevo` binary end to end, against the local Stripe and Brevo
//! sandboxes started in each test (`STRIPE_API_BASE`/`BREVO_API_BASE` point
//! at them) and a state file in a temporary directory.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sandbox::brevo::{BrevoSandbox, BrevoSandboxOptions, Family, Fault, SANDBOX_API_KEY};
use sandbox::stripe::{Seed, StripeSandbox, StripeSandboxOptions, DEFAULT_SECRET_KEY};
use serde_json::{json, Value};
use shared::adapters::sqlite::SqliteStore;
use shared::domain::signature::sign_header;

const BIN: &str = env!("CARGO_BIN_EXE_stripe-brevo");
const WEBHOOK_SECRET: &str = "whsec_cli_test_secret";
const CONFIG: &str = r#"
connectors:
  stripe:
    enabled: true
    reporting_currency: usd
    lists: {all_customers: 20, subscribers: 21, churned: 22}
  brevo:
    import_check_delay: 1s    # imports are checked from the queue after 1 s, not 60 s
"#;

struct World {
    stripe: StripeSandbox,
    brevo: BrevoSandbox,
    dir: tempfile::TempDir,
    stripe_key: String,
}

impl World {
    async fn start(stripe_opts: StripeSandboxOptions) -> Self {
        let stripe = StripeSandbox::start(stripe_opts).await.unwrap();
        let brevo = BrevoSandbox::start(BrevoSandboxOptions::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yaml"), CONFIG).unwrap();
        Self { stripe, brevo, dir, stripe_key: DEFAULT_SECRET_KEY.to_owned() }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("STRIPE_API_BASE", self.stripe.base_url())
            .env("BREVO_API_BASE", self.brevo.base_url())
            .env("STRIPE_SECRET_KEY", &self.stripe_key)
            .env("BREVO_API_KEY", SANDBOX_API_KEY)
            .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("CONNECTOR_CONFIG", self.dir.path().join("config.yaml"))
            .env("RUST_LOG", "warn");
        c
    }

    /// Runs the binary to completion off the runtime's threads (the
    /// sandboxes must keep answering meanwhile).
    async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command(args);
        tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}\n--- stderr\n{}", o.status.code(), text(&o.stdout), text(&o.stderr))
}

/// Sends SIGKILL when dropped, so a failing test leaves no process behind.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_exits_zero_and_prints_the_brevo_contacts() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(BIN).args(["demo", "--customers", "8"]).env("RUST_LOG", "error").output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("contacts in Brevo"), "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.contains('@') && l.contains("{20")).count() >= 5,
        "contact rows with lists: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_twice_sends_nothing_new_and_status_reports_it() {
    let w = World::start(StripeSandboxOptions::default()).await;
    let summary = w.stripe.seed_demo_dataset(20, 7);
    let with_email = summary.count("customers") - summary.customers_without_email;
    let state = w.state();
    let state = state.to_str().unwrap();

    // Status of a state that does not exist yet: the shape, all empty.
    let out = w.run(&["status", "--json", "--state", state]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["queue"], json!({"depth": 0, "dlq": 0, "in_flight": 0}));
    assert_eq!(v["resources"]["customers"]["last_sync"], Value::Null);
    assert!(!Path::new(state).exists(), "status must not create the state file");

    // A dry run prints the requests and sends none, and changes no state.
    let out = w.run(&["--state", state, "sync", "--dry-run"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let lines: Vec<Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty(), "{}", describe(&out));
    assert!(
        lines.iter().all(|l| l["method"] == "POST" && l["path"].as_str().unwrap().starts_with("/v3/")),
        "{lines:?}"
    );
    let pushed: usize = lines
        .iter()
        .map(|l| match l["path"].as_str().unwrap() {
            "/v3/contacts" => 1,
            "/v3/contacts/import" => l["body"]["jsonBody"].as_array().unwrap().len(),
            _ => 0,
        })
        .sum();
    assert_eq!(pushed, with_email, "{lines:?}");
    assert_eq!(w.brevo.request_counts().total(), 0, "a dry run sends nothing to Brevo");
    assert!(w.brevo.contacts().is_empty());

    // First real sync: every customer with an e-mail becomes a contact.
    let out = w.run(&["sync", "--state", state]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(w.brevo.contacts().len(), with_email, "{}", describe(&out));
    assert!(w.brevo.contacts().iter().all(|c| c.list_ids.contains(&20)));
    let after_first = w.brevo.request_counts();
    assert!(after_first.contacts > 0);

    // Second sync: nothing new in Stripe, so nothing new to Brevo.
    let out = w.run(&["sync", "--state", state]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(w.brevo.request_counts(), after_first, "second sync sent requests to Brevo\n{}", describe(&out));
    assert!(w.brevo.events().is_empty(), "a backfill sends no Brevo events");

    // A change in Stripe (an event) is picked up by the next sync, once.
    let customer = sandbox::stripe::demo_dataset(20, 7)
        .into_iter()
        .find(|(r, c)| *r == "customers" && c["email"].is_string())
        .map(|(_, c)| c)
        .unwrap();
    let cid = customer["id"].as_str().unwrap().to_owned();
    let customer = w.stripe.get("customers", &cid).unwrap();
    w.stripe.emit_event("customer.updated", customer);
    let out = w.run(&["sync", "--state", state]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(w.brevo.request_counts().contacts > after_first.contacts, "{}", describe(&out));
    let again = w.brevo.request_counts();
    let out = w.run(&["sync", "--state", state]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(w.brevo.request_counts(), again, "{}", describe(&out));

    // Status: the CONTRACT's shape, with what happened.
    let out = w.run(&["status", "--json", "--state", state]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let customers = &v["resources"]["customers"];
    assert!(customers["last_sync"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{v}");
    assert!(customers["synced"].as_u64().unwrap() >= 20, "{v}");
    assert!(customers.get("cursor").is_some(), "{v}");
    assert!(v["contacts"]["synced"].as_u64().unwrap() >= with_email as u64, "{v}");
    assert_eq!(v["contacts"]["skipped_no_email"].as_u64().unwrap(), summary.customers_without_email as u64, "{v}");
    assert_eq!(v["contacts"]["failed"], 0, "{v}");
    assert_eq!((v["queue"]["depth"].as_u64(), v["queue"]["dlq"].as_u64()), (Some(0), Some(0)), "{v}");

    // The human form names the same things.
    let out = w.run(&["status", "--state", state]).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("customers") && stdout.contains("dead-letter queue: 0"), "{stdout}");
}

fn payment_failed(event_id: &str, customer: &str, now: i64) -> String {
    let object = json!({"id": format!("pi_{event_id}"), "object": "payment_intent", "customer": customer, "amount": 4900,
        "currency": "usd", "status": "requires_payment_method"});
    Seed::event(event_id, "payment_intent.payment_failed", object, now, false).to_string()
}

/// Starts `serve` on a free port; returns the child and the webhook URL.
fn spawn_serve(w: &World) -> (Killer, String) {
    let state = w.state();
    let mut c = w.command(&[
        "serve",
        "--port",
        "0",
        "--poll-interval",
        "0",
        "--visibility-timeout",
        "2",
        "--state",
        state.to_str().unwrap(),
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.split_whitespace().find(|t| t.starts_with("http://")).unwrap().to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Killer(child), url)
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_serve_mid_batch_loses_no_event_and_sends_each_once() {
    let w = World::start(StripeSandboxOptions::default()).await;
    const N: usize = 12;
    for i in 0..N {
        w.stripe.insert(
            "customers",
            Seed::customer(&format!("cus_k{i:02}"), Some(&format!("kill{i}@example.com")), 1_700_000_000),
        );
    }
    // Brevo's contact endpoints hang, so the first batch is stuck before
    // any event is sent when the process is killed.
    w.brevo.fail_randomly(Family::Contacts, 1.0, Fault::Delay(Duration::from_secs(5)));
    let (mut serve, url) = spawn_serve(&w);

    let http = reqwest::Client::new();
    let now = time_now();
    for i in 0..N {
        let body = payment_failed(&format!("evt_kill_{i:02}"), &format!("cus_k{i:02}"), now);
        let sig = sign_header(&[WEBHOOK_SECRET], now, body.as_bytes());
        let r = http.post(&url).header("Stripe-Signature", sig).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), r#"{"received":true}"#);
    }
    // A forged one is refused like the Lambda would.
    let r = http
        .post(&url)
        .header("Stripe-Signature", "t=1,v1=00")
        .body(payment_failed("evt_forged", "cus_k00", now))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(&url)
        .header("Stripe-Signature", "t=1,v1=00")
        .body(vec![b'x'; 1024 * 1024 + 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().starts_with(r#"{"error""#));

    let store = SqliteStore::open(w.state()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = store.depth(time_now()).await.unwrap();
        if d.in_flight > 0 {
            assert_eq!(d.depth, N as u64);
            break;
        }
        assert!(Instant::now() < deadline, "the worker never took a batch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve.0.kill().unwrap(); // SIGKILL: no chance to clean up
    serve.0.wait().unwrap();
    assert!(w.brevo.events().is_empty(), "killed before any event was sent");
    assert_eq!(store.depth(time_now()).await.unwrap().depth, N as u64, "nothing acknowledged, nothing lost");

    w.brevo.reset_faults();
    let (_serve, _url) = spawn_serve(&w);
    let store2 = store.clone();
    wait_for("every event in Brevo", Duration::from_secs(40), || w.brevo.events().len() >= N).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store2.depth(time_now()).await.unwrap().depth > 0 {
        assert!(Instant::now() < deadline, "queue never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for e in w.brevo.events() {
        assert_eq!(e.event_name, "stripe_payment_intent_payment_failed");
        *seen.entry(e.event_properties["stripe_event_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = (0..N).map(|i| (format!("evt_kill_{i:02}"), 1)).collect();
    assert_eq!(seen, expected, "each event exactly once");
    for i in 0..N {
        assert!(w.brevo.contact(&format!("kill{i}@example.com")).is_some(), "contact {i} missing");
    }
    assert_eq!(store.depth(time_now()).await.unwrap().dlq, 0);
}

fn time_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

const RESTRICTED: &str = "rk_test_cli0000000000000000000000000000000000nosub";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_missing_permission_and_fails() {
    let readable = [
        "customers",
        "charges",
        "payment_intents",
        "invoices",
        "refunds",
        "balance_transactions",
        "checkout/sessions",
        "products",
        "prices",
        "events",
    ];
    let mut w = World::start(StripeSandboxOptions::default().with_restricted_key(RESTRICTED, &readable)).await;
    w.stripe_key = RESTRICTED.to_owned();
    let out = w.run(&["check", "--fix"]).await;
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(stdout.contains("✓ Stripe key valid (test mode, restricted key)"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("✓ Stripe read customers")), "{stdout}");
    let bad: Vec<&str> = stdout.lines().filter(|l| l.starts_with('✗')).collect();
    assert_eq!(bad.len(), 1, "{stdout}");
    assert!(bad[0].contains("subscriptions") && bad[0].contains("permission"), "{stdout}");
    assert!(!stdout.contains(RESTRICTED) && !text(&out.stderr).contains(RESTRICTED), "the key must never be printed");

    // With the full key: all ✓, once --fix has created the attributes.
    w.stripe_key = DEFAULT_SECRET_KEY.to_owned();
    let out = w.run(&["check"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).lines().all(|l| l.starts_with('✓')), "{}", describe(&out));
    assert!(w.brevo.attributes().contains_key("TOTAL_SPENT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_without_fix_reports_missing_attributes_and_bad_keys_by_name() {
    let mut w = World::start(StripeSandboxOptions::default()).await;
    let out = w.run(&["check"]).await;
    assert!(!out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("✗ Brevo attributes missing") && l.contains("TOTAL_SPENT") && l.contains("--fix")),
        "{stdout}"
    );
    assert!(stdout.contains("✓ Brevo list all_customers (20) exists"), "{stdout}");
    assert!(!w.brevo.attributes().contains_key("TOTAL_SPENT"), "check without --fix changes nothing");

    w.stripe_key = "sk_test_wrong0000000000000000000000".to_owned();
    let out = w.run(&["check"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("✗ Stripe key is invalid (401 Unauthorized): check STRIPE_SECRET_KEY"),
        "{}",
        describe(&out)
    );
    assert!(!text(&out.stdout).contains("sk_test_wrong"), "the key must never be printed");

    let mut c = w.command(&["sync", "--state", w.state().to_str().unwrap()]);
    c.env_remove("BREVO_API_KEY").env("STRIPE_SECRET_KEY", DEFAULT_SECRET_KEY);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("BREVO_API_KEY is not set"), "{}", describe(&out));

    w.stripe.insert("customers", Seed::customer("cus_badkey", Some("bad.key@example.com"), 1_700_000_000));
    let mut c = w.command(&["sync", "--state", w.state().to_str().unwrap()]);
    c.env("BREVO_API_KEY", "xkeysib-wrong-key").env("STRIPE_SECRET_KEY", DEFAULT_SECRET_KEY);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("Brevo API key is invalid (401 Unauthorized): check BREVO_API_KEY"),
        "{}",
        describe(&out)
    );
    assert!(!describe(&out).contains("xkeysib-wrong-key"), "the key must never be printed");

    std::fs::write(w.dir.path().join("config.yaml"), "connectors:\n  stripe:\n    lists: {all_customers: \"x\"}\n")
        .unwrap();
    let out = w.run(&["status"]).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("connectors.stripe.lists.all_customers"), "{}", describe(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_verifies_the_webhook_endpoint_registered_for_a_url() {
    let w = World::start(StripeSandboxOptions::default()).await;
    let url = "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/stripe";
    // Nothing registered yet.
    let out = w.run(&["check", "--fix", "--webhook-url", url]).await;
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stdout).lines().any(|l| l.starts_with('✗') && l.contains("none registered")),
        "{}",
        describe(&out)
    );
    // Registered with too few events (Stripe's own webhook_endpoint example object).
    let mut ep = sandbox::stripe::fixture("webhook_endpoint");
    ep["id"] = serde_json::json!("we_cli_test");
    ep["url"] = serde_json::json!(url);
    ep["status"] = serde_json::json!("enabled");
    ep["enabled_events"] = serde_json::json!(["payment_intent.succeeded"]);
    w.stripe.insert("webhook_endpoints", ep.clone());
    let out = w.run(&["check", "--webhook-url", url]).await;
    assert!(
        text(&out.stdout).lines().any(|l| l.starts_with('✗') && l.contains("missing events")),
        "{}",
        describe(&out)
    );
    // Registered for every event.
    ep["enabled_events"] = serde_json::json!(["*"]);
    w.stripe.insert("webhook_endpoints", ep);
    let out = w.run(&["check", "--webhook-url", url]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains("✓ Stripe webhook endpoint for"), "{}", describe(&out));
}

/// `--aws`: the same commands against SQS and DynamoDB (moto started by
/// scripts/test), as an operator would run them against a deployed stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn sync_and_status_work_against_sqs_and_dynamodb_with_aws() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("run through scripts/test (moto)");
    let w = World::start(StripeSandboxOptions::default()).await;
    w.stripe.seed_demo_dataset(12, 7);
    let aws = shared::adapters::aws::load().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let tag = format!("cli{}", std::process::id());
    let dlq = sqs.create_queue().queue_name(format!("{tag}-dlq")).send().await.unwrap().queue_url().unwrap().to_owned();
    let queue = sqs.create_queue().queue_name(format!("{tag}-q")).send().await.unwrap().queue_url().unwrap().to_owned();
    shared::adapters::dynamodb_cursors::DynamoCursors::create_table(&ddb, &format!("{tag}-cursor")).await.unwrap();
    shared::adapters::dynamodb::DynamoIdempotency::create_table(&ddb, &format!("{tag}-dedup")).await.unwrap();
    let aws_env = |c: &mut Command| {
        c.env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("QUEUE_URL", &queue)
            .env("DLQ_URL", &dlq)
            .env("CURSOR_TABLE", format!("{tag}-cursor"))
            .env("DEDUP_TABLE", format!("{tag}-dedup"));
    };
    let mut c = w.command(&["sync", "--aws"]);
    aws_env(&mut c);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let with_email = w.brevo.contacts().len();
    assert!(with_email >= 10, "contacts pushed: {with_email}");

    let mut c = w.command(&["status", "--aws", "--json"]);
    aws_env(&mut c);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["queue"]["depth"], json!(0), "{v}");
    assert_eq!(v["queue"]["dlq"], json!(0), "{v}");
    assert_eq!(v["contacts"]["synced"].as_u64(), Some(with_email as u64), "{v}");
    assert!(v["resources"]["customers"]["synced"].as_u64().unwrap_or(0) >= 12, "{v}");
    assert!(v["resources"]["customers"]["last_sync"].is_string(), "{v}");
}
