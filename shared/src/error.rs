//! Crate-wide error type. Each layer has its own enum; this one gathers them
//! so the use cases can ask one question: may a retry succeed?

use crate::config::ConfigError;
use crate::ports::{QueueError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// True when the same input may succeed later (throttling, outages).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Config(_) => false,
            Self::Queue(e) => e.is_retryable(),
            Self::Store(e) => e.is_retryable(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Renders an error and its whole `source()` chain on one line for logs.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
