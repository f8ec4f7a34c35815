//! In-memory [`StripeApi`] and [`BrevoApi`] fakes, so the consumer's
//! behaviours (duplicates, order independence, partial failures, dead
//! letters, event age, the livemode guard) are unit-tested without moto or an
//! HTTP server. They keep what a test needs to look at — the current Stripe
//! state the test sets, what Brevo was sent — and fail on demand with a typed
//! [`RemoteError`]. They are not stand-ins for the vendors' rules: the
//! sandboxes (`sandbox/`) are.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::brevo::{AttributeType, AttributeValue, BrevoEvent, BrevoOrder, ContactUpdate};
use crate::ports::{BrevoApi, CustomerState, RemoteError, StripeApi};

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
}

#[derive(Debug, Default)]
struct BrevoState {
    record: BrevoRecord,
    /// The next calls of an operation that fail, in order.
    faults: HashMap<BrevoOp, VecDeque<RemoteError>>,
    /// Events of these names are refused one by one (a 207), until healed.
    refused_events: HashMap<String, RemoteError>,
}

/// Brevo as a record of what it was sent; fails on demand.
#[derive(Debug, Default)]
pub struct MemoryBrevo {
    state: Mutex<BrevoState>,
}

impl MemoryBrevo {
    pub fn new() -> Self {
        Self::default()
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

    /// What an upsert or import does: attributes and list additions only
    /// (removals are list calls, as in Brevo).
    fn apply(record: &mut BrevoRecord, c: &ContactUpdate, extra_lists: &[i64]) {
        record.contacts.entry(c.email.clone()).or_default().extend(c.attributes.clone());
        for l in c.list_ids.iter().chain(extra_lists) {
            record.lists.entry(*l).or_default().insert(c.email.clone());
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
        Self::apply(&mut st.record, contact, &[]);
        Ok(())
    }

    async fn import_contacts(&self, contacts: &[ContactUpdate], list_ids: &[i64]) -> Result<(), RemoteError> {
        self.fault(BrevoOp::Import)?;
        let mut st = lock(&self.state);
        st.record.imports += 1;
        for c in contacts {
            Self::apply(&mut st.record, c, list_ids);
        }
        Ok(())
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
