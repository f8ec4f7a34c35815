//! Contact attributes in the Brevo sandbox: `GET /v3/contacts/attributes`
//! and `POST /v3/contacts/attributes/normal/{name}` (201; 400 "Attribute
//! name must be unique", bad name or type).

use serde_json::{json, Value};

use super::http::{answer, error, Answer};
use super::state::State;

impl State {
    pub(super) fn list_attributes(&self) -> Answer {
        let attrs: Vec<Value> =
            self.attributes.iter().map(|(name, t)| json!({ "name": name, "category": "normal", "type": t })).collect();
        answer(200, Some(json!({ "attributes": attrs })))
    }

    pub(super) fn create_attribute(&mut self, category: &str, name: &str, b: &Value) -> Result<Answer, Answer> {
        if category != "normal" {
            return Err(error(400, "invalid_parameter", "Only the normal category is supported by the sandbox"));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(error(400, "invalid_parameter", "Invalid attribute name"));
        }
        let t = b.get("type").and_then(Value::as_str).unwrap_or("text").to_lowercase();
        if !matches!(t.as_str(), "text" | "float" | "date" | "boolean") {
            return Err(error(400, "invalid_parameter", "Invalid attribute type"));
        }
        let key = name.to_uppercase();
        if self.attributes.contains_key(&key) {
            return Err(error(400, "invalid_parameter", "Attribute name must be unique"));
        }
        self.attributes.insert(key, t);
        Ok(answer(201, None))
    }
}
