//! DynamoDB adapters (aws-sdk-dynamodb): the idempotency (dedup) table.
//!
//! Dedup item: `pk` (S, the key, e.g. `evt_…`), `status` (`IN_PROGRESS` |
//! `COMPLETED`), `in_progress_until` (N, epoch s), `expires_at` (N, epoch s,
//! also the table's TTL attribute). Conditions compare the stored values, so
//! an expired item that TTL has not yet deleted (TTL lags up to days) is
//! treated as absent.
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html>

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::ports::{Claim, IdempotencyStore, StoreError};

pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const COMPLETED: &str = "COMPLETED";

#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: Client,
    table: String,
}

impl DynamoIdempotency {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// Throttling, outages and timeouts are retryable; validation errors are not.
pub(crate) fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(se)
            if matches!(se.err().code(), Some("ValidationException" | "ResourceNotFoundException")) =>
        {
            StoreError::Corrupt(text)
        }
        _ => StoreError::Unavailable(text),
    }
}

pub(crate) fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotency {
    async fn claim(&self, key: &str, now: i64, in_progress_until: i64, expires_at: i64) -> Result<Claim, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("status", s(IN_PROGRESS))
            .item("in_progress_until", n(in_progress_until))
            .item("expires_at", n(expires_at))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now OR (#st = :inprogress AND in_progress_until < :now)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":inprogress", s(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(Claim::Acquired),
            Err(e) if is_condition_failure(&e) => {
                let status = match &e {
                    SdkError::ServiceError(se) => match se.err() {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                            c.item().and_then(|i| i.get("status")).and_then(|v| v.as_s().ok()).cloned()
                        }
                        _ => None,
                    },
                    _ => None,
                };
                Ok(match status.as_deref() {
                    Some(COMPLETED) => Claim::AlreadyCompleted,
                    Some(IN_PROGRESS) => Claim::InProgressElsewhere,
                    // Moto/old APIs may not return the item: read it.
                    _ => self.read_claim(key).await?,
                })
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn complete(&self, key: &str, expires_at: i64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression("SET #st = :completed, expires_at = :exp REMOVE in_progress_until")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":exp", n(expires_at))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .condition_expression("#st = :inprogress")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":inprogress", s(IN_PROGRESS))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()), // nothing of ours to release
            Err(e) => Err(store_error(e)),
        }
    }
}

impl DynamoIdempotency {
    async fn read_claim(&self, key: &str) -> Result<Claim, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let status = out.item().and_then(|i| i.get("status")).and_then(|v| v.as_s().ok()).map(String::as_str);
        Ok(match status {
            Some(COMPLETED) => Claim::AlreadyCompleted,
            _ => Claim::InProgressElsewhere,
        })
    }

    /// Creates the dedup table with its TTL (tests and the local `--aws` set-up;
    /// the deployed table comes from template.yaml).
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::TimeToLiveSpecification;
        create_pk_table(client, table).await?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// Creates an on-demand table keyed by `pk` (S), as both tables are.
pub(crate) async fn create_pk_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        )
        .send()
        .await
        .map_err(store_error)?;
    Ok(())
}
