//! Tests of the definition's loading and of the checker: on small schemas,
//! and generated from Brevo's definition (every property it lists for an
//! operation the sandbox serves is accepted, any other key refused, at every
//! level of the body).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::*;
use crate::brevo::SERVED_OPERATIONS;

fn checker(schemas: &Map<String, Value>) -> Checker<'_> {
    Checker { schemas }
}

fn messages(vs: &[Violation]) -> Vec<String> {
    vs.iter().map(|v| v.message.clone()).collect()
}

fn kinds(vs: &[Violation]) -> Vec<Kind> {
    vs.iter().map(|v| v.kind).collect()
}

fn root() -> Path {
    Path::default()
}

// ---- the checker on small schemas ----

#[test]
fn an_object_listing_properties_is_closed_unless_it_declares_additional_properties() {
    let none = Map::new();
    let c = checker(&none);
    let closed = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    assert!(c.check(&closed, &json!({"a": "x"}), &root()).is_empty());
    let vs = c.check(&closed, &json!({"a": "x", "b": 1}), &root());
    assert_eq!(messages(&vs), ["b is not a valid parameter"]);
    assert_eq!((vs[0].kind, vs[0].kind.code()), (Kind::Unknown, "invalid_parameter"));
    assert_eq!(vs[0].path, Path(vec![Seg::Key("b".into())]));

    let explicit_false = json!({"type": "object", "additionalProperties": false});
    assert_eq!(kinds(&c.check(&explicit_false, &json!({"b": 1}), &root())), [Kind::Unknown]);
    for open in [json!(true), json!({})] {
        let s = json!({"type": "object", "properties": {"a": {}}, "additionalProperties": open});
        assert!(c.check(&s, &json!({"anything": [1, {"x": null}]}), &root()).is_empty());
    }
    let typed = json!({"type": "object", "additionalProperties": {"type": "number"}});
    assert!(c.check(&typed, &json!({"X": 1.5, "Y": 2}), &root()).is_empty());
    assert_eq!(messages(&c.check(&typed, &json!({"X": "1"}), &root())), ["X should be a number"]);
    // An object schema listing no properties is free-form.
    assert!(c.check(&json!({"type": "object"}), &json!({"free": {"form": true}}), &root()).is_empty());
}

#[test]
fn types_required_keys_enums_lengths_and_bounds_are_checked_with_brevos_codes() {
    let none = Map::new();
    let c = checker(&none);
    let s = json!({
        "type": "object",
        "required": ["id", "n"],
        "properties": {
            "id": {"type": "string", "maxLength": 3, "minLength": 2},
            "n": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 10},
            "big": {"type": "integer", "format": "int64"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
            "kind": {"type": "string", "enum": ["a", "b"]},
        }
    });
    assert!(c.check(&s, &json!({"id": "ab", "n": 3, "x": 1, "b": false, "kind": "a"}), &root()).is_empty());
    let vs = c.check(&s, &json!({}), &root());
    assert_eq!(messages(&vs), ["id is missing", "n is missing"]);
    assert!(vs.iter().all(|v| v.kind.code() == "missing_parameter"));
    let cases = [
        (json!({"id": 12, "n": 1}), "id should be a string"),
        (json!({"id": "abcd", "n": 1}), "id should be at most 3 characters long"),
        (json!({"id": "a", "n": 1}), "id should be at least 2 characters long"),
        (json!({"id": "ab", "n": 1.5}), "n should be an integer"),
        (json!({"id": "ab", "n": "1"}), "n should be an integer"),
        (json!({"id": "ab", "n": 11}), "n is out of range"),
        (json!({"id": "ab", "n": 1, "big": u64::MAX}), "big should be a 64-bit integer"),
        (json!({"id": "ab", "n": 1, "x": "1"}), "x should be a number"),
        (json!({"id": "ab", "n": 1, "b": "true"}), "b should be a boolean"),
        (json!({"id": "ab", "n": 1, "kind": "c"}), "kind should be one of \"a\", \"b\""),
        (json!({"id": "ab", "n": null}), "n should be an integer"),
    ];
    for (body, want) in cases {
        assert_eq!(messages(&c.check(&s, &body, &root())), [want], "{body}");
    }
    assert_eq!(messages(&c.check(&s, &json!([]), &root())), ["body should be an object"]);
    let nullable = json!({"type": "string", "nullable": true});
    assert!(c.check(&nullable, &Value::Null, &root()).is_empty());
}

