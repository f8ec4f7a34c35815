//! [`ContactLedger`] on the CLI's SQLite store: one `contact_ledger` row per
//! contact (keyed by the caller's hash of the e-mail address, never the
//! address), with the pending tokens as a JSON array. Each call is one
//! transaction (`BEGIN IMMEDIATE` for the writes, so two processes sharing
//! the file never interleave a read-modify-write), applying the same
//! transitions as [`MemoryLedger`](crate::adapters::memory::MemoryLedger).
//! A finish also deletes a few entries past their `expires_at` (what
//! DynamoDB's TTL does for the deployed ledger).

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{unavailable, SqliteStore};
use crate::adapters::memory::LedgerRecord;
use crate::ports::{ContactLedger, LedgerEntry, StoreError};

/// Created by [`SqliteStore::open`] with the other tables.
pub(super) const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS contact_ledger (
    key        TEXT    PRIMARY KEY,
    fp         TEXT,
    sent_at    INTEGER NOT NULL DEFAULT 0,
    pending    TEXT    NOT NULL DEFAULT '[]',
    begun      INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS contact_ledger_expiry ON contact_ledger (expires_at);
";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("contact_ledger: {e}"))
}

/// The row of `key`, if any.
fn load(conn: &Connection, key: &str) -> Result<Option<LedgerRecord>, StoreError> {
    let row: Option<(Option<String>, i64, String, i64)> = conn
        .query_row("SELECT fp, sent_at, pending, begun FROM contact_ledger WHERE key = ?1", params![key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()
        .map_err(unavailable)?;
    row.map(|(fingerprint, sent_at, pending, begun)| {
        Ok(LedgerRecord {
            fingerprint,
            sent_at,
            pending: serde_json::from_str(&pending).map_err(corrupt)?,
            begun: u32::try_from(begun).map_err(corrupt)?,
        })
    })
    .transpose()
}

/// Reads `key`'s row (or a new one), applies `change` and writes it back, in
/// one immediate transaction; `now` (when known) prunes expired rows.
fn modify(
    conn: &mut Connection,
    key: &str,
    expires_at: i64,
    now: Option<i64>,
    change: impl FnOnce(&mut LedgerRecord),
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
    let mut record = load(&tx, key)?.unwrap_or_default();
    change(&mut record);
    let pending = serde_json::to_string(&record.pending).map_err(corrupt)?;
    tx.execute(
        "INSERT OR REPLACE INTO contact_ledger (key, fp, sent_at, pending, begun, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![key, record.fingerprint, record.sent_at, pending, record.begun, expires_at],
    )
    .map_err(unavailable)?;
    if let Some(now) = now {
        tx.execute(
            "DELETE FROM contact_ledger WHERE rowid IN (SELECT rowid FROM contact_ledger WHERE expires_at < ?1 AND key <> ?2 LIMIT 100)",
            params![now, key],
        )
        .map_err(unavailable)?;
    }
    tx.commit().map_err(unavailable)
}

#[async_trait]
impl ContactLedger for SqliteStore {
    async fn entries(&self, keys: &[String]) -> Result<HashMap<String, LedgerEntry>, StoreError> {
        let keys = keys.to_vec();
        self.run(move |conn| {
            // One read transaction: a consistent view of every key.
            let tx = conn.transaction().map_err(unavailable)?;
            let mut out = HashMap::with_capacity(keys.len());
            for key in keys {
                if let Some(record) = load(&tx, &key)? {
                    out.insert(key, record.entry());
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
    }

    async fn begin(&self, key: &str, token: &str, expires_at: i64) -> Result<(), StoreError> {
        let (key, token) = (key.to_owned(), token.to_owned());
        self.run(move |conn| modify(conn, &key, expires_at, None, |r| r.begin(&token))).await
    }

    async fn finish(
        &self,
        key: &str,
        token: &str,
        sent: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let (key, token, sent) = (key.to_owned(), token.to_owned(), sent.map(str::to_owned));
        self.run(move |conn| modify(conn, &key, expires_at, Some(now), |r| r.finish(&token, sent.as_deref(), now)))
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[tokio::test]
    async fn a_finish_deletes_entries_past_their_expiry_as_ttl_would() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
        let keys = ["contact#old".to_owned(), "contact#live".to_owned(), "contact#now".to_owned()];
        store.begin(&keys[0], "crashed", NOW - 1).await.unwrap();
        store.begin(&keys[1], "t", NOW + 1).await.unwrap();
        assert_eq!(store.entries(&keys).await.unwrap().len(), 2);
        store.finish(&keys[2], "t", None, NOW, NOW - 5).await.unwrap();
        let left = store.entries(&keys).await.unwrap();
        let mut left: Vec<&String> = left.keys().collect();
        left.sort();
        // The finished key itself stays (it was just written), the live one too.
        assert_eq!(left, [&keys[1], &keys[2]]);
    }
}
