//! Step 3: who the batch is about, and their current state. Charges are
//! resolved to their customer (disputes, refunds without `customer`),
//! catalogue events to the subscribers of the price or product; then every
//! touched customer is reloaded from Stripe once, whatever the order or
//! number of its events in the batch.

use std::collections::{BTreeSet, HashMap};

use futures::stream::{self, StreamExt};
use tokio::time::Instant;

use super::item::Batch;
use super::{Consumer, Outcome, Retry};
use crate::ports::{CustomerState, RemoteError, StripeApi};

/// Each reloaded customer's state, or why it could not be read.
pub(super) type States = HashMap<String, Result<CustomerState, RemoteError>>;

impl<S: StripeApi, B, I, C> Consumer<S, B, I, C> {
    /// Adds the customers behind charges and catalogue objects to each work.
    pub(super) async fn find_customers(&self, batch: &mut Batch<'_>) {
        let charges: BTreeSet<String> = batch.active().filter_map(|(_, w)| w.charge.clone()).collect();
        let mut owner: HashMap<String, Result<Option<String>, RemoteError>> = HashMap::new();
        for ch in charges {
            let r = self.stripe.charge_customer(&ch).await;
            owner.insert(ch, r);
        }
        for item in &mut batch.items {
            if item.outcome.is_some() {
                continue;
            }
            let Some(w) = item.work.as_mut() else { continue };
            let mut failure = None;
            if let Some((price, product)) = w.catalog.take() {
                match self.stripe.customers_of(price.as_deref(), product.as_deref()).await {
                    Ok(cs) => w.customers.extend(cs),
                    Err(e) => failure = Some(e),
                }
            }
            if let Some(ch) = w.charge.take() {
                match owner.get(&ch) {
                    Some(Ok(Some(c))) => w.customers.push(c.clone()),
                    Some(Ok(None)) | None => {}
                    Some(Err(e)) => failure = Some(e.clone()),
                }
            }
            if let Some(e) = failure {
                item.finish(Outcome::Retry(Retry::new(Retry::remote(&e).cause, format!("stripe: {e}"))));
            }
        }
    }

    /// Reloads every customer of the batch's active messages once, in
    /// message order; with a deadline, starts no reload after
    /// `batch.reload_until` (those customers are left unreached).
    pub(super) async fn reload(&self, batch: &mut Batch<'_>) -> States {
        let mut seen = BTreeSet::new();
        let customers: Vec<String> =
            batch.active().flat_map(|(_, w)| w.customers.iter().cloned()).filter(|c| seen.insert(c.clone())).collect();
        let until = batch.reload_until;
        let results: Vec<(String, Option<Result<CustomerState, RemoteError>>)> = stream::iter(customers)
            .map(|c| async move {
                if until.is_some_and(|u| Instant::now() >= u) {
                    return (c, None);
                }
                let r = self.stripe.customer_state(&c).await;
                (c, Some(r))
            })
            .buffer_unordered(self.options.reload_concurrency.max(1))
            .collect()
            .await;
        let mut states = States::new();
        for (c, r) in results {
            match r {
                Some(r) => {
                    states.insert(c, r);
                }
                None => {
                    batch.customers.unreached.insert(c);
                }
            }
        }
        batch.stats.customers_reloaded = states.len();
        if !batch.customers.unreached.is_empty() {
            tracing::warn!(
                reloaded = states.len(),
                unreached = batch.customers.unreached.len(),
                "deadline near: the rest of the batch goes back on the queue"
            );
        }
        states
    }
}
