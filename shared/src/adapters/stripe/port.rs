//! The Stripe ports on the real HTTP client: the consumer's [`StripeApi`]
//! ([`StripeReader`]) and the poller's [`StripeFeed`] (on [`StripeClient`]
//! itself). Errors are reduced to [`RemoteError`] (its kind, with a message
//! that never holds a key or an address; the conversion lives beside
//! [`StripeError`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{StripeClient, StripeError};
use crate::domain::stripe::{Charge, Customer, Expandable, Product, Subscription};
use crate::ports::{CustomerState, FeedError, FeedPage, FeedUsage, Position, RemoteError, StripeApi, StripeFeed};

/// [`StripeApi`] on [`StripeClient`]: customer, charges (balance transactions
/// expanded) and subscriptions (`status=all`, prices expanded) — three
/// requests per customer when each list fits one page — plus product names
/// from a per-container cache (Stripe's expansion depth limit of 4 stops
/// `data.items.data.price.product`).
pub struct StripeReader {
    client: StripeClient,
    products: Mutex<HashMap<String, (Option<String>, Instant)>>,
    product_ttl: Duration,
}

impl StripeReader {
    pub fn new(client: StripeClient) -> Self {
        Self { client, products: Mutex::new(HashMap::new()), product_ttl: Duration::from_secs(300) }
    }

    pub fn client(&self) -> &StripeClient {
        &self.client
    }

    async fn product_name(&self, id: &str) -> Result<Option<String>, StripeError> {
        if let Some((name, at)) = self.products.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            if at.elapsed() < self.product_ttl {
                return Ok(name.clone());
            }
        }
        let name = match self.client.get::<Product>(&format!("/v1/products/{id}"), &[]).await {
            Ok(p) if !p.deleted => p.name,
            Ok(_) | Err(StripeError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        self.products.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), (name.clone(), Instant::now()));
        Ok(name)
    }
}

#[async_trait]
impl StripeApi for StripeReader {
    fn is_live(&self) -> bool {
        self.client.key_is_live()
    }

    async fn customer_state(&self, customer_id: &str) -> Result<CustomerState, RemoteError> {
        let customer = match self.client.get::<Customer>(&format!("/v1/customers/{customer_id}"), &[]).await {
            Ok(c) => Some(c),
            Err(StripeError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if customer.as_ref().map_or(true, |c| c.deleted) {
            return Ok(CustomerState { customer, ..CustomerState::default() });
        }
        let mut charges: Vec<Charge> = Vec::new();
        self.client
            .list_all::<Charge, _>(
                "/v1/charges",
                &[("customer", customer_id.to_owned()), ("expand[]", "data.balance_transaction".to_owned())],
                |page| charges.extend(page),
            )
            .await?;
        let mut subscriptions: Vec<Subscription> = Vec::new();
        self.client
            .list_all::<Subscription, _>(
                "/v1/subscriptions",
                &[
                    ("customer", customer_id.to_owned()),
                    ("status", "all".to_owned()),
                    ("expand[]", "data.items.data.price".to_owned()),
                ],
                |page| subscriptions.extend(page),
            )
            .await?;
        for sub in &mut subscriptions {
            for item in &mut sub.items.data {
                let Some(price) = item.price.as_mut() else { continue };
                if let Some(Expandable::Id(pid)) = price.product.clone() {
                    let name = self.product_name(&pid).await?;
                    price.product = Some(Expandable::Object(Box::new(Product { id: pid, name, ..Product::default() })));
                }
            }
        }
        Ok(CustomerState { customer, charges, subscriptions })
    }

    async fn customers_of(&self, price_id: Option<&str>, product_id: Option<&str>) -> Result<Vec<String>, RemoteError> {
        let mut prices: Vec<String> = price_id.map(|p| vec![p.to_owned()]).unwrap_or_default();
        if let Some(prod) = product_id {
            self.products.lock().unwrap_or_else(|p| p.into_inner()).remove(prod);
            self.client
                .list_all::<crate::domain::stripe::Price, _>("/v1/prices", &[("product", prod.to_owned())], |page| {
                    prices.extend(page.into_iter().map(|p| p.id))
                })
                .await?;
        }
        let mut customers = std::collections::BTreeSet::new();
        for price in prices {
            self.client
                .list_all::<Subscription, _>(
                    "/v1/subscriptions",
                    &[("price", price.clone()), ("status", "all".to_owned())],
                    |page| {
                        customers.extend(
                            page.iter()
                                .filter(|s| {
                                    s.items.data.iter().any(|i| i.price.as_ref().is_some_and(|p| p.id == price))
                                })
                                .filter_map(|s| s.customer_id().map(str::to_owned)),
                        )
                    },
                )
                .await?;
        }
        Ok(customers.into_iter().collect())
    }

    async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, RemoteError> {
        match self.client.get::<Charge>(&format!("/v1/charges/{charge_id}"), &[]).await {
            Ok(c) => Ok(c.customer_id().map(str::to_owned)),
            Err(StripeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// [`StripeFeed`] on the HTTP client (its budget and 429 handling apply).
#[async_trait]
impl StripeFeed for StripeClient {
    fn is_live(&self) -> bool {
        self.key_is_live()
    }

    async fn page(&self, path: &str, params: &[(&str, String)], position: Position<'_>) -> Result<FeedPage, FeedError> {
        let mut p: Vec<(&str, String)> = params.to_vec();
        let after = match position {
            Position::Start => None,
            Position::After(id) => Some(id),
            Position::Before(id) => {
                p.push(("ending_before", id.to_owned()));
                None
            }
        };
        match self.list_page::<Box<serde_json::value::RawValue>>(path, &p, after).await {
            Ok(page) => Ok(FeedPage { items: page.data, has_more: page.has_more }),
            Err(StripeError::NotFound { .. }) if position != Position::Start => Err(FeedError::CursorGone),
            Err(StripeError::InvalidRequest { code: Some(code), .. })
                if code == "resource_missing" && position != Position::Start =>
            {
                Err(FeedError::CursorGone)
            }
            Err(e) => Err(FeedError::Remote(e.into())),
        }
    }

    fn usage(&self) -> FeedUsage {
        let s = self.stats();
        FeedUsage { requests: s.requests, retries: s.retries }
    }
}
