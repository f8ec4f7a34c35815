//! Step 4: contacts. Computes each reloaded customer's metrics and contact,
//! makes sure the attributes exist, pushes the contacts (one upsert each
//! below the import threshold, asynchronous imports above it — followed to
//! their end by [`super::imports`] — then list removals), and takes deleted
//! customers out of the managed lists.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::stream::{self, StreamExt};

use super::imports::StartedImport;
use super::item::Batch;
use super::reload::States;
use super::Consumer;
use crate::domain::brevo::ContactUpdate;
use crate::domain::mapping::{self, ContactOutcome};
use crate::domain::metrics::compute_metrics;
use crate::ports::{BrevoApi, RemoteError};

/// How a contact was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// By a real-time upsert: Brevo has it now.
    Now,
    /// By an asynchronous import: Brevo applies it later (or skips it).
    Imported,
}

pub(super) type Pushed = Vec<(String, Result<Written, RemoteError>)>;

impl<S, B: BrevoApi, I, C> Consumer<S, B, I, C> {
    /// Metrics and contact of every reloaded customer (or why there is none).
    pub(super) fn map_contacts(&self, batch: &mut Batch<'_>, states: States) {
        let settings = &self.settings.stripe;
        let out = &mut batch.customers;
        for (cid, res) in states {
            let state = match res {
                Err(e) => {
                    tracing::warn!(customer = %cid, retryable = e.is_retryable(), kind = e.kind.as_str(), cause = %e, "could not reload customer from Stripe");
                    out.failed.insert(cid, e);
                    continue;
                }
                Ok(state) => state,
            };
            let Some(customer) = state.customer.as_ref().filter(|c| !c.deleted) else {
                out.deleted.insert(cid);
                continue;
            };
            let metrics = compute_metrics(&state.charges, &state.subscriptions, &settings.reporting_currency);
            for ex in &metrics.excluded_charges {
                tracing::warn!(customer = %cid, charge = %ex.charge_id, reason = %ex.reason, "charge left out of the metrics");
            }
            for ex in &metrics.excluded_subscriptions {
                tracing::warn!(customer = %cid, subscription = %ex.subscription_id, reason = %ex.reason, "subscription left out of mrr");
            }
            match mapping::map_contact(customer, &metrics, settings) {
                ContactOutcome::Contact { update, warnings } => {
                    for w in warnings {
                        tracing::warn!(customer = %cid, warning = %w, "contact mapped with a warning");
                    }
                    out.email.insert(cid.clone(), update.email.clone());
                    out.contacts.insert(cid, update);
                }
                ContactOutcome::NoEmail => {
                    batch.stats.contacts_skipped_no_email += 1;
                    tracing::info!(customer = %cid, "customer has no e-mail: skipped, not sent");
                }
                ContactOutcome::Deleted => {
                    out.deleted.insert(cid);
                }
            }
        }
    }

