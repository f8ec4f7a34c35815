//! In-memory [`StripeApi`] and [`BrevoApi`] fakes, so the consumer's
//! behaviours (duplicates, order independence, partial failures, dead
//! letters, event age, the livemode guard) are unit-tested without moto or an
//! HTTP server. They keep what a test needs to look at — the current Stripe
//! state the test sets, what Brevo was sent — and fail on demand with a typed
//! [`RemoteError`]. They are not stand-ins for the vendors' rules: the
//! sandboxes (`sandbox/`) are.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::FixedClock;
use crate::domain::brevo::{
    AttributeType, AttributeValue, BrevoEvent, BrevoOrder, ContactUpdate, ImportStarted, ProcessStatus,
};
use crate::ports::{BrevoApi, Clock, CustomerState, RemoteError, StripeApi, SystemClock};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct StripeData {
    customers: HashMap<String, CustomerState>,
    charge_owner: HashMap<String, String>,
    /// Price or product id → the customers subscribed to it.
    subscribers: HashMap<String, Vec<String>>,
    /// Customer id → the error its reload fails with.
    failing: HashMap<String, RemoteError>,
}

/// Stripe as the test sets it: the *current* state of each customer.
#[derive(Debug, Default)]
pub struct MemoryStripe {
    live: bool,
    /// How long each `customer_state` takes (tokio time: tests may pause it).
    latency: Mutex<std::time::Duration>,
    data: Mutex<StripeData>,
    reloads: AtomicUsize,
}

impl MemoryStripe {
    /// A fake for a test-mode key (`sk_test_…`), or a live one.
    pub fn new(live: bool) -> Self {
        Self { live, ..Self::default() }
    }

    /// Sets (replaces) a customer's current state, keyed by its customer id.
    pub fn put(&self, state: CustomerState) {
        let Some(id) = state.customer.as_ref().map(|c| c.id.clone()) else { return };
        lock(&self.data).customers.insert(id, state);
    }

    /// The customer is gone (as a 404 would say).
    pub fn remove(&self, customer_id: &str) {
        lock(&self.data).customers.remove(customer_id);
    }

    pub fn set_charge_owner(&self, charge_id: &str, customer_id: &str) {
        lock(&self.data).charge_owner.insert(charge_id.to_owned(), customer_id.to_owned());
    }

    /// Customers subscribed to a price or product id.
    pub fn set_subscribers(&self, price_or_product: &str, customers: &[&str]) {
        lock(&self.data)
            .subscribers
            .insert(price_or_product.to_owned(), customers.iter().map(|c| (*c).to_owned()).collect());
    }

    /// Makes every reload of the customer fail (`None` heals it).
    pub fn fail_customer(&self, customer_id: &str, error: Option<RemoteError>) {
        let mut d = lock(&self.data);
        match error {
            Some(e) => d.failing.insert(customer_id.to_owned(), e),
            None => d.failing.remove(customer_id),
        };
    }

    /// Makes every later `customer_state` take `d` (as a real API would).
    pub fn set_latency(&self, d: std::time::Duration) {
        *lock(&self.latency) = d;
    }

    /// `customer_state` calls so far.
    pub fn reloads(&self) -> usize {
        self.reloads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl StripeApi for MemoryStripe {
    fn is_live(&self) -> bool {
        self.live
    }

    async fn customer_state(&self, customer_id: &str) -> Result<CustomerState, RemoteError> {
        self.reloads.fetch_add(1, Ordering::SeqCst);
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let d = lock(&self.data);
        if let Some(e) = d.failing.get(customer_id) {
            return Err(e.clone());
        }
        Ok(d.customers.get(customer_id).cloned().unwrap_or_default())
    }

    async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, RemoteError> {
        Ok(lock(&self.data).charge_owner.get(charge_id).cloned())
    }

    async fn customers_of(&self, price_id: Option<&str>, product_id: Option<&str>) -> Result<Vec<String>, RemoteError> {
        let d = lock(&self.data);
        let of = |id: Option<&str>| id.and_then(|i| d.subscribers.get(i)).cloned().unwrap_or_default();
        let mut out = of(price_id);
        out.extend(of(product_id));
        Ok(out)
    }
}

/// A [`BrevoApi`] operation, to make it fail on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BrevoOp {
    EnsureAttributes,
    Upsert,
    Import,
    /// `import_status` (answers an error).
    ImportStatus,
    /// `modified_since`.
    Listing,
    RemoveFromList,
    /// The whole `send_events` call.
    Events,
    Order,
}

/// What the fake Brevo holds and was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrevoRecord {
    /// E-mail → attributes as last written.
    pub contacts: BTreeMap<String, BTreeMap<String, AttributeValue>>,
    /// List id → member e-mails.
    pub lists: BTreeMap<i64, BTreeSet<String>>,
    /// Every event accepted, in order.
    pub events: Vec<BrevoEvent>,
    /// Every order accepted, in order.
    pub orders: Vec<BrevoOrder>,
    pub upserts: usize,
    pub imports: usize,
    /// `import_status` calls (Brevo's `Other` family: 100 per hour).
    pub status_checks: usize,
    /// `modified_since` calls.
    pub listings: usize,
    /// E-mail → when it was last written (the fake's clock, unix seconds).
    pub modified: BTreeMap<String, i64>,
}