#[test]
fn arrays_check_their_items_and_sizes_and_paths_name_the_item() {
    let none = Map::new();
    let c = checker(&none);
    let s = json!({"type": "object", "properties": {"ids": {
        "type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "integer"}
    }}});
    assert!(c.check(&s, &json!({"ids": [1, 2, 3]}), &root()).is_empty());
    let vs = c.check(&s, &json!({"ids": [1, "2"]}), &root());
    assert_eq!(messages(&vs), ["ids[1] should be an integer"]);
    assert_eq!(vs[0].path, Path(vec![Seg::Key("ids".into()), Seg::Index(1)]));
    let vs = c.check(&s, &json!({"ids": [1, 2, 3, 4]}), &root());
    assert_eq!(
        (messages(&vs), vs[0].kind.code()),
        (vec!["ids should have at most 3 items, not 4".to_owned()], "out_of_range")
    );
    let vs = c.check(&s, &json!({"ids": []}), &root());
    assert_eq!(
        (messages(&vs), vs[0].kind.code()),
        (vec!["ids should have at least 1 items".to_owned()], "invalid_parameter")
    );
    let nested = json!({"type": "array", "items": {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}}}}});
    let vs = c.check(&nested, &json!([{"a": {"b": 1}}, {"a": {"c": 1}}]), &root());
    assert_eq!(messages(&vs), ["[1].a.c is not a valid parameter"]);
}

#[test]
fn references_resolve_and_all_of_merges_the_parts_into_one_closed_object() {
    let schemas: Map<String, Value> = serde_json::from_value(json!({
        "base": {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}},
        "alias": {"$ref": "#/components/schemas/base"},
        "more": {"allOf": [
            {"$ref": "#/components/schemas/alias"},
            {"type": "object", "required": ["b"], "properties": {"b": {"type": "integer"}}}
        ]},
    }))
    .unwrap();
    let c = checker(&schemas);
    let more = json!({"$ref": "#/components/schemas/more"});
    assert!(c.check(&more, &json!({"a": "x", "b": 1}), &root()).is_empty(), "each part allows the other's keys");
    assert_eq!(messages(&c.check(&more, &json!({"a": "x"}), &root())), ["b is missing"]);
    assert_eq!(messages(&c.check(&more, &json!({"a": "x", "b": 1, "c": 1}), &root())), ["c is not a valid parameter"]);
    assert_eq!(
        messages(&c.check(&json!({"$ref": "#/components/schemas/alias"}), &json!({"a": 1}), &root())),
        ["a should be a string"]
    );
}

