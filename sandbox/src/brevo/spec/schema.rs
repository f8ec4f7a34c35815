//! Checks a JSON value against a schema of Brevo's OpenAPI 3.0 definition,
//! the subset the file uses: `$ref` (to `#/components/schemas/…`), `type`
//! (integer, number, string, boolean, object, array), `nullable`,
//! `properties`, `required`, `additionalProperties`, `minProperties` /
//! `maxProperties`, `items`, `minItems` / `maxItems`, `enum`, `minLength` /
//! `maxLength`, `minimum` / `maximum`, `format: int64`, and `allOf`, `oneOf`,
//! `anyOf`.
//!
//! Brevo's rules, not JSON Schema's defaults:
//! - **objects are closed**: a schema that lists `properties` refuses any
//!   other key unless it declares `additionalProperties` (`true`, `{}` or a
//!   schema the extra values must fit); an object schema listing no
//!   properties at all is free-form;
//! - `oneOf` is read as "fits at least one": the file uses it for unions of
//!   shapes (a number *or* a string; e-mails *or* ids), and exclusivity
//!   would refuse bodies such as `[]` that fit two of them;
//! - `format: email` / `url` are not checked here: the sandbox's value rules
//!   answer those with Brevo's own messages.
//!
//! Each problem is a [`Violation`] with the path in the body (`listIds[0]`,
//! `events[3].identifiers`) and Brevo's error code for it.

use std::fmt;

use serde_json::{Map, Value};

/// What is wrong, and so which `code` Brevo answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A key the schema does not have (`invalid_parameter`).
    Unknown,
    /// A value of another JSON type (`invalid_parameter`).
    WrongType,
    /// A required key is absent (`missing_parameter`).
    Missing,
    /// Too many items (`out_of_range`), e.g. 151 e-mails or 201 events.
    TooMany,
    /// Any other rule: enum, length, too few items, bounds (`invalid_parameter`).
    Invalid,
}

impl Kind {
    /// Brevo's `code` for this kind of problem.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Missing => "missing_parameter",
            Kind::TooMany => "out_of_range",
            Kind::Unknown | Kind::WrongType | Kind::Invalid => "invalid_parameter",
        }
    }
}

/// One step of a path in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where in the body: `attributes.FIRSTNAME`, `jsonBody[2].email`; empty =
/// the body itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(pub Vec<Seg>);

impl Path {
    /// This path one step further.
    pub fn with(&self, seg: Seg) -> Path {
        let mut p = self.clone();
        p.0.push(seg);
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("body");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where the check is, as a chain back to where it started: no allocation
/// while descending, a [`Path`] only for a problem.
#[derive(Clone, Copy)]
enum At<'a> {
    Start(&'a Path),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn path(&self) -> Path {
        match self {
            At::Start(p) => (*p).clone(),
            At::Key(up, k) => up.path().with(Seg::Key((*k).to_owned())),
            At::Index(up, i) => up.path().with(Seg::Index(*i)),
        }
    }
}

/// One problem found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: Path,
    pub kind: Kind,
    /// Brevo-style message naming the path, e.g. `unlinkListIds is not a
    /// valid parameter`, `listIds[0] should be an integer`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.code())
    }
}

/// Resolves `$ref`s against a definition's `components/schemas` and checks
/// values.
#[derive(Debug, Clone, Copy)]
pub struct Checker<'a> {
    pub schemas: &'a Map<String, Value>,
}

const REF_PREFIX: &str = "#/components/schemas/";

fn a_type(t: &str) -> String {
    match t {
        "integer" | "object" | "array" => format!("an {t}"),
        other => format!("a {other}"),
    }
}

fn type_fits(t: &str, v: &Value) -> bool {
    match t {
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    }
}

impl<'a> Checker<'a> {
    /// Follows `$ref`s (at most 32 deep) to the schema itself; an unknown
    /// reference resolves to the empty schema (anything fits).
    pub fn resolve(&self, mut s: &'a Value) -> &'a Value {
        static ANY: Value = Value::Null;
        for _ in 0..32 {
            match s.get("$ref").and_then(Value::as_str) {
                Some(r) => match r.strip_prefix(REF_PREFIX).and_then(|n| self.schemas.get(n)) {
                    Some(next) => s = next,
                    None => return &ANY,
                },
                None => return s,
            }
        }
        s
    }

    /// Every problem of `v` against `schema`, at `path`.
    pub fn check(&self, schema: &Value, v: &Value, path: &Path) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check_into(schema, v, &At::Start(path), &mut out);
        out
    }

