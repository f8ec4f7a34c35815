//! The `stripe-webhook` Lambda's HTTP adapter: turns a `lambda_http` request
//! (API Gateway HTTP API v2, REST API v1, or a Function URL; base64 bodies
//! already decoded by `lambda_http`) into the shared ingest use case.

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use shared::adapters::secrets::LazySecret;
use shared::domain::signature::Verifier;
use shared::pipeline::ingest::{handle_webhook, unavailable, WebhookRequest, WebhookResponse};
use shared::ports::{Clock, EventQueue};
use shared::wiring::{self, Deferred};

/// Everything the handler needs, built once per cold start.
pub struct App<Q, C> {
    pub queue: Q,
    pub clock: C,
    /// Built from the secret on the first request (a network call when the
    /// secret is in AWS); retried on the next request if that failed.
    verifier: Deferred<Verifier>,
}

impl<Q: EventQueue, C: Clock> App<Q, C> {
    pub fn new(queue: Q, clock: C, secret: LazySecret, tolerance_secs: u64) -> Self {
        let secret = Arc::new(secret);
        let verifier = Deferred::new(move || {
            let secret = Arc::clone(&secret);
            async move { wiring::verifier(secret.get().await?, tolerance_secs) }
        });
        Self { queue, clock, verifier }
    }

    async fn verifier(&self) -> Option<&Verifier> {
        match self.verifier.get().await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(cause = %e, "webhook secret unavailable");
                None
            }
        }
    }
}

/// Handles one HTTP request.
pub async fn handle<Q: EventQueue, C: Clock>(app: &App<Q, C>, req: Request) -> Response<Body> {
    let signature = req.headers().get("stripe-signature").map(|v| v.to_str().unwrap_or(""));
    let method = req.method().as_str().to_owned();
    let body: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let answer = match app.verifier().await {
        Some(v) => handle_webhook(v, &app.queue, &app.clock, WebhookRequest { method: &method, signature, body }).await,
        None => unavailable(),
    };
    to_response(answer)
}

fn to_response(answer: WebhookResponse) -> Response<Body> {
    let mut builder = Response::builder().status(answer.status).header("content-type", "application/json");
    if let Some(allow) = answer.allow {
        builder = builder.header("allow", allow);
    }
    builder.body(Body::Text(answer.body)).unwrap_or_else(|_| {
        let mut r = Response::new(Body::Empty);
        *r.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
