//! Step 5: forward. The configured Stripe events young enough become Brevo
//! events, all in one `send_events` call; with `ecommerce_orders` on,
//! succeeded payments also become orders. A message whose customer failed is
//! retried as a whole, so nothing of it is forwarded now.

use super::item::Batch;
use super::Consumer;
use crate::domain::brevo::{BrevoEvent, BrevoOrder};
use crate::domain::mapping::{self, EventDecision};
use crate::ports::BrevoApi;

impl<S, B: BrevoApi, I, C> Consumer<S, B, I, C> {
    pub(super) async fn forward_events(&self, batch: &mut Batch<'_>) {
        let settings = &self.settings.stripe;
        let mut to_send: Vec<(usize, BrevoEvent)> = Vec::new();
        for (i, item) in batch.items.iter().enumerate() {
            let Some(w) = item.active() else { continue };
            let Some(f) = &w.forward else { continue };
            if batch.customers.holds_back(w) {
                continue;
            }
            let _in = item.span.enter();
            let email = w
                .customers
                .iter()
                .find_map(|c| batch.customers.email.get(c).cloned())
                .or_else(|| f.email_hint.as_ref().map(|e| e.trim().to_lowercase()));
            let Some(email) = email else {
                tracing::info!(event_id = %f.event_id, "event concerns no one with an e-mail: not forwarded");
                continue;
            };
            match mapping::build_brevo_event(
                &f.event_id,
                &f.event_type,
                f.created,
                &f.object_json,
                &email,
                settings,
                batch.now,
            ) {
                EventDecision::Send(ev) => to_send.push((i, ev)),
                EventDecision::TooOld => {
                    batch.stats.events_too_old += 1;
                    tracing::info!(event_id = %f.event_id, event_type = %f.event_type, "event older than event_max_age: contact updated, no Brevo event");
                }
                EventDecision::NotConfigured => {}
            }
        }
        if to_send.is_empty() {
            return;
        }
        let events: Vec<BrevoEvent> = to_send.iter().map(|(_, e)| e.clone()).collect();
        match self.brevo.send_events(&events).await {
            Ok(per_event) => {
                // A missing answer counts as accepted (as before the split).
                for ((i, _), r) in to_send.iter().zip(per_event.into_iter().chain(std::iter::repeat(None))) {
                    match r {
                        None => batch.stats.events_sent += 1,
                        Some(e) => batch.items[*i].part_failed = Some(e),
                    }
                }
            }
            Err(e) => {
                for (i, _) in &to_send {
                    batch.items[*i].part_failed = Some(e.clone());
                }
            }
        }
    }

    pub(super) async fn forward_orders(&self, batch: &mut Batch<'_>) {
        if !self.settings.brevo.ecommerce_orders {
            return;
        }
        for item in &mut batch.items {
            let Some(w) = item.active() else { continue };
            if batch.customers.holds_back(w) {
                continue;
            }
            let Some(order) = &w.order else { continue };
            let Some(email) = w.customers.iter().find_map(|c| batch.customers.email.get(c)) else { continue };
            let order = BrevoOrder { email: email.clone(), ..order.clone() };
            if let Err(e) = self.brevo.upsert_order(&order).await {
                item.span.in_scope(|| tracing::warn!(order = %order.id, cause = %e, "Brevo refused the order"));
                item.part_failed = Some(e);
            }
        }
    }
}
