//! Read-only HTTP client for the Stripe API (`GET /v1/...`), generic over the
//! types the caller deserializes into (it never depends on the domain types),
//! and the consumer's and poller's ports on it.
//!
//! Built once per cold start with an injected base URL (`STRIPE_API_BASE`),
//! a [`SecretString`](secrecy::SecretString) key sent as `Authorization:
//! Bearer`, a timeout, a pinned `Stripe-Version`, a retry policy and an
//! optional client-side request budget.
//!
//! - Pagination (`pagination`): <https://docs.stripe.com/api/pagination> —
//!   `limit` ≤ 100, newest first, the cursor is the last object's `id`. Like
//!   async-stripe, paging stops when there is no next cursor even if
//!   `has_more` is true.
//! - Retries (`client`, with the shared
//!   [`crate::adapters::http::retry`] decision):
//!   <https://docs.stripe.com/error-low-level#idempotency> — the
//!   `Stripe-Should-Retry` header wins when present; otherwise 409
//!   (`lock_timeout`), 429, 5xx and network errors are retried with
//!   exponential backoff and full jitter, honouring `Retry-After` (clamped).
//! - Rate limits: <https://docs.stripe.com/rate-limits> — 100 r/s live,
//!   25 r/s test, per account; the default budget stays under them (80 /
//!   20), a [`TokenBucket`](crate::adapters::http::TokenBucket) with burst =
//!   rate; a process's share of an account-wide budget uses burst 1
//!   (`wiring::budget`).
//! - Errors (`error`): no error text ever contains the key: Stripe's own
//!   messages carry a masked key (`sk_test_****abcd`), which is dropped or
//!   redacted.
//! - Ports (`port`): [`StripeReader`] implements
//!   [`StripeApi`](crate::ports::StripeApi); the client itself implements
//!   [`StripeFeed`](crate::ports::StripeFeed).

mod client;
mod error;
mod pagination;
mod port;

pub use client::{
    RetryPolicy, StripeClient, StripeClientBuilder, StripeStats, DEFAULT_LIVE_RPS, DEFAULT_TEST_RPS, STRIPE_API_VERSION,
};
pub use error::StripeError;
pub use pagination::{Cursor, Page, Pager, MAX_PAGE_SIZE};
pub use port::StripeReader;

#[cfg(test)]
mod test_support;
