//! `stripe-brevo check [--fix] [--webhook-url URL]`: tests the connection,
//! one ✓/✗ line per check, exit status 1 on any ✗:
//! the Stripe key (valid, test/live, restricted or not), read permission for
//! each enabled resource and for events, the Brevo key, the configured lists,
//! the mapped attributes (`--fix` creates the missing ones) and, with
//! `--webhook-url`, a Stripe webhook endpoint for that URL with the events
//! the connector needs. Never prints a key.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use serde_json::Value;
use shared::adapters::brevo::{attribute_type_name, BrevoError};
use shared::adapters::stripe::StripeError;
use shared::config;
use shared::domain::brevo::AttributeType;
use shared::pipeline::poll;
use shared::settings::{Settings, FIRSTNAME, LASTNAME, METADATA_PREFIX};

use crate::clients;

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Create the Brevo attributes the field mapping needs and that are missing.
    #[arg(long)]
    pub fix: bool,
    /// Also check that a Stripe webhook endpoint is registered for this URL.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
}

struct Report {
    failures: usize,
}

impl Report {
    fn line(&mut self, ok: bool, text: impl AsRef<str>) {
        if !ok {
            self.failures += 1;
        }
        println!("{} {}", if ok { "✓" } else { "✗" }, text.as_ref());
    }
}

/// The attributes the field mapping writes, with their Brevo type.
pub fn expected_attributes(settings: &Settings) -> BTreeMap<String, AttributeType> {
    let s = &settings.stripe;
    let mut out = BTreeMap::new();
    for (key, attr) in &s.field_mapping {
        let ty = match key.as_str() {
            "email" if attr.eq_ignore_ascii_case("email") => continue,
            "email" | "name" | "first_name" | "last_name" | "phone" | "subscription_status" | "plan_name" => {
                AttributeType::Text
            }
            "total_spent" | "payment_count" | "lifetime_value" | "refunded" | "mrr" | "average_order_value" => {
                AttributeType::Float
            }
            "last_payment_date" | "subscription_start" => AttributeType::Date,
            "pay_later_used" => AttributeType::Boolean,
            k if k.starts_with(METADATA_PREFIX) => AttributeType::Text,
            _ => continue,
        };
        out.insert(attr.to_uppercase(), ty);
    }
    if s.split_name && s.field_mapping.contains_key("name") {
        if !s.field_mapping.contains_key("first_name") {
            out.insert(FIRSTNAME.to_owned(), AttributeType::Text);
        }
        if !s.field_mapping.contains_key("last_name") {
            out.insert(LASTNAME.to_owned(), AttributeType::Text);
        }
    }
    out
}

