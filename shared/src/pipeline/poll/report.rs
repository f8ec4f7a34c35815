//! What a run did, per resource and in total: returned to the invoker, logged
//! at the end of the run, and summed for `stripe-brevo status`.

use crate::ports::SyncMode;

/// One resource's part of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResourceReport {
    pub resource: String,
    /// The mode at the end of the run.
    pub mode: SyncMode,
    pub pages: u64,
    pub requests: u64,
    pub retries: u64,
    pub objects: u64,
    pub messages: u64,
    /// True when a backfill reached the end of its list in this run.
    pub backfill_finished: bool,
    /// True when an incremental cursor was too old and a re-list started.
    pub fell_back: bool,
    pub error: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollReport {
    /// False when another poller held the lease (nothing was done).
    pub ran: bool,
    /// True when the deadline or page budget stopped the run before the end.
    pub stopped_early: bool,
    pub resources: Vec<ResourceReport>,
}

impl PollReport {
    pub fn requests(&self) -> u64 {
        self.resources.iter().map(|r| r.requests).sum()
    }
    pub fn retries(&self) -> u64 {
        self.resources.iter().map(|r| r.retries).sum()
    }
    pub fn objects(&self) -> u64 {
        self.resources.iter().map(|r| r.objects).sum()
    }
    pub fn messages(&self) -> u64 {
        self.resources.iter().map(|r| r.messages).sum()
    }
    /// Resources whose part failed (their records hold `last_error`).
    pub fn failed(&self) -> Vec<&ResourceReport> {
        self.resources.iter().filter(|r| r.error.is_some()).collect()
    }
    /// True when every resource is incremental (no backfill left).
    pub fn caught_up(&self) -> bool {
        self.resources.iter().all(|r| r.mode == SyncMode::Incremental)
    }
}

impl PollReport {
    /// One line per resource, then the run's totals.
    pub(super) fn log(&self) {
        for r in &self.resources {
            tracing::info!(
                resource = %r.resource, mode = ?r.mode, pages = r.pages, requests = r.requests, retries = r.retries,
                objects = r.objects, messages = r.messages, backfill_finished = r.backfill_finished,
                error = r.error.as_deref().unwrap_or(""), "poller resource done"
            );
        }
        tracing::info!(
            requests = self.requests(),
            retries = self.retries(),
            objects = self.objects(),
            messages = self.messages(),
            stopped_early = self.stopped_early,
            caught_up = self.caught_up(),
            "poller run done"
        );
    }
}
