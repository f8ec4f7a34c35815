//! The Brevo sandbox's shared state: the account (contacts, lists,
//! attributes), what it was sent (events, orders, imports and their pending
//! rows), the request log and counters, and the fault plans, behind one
//! mutex ([`Shared`]), which applies the imports that are due on every lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use rand::rngs::StdRng;
use serde_json::Value;

use crate::latency::Jittered;

use super::capture::Capture;
use super::contacts::SandboxContact;
use super::events::RecordedEvent;
use super::faults::{Family, FaultPlan, Window};
use super::import::{ImportPace, ImportRecord, PendingImport};
use super::{FamilyCounts, LoggedRequest};

#[derive(Debug)]
pub(super) struct State {
    pub(super) api_key: String,
    /// By lower-cased e-mail.
    pub(super) contacts: BTreeMap<String, SandboxContact>,
    pub(super) next_contact_id: i64,
    pub(super) lists: BTreeMap<i64, String>,
    /// Upper-cased name → lower-cased type.
    pub(super) attributes: BTreeMap<String, String>,
    pub(super) events: Vec<RecordedEvent>,
    pub(super) orders: BTreeMap<String, Value>,
    pub(super) imports: Vec<ImportRecord>,
    /// Rows of the imports not applied yet, by process id.
    pub(super) pending_imports: BTreeMap<i64, PendingImport>,
    pub(super) import_pace: ImportPace,
    pub(super) next_process_id: i64,
    pub(super) log: Vec<LoggedRequest>,
    pub(super) counts: FamilyCounts,
    /// 429s answered, per family (limits and injected faults alike).
    pub(super) rate_limited: FamilyCounts,
    pub(super) faults: HashMap<Family, FaultPlan>,
    pub(super) outage: bool,
    pub(super) rng: StdRng,
    /// `x-sib-ratelimit-reset` of injected 429s.
    pub(super) reset_secs: u64,
    /// `x-sib-ratelimit-limit` of injected 429s.
    pub(super) limit: u64,
    /// The response latency (not a fault: `reset_faults` keeps it).
    pub(super) latency: Jittered,
    /// Brevo's rate limits per family, when enforced (not faults either).
    pub(super) limits: HashMap<Family, Window>,
}

impl State {
    pub(super) fn counts_mut(&mut self, f: Family) -> &mut u64 {
        match f {
            Family::Contacts => &mut self.counts.contacts,
            Family::Events => &mut self.counts.events,
            Family::Orders => &mut self.counts.orders,
            Family::Other => &mut self.counts.other,
        }
    }
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Where the client's requests are recorded, when asked (see `capture`).
    pub(super) capture: Option<Capture>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic in a
        // test holding the lock does not make it unusable.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Imports whose time has come are applied before anyone looks.
        st.advance_imports();
        st
    }
}