/// The event types a webhook endpoint must send.
fn needed_events(settings: &Settings) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = settings.stripe.events.iter().cloned().collect();
    out.extend(["customer.created", "customer.updated", "customer.deleted"].map(str::to_owned));
    out
}

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let settings = clients::settings()?;
    let mut r = Report { failures: 0 };
    check_stripe(&settings, args.webhook_url.as_deref(), &mut r).await;
    check_brevo(&settings, args.fix, &mut r).await;
    if r.failures > 0 {
        eprintln!("{} check(s) failed", r.failures);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn check_stripe(settings: &Settings, webhook_url: Option<&str>, r: &mut Report) {
    let reader = match clients::stripe_reader(settings, None).await {
        Ok(reader) => reader,
        Err(e) => return r.line(false, format!("Stripe key: {e}")),
    };
    let client = reader.client();
    let mut paths: Vec<(String, String)> =
        poll::enabled_resources(&settings.stripe.sync).iter().map(|s| (s.name.to_owned(), s.path.to_owned())).collect();
    paths.push(("events".to_owned(), "/v1/events".to_owned()));
    let mut results = Vec::with_capacity(paths.len());
    for (name, path) in paths {
        let res = client.check_permission(&path).await;
        if matches!(res, Err(StripeError::Unauthorized)) {
            return r
                .line(false, format!("Stripe key is invalid (401 Unauthorized): check {}", config::STRIPE_SECRET_KEY));
        }
        results.push((name, path, res));
    }
    let mode = if client.key_is_live() { "live mode" } else { "test mode" };
    let kind = if client.key_is_restricted() { "restricted key" } else { "secret key" };
    r.line(true, format!("Stripe key valid ({mode}, {kind})"));
    for (name, path, res) in results {
        match res {
            Ok(()) => r.line(true, format!("Stripe read {name} ({path})")),
            Err(StripeError::PermissionDenied { message }) => r.line(
                false,
                format!("Stripe read {name} ({path}): permission denied — give the restricted key Read access to {name} ({message})"),
            ),
            Err(e) => r.line(false, format!("Stripe read {name} ({path}): {e}")),
        }
    }
    if let Some(url) = webhook_url {
        check_webhook(client, url, settings, r).await;
    }
}

async fn check_webhook(
    client: &shared::adapters::stripe::StripeClient,
    url: &str,
    settings: &Settings,
    r: &mut Report,
) {
    let mut endpoints: Vec<Value> = Vec::new();
    if let Err(e) = client.list_all::<Value, _>("/v1/webhook_endpoints", &[], |page| endpoints.extend(page)).await {
        return r.line(false, format!("Stripe webhook endpoint for {url}: could not list /v1/webhook_endpoints ({e})"));
    }
    let want = url.trim_end_matches('/');
    let Some(ep) =
        endpoints.iter().find(|e| e.get("url").and_then(Value::as_str).map(|u| u.trim_end_matches('/')) == Some(want))
    else {
        return r.line(
            false,
            format!("Stripe webhook endpoint for {url}: none registered (Stripe Dashboard → Developers → Webhooks)"),
        );
    };
    if ep.get("status").and_then(Value::as_str).is_some_and(|s| s != "enabled") {
        return r.line(false, format!("Stripe webhook endpoint for {url}: registered but disabled"));
    }
    let enabled: BTreeSet<&str> = ep
        .get("enabled_events")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if enabled.contains("*") {
        return r.line(true, format!("Stripe webhook endpoint for {url}: registered, all events"));
    }
    let missing: Vec<String> = needed_events(settings).into_iter().filter(|e| !enabled.contains(e.as_str())).collect();
    if missing.is_empty() {
        r.line(true, format!("Stripe webhook endpoint for {url}: registered with the needed events"));
    } else {
        r.line(false, format!("Stripe webhook endpoint for {url}: missing events {}", missing.join(", ")));
    }
}

async fn check_brevo(settings: &Settings, fix: bool, r: &mut Report) {
    let brevo = match clients::brevo_client(settings, None).await {
        Ok(b) => b,
        Err(e) => return r.line(false, format!("Brevo key: {e}")),
    };
    match brevo.account().await {
        Ok(info) => {
            let plan = if info.plans.is_empty() { String::new() } else { format!(", plan {}", info.plans.join("+")) };
            r.line(true, format!("Brevo key valid (account {}{plan})", info.company_name.as_deref().unwrap_or("?")));
        }
        Err(BrevoError::Unauthorized { .. }) => {
            return r
                .line(false, format!("Brevo API key is invalid (401 Unauthorized): check {}", config::BREVO_API_KEY));
        }
        Err(e) => return r.line(false, format!("Brevo key: {e}")),
    }
    let lists = settings.stripe.lists;
    let configured: Vec<(&str, i64)> =
        [("all_customers", lists.all_customers), ("subscribers", lists.subscribers), ("churned", lists.churned)]
            .into_iter()
            .filter_map(|(n, id)| id.map(|id| (n, id)))
            .collect();
    if configured.is_empty() {
        r.line(true, "Brevo lists: none configured (connectors.stripe.lists), no list is managed");
    }
    for (role, id) in configured {
        match brevo.list(id).await {
            Ok(Some(info)) => r.line(true, format!("Brevo list {role} ({id}) exists: {}", info.name)),
            Ok(None) => {
                r.line(false, format!("Brevo list {role} ({id}) does not exist (connectors.stripe.lists.{role})"))
            }
            Err(e) => r.line(false, format!("Brevo list {role} ({id}): {e}")),
        }
    }
    let wanted = expected_attributes(settings);
    let existing = match brevo.list_attributes().await {
        Ok(a) => a,
        Err(e) => return r.line(false, format!("Brevo attributes: {e}")),
    };
    let known: BTreeMap<String, Option<String>> =
        existing.into_iter().map(|a| (a.name.to_uppercase(), a.attribute_type)).collect();
    let missing: BTreeMap<String, AttributeType> =
        wanted.iter().filter(|(n, _)| !known.contains_key(*n)).map(|(n, t)| (n.clone(), *t)).collect();
    for (name, ty) in &wanted {
        if let Some(Some(found)) = known.get(name) {
            if !found.eq_ignore_ascii_case(attribute_type_name(*ty)) {
                r.line(
                    false,
                    format!("Brevo attribute {name} is {found}, the field mapping writes {}", attribute_type_name(*ty)),
                );
            }
        }
    }
    if missing.is_empty() {
        return r.line(true, format!("Brevo attributes: all {} mapped attributes exist", wanted.len()));
    }
    let names: Vec<&str> = missing.keys().map(String::as_str).collect();
    if !fix {
        return r.line(
            false,
            format!("Brevo attributes missing: {} (run `stripe-brevo check --fix` to create them)", names.join(", ")),
        );
    }
    match brevo.ensure_attributes(&missing).await {
        Ok(done) => r.line(
            true,
            format!(
                "Brevo attributes: created {}",
                if done.created.is_empty() { names.join(", ") } else { done.created.join(", ") }
            ),
        ),
        Err(e) => r.line(false, format!("Brevo attributes: could not create {}: {e}", names.join(", "))),
    }
}
