//! The contact ledger in the contacts step: a contact whose state is
//! unchanged since anyone last wrote it to Brevo is not sent again, and one
//! that another consumer instance wrote since always is.
//!
//! Several Stripe events for one customer often land in different batches
//! (and containers): each reloads the customer and, once Stripe has settled,
//! computes the same contact. Re-sending it changes nothing in Brevo but
//! spends its account-wide rate limit. A per-container cache cannot know what
//! the *other* container wrote since, so it could skip re-sending state S1
//! after B wrote S2. The ledger is shared ([`ContactLedger`], the dedup table
//! when deployed) and follows one protocol:
//!
//! 1. read every contact's entry ([`ContactLedger::entries`]);
//! 2. skip a contact only when the entry's fingerprint equals the computed
//!    one, was written less than [`FRESH_SECS`] ago (a change made in Brevo
//!    itself is restored within that time) and no push of it is pending;
//! 3. otherwise [`ContactLedger::begin`] **before** the push, and
//!    [`ContactLedger::finish`] after it: the fingerprint is recorded only
//!    when no other push of the same contact overlapped this one, else the
//!    entry becomes unknown (never skipped). Imported contacts stay pending
//!    until their import has ended (its state is not known before).
//!
//! So a recorded fingerprint is always the state of the last write Brevo
//! received. If the ledger cannot be read, nothing is skipped; if a push
//! cannot be marked pending, the contact is not sent and its message comes
//! back (the same table holds the claims, so it is rarely only the ledger).

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};

use super::Consumer;
use crate::domain::brevo::ContactUpdate;
use crate::ports::{LedgerEntry, RemoteError, RemoteErrorKind, Vendor};

/// How long a recorded state is trusted without re-sending it.
pub(super) const FRESH_SECS: i64 = 600;
/// How long an entry is kept (its `expires_at`; a pending token of a crashed
/// push keeps the contact unskipped until then).
pub(super) const ENTRY_TTL_SECS: i64 = 86_400;

/// The ledger key of an e-mail address (a hash: no address is stored).
pub fn ledger_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    format!("contact#{}", hex::encode(&digest[..16]))
}

/// A fingerprint of everything a push writes for the contact: attributes,
/// lists joined and lists left (sorted, so order does not matter).
pub fn fingerprint(c: &ContactUpdate) -> String {
    let mut lists = c.list_ids.clone();
    lists.sort_unstable();
    let mut unlink = c.unlink_list_ids.clone();
    unlink.sort_unstable();
    let canonical = serde_json::json!([c.email, c.attributes, lists, unlink]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    hex::encode(&digest[..16])
}

/// One contact to push under the ledger's protocol.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub key: String,
    pub token: String,
    pub fingerprint: String,
}

/// What the ledger decided for a batch's contacts.
#[derive(Debug, Default)]
pub(super) struct Gate {
    /// Customers whose contact is unchanged since it was last written.
    pub unchanged: BTreeSet<String>,
    /// Customers to push, with their pending mark.
    pub pending: BTreeMap<String, Pending>,
    /// Customers that could not be marked pending (not sent, retried).
    pub failed: BTreeMap<String, RemoteError>,
}

/// Whether `entry` says the computed `fingerprint` is what Brevo has.
fn unchanged(entry: Option<&LedgerEntry>, fingerprint: &str, now: i64) -> bool {
    entry.is_some_and(|e| {
        !e.pending && e.fingerprint.as_deref() == Some(fingerprint) && now.saturating_sub(e.sent_at) < FRESH_SECS
    })
}

