//! The Stripe sandbox's HTTP side: the one axum handler ([`handle`]: the
//! account's rate limit on arrival, the delay (response latency plus
//! injected latency), then faults,
//! authentication and routing under the lock, then the request log), the
//! router that splits `/v1/{resource}[/{id}]` into a retrieve or a list, and
//! Stripe's error body ([`ApiError`]).

use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::auth::{authenticate, permission_denied};
use super::faults::inject_faults;
use super::pagination::list;
use super::query::{expand_params, expand_path};
use super::resources::{singular, RESOURCES};
use super::seed::fixture;
use super::store::{is_deleted, lock, Shared, State};
use super::LoggedRequest;

/// A Stripe error answer: status, `{"error": {...}}` body, extra headers.
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) body: Value,
    pub(super) headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(super) fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> Self {
        let mut e = json!({"type": "invalid_request_error", "message": message.into()});
        if let Some(p) = param {
            e["param"] = json!(p);
        }
        if let Some(c) = code {
            e["code"] = json!(c);
        }
        Self { status: StatusCode::BAD_REQUEST, body: json!({ "error": e }), headers: Vec::new() }
    }

    pub(super) fn missing(resource: &str, id: &str, param: &str) -> Self {
        let mut e =
            Self::invalid(format!("No such {}: '{id}'", singular(resource)), Some(param), Some("resource_missing"));
        if param == "id" {
            e.status = StatusCode::NOT_FOUND;
        }
        e
    }

    pub(super) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        for (k, v) in self.headers {
            if let Ok(hv) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, hv);
            }
        }
        resp
    }
}

pub(super) async fn handle(AxState(state): AxState<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    // The account's rate limit counts the request as it arrives; the answer
    // (a 429 of the limit too) comes after the response latency.
    let (latency, admitted) = {
        let mut st = lock(&state);
        let admitted = st.meter(&headers);
        (st.faults.next_delay(), admitted)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let result = {
        let mut st = lock(&state);
        admitted.and_then(|()| answer(&mut st, &method, &uri, &headers))
    };
    let resp = match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    let mut st = lock(&state);
    st.total += 1;
    *st.per_path.entry(path.clone()).or_default() += 1;
    *st.per_status.entry(status).or_default() += 1;
    st.log.push(LoggedRequest { method: method.to_string(), path, query, status });
    resp
}

fn answer(st: &mut State, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Value, ApiError> {
    inject_faults(st)?;
    let readable = authenticate(st, headers)?;
    if method != Method::GET {
        return Err(ApiError::invalid("The sandbox only serves GET requests.", None, None)
            .with_status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let params: Vec<(String, String)> = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::invalid(format!("Invalid query string: {e}"), None, None))?;
    let Some(rest) = uri.path().strip_prefix("/v1/") else {
        return Err(unrecognized(uri.path()));
    };
    let rest = rest.trim_end_matches('/');
    let (resource, id) = if let Some(r) = rest.strip_prefix("checkout/sessions") {
        ("checkout/sessions".to_owned(), r.strip_prefix('/').map(str::to_owned))
    } else {
        match rest.split_once('/') {
            Some((r, id)) => (r.to_owned(), Some(id.to_owned())),
            None => (rest.to_owned(), None),
        }
    };
    if id.as_deref().is_some_and(|i| i.is_empty() || i.contains('/')) {
        return Err(unrecognized(uri.path()));
    }
    let known = RESOURCES.iter().any(|(p, _)| *p == resource);
    let top_level = matches!(resource.as_str(), "account" | "balance") && id.is_none();
    if !known && !top_level {
        return Err(unrecognized(uri.path()));
    }
    if let Some(allowed) = readable {
        if !allowed.contains(&resource) {
            return Err(permission_denied(st, headers, &resource));
        }
    }
    let expand = expand_params(&params);
    match (resource.as_str(), id) {
        ("account", None) => {
            let mut acct = fixture("account");
            acct["id"] = json!(st.account_id);
            Ok(acct)
        }
        ("balance", None) => Ok(fixture("balance")),
        (_, Some(id)) => {
            let coll = st.collections.get(&resource).ok_or_else(|| unrecognized(uri.path()))?;
            let mut obj = coll.objects.get(&id).cloned().ok_or_else(|| ApiError::missing(&resource, &id, "id"))?;
            if is_deleted(&obj) {
                return Ok(
                    json!({"id": id, "object": obj.get("object").cloned().unwrap_or(json!("customer")), "deleted": true}),
                );
            }
            for e in &expand {
                let segs: Vec<&str> = e.split('.').collect();
                expand_path(st, &mut obj, &segs);
            }
            Ok(obj)
        }
        (_, None) => list(st, &resource, &params, &expand),
    }
}

fn unrecognized(path: &str) -> ApiError {
    ApiError::invalid(format!("Unrecognized request URL (GET: {path})."), None, None).with_status(StatusCode::NOT_FOUND)
}
