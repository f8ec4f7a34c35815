//! [`ContactLedger`] on DynamoDB (aws-sdk-dynamodb), in the dedup table
//! (`DEDUP_TABLE`, partition key `pk` (S), TTL attribute `expires_at`).
//!
//! Item, one per contact (`pk` is the caller's key, a hash of the e-mail
//! address — never the address):
//! - `fp` (S, absent when unknown): the fingerprint last recorded;
//! - `sent_at` (N, epoch s): when it was recorded;
//! - `pending` (SS, absent when empty — DynamoDB deletes an empty set): the
//!   tokens of the pushes under way (or crashed);
//! - `begun` (N, absent when 0): pushes begun since `pending` was last empty,
//!   so a push that is alone in `pending` at its finish but overlapped one
//!   that finished first is not recorded;
//! - `expires_at` (N, epoch s): set by every write, so abandoned entries are
//!   deleted by TTL.
//!
//! [`begin`](ContactLedger::begin) is one `ADD`; [`finish`](ContactLedger::finish)
//! records with one conditional `SET … REMOVE pending, begun` (condition:
//! `begun = 1` and the set is exactly `{token}`), or else forgets the
//! fingerprint and `DELETE`s the token, resetting `begun` in the same write
//! exactly when that empties the set (two complementary conditional updates,
//! retried if the item changed between them). Every step is one atomic
//! UpdateItem. Reads are strongly consistent BatchGetItems of ≤ 100 keys.
//!
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html>
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html>
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html>

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;

use crate::adapters::dynamodb::{is_condition_failure, n, s, store_error};
use crate::ports::{ContactLedger, LedgerEntry, StoreError};

/// BatchGetItem's limit of keys per request.
pub const BATCH_GET_MAX_KEYS: usize = 100;

/// Requests per chunk while DynamoDB returns `UnprocessedKeys` (throttling
/// or the 16 MB response limit), with a doubling backoff from 50 ms.
const BATCH_GET_ATTEMPTS: u32 = 5;

/// Rounds of the two complementary "forget" updates (each round fails only
/// if the item changed in between) before falling back to one that leaves
/// `begun` as it is: safe, at worst the contact's next push is not recorded
/// (its own forget, emptying the set, resets `begun`).
const FORGET_ROUNDS: usize = 4;

/// The `pending` set is exactly `{:t}`, counting `begun`: nobody else began
/// since this push did.
const ALONE: &str = "begun = :one AND size(pending) = :one AND contains(pending, :t)";
/// Deleting `:t` leaves the set empty.
const EMPTIES: &str = "attribute_not_exists(pending) OR (size(pending) = :one AND contains(pending, :t))";
/// Deleting `:t` leaves the set non-empty (the complement of [`EMPTIES`]).
const KEEPS: &str = "attribute_exists(pending) AND (size(pending) > :one OR NOT contains(pending, :t))";

/// The contact ledger in the dedup table.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    /// The ledger in `table` (the dedup table, `DEDUP_TABLE`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn update(&self, key: &str, expires_at: i64) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .expression_attribute_values(":e", n(expires_at))
    }

    /// Forgets the fingerprint and takes `token` out of the set, resetting
    /// `begun` too when `reset`; `false` when `condition` did not hold.
    async fn forget(
        &self,
        key: &str,
        token: &str,
        expires_at: i64,
        reset: bool,
        condition: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .update(key, expires_at)
            .update_expression(if reset {
                "REMOVE fp, begun SET expires_at = :e DELETE pending :ts"
            } else {
                "REMOVE fp SET expires_at = :e DELETE pending :ts"
            })
            .expression_attribute_values(":ts", AttributeValue::Ss(vec![token.to_owned()]));
        if let Some(c) = condition {
            req = req
                .condition_expression(c)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":t", s(token));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// One chunk of ≤ 100 distinct keys, retrying `UnprocessedKeys`.
    async fn get_chunk(&self, keys: &[&String], out: &mut HashMap<String, LedgerEntry>) -> Result<(), StoreError> {
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys.iter().map(|k| HashMap::from([("pk".to_owned(), s(k))])).collect()))
                .consistent_read(true)
                .projection_expression("pk, fp, sent_at, pending")
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        let mut backoff = Duration::from_millis(50);
        for attempt in 1..=BATCH_GET_ATTEMPTS {
            let Some(req) = request.take() else { return Ok(()) };
            let res = self.client.batch_get_item().request_items(&self.table, req).send().await.map_err(store_error)?;
            for item in res.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                let (key, entry) = parse(item)?;
                out.insert(key, entry);
            }
            request = res.unprocessed_keys().and_then(|u| u.get(&self.table)).filter(|k| !k.keys().is_empty()).cloned();
            if request.is_some() && attempt < BATCH_GET_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        match request {
            None => Ok(()),
            Some(left) => Err(StoreError::Unavailable(format!(
                "BatchGetItem left {} keys unprocessed after {BATCH_GET_ATTEMPTS} attempts",
                left.keys().len()
            ))),
        }
    }
}

/// An item as a [`LedgerEntry`].
fn parse(item: &HashMap<String, AttributeValue>) -> Result<(String, LedgerEntry), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("ledger item: {what}"));
    let key = item.get("pk").and_then(|v| v.as_s().ok()).ok_or_else(|| corrupt("no pk"))?.clone();
    let sent_at = match item.get("sent_at") {
        None => 0,
        Some(v) => v.as_n().ok().and_then(|x| x.parse().ok()).ok_or_else(|| corrupt("sent_at is not a number"))?,
    };
    let entry = LedgerEntry {
        fingerprint: item.get("fp").and_then(|v| v.as_s().ok()).cloned(),
        sent_at,
        pending: item.get("pending").and_then(|v| v.as_ss().ok()).is_some_and(|set| !set.is_empty()),
    };
    Ok((key, entry))
}

#[async_trait]
impl ContactLedger for DynamoLedger {
    async fn entries(&self, keys: &[String]) -> Result<HashMap<String, LedgerEntry>, StoreError> {
        // BatchGetItem rejects a request that names a key twice.
        let mut seen = HashSet::new();
        let distinct: Vec<&String> = keys.iter().filter(|k| seen.insert(k.as_str())).collect();
        let mut out = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(BATCH_GET_MAX_KEYS) {
            self.get_chunk(chunk, &mut out).await?;
        }
        Ok(out)
    }

    async fn begin(&self, key: &str, token: &str, expires_at: i64) -> Result<(), StoreError> {
        self.update(key, expires_at)
            .update_expression("ADD pending :ts, begun :one SET expires_at = :e")
            .expression_attribute_values(":ts", AttributeValue::Ss(vec![token.to_owned()]))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn finish(
        &self,
        key: &str,
        token: &str,
        sent: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        if let Some(fp) = sent {
            let res = self
                .update(key, expires_at)
                .update_expression("SET fp = :fp, sent_at = :now, expires_at = :e REMOVE pending, begun")
                .condition_expression(ALONE)
                .expression_attribute_values(":fp", s(fp))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":t", s(token))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(()),
                Err(e) if is_condition_failure(&e) => {} // overlapped: forget it
                Err(e) => return Err(store_error(e)),
            }
        }
        for _ in 0..FORGET_ROUNDS {
            if self.forget(key, token, expires_at, true, Some(EMPTIES)).await?
                || self.forget(key, token, expires_at, false, Some(KEEPS)).await?
            {
                return Ok(());
            }
        }
        self.forget(key, token, expires_at, false, None).await.map(|_| ())
    }
}