impl<S, B, I, C> Consumer<S, B, I, C> {
    /// Steps 1–3 up to the push: which contacts are unchanged, and a pending
    /// mark for each of the others. Without a ledger every contact is sent.
    pub(super) async fn gate(&self, contacts: &BTreeMap<String, ContactUpdate>, now: i64) -> Gate {
        let mut gate = Gate::default();
        let Some(ledger) = &self.ledger else { return gate };
        let keys: Vec<String> =
            contacts.values().map(|c| ledger_key(&c.email)).collect::<BTreeSet<_>>().into_iter().collect();
        let entries = ledger.entries(&keys).await.unwrap_or_else(|e| {
            tracing::warn!(cause = %e, "contact ledger unreadable: every contact is sent");
            Default::default()
        });
        let salt: u64 = rand::random();
        let mut to_mark = Vec::new();
        for (cid, c) in contacts {
            let (key, fp) = (ledger_key(&c.email), fingerprint(c));
            if unchanged(entries.get(&key), &fp, now) {
                gate.unchanged.insert(cid.clone());
            } else {
                let token = format!("{now}-{salt:016x}-{}", to_mark.len());
                to_mark.push((cid.clone(), Pending { key, token, fingerprint: fp }));
            }
        }
        let expires = now + ENTRY_TTL_SECS;
        let marked: Vec<_> = stream::iter(to_mark)
            .map(|(cid, p)| async move {
                let res = ledger.begin(&p.key, &p.token, expires).await;
                (cid, p, res)
            })
            .buffer_unordered(self.options.push_concurrency.max(1) * 4)
            .collect()
            .await;
        for (cid, p, res) in marked {
            match res {
                Ok(()) => {
                    gate.pending.insert(cid, p);
                }
                Err(e) => {
                    let message = format!("contact ledger unavailable, contact not sent: {e}");
                    gate.failed.insert(cid, RemoteError::new(Vendor::Brevo, RemoteErrorKind::Unavailable, message));
                }
            }
        }
        gate
    }

    /// Step 3 after the push: records what Brevo took (`Some` fingerprint)
    /// or makes the entry unknown (`None`).
    pub(super) async fn settle_ledger(&self, done: Vec<(Pending, bool)>, now: i64) {
        let Some(ledger) = &self.ledger else { return };
        let expires = now + ENTRY_TTL_SECS;
        let results: Vec<_> = stream::iter(done)
            .map(|(p, sent)| async move {
                let fp = sent.then_some(p.fingerprint.as_str());
                ledger.finish(&p.key, &p.token, fp, now, expires).await
            })
            .buffer_unordered(self.options.push_concurrency.max(1) * 4)
            .collect()
            .await;
        // A finish that fails leaves the token pending: the contact is never
        // skipped until the entry expires, which is safe.
        if let Some(e) = results.into_iter().find_map(Result::err) {
            tracing::warn!(cause = %e, "contact ledger not updated (those contacts will be re-sent next time)");
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::domain::brevo::AttributeValue;

    fn contact(lists: &[i64]) -> ContactUpdate {
        let mut c = ContactUpdate { email: "a@example.com".into(), list_ids: lists.to_vec(), ..Default::default() };
        c.attributes.insert("TOTAL_SPENT".into(), AttributeValue::Number(12.5));
        c
    }

    #[test]
    fn the_key_hides_the_address_and_ignores_case_and_spaces() {
        let k = ledger_key(" A@Example.com ");
        assert_eq!(k, ledger_key("a@example.com"));
        assert!(k.starts_with("contact#") && !k.contains("example"), "{k}");
    }

    #[test]
    fn the_fingerprint_follows_every_written_field_but_not_list_order() {
        let base = contact(&[20, 21]);
        assert_eq!(fingerprint(&base), fingerprint(&contact(&[21, 20])));
        let mut spent = base.clone();
        spent.attributes.insert("TOTAL_SPENT".into(), AttributeValue::Number(13.0));
        let mut unlink = base.clone();
        unlink.unlink_list_ids = vec![22];
        let mut other = base.clone();
        other.email = "b@example.com".into();
        for changed in [spent, unlink, other, contact(&[20])] {
            assert_ne!(fingerprint(&base), fingerprint(&changed));
        }
    }

    #[test]
    fn only_a_fresh_matching_settled_entry_counts_as_unchanged() {
        let e = |fp: Option<&str>, at: i64, pending: bool| LedgerEntry {
            fingerprint: fp.map(str::to_owned),
            sent_at: at,
            pending,
        };
        assert!(unchanged(Some(&e(Some("f"), 1000, false)), "f", 1000 + FRESH_SECS - 1));
        assert!(!unchanged(Some(&e(Some("f"), 1000, false)), "f", 1000 + FRESH_SECS));
        assert!(!unchanged(Some(&e(Some("f"), 1000, true)), "f", 1001));
        assert!(!unchanged(Some(&e(Some("g"), 1000, false)), "f", 1001));
        assert!(!unchanged(Some(&e(None, 1000, false)), "f", 1001));
        assert!(!unchanged(None, "f", 1001));
    }
}