    /// Ensures the attributes, then pushes every contact.
    pub(super) async fn push_contacts(&self, batch: &mut Batch<'_>) {
        let contacts = std::mem::take(&mut batch.customers.contacts);
        if contacts.is_empty() {
            return;
        }
        let mut types = BTreeMap::new();
        for c in contacts.values() {
            types.extend(c.attribute_types.iter().map(|(k, v)| (k.clone(), *v)));
        }
        if let Err(e) = self.brevo.ensure_attributes(&types).await {
            tracing::warn!(cause = %e, "could not ensure Brevo attributes");
            for cid in contacts.keys() {
                batch.customers.failed.insert(cid.clone(), e.clone());
            }
            return;
        }
        let mut gate = self.gate(&contacts, batch.now).await;
        for cid in &gate.unchanged {
            batch.stats.contacts_synced += 1;
            tracing::debug!(customer = %cid, "contact unchanged since it was last written: not sent again");
        }
        for (cid, e) in std::mem::take(&mut gate.failed) {
            batch.stats.contacts_failed += 1;
            tracing::warn!(customer = %cid, cause = %e, "contact not sent");
            batch.customers.failed.insert(cid, e);
        }
        let to_send: BTreeMap<String, ContactUpdate> =
            contacts.into_iter().filter(|(cid, _)| self.ledger.is_none() || gate.pending.contains_key(cid)).collect();
        let urgent = self.with_events_due(batch);
        let (mut pushed, imports) = self.send_contacts(&to_send, &urgent, batch.now).await;
        self.follow_imports(imports, &mut pushed, &gate.pending, batch).await;
        let mut finished = Vec::new();
        for (cid, res) in &pushed {
            match (gate.pending.remove(cid), res) {
                // An imported contact stays pending until its import has ended:
                // whoever follows the import calls `ledger.finish(p.key, p.token,
                // Some(p.fingerprint) if the row was applied else None, ..)`.
                (Some(_), Ok(Written::Imported)) | (None, _) => {}
                (Some(p), res) => finished.push((p, res.is_ok())),
            }
        }
        self.settle_ledger(finished, batch.now).await;
        for (cid, res) in pushed {
            match res {
                Ok(Written::Now) => batch.stats.contacts_synced += 1,
                // Counted when its import is seen to have applied it.
                Ok(Written::Imported) => {}
                Err(e) => {
                    batch.stats.contacts_failed += 1;
                    tracing::warn!(customer = %cid, retryable = e.is_retryable(), kind = e.kind.as_str(), cause = %e, "Brevo refused the contact");
                    batch.customers.failed.insert(cid, e);
                }
            }
        }
    }

    /// The customers a Brevo event is about to be sent for in this batch,
    /// and those of real-time work (the rows an import did not apply).
    /// Their contacts are written in real time, never by the asynchronous
    /// import: an automation the event triggers must find the attributes
    /// already there (an import applies its rows later).
    fn with_events_due(&self, batch: &Batch<'_>) -> BTreeSet<String> {
        let s = &self.settings.stripe;
        batch
            .active()
            .filter(|(_, w)| {
                w.realtime
                    || w.forward.as_ref().is_some_and(|f| {
                        s.sends_event(&f.event_type) && batch.now.saturating_sub(f.created) <= s.event_max_age_secs()
                    })
            })
            .flat_map(|(_, w)| w.customers.iter().cloned())
            .collect()
    }

    /// Upserts the contacts with events due, and the rest one by one below
    /// the import threshold or by import above it; then the list removals of
    /// all of them, one call per list. Also the imports Brevo accepted.
    async fn send_contacts(
        &self,
        contacts: &BTreeMap<String, ContactUpdate>,
        urgent: &BTreeSet<String>,
        now: i64,
    ) -> (Pushed, Vec<StartedImport>) {
        let (real_time, later): (BTreeMap<String, ContactUpdate>, BTreeMap<String, ContactUpdate>) =
            contacts.clone().into_iter().partition(|(cid, _)| urgent.contains(cid));
        let mut out = self.upsert_each(real_time.iter()).await;
        let (written, imports) = self.write_contacts(&later, now).await;
        out.extend(written);
        let failed = self.unlink_lists(contacts).await;
        for (cid, res) in out.iter_mut() {
            if res.is_ok() {
                if let Some(e) = failed.get(cid.as_str()) {
                    *res = Err(e.clone());
                }
            }
        }
        (out, imports)
    }

