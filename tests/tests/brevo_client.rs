//! The real Brevo client against the Brevo sandbox: every call the connector
//! makes, Brevo's validation answers, and injected throttling and outages.
//! GIVEN a fresh sandbox WHEN the client syncs contacts, lists, attributes,
//! events and orders THEN the sandbox holds exactly that state, and the
//! client's request counters agree with the sandbox's log.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sandbox::brevo::{BrevoSandbox, BrevoSandboxOptions, Family as SbFamily, Fault, ImportPace};
use secrecy::SecretString;
use serde_json::json;
use shared::adapters::brevo::{BrevoClient, BrevoConfig, BrevoError, BrevoLimits, SMS_ATTRIBUTE};
use shared::adapters::http::Backoff;
use shared::domain::brevo::{
    AttributeType, AttributeValue, BrevoEvent, BrevoOrder, ContactUpdate, EventIdentifiers, ProcessStatus,
};

fn client_for(sb: &BrevoSandbox, key: &str) -> BrevoClient {
    let mut cfg = BrevoConfig::new(sb.base_url(), SecretString::from(key.to_owned()));
    cfg.timeout = Duration::from_secs(2);
    cfg.backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(20), 3);
    cfg.limits = BrevoLimits::unlimited();
    cfg.rate_limit_wait_min = Duration::from_millis(10);
    cfg.rate_limit_wait_max = Duration::from_millis(100);
    BrevoClient::new(cfg).expect("client")
}

fn contact(email: &str, spent: f64, lists: &[i64]) -> ContactUpdate {
    let mut c = ContactUpdate { email: email.to_owned(), list_ids: lists.to_vec(), ..Default::default() };
    c.attributes.insert("TOTAL_SPENT".into(), AttributeValue::Number(spent));
    c.attributes.insert("FIRSTNAME".into(), AttributeValue::Text("Jane".into()));
    c.attribute_types.insert("TOTAL_SPENT".into(), AttributeType::Float);
    c.attribute_types.insert("FIRSTNAME".into(), AttributeType::Text);
    c
}

fn event(name: &str, email: &str) -> BrevoEvent {
    let mut props = serde_json::Map::new();
    props.insert("stripe_event_id".into(), json!("evt_1"));
    BrevoEvent {
        event_name: name.to_owned(),
        event_date: "2026-01-02T03:04:05Z".into(),
        identifiers: EventIdentifiers { email_id: email.to_owned() },
        event_properties: props,
    }
}

