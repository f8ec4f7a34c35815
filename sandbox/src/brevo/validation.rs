//! Value rules the Brevo sandbox applies in several endpoints: e-mail
//! addresses, E.164 phone numbers, `YYYY-MM-DD` dates, whether a value fits
//! an attribute type, list-id arrays in request bodies, the size of an
//! import. (The shapes of bodies are checked against Brevo's definition,
//! `spec`, before any of these.)

use serde_json::Value;

use super::http::{error, Answer};

pub(super) fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let ok_local =
        !local.is_empty() && local.len() <= 64 && !local.chars().any(|c| c.is_whitespace() || c == '@' || c == ',');
    let labels: Vec<&str> = domain.split('.').collect();
    let ok_domain = labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels.last().is_some_and(|t| t.len() >= 2);
    ok_local && ok_domain
}

/// `+` then 8–15 digits (CONTRACT.md's E.164 rule).
pub(super) fn valid_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Whether `v` fits an attribute of type `t`.
pub(super) fn fits(t: &str, v: &Value) -> bool {
    match t {
        "float" => v.is_number(),
        "boolean" => v.is_boolean(),
        "date" => v.as_str().is_some_and(valid_date),
        _ => v.is_string() || v.is_number(),
    }
}

/// A body's list-id array (`listIds`, `unlinkListIds`); absent or null is empty.
pub(super) fn ids(v: Option<&Value>) -> Result<Vec<i64>, Answer> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_i64().ok_or_else(|| error(400, "invalid_parameter", "list ids must be integers")))
            .collect(),
        Some(_) => Err(error(400, "invalid_parameter", "list ids must be an array")),
    }
}

/// The largest import body Brevo takes: "Maximum allowed json body size is
/// 10MB" (`requestContactImport` in Brevo's definition).
pub(super) const IMPORT_BODY_MAX: usize = 10 * 1024 * 1024;

/// 400 when an import body is bigger than [`IMPORT_BODY_MAX`].
pub(super) fn import_size(bytes: usize) -> Result<(), Answer> {
    if bytes > IMPORT_BODY_MAX {
        return Err(error(400, "invalid_parameter", "jsonBody exceeds the maximum allowed size of 10MB"));
    }
    Ok(())
}
