//! Unit tests of the Brevo sandbox, through HTTP like its clients.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{json, Value};

use super::*;

/// A plain HTTP client of the sandbox (no `User-Agent`: never captured).
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    pub(super) fn new(sb: &BrevoSandbox) -> Self {
        Self { http: reqwest::Client::new(), base: sb.base_url(), key: sb.api_key() }
    }

    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, HeaderMap, Value) {
        self.send_as(None, method, path, body).await
    }

    /// Sends with this `User-Agent` (`None`: none).
    pub(super) async fn send_as(
        &self,
        agent: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, HeaderMap, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path)).header("api-key", &self.key);
        if let Some(a) = agent {
            req = req.header("user-agent", a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        (status, headers, v)
    }

    pub(super) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, _, v) = self.send(reqwest::Method::POST, path, Some(body)).await;
        (s, v)
    }

    pub(super) async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, v) = self.send(reqwest::Method::GET, path, None).await;
        (s, v)
    }
}

pub(super) async fn sandbox() -> BrevoSandbox {
    BrevoSandbox::start(BrevoSandboxOptions::default()).await.unwrap()
}

#[tokio::test]
async fn binds_to_localhost_only_and_refuses_a_wrong_key() {
    let sb = sandbox().await;
    assert!(sb.addr().ip().is_loopback());
    let mut c = Client::new(&sb);
    c.key = "wrong".into();
    let (s, v) = c.get("/v3/account").await;
    assert_eq!(s, 401);
    assert_eq!(v, json!({"code": "unauthorized", "message": "Key not found"}));
    let resp = reqwest::get(format!("{}/v3/account", sb.base_url())).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401, "a missing key is refused too");
    assert_eq!(Client::new(&sb).get("/v3/account").await.0, 200);
    let log = sb.request_log();
    assert_eq!(log.iter().map(|l| l.status).collect::<Vec<_>>(), vec![401, 401, 200]);
    assert_eq!(sb.requests(Family::Other), 3);
}

