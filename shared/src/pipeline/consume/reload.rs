//! Step 3: who the batch is about, and their current state. Charges are
//! resolved to their customer (disputes, refunds without `customer`),
//! catalogue events to the subscribers of the price or product; then every
//! touched customer is reloaded from Stripe once, whatever the order or
//! number of its events in the batch.

use std::collections::{BTreeSet, HashMap};

use futures::stream::{self, StreamExt};

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

    /// Reloads every customer of the batch's active messages once.
    pub(super) async fn reload(&self, batch: &mut Batch<'_>) -> States {
        let customers: BTreeSet<String> = batch.active().flat_map(|(_, w)| w.customers.iter().cloned()).collect();
        batch.stats.customers_reloaded = customers.len();
        stream::iter(customers)
            .map(|c| async move {
                let r = self.stripe.customer_state(&c).await;
                (c, r)
            })
            .buffer_unordered(self.options.reload_concurrency.max(1))
            .collect()
            .await
    }
}
