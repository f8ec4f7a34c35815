//! In-memory fakes of the ports, for unit tests of the core only (and the
//! CLI's dry run). The tests of the real pipeline use moto (SQS, DynamoDB),
//! SQLite and the sandbox servers. The vendor fakes ([`MemoryStripe`],
//! [`MemoryBrevo`]) are in `vendors.rs`.

mod vendors;

pub use vendors::{BrevoOp, BrevoRecord, MemoryBrevo, MemoryStripe};

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{Clock, EventQueue, QueueError, QueueMessage};

/// A queue that keeps what it was sent (and each message's delay); can be
/// switched "down".
#[derive(Debug, Default)]
pub struct MemoryQueue {
    /// Each message with its `DelaySeconds` (0 = at once).
    messages: Mutex<Vec<(QueueMessage, u32)>>,
    down: AtomicBool,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later send fail as an outage would.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(QueueMessage, u32)>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn messages(&self) -> Vec<QueueMessage> {
        self.lock().iter().map(|(m, _)| m.clone()).collect()
    }

    /// Each message's delay in seconds, in the order of [`messages`](Self::messages).
    pub fn delays(&self) -> Vec<u32> {
        self.lock().iter().map(|(_, d)| *d).collect()
    }

    /// Takes every message off the queue (as a receive of all would).
    pub fn take(&self) -> Vec<QueueMessage> {
        std::mem::take(&mut *self.lock()).into_iter().map(|(m, _)| m).collect()
    }

    fn push(&self, message: &QueueMessage, delay_secs: u32) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("memory queue is down".into()));
        }
        self.lock().push((message.clone(), delay_secs));
        Ok(())
    }
}

#[async_trait]
impl EventQueue for MemoryQueue {
    async fn send(&self, message: &QueueMessage) -> Result<(), QueueError> {
        self.push(message, 0)
    }

    async fn send_delayed(&self, message: &QueueMessage, delay_secs: u32) -> Result<(), QueueError> {
        self.push(message, delay_secs)
    }
}

/// A clock that says what the test sets.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn at(unix: i64) -> Self {
        Self(AtomicI64::new(unix))
    }
    pub fn set(&self, unix: i64) {
        self.0.store(unix, Ordering::SeqCst);
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Idempotency records in a map, with the same semantics as the DynamoDB adapter.
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    records: Mutex<std::collections::HashMap<String, (bool, i64, i64)>>, // (completed, in_progress_until, expires_at)
}

impl MemoryIdempotency {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl crate::ports::IdempotencyStore for MemoryIdempotency {
    async fn claim(
        &self,
        key: &str,
        now: i64,
        in_progress_until: i64,
        expires_at: i64,
    ) -> Result<crate::ports::Claim, crate::ports::StoreError> {
        use crate::ports::Claim;
        let mut map = self.records.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some(&(completed, until, exp)) if exp >= now && (completed || until >= now) => {
                Ok(if completed { Claim::AlreadyCompleted } else { Claim::InProgressElsewhere })
            }
            _ => {
                map.insert(key.to_owned(), (false, in_progress_until, expires_at));
                Ok(Claim::Acquired)
            }
        }
    }

    async fn complete(&self, key: &str, expires_at: i64) -> Result<(), crate::ports::StoreError> {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), (true, 0, expires_at));
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), crate::ports::StoreError> {
        let mut map = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(map.get(key), Some((false, _, _))) {
            map.remove(key);
        }
        Ok(())
    }
}

/// One ledger entry and its two transitions: the semantics of
/// [`ContactLedger`](crate::ports::ContactLedger), shared by [`MemoryLedger`]
/// and the SQLite store (the DynamoDB adapter does the same in expressions).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LedgerRecord {
    pub(crate) fingerprint: Option<String>,
    pub(crate) sent_at: i64,
    pub(crate) pending: std::collections::BTreeSet<String>,
    /// Begins since the pending set was last empty: a push alone in the set
    /// at its finish may still have overlapped one that finished before it
    /// (then this is 2).
    pub(crate) begun: u32,
}

impl LedgerRecord {
    pub(crate) fn begin(&mut self, token: &str) {
        self.pending.insert(token.to_owned());
        self.begun = self.begun.saturating_add(1);
    }

