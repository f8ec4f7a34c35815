//! `POST /v3/orders/status` in the Brevo sandbox: 204, the order kept by id
//! as last posted. The shape (`id`, `createdAt`, `updatedAt`, `status`,
//! `amount`, `products` required; nothing else than the definition lists) is
//! checked against Brevo's definition before (see `http`); here: 400 when
//! `identifiers.email_id` is not an e-mail address.

use serde_json::Value;

use super::http::{answer, error, Answer};
use super::state::State;
use super::validation::valid_email;

impl State {
    pub(super) fn upsert_order(&mut self, b: Value) -> Result<Answer, Answer> {
        if let Some(email) = b.pointer("/identifiers/email_id").and_then(Value::as_str) {
            if !valid_email(email) {
                return Err(error(400, "invalid_parameter", "Invalid email_id"));
            }
        }
        let id = b.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        self.orders.insert(id, b);
        Ok(answer(204, None))
    }
}
