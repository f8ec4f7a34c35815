//! [`SkipUnchanged`]: a [`BrevoApi`] wrapper that does not send a contact
//! Brevo already got, unchanged, in the last few minutes (per container).
//!
//! Several Stripe events for one customer usually arrive together
//! (`payment_intent.succeeded`, `charge.succeeded`, `invoice.paid`…); each
//! makes the consumer reload the customer, and once Stripe has settled the
//! reloads give the same contact. Sending it again changes nothing in Brevo
//! but spends its rate limit. Entries expire (default 10 minutes) so a
//! contact changed or deleted on the Brevo side is restored within that time.
//! Events and orders are never skipped.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::domain::brevo::{AttributeType, BrevoEvent, BrevoOrder, ContactUpdate};
use crate::ports::{BrevoApi, RemoteError};

/// Entries kept at most; the cache is cleared when it grows past this.
const MAX_ENTRIES: usize = 100_000;

pub struct SkipUnchanged<B> {
    inner: B,
    ttl: Duration,
    contacts: Mutex<HashMap<String, (u64, Instant)>>,
    removed: Mutex<HashMap<(String, i64), Instant>>,
}

impl<B> SkipUnchanged<B> {
    pub fn new(inner: B, ttl: Duration) -> Self {
        Self { inner, ttl, contacts: Mutex::new(HashMap::new()), removed: Mutex::new(HashMap::new()) }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn fingerprint(c: &ContactUpdate) -> u64 {
        let mut h = DefaultHasher::new();
        c.email.hash(&mut h);
        for (k, v) in &c.attributes {
            k.hash(&mut h);
            serde_json::to_string(v).unwrap_or_default().hash(&mut h);
        }
        c.list_ids.hash(&mut h);
        c.unlink_list_ids.hash(&mut h);
        h.finish()
    }

    fn unchanged(&self, c: &ContactUpdate) -> bool {
        let map = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
        matches!(map.get(&c.email), Some((fp, at)) if *fp == Self::fingerprint(c) && at.elapsed() < self.ttl)
    }

    fn remember(&self, cs: &[&ContactUpdate]) {
        let mut map = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() + cs.len() > MAX_ENTRIES {
            map.clear();
        }
        let now = Instant::now();
        for c in cs {
            map.insert(c.email.clone(), (Self::fingerprint(c), now));
        }
    }
}

#[async_trait]
impl<B: BrevoApi> BrevoApi for SkipUnchanged<B> {
    async fn ensure_attributes(&self, types: &BTreeMap<String, AttributeType>) -> Result<(), RemoteError> {
        self.inner.ensure_attributes(types).await
    }

    async fn upsert_contact(&self, contact: &ContactUpdate) -> Result<(), RemoteError> {
        if self.unchanged(contact) {
            return Ok(());
        }
        self.inner.upsert_contact(contact).await?;
        self.remember(&[contact]);
        Ok(())
    }

    async fn import_contacts(&self, contacts: &[ContactUpdate], list_ids: &[i64]) -> Result<(), RemoteError> {
        let changed: Vec<ContactUpdate> = contacts.iter().filter(|c| !self.unchanged(c)).cloned().collect();
        if changed.is_empty() {
            return Ok(());
        }
        self.inner.import_contacts(&changed, list_ids).await?;
        self.remember(&changed.iter().collect::<Vec<_>>());
        Ok(())
    }

