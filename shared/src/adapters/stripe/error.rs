//! [`StripeError`]: what a Stripe call can end in, its
//! [`RemoteErrorKind`](crate::ports::RemoteErrorKind), and how an answer or
//! a `reqwest` failure becomes one. No text ever holds the key: Stripe's own
//! messages carry a masked key (`sk_test_****abcd`), which is dropped or
//! redacted ([`redact_keys`]).

use serde::Deserialize;

use crate::adapters::http::redact::redact_keys;
use crate::ports::{RemoteError, Vendor};

/// What a Stripe call can end in, after retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// 401: the key is unknown, expired or revoked. Stripe's message (which
    /// contains a masked key) is deliberately not kept.
    #[error("Stripe API key is invalid")]
    Unauthorized,
    /// 403: typically a restricted key lacking a `rak_…_read` permission.
    /// The message names the permission; key text is redacted.
    #[error("Stripe permission denied: {message}")]
    PermissionDenied { message: String },
    /// 404 `resource_missing`.
    #[error("Stripe resource not found{}", .resource_id.as_deref().map(|id| format!(": {id}")).unwrap_or_default())]
    NotFound { resource_id: Option<String> },
    /// 400 (and other 4xx that are not retried): a bug in the request.
    #[error("Stripe rejected the request ({}): {message}", .code.as_deref().unwrap_or("invalid_request"))]
    InvalidRequest { code: Option<String>, message: String },
    /// 409 still failing after retries (`lock_timeout`, idempotency conflicts).
    #[error("Stripe conflict: {message}")]
    Conflict { message: String },
    /// 429 still answered after every retry.
    #[error("Stripe rate limit still exceeded after retries")]
    RateLimited,
    /// 5xx after retries (or one Stripe said not to retry).
    #[error("Stripe server error (HTTP {0})")]
    Server(u16),
    /// The request did not complete within the client's timeout.
    #[error("Stripe request timed out")]
    Timeout,
    /// Connection refused/reset, DNS, TLS…
    #[error("Stripe transport error: {0}")]
    Transport(String),
    /// The body was not the JSON we expected.
    #[error("Stripe response could not be decoded: {0}")]
    Decode(String),
    /// Client construction failed (bad base URL, TLS backend).
    #[error("Stripe client configuration: {0}")]
    Config(String),
}

impl StripeError {
    /// The kind the use cases decide on.
    pub fn kind(&self) -> crate::ports::RemoteErrorKind {
        use crate::ports::RemoteErrorKind as K;
        match self {
            Self::Unauthorized => K::Unauthorized,
            Self::PermissionDenied { .. } => K::Forbidden,
            Self::NotFound { .. } => K::NotFound,
            // An answer we cannot read will not read better on a retry.
            Self::InvalidRequest { .. } | Self::Config(_) | Self::Decode(_) => K::Rejected,
            Self::RateLimited => K::RateLimited,
            Self::Conflict { .. } | Self::Server(_) | Self::Timeout | Self::Transport(_) => K::Unavailable,
        }
    }

    /// True when the same request may succeed later (throttling, outages).
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// The error of an answer that is not a 2xx; `secret` is the key, so it
    /// can be redacted from Stripe's message even unmasked.
    pub(super) fn from_answer(status: u16, body: &str, secret: Option<&str>) -> Self {
        let parsed: ErrorBody =
            serde_json::from_str::<ErrorEnvelope>(body).ok().and_then(|e| e.error).unwrap_or_default();
        let message = redact_keys(parsed.message.as_deref().unwrap_or(""), secret);
        match status {
            401 => Self::Unauthorized,
            403 => Self::PermissionDenied {
                message: if message.is_empty() { "the key may not read this resource".to_owned() } else { message },
            },
            404 => Self::NotFound { resource_id: quoted_id(&message).filter(|id| !id.contains("[redacted]")) },
            409 => Self::Conflict { message },
            429 => Self::RateLimited,
            s if s >= 500 => Self::Server(s),
            _ => Self::InvalidRequest {
                code: parsed.code.or_else(|| parsed.param.map(|p| format!("param:{p}"))),
                message: if message.is_empty() { format!("HTTP {status}") } else { message },
            },
        }
    }

    /// A request that got no usable answer (timeout, connection, unreadable body).
    pub(super) fn from_transport(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            return Self::Timeout;
        }
        // The error's sources, without the request URL (no key is in it, but
        // there is no need to log object ids either).
        let mut parts = vec![if e.is_connect() {
            "connection failed"
        } else if e.is_decode() {
            "body unreadable"
        } else {
            "request failed"
        }
        .to_owned()];
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(inner) = cur {
            let text = inner.to_string();
            if parts.last() != Some(&text) {
                parts.push(text);
            }
            cur = inner.source();
        }
        if e.is_decode() {
            Self::Decode(parts.join(": "))
        } else {
            Self::Transport(parts.join(": "))
        }
    }
}

impl From<StripeError> for RemoteError {
    fn from(e: StripeError) -> Self {
        RemoteError::new(Vendor::Stripe, e.kind(), e.to_string())
    }
}

#[derive(Debug, Default, Deserialize)]
struct ErrorEnvelope {
    error: Option<ErrorBody>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

/// `No such customer: 'cus_x'` → `cus_x`.
fn quoted_id(message: &str) -> Option<String> {
    let start = message.find('\'')? + 1;
    let len = message[start..].find('\'')?;
    let id = &message[start..start + len];
    (!id.is_empty()).then(|| id.to_owned())
}