    fn check_into(&self, schema: &Value, v: &Value, at: &At<'_>, out: &mut Vec<Violation>) {
        let s = self.resolve(schema);
        if let Some(parts) = s.get("allOf").and_then(Value::as_array) {
            let merged = self.merge_all(s, parts);
            return self.check_resolved(&merged, v, at, out);
        }
        self.check_resolved(s, v, at, out);
    }

    /// `allOf` as one schema: the parts' properties and required keys
    /// together (so a closed object allows the keys of every part), open
    /// when any part is open; other keywords from the first part that has them.
    fn merge_all(&self, s: &Value, parts: &[Value]) -> Value {
        let mut merged = Map::new();
        let mut props = Map::new();
        let mut required: Vec<Value> = Vec::new();
        let mut open = false;
        let own = s.as_object().cloned().unwrap_or_default();
        let resolved: Vec<Value> = parts
            .iter()
            .map(|p| {
                let r = self.resolve(p);
                match r.get("allOf").and_then(Value::as_array) {
                    Some(inner) => self.merge_all(r, inner),
                    None => r.clone(),
                }
            })
            .chain(std::iter::once(Value::Object(own)))
            .collect();
        for part in &resolved {
            let Some(m) = part.as_object() else { continue };
            for (k, val) in m {
                match k.as_str() {
                    "allOf" => {}
                    "properties" => props.extend(val.as_object().cloned().unwrap_or_default()),
                    "required" => required.extend(val.as_array().cloned().unwrap_or_default()),
                    "additionalProperties" => open |= val != &Value::Bool(false),
                    _ => {
                        merged.entry(k.clone()).or_insert_with(|| val.clone());
                    }
                }
            }
        }
        if !props.is_empty() {
            merged.insert("properties".into(), Value::Object(props));
        }
        if !required.is_empty() {
            merged.insert("required".into(), Value::Array(required));
        }
        if open {
            merged.insert("additionalProperties".into(), Value::Bool(true));
        }
        Value::Object(merged)
    }

