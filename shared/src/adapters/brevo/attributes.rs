//! Contact attributes: listing them (`GET /v3/contacts/attributes`) and
//! creating the missing ones with their type, the account's list cached in
//! the client.

use std::collections::{BTreeMap, HashMap};

use reqwest::Method;
use serde::Deserialize;

use super::error::Refusal;
use super::wire::{attribute_body, attribute_type_name};
use super::{BrevoClient, BrevoError};
use crate::domain::brevo::AttributeType;

/// One contact attribute as Brevo lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BrevoAttribute {
    pub name: String,
    #[serde(default)]
    pub category: Option<String>,
    /// `text`, `float`, `date`, `boolean`, … (absent for some categories).
    #[serde(default, rename = "type")]
    pub attribute_type: Option<String>,
}

/// An attribute that exists with another type than the mapping wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMismatch {
    pub name: String,
    pub wanted: AttributeType,
    pub found: String,
}

/// What `ensure_attributes` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnsuredAttributes {
    pub created: Vec<String>,
    pub mismatched: Vec<AttributeMismatch>,
}

impl BrevoClient {
    /// Every contact attribute of the account (`GET /v3/contacts/attributes`);
    /// refreshes the cache `ensure_attributes` uses.
    pub async fn list_attributes(&self) -> Result<Vec<BrevoAttribute>, BrevoError> {
        let mut cache = self.inner.attributes.lock().await;
        let list = self.fetch_attributes().await?;
        *cache = Some(Self::index_attributes(&list));
        Ok(list)
    }

    /// Forgets the cached attribute list (the next `ensure_attributes` fetches it).
    pub async fn forget_attributes(&self) {
        *self.inner.attributes.lock().await = None;
    }

    async fn fetch_attributes(&self) -> Result<Vec<BrevoAttribute>, BrevoError> {
        #[derive(Deserialize)]
        struct Attributes {
            #[serde(default)]
            attributes: Vec<BrevoAttribute>,
        }
        let answer = self.call(Method::GET, "/v3/contacts/attributes", None).await?;
        let parsed: Attributes = serde_json::from_slice(&answer.body).map_err(|e| BrevoError::Decode(e.to_string()))?;
        Ok(parsed.attributes)
    }

    fn index_attributes(list: &[BrevoAttribute]) -> HashMap<String, Option<String>> {
        list.iter().map(|a| (a.name.to_uppercase(), a.attribute_type.clone())).collect()
    }

    /// Makes sure every attribute exists, creating the missing ones
    /// (`POST /v3/contacts/attributes/normal/{name}`) with their type. The
    /// account's attributes are fetched once and cached in the client.
    pub async fn ensure_attributes(
        &self,
        wanted: &BTreeMap<String, AttributeType>,
    ) -> Result<EnsuredAttributes, BrevoError> {
        let mut report = EnsuredAttributes::default();
        let mut cache = self.inner.attributes.lock().await;
        if cache.is_none() {
            *cache = Some(Self::index_attributes(&self.fetch_attributes().await?));
        }
        let Some(known) = cache.as_mut() else {
            return Ok(report);
        };
        for (name, ty) in wanted {
            let key = name.to_uppercase();
            if let Some(found) = known.get(&key) {
                if let Some(found) = found {
                    if !found.eq_ignore_ascii_case(attribute_type_name(*ty)) {
                        report.mismatched.push(AttributeMismatch {
                            name: name.clone(),
                            wanted: *ty,
                            found: found.clone(),
                        });
                    }
                }
                continue;
            }
            let path = format!("/v3/contacts/attributes/normal/{name}");
            match self.post_json(&path, &attribute_body(*ty)).await {
                Ok(_) => report.created.push(name.clone()),
                Err(e) if e.refusal() == Some(Refusal::AttributeExists) => {}
                Err(e) => return Err(e),
            }
            known.insert(key, Some(attribute_type_name(*ty).to_owned()));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