/// One import the fake accepted: its rows wait until it completes.
#[derive(Debug, Clone)]
struct FakeImport {
    rows: Vec<ContactUpdate>,
    list_ids: Vec<i64>,
    checks: u32,
    completed: bool,
}

#[derive(Debug, Default)]
struct BrevoState {
    record: BrevoRecord,
    /// The next calls of an operation that fail, in order.
    faults: HashMap<BrevoOp, VecDeque<RemoteError>>,
    /// Events of these names are refused one by one (a 207), until healed.
    refused_events: HashMap<String, RemoteError>,
    /// Imports by process id (from 1).
    processes: BTreeMap<i64, FakeImport>,
    /// An import completes (its rows applied) at this status check (0: at once).
    checks_to_complete: u32,
    /// Rows of these e-mails are skipped by imports (as Brevo skips a row
    /// whose SMS belongs to another contact).
    skipped_rows: BTreeSet<String>,
    /// The next status checks that find no budget (`Ok(None)`).
    no_budget: usize,
}

/// Brevo as a record of what it was sent; fails on demand. Imports are
/// asynchronous as Brevo's: their rows are applied when the process
/// completes (by default at its first status check), a row of
/// [`skip_import_rows`](Self::skip_import_rows) never.
#[derive(Debug)]
pub struct MemoryBrevo {
    state: Mutex<BrevoState>,
    /// The clock contacts are stamped with (`None`: the system's).
    clock: Option<Arc<FixedClock>>,
}

impl Default for MemoryBrevo {
    fn default() -> Self {
        Self { state: Mutex::new(BrevoState { checks_to_complete: 1, ..BrevoState::default() }), clock: None }
    }
}

impl MemoryBrevo {
    pub fn new() -> Self {
        Self::default()
    }

    /// Contacts are stamped `modified` by this clock (the consumer's, in tests).
    pub fn with_clock(clock: Arc<FixedClock>) -> Self {
        Self { clock: Some(clock), ..Self::default() }
    }

    /// Imports complete at their `n`-th status check (0: at once).
    pub fn complete_imports_at_check(&self, n: u32) {
        lock(&self.state).checks_to_complete = n;
    }

    /// Imports skip the rows of these e-mails.
    pub fn skip_import_rows(&self, emails: &[&str]) {
        lock(&self.state).skipped_rows.extend(emails.iter().map(|e| (*e).to_owned()));
    }

    /// The next `n` status checks find no budget now (`Ok(None)`).
    pub fn no_status_budget(&self, n: usize) {
        lock(&self.state).no_budget = n;
    }

    /// The next `times` calls of `op` fail with `error`.
    pub fn fail_next(&self, op: BrevoOp, times: usize, error: RemoteError) {
        let mut st = lock(&self.state);
        let q = st.faults.entry(op).or_default();
        q.extend(std::iter::repeat_n(error, times));
    }

    /// Events named `event_name` are refused individually (`None` heals).
    pub fn refuse_events(&self, event_name: &str, error: Option<RemoteError>) {
        let mut st = lock(&self.state);
        match error {
            Some(e) => st.refused_events.insert(event_name.to_owned(), e),
            None => st.refused_events.remove(event_name),
        };
    }

    pub fn record(&self) -> BrevoRecord {
        lock(&self.state).record.clone()
    }

