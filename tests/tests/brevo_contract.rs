//! The contract test of the connector's Brevo client: every request it sent
//! to a Brevo sandbox during the whole suite — recorded by the sandboxes
//! into `$BREVO_CAPTURE_DIR` (only requests carrying the client's
//! `User-Agent`, so the sandbox's own tests of invalid bodies do not count)
//! — is checked against Brevo's own definition (the vendored
//! `openapi-v3.yml` with NOTES.md's changes): its operation exists, its path
//! and query parameters and its body fit. `scripts/test` clears the
//! directory, runs the suite with the variable set, then runs this test
//! alone. It fails listing each violation (operation, where in the body,
//! why), and also when the capture is empty or lacks an operation the
//! client is known to use, so it cannot pass by checking nothing.

use std::collections::BTreeMap;
use std::path::Path;

use sandbox::brevo::spec::spec;
use sandbox::brevo::{BrevoSandbox, BrevoSandboxOptions, CAPTURE_DIR_ENV};
use secrecy::SecretString;
use serde_json::Value;
use shared::adapters::brevo::{BrevoClient, BrevoConfig};

/// The operations the client uses, each exercised by the e2e suite.
const CLIENT_OPERATIONS: [&str; 11] = [
    "createContact",
    "importContacts",
    "addContactToList",
    "removeContactFromList",
    "createAttribute",
    "createEvent",
    "createBatchEvents",
    "createOrder",
    "getAccount",
    "getAttributes",
    "getList",
];

/// What the check found over a capture directory.
#[derive(Debug, Default)]
struct Report {
    requests: usize,
    files: usize,
    /// Requests per operation.
    per_operation: BTreeMap<String, usize>,
    /// `operation: problem` → (times seen, first `file:line`).
    violations: BTreeMap<String, (usize, String)>,
}

impl Report {
    fn violation(&mut self, what: String, at: String) {
        self.violations.entry(what).or_insert((0, at)).0 += 1;
    }

    /// Every reason to fail: violations, then operations never seen.
    fn failures(&self, required: &[&str]) -> Vec<String> {
        let mut out: Vec<String> =
            self.violations.iter().map(|(what, (n, at))| format!("{what} ({n}×, first at {at})")).collect();
        if self.requests == 0 {
            out.push(format!("no Brevo request was captured: was {CAPTURE_DIR_ENV} set for the suite?"));
        }
        for op in required {
            if !self.per_operation.contains_key(*op) {
                out.push(format!("{op}: the client uses it but the suite sent none"));
            }
        }
        out
    }
}

/// Reads every `*.jsonl` of `dir` and checks each request.
fn check_capture(dir: &Path) -> std::io::Result<Report> {
    let mut report = Report::default();
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let spec = spec();
    for file in files {
        report.files += 1;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (i, line) in std::fs::read_to_string(&file)?.lines().enumerate() {
            let at = format!("{name}:{}", i + 1);
            report.requests += 1;
            let req: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    report.violation(format!("unreadable capture line: {e}"), at);
                    continue;
                }
            };
            let s = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or_default();
            let (method, path) = (s("method"), s("path"));
            let Some(op) = spec.find(method, path) else {
                report.violation(format!("{method} {path}: no such operation in Brevo's definition"), at);
                continue;
            };
            *report.per_operation.entry(op.id.clone()).or_default() += 1;
            if req.get("body_text").is_some() {
                report.violation(format!("{}: the body is not JSON", op.id), at);
                continue;
            }
            let body = req.get("body").filter(|b| !b.is_null());
            for v in spec.check(op, path, req.get("query").and_then(Value::as_str), body) {
                report.violation(format!("{} ({method} {}): {v}", op.id, op.template), at.clone());
            }
        }
    }
    Ok(report)
}

