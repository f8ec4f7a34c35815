//! [`BrevoError`]: what a Brevo call can end in, its
//! [`RemoteErrorKind`], and how a 4xx answer becomes one (Brevo's `code`
//! and `message`, e-mail addresses redacted). Texts never contain the key
//! or an e-mail.

use std::time::Duration;

use serde::Deserialize;

use crate::adapters::http::redact::scrub_emails;
use crate::ports::{RemoteError, RemoteErrorKind, Vendor};

/// Errors of the Brevo client. Texts never contain the key or an e-mail.
#[derive(Debug, thiserror::Error)]
pub enum BrevoError {
    /// 401: wrong key (or a key not allowed from this IP address).
    #[error("Brevo API key is invalid ({message})")]
    Unauthorized { message: String },
    /// 403: the key lacks a permission, or the feature is not enabled.
    #[error("Brevo refused access ({code}): {message}")]
    Forbidden { code: String, message: String },
    /// 400 and other 4xx: the request itself is wrong; retrying won't help.
    /// `refusal` says which of Brevo's refusals the client acts on it is.
    #[error("Brevo rejected the request (HTTP {status}, {code}): {message}")]
    BadRequest { status: u16, code: String, message: String, refusal: Refusal },
    /// 404: the list (or other resource) does not exist.
    #[error("Brevo resource not found: {message}")]
    NotFound { message: String },
    /// Still 429 after every attempt.
    #[error("Brevo rate limit still exceeded after {attempts} attempts")]
    RateLimited { attempts: u32 },
    /// 5xx after every attempt.
    #[error("Brevo server error (HTTP {0})")]
    Server(u16),
    #[error("Brevo did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach Brevo: {0}")]
    Transport(String),
    /// A request that must not be repeated was sent and no answer came
    /// (timeout, connection lost): Brevo may have applied it.
    #[error("Brevo may have applied the request, no answer came: {0}")]
    Unconfirmed(String),
    /// A 2xx whose body could not be read.
    #[error("unexpected answer from Brevo: {0}")]
    Decode(String),
}

impl BrevoError {
    /// True when the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// The kind the use cases decide on.
    pub fn kind(&self) -> RemoteErrorKind {
        match self {
            Self::Unauthorized { .. } => RemoteErrorKind::Unauthorized,
            Self::Forbidden { .. } => RemoteErrorKind::Forbidden,
            Self::NotFound { .. } => RemoteErrorKind::NotFound,
            // An answer we cannot read will not read better on a retry.
            Self::BadRequest { .. } | Self::Decode(_) => RemoteErrorKind::Rejected,
            Self::RateLimited { .. } => RemoteErrorKind::RateLimited,
            Self::Server(_) | Self::Timeout(_) | Self::Transport(_) | Self::Unconfirmed(_) => {
                RemoteErrorKind::Unavailable
            }
        }
    }

    /// Brevo's error code for 4xx answers (`invalid_parameter`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::BadRequest { code, .. } | Self::Forbidden { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Which refusal a 400 is (`None` for every other error).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::BadRequest { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }
}

/// The 400s the client acts on. Brevo gives them no codes of their own (they
/// come as `invalid_parameter` / `duplicate_parameter` with a message), so
/// the answer is read once, here, when the error is built; the client then
/// decides on this type, never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The SMS number is invalid or belongs to another contact: the contact
    /// is written again without it.
    SmsNumber,
    /// A list add/remove of contacts already in (or not in) the list: the
    /// wanted state already holds.
    ListMembership,
    /// Creating an attribute that exists already.
    AttributeExists,
    /// Any other refusal.
    Other,
}

impl Refusal {
    #[cfg(test)]
    pub(super) fn classify(code: &str, message: &str) -> Self {
        Self::of(code, message)
    }

    /// Reads Brevo's `code` and `message` of a 400.
    fn of(code: &str, message: &str) -> Self {
        let text = format!("{code} {message}").to_ascii_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        if any(&["already in list", "not in list", "does not exist"]) {
            Self::ListMembership
        } else if any(&["already exist", "must be unique", "duplicate"]) && any(&["attribute"]) {
            Self::AttributeExists
        } else if any(&["sms", "phone", "mobile"]) {
            Self::SmsNumber
        } else if any(&["already exist", "must be unique", "duplicate"]) {
            Self::AttributeExists
        } else {
            Self::Other
        }
    }
}

impl From<BrevoError> for RemoteError {
    fn from(e: BrevoError) -> Self {
        // BrevoError texts hold no key and only redacted e-mails.
        let unconfirmed = matches!(e, BrevoError::Unconfirmed(_));
        let r = Self::new(Vendor::Brevo, e.kind(), e.to_string());
        if unconfirmed {
            r.unconfirmed()
        } else {
            r
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The error of a 4xx answer other than 429 (and of a 3xx).
pub(super) fn client_error(status: u16, body: &[u8]) -> BrevoError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.code.unwrap_or_else(|| "unknown".to_owned());
    let message = parsed.message.map(|m| scrub_emails(&m)).unwrap_or_else(|| format!("HTTP {status}"));
    match status {
        401 => BrevoError::Unauthorized { message },
        403 => BrevoError::Forbidden { code, message },
        404 => BrevoError::NotFound { message },
        _ => {
            let refusal = Refusal::of(&code, &message);
            BrevoError::BadRequest { status, code, message, refusal }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Refusal;

    #[test]
    fn brevo_refusals_are_read_once_into_a_type() {
        let cases = [
            ("invalid_parameter", "Contact already in list and/or does not exist", Refusal::ListMembership),
            ("invalid_parameter", "Contact not in list", Refusal::ListMembership),
            (
                "duplicate_parameter",
                "Unable to update contact, SMS is already associated with another Contact",
                Refusal::SmsNumber,
            ),
            ("invalid_parameter", "Invalid phone number", Refusal::SmsNumber),
            ("duplicate_parameter", "Attribute name must be unique", Refusal::AttributeExists),
            ("invalid_parameter", "Attribute TOTAL_SPENT already exists", Refusal::AttributeExists),
            ("invalid_parameter", "unlinkListIds is not a valid parameter", Refusal::Other),
            ("missing_parameter", "email is missing", Refusal::Other),
        ];
        for (code, message, want) in cases {
            assert_eq!(Refusal::classify(code, message), want, "{code}: {message}");
        }
    }
}