#[tokio::test]
async fn upserts_contacts_with_lists_and_validates_like_brevo() {
    let sb = sandbox().await;
    sb.add_attribute("TOTAL_SPENT", "float");
    let c = Client::new(&sb);
    let (s, v) = c
        .post("/v3/contacts", json!({"email": "Jane@Example.com", "attributes": {"FIRSTNAME": "Jane", "TOTAL_SPENT": 12.5}, "listIds": [20, 21], "updateEnabled": true}))
        .await;
    assert_eq!(s, 201);
    assert!(v["id"].is_i64());
    let (s, _) =
        c.post("/v3/contacts", json!({"email": "jane@example.com", "listIds": [22], "updateEnabled": true})).await;
    assert_eq!(s, 204);
    assert_eq!(sb.lists_of("jane@example.com"), vec![20, 21, 22]);
    // createContact has no unlinkListIds: Brevo refuses the field.
    let (s, v) = c
        .post(
            "/v3/contacts",
            json!({"email": "jane@example.com", "listIds": [22], "unlinkListIds": [21], "updateEnabled": true}),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")), "{v}");
    assert_eq!(sb.lists_of("jane@example.com"), vec![20, 21, 22], "a refused request changes nothing");
    assert_eq!(sb.contact("JANE@example.com").unwrap().attributes["TOTAL_SPENT"], json!(12.5));
    // Without updateEnabled an existing contact is a duplicate.
    let (s, v) = c.post("/v3/contacts", json!({"email": "jane@example.com"})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("duplicate_parameter")));
    // Unknown attribute, bad e-mail, unknown list.
    let (s, v) = c.post("/v3/contacts", json!({"email": "a@example.com", "attributes": {"NOPE": 1}})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
    // A value of the wrong type for its attribute is silently ignored (Brevo:
    // shared/brevo/NOTES.md); the rest of the request applies.
    let (s, _) = c
        .post(
            "/v3/contacts",
            json!({"email": "jane@example.com", "attributes": {"TOTAL_SPENT": "x", "FIRSTNAME": "Janet"}, "updateEnabled": true}),
        )
        .await;
    assert_eq!(s, 204);
    let jane = sb.contact("jane@example.com").unwrap();
    assert_eq!(
        (jane.attributes["TOTAL_SPENT"].clone(), jane.attributes["FIRSTNAME"].clone()),
        (json!(12.5), json!("Janet"))
    );
    let (s, v) = c.post("/v3/contacts", json!({"email": "not-an-email"})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
    assert_eq!(c.post("/v3/contacts", json!({"email": "a@example.com", "listIds": [99]})).await.0, 404);
    assert_eq!(sb.contacts().len(), 1);
}

#[tokio::test]
async fn requires_sms_numbers_in_e164_and_unique() {
    let sb = sandbox().await;
    let c = Client::new(&sb);
    let (s, v) = c
        .post(
            "/v3/contacts",
            json!({"email": "a@example.com", "attributes": {"SMS": "06 12 34 56 78"}, "updateEnabled": true}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v, json!({"code": "invalid_parameter", "message": "Invalid phone number"}));
    assert_eq!(c.post("/v3/contacts", json!({"email": "a@example.com", "attributes": {"SMS": "+12"}})).await.0, 400);
    assert_eq!(
        c.post("/v3/contacts", json!({"email": "a@example.com", "attributes": {"SMS": "+33612345678"}})).await.0,
        201
    );
    let (s, v) = c.post("/v3/contacts", json!({"email": "b@example.com", "attributes": {"SMS": "+33612345678"}})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("duplicate_parameter")));
}

/// Brevo applies an import's rows after its 202 (here at the second status
/// check), not at once.
#[tokio::test]
async fn imports_are_applied_when_their_process_completes_and_ignore_unknown_attributes() {
    let sb =
        BrevoSandbox::start(BrevoSandboxOptions::default().with_import_pace(ImportPace::OnCheck(2))).await.unwrap();
    sb.seed_contact("old@example.com", [("FIRSTNAME".to_owned(), json!("Old"))].into(), &[21]);
    let c = Client::new(&sb);
    let body = json!({
        "jsonBody": [
            {"email": "new@example.com", "attributes": {"FIRSTNAME": "New", "UNKNOWN": 3, "SMS": "bad"}},
            {"email": "old@example.com", "attributes": {"FIRSTNAME": ""}},
            {"email": "broken"}
        ],
        "listIds": [20], "updateExistingContacts": true, "emptyContactsAttributes": false
    });
    let (s, v) = c.post("/v3/contacts/import", body).await;
    assert_eq!(s, 202);
    assert_eq!(v["processId"], json!(1));
    assert!(sb.contact("new@example.com").is_none(), "not applied at the 202");
    assert_eq!(c.get("/v3/processes/1").await, (200, json!({"id": 1, "status": "queued", "name": "IMPORTUSER"})));
    assert!(sb.contact("new@example.com").is_none());
    assert_eq!(c.get("/v3/processes/1").await.1["status"], "completed");
    let new = sb.contact("new@example.com").unwrap();
    assert_eq!(new.attributes, [("FIRSTNAME".to_owned(), json!("New"))].into());
    assert_eq!(sb.contact("old@example.com").unwrap().attributes["FIRSTNAME"], "Old", "empty values do not erase");
    assert_eq!(sb.lists_of("old@example.com"), vec![20, 21]);
    let rec = &sb.imports()[0];
    assert_eq!((rec.applied, rec.skipped), (2, 1));
    assert_eq!(c.post("/v3/contacts/import", json!({"jsonBody": []})).await.0, 400, "listIds are mandatory");
}

#[tokio::test]
async fn an_import_row_whose_sms_belongs_to_another_contact_is_skipped_and_the_others_applied() {
    let sb = sandbox().await;
    sb.seed_contact("owner@example.com", [("SMS".to_owned(), json!("+33612345678"))].into(), &[]);
    sb.seed_contact("taker@example.com", [("FIRSTNAME".to_owned(), json!("Before"))].into(), &[]);
    sb.set_import_pace(ImportPace::OnCheck(1));
    let c = Client::new(&sb);
    let body = json!({
        "jsonBody": [
            {"email": "taker@example.com", "attributes": {"FIRSTNAME": "After", "SMS": "+33612345678"}},
            {"email": "other@example.com", "attributes": {"FIRSTNAME": "Other", "SMS": "+33700000000"}},
            {"email": "second@example.com", "attributes": {"SMS": "+33700000000"}}
        ],
        "listIds": [20], "updateExistingContacts": true, "emptyContactsAttributes": false
    });
    assert_eq!(c.post("/v3/contacts/import", body).await.0, 202);
    assert_eq!(c.get("/v3/processes/1").await.1["status"], "completed");
    let taker = sb.contact("taker@example.com").unwrap();
    assert_eq!(taker.attributes["FIRSTNAME"], "Before", "the whole row is skipped, not only its SMS");
    assert!(!taker.list_ids.contains(&20));
    assert_eq!(sb.contact("other@example.com").unwrap().attributes["SMS"], "+33700000000");
    assert!(sb.contact("second@example.com").is_none(), "a number an earlier row of the import took");
    let rec = &sb.imports()[0];
    assert_eq!((rec.status, rec.applied, rec.skipped, rec.status_checks), (ImportStatus::Completed, 1, 2, 1));
}

#[tokio::test]
async fn process_status_moves_from_queued_to_in_process_to_completed() {
    let sb =
        BrevoSandbox::start(BrevoSandboxOptions::default().with_import_pace(ImportPace::OnCheck(3))).await.unwrap();
    let c = Client::new(&sb);
    let body = json!({"jsonBody": [{"email": "a@example.com"}], "listIds": [20]});
    assert_eq!(c.post("/v3/contacts/import", body).await.0, 202);
    let statuses = [
        c.get("/v3/processes/1").await.1["status"].clone(),
        c.get("/v3/processes/1").await.1["status"].clone(),
        c.get("/v3/processes/1").await.1["status"].clone(),
        c.get("/v3/processes/1").await.1["status"].clone(),
    ];
    assert_eq!(statuses, [json!("queued"), json!("in_process"), json!("completed"), json!("completed")]);
    assert!(sb.contact("a@example.com").is_some());
    let (s, v) = c.get("/v3/processes/99").await;
    assert_eq!((s, v["message"].as_str()), (404, Some("processId is invalid")));
    assert_eq!(c.get("/v3/processes/x").await.0, 400);
    let counts = sb.request_counts();
    assert_eq!((counts.other, counts.contacts), (6, 1), "processes are outside /v3/contacts: the Other family");
}

#[tokio::test]
async fn imports_are_applied_after_their_delay_whether_anyone_checks_or_not() {
    let sb = BrevoSandbox::start(
        BrevoSandboxOptions::default().with_import_pace(ImportPace::After(Duration::from_secs(3_600))),
    )
    .await
    .unwrap();
    let c = Client::new(&sb);
    let body = json!({"jsonBody": [{"email": "a@example.com"}], "listIds": [20]});
    assert_eq!(c.post("/v3/contacts/import", body.clone()).await.0, 202);
    assert_eq!(c.get("/v3/processes/1").await.1["status"], "queued");
    assert!(sb.contact("a@example.com").is_none());
    assert_eq!(sb.imports()[0].status, ImportStatus::Queued);
    sb.set_import_pace(ImportPace::After(Duration::ZERO));
    assert!(sb.contact("a@example.com").is_some(), "applied once due, without a status check");
    assert_eq!(sb.imports()[0].status, ImportStatus::Completed);
    sb.set_import_pace(ImportPace::OnCheck(5));
    assert_eq!(c.post("/v3/contacts/import", body).await.0, 202);
    sb.complete_imports();
    assert_eq!(sb.imports()[1].status, ImportStatus::Completed);
}

#[tokio::test]
async fn lists_a_lists_contacts_modified_since_a_date_page_by_page() {
    let sb = sandbox().await;
    for i in 0..5 {
        sb.seed_contact(&format!("c{i}@example.com"), [("FIRSTNAME".to_owned(), json!(format!("C{i}")))].into(), &[20]);
    }
    sb.seed_contact("elsewhere@example.com", BTreeMap::new(), &[21]);
    let old = 1_700_000_000_000; // 2023-11-14T22:13:20Z
    sb.set_modified_at("c0@example.com", old);
    sb.set_modified_at("c1@example.com", old + 10_000);
    let c = Client::new(&sb);
    let since = "2023-11-14T22%3A13%3A25.000Z"; // between c0 and c1
    let page = |offset: usize, sort: &str| {
        format!("/v3/contacts/lists/20/contacts?modifiedSince={since}&limit=2&offset={offset}&sort={sort}")
    };
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let (s, v) = c.get(&page(offset, "asc")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["count"], 4, "{v}");
        seen.extend(v["contacts"].as_array().unwrap().iter().map(|x| x["email"].as_str().unwrap().to_owned()));
    }
    assert_eq!(seen, ["c1@example.com", "c2@example.com", "c3@example.com", "c4@example.com"]);
    let (_, v) = c.get(&page(0, "desc")).await;
    assert_eq!(v["contacts"][0]["email"], "c4@example.com", "newest first by default order");
    let (_, v) = c.get("/v3/contacts/lists/20/contacts?sort=asc&limit=1").await;
    let first = &v["contacts"][0];
    assert_eq!((first["email"].as_str(), v["count"].as_u64()), (Some("c0@example.com"), Some(5)));
    assert_eq!(first["modifiedAt"], "2023-11-14T22:13:20.000Z");
    assert_eq!(first["attributes"]["FIRSTNAME"], "C0");
    assert_eq!(first["listIds"], json!([20]));
    assert!(first["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{first}");
    assert_eq!(c.get("/v3/contacts/lists/20/contacts").await.1["contacts"].as_array().unwrap().len(), 5);
    assert_eq!(c.get("/v3/contacts/lists/20/contacts?limit=501").await.0, 400, "at most 500 per page");
    assert_eq!(c.get("/v3/contacts/lists/20/contacts?modifiedSince=yesterday").await.0, 400);
    assert_eq!(c.get("/v3/contacts/lists/99/contacts").await.0, 404);
}

#[tokio::test]
async fn list_changes_follow_brevos_rules() {
    let sb = sandbox().await;
    sb.seed_contact("a@example.com", BTreeMap::new(), &[]);
    sb.seed_contact("b@example.com", BTreeMap::new(), &[20]);
    let c = Client::new(&sb);
    let (s, v) =
        c.post("/v3/contacts/lists/20/contacts/add", json!({"emails": ["a@example.com", "b@example.com"]})).await;
    assert_eq!(s, 201);
    assert_eq!(v["contacts"]["success"], json!(["a@example.com"]));
    assert_eq!(v["contacts"]["failure"], json!(["b@example.com"]));
    let (s, v) = c.post("/v3/contacts/lists/20/contacts/add", json!({"emails": ["a@example.com"]})).await;
    assert_eq!(s, 400);
    assert_eq!(v, json!({"code": "invalid_parameter", "message": "Contact already in list and/or does not exist"}));
    let many: Vec<String> = (0..151).map(|i| format!("u{i}@example.com")).collect();
    assert_eq!(c.post("/v3/contacts/lists/20/contacts/add", json!({ "emails": many })).await.0, 400);
    assert_eq!(c.post("/v3/contacts/lists/99/contacts/add", json!({"emails": ["a@example.com"]})).await.0, 404);
    assert_eq!(c.post("/v3/contacts/lists/20/contacts/remove", json!({"emails": ["a@example.com"]})).await.0, 201);
    assert_eq!(c.post("/v3/contacts/lists/20/contacts/remove", json!({"emails": ["a@example.com"]})).await.0, 400);
    assert_eq!(sb.lists_of("a@example.com"), Vec::<i64>::new());
    let (s, v) = c.get("/v3/contacts/lists/20").await;
    assert_eq!((s, v["totalSubscribers"].as_u64()), (200, Some(1)));
    assert_eq!(c.get("/v3/contacts/lists/99").await.0, 404);
}

#[tokio::test]
async fn creates_attributes_once() {
    let sb = sandbox().await;
    let c = Client::new(&sb);
    assert_eq!(c.post("/v3/contacts/attributes/normal/LTV", json!({"type": "float"})).await.0, 201);
    let (s, v) = c.post("/v3/contacts/attributes/normal/LTV", json!({"type": "float"})).await;
    assert_eq!((s, v["message"].as_str()), (400, Some("Attribute name must be unique")));
    let (_, v) = c.get("/v3/contacts/attributes").await;
    assert!(v["attributes"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "LTV", "category": "normal", "type": "float"})));
}