#[test]
#[ignore = "runs after the suite, over its captured Brevo requests (scripts/test)"]
fn every_brevo_request_the_client_sent_during_the_suite_fits_brevos_definition() {
    let dir = std::env::var_os(CAPTURE_DIR_ENV)
        .unwrap_or_else(|| panic!("{CAPTURE_DIR_ENV} is not set: this test runs after the suite, from scripts/test"));
    let report = check_capture(Path::new(&dir)).expect("reading the capture");
    println!(
        "checked {} Brevo requests of the client ({} sandboxes) against Brevo's definition: {:?}",
        report.requests, report.files, report.per_operation
    );
    let failures = report.failures(&CLIENT_OPERATIONS);
    assert!(failures.is_empty(), "the client's Brevo requests do not fit Brevo's definition:\n{}", failures.join("\n"));
}

#[test]
fn the_contract_check_names_each_violation_and_each_operation_never_sent() {
    let dir = std::env::temp_dir().join(format!("brevo-contract-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let report = check_capture(&dir).unwrap();
    assert!(report.failures(&["createContact"]).iter().any(|f| f.contains("no Brevo request was captured")));

    let lines = [
        r#"{"method":"POST","path":"/v3/contacts","query":null,"status":201,"body":{"email":"a@example.com","updateEnabled":true}}"#,
        r#"{"method":"POST","path":"/v3/contacts","query":null,"status":400,"body":{"email":"a@example.com","unlinkListIds":[21]}}"#,
        r#"{"method":"POST","path":"/v3/contacts","query":null,"status":400,"body":{"email":"b@example.com","unlinkListIds":[22]}}"#,
        r#"{"method":"POST","path":"/v3/contacts/lists/20/contacts/add","query":null,"status":201,"body":{"emails":["a@example.com", 3]}}"#,
        r#"{"method":"GET","path":"/v3/contacts/lists/20","query":null,"status":200,"body":null}"#,
        r#"{"method":"POST","path":"/v3/contacts/unknown/thing","query":null,"status":404,"body":{}}"#,
        r#"{"method":"POST","path":"/v3/events","query":null,"status":400,"body_text":"not json","body":null}"#,
        "{truncated",
    ];
    std::fs::write(dir.join("1-0.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(dir.join("ignored.txt"), "not a capture").unwrap();
    let report = check_capture(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((report.files, report.requests), (1, 8));
    let failures = report.failures(&["createContact", "getList", "createOrder"]);
    let expected = [
        "createContact (POST /v3/contacts): unlinkListIds is not a valid parameter (invalid_parameter) (2×, first at 1-0.jsonl:2)",
        "addContactToList (POST /v3/contacts/lists/{listId}/contacts/add): emails[1] should be a string (invalid_parameter) (1×, first at 1-0.jsonl:4)",
        "POST /v3/contacts/unknown/thing: no such operation in Brevo's definition (1×, first at 1-0.jsonl:6)",
        "createEvent: the body is not JSON (1×, first at 1-0.jsonl:7)",
        "createOrder: the client uses it but the suite sent none",
    ];
    for want in expected {
        assert!(failures.iter().any(|f| f == want), "{want}\nnot in\n{}", failures.join("\n"));
    }
    assert!(failures.iter().any(|f| f.starts_with("unreadable capture line")), "{failures:?}");
    assert_eq!(failures.len(), expected.len() + 1, "{failures:#?}");
    assert_eq!(report.per_operation["createContact"], 3);
}

#[tokio::test]
async fn the_sandbox_records_what_the_connectors_client_sends() {
    let dir = std::env::temp_dir().join(format!("brevo-contract-client-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = BrevoSandboxOptions { capture_dir: Some(dir.clone()), ..Default::default() };
    let sb = BrevoSandbox::start(opts).await.unwrap();
    let client = BrevoClient::new(BrevoConfig::new(sb.base_url(), SecretString::from(sb.api_key()))).unwrap();
    client.account().await.unwrap();
    client.add_to_list(20, &["nobody@example.com".to_owned()]).await.unwrap();
    let report = check_capture(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(report.requests, 2, "the client's User-Agent is the one the sandbox records");
    assert_eq!(report.per_operation.keys().map(String::as_str).collect::<Vec<_>>(), ["addContactToList", "getAccount"]);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}
