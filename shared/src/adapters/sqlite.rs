//! The CLI's embedded state: one SQLite file (rusqlite, bundled, WAL) holding
//! a durable local queue with a dead-letter state, the idempotency (dedup)
//! records, the poller's cursors and lease, the contact counters and the
//! contact ledger.
//!
//! It implements the same ports as SQS + DynamoDB, with the same semantics
//! as the in-memory fakes ([`crate::adapters::memory`]):
//! - [`EventQueue`] (send) plus [`SqliteStore::receive`] / [`SqliteStore::ack`] /
//!   [`SqliteStore::nack`]: a received message is invisible until its
//!   visibility timeout passes; it is deleted only when acknowledged, so a
//!   crash between receive and ack loses nothing (the message becomes
//!   visible again). A message received more than `max_receives` times is
//!   moved to the dead-letter state instead of being delivered (SQS's
//!   `maxReceiveCount` redrive policy).
//! - [`DeadLetters`]: rows in the dead-letter state, kept for inspection and
//!   [`SqliteStore::redrive`].
//! - [`IdempotencyStore`]: expiry and in-progress deadlines compared by
//!   value; an expired or stale in-progress record is taken over.
//! - [`CursorStore`]: whole records as JSON, a single-row lease, counters.
//! - [`ContactLedger`](crate::ports::ContactLedger): the contacts last
//!   written to Brevo (`sqlite/ledger.rs`).
//!
//! Durability: `journal_mode=WAL`, `synchronous=NORMAL` — a committed write
//! survives the process being killed at any point (what `serve` promises
//! Stripe); only an operating-system crash may lose the last commits.
//! <https://www.sqlite.org/pragma.html#pragma_synchronous>
//!
//! Every call runs on Tokio's blocking pool over one connection behind a
//! mutex; several processes may share the file (`busy_timeout` 5 s).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::ports::{
    Claim, ContactCounts, CursorRecord, CursorStore, DeadLetters, EventQueue, IdempotencyStore, QueueError,
    QueueMessage, Source, StoreError,
};

mod ledger;

/// Default number of receives after which a message is dead-lettered
/// (template.yaml's `maxReceiveCount`).
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    livemode      INTEGER,
    source        TEXT    NOT NULL,
    enqueued_at   INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,
    dead          INTEGER NOT NULL DEFAULT 0,
    dead_reason   TEXT
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (dead, visible_at, id);
CREATE TABLE IF NOT EXISTS dedup (
    key               TEXT PRIMARY KEY,
    completed         INTEGER NOT NULL,
    in_progress_until INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    resource TEXT PRIMARY KEY,
    record   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lease (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT    NOT NULL,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    synced           INTEGER NOT NULL DEFAULT 0,
    skipped_no_email INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO counters (id) VALUES (1);
";

/// A message handed out by [`SqliteStore::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Row id (stable across deliveries), as text for `InboundMessage::message_id`.
    pub id: i64,
    /// Changes at every delivery; `ack`/`nack` with an older one do nothing.
    pub receipt: String,
    pub message: QueueMessage,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

/// A dead-lettered message (for inspection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadMessage {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub reason: String,
    pub receive_count: u32,
}

/// Queue depths for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Messages waiting or in flight (not dead).
    pub depth: u64,
    /// Of which received and not yet acknowledged nor visible again.
    pub in_flight: u64,
    /// Dead-lettered messages.
    pub dlq: u64,
}