    /// Attributes and list additions: upserts or imports (with the imports
    /// Brevo accepted, each holding its rows).
    async fn write_contacts(
        &self,
        contacts: &BTreeMap<String, ContactUpdate>,
        now: i64,
    ) -> (Pushed, Vec<StartedImport>) {
        let threshold = self.settings.brevo.import_threshold.max(1);
        if contacts.len() < threshold {
            return (self.upsert_each(contacts.iter()).await, Vec::new());
        }
        // Import: one per distinct set of lists.
        let mut groups: BTreeMap<Vec<i64>, Vec<(&String, &ContactUpdate)>> = BTreeMap::new();
        for (cid, c) in contacts {
            let mut lists = c.list_ids.clone();
            lists.sort_unstable();
            groups.entry(lists).or_default().push((cid, c));
        }
        let mut out = Vec::with_capacity(contacts.len());
        let mut imports = Vec::new();
        for (lists, members) in groups {
            let Some(&list_id) = lists.first() else {
                // An import needs at least one list: upsert these one by one.
                out.extend(self.upsert_each(members.into_iter()).await);
                continue;
            };
            let batch: Vec<ContactUpdate> = members.iter().map(|(_, c)| (*c).clone()).collect();
            match self.brevo.import_contacts(&batch, &lists).await {
                Err(e) => out.extend(members.iter().map(|(cid, _)| ((*cid).clone(), Err(e.clone())))),
                Ok(started) => {
                    out.extend(members.iter().map(|(cid, _)| ((*cid).clone(), Ok(Written::Imported))));
                    // Each import holds the next `contacts` of the members, in order.
                    let mut rest = members.iter().map(|(cid, c)| ((*cid).clone(), (*c).clone()));
                    for s in started {
                        let rows: Vec<(String, ContactUpdate)> = rest.by_ref().take(s.contacts).collect();
                        imports.push(StartedImport { process_id: s.process_id, list_id, started_at: now, rows });
                    }
                    let unaccounted: Vec<(String, ContactUpdate)> = rest.collect();
                    if !unaccounted.is_empty() {
                        imports.push(StartedImport { process_id: None, list_id, started_at: now, rows: unaccounted });
                    }
                }
            }
        }
        (out, imports)
    }

    pub(super) async fn upsert_each<'a>(
        &self,
        contacts: impl Iterator<Item = (&'a String, &'a ContactUpdate)>,
    ) -> Pushed {
        stream::iter(contacts)
            .map(|(cid, c)| async move { (cid.clone(), self.brevo.upsert_contact(c).await.map(|()| Written::Now)) })
            .buffer_unordered(self.options.push_concurrency.max(1))
            .collect()
            .await
    }

    /// The list removals of the contacts, one call per list (at most 150
    /// addresses each: the client chunks); the customers whose removal failed.
    async fn unlink_lists(&self, contacts: &BTreeMap<String, ContactUpdate>) -> HashMap<String, RemoteError> {
        let mut removals: BTreeMap<i64, Vec<(&String, String)>> = BTreeMap::new();
        for (cid, c) in contacts {
            for l in &c.unlink_list_ids {
                removals.entry(*l).or_default().push((cid, c.email.clone()));
            }
        }
        let mut failed = HashMap::new();
        for (list, members) in removals {
            let emails: Vec<String> = members.iter().map(|(_, e)| e.clone()).collect();
            if let Err(e) = self.brevo.remove_from_list(list, &emails).await {
                for (cid, _) in members {
                    failed.insert(cid.clone(), e.clone());
                }
            }
        }
        failed
    }

    /// Deleted customers leave the lists the connector manages.
    pub(super) async fn remove_deleted(&self, batch: &mut Batch<'_>) {
        let lists = self.settings.stripe.lists.all();
        if lists.is_empty() {
            return;
        }
        let mut gone: Vec<(String, String)> = Vec::new(); // (customer, e-mail)
        for (_, w) in batch.active() {
            let Some(email) = &w.deleted_email else { continue };
            for c in w.customers.iter().filter(|c| batch.customers.deleted.contains(*c)) {
                gone.push((c.clone(), email.trim().to_lowercase()));
            }
        }
        if gone.is_empty() {
            return;
        }
        let addrs: Vec<String> = gone.iter().map(|(_, e)| e.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        for list in &lists {
            if let Err(e) = self.brevo.remove_from_list(*list, &addrs).await {
                for (c, _) in &gone {
                    batch.customers.failed.insert(c.clone(), e.clone());
                }
            }
        }
    }
}