    fn check_resolved(&self, s: &Value, v: &Value, at: &At<'_>, out: &mut Vec<Violation>) {
        if v.is_null() && s.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            if !type_fits(t, v) {
                return push(out, at, Kind::WrongType, |p| format!("{p} should be {}", a_type(t)));
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = s.get(key).and_then(Value::as_array) {
                if !self.one_fits(alts, v, at, out) {
                    return;
                }
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
            if !allowed.contains(v) {
                let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                push(out, at, Kind::Invalid, |p| format!("{p} should be one of {}", list.join(", ")));
            }
        }
        match v {
            Value::Object(m) => self.check_object(s, m, at, out),
            Value::Array(items) => self.check_array(s, items, at, out),
            Value::String(text) => check_length(s, text, at, out),
            Value::Number(_) => check_number(s, v, at, out),
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// `oneOf` / `anyOf`: true when `v` fits one alternative; otherwise the
    /// problems of the closest one are added (or, when `v` has a type none of
    /// them takes, one message naming the types they take).
    fn one_fits(&self, alts: &[Value], v: &Value, at: &At<'_>, out: &mut Vec<Violation>) -> bool {
        let mut tried: Vec<Vec<Violation>> = Vec::with_capacity(alts.len());
        for alt in alts {
            let mut found = Vec::new();
            self.check_into(alt, v, at, &mut found);
            if found.is_empty() {
                return true;
            }
            tried.push(found);
        }
        let path = at.path();
        let wrong_type_at_root =
            |vs: &Vec<Violation>| vs.len() == 1 && vs[0].kind == Kind::WrongType && vs[0].path == path;
        if tried.iter().all(wrong_type_at_root) {
            let mut types: Vec<String> = Vec::new();
            for alt in alts {
                if let Some(t) = self.resolve(alt).get("type").and_then(Value::as_str) {
                    let t = a_type(t);
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
            }
            let message = format!("{path} should be {}", types.join(" or "));
            out.push(Violation { path, kind: Kind::WrongType, message });
        } else if let Some(best) = tried
            .into_iter()
            .filter(|vs| !wrong_type_at_root(vs))
            // The closest: knows the most keys, then has the fewest problems.
            .min_by_key(|vs| (vs.iter().filter(|v| v.kind == Kind::Unknown).count(), vs.len()))
        {
            out.extend(best);
        }
        false
    }

    fn check_object(&self, s: &Value, m: &Map<String, Value>, at: &At<'_>, out: &mut Vec<Violation>) {
        for key in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !m.contains_key(key) {
                push(out, &At::Key(at, key), Kind::Missing, |p| format!("{p} is missing"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        let extra = s.get("additionalProperties");
        for (k, val) in m {
            let here = At::Key(at, k);
            if let Some(p) = props.and_then(|p| p.get(k)) {
                self.check_into(p, val, &here, out);
                continue;
            }
            match extra {
                Some(Value::Bool(true)) => {}
                Some(schema @ Value::Object(_)) => self.check_into(schema, val, &here, out),
                // Closed: no additionalProperties (or false) where properties are listed.
                Some(Value::Bool(false)) | None if props.is_some() || extra.is_some() => {
                    push(out, &here, Kind::Unknown, |p| format!("{p} is not a valid parameter"));
                }
                _ => {}
            }
        }
        check_count(s, m.len(), ("minProperties", "maxProperties", "properties"), at, out);
    }

    fn check_array(&self, s: &Value, items: &[Value], at: &At<'_>, out: &mut Vec<Violation>) {
        if check_count(s, items.len(), ("minItems", "maxItems", "items"), at, out) {
            // Brevo refuses the batch as a whole; no need to read every item.
            return;
        }
        if let Some(item) = s.get("items") {
            for (i, v) in items.iter().enumerate() {
                self.check_into(item, v, &At::Index(at, i), out);
            }
        }
    }
}

/// Adds the problem at `at`, its message made from the path.
fn push(out: &mut Vec<Violation>, at: &At<'_>, kind: Kind, message: impl FnOnce(&Path) -> String) {
    let path = at.path();
    out.push(Violation { message: message(&path), path, kind });
}

/// The `min…`/`max…` bounds on how many `noun`s an object or array has;
/// true when there are too many.
fn check_count(
    s: &Value,
    n: usize,
    (min_key, max_key, noun): (&str, &str, &str),
    at: &At<'_>,
    out: &mut Vec<Violation>,
) -> bool {
    let count = n as u64;
    if let Some(min) = s.get(min_key).and_then(Value::as_u64).filter(|min| count < *min) {
        push(out, at, Kind::Invalid, |p| format!("{p} should have at least {min} {noun}"));
    }
    let too_many = s.get(max_key).and_then(Value::as_u64).filter(|max| count > *max);
    if let Some(max) = too_many {
        push(out, at, Kind::TooMany, |p| format!("{p} should have at most {max} {noun}, not {count}"));
    }
    too_many.is_some()
}

fn check_length(s: &Value, text: &str, at: &At<'_>, out: &mut Vec<Violation>) {
    let len = text.chars().count() as u64;
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64).filter(|max| len > *max) {
        push(out, at, Kind::Invalid, |p| format!("{p} should be at most {max} characters long"));
    }
    if let Some(min) = s.get("minLength").and_then(Value::as_u64).filter(|min| len < *min) {
        push(out, at, Kind::Invalid, |p| format!("{p} should be at least {min} characters long"));
    }
}

fn check_number(s: &Value, v: &Value, at: &At<'_>, out: &mut Vec<Violation>) {
    if s.get("format").and_then(Value::as_str) == Some("int64") && (v.is_u64() && !v.is_i64()) {
        push(out, at, Kind::Invalid, |p| format!("{p} should be a 64-bit integer"));
    }
    let n = v.as_f64().unwrap_or_default();
    let bound = |k: &str| s.get(k).and_then(Value::as_f64);
    if bound("minimum").is_some_and(|min| n < min) || bound("maximum").is_some_and(|max| n > max) {
        push(out, at, Kind::Invalid, |p| format!("{p} is out of range"));
    }
}
