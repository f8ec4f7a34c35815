//! Step 1: what each message asks for. Parses a Stripe event (or a backfill
//! snapshot, or an import check), refuses what must not act (another mode's events, thin events,
//! permanently bad bodies) and marks in-batch copies as duplicates.

use std::collections::HashSet;

use serde::Deserialize;

use super::item::{Batch, Forward, Work};
use super::{Consumer, InboundMessage, Outcome, Snapshot, SNAPSHOT_OBJECT};
use crate::domain::brevo::BrevoOrder;
use crate::domain::event::{parse_envelope, EventKind};
use crate::domain::stripe::ObjectRef;
use crate::ports::StripeApi;
use crate::telemetry::redact_email;

/// What one message asks for, or why it asks for nothing.
pub(super) enum Parsed {
    Work(Work),
    Ignore(&'static str),
    Dead(String),
}

impl<S: StripeApi, B, I, C> Consumer<S, B, I, C> {
    /// Parses every message; the second copy of a key in one batch is a duplicate.
    pub(super) fn plan(&self, batch: &mut Batch<'_>) {
        let mut seen: HashSet<String> = HashSet::new();
        for item in &mut batch.items {
            let parsed = item.span.in_scope(|| self.parse(item.message, &item.span));
            match parsed {
                Parsed::Work(w) => match &w.dedup_key {
                    Some(k) if !seen.insert(k.clone()) => item.finish(Outcome::Duplicate),
                    _ => item.work = Some(w),
                },
                Parsed::Ignore(reason) => item.finish(Outcome::Ignored(reason)),
                Parsed::Dead(reason) => item.finish(Outcome::Dead(reason)),
            }
        }
    }

    fn parse(&self, m: &InboundMessage, span: &tracing::Span) -> Parsed {
        let env = match parse_envelope(m.body.as_bytes()) {
            Ok(e) => e,
            Err(e) => {
                return parse_snapshot(&m.body)
                    .or_else(|| super::imports::parse_import_check(&m.body))
                    .unwrap_or_else(|| Parsed::Dead(format!("not a Stripe event: {e}")))
            }
        };
        span.record("event_id", tracing::field::display(&env.id));
        span.record("event_type", tracing::field::display(&env.event_type));
        if env.kind == EventKind::Thin {
            return Parsed::Ignore("thin events are not mapped");
        }
        if let Some(live) = env.livemode {
            if live != self.stripe.is_live() {
                tracing::warn!(event_id = %env.id, event_livemode = live, "event's livemode differs from the Stripe key's mode: ignored");
                return Parsed::Ignore("livemode differs from the key's mode");
            }
        }
        let object_json = env.object.map(|o| o.get().to_owned()).unwrap_or_default();
        let Some(r) = ObjectRef::parse(&env.event_type, &object_json) else {
            return Parsed::Dead("event has no data.object".into());
        };
        let mut work = Work { dedup_key: Some(env.id.clone()), ..Work::default() };
        if let Some(c) = &r.customer_id {
            work.customers.push(c.clone());
        } else if let Some(ch) = &r.charge_id {
            work.charge = Some(ch.clone());
        }
        let family = env.event_type.split('.').next().unwrap_or("");
        if matches!(family, "price" | "plan" | "product") {
            let id = r.id.clone();
            work.catalog = Some(if family == "product" { (None, id) } else { (id, None) });
        }
        if self.settings.brevo.ecommerce_orders
            && matches!(env.event_type.as_str(), "payment_intent.succeeded" | "charge.succeeded")
        {
            work.order = order_of(&env.event_type, &object_json);
        }
        if env.event_type == "customer.deleted" {
            work.deleted_email = r.email.clone();
        }
        work.forward = Some(Forward {
            event_id: env.id.clone(),
            event_type: env.event_type.clone(),
            created: env.created,
            email_hint: r.email.clone(),
            object_json,
        });
        if self.settings.stripe.debug {
            tracing::info!(event_id = %env.id, event_type = %env.event_type, customer = ?r.customer_id, email = ?r.email.as_deref().map(redact_email), "event parsed");
        }
        Parsed::Work(work)
    }
}

/// A backfill snapshot: its own key space, only `cus_` ids kept.
fn parse_snapshot(body: &str) -> Option<Parsed> {
    let s = serde_json::from_str::<Snapshot>(body).ok()?;
    if s.object != SNAPSHOT_OBJECT || s.key.is_empty() {
        return None;
    }
    let customers = s.customers.into_iter().filter(|c| c.starts_with("cus_")).collect();
    Some(Parsed::Work(Work { dedup_key: Some(format!("snapshot:{}", s.key)), customers, ..Work::default() }))
}

/// The eCommerce order of a succeeded payment (e-mail filled in later).
fn order_of(event_type: &str, object_json: &str) -> Option<BrevoOrder> {
    #[derive(Deserialize)]
    struct Paid {
        id: String,
        #[serde(default)]
        amount: i64,
        #[serde(default)]
        amount_received: Option<i64>,
        #[serde(default)]
        amount_captured: Option<i64>,
        #[serde(default)]
        currency: String,
        #[serde(default)]
        created: i64,
    }
    let p: Paid = serde_json::from_str(object_json).ok()?;
    let minor = match event_type {
        "payment_intent.succeeded" => p.amount_received.unwrap_or(p.amount),
        _ => p.amount_captured.unwrap_or(p.amount),
    };
    let at = crate::domain::mapping::rfc3339(p.created)?;
    Some(BrevoOrder {
        id: p.id,
        created_at: at.clone(),
        updated_at: at,
        status: "completed".to_owned(),
        amount: crate::domain::money::minor_to_major(minor, &p.currency),
        email: String::new(),
    })
}
