//! `POST /v3/orders/status` in the Brevo sandbox: 204, the order kept by id
//! as last posted; 400 when `id`, `status`, `createdAt`, `amount` or
//! `products` is missing or the e-mail is invalid.

use serde_json::Value;

use super::http::{answer, error, Answer};
use super::state::State;
use super::validation::valid_email;

impl State {
    pub(super) fn upsert_order(&mut self, b: Value) -> Result<Answer, Answer> {
        let id = b.get("id").and_then(Value::as_str).ok_or_else(|| error(400, "missing_parameter", "id is missing"))?;
        for field in ["status", "createdAt"] {
            if !b.get(field).is_some_and(Value::is_string) {
                return Err(error(400, "missing_parameter", &format!("{field} is missing")));
            }
        }
        if !b.get("amount").is_some_and(Value::is_number) {
            return Err(error(400, "missing_parameter", "amount is missing"));
        }
        if !b.get("products").is_some_and(Value::is_array) {
            return Err(error(400, "missing_parameter", "products is missing"));
        }
        let email = b.pointer("/identifiers/email_id").or_else(|| b.get("email")).and_then(Value::as_str);
        if let Some(email) = email {
            if !valid_email(email) {
                return Err(error(400, "invalid_parameter", "Invalid email_id"));
            }
        }
        self.orders.insert(id.to_owned(), b.clone());
        Ok(answer(204, None))
    }
}
