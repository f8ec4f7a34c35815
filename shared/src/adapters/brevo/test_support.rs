//! What the Brevo client's unit tests share: a test key, a fast config on
//! a wiremock server, a contact, an event, an order and the requests
//! received.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use wiremock::{MockServer, Request};

use super::{BrevoClient, BrevoConfig, BrevoLimits};
use crate::adapters::http::Backoff;
use crate::domain::brevo::{AttributeValue, BrevoEvent, BrevoOrder, ContactUpdate, EventIdentifiers};

pub const KEY: &str = "xkeysib-test-secret";

pub fn config(server: &MockServer) -> BrevoConfig {
    let mut c = BrevoConfig::new(server.uri(), SecretString::from(KEY));
    c.timeout = Duration::from_millis(300);
    c.backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(20), 3);
    c.limits = BrevoLimits::unlimited();
    c.rate_limit_wait_min = Duration::from_millis(10);
    c.rate_limit_wait_max = Duration::from_millis(150);
    c
}

pub fn client(server: &MockServer) -> BrevoClient {
    BrevoClient::new(config(server)).unwrap()
}

pub fn contact(email: &str) -> ContactUpdate {
    let mut c = ContactUpdate {
        email: email.to_owned(),
        list_ids: vec![20, 21],
        unlink_list_ids: vec![22],
        ..Default::default()
    };
    c.attributes.insert("TOTAL_SPENT".into(), AttributeValue::Number(12.5));
    c.attributes.insert("FIRSTNAME".into(), AttributeValue::Text("Jane".into()));
    c
}

pub fn event(i: usize) -> BrevoEvent {
    BrevoEvent {
        event_name: "stripe_charge_refunded".into(),
        event_date: "2026-01-02T03:04:05Z".into(),
        identifiers: EventIdentifiers { email_id: format!("user{i}@example.com") },
        event_properties: serde_json::Map::new(),
    }
}

pub fn order() -> BrevoOrder {
    BrevoOrder {
        id: "in_1".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        status: "completed".into(),
        amount: 10.0,
        email: "jane@example.com".into(),
    }
}

pub fn json_body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

pub async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}
