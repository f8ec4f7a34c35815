//! Query-string helpers for the Stripe sandbox: single and array parameters
//! (`expand[]=a` and `expand[0]=a` alike), integers with Stripe's
//! `parameter_invalid_integer` error, and `expand[]` itself (ids replaced
//! by the objects they name, through arrays).

use serde_json::Value;

use super::http::ApiError;
use super::store::State;

/// `expand[]=a` and `expand[0]=a` alike.
pub(super) fn expand_params(params: &[(String, String)]) -> Vec<String> {
    array_param(params, "expand")
}

pub(super) fn array_param(params: &[(String, String)], name: &str) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| {
            k.strip_prefix(name)
                .and_then(|r| r.strip_prefix('['))
                .and_then(|r| r.strip_suffix(']'))
                .is_some_and(|inner| inner.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|(_, v)| v.clone())
        .collect()
}

pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Replaces ids along `segs` by the objects they name; arrays apply the rest
/// of the path to each element.
pub(super) fn expand_path(st: &State, v: &mut Value, segs: &[&str]) {
    let Some((first, rest)) = segs.split_first() else { return };
    match v {
        Value::Array(items) => {
            for item in items {
                expand_path(st, item, segs);
            }
        }
        Value::Object(m) => {
            let Some(child) = m.get_mut(*first) else { return };
            if let Some(id) = child.as_str() {
                if let Some(found) = st.find_any(id) {
                    *child = found.clone();
                }
            }
            expand_path(st, child, rest);
        }
        _ => {}
    }
}

pub(super) fn parse_i64(params: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    match param(params, name) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid(format!("Invalid integer: {v}"), Some(name), Some("parameter_invalid_integer"))
        }),
    }
}