#[tokio::test]
async fn validates_and_records_events_single_and_batched() {
    let sb = sandbox().await;
    let c = Client::new(&sb);
    let ev = |name: &str, email: &str| json!({"event_name": name, "identifiers": {"email_id": email}, "event_properties": {"amount": 12.5}});
    assert_eq!(c.post("/v3/events", ev("stripe_charge_refunded", "A@example.com")).await.0, 204);
    assert_eq!(c.post("/v3/events", ev("stripe.charge.refunded", "a@example.com")).await.0, 400);
    let (s, v) = c.post("/v3/events/batch", json!({"events": [ev("ok_1", "a@example.com"), ev("bad name", "a@example.com"), ev("ok_2", "b@example.com")]})).await;
    assert_eq!(s, 207);
    assert_eq!(v["errors"][0]["index"], json!(1));
    let too_many: Vec<Value> = (0..201).map(|_| ev("x", "a@example.com")).collect();
    assert_eq!(c.post("/v3/events/batch", json!({ "events": too_many })).await.0, 400);
    let names: Vec<String> = sb.events_for("a@example.com").into_iter().map(|e| e.event_name).collect();
    assert_eq!(names, vec!["stripe_charge_refunded", "ok_1"]);
    assert_eq!(sb.events()[0].event_properties["amount"], json!(12.5));
    assert_eq!(sb.requests(Family::Events), 4);
}

