//! In-memory fakes of the ports, for unit tests of the core only. The tests of
//! the real pipeline use moto (SQS, DynamoDB), SQLite and the sandbox servers.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{Clock, EventQueue, QueueError, QueueMessage};

/// A queue that keeps what it was sent; can be switched "down".
#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<QueueMessage>>,
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

    pub fn messages(&self) -> Vec<QueueMessage> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl EventQueue for MemoryQueue {
    async fn send(&self, message: &QueueMessage) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("memory queue is down".into()));
        }
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).push(message.clone());
        Ok(())
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