#[tokio::test]
async fn the_client_drives_the_sandbox_like_brevo() {
    let sb = BrevoSandbox::start(BrevoSandboxOptions::default()).await.expect("sandbox");
    let brevo = client_for(&sb, &sb.api_key());

    // Check: key, lists, attributes.
    assert_eq!(brevo.account().await.unwrap().company_name.as_deref(), Some("Brevo sandbox"));
    assert!(brevo.list_exists(20).await.unwrap());
    assert!(!brevo.list_exists(404).await.unwrap());
    let wanted: BTreeMap<String, AttributeType> =
        [("FIRSTNAME".to_owned(), AttributeType::Text), ("TOTAL_SPENT".to_owned(), AttributeType::Float)].into();
    let ensured = brevo.ensure_attributes(&wanted).await.unwrap();
    assert_eq!(ensured.created, vec!["TOTAL_SPENT".to_owned()]);
    assert_eq!(sb.attributes()["TOTAL_SPENT"], "float");

    // Real-time upsert, then an update that moves lists: the upsert adds
    // (createContact has no unlinkListIds, the sandbox refuses it as Brevo
    // does), the removal is a list call.
    assert!(brevo.upsert_contact(&contact("jane@example.com", 12.5, &[20, 21])).await.unwrap().created);
    let mut moved = contact("jane@example.com", 20.0, &[22]);
    moved.unlink_list_ids = vec![21];
    assert!(!brevo.upsert_contact(&moved).await.unwrap().created);
    assert_eq!(sb.lists_of("jane@example.com"), vec![20, 21, 22]);
    brevo.remove_from_list(21, &["jane@example.com".to_owned()]).await.unwrap();
    assert_eq!(sb.lists_of("jane@example.com"), vec![20, 22]);
    assert_eq!(sb.contact("jane@example.com").unwrap().attributes["TOTAL_SPENT"], json!(20.0));

    // Brevo refuses an SMS already used by another contact: written without it.
    let mut with_sms = contact("jane@example.com", 20.0, &[]);
    with_sms.attributes.insert(SMS_ATTRIBUTE.into(), AttributeValue::Text("+33612345678".into()));
    assert!(!brevo.upsert_contact(&with_sms).await.unwrap().sms_dropped);
    let mut twin = contact("john@example.com", 1.0, &[20]);
    twin.attributes.insert(SMS_ATTRIBUTE.into(), AttributeValue::Text("+33612345678".into()));
    let out = brevo.upsert_contact(&twin).await.unwrap();
    assert!(out.sms_dropped && out.created);
    assert!(!sb.contact("john@example.com").unwrap().attributes.contains_key("SMS"));

    // Asynchronous import: applied when its process completes (here at the
    // first status check), not at the 202.
    sb.set_import_pace(ImportPace::OnCheck(1));
    let batch: Vec<_> = (0..30).map(|i| contact(&format!("bulk{i}@example.com"), f64::from(i), &[])).collect();
    let receipt = brevo.import_contacts(&batch, &[20]).await.unwrap();
    assert_eq!((receipt.contacts, receipt.requests, receipt.process_ids.len()), (30, 1, 1));
    assert!(sb.contact("bulk7@example.com").is_none(), "not applied at the 202");
    let process = brevo.process_now(receipt.process_ids[0]).await.unwrap().unwrap();
    assert_eq!((process.status, process.name.as_str()), (Some(ProcessStatus::Completed), "IMPORTUSER"));
    assert_eq!(sb.contact("bulk7@example.com").unwrap().attributes["TOTAL_SPENT"], json!(7.0));
    assert_eq!(sb.lists_of("bulk7@example.com"), vec![20]);

    // List changes: "already in list" is not an error.
    let emails: Vec<String> = (0..30).map(|i| format!("bulk{i}@example.com")).collect();
    let added = brevo.add_to_list(21, &emails).await.unwrap();
    assert_eq!((added.changed, added.unchanged), (30, 0));
    let again = brevo.add_to_list(21, &emails).await.unwrap();
    assert_eq!((again.changed, again.unchanged), (0, 30));
    let removed = brevo.remove_from_list(21, &emails[..10]).await.unwrap();
    assert_eq!(removed.changed, 10);
    assert_eq!(sb.lists_of("bulk3@example.com"), vec![20]);
    assert_eq!(sb.lists_of("bulk13@example.com"), vec![20, 21]);

    // Events: one alone, then a batch where Brevo refuses one name (207).
    brevo.send_events(&[event("stripe_charge_refunded", "jane@example.com")]).await.unwrap();
    let batch = vec![
        event("stripe_invoice_payment_failed", "jane@example.com"),
        event("stripe.bad.name", "jane@example.com"),
        event("stripe_customer_subscription_deleted", "john@example.com"),
    ];
    let out = brevo.send_events(&batch).await.unwrap();
    assert_eq!(out.sent, 2);
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.failed[0].index, 1);
    let names: Vec<String> = sb.events_for("jane@example.com").into_iter().map(|e| e.event_name).collect();
    assert_eq!(names, vec!["stripe_charge_refunded", "stripe_invoice_payment_failed"]);
    assert_eq!(sb.events_for("john@example.com")[0].event_properties["stripe_event_id"], json!("evt_1"));

    // Orders.
    let order = BrevoOrder {
        id: "in_1".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        status: "completed".into(),
        amount: 10.0,
        email: "jane@example.com".into(),
    };
    brevo.upsert_order(&order).await.unwrap();
    assert_eq!(sb.orders()["in_1"]["identifiers"]["email_id"], json!("jane@example.com"));

    // Throttling and a short outage are absorbed by the retries.
    sb.fail_next(SbFamily::Contacts, 1, Fault::RateLimited);
    sb.fail_next(SbFamily::Events, 2, Fault::Status(503));
    let start = Instant::now();
    brevo.upsert_contact(&contact("late@example.com", 1.0, &[20])).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(90), "waited for the (clamped) reset");
    brevo.send_events(&[event("stripe_charge_refunded", "late@example.com")]).await.unwrap();
    assert_eq!(sb.events_for("late@example.com").len(), 1, "sent once despite the retries");
    let stats = brevo.stats();
    assert_eq!((stats.contacts.rate_limited, stats.events.server_errors), (1, 2));

    // A long outage is reported as retryable after the bounded attempts.
    sb.set_outage(true);
    let err = brevo.upsert_order(&order).await.unwrap_err();
    assert!(matches!(err, BrevoError::Server(503)) && err.is_retryable(), "{err:?}");
    sb.reset_faults();

    // The client's counters and the sandbox's log agree, family by family.
    let counts = sb.request_counts();
    let stats = brevo.stats();
    assert_eq!(stats.contacts.requests, counts.contacts);
    assert_eq!(stats.events.requests, counts.events);
    assert_eq!(stats.orders.requests, counts.orders);
    assert_eq!(stats.other.requests, counts.other);
    assert_eq!(stats.total_requests(), sb.request_log().len() as u64);
}

