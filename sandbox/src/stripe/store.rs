//! The Stripe sandbox's shared state: one [`Collection`] of objects per
//! resource (with its `(created, id)` index), the keys, the clock, the fault
//! settings, the account's rate limit and the request log, behind one mutex ([`Shared`], [`lock`]).
//! Also the JSON helpers every part uses ([`merge`], `created` and
//! `deleted` of an object).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use crate::latency::Latency;

use super::faults::Faults;
use super::limit::AccountLimiter;
use super::resources::{singular, RESOURCES};
use super::{LoggedRequest, StripeSandboxOptions};

/// One resource's objects, plus an index sorted by (created, id) ascending.
#[derive(Debug, Default)]
pub(super) struct Collection {
    pub(super) objects: HashMap<String, Value>,
    pub(super) order: Vec<(i64, String)>,
}

pub(super) fn created_of(v: &Value) -> i64 {
    v.get("created").and_then(Value::as_i64).unwrap_or(0)
}

impl Collection {
    pub(super) fn key_of(&self, id: &str) -> Option<(i64, String)> {
        self.objects.get(id).map(|v| (created_of(v), id.to_owned()))
    }

    pub(super) fn upsert(&mut self, id: String, v: Value) {
        if let Some(old) = self.key_of(&id) {
            if let Ok(pos) = self.order.binary_search(&old) {
                self.order.remove(pos);
            }
        }
        let key = (created_of(&v), id.clone());
        let pos = self.order.binary_search(&key).unwrap_or_else(|p| p);
        self.order.insert(pos, key);
        self.objects.insert(id, v);
    }
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) collections: HashMap<String, Collection>,
    /// Key → `None` (full access) or the resources it may read.
    pub(super) keys: HashMap<String, Option<HashSet<String>>>,
    /// Keys of a test's own reads: outside the account's rate limit and figures.
    pub(super) observers: HashSet<String>,
    /// The account's rate limit and its counters.
    pub(super) limiter: AccountLimiter,
    pub(super) account_id: String,
    pub(super) fixed_now: Option<i64>,
    pub(super) event_seq: u64,
    pub(super) faults: Faults,
    pub(super) log: Vec<LoggedRequest>,
    pub(super) total: u64,
    pub(super) per_path: BTreeMap<String, u64>,
    pub(super) per_status: BTreeMap<u16, u64>,
}

impl State {
    /// An empty store with one collection per served resource.
    pub(super) fn new(keys: HashMap<String, Option<HashSet<String>>>, opts: &StripeSandboxOptions) -> Self {
        Self {
            collections: RESOURCES.iter().map(|(p, _)| ((*p).to_owned(), Collection::default())).collect(),
            keys,
            observers: opts.observer_keys.iter().cloned().collect(),
            limiter: AccountLimiter::new(opts.rate_limit),
            account_id: opts.account_id.clone(),
            fixed_now: opts.now,
            event_seq: 0,
            faults: Faults::new(opts.seed, Latency::new(opts.latency, opts.jitter)),
            log: Vec::new(),
            total: 0,
            per_path: BTreeMap::new(),
            per_status: BTreeMap::new(),
        }
    }

    pub(super) fn now(&self) -> i64 {
        self.fixed_now.unwrap_or_else(system_now)
    }

    pub(super) fn find_any(&self, id: &str) -> Option<&Value> {
        self.collections.values().find_map(|c| c.objects.get(id))
    }

    pub(super) fn insert(&mut self, resource: &str, mut obj: Value) -> String {
        let id = match obj.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                self.event_seq += 1;
                let id = format!("{}_sbx{:010}", singular(resource), self.event_seq);
                if let Some(m) = obj.as_object_mut() {
                    m.insert("id".to_owned(), Value::String(id.clone()));
                }
                id
            }
        };
        if obj.get("created").is_none() && !is_deleted(&obj) {
            let now = self.now();
            if let Some(m) = obj.as_object_mut() {
                m.insert("created".to_owned(), json!(now));
            }
        }
        self.collections.entry(resource.to_owned()).or_default().upsert(id.clone(), obj);
        id
    }
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(super) fn is_deleted(v: &Value) -> bool {
    v.get("deleted").and_then(Value::as_bool).unwrap_or(false)
}

pub(super) type Shared = Arc<Mutex<State>>;

pub(super) fn lock(s: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock only happens in a test that already failed.
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// JSON merge: objects merge key by key, anything else replaces.
pub fn merge(base: Value, patch: Value) -> Value {
    match (base, patch) {
        (Value::Object(mut b), Value::Object(p)) => {
            for (k, v) in p {
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Object(b)
        }
        (_, p) => p,
    }
}
