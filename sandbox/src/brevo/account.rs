//! `GET /v3/account` in the Brevo sandbox: a fixed free-plan account.

use serde_json::json;

use super::http::{answer, Answer};
use super::state::State;

impl State {
    pub(super) fn account(&self) -> Answer {
        answer(
            200,
            Some(json!({
                "email": "owner@sandbox.local",
                "firstName": "Sandbox",
                "lastName": "Owner",
                "companyName": "Brevo sandbox",
                "plan": [{"type": "free", "creditsType": "sendLimit", "credits": 300}],
            })),
        )
    }
}