#[tokio::test]
async fn records_orders() {
    let sb = sandbox().await;
    let c = Client::new(&sb);
    let order = json!({"id": "in_1", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "status": "completed", "amount": 10.0, "identifiers": {"email_id": "a@example.com"}, "products": []});
    assert_eq!(c.post("/v3/orders/status", order).await.0, 204);
    assert_eq!(c.post("/v3/orders/status", json!({"id": "x"})).await.0, 400);
    assert_eq!(sb.orders()["in_1"]["amount"], json!(10.0));
}

#[tokio::test]
async fn injects_rate_limits_errors_delays_and_outages_per_family() {
    let sb = BrevoSandbox::start(BrevoSandboxOptions { rate_limit_reset_secs: 7, ..Default::default() }).await.unwrap();
    let c = Client::new(&sb);
    let ev = json!({"event_name": "e", "identifiers": {"email_id": "a@example.com"}});
    sb.fail_next(Family::Events, 1, Fault::RateLimited);
    sb.fail_next(Family::Events, 1, Fault::Status(502));
    let (s, h, _) = c.send(reqwest::Method::POST, "/v3/events", Some(ev.clone())).await;
    assert_eq!(s, 429);
    assert_eq!(h["x-sib-ratelimit-reset"], "7");
    assert_eq!(h["x-sib-ratelimit-limit"], "10");
    assert_eq!(h["x-sib-ratelimit-remaining"], "0");
    assert_eq!(c.post("/v3/events", ev.clone()).await.0, 502);
    assert_eq!(c.get("/v3/account").await.0, 200, "other families are not affected");
    assert_eq!(c.post("/v3/events", ev.clone()).await.0, 204);
    assert_eq!(sb.events().len(), 1, "faulted requests change nothing");

    sb.fail_next(Family::Other, 1, Fault::Delay(Duration::from_millis(120)));
    let start = std::time::Instant::now();
    assert_eq!(c.get("/v3/account").await.0, 200);
    assert!(start.elapsed() >= Duration::from_millis(110));

    sb.set_outage(true);
    assert_eq!(c.get("/v3/account").await.0, 503);
    assert_eq!(c.post("/v3/events", ev.clone()).await.0, 503);
    sb.reset_faults();
    assert_eq!(c.get("/v3/account").await.0, 200);

    sb.fail_randomly(Family::Contacts, 0.5, Fault::Status(500));
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(c.get("/v3/contacts/attributes").await.0);
    }
    let failed = statuses.iter().filter(|s| **s == 500).count();
    assert!((5..=35).contains(&failed), "about half should fail: {failed}");
    sb.reset_faults();
    assert_eq!(c.get("/v3/contacts/attributes").await.0, 200);
    let counts = sb.request_counts();
    assert_eq!(counts.get(Family::Contacts), 41);
    assert_eq!(counts.total(), sb.request_log().len() as u64);
}

