//! Brevo's own API definition (`sandbox/spec/brevo/openapi-v3.yml`, vendored
//! with its licence) as the authority on what each request may contain:
//! parsed once per process ([`spec`], on first use, never at start-up), with
//! the later changes of `notes` applied; every operation's path template,
//! path and query parameters and JSON body schema; and the check of one
//! request against its operation ([`Spec::check`]) with the rules of
//! [`schema`]. Used by the sandbox on every request it serves and by the
//! contract test over every body the connector's client sent.
//!
//! The YAML is read with its timestamps as strings (`serde_norway` into
//! `serde_json::Value`: an unquoted `2017-05-01T17:05:03Z` stays text).

mod notes;
mod schema;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

pub use notes::EVENTS_BATCH_MAX;
pub use schema::{Checker, Kind, Path, Seg, Violation};

/// The definition as Brevo published it (see `sandbox/spec/brevo/README.md`).
const DEFINITION: &str = include_str!("../../../spec/brevo/openapi-v3.yml");

/// The definition's server is `https://api.brevo.com/v3`: its paths are
/// relative to `/v3`.
const BASE: &str = "/v3";

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
}

/// One path or query parameter of an operation.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: In,
    pub required: bool,
    pub schema: Value,
}

/// One operation of the definition (with `notes` applied).
#[derive(Debug, Clone)]
pub struct Operation {
    /// Brevo's `operationId`: `createContact`, `addContactToList`, …
    pub id: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// `/v3/contacts/lists/{listId}/contacts/add`.
    pub template: String,
    /// Schema of the `application/json` body, when the operation takes one.
    pub body: Option<Value>,
    pub params: Vec<Param>,
}

/// The parsed definition: schemas and operations.
#[derive(Debug)]
pub struct Spec {
    schemas: Map<String, Value>,
    operations: Vec<Operation>,
    by_id: HashMap<String, usize>,
}

/// The definition, parsed on first use and kept for the process.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(DEFINITION).expect("the vendored Brevo definition parses"))
}

impl Spec {
    /// Parses a definition and applies `notes`.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let mut doc: Value = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        notes::apply(&mut doc);
        let schemas = doc.pointer("/components/schemas").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut operations = Vec::new();
        for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
            let shared = item.get("parameters");
            for method in ["get", "put", "post", "delete", "patch"] {
                if let Some(op) = item.get(method) {
                    operations.push(Operation::from_definition(method, path, op, shared));
                }
            }
        }
        let by_id = operations.iter().enumerate().map(|(i, op)| (op.id.clone(), i)).collect();
        Ok(Self { schemas, operations, by_id })
    }

    /// Resolves references and checks values against this definition's schemas.
    pub fn checker(&self) -> Checker<'_> {
        Checker { schemas: &self.schemas }
    }

    /// `components/schemas/<name>` (with `notes` applied).
    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.schemas.get(name)
    }

    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation with this `operationId`.
    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.by_id.get(id).map(|i| &self.operations[*i])
    }

    /// The operation a request is for: same method, path matching the
    /// template; the most literal template wins (`/contacts/import` over
    /// `/contacts/{identifier}`).
    pub fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .filter_map(|op| op.literal_match(method, path).map(|n| (n, op)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, op)| op)
    }

    /// Every problem of one request against `op`: its path and query
    /// parameters, then its body (`None`: no body sent).
    pub fn check(&self, op: &Operation, path: &str, query: Option<&str>, body: Option<&Value>) -> Vec<Violation> {
        let checker = self.checker();
        let mut out = op.check_params(checker, path, query);
        match (&op.body, body) {
            (Some(schema), Some(b)) => out.extend(checker.check(schema, b, &Path::default())),
            (Some(_), None) => out.push(Violation {
                path: Path::default(),
                kind: Kind::Missing,
                message: "body is missing".to_owned(),
            }),
            (None, Some(b)) if !b.is_null() => out.push(Violation {
                path: Path::default(),
                kind: Kind::Unknown,
                message: format!("{} {} takes no body", op.method, op.template),
            }),
            _ => {}
        }
        out
    }
}

