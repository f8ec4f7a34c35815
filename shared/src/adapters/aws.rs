//! AWS SDK configuration shared by every function: region and credentials
//! from the standard chain, `AWS_ENDPOINT_URL` honoured (moto in tests), and
//! timeouts short enough that a webhook answers Stripe well within its limit.
//! Loading makes no network call; credentials are fetched on first use.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;

/// Per-attempt and per-operation timeouts for SQS/DynamoDB calls.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(4))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

/// The SDK configuration from the environment.
pub async fn load() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts()).load().await
}