    pub(crate) fn finish(&mut self, token: &str, sent: Option<&str>, now: i64) {
        // Alone from its begin to now: the set was empty when it began and
        // nobody began since.
        let alone = self.begun == 1 && self.pending.len() == 1 && self.pending.contains(token);
        match sent {
            Some(fp) if alone => {
                *self = Self { fingerprint: Some(fp.to_owned()), sent_at: now, ..Self::default() };
            }
            _ => {
                self.fingerprint = None;
                self.pending.remove(token);
                if self.pending.is_empty() {
                    self.begun = 0;
                }
            }
        }
    }

    pub(crate) fn entry(&self) -> crate::ports::LedgerEntry {
        crate::ports::LedgerEntry {
            fingerprint: self.fingerprint.clone(),
            sent_at: self.sent_at,
            pending: !self.pending.is_empty(),
        }
    }
}

/// The contact ledger in a map, with the semantics of the DynamoDB adapter.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<std::collections::HashMap<String, LedgerRecord>>,
    /// Fails every call while set (an outage of the store).
    down: AtomicBool,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail as an outage would.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn up(&self) -> Result<(), crate::ports::StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(crate::ports::StoreError::Unavailable("memory ledger is down".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl crate::ports::ContactLedger for MemoryLedger {
    async fn entries(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, crate::ports::LedgerEntry>, crate::ports::StoreError> {
        self.up()?;
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keys.iter().filter_map(|k| map.get(k).map(|r| (k.clone(), r.entry()))).collect())
    }

    async fn begin(&self, key: &str, token: &str, _expires_at: i64) -> Result<(), crate::ports::StoreError> {
        self.up()?;
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_owned()).or_default().begin(token);
        Ok(())
    }

    async fn finish(
        &self,
        key: &str,
        token: &str,
        sent: Option<&str>,
        now: i64,
        _expires_at: i64,
    ) -> Result<(), crate::ports::StoreError> {
        self.up()?;
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_owned()).or_default().finish(token, sent, now);
        Ok(())
    }
}

/// Cursor records, lease and counters in memory (core unit tests only).
#[derive(Debug, Default)]
pub struct MemoryCursors {
    records: Mutex<std::collections::BTreeMap<String, crate::ports::CursorRecord>>,
    lease: Mutex<Option<(String, i64)>>,
    counts: Mutex<crate::ports::ContactCounts>,
}

impl MemoryCursors {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl crate::ports::CursorStore for MemoryCursors {
    async fn load(&self, resource: &str) -> Result<Option<crate::ports::CursorRecord>, crate::ports::StoreError> {
        Ok(self.records.lock().unwrap_or_else(|p| p.into_inner()).get(resource).cloned())
    }
    async fn save(&self, record: &crate::ports::CursorRecord) -> Result<(), crate::ports::StoreError> {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).insert(record.resource.clone(), record.clone());
        Ok(())
    }
    async fn list(&self) -> Result<Vec<crate::ports::CursorRecord>, crate::ports::StoreError> {
        Ok(self.records.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect())
    }
    async fn acquire_lease(&self, owner: &str, now: i64, until: i64) -> Result<bool, crate::ports::StoreError> {
        let mut lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        match &*lease {
            Some((holder, expires)) if holder != owner && *expires >= now => Ok(false),
            _ => {
                *lease = Some((owner.to_owned(), until));
                Ok(true)
            }
        }
    }
    async fn release_lease(&self, owner: &str) -> Result<(), crate::ports::StoreError> {
        let mut lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if lease.as_ref().is_some_and(|(h, _)| h == owner) {
            *lease = None;
        }
        Ok(())
    }
    async fn add_contact_counts(&self, d: crate::ports::ContactCounts) -> Result<(), crate::ports::StoreError> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.synced += d.synced;
        c.skipped_no_email += d.skipped_no_email;
        c.failed += d.failed;
        Ok(())
    }
    async fn contact_counts(&self) -> Result<crate::ports::ContactCounts, crate::ports::StoreError> {
        Ok(*self.counts.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A dead-letter queue that keeps what it was given; can be switched "down".
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    /// (body, event id, reason) of each message dead-lettered.
    letters: Mutex<Vec<(String, Option<String>, String)>>,
    down: AtomicBool,
}

impl MemoryDeadLetters {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn letters(&self) -> Vec<(String, Option<String>, String)> {
        self.letters.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl crate::ports::DeadLetters for MemoryDeadLetters {
    async fn dead_letter(&self, body: &str, event_id: Option<&str>, reason: &str) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("memory dead-letter queue is down".into()));
        }
        let letter = (body.to_owned(), event_id.map(str::to_owned), reason.to_owned());
        self.letters.lock().unwrap_or_else(|p| p.into_inner()).push(letter);
        Ok(())
    }
}