impl Operation {
    fn from_definition(method: &str, path: &str, op: &Value, shared: Option<&Value>) -> Self {
        let params = shared
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten())
            .filter_map(|p| {
                let location = match p.get("in").and_then(Value::as_str) {
                    Some("path") => In::Path,
                    Some("query") => In::Query,
                    _ => return None,
                };
                Some(Param {
                    name: p.get("name").and_then(Value::as_str)?.to_owned(),
                    location,
                    required: p.get("required").and_then(Value::as_bool).unwrap_or(location == In::Path),
                    schema: p.get("schema").cloned().unwrap_or(Value::Object(Map::new())),
                })
            })
            .collect();
        Self {
            id: op.get("operationId").and_then(Value::as_str).unwrap_or_default().to_owned(),
            method: method.to_uppercase(),
            template: format!("{BASE}{path}"),
            body: op.pointer("/requestBody/content/application~1json/schema").cloned(),
            params,
        }
    }

    /// How many literal segments of the template `path` matches (`None`:
    /// another method or no match).
    fn literal_match(&self, method: &str, path: &str) -> Option<usize> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let (t, p) = (segments(&self.template), segments(path));
        if t.len() != p.len() {
            return None;
        }
        let mut literal = 0;
        for (a, b) in t.iter().zip(&p) {
            if is_param(a) {
                if b.is_empty() {
                    return None;
                }
            } else if a == b {
                literal += 1;
            } else {
                return None;
            }
        }
        Some(literal)
    }

    /// The path and query parameters' problems (unknown query parameters
    /// are not: Brevo ignores them).
    fn check_params(&self, checker: Checker<'_>, path: &str, query: Option<&str>) -> Vec<Violation> {
        let mut out = Vec::new();
        let (t, p) = (segments(&self.template), segments(path));
        let pairs = query_pairs(query);
        for param in &self.params {
            let raw: Vec<String> = match param.location {
                In::Path => t
                    .iter()
                    .zip(&p)
                    .filter(|(a, _)| a.trim_matches(['{', '}']) == param.name && is_param(a))
                    .map(|(_, b)| decode(b, false))
                    .collect(),
                In::Query => pairs.iter().filter(|(k, _)| *k == param.name).map(|(_, v)| v.clone()).collect(),
            };
            let at = Path(vec![Seg::Key(param.name.clone())]);
            if raw.is_empty() {
                if param.required {
                    out.push(Violation { message: format!("{at} is missing"), path: at, kind: Kind::Missing });
                }
                continue;
            }
            out.extend(checker.check(&param.schema, &param_value(checker, &param.schema, &raw), &at));
        }
        out
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_end_matches('/').split('/').skip(1).collect()
}

fn is_param(seg: &str) -> bool {
    seg.starts_with('{') && seg.ends_with('}')
}

/// A parameter's text as the JSON value its schema describes (an integer
/// parameter `"12"` is `12`); text that does not parse stays text, so the
/// check reports its type.
fn param_value(checker: Checker<'_>, schema: &Value, raw: &[String]) -> Value {
    let s = checker.resolve(schema);
    let scalar = |s: &Value, x: &str| -> Value {
        let text = || Value::String(x.to_owned());
        match s.get("type").and_then(Value::as_str) {
            Some("integer") => x.parse::<i64>().map(Value::from).unwrap_or_else(|_| text()),
            Some("number") => {
                x.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or_else(text, Value::Number)
            }
            Some("boolean") => match x {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => text(),
            },
            _ => text(),
        }
    };
    if s.get("type").and_then(Value::as_str) == Some("array") {
        let item = s.get("items").map(|i| checker.resolve(i)).cloned().unwrap_or_default();
        return Value::Array(raw.iter().flat_map(|r| r.split(',')).map(|x| scalar(&item, x)).collect());
    }
    scalar(s, raw.last().map(String::as_str).unwrap_or_default())
}

/// A query string's `(name, value)` pairs, decoded.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// Percent-decodes a path segment or (with `plus_is_space`) a query part.
pub(crate) fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
