//! Webhook ingress: verify the `Stripe-Signature`, recognise the event, queue
//! it durably, answer Stripe. Shared by the `stripe-webhook` Lambda and the
//! CLI's `serve`; it knows nothing of either HTTP stack.
//!
//! Answers (CONTRACT.md, "Webhook HTTP behaviour"):
//! 200 `{"received":true}` once queued (also for unhandled types and duplicates);
//! 400 for bad signatures, stale timestamps and bodies that are not events;
//! 405 for other methods; 413 above 1 MiB; 500/503 only when queuing failed.
//! No answer ever echoes internal error text, the secret or the body.

use crate::domain::event::parse_envelope;
use crate::domain::signature::Verifier;
use crate::error::chain;
use crate::ports::{Clock, EventQueue, QueueMessage, Source, MAX_MESSAGE_BYTES};

/// Largest body accepted (1 MiB); an accepted event must also fit one SQS
/// message together with its attributes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the HTTP layer hands over.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub method: &'a str,
    /// `Stripe-Signature` as text; `Some("")` when present but not UTF-8.
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// What the HTTP layer answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    pub body: String,
    /// `Allow` header value for 405 answers.
    pub allow: Option<&'static str>,
}

impl WebhookResponse {
    fn ok() -> Self {
        Self { status: 200, body: r#"{"received":true}"#.to_owned(), allow: None }
    }
    fn error(status: u16, code: &str) -> Self {
        Self { status, body: format!(r#"{{"error":"{code}"}}"#), allow: None }
    }
}

/// The webhook use case's dependencies.
pub struct Ingest<Q, C> {
    pub verifier: Verifier,
    pub queue: Q,
    pub clock: C,
}

impl<Q: EventQueue, C: Clock> Ingest<Q, C> {
    pub fn new(verifier: Verifier, queue: Q, clock: C) -> Self {
        Self { verifier, queue, clock }
    }

    pub async fn handle(&self, req: WebhookRequest<'_>) -> WebhookResponse {
        handle_webhook(&self.verifier, &self.queue, &self.clock, req).await
    }
}

/// The whole webhook decision for one request.
pub async fn handle_webhook<Q, C>(verifier: &Verifier, queue: &Q, clock: &C, req: WebhookRequest<'_>) -> WebhookResponse
where
    Q: EventQueue + ?Sized,
    C: Clock + ?Sized,
{
    if !req.method.eq_ignore_ascii_case("POST") {
        return WebhookResponse { allow: Some("POST"), ..WebhookResponse::error(405, "method_not_allowed") };
    }
    if req.body.len() > MAX_BODY_BYTES {
        tracing::warn!(bytes = req.body.len(), "webhook refused: body too large");
        return WebhookResponse::error(413, "body_too_large");
    }
    if let Err(e) = verifier.verify(req.signature, req.body, clock.now_unix()) {
        tracing::warn!(reason = e.code(), detail = %e, "webhook refused: signature");
        return WebhookResponse::error(400, e.code());
    }
    let envelope = match parse_envelope(req.body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(detail = %e, "webhook refused: not a Stripe event");
            return WebhookResponse::error(400, "invalid_event");
        }
    };
    // parse_envelope succeeded, so the body is valid UTF-8 JSON.
    let Ok(body) = std::str::from_utf8(req.body) else {
        return WebhookResponse::error(400, "invalid_event");
    };
    let message = QueueMessage {
        body: body.to_owned(),
        event_id: envelope.id.clone(),
        event_type: envelope.event_type.clone(),
        livemode: envelope.livemode,
        source: Source::Webhook,
    };
    if message.sqs_size() > MAX_MESSAGE_BYTES {
        tracing::warn!(event_id = %envelope.id, bytes = message.sqs_size(), "webhook refused: does not fit one queue message");
        return WebhookResponse::error(413, "body_too_large");
    }
    match queue.send(&message).await {
        Ok(()) => {
            tracing::info!(event_id = %envelope.id, event_type = %envelope.event_type, kind = envelope.kind.as_str(), "webhook queued");
            WebhookResponse::ok()
        }
        Err(e) => {
            tracing::error!(event_id = %envelope.id, event_type = %envelope.event_type, retryable = e.is_retryable(), cause = %chain(&e), "webhook could not be queued; Stripe will retry");
            if e.is_retryable() {
                WebhookResponse::error(503, "queue_unavailable")
            } else {
                WebhookResponse::error(500, "queue_rejected")
            }
        }
    }
}

/// Answer when the webhook secret could not be loaded (Stripe retries).
pub fn unavailable() -> WebhookResponse {
    WebhookResponse::error(503, "temporarily_unavailable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{FixedClock, MemoryQueue};
    use crate::domain::signature::sign_header;
    use secrecy::SecretString;

    const SECRET: &str = "whsec_unit";
    const NOW: i64 = 1_700_000_000;
    const BODY: &str = r#"{"id":"evt_1","object":"event","type":"customer.created","created":1700000000,"livemode":false,"data":{"object":{"id":"cus_1","object":"customer"}}}"#;

    fn ingest() -> Ingest<MemoryQueue, FixedClock> {
        Ingest::new(
            Verifier::new(vec![SecretString::from(SECRET.to_owned())], 300),
            MemoryQueue::new(),
            FixedClock::at(NOW),
        )
    }

    #[tokio::test]
    async fn a_verified_event_is_queued_with_its_attributes() {
        let i = ingest();
        let sig = sign_header(&[SECRET], NOW, BODY.as_bytes());
        let r = i.handle(WebhookRequest { method: "POST", signature: Some(&sig), body: BODY.as_bytes() }).await;
        assert_eq!((r.status, r.body.as_str()), (200, r#"{"received":true}"#));
        let m = i.queue.messages();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].event_id, "evt_1");
        assert_eq!(m[0].event_type, "customer.created");
        assert_eq!(m[0].livemode, Some(false));
        assert_eq!(m[0].source, Source::Webhook);
        assert_eq!(m[0].body, BODY);
    }

    #[tokio::test]
    async fn a_queue_outage_is_a_503_so_stripe_retries() {
        let i = ingest();
        i.queue.set_down(true);
        let sig = sign_header(&[SECRET], NOW, BODY.as_bytes());
        let r = i.handle(WebhookRequest { method: "POST", signature: Some(&sig), body: BODY.as_bytes() }).await;
        assert_eq!(r.status, 503);
        assert!(!r.body.contains("memory queue"), "{}", r.body);
    }
}
