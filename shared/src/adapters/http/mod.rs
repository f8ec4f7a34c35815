//! What the Stripe and Brevo HTTP clients share, so each rule exists once:
//!
//! - [`bucket`]: the client-side [`TokenBucket`] (Brevo: one per endpoint
//!   family; Stripe: one per client).
//! - [`retry`]: the one retry decision ([`retry::decide`], a pure function;
//!   the vendors' differences are data in a [`retry::Policy`]), the one loop
//!   that drives it ([`retry::run`]) and the jittered [`Backoff`].
//! - [`redact`]: e-mail scrubbing of vendor messages and Stripe key redaction.
//!
//! Vendor-neutral: the vendor modules (`super::brevo`, `super::stripe`) use
//! this one, never the other way round (only the retry tests build both
//! vendors' real policies, to check the decision against them).

pub mod bucket;
pub mod redact;
pub mod retry;

pub use bucket::{TokenBucket, WaitStats};
pub use retry::{clamp_duration, Backoff};