#[tokio::test]
async fn random_faults_are_reproducible_with_the_same_seed() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sb = sandbox().await;
        sb.fail_randomly(Family::Other, 0.3, Fault::Status(503));
        let c = Client::new(&sb);
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(c.get("/v3/account").await.0);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn shuts_down_on_request() {
    let sb = sandbox().await;
    let base = sb.base_url();
    sb.shutdown().await;
    assert!(reqwest::get(format!("{base}/v3/account")).await.is_err());
}

#[tokio::test]
async fn answers_at_once_by_default_and_after_the_configured_latency_with_jitter() {
    async fn timed(c: &Client, n: usize) -> Vec<Duration> {
        let mut out = Vec::new();
        for _ in 0..n {
            let started = std::time::Instant::now();
            assert_eq!(c.get("/v3/account").await.0, 200);
            out.push(started.elapsed());
        }
        out
    }
    let sb = sandbox().await;
    assert!(timed(&Client::new(&sb), 3).await.iter().all(|d| *d < Duration::from_millis(40)), "none by default");

    let opts = BrevoSandboxOptions::default().with_latency(Duration::from_millis(60), Duration::from_millis(30));
    let sb = BrevoSandbox::start(opts).await.unwrap();
    let c = Client::new(&sb);
    let times = timed(&c, 12).await;
    assert!(times.iter().all(|d| *d >= Duration::from_millis(30)), "at least latency − jitter: {times:?}");
    let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(*max - *min > Duration::from_millis(5), "jittered, not constant: {times:?}");

    // A pace, not a fault: reset_faults keeps it, and it adds to an injected delay.
    sb.reset_faults();
    assert_eq!(
        sb.response_latency(),
        crate::latency::Latency::new(Duration::from_millis(60), Duration::from_millis(30))
    );
    sb.set_response_latency(Duration::from_millis(50), Duration::ZERO);
    sb.fail_next(Family::Other, 1, Fault::Delay(Duration::from_millis(50)));
    assert!(timed(&c, 1).await[0] >= Duration::from_millis(100));
    sb.set_response_latency(Duration::ZERO, Duration::ZERO);
    assert!(timed(&c, 3).await.iter().all(|d| *d < Duration::from_millis(25)));
}

