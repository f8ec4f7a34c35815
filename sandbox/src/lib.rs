//! Local Stripe-like and Brevo-like HTTP servers for the tests and for
//! `stripe-brevo demo`. Stateful, paginated, with injectable faults (429 with
//! the vendors' real headers, 5xx, slow answers). Never linked into a Lambda.

pub mod brevo;
pub mod latency;
pub mod stripe;
