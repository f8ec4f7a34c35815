//! Pure domain: no I/O, no clocks read directly, no adapters.

pub mod brevo;
pub mod event;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod mapping;
pub mod metrics;
pub mod money;
pub mod signature;
pub mod stripe;
