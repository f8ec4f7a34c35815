//! The sandbox answers as Brevo's definition says, operation by operation,
//! through HTTP: a minimal valid request is accepted; the same request with
//! a key the definition does not have for that operation is refused with 400
//! `invalid_parameter` naming it; a known field of the wrong type is refused;
//! no property the definition lists is ever refused as unknown or mistyped.
//! Also missing fields, oversized batches, per-event problems (207),
//! `PUT /v3/contacts/{identifier}`, parameters, and the capture of the
//! client's requests.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use super::spec::tests::sample;
use super::spec::{spec, Checker};
use super::tests::{sandbox, Client};
use super::*;

/// One served operation: a minimal request Brevo accepts, a key its
/// definition lacks, and a known field with a value of another type.
struct Case {
    op: &'static str,
    method: Method,
    path: &'static str,
    body: Value,
    unknown: &'static str,
    wrong: (&'static str, Value, &'static str),
}

fn event() -> Value {
    json!({"event_name": "signed_up", "identifiers": {"email_id": "member@example.com"}})
}

fn order() -> Value {
    json!({"id": "o_1", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "status": "completed", "amount": 10.5, "products": [], "identifiers": {"email_id": "member@example.com"}})
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            op: "createContact",
            method: Method::POST,
            path: "/v3/contacts",
            body: json!({"email": "new@example.com", "updateEnabled": true}),
            unknown: "unlinkListIds",
            wrong: ("listIds", json!("20"), "listIds should be an array"),
        },
        Case {
            op: "updateContact",
            method: Method::PUT,
            path: "/v3/contacts/member%40example.com",
            body: json!({"attributes": {"FIRSTNAME": "Mem"}}),
            unknown: "updateEnabled",
            wrong: ("unlinkListIds", json!(["21"]), "unlinkListIds[0] should be an integer"),
        },
        Case {
            op: "importContacts",
            method: Method::POST,
            path: "/v3/contacts/import",
            body: json!({"jsonBody": [{"email": "imported@example.com"}], "listIds": [20]}),
            unknown: "emails",
            wrong: ("updateExistingContacts", json!("yes"), "updateExistingContacts should be a boolean"),
        },
        Case {
            op: "createAttribute",
            method: Method::POST,
            path: "/v3/contacts/attributes/normal/LOYALTY",
            body: json!({"type": "float"}),
            unknown: "category",
            wrong: ("type", json!(1), "type should be a string"),
        },
        Case {
            op: "addContactToList",
            method: Method::POST,
            path: "/v3/contacts/lists/20/contacts/add",
            body: json!({"emails": ["member@example.com"]}),
            unknown: "listId",
            wrong: ("emails", json!("member@example.com"), "emails should be an array"),
        },
        Case {
            op: "removeContactFromList",
            method: Method::POST,
            path: "/v3/contacts/lists/21/contacts/remove",
            body: json!({"emails": ["member@example.com"]}),
            unknown: "listId",
            wrong: ("emails", json!([1]), "emails[0] should be a string"),
        },
        Case {
            op: "createEvent",
            method: Method::POST,
            path: "/v3/events",
            body: event(),
            unknown: "contact_id",
            wrong: ("event_date", json!(1_700_000_000), "event_date should be a string"),
        },
        Case {
            op: "createBatchEvents",
            method: Method::POST,
            path: "/v3/events/batch",
            body: json!({"events": [event()]}),
            unknown: "batch_id",
            wrong: ("events", json!({}), "events should be an array"),
        },
        Case {
            op: "createOrder",
            method: Method::POST,
            path: "/v3/orders/status",
            body: order(),
            unknown: "email",
            wrong: ("amount", json!("10.50"), "amount should be a number"),
        },
    ]
}

fn with(body: &Value, key: &str, v: Value) -> Value {
    let mut b = body.clone();
    b.as_object_mut().unwrap().insert(key.to_owned(), v);
    b
}

/// The top-level properties the definition lists for a body (those of
/// every alternative when it is a `oneOf`).
fn top_level(c: Checker<'_>, schema: &Value) -> Vec<(String, Value)> {
    let s = c.resolve(schema);
    let mut out: Vec<(String, Value)> = Vec::new();
    let alts = s.get("oneOf").and_then(Value::as_array).cloned().unwrap_or_default();
    for part in std::iter::once(s).chain(alts.iter().map(|a| c.resolve(a))) {
        for (k, p) in part.get("properties").and_then(Value::as_object).into_iter().flatten() {
            out.push((k.clone(), p.clone()));
        }
    }
    out
}

/// A 400 of the definition's check about `key` (unknown, or of a wrong type).
fn refused_by_definition(key: &str, status: u16, v: &Value) -> bool {
    let message = v["message"].as_str().unwrap_or_default();
    let about_key = [" ", "[", "."].iter().any(|sep| message.starts_with(&format!("{key}{sep}")));
    status == 400 && about_key && (message.contains("is not a valid parameter") || message.contains(" should be "))
}

