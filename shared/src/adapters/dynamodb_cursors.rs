//! [`CursorStore`] on DynamoDB (aws-sdk-dynamodb): the poller's cursor table
//! (`CURSOR_TABLE`, partition key `pk` of type S).
//!
//! Items:
//! - `pk = "cursor#<resource>"`: one per resource, the [`CursorRecord`]
//!   fields as top-level attributes (strings S, numbers N; unset fields are
//!   absent), readable in the console;
//! - `pk = "lease"`: `owner` (S) and `lease_until` (N, epoch s), taken with a
//!   conditional put `attribute_not_exists(pk) OR lease_until < :now OR
//!   owner = :me`, so an expired lease is taken over by value (no TTL needed);
//! - `pk = "contacts"`: the consumer's counters, incremented with an atomic
//!   `ADD` (concurrent batches never lose an increment).
//!
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html>
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html#Expressions.UpdateExpressions.ADD>

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::adapters::dynamodb::store_error;
use crate::ports::{ContactCounts, CursorRecord, CursorStore, StoreError};

const CURSOR_PREFIX: &str = "cursor#";
const LEASE_PK: &str = "lease";
const CONTACTS_PK: &str = "contacts";

#[derive(Debug, Clone)]
pub struct DynamoCursors {
    client: Client,
    table: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

/// The record's fields as attributes (via its serde form: strings → S,
/// integers → N, nulls omitted).
fn to_item(record: &CursorRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let value = serde_json::to_value(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let serde_json::Value::Object(fields) = value else {
        return Err(StoreError::Corrupt("cursor record is not an object".into()));
    };
    let mut item = HashMap::with_capacity(fields.len() + 1);
    item.insert("pk".to_owned(), s(&format!("{CURSOR_PREFIX}{}", record.resource)));
    for (k, v) in fields {
        let attr = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(t) => AttributeValue::S(t),
            serde_json::Value::Number(num) => AttributeValue::N(num.to_string()),
            serde_json::Value::Bool(b) => AttributeValue::Bool(b),
            other => AttributeValue::S(other.to_string()),
        };
        item.insert(k, attr);
    }
    Ok(item)
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<CursorRecord, StoreError> {
    let mut fields = serde_json::Map::with_capacity(item.len());
    for (k, v) in item {
        if k == "pk" {
            continue;
        }
        let value = match v {
            AttributeValue::S(t) => serde_json::Value::String(t.clone()),
            AttributeValue::N(t) => {
                if let Ok(i) = t.parse::<i64>() {
                    serde_json::Value::from(i)
                } else if let Ok(u) = t.parse::<u64>() {
                    serde_json::Value::from(u)
                } else {
                    return Err(StoreError::Corrupt(format!("cursor attribute {k} is not an integer")));
                }
            }
            AttributeValue::Bool(b) => serde_json::Value::Bool(*b),
            _ => continue,
        };
        fields.insert(k.clone(), value);
    }
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| StoreError::Corrupt(format!("cursor record: {e}")))
}

fn count_of(item: Option<&HashMap<String, AttributeValue>>, name: &str) -> u64 {
    item.and_then(|i| i.get(name)).and_then(|v| v.as_n().ok()).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0)
}

impl DynamoCursors {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates the cursor table (tests and the local `--aws` set-up; the
    /// deployed table comes from template.yaml).
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        crate::adapters::dynamodb::create_pk_table(client, table).await?;
        Ok(())
    }
}

#[async_trait]
impl CursorStore for DynamoCursors {
    async fn load(&self, resource: &str) -> Result<Option<CursorRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&format!("{CURSOR_PREFIX}{resource}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(from_item).transpose()
    }

    async fn save(&self, record: &CursorRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)?))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<CursorRecord>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :prefix)")
                .expression_attribute_values(":prefix", s(CURSOR_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items() {
                out.push(from_item(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.resource.cmp(&b.resource));
        Ok(out)
    }

    async fn acquire_lease(&self, owner: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(LEASE_PK))
            .item("owner", s(owner))
            .item("lease_until", n(until))
            .condition_expression("attribute_not_exists(pk) OR #until < :now OR #owner = :me")
            .expression_attribute_names("#until", "lease_until")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(LEASE_PK))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()), // not ours (any more)
            Err(e) => Err(store_error(e)),
        }
    }

    async fn add_contact_counts(&self, delta: ContactCounts) -> Result<(), StoreError> {
        let as_n = |v: u64| AttributeValue::N(v.to_string());
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(CONTACTS_PK))
            .update_expression("ADD #synced :a, #skipped :b, #failed :c")
            .expression_attribute_names("#synced", "synced")
            .expression_attribute_names("#skipped", "skipped_no_email")
            .expression_attribute_names("#failed", "failed")
            .expression_attribute_values(":a", as_n(delta.synced))
            .expression_attribute_values(":b", as_n(delta.skipped_no_email))
            .expression_attribute_values(":c", as_n(delta.failed))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn contact_counts(&self) -> Result<ContactCounts, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(CONTACTS_PK))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let item = out.item();
        Ok(ContactCounts {
            synced: count_of(item, "synced"),
            skipped_no_email: count_of(item, "skipped_no_email"),
            failed: count_of(item, "failed"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SyncMode;

    #[test]
    fn a_record_survives_the_attribute_round_trip() {
        let mut r = CursorRecord::new("charges");
        r.mode = SyncMode::Incremental;
        r.since = Some(1_672_531_200);
        r.run = Some("1700000000-0000abcd".into());
        r.events_created = Some(1_700_000_123);
        r.events_last_id = Some("evt_1".into());
        r.synced = u64::from(u32::MAX) * 3;
        r.last_error = Some("Stripe server error (HTTP 500)".into());
        let item = to_item(&r).expect("item");
        assert_eq!(item.get("pk").and_then(|v| v.as_s().ok()).map(String::as_str), Some("cursor#charges"));
        assert!(!item.contains_key("starting_after"), "unset fields are absent");
        assert_eq!(from_item(&item).expect("record"), r);
    }

    #[test]
    fn a_non_integer_number_is_reported_as_corrupt() {
        let mut item = to_item(&CursorRecord::new("customers")).expect("item");
        item.insert("synced".into(), AttributeValue::N("1.5".into()));
        assert!(matches!(from_item(&item), Err(StoreError::Corrupt(_))));
    }
}
