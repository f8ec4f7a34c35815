//! Logging set-up shared by the functions and the CLI: `RUST_LOG` filters,
//! `AWS_LAMBDA_LOG_FORMAT=JSON` gives one JSON object per line.
//! Callers never log bodies, keys or e-mail addresses (see [`redact_email`]).

use tracing_subscriber::EnvFilter;

use crate::config::{AWS_LAMBDA_LOG_FORMAT, RUST_LOG};

/// Libraries that log request and response bodies at debug/trace level
/// (the AWS SDK logs whole SQS messages, i.e. Stripe payloads with e-mail
/// addresses): capped at `info` whatever `RUST_LOG` asks, so no level of
/// logging ever writes a payload.
pub const PAYLOAD_LOGGING_LIBRARIES: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_http",
    "aws_smithy_runtime_api",
    "aws_sdk_sqs",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_sdk_ssm",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "tower",
    "axum",
];

/// `directives` (a `RUST_LOG`-style string) plus the caps above.
pub fn filter(directives: &str) -> EnvFilter {
    let mut f = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    for lib in PAYLOAD_LOGGING_LIBRARIES {
        if let Ok(d) = format!("{lib}=info").parse() {
            f = f.add_directive(d);
        }
    }
    f
}

/// Installs the global subscriber once; later calls are no-ops.
pub fn init(default_filter: &str) {
    let directives =
        std::env::var(RUST_LOG).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default_filter.to_owned());
    let filter = filter(&directives);
    let json = std::env::var(AWS_LAMBDA_LOG_FORMAT).map(|v| v.eq_ignore_ascii_case("json")).unwrap_or(false);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = if json { builder.json().with_current_span(true).without_time().try_init() } else { builder.try_init() };
}

/// `jane.doe@example.com` → `j***@e***.com`: enough to tell contacts apart in
/// a log, not enough to read the address.
pub fn redact_email(email: &str) -> String {
    let Some((local, domain)) = email.split_once('@') else {
        return "***".to_owned();
    };
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let tld = domain.rsplit_once('.').map(|(_, t)| t).unwrap_or("");
    format!("{}***@{}***.{}", first(local), first(domain), tld)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_emails_do_not_contain_the_address() {
        let r = redact_email("jane.doe@example.com");
        assert_eq!(r, "j***@e***.com");
        assert!(!r.contains("jane.doe"));
        assert_eq!(redact_email("nonsense"), "***");
    }
}
