//! Brevo types: what the mapping produces and the Brevo client sends.
//! See <https://developers.brevo.com/reference/createcontact> and
//! <https://developers.brevo.com/reference/createevent>.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A contact attribute's Brevo type (`normal` category).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    Float,
    Date,
    Text,
    Boolean,
}

/// One attribute value. Numbers are already in major units, rounded to 2
/// decimals (the last step of the money pipeline); dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl AttributeValue {
    pub fn date(ymd: impl Into<String>) -> Self {
        Self::Text(ymd.into())
    }
}

/// The desired state of one contact: its attributes and list changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactUpdate {
    /// Lower-cased, trimmed e-mail (Brevo's identifier).
    pub email: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Brevo type of each attribute in `attributes` (for creation at first use).
    pub attribute_types: BTreeMap<String, AttributeType>,
    /// Lists the contact must be in.
    pub list_ids: Vec<i64>,
    /// Lists the contact must not be in.
    pub unlink_list_ids: Vec<i64>,
}

/// Who a Brevo event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventIdentifiers {
    pub email_id: String,
}

/// One Brevo custom event (`POST /v3/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrevoEvent {
    /// `stripe_<type with . → _>`; only `[A-Za-z0-9_-]`.
    pub event_name: String,
    /// RFC 3339, the Stripe event's `created`.
    pub event_date: String,
    pub identifiers: EventIdentifiers,
    pub event_properties: serde_json::Map<String, serde_json::Value>,
}

/// An eCommerce order (`POST /v3/orders/status`), optional feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrevoOrder {
    pub id: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    pub status: String,
    /// Major units.
    pub amount: f64,
    pub email: String,
}

/// One asynchronous import Brevo accepted (202 to `POST
/// /v3/contacts/import`): its process, and how many of the contacts given
/// to the import it holds, in their order (a big import is split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportStarted {
    /// `processId` of the 202; `None` if Brevo sent none.
    pub process_id: Option<i64>,
    pub contacts: usize,
}

/// Where a Brevo process stands (`getProcess`'s `status`,
/// <https://developers.brevo.com/reference/getprocess>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessStatus {
    Queued,
    InProcess,
    Completed,
}

impl ProcessStatus {
    /// From Brevo's name (`queued`, `in_process`, `completed`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(Self::Queued),
            "in_process" => Some(Self::InProcess),
            "completed" => Some(Self::Completed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProcess => "in_process",
            Self::Completed => "completed",
        }
    }
}