    fn fault(&self, op: BrevoOp) -> Result<(), RemoteError> {
        match lock(&self.state).faults.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn now(&self) -> i64 {
        self.clock.as_ref().map_or_else(|| SystemClock.now_unix(), |c| c.now_unix())
    }

    /// What an upsert or import does: attributes and list additions only
    /// (removals are list calls, as in Brevo).
    fn apply(record: &mut BrevoRecord, c: &ContactUpdate, extra_lists: &[i64], now: i64) {
        record.contacts.entry(c.email.clone()).or_default().extend(c.attributes.clone());
        for l in c.list_ids.iter().chain(extra_lists) {
            record.lists.entry(*l).or_default().insert(c.email.clone());
        }
        record.modified.insert(c.email.clone(), now);
    }

    /// Applies an import's rows, except the skipped ones.
    fn complete(st: &mut BrevoState, process_id: i64, now: i64) {
        let Some(p) = st.processes.get_mut(&process_id).filter(|p| !p.completed) else { return };
        p.completed = true;
        let (rows, lists) = (p.rows.clone(), p.list_ids.clone());
        for c in rows.iter().filter(|c| !st.skipped_rows.contains(&c.email)) {
            Self::apply(&mut st.record, c, &lists, now);
        }
    }
}

#[async_trait]
impl BrevoApi for MemoryBrevo {
    async fn ensure_attributes(&self, _types: &BTreeMap<String, AttributeType>) -> Result<(), RemoteError> {
        self.fault(BrevoOp::EnsureAttributes)
    }

    async fn upsert_contact(&self, contact: &ContactUpdate) -> Result<(), RemoteError> {
        self.fault(BrevoOp::Upsert)?;
        let mut st = lock(&self.state);
        st.record.upserts += 1;
        Self::apply(&mut st.record, contact, &[], self.now());
        Ok(())
    }

    async fn import_contacts(
        &self,
        contacts: &[ContactUpdate],
        list_ids: &[i64],
    ) -> Result<Vec<ImportStarted>, RemoteError> {
        self.fault(BrevoOp::Import)?;
        let now = self.now();
        let mut st = lock(&self.state);
        st.record.imports += 1;
        let id = i64::try_from(st.processes.len()).unwrap_or(0) + 1;
        let import = FakeImport { rows: contacts.to_vec(), list_ids: list_ids.to_vec(), checks: 0, completed: false };
        st.processes.insert(id, import);
        if st.checks_to_complete == 0 {
            Self::complete(&mut st, id, now);
        }
        Ok(vec![ImportStarted { process_id: Some(id), contacts: contacts.len() }])
    }

    async fn import_status(&self, process_id: i64) -> Result<Option<ProcessStatus>, RemoteError> {
        self.fault(BrevoOp::ImportStatus)?;
        let now = self.now();
        let mut st = lock(&self.state);
        if st.no_budget > 0 {
            st.no_budget -= 1;
            return Ok(None);
        }
        st.record.status_checks += 1;
        let due = st.checks_to_complete;
        let Some(p) = st.processes.get_mut(&process_id) else {
            return Err(RemoteError::new(
                crate::ports::Vendor::Brevo,
                crate::ports::RemoteErrorKind::NotFound,
                "processId is invalid",
            ));
        };
        p.checks += 1;
        let (checks, completed) = (p.checks, p.completed);
        if !completed && checks < due {
            return Ok(Some(if checks == 1 { ProcessStatus::Queued } else { ProcessStatus::InProcess }));
        }
        Self::complete(&mut st, process_id, now);
        Ok(Some(ProcessStatus::Completed))
    }

    async fn modified_since(&self, list_id: i64, since: i64) -> Result<BTreeSet<String>, RemoteError> {
        self.fault(BrevoOp::Listing)?;
        let mut st = lock(&self.state);
        st.record.listings += 1;
        let rec = &st.record;
        let members = rec.lists.get(&list_id).cloned().unwrap_or_default();
        Ok(members.into_iter().filter(|e| rec.modified.get(e).is_some_and(|t| *t > since)).collect())
    }

    async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<(), RemoteError> {
        self.fault(BrevoOp::RemoveFromList)?;
        let mut st = lock(&self.state);
        if let Some(members) = st.record.lists.get_mut(&list_id) {
            for e in emails {
                members.remove(e);
            }
        }
        Ok(())
    }

    async fn send_events(&self, events: &[BrevoEvent]) -> Result<Vec<Option<RemoteError>>, RemoteError> {
        self.fault(BrevoOp::Events)?;
        let mut st = lock(&self.state);
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            match st.refused_events.get(&e.event_name).cloned() {
                Some(err) => out.push(Some(err)),
                None => {
                    st.record.events.push(e.clone());
                    out.push(None);
                }
            }
        }
        Ok(out)
    }

    async fn upsert_order(&self, order: &BrevoOrder) -> Result<(), RemoteError> {
        self.fault(BrevoOp::Order)?;
        lock(&self.state).record.orders.push(order.clone());
        Ok(())
    }
}
