//! The Runtime API server of one container: `GET …/invocation/next` hands
//! out the pending event with Lambda's headers (the deadline is now + the
//! function's timeout), `POST …/{id}/response`, `…/{id}/error` and
//! `…/init/error` are passed on to the waiting invocation as
//! [`RuntimeEvent`]s. <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::Rng;
use serde_json::json;
use tokio::sync::mpsc;

use super::ErrorBody;

/// An event waiting for the runtime's `/next`.
pub(super) struct Pending {
    pub(super) id: String,
    pub(super) body: Vec<u8>,
}

/// What the runtime told the server.
pub(super) enum RuntimeEvent {
    Handed { id: String, at: Instant },
    Response { id: String, body: Bytes, at: Instant },
    Error { id: String, error: ErrorBody, at: Instant },
    InitError(ErrorBody),
}

pub(super) struct RuntimeApi {
    pub(super) pending: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    pub(super) events: mpsc::UnboundedSender<RuntimeEvent>,
    pub(super) timeout: Duration,
    pub(super) arn: String,
}

fn epoch_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> Response {
    let pending = api.pending.lock().await.recv().await;
    let Some(p) = pending else {
        return StatusCode::GONE.into_response();
    };
    let deadline = epoch_ms() + api.timeout.as_millis();
    let _ = api.events.send(RuntimeEvent::Handed { id: p.id.clone(), at: Instant::now() });
    let trace = format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        epoch_ms() / 1000,
        rand::rng().random::<u128>() >> 32,
        rand::rng().random::<u64>()
    );
    let mut resp = (StatusCode::OK, p.body).into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        ("content-type", "application/json".to_owned()),
        ("lambda-runtime-aws-request-id", p.id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", api.arn.clone()),
        ("lambda-runtime-trace-id", trace),
    ] {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    resp
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

async fn response(State(api): State<Arc<RuntimeApi>>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    let _ = api.events.send(RuntimeEvent::Response { id, body, at: Instant::now() });
    accepted()
}

async fn error(
    State(api): State<Arc<RuntimeApi>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = api.events.send(RuntimeEvent::Error { id, error: ErrorBody::parse(&headers, &body), at: Instant::now() });
    accepted()
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, headers: HeaderMap, body: Bytes) -> Response {
    let _ = api.events.send(RuntimeEvent::InitError(ErrorBody::parse(&headers, &body)));
    accepted()
}

pub(super) fn router(api: Arc<RuntimeApi>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api)
}