#[tokio::test]
async fn an_enforced_rate_limit_answers_429_with_brevos_headers_until_the_second_is_over() {
    let opts = BrevoSandboxOptions::default().with_rate_limit(Family::Other, 3);
    let sb = BrevoSandbox::start(opts).await.unwrap();
    let c = Client::new(&sb);
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..5 {
        statuses.push(c.send(reqwest::Method::GET, "/v3/account", None).await);
    }
    assert!(started.elapsed() < Duration::from_millis(900), "all in one window");
    assert_eq!(statuses.iter().map(|s| s.0).collect::<Vec<_>>(), vec![200, 200, 200, 429, 429]);
    let h = &statuses[3].1;
    assert_eq!(h["x-sib-ratelimit-limit"], "3");
    assert_eq!(h["x-sib-ratelimit-remaining"], "0");
    assert_eq!(h["x-sib-ratelimit-reset"], "1");
    assert_eq!(c.get("/v3/contacts/attributes").await.0, 200, "other families are not limited");
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    assert_eq!(c.get("/v3/account").await.0, 200, "a new window");
    sb.reset_faults();
    let burst: Vec<u16> = account_gets(&c, 4).await;
    assert_eq!(burst.iter().filter(|s| **s == 429).count(), 2, "kept by reset_faults: {burst:?}");
    sb.set_rate_limit(Family::Other, None);
    assert!(account_gets(&c, 5).await.iter().all(|s| *s == 200));
}

/// `n` sequential GETs of `/v3/account`.
async fn account_gets(c: &Client, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.get("/v3/account").await.0);
    }
    out
}

#[tokio::test]
async fn the_rate_limits_are_the_accounts_shared_by_every_client_and_each_429_is_counted() {
    let sb = BrevoSandbox::start(BrevoSandboxOptions::default().with_rate_limit(Family::Other, 4)).await.unwrap();
    let (a, b) = (Client::new(&sb), Client::new(&sb));
    // Three each: under the limit for either client alone, over it together.
    let (from_a, from_b) = tokio::join!(account_gets(&a, 3), account_gets(&b, 3));
    let refused = from_a.iter().chain(&from_b).filter(|s| **s == 429).count() as u64;
    assert!(refused >= 1, "six requests against 4 per second: {from_a:?} {from_b:?}");
    sb.fail_next(Family::Contacts, 1, Fault::RateLimited);
    assert_eq!(a.get("/v3/contacts/attributes").await.0, 429);
    let counted = sb.rate_limited();
    assert_eq!((counted.other, counted.contacts, counted.events, counted.orders), (refused, 1, 0, 0));
    assert_eq!(counted.total(), sb.request_log().iter().filter(|r| r.status == 429).count() as u64);
    sb.clear_request_log();
    assert_eq!(sb.rate_limited().total(), 0);
}