#[test]
fn one_of_takes_any_fitting_alternative_and_reports_the_closest_one_otherwise() {
    let schemas: Map<String, Value> = serde_json::from_value(json!({
        "byEmails": {"type": "object", "properties": {"emails": {"type": "array", "items": {"type": "string"}}}},
        "byIds": {"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "integer"}}}},
    }))
    .unwrap();
    let c = checker(&schemas);
    let value = json!({"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "array", "items": {"type": "string"}}]});
    for ok in [json!(1), json!(2.5), json!("x"), json!(true), json!(["a"]), json!([])] {
        assert!(c.check(&value, &ok, &root()).is_empty(), "{ok}");
    }
    assert_eq!(
        messages(&c.check(&value, &json!({"a": 1}), &root())),
        ["body should be a number or a string or a boolean or an array"]
    );
    assert_eq!(messages(&c.check(&value, &json!([1]), &root())), ["[0] should be a string"]);
    let list = json!({"oneOf": [{"$ref": "#/components/schemas/byEmails"}, {"$ref": "#/components/schemas/byIds"}]});
    assert!(c.check(&list, &json!({"emails": ["a@b.co"]}), &root()).is_empty());
    assert!(c.check(&list, &json!({"ids": [1]}), &root()).is_empty());
    assert_eq!(
        messages(&c.check(&list, &json!({"emails": ["a@b.co"], "x": 1}), &root())),
        ["x is not a valid parameter"]
    );
    assert_eq!(
        kinds(&c.check(&list, &json!({"emails": ["a"], "ids": [1]}), &root())),
        [Kind::Unknown],
        "one shape at a time"
    );
}

#[test]
fn parameters_are_read_from_the_path_and_the_query_and_the_most_literal_template_wins() {
    let yaml = r#"
paths:
  /lists/{listId}:
    get:
      operationId: getList
      parameters:
        - {name: listId, in: path, required: true, schema: {type: integer, format: int64}}
        - {name: sort, in: query, schema: {type: string, enum: [asc, desc]}}
        - {name: limit, in: query, schema: {type: integer, maximum: 50}}
        - {name: ids, in: query, schema: {type: array, items: {type: integer}}}
        - {name: since, in: query, required: true, schema: {type: string}}
  /lists/folders:
    get:
      operationId: getFolders
    post:
      operationId: createFolder
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {name: {type: string}}}
"#;
    let spec = Spec::parse(yaml).unwrap();
    assert_eq!(spec.find("GET", "/v3/lists/folders").unwrap().id, "getFolders");
    assert_eq!(spec.find("get", "/v3/lists/12").unwrap().id, "getList");
    assert_eq!(spec.find("POST", "/v3/lists/folders").unwrap().id, "createFolder");
    assert!(spec.find("DELETE", "/v3/lists/12").is_none());
    assert!(spec.find("GET", "/v3/lists/12/more").is_none());
    let op = spec.operation("getList").unwrap();
    let check = |path: &str, q: &str| messages(&spec.check(op, path, Some(q), None));
    assert!(check("/v3/lists/12", "since=2024-01-01T00%3A00%3A00Z&sort=asc&limit=50&ids=1,2&ids=3&other=x").is_empty());
    assert_eq!(check("/v3/lists/twelve", "since=x"), ["listId should be an integer"]);
    assert_eq!(check("/v3/lists/12", ""), ["since is missing"]);
    assert_eq!(check("/v3/lists/12", "since=x&sort=up"), ["sort should be one of \"asc\", \"desc\""]);
    assert_eq!(check("/v3/lists/12", "since=x&limit=51"), ["limit is out of range"]);
    assert_eq!(check("/v3/lists/12", "since=x&ids=1,b"), ["ids[1] should be an integer"]);
    let folder = spec.operation("createFolder").unwrap();
    assert!(spec.check(folder, "/v3/lists/folders", None, Some(&json!({"name": "x"}))).is_empty());
    assert_eq!(messages(&spec.check(folder, "/v3/lists/folders", None, None)), ["body is missing"]);
    let get = spec.operation("getFolders").unwrap();
    assert_eq!(
        messages(&spec.check(get, "/v3/lists/folders", None, Some(&json!({"a": 1})))),
        ["GET /v3/lists/folders takes no body"]
    );
}

#[test]
fn percent_encoded_parts_are_decoded() {
    assert_eq!(decode("a%40b.co", false), "a@b.co");
    assert_eq!(decode("a+b%2Bc", false), "a+b+c");
    assert_eq!(decode("a+b", true), "a b");
    assert_eq!(decode("100%", false), "100%");
    assert_eq!(
        query_pairs(Some("identifierType=email_id&x")),
        [("identifierType".into(), "email_id".into()), ("x".into(), String::new())]
    );
}

// ---- Brevo's definition ----

#[test]
fn the_vendored_definition_parses_with_its_timestamps_kept_as_text() {
    let doc: Value = serde_norway::from_str(DEFINITION).unwrap();
    let created = doc.pointer(
        "/paths/~1contacts/get/responses/200/content/application~1json/examples/response/value/contacts/0/createdAt",
    );
    assert_eq!(created, Some(&json!("2017-05-01T17:05:03Z")));
    let s = spec();
    assert!(s.operations().len() > 100, "{}", s.operations().len());
    assert!(s.schema("createContact").is_some());
}

#[test]
fn every_operation_the_sandbox_serves_is_in_the_definition() {
    for id in SERVED_OPERATIONS {
        let op = spec().operation(id).unwrap_or_else(|| panic!("{id} is not in Brevo's definition"));
        assert!(op.template.starts_with("/v3/"), "{}", op.template);
        assert_eq!(op.body.is_some(), op.method != "GET", "{id}: a body exactly for the writes");
    }
}

#[test]
fn the_later_changes_of_notes_md_are_applied() {
    let s = spec();
    let props = s.schema("createContact").unwrap()["properties"].as_object().unwrap();
    assert!(props.contains_key("forceMerge") && props.contains_key("getId"));
    assert!(!props.contains_key("unlinkListIds"), "only updateContact takes it");
    assert!(s.schema("updateContact").unwrap()["properties"].get("unlinkListIds").is_some());
    let batch = s.find("POST", "/v3/events/batch").unwrap();
    assert_eq!(batch.id, "createBatchEvents");
    let events = &batch.body.as_ref().unwrap()["properties"]["events"];
    assert_eq!((events["maxItems"].as_u64(), events["minItems"].as_u64()), (Some(EVENTS_BATCH_MAX), Some(1)));
    assert_eq!(events["items"]["$ref"], "#/components/schemas/event");
    // identifierType was already in the file for GET, PUT and DELETE.
    let empty = json!({});
    for method in ["GET", "PUT", "DELETE"] {
        let op = s.find(method, "/v3/contacts/jane%40example.com").unwrap();
        let p = op.params.iter().find(|p| p.name == "identifierType").unwrap_or_else(|| panic!("{method}"));
        let allowed: BTreeSet<&str> = p.schema["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let want: BTreeSet<&str> =
            ["email_id", "contact_id", "ext_id", "phone_id", "whatsapp_id", "landline_number_id"].into();
        assert_eq!(allowed, want, "{method}");
        assert!(s
            .check(op, "/v3/contacts/7", Some("identifierType=contact_id"), op.body.as_ref().map(|_| &empty))
            .is_empty());
        assert_eq!(
            kinds(&s.check(op, "/v3/contacts/7", Some("identifierType=id"), op.body.as_ref().map(|_| &empty))),
            [Kind::Invalid]
        );
    }
    // event_properties takes numbers and booleans, as its own description says.
    let event = json!({"event_name": "e", "identifiers": {"email_id": "a@b.co"}, "event_properties": {"amount": 12.5, "ok": true, "n": 3, "s": "x", "o": {"k": 1}, "l": [1]}});
    let op = s.operation("createEvent").unwrap();
    assert!(s.check(op, "/v3/events", None, Some(&event)).is_empty());
}

/// A value the schema takes: required keys only, the first enum value or
/// alternative, one item per array.
pub(crate) fn sample(c: Checker<'_>, schema: &Value) -> Value {
    let s = c.resolve(schema);
    if let Some(first) = s.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    if let Some(first) = s.get("oneOf").or_else(|| s.get("anyOf")).and_then(|a| a.get(0)) {
        return sample(c, first);
    }
    match s.get("type").and_then(Value::as_str) {
        Some("integer") => json!(s.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        Some("array") => {
            let n = s.get("minItems").and_then(Value::as_u64).unwrap_or(1).max(1);
            let item = s.get("items").map(|i| sample(c, i)).unwrap_or(json!("x"));
            Value::Array(vec![item; n as usize])
        }
        Some("object") => sample_object(c, s),
        _ if s.get("properties").is_some() => sample_object(c, s),
        _ => json!("x".repeat(s.get("minLength").and_then(Value::as_u64).unwrap_or(1) as usize)),
    }
}

fn sample_object(c: Checker<'_>, s: &Value) -> Value {
    let props = s.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut out = Map::new();
    for k in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        out.insert(k.to_owned(), props.get(k).map(|p| sample(c, p)).unwrap_or(json!("x")));
    }
    let min = s.get("minProperties").and_then(Value::as_u64).unwrap_or(0) as usize;
    for (k, p) in &props {
        if out.len() >= min {
            break;
        }
        out.insert(k.clone(), sample(c, p));
    }
    Value::Object(out)
}

/// The operation's path with each parameter set to a sample of its schema.
fn sample_path(spec: &Spec, op: &Operation) -> String {
    let mut path = op.template.clone();
    for p in op.params.iter().filter(|p| p.location == In::Path) {
        let v = match sample(spec.checker(), &p.schema) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        path = path.replace(&format!("{{{}}}", p.name), &v);
    }
    path
}

/// A value of another JSON type than `t`.
fn other_type(t: &str) -> Value {
    match t {
        "string" => json!(12345),
        _ => json!("not the right type"),
    }
}

fn set(body: &mut Value, path: &[Seg], v: Value) {
    let mut at = body;
    for seg in path {
        at = match seg {
            Seg::Key(k) => at.as_object_mut().unwrap().entry(k.clone()).or_insert(Value::Null),
            Seg::Index(i) => &mut at.as_array_mut().unwrap()[*i],
        };
    }
    *at = v;
}

/// Walks every object of `schema` (at `path` in `body`, which holds a value
/// that fits): each listed property set to a sample is accepted, set to
/// another type is refused, and a key the schema does not list is refused
/// unless the object is free-form. Returns the properties seen, by path.
fn walk(spec: &Spec, op: &Operation, body: &Value, schema: &Value, path: &Path, seen: &mut BTreeSet<String>) {
    let c = spec.checker();
    let s = c.resolve(schema);
    let concrete = sample_path(spec, op);
    let check = |b: &Value| spec.check(op, &concrete, None, Some(b));
    for key in ["oneOf", "anyOf"] {
        for alt in s.get(key).and_then(Value::as_array).into_iter().flatten() {
            let mut b = body.clone();
            set(&mut b, &path.0, sample(c, alt));
            if check(&b).is_empty() {
                walk(spec, op, &b, alt, path, seen);
            }
        }
    }
    match s.get("type").and_then(Value::as_str) {
        Some("array") => {
            if let Some(items) = s.get("items") {
                let mut b = body.clone();
                set(&mut b, &path.0, json!([sample(c, items)]));
                assert!(check(&b).is_empty(), "{}: {path} with one sample item: {:?}", op.id, check(&b));
                walk(spec, op, &b, items, &path.with(Seg::Index(0)), seen);
            }
            return;
        }
        Some("object") | None if s.get("properties").is_some() || s.get("additionalProperties").is_some() => {}
        _ => return,
    }
    for (k, p) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let at = path.with(Seg::Key(k.clone()));
        let mut b = body.clone();
        set(&mut b, &at.0, sample(c, p));
        assert!(check(&b).is_empty(), "{}: {at} is in the definition but refused: {:?}", op.id, check(&b));
        seen.insert(at.to_string());
        if let Some(t) = c.resolve(p).get("type").and_then(Value::as_str) {
            let mut wrong = body.clone();
            set(&mut wrong, &at.0, other_type(t));
            let found = check(&wrong);
            assert!(
                found.iter().any(|v| v.kind == Kind::WrongType && v.path == at),
                "{}: {at} of another type: {found:?}",
                op.id
            );
        }
        walk(spec, op, &b, p, &at, seen);
    }
    let extra = path.with(Seg::Key("notInBrevosDefinition".into()));
    let mut b = body.clone();
    set(&mut b, &extra.0, json!("x"));
    let found = check(&b);
    match s.get("additionalProperties") {
        Some(Value::Bool(true)) => assert!(found.is_empty(), "{}: {path} is free-form: {found:?}", op.id),
        Some(a @ Value::Object(_)) => {
            set(&mut b, &extra.0, sample(c, a));
            assert!(check(&b).is_empty(), "{}: {path} takes extra keys of its schema", op.id);
        }
        _ => assert!(
            found.iter().any(|v| v.kind == Kind::Unknown && v.path == extra && v.kind.code() == "invalid_parameter"),
            "{}: {extra} is not in the definition but accepted: {found:?}",
            op.id
        ),
    }
}

#[test]
fn every_property_the_definition_lists_is_accepted_and_any_other_key_refused_for_each_served_operation() {
    let s = spec();
    let mut total = 0;
    for id in SERVED_OPERATIONS {
        let op = s.operation(id).unwrap();
        let Some(schema) = &op.body else { continue };
        let minimal = sample(s.checker(), schema);
        let found = s.check(op, &sample_path(s, op), None, Some(&minimal));
        assert!(found.is_empty(), "{id}: {minimal}: {found:?}");
        let mut seen = BTreeSet::new();
        walk(s, op, &minimal, schema, &root(), &mut seen);
        assert!(!seen.is_empty(), "{id}: no property walked");
        total += seen.len();
        if id == "createContact" {
            let top: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
            let want: BTreeSet<&str> = [
                "email",
                "ext_id",
                "attributes",
                "emailBlacklisted",
                "smsBlacklisted",
                "listIds",
                "updateEnabled",
                "smtpBlacklistSender",
                "forceMerge",
                "getId",
            ]
            .into();
            assert_eq!(top, want, "createContact takes exactly these");
        }
    }
    assert!(total > 60, "properties walked over the served operations: {total}");
}