async fn account_with_member() -> BrevoSandbox {
    let sb = sandbox().await;
    sb.seed_contact("member@example.com", BTreeMap::new(), &[21]);
    sb
}

#[tokio::test]
async fn every_served_operation_refuses_a_field_its_definition_lacks_and_a_wrong_type_and_takes_every_listed_one() {
    let covered: BTreeSet<&str> = cases().iter().map(|c| c.op).collect();
    let writes: BTreeSet<&str> =
        SERVED_OPERATIONS.iter().copied().filter(|id| spec().operation(id).unwrap().body.is_some()).collect();
    assert_eq!(covered, writes, "one case per operation with a body");
    for case in cases() {
        let sb = account_with_member().await;
        let c = Client::new(&sb);
        let op = spec().operation(case.op).unwrap();
        assert_eq!(
            (op.method.as_str(), spec().find(op.method.as_str(), case.path).map(|o| o.id.as_str())),
            (case.method.as_str(), Some(case.op))
        );
        let send = |b: Value| c.send(case.method.clone(), case.path, Some(b));

        let (s, _, v) = send(with(&case.body, case.unknown, json!(1))).await;
        let want =
            json!({"code": "invalid_parameter", "message": format!("{} is not a valid parameter", case.unknown)});
        assert_eq!((s, &v), (400, &want), "{}", case.op);
        let (field, value, message) = &case.wrong;
        let (s, _, v) = send(with(&case.body, field, value.clone())).await;
        assert_eq!((s, &v), (400, &json!({"code": "invalid_parameter", "message": message})), "{}", case.op);
        assert_eq!(sb.request_log().len(), 2);
        assert!(
            sb.events().is_empty() && sb.orders().is_empty() && sb.imports().is_empty(),
            "refused: nothing recorded"
        );
        assert_eq!(sb.contacts().len(), 1);

        let (s, _, v) = send(case.body.clone()).await;
        assert!((200..300).contains(&s), "{}: minimal request refused: {s} {v}", case.op);

        let schema = op.body.as_ref().unwrap();
        let listed = top_level(spec().checker(), schema);
        assert!(!listed.is_empty(), "{}", case.op);
        for (key, prop) in listed {
            let value = sample(spec().checker(), &prop);
            let mut b = with(&case.body, &key, value.clone());
            if !spec().check(op, case.path, None, Some(&b)).is_empty() {
                b = json!({ key.clone(): value }); // another shape of a oneOf
            }
            assert!(spec().check(op, case.path, None, Some(&b)).is_empty(), "{}: {b}", case.op);
            let (s, _, v) = send(b).await;
            assert!(!refused_by_definition(&key, s, &v), "{}: {key} is in the definition: {s} {v}", case.op);
        }
    }
}

#[tokio::test]
async fn missing_fields_and_oversized_batches_are_refused_as_brevo_does() {
    let sb = account_with_member().await;
    let c = Client::new(&sb);
    let mut no_update = order();
    no_update.as_object_mut().unwrap().remove("updatedAt");
    let (s, v) = c.post("/v3/orders/status", no_update).await;
    assert_eq!((s, v), (400, json!({"code": "missing_parameter", "message": "updatedAt is missing"})));
    let (s, v) = c.post("/v3/events", json!({"event_name": "e"})).await;
    assert_eq!((s, v), (400, json!({"code": "missing_parameter", "message": "identifiers is missing"})));
    let (s, v) = c.post("/v3/events", json!({"event_name": "e", "identifiers": {}})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")), "at least one identifier");
    let (s, v) = c.post("/v3/events/batch", json!({})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("missing_parameter")));
    let (s, v) = c.post("/v3/events/batch", json!({"events": []})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
    let many: Vec<Value> = (0..201).map(|_| event()).collect();
    let (s, v) = c.post("/v3/events/batch", json!({ "events": many })).await;
    assert_eq!(
        (s, v),
        (400, json!({"code": "out_of_range", "message": "events should have at most 200 items, not 201"}))
    );
    let emails: Vec<String> = (0..151).map(|i| format!("u{i}@example.com")).collect();
    let (s, v) = c.post("/v3/contacts/lists/20/contacts/add", json!({ "emails": emails })).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("out_of_range")));
    let (s, v) = c.post("/v3/contacts/lists/20/contacts/add", json!({})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("missing_parameter")));
    let big = "x".repeat(validation::IMPORT_BODY_MAX);
    let body = json!({"jsonBody": [{"email": "big@example.com", "attributes": {"FIRSTNAME": big}}], "listIds": [20]});
    let (s, v) = c.post("/v3/contacts/import", body).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")), "over 10 MB");
    assert!(sb.events().is_empty() && sb.imports().is_empty() && sb.orders().is_empty());
}

