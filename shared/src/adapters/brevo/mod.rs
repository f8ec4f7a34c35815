//! The Brevo v3 HTTP client: contacts (real-time upsert and asynchronous
//! import), lists, attributes, custom events, orders and the account check.
//!
//! Built once per cold start with an injected base URL (`BREVO_API_BASE`,
//! `/v3/...` appended), the key as a [`SecretString`](secrecy::SecretString) (sent in the `api-key`
//! header, never logged or put in an error), a timeout, a
//! [`Backoff`](crate::adapters::http::Backoff) and
//! client-side rate limits per endpoint family ([`BrevoLimits`], by default
//! 80 % of the General plan's limits,
//! <https://developers.brevo.com/docs/api-limits>).
//!
//! Behaviour on failures:
//! - 429: waits what `x-sib-ratelimit-reset` says (seconds until the window
//!   resets; Brevo sends no `Retry-After`,
//!   <https://developers.brevo.com/docs/limit-headers>), clamped to
//!   `[rate_limit_wait_min, rate_limit_wait_max]`, pausing the family's
//!   bucket so concurrent calls back off too; then retries.
//! - 5xx, timeouts and transport errors: retried with jittered exponential
//!   backoff. Brevo has no idempotency keys: a timed-out `POST /v3/events`
//!   that Brevo did process is sent twice on retry.
//! - 4xx: never retried blindly; reported with Brevo's `code` and `message`
//!   (e-mail addresses in the message are redacted).
//!   Every call makes at most `backoff.max_attempts` attempts.
//!
//! Layout: `client` (configuration, [`BrevoClient::new`], the one `call`
//! with pacing, the shared retry decision of [`crate::adapters::http::retry`]
//! and the counters), `error` ([`BrevoError`]), [`wire`] (Brevo's limits and
//! the request bodies, shared with `sync --dry-run`), one file per endpoint
//! family (`contacts`, `lists`, `attributes`, `events`, `orders`,
//! `processes`, `account`) and `port` (the [`BrevoApi`](crate::ports::BrevoApi) impl).

mod account;
mod attributes;
mod client;
mod contacts;
mod error;
mod events;
mod lists;
mod orders;
mod port;
mod processes;
pub mod wire;

pub use account::AccountInfo;
pub use attributes::{AttributeMismatch, BrevoAttribute, EnsuredAttributes};
pub use client::{BrevoClient, BrevoConfig, BrevoLimits, BrevoStats, Family, FamilyStats, Rate};
pub use contacts::{ImportReceipt, UpsertOutcome};
pub use error::{BrevoError, Refusal};
pub use events::{EventsOutcome, FailedEvent};
pub use lists::{ListChange, ListInfo, ListedContact};
pub use processes::ProcessInfo;
pub use wire::{
    attribute_type_name, contact_body, events_batch_body, import_item, order_body, EVENTS_BATCH_MAX, IMPORT_MAX_BYTES,
    LIST_CHUNK_MAX, SMS_ATTRIBUTE,
};

#[cfg(test)]
mod test_support;