#[tokio::test]
async fn a_wrong_key_is_reported_as_invalid_and_never_retried() {
    let sb = BrevoSandbox::start(BrevoSandboxOptions::default()).await.expect("sandbox");
    let brevo = client_for(&sb, "xkeysib-wrong");
    let err = brevo.account().await.unwrap_err();
    assert!(matches!(err, BrevoError::Unauthorized { .. }), "{err:?}");
    assert!(!err.to_string().contains("xkeysib-wrong"));
    assert_eq!(sb.request_log().len(), 1);
    assert_eq!(sb.request_log()[0].status, 401);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn an_import_is_followed_to_its_end_and_the_row_brevo_skipped_is_missing_from_the_listing() {
    // GIVEN an old contact in list 20, one holding an SMS number, and an
    // import of 520 contacts of which one carries that number
    let sb = BrevoSandbox::start(BrevoSandboxOptions::default().with_import_pace(ImportPace::OnCheck(3)))
        .await
        .expect("sandbox");
    let brevo = client_for(&sb, &sb.api_key());
    sb.seed_contact("old@example.com", BTreeMap::new(), &[20]);
    sb.set_modified_at("old@example.com", 1_600_000_000_000);
    sb.seed_contact("owner@example.com", [("SMS".to_owned(), json!("+33612345678"))].into(), &[]);
    let started = unix_now();
    let mut batch: Vec<_> = (0..520).map(|i| contact(&format!("bulk{i}@example.com"), 1.0, &[])).collect();
    batch[3].attributes.insert(SMS_ATTRIBUTE.into(), AttributeValue::Text("+33612345678".into()));
    let receipt = brevo.import_contacts(&batch, &[20]).await.unwrap();
    let id = receipt.process_ids[0];
    // WHEN the client follows it
    let mut statuses = Vec::new();
    while statuses.last() != Some(&Some(ProcessStatus::Completed)) && statuses.len() < 5 {
        statuses.push(brevo.process_now(id).await.unwrap().unwrap().status);
    }
    let listed = brevo.contacts_modified_since(20, started - 5).await.unwrap();
    // THEN the process went queued → in_process → completed, and the listing
    // (two pages of at most 500) holds every row but the skipped one
    let done = Some(ProcessStatus::Completed);
    assert_eq!(statuses, [Some(ProcessStatus::Queued), Some(ProcessStatus::InProcess), done]);
    let emails: std::collections::BTreeSet<String> = listed.into_iter().map(|c| c.email).collect();
    assert_eq!(emails.len(), 519);
    assert!(!emails.contains("bulk3@example.com") && !emails.contains("old@example.com"));
    assert!(sb.contact("bulk3@example.com").is_none());
    let rec = &sb.imports()[0];
    assert_eq!((rec.applied, rec.skipped), (519, 1));
    // Each status check is one request of Brevo's hourly (Other) family.
    assert_eq!((brevo.stats().other.requests, sb.request_counts().other), (3, 3));
    assert!(matches!(brevo.process_now(id + 1).await, Err(BrevoError::NotFound { .. })));
}