#[tokio::test]
async fn a_batch_refuses_only_the_events_whose_shape_is_wrong_with_a_207() {
    let sb = account_with_member().await;
    let c = Client::new(&sb);
    let odd = json!({"event_name": "e", "identifiers": {"email_id": "member@example.com", "user": "u1"}});
    let (s, v) = c.post("/v3/events/batch", json!({"events": [event(), odd.clone(), event()]})).await;
    assert_eq!(s, 207);
    assert_eq!(v["errors"], json!([{"index": 1, "message": "events[1].identifiers.user is not a valid parameter"}]));
    assert_eq!(sb.events().len(), 2);
    let (s, v) = c.post("/v3/events/batch", json!({"events": [odd]})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")), "none recorded: {v}");
    assert_eq!(sb.events().len(), 2);
}

#[tokio::test]
async fn update_contact_finds_the_contact_by_its_identifier_and_applies_brevos_rules() {
    let sb = account_with_member().await;
    sb.add_attribute("LTV", "float");
    let c = Client::new(&sb);
    let id = sb.contact("member@example.com").unwrap().id;
    let put = |path: String, b: Value| {
        let c = &c;
        async move { c.send(Method::PUT, &path, Some(b)).await }
    };
    let (s, _, _) = put(
        format!("/v3/contacts/{id}?identifierType=contact_id"),
        json!({"listIds": [20], "unlinkListIds": [21], "attributes": {"LTV": 3.5}}),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(sb.lists_of("member@example.com"), vec![20]);
    let (s, _, _) = put("/v3/contacts/member%40example.com".into(), json!({"attributes": {"LTV": "lots"}})).await;
    assert_eq!(s, 204, "a value of the wrong type is ignored");
    assert_eq!(sb.contact("member@example.com").unwrap().attributes["LTV"], json!(3.5));
    let (s, _, v) = put("/v3/contacts/member%40example.com".into(), json!({"attributes": {"NOPE": 1}})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
    let (s, _, v) = put("/v3/contacts/member%40example.com?identifierType=mail".into(), json!({})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")), "{v}");
    let (s, _, v) = put("/v3/contacts/nobody%40example.com".into(), json!({})).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("document_not_found")));
    sb.seed_contact("other@example.com", BTreeMap::new(), &[]);
    let (s, _, v) =
        put("/v3/contacts/member%40example.com".into(), json!({"attributes": {"EMAIL": "other@example.com"}})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("duplicate_parameter")));
    let (s, _, _) =
        put("/v3/contacts/member%40example.com".into(), json!({"attributes": {"EMAIL": "Renamed@Example.com"}})).await;
    assert_eq!(s, 204);
    assert!(sb.contact("member@example.com").is_none());
    let renamed = sb.contact("renamed@example.com").unwrap();
    assert_eq!((renamed.id, renamed.attributes["LTV"].clone()), (id, json!(3.5)), "same contact, history kept");
}

#[tokio::test]
async fn path_and_query_parameters_are_checked_against_the_definition() {
    let sb = sandbox().await;
    let c = Client::new(&sb);
    assert_eq!(c.get("/v3/contacts/lists?limit=50&sort=asc").await.0, 200);
    let (s, v) = c.get("/v3/contacts/lists?limit=51").await;
    assert_eq!((s, v), (400, json!({"code": "invalid_parameter", "message": "limit is out of range"})));
    let (s, v) = c.get("/v3/contacts/lists/abc").await;
    assert_eq!((s, v), (400, json!({"code": "invalid_parameter", "message": "listId should be an integer"})));
    let (s, v) = c.post("/v3/contacts/attributes/weird/X", json!({"type": "text"})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
    assert!(v["message"].as_str().unwrap().starts_with("attributeCategory should be one of"), "{v}");
}

#[tokio::test]
async fn the_capture_records_the_clients_requests_only_and_nothing_without_a_directory() {
    let dir = std::env::temp_dir().join(format!("brevo-capture-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = BrevoSandboxOptions { capture_dir: Some(dir.clone()), ..Default::default() };
    let sb = BrevoSandbox::start(opts).await.unwrap();
    let file = sb.capture_file().unwrap();
    assert!(file.starts_with(&dir));
    let c = Client::new(&sb);
    let agent = Some("stripe-brevo/0.1.0");
    c.send_as(agent, Method::POST, "/v3/contacts?x=1", Some(json!({"email": "a@example.com", "nope": 1}))).await;
    c.send_as(agent, Method::GET, "/v3/account", None).await;
    c.send_as(Some("curl/8"), Method::POST, "/v3/contacts", Some(json!({"email": "b@example.com"}))).await;
    c.send(Method::POST, "/v3/contacts", Some(json!({"email": "c@example.com"}))).await;
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines,
        vec![
            json!({"method": "POST", "path": "/v3/contacts", "query": "x=1", "status": 400, "body": {"email": "a@example.com", "nope": 1}}),
            json!({"method": "GET", "path": "/v3/account", "query": null, "status": 200, "body": null}),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
    let plain = BrevoSandbox::start(BrevoSandboxOptions { capture_dir: None, ..Default::default() }).await.unwrap();
    assert!(plain.capture_file().is_none());
}