    async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<(), RemoteError> {
        let pending: Vec<String> = {
            let removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
            emails
                .iter()
                .filter(|e| !matches!(removed.get(&((*e).clone(), list_id)), Some(at) if at.elapsed() < self.ttl))
                .cloned()
                .collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        self.inner.remove_from_list(list_id, &pending).await?;
        let mut removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        if removed.len() + pending.len() > MAX_ENTRIES {
            removed.clear();
        }
        let now = Instant::now();
        for e in pending {
            removed.insert((e, list_id), now);
        }
        Ok(())
    }

    async fn send_events(&self, events: &[BrevoEvent]) -> Result<Vec<Option<RemoteError>>, RemoteError> {
        self.inner.send_events(events).await
    }

    async fn upsert_order(&self, order: &BrevoOrder) -> Result<(), RemoteError> {
        self.inner.upsert_order(order).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::brevo::AttributeValue;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counting {
        upserts: AtomicUsize,
        imported: AtomicUsize,
        removals: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl BrevoApi for Counting {
        async fn ensure_attributes(&self, _: &BTreeMap<String, AttributeType>) -> Result<(), RemoteError> {
            Ok(())
        }
        async fn upsert_contact(&self, _: &ContactUpdate) -> Result<(), RemoteError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(RemoteError::new(
                    crate::ports::Vendor::Brevo,
                    crate::ports::RemoteErrorKind::Unavailable,
                    "down",
                ));
            }
            self.upserts.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn import_contacts(&self, c: &[ContactUpdate], _: &[i64]) -> Result<(), RemoteError> {
            self.imported.fetch_add(c.len(), Ordering::SeqCst);
            Ok(())
        }
        async fn remove_from_list(&self, _: i64, e: &[String]) -> Result<(), RemoteError> {
            self.removals.fetch_add(e.len(), Ordering::SeqCst);
            Ok(())
        }
        async fn send_events(&self, e: &[BrevoEvent]) -> Result<Vec<Option<RemoteError>>, RemoteError> {
            Ok(vec![None; e.len()])
        }
        async fn upsert_order(&self, _: &BrevoOrder) -> Result<(), RemoteError> {
            Ok(())
        }
    }

    fn contact(email: &str, total: f64) -> ContactUpdate {
        let mut c = ContactUpdate { email: email.into(), list_ids: vec![20], ..ContactUpdate::default() };
        c.attributes.insert("TOTAL_SPENT".into(), AttributeValue::Number(total));
        c
    }

    #[tokio::test]
    async fn an_unchanged_contact_is_sent_once_and_a_changed_one_again() {
        let b = SkipUnchanged::new(Counting::default(), Duration::from_secs(600));
        b.upsert_contact(&contact("a@x.io", 1.0)).await.unwrap();
        b.upsert_contact(&contact("a@x.io", 1.0)).await.unwrap();
        assert_eq!(b.inner().upserts.load(Ordering::SeqCst), 1);
        b.upsert_contact(&contact("a@x.io", 2.0)).await.unwrap();
        assert_eq!(b.inner().upserts.load(Ordering::SeqCst), 2);
        b.import_contacts(&[contact("a@x.io", 2.0), contact("b@x.io", 1.0)], &[20]).await.unwrap();
        assert_eq!(b.inner().imported.load(Ordering::SeqCst), 1, "only the new one is imported");
    }

    #[tokio::test]
    async fn a_failed_send_is_not_remembered_and_entries_expire() {
        let b = SkipUnchanged::new(Counting::default(), Duration::from_millis(30));
        b.inner().fail.store(true, Ordering::SeqCst);
        assert!(b.upsert_contact(&contact("a@x.io", 1.0)).await.is_err());
        b.inner().fail.store(false, Ordering::SeqCst);
        b.upsert_contact(&contact("a@x.io", 1.0)).await.unwrap();
        assert_eq!(b.inner().upserts.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(40)).await;
        b.upsert_contact(&contact("a@x.io", 1.0)).await.unwrap();
        assert_eq!(b.inner().upserts.load(Ordering::SeqCst), 2, "sent again after the TTL");
    }

    #[tokio::test]
    async fn a_list_removal_is_not_repeated_within_the_ttl() {
        let b = SkipUnchanged::new(Counting::default(), Duration::from_secs(600));
        b.remove_from_list(21, &["a@x.io".into(), "b@x.io".into()]).await.unwrap();
        b.remove_from_list(21, &["a@x.io".into(), "c@x.io".into()]).await.unwrap();
        b.remove_from_list(22, &["a@x.io".into()]).await.unwrap();
        assert_eq!(b.inner().removals.load(Ordering::SeqCst), 4);
    }
}
