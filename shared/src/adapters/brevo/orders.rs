//! eCommerce orders: `POST /v3/orders/status` (the body is [`order_body`]).

use super::wire::order_body;
use super::{BrevoClient, BrevoError};
use crate::domain::brevo::BrevoOrder;

impl BrevoClient {
    /// Creates or updates an eCommerce order (`POST /v3/orders/status`).
    pub async fn upsert_order(&self, order: &BrevoOrder) -> Result<(), BrevoError> {
        self.post_json_once("/v3/orders/status", &order_body(order)).await.map(|_| ())
    }
}
