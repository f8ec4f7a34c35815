//! Error helpers. Each layer has its own typed error (`SignatureError`,
//! `QueueError`, `StoreError`, `StripeError`, `BrevoError`, `ConfigError`),
//! each able to say whether a retry may succeed.

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