/// The embedded store (cheap to clone: one shared connection).
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    max_receives: u32,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).field("max_receives", &self.max_receives).finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn queue_error(e: StoreError) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl SqliteStore {
    /// Opens (creating if needed) the state file and its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(unavailable)?;
        // journal_mode answers with a row; pragma_update ignores it.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(unavailable)?;
        for schema in [SCHEMA, ledger::SCHEMA] {
            conn.execute_batch(schema).map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
        }
        Ok(Self { conn: Arc::new(Mutex::new(conn)), path, max_receives: DEFAULT_MAX_RECEIVES })
    }

    /// Receives after which a message is dead-lettered (≥ 1).
    pub fn with_max_receives(mut self, n: u32) -> Self {
        self.max_receives = n.max(1);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection in the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }

    /// Enqueues `m` at `now`, visible from `now + delay`.
    fn insert_message(conn: &Connection, m: &QueueMessage, now: i64, delay: i64) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO queue (body, event_id, event_type, livemode, source, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![m.body, m.event_id, m.event_type, m.livemode, m.source.as_str(), now, now + delay],
        )
        .map_err(unavailable)?;
        Ok(())
    }

    /// Up to `max` visible messages, each made invisible for `visibility_secs`
    /// and its receive count incremented. Messages already received
    /// `max_receives` times are moved to the dead-letter state instead.
    pub async fn receive(&self, max: usize, visibility_secs: i64, now: i64) -> Result<Vec<Received>, StoreError> {
        let max_receives = i64::from(self.max_receives);
        let limit = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            let mut out = Vec::new();
            {
                let mut select = tx
                    .prepare_cached(
                        "SELECT id, body, event_id, event_type, livemode, source, receive_count FROM queue
                         WHERE dead = 0 AND visible_at <= ?1 ORDER BY id LIMIT ?2",
                    )
                    .map_err(unavailable)?;
                let rows = select
                    .query_map(params![now, limit], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, Option<bool>>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    })
                    .map_err(unavailable)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)?;
                for (id, body, event_id, event_type, livemode, source, count) in rows {
                    if count >= max_receives {
                        tx.execute(
                            "UPDATE queue SET dead = 1, receipt = NULL, dead_reason = ?2 WHERE id = ?1",
                            params![id, format!("received {count} times without success")],
                        )
                        .map_err(unavailable)?;
                        tracing::warn!(message_id = id, event_id = %event_id, receives = count, "message moved to the dead-letter queue");
                        continue;
                    }
                    let receipt = format!("{id}-{}-{:016x}", count + 1, rand::random::<u64>());
                    tx.execute(
                        "UPDATE queue SET receive_count = receive_count + 1, visible_at = ?2, receipt = ?3 WHERE id = ?1",
                        params![id, now.saturating_add(visibility_secs.max(0)), receipt],
                    )
                    .map_err(unavailable)?;
                    let source = Source::parse(&source).ok_or_else(|| StoreError::Corrupt(format!("queue row {id}: source {source:?}")))?;
                    out.push(Received {
                        id,
                        receipt,
                        message: QueueMessage { body, event_id, event_type, livemode, source },
                        receive_count: u32::try_from(count + 1).unwrap_or(u32::MAX),
                    });
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
    }

    /// Deletes a processed message; false when the receipt is stale (the
    /// message was delivered again meanwhile) or the message is gone.
    pub async fn ack(&self, id: i64, receipt: &str) -> Result<bool, StoreError> {
        let receipt = receipt.to_owned();
        self.run(move |conn| {
            let n = conn
                .execute("DELETE FROM queue WHERE id = ?1 AND receipt = ?2 AND dead = 0", params![id, receipt])
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    /// Makes a received message visible again after `delay_secs` (retry).
    pub async fn nack(&self, id: i64, receipt: &str, delay_secs: i64, now: i64) -> Result<bool, StoreError> {
        let receipt = receipt.to_owned();
        self.run(move |conn| {
            let n = conn
                .execute(
                    "UPDATE queue SET visible_at = ?3, receipt = NULL WHERE id = ?1 AND receipt = ?2 AND dead = 0",
                    params![id, receipt, now.saturating_add(delay_secs.max(0))],
                )
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    /// Moves a received message to the dead-letter state at once.
    pub async fn kill(&self, id: i64, receipt: &str, reason: &str) -> Result<bool, StoreError> {
        let (receipt, reason) = (receipt.to_owned(), reason.chars().take(256).collect::<String>());
        self.run(move |conn| {
            let n = conn
                .execute(
                    "UPDATE queue SET dead = 1, receipt = NULL, dead_reason = ?3 WHERE id = ?1 AND receipt = ?2 AND dead = 0",
                    params![id, receipt, reason],
                )
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    /// Queue and dead-letter counts.
    pub async fn depth(&self, now: i64) -> Result<QueueDepth, StoreError> {
        self.run(move |conn| {
            conn.query_row(
                "SELECT COALESCE(SUM(dead = 0), 0), COALESCE(SUM(dead = 0 AND visible_at > ?1 AND receipt IS NOT NULL), 0), COALESCE(SUM(dead = 1), 0) FROM queue",
                params![now],
                |r| {
                    Ok(QueueDepth {
                        depth: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        in_flight: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        dlq: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    })
                },
            )
            .map_err(unavailable)
        })
        .await
    }

    /// Seconds until the next waiting message becomes visible (`None` when
    /// nothing waits; 0 when one is visible now).
    pub async fn next_visible_in(&self, now: i64) -> Result<Option<i64>, StoreError> {
        self.run(move |conn| {
            let at: Option<i64> = conn
                .query_row("SELECT MIN(visible_at) FROM queue WHERE dead = 0", [], |r| r.get(0))
                .map_err(unavailable)?;
            Ok(at.map(|t| (t - now).max(0)))
        })
        .await
    }

    /// What [`IdempotencyStore::claim`] would answer for `key` at `now`,
    /// without writing: `None` when it would be acquired (for `--dry-run`).
    pub async fn peek_claim(&self, key: &str, now: i64) -> Result<Option<Claim>, StoreError> {
        let key = key.to_owned();
        self.run(move |conn| {
            let existing: Option<(bool, i64, i64)> = conn
                .query_row(
                    "SELECT completed, in_progress_until, expires_at FROM dedup WHERE key = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(match existing {
                Some((true, _, exp)) if exp >= now => Some(Claim::AlreadyCompleted),
                Some((false, until, exp)) if exp >= now && until >= now => Some(Claim::InProgressElsewhere),
                _ => None,
            })
        })
        .await
    }

    /// The dead-lettered messages, oldest first.
    pub async fn dead_messages(&self) -> Result<Vec<DeadMessage>, StoreError> {
        self.run(|conn| {
            let mut st = conn
                .prepare("SELECT id, event_id, event_type, COALESCE(dead_reason, ''), receive_count FROM queue WHERE dead = 1 ORDER BY id")
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| {
                    Ok(DeadMessage {
                        id: r.get(0)?,
                        event_id: r.get(1)?,
                        event_type: r.get(2)?,
                        reason: r.get(3)?,
                        receive_count: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                    })
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable);
            rows
        })
        .await
    }

    /// Puts every dead-lettered message back on the queue with a fresh
    /// receive count (after the cause was fixed). Returns how many.
    pub async fn redrive(&self, now: i64) -> Result<usize, StoreError> {
        self.run(move |conn| {
            conn.execute(
                "UPDATE queue SET dead = 0, dead_reason = NULL, receive_count = 0, receipt = NULL, visible_at = ?1 WHERE dead = 1",
                params![now],
            )
            .map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl EventQueue for SqliteStore {
    async fn send(&self, message: &QueueMessage) -> Result<(), QueueError> {
        let m = message.clone();
        self.run(move |conn| Self::insert_message(conn, &m, now_unix(), 0)).await.map_err(queue_error)
    }

    /// Visible only after `delay_secs`, as SQS's `DelaySeconds`.
    async fn send_delayed(&self, message: &QueueMessage, delay_secs: u32) -> Result<(), QueueError> {
        let m = message.clone();
        self.run(move |conn| Self::insert_message(conn, &m, now_unix(), i64::from(delay_secs)))
            .await
            .map_err(queue_error)
    }

    /// All or nothing, in one transaction.
    async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let ms = messages.to_vec();
        self.run(move |conn| {
            let now = now_unix();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            for m in &ms {
                Self::insert_message(&tx, m, now, 0)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
        .map_err(queue_error)
    }
}

#[async_trait]
impl DeadLetters for SqliteStore {
    async fn dead_letter(&self, body: &str, event_id: Option<&str>, reason: &str) -> Result<(), QueueError> {
        let (body, event_id, reason) =
            (body.to_owned(), event_id.unwrap_or("").to_owned(), reason.chars().take(256).collect::<String>());
        self.run(move |conn| {
            let now = now_unix();
            conn.execute(
                "INSERT INTO queue (body, event_id, event_type, source, enqueued_at, visible_at, dead, dead_reason)
                 VALUES (?1, ?2, '', 'webhook', ?3, ?3, 1, ?4)",
                params![body, event_id, now, reason],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
        .map_err(queue_error)
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn claim(&self, key: &str, now: i64, in_progress_until: i64, expires_at: i64) -> Result<Claim, StoreError> {
        let key = key.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            let existing: Option<(bool, i64, i64)> = tx
                .query_row("SELECT completed, in_progress_until, expires_at FROM dedup WHERE key = ?1", params![key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
                .map_err(unavailable)?;
            // Expired records are dead weight: prune a few at each claim.
            tx.execute(
                "DELETE FROM dedup WHERE rowid IN (SELECT rowid FROM dedup WHERE expires_at < ?1 AND key <> ?2 LIMIT 100)",
                params![now, key],
            )
            .map_err(unavailable)?;
            let claim = match existing {
                Some((completed, until, exp)) if exp >= now && (completed || until >= now) => {
                    if completed {
                        Claim::AlreadyCompleted
                    } else {
                        Claim::InProgressElsewhere
                    }
                }
                _ => {
                    tx.execute(
                        "INSERT OR REPLACE INTO dedup (key, completed, in_progress_until, expires_at) VALUES (?1, 0, ?2, ?3)",
                        params![key, in_progress_until, expires_at],
                    )
                    .map_err(unavailable)?;
                    Claim::Acquired
                }
            };
            tx.commit().map_err(unavailable)?;
            Ok(claim)
        })
        .await
    }

    async fn complete(&self, key: &str, expires_at: i64) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO dedup (key, completed, in_progress_until, expires_at) VALUES (?1, 1, 0, ?2)",
                params![key, expires_at],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |conn| {
            conn.execute("DELETE FROM dedup WHERE key = ?1 AND completed = 0", params![key]).map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}

fn counts_of(conn: &Connection) -> Result<ContactCounts, StoreError> {
    conn.query_row("SELECT synced, skipped_no_email, failed FROM counters WHERE id = 1", [], |r| {
        Ok(ContactCounts {
            synced: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            skipped_no_email: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            failed: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
        })
    })
    .optional()
    .map_err(unavailable)
    .map(Option::unwrap_or_default)
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl CursorStore for SqliteStore {
    async fn load(&self, resource: &str) -> Result<Option<CursorRecord>, StoreError> {
        let resource = resource.to_owned();
        self.run(move |conn| {
            let text: Option<String> = conn
                .query_row("SELECT record FROM cursors WHERE resource = ?1", params![resource], |r| r.get(0))
                .optional()
                .map_err(unavailable)?;
            text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("cursor {resource}: {e}"))))
                .transpose()
        })
        .await
    }

    async fn save(&self, record: &CursorRecord) -> Result<(), StoreError> {
        let text = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let resource = record.resource.clone();
        self.run(move |conn| {
            conn.execute("INSERT OR REPLACE INTO cursors (resource, record) VALUES (?1, ?2)", params![resource, text])
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn list(&self) -> Result<Vec<CursorRecord>, StoreError> {
        self.run(|conn| {
            let mut st = conn.prepare("SELECT resource, record FROM cursors ORDER BY resource").map_err(unavailable)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(res, t)| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("cursor {res}: {e}"))))
                .collect()
        })
        .await
    }

    async fn acquire_lease(&self, owner: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        let owner = owner.to_owned();
        self.run(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO lease (id, owner, until) VALUES (1, ?1, ?3)
                     ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, until = excluded.until
                     WHERE lease.owner = ?1 OR lease.until < ?2",
                    params![owner, now, until],
                )
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        self.run(move |conn| {
            conn.execute("DELETE FROM lease WHERE id = 1 AND owner = ?1", params![owner]).map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn add_contact_counts(&self, d: ContactCounts) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute(
                "UPDATE counters SET synced = synced + ?1, skipped_no_email = skipped_no_email + ?2, failed = failed + ?3 WHERE id = 1",
                params![as_i64(d.synced), as_i64(d.skipped_no_email), as_i64(d.failed)],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn contact_counts(&self) -> Result<ContactCounts, StoreError> {
        self.run(|conn| counts_of(conn)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ports::SyncMode;

    const NOW: i64 = 1_700_000_000;

    fn msg(id: &str) -> QueueMessage {
        QueueMessage {
            body: format!(r#"{{"id":"{id}","object":"event"}}"#),
            event_id: id.to_owned(),
            event_type: "customer.updated".to_owned(),
            livemode: Some(false),
            source: Source::Webhook,
        }
    }

    fn store(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(dir.path().join("state.db")).unwrap()
    }

    #[tokio::test]
    async fn a_received_message_is_invisible_until_acked_or_its_timeout_passes() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.send_all(&[msg("evt_1"), msg("evt_2")]).await.unwrap();
        let t = now_unix() + 1;
        let got = s.receive(10, 30, t).await.unwrap();
        assert_eq!(got.iter().map(|r| r.message.event_id.as_str()).collect::<Vec<_>>(), ["evt_1", "evt_2"]);
        assert_eq!(got[0].receive_count, 1);
        assert_eq!(got[0].message, msg("evt_1"));
        assert!(s.receive(10, 30, t + 29).await.unwrap().is_empty(), "in flight: invisible");
        assert!(s.ack(got[0].id, &got[0].receipt).await.unwrap());
        let d = s.depth(t).await.unwrap();
        assert_eq!((d.depth, d.in_flight, d.dlq), (1, 1, 0));
        let again = s.receive(10, 30, t + 30).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].message.event_id.as_str(), again[0].receive_count), ("evt_2", 2));
        assert!(!s.ack(got[1].id, &got[1].receipt).await.unwrap(), "a stale receipt deletes nothing");
        assert!(s.ack(again[0].id, &again[0].receipt).await.unwrap());
        assert_eq!(s.depth(t).await.unwrap(), QueueDepth::default());
    }

    #[tokio::test]
    async fn a_delayed_message_is_invisible_until_its_delay_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let t = now_unix();
        s.send_delayed(&msg("evt_1"), 60).await.unwrap();
        assert!(s.receive(10, 30, t + 58).await.unwrap().is_empty());
        assert!(s.next_visible_in(t).await.unwrap().is_some_and(|d| (59..=61).contains(&d)));
        assert_eq!(s.receive(10, 30, t + 61).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_nacked_message_comes_back_after_its_delay() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.send(&msg("evt_1")).await.unwrap();
        let t = now_unix() + 1;
        let got = s.receive(1, 300, t).await.unwrap();
        assert!(s.nack(got[0].id, &got[0].receipt, 5, t).await.unwrap());
        assert!(s.receive(1, 300, t + 4).await.unwrap().is_empty());
        assert_eq!(s.next_visible_in(t).await.unwrap(), Some(5));
        assert_eq!(s.receive(1, 300, t + 5).await.unwrap()[0].receive_count, 2);
    }

    #[tokio::test]
    async fn a_message_received_too_often_is_dead_lettered_and_can_be_redriven() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).with_max_receives(2);
        s.send(&msg("evt_1")).await.unwrap();
        let mut t = now_unix() + 1;
        for _ in 0..2 {
            assert_eq!(s.receive(1, 10, t).await.unwrap().len(), 1);
            t += 10;
        }
        assert!(s.receive(1, 10, t).await.unwrap().is_empty(), "third delivery goes to the DLQ instead");
        let d = s.depth(t).await.unwrap();
        assert_eq!((d.depth, d.dlq), (0, 1));
        let dead = s.dead_messages().await.unwrap();
        assert_eq!(dead[0].event_id, "evt_1");
        assert!(dead[0].reason.contains("received 2 times"), "{}", dead[0].reason);
        assert_eq!(s.redrive(t).await.unwrap(), 1);
        assert_eq!(s.receive(1, 10, t).await.unwrap()[0].receive_count, 1);
    }

    #[tokio::test]
    async fn dead_letters_and_kill_count_in_the_dlq() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.dead_letter("not json", Some("evt_bad"), "not a Stripe event").await.unwrap();
        s.send(&msg("evt_1")).await.unwrap();
        let t = now_unix() + 1;
        let got = s.receive(1, 10, t).await.unwrap();
        assert_eq!(got[0].message.event_id, "evt_1", "dead letters are never delivered");
        assert!(s.kill(got[0].id, &got[0].receipt, "permanent").await.unwrap());
        let d = s.depth(t).await.unwrap();
        assert_eq!((d.depth, d.dlq), (0, 2));
    }

    #[tokio::test]
    async fn a_restart_resumes_queued_and_in_flight_messages_and_cursors() {
        let dir = tempfile::tempdir().unwrap();
        let t = now_unix() + 1;
        {
            let s = store(&dir);
            s.send_all(&[msg("evt_1"), msg("evt_2")]).await.unwrap();
            let _in_flight = s.receive(1, 30, t).await.unwrap(); // crash before ack
            let mut rec = CursorRecord::new("charges");
            rec.mode = SyncMode::Incremental;
            rec.events_created = Some(NOW);
            rec.events_last_id = Some("evt_9".into());
            rec.synced = 42;
            s.save(&rec).await.unwrap();
            s.add_contact_counts(ContactCounts { synced: 3, skipped_no_email: 1, failed: 0 }).await.unwrap();
            s.complete("evt_done", t + 1000).await.unwrap();
        }
        let s = store(&dir);
        assert_eq!(s.depth(t).await.unwrap().depth, 2);
        let first = s.receive(10, 30, t).await.unwrap();
        assert_eq!(first.iter().map(|r| r.message.event_id.as_str()).collect::<Vec<_>>(), ["evt_2"]);
        let later = s.receive(10, 30, t + 30).await.unwrap();
        assert_eq!((later[0].message.event_id.as_str(), later[0].receive_count), ("evt_1", 2));
        let rec = s.load("charges").await.unwrap().unwrap();
        assert_eq!((rec.synced, rec.cursor_text()), (42, Some(format!("{NOW}:evt_9"))));
        assert_eq!(s.list().await.unwrap().len(), 1);
        assert_eq!(s.contact_counts().await.unwrap(), ContactCounts { synced: 3, skipped_no_email: 1, failed: 0 });
        assert_eq!(s.claim("evt_done", t, t + 10, t + 100).await.unwrap(), Claim::AlreadyCompleted);
    }

    #[tokio::test]
    async fn idempotency_matches_the_dynamodb_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        assert_eq!(s.claim("k", NOW, NOW + 60, NOW + 1000).await.unwrap(), Claim::Acquired);
        assert_eq!(s.claim("k", NOW + 1, NOW + 61, NOW + 1000).await.unwrap(), Claim::InProgressElsewhere);
        // A stale in-progress claim is taken over.
        assert_eq!(s.claim("k", NOW + 61, NOW + 121, NOW + 1000).await.unwrap(), Claim::Acquired);
        s.release("k").await.unwrap();
        assert_eq!(s.claim("k", NOW + 62, NOW + 122, NOW + 1000).await.unwrap(), Claim::Acquired);
        s.complete("k", NOW + 1000).await.unwrap();
        s.release("k").await.unwrap(); // never deletes a completed record
        assert_eq!(s.claim("k", NOW + 63, NOW + 123, NOW + 1000).await.unwrap(), Claim::AlreadyCompleted);
        assert_eq!(
            s.claim("k", NOW + 1000, NOW + 1060, NOW + 2000).await.unwrap(),
            Claim::AlreadyCompleted,
            "expiry is inclusive"
        );
        // Expired by value (nothing deleted it): claimable again.
        assert_eq!(s.claim("k", NOW + 1001, NOW + 1060, NOW + 2000).await.unwrap(), Claim::Acquired);
    }

    #[tokio::test]
    async fn the_lease_has_one_holder_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        assert!(s.acquire_lease("a", NOW, NOW + 60).await.unwrap());
        assert!(!s.acquire_lease("b", NOW + 1, NOW + 61).await.unwrap());
        assert!(s.acquire_lease("a", NOW + 2, NOW + 62).await.unwrap(), "renewed by its holder");
        assert!(!s.acquire_lease("b", NOW + 62, NOW + 122).await.unwrap(), "expiry is inclusive");
        assert!(s.acquire_lease("b", NOW + 63, NOW + 123).await.unwrap(), "taken over once expired");
        s.release_lease("a").await.unwrap(); // not a's any more: no effect
        assert!(!s.acquire_lease("a", NOW + 64, NOW + 124).await.unwrap());
        s.release_lease("b").await.unwrap();
        assert!(s.acquire_lease("a", NOW + 65, NOW + 125).await.unwrap());
    }

    #[tokio::test]
    async fn cursors_are_saved_whole_and_counters_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        assert_eq!(s.load("customers").await.unwrap(), None);
        let mut rec = CursorRecord::new("customers");
        rec.starting_after = Some("cus_1".into());
        rec.last_success = Some(NOW);
        s.save(&rec).await.unwrap();
        rec.starting_after = Some("cus_2".into());
        s.save(&rec).await.unwrap();
        assert_eq!(s.load("customers").await.unwrap(), Some(rec.clone()));
        s.save(&CursorRecord::new("charges")).await.unwrap();
        assert_eq!(
            s.list().await.unwrap().iter().map(|r| r.resource.as_str()).collect::<Vec<_>>(),
            ["charges", "customers"]
        );
        assert_eq!(s.contact_counts().await.unwrap(), ContactCounts::default());
        s.add_contact_counts(ContactCounts { synced: 2, skipped_no_email: 1, failed: 1 }).await.unwrap();
        s.add_contact_counts(ContactCounts { synced: 1, skipped_no_email: 0, failed: 0 }).await.unwrap();
        assert_eq!(s.contact_counts().await.unwrap(), ContactCounts { synced: 3, skipped_no_email: 1, failed: 1 });
    }

    #[tokio::test]
    async fn two_handles_on_one_file_never_deliver_a_message_twice() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(&dir);
        let b = store(&dir);
        let batch: Vec<QueueMessage> = (0..50).map(|i| msg(&format!("evt_{i}"))).collect();
        a.send_all(&batch).await.unwrap();
        let t = now_unix() + 1;
        let (ra, rb) = tokio::join!(
            async {
                let mut v = Vec::new();
                for _ in 0..10 {
                    v.extend(a.receive(3, 60, t).await.unwrap());
                }
                v
            },
            async {
                let mut v = Vec::new();
                for _ in 0..10 {
                    v.extend(b.receive(3, 60, t).await.unwrap());
                }
                v
            }
        );
        let mut ids: Vec<i64> = ra.iter().chain(rb.iter()).map(|r| r.id).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!((ids.len(), n), (50, 50));
    }
}
