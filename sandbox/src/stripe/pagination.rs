//! Stripe's list endpoint, shared by every resource: newest first
//! (`created` desc, ties by id desc), `limit` 1..=100 (default 10),
//! `starting_after` / `ending_before` cursors (an unknown id is a 400
//! `resource_missing`), `created[gte|gt|lte|lt]` and `created`, the
//! resource's equality filters, the family filters of
//! [`super::subscriptions`] and [`super::events`], and `expand[]=data.…`.
//! Deleted objects never list.

use serde_json::{json, Value};

use super::events::EventTypeFilter;
use super::http::ApiError;
use super::query::{expand_path, param, parse_i64};
use super::resources::equality_filters;
use super::store::{created_of, is_deleted, Collection, State};
use super::subscriptions::SubscriptionFilter;

/// Whether `v.field` is `wanted`: a string, bool or number written the same,
/// or an expanded object whose `id` is `wanted`.
pub(super) fn field_matches(v: &Value, field: &str, wanted: &str) -> bool {
    match v.get(field) {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Bool(b)) => b.to_string() == wanted,
        Some(Value::Number(n)) => n.to_string() == wanted,
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str) == Some(wanted),
        _ => false,
    }
}

/// `limit`: 10 when absent, else 1..=100 (Stripe's messages otherwise).
fn parse_limit(params: &[(String, String)]) -> Result<usize, ApiError> {
    match parse_i64(params, "limit")? {
        None => Ok(10),
        Some(l) if l < 1 => Err(ApiError::invalid(
            "This value must be greater than or equal to 1.",
            Some("limit"),
            Some("parameter_invalid_integer"),
        )),
        Some(l) if l > 100 => Err(ApiError::invalid(
            format!("This value must be less than or equal to 100 (it currently is '{l}')."),
            Some("limit"),
            Some("parameter_invalid_integer"),
        )),
        Some(l) => Ok(usize::try_from(l).unwrap_or(100)),
    }
}

/// `created[gte|gt|lte|lt]` and `created` (exact).
struct CreatedRange {
    gte: Option<i64>,
    gt: Option<i64>,
    lte: Option<i64>,
    lt: Option<i64>,
    exact: Option<i64>,
}

impl CreatedRange {
    fn parse(params: &[(String, String)]) -> Result<Self, ApiError> {
        Ok(Self {
            gte: parse_i64(params, "created[gte]")?,
            gt: parse_i64(params, "created[gt]")?,
            lte: parse_i64(params, "created[lte]")?,
            lt: parse_i64(params, "created[lt]")?,
            exact: parse_i64(params, "created")?,
        })
    }

    fn contains(&self, c: i64) -> bool {
        !(self.gte.is_some_and(|x| c < x)
            || self.gt.is_some_and(|x| c <= x)
            || self.lte.is_some_and(|x| c > x)
            || self.lt.is_some_and(|x| c >= x)
            || self.exact.is_some_and(|x| c != x))
    }
}

pub(super) fn list(
    st: &State,
    resource: &str,
    params: &[(String, String)],
    expand: &[String],
) -> Result<Value, ApiError> {
    let limit = parse_limit(params)?;
    let created = CreatedRange::parse(params)?;
    let eq: Vec<(&str, &str)> =
        equality_filters(resource).iter().filter_map(|f| param(params, f).map(|v| (*f, v))).collect();
    let subscriptions = SubscriptionFilter::parse(resource, params);
    let events = EventTypeFilter::parse(resource, params)?;

    let matches = |v: &Value| -> bool {
        !is_deleted(v)
            && created.contains(created_of(v))
            && eq.iter().all(|(f, w)| field_matches(v, f, w))
            && subscriptions.matches(v)
            && events.matches(v)
    };

    let empty = Collection::default();
    let coll = st.collections.get(resource).unwrap_or(&empty);
    let position = |param_name: &str, id: &str| -> Result<usize, ApiError> {
        let key = coll.key_of(id).ok_or_else(|| ApiError::missing(resource, id, param_name))?;
        coll.order.binary_search(&key).map_err(|_| ApiError::missing(resource, id, param_name))
    };
    let get = |k: &(i64, String)| coll.objects.get(&k.1);
    let (page, has_more) = if let Some(after) = param(params, "starting_after") {
        let pos = position("starting_after", after)?;
        take(coll.order[..pos].iter().rev().filter_map(get).filter(|v| matches(v)), limit)
    } else if let Some(before) = param(params, "ending_before") {
        let pos = position("ending_before", before)?;
        let (mut page, more) = take(coll.order[pos + 1..].iter().filter_map(get).filter(|v| matches(v)), limit);
        page.reverse();
        (page, more)
    } else {
        take(coll.order.iter().rev().filter_map(get).filter(|v| matches(v)), limit)
    };
    let data_expands: Vec<Vec<&str>> =
        expand.iter().filter_map(|e| e.strip_prefix("data.")).map(|e| e.split('.').collect()).collect();
    let data: Vec<Value> = page
        .into_iter()
        .map(|v| {
            let mut v = v.clone();
            for segs in &data_expands {
                expand_path(st, &mut v, segs);
            }
            v
        })
        .collect();
    Ok(json!({"object": "list", "url": format!("/v1/{resource}"), "has_more": has_more, "data": data}))
}

/// Up to `limit` items and whether more follow.
fn take<'a>(mut it: impl Iterator<Item = &'a Value>, limit: usize) -> (Vec<&'a Value>, bool) {
    let mut out = Vec::with_capacity(limit.min(100));
    for v in it.by_ref() {
        if out.len() == limit {
            return (out, true);
        }
        out.push(v);
    }
    (out, false)
}
