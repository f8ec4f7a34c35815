//! The `stripe-webhook` Lambda's HTTP adapter: turns a `lambda_http` request
//! (API Gateway HTTP API v2, REST API v1, or a Function URL; base64 bodies
//! already decoded by `lambda_http`) into the shared ingest use case.

use lambda_http::{Body, Request, Response};
use shared::adapters::secrets::LazySecret;
use shared::domain::signature::Verifier;
use shared::pipeline::ingest::{handle_webhook, unavailable, WebhookRequest, WebhookResponse};
use shared::ports::{Clock, EventQueue};
use tokio::sync::OnceCell;

/// Everything the handler needs, built once per cold start.
pub struct App<Q, C> {
    pub queue: Q,
    pub clock: C,
    pub secret: LazySecret,
    pub tolerance_secs: u64,
    verifier: OnceCell<Verifier>,
}

impl<Q: EventQueue, C: Clock> App<Q, C> {
    pub fn new(queue: Q, clock: C, secret: LazySecret, tolerance_secs: u64) -> Self {
        Self { queue, clock, secret, tolerance_secs, verifier: OnceCell::new() }
    }

    async fn verifier(&self) -> Option<&Verifier> {
        let res = self
            .verifier
            .get_or_try_init(|| async {
                let s = self.secret.get().await?;
                let v = Verifier::from_comma_separated(s, self.tolerance_secs);
                if v.secret_count() == 0 {
                    return Err(shared::config::ConfigError::invalid(
                        shared::config::STRIPE_WEBHOOK_SECRET,
                        "holds no secret",
                    ));
                }
                Ok(v)
            })
            .await;
        match res {
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
