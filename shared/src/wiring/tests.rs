//! The per-function configs read from a map (never the process environment).

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::adapters::brevo::Family;
use crate::adapters::secrets::SecretSource;
use crate::config::{
    BREVO_API_KEY, CONNECTOR_CONFIG, CONSUMER_MAX_CONCURRENCY, CURSOR_TABLE, DEDUP_TABLE, DLQ_URL, QUEUE_URL,
    STRIPE_ACCOUNT_REQUESTS_PER_SECOND, STRIPE_API_BASE, STRIPE_REQUESTS_PER_SECOND, STRIPE_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET, STRIPE_WEBHOOK_TOLERANCE_SECS,
};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn value(source: &SecretSource) -> String {
    match source {
        SecretSource::Value(v) => v.expose_secret().to_owned(),
        other => panic!("not a value: {other:?}"),
    }
}

/// A YAML config file holding the given `connectors.stripe` secrets literally.
fn yaml_file(stripe_keys: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("connectors:\n  stripe:\n{stripe_keys}")).unwrap();
    file
}

const CONSUMER: [(&str, &str); 3] =
    [(DEDUP_TABLE, "dedup"), (STRIPE_SECRET_KEY, "sk_test_cfg_secret"), (BREVO_API_KEY, "xkeysib-cfg-secret")];
const POLLER: [(&str, &str); 3] =
    [(QUEUE_URL, "http://127.0.0.1:9/q"), (CURSOR_TABLE, "cursors"), (STRIPE_SECRET_KEY, "sk_test_cfg_secret")];

#[test]
fn the_webhook_reads_its_queue_secret_and_tolerance() {
    let cfg = WebhookConfig::from_env(&env(&[
        (QUEUE_URL, "http://127.0.0.1:9/q"),
        (STRIPE_WEBHOOK_SECRET, "whsec_env"),
        (STRIPE_WEBHOOK_TOLERANCE_SECS, "60"),
    ]))
    .unwrap();
    assert_eq!(cfg.queue_url, "http://127.0.0.1:9/q");
    assert_eq!(value(&cfg.signature.secret), "whsec_env");
    assert_eq!(cfg.signature.tolerance_secs, 60);
    assert!(!format!("{cfg:?}").contains("whsec_env"), "Debug prints no secret");
}

#[test]
fn the_webhook_honours_the_yaml_webhook_secret_like_serve() {
    let file = yaml_file("    webhook_secret: whsec_from_yaml\n");
    let path = file.path().to_str().unwrap();
    let cfg = WebhookConfig::from_env(&env(&[
        (CONNECTOR_CONFIG, path),
        (QUEUE_URL, "http://127.0.0.1:9/q"),
        (STRIPE_WEBHOOK_SECRET, "whsec_env"),
    ]))
    .unwrap();
    assert_eq!(value(&cfg.signature.secret), "whsec_from_yaml");
    // Without the variable at all, the YAML value is enough.
    let cfg = WebhookConfig::from_env(&env(&[(CONNECTOR_CONFIG, path), (QUEUE_URL, "q")])).unwrap();
    assert_eq!(value(&cfg.signature.secret), "whsec_from_yaml");
}

#[test]
fn a_webhook_secret_in_aws_is_a_source_not_a_fetch() {
    let arn = "arn:aws:secretsmanager:us-east-1:1:secret:w";
    let cfg = WebhookConfig::from_env(&env(&[(QUEUE_URL, "q"), ("STRIPE_WEBHOOK_SECRET_ARN", arn)])).unwrap();
    assert!(matches!(&cfg.signature.secret, SecretSource::SecretsManager { id } if id == arn));
}

#[test]
fn each_missing_webhook_variable_is_named() {
    let e = WebhookConfig::from_env(&env(&[(STRIPE_WEBHOOK_SECRET, "whsec_x")])).unwrap_err();
    assert_eq!(e.to_string(), "QUEUE_URL is not set");
    let e = WebhookConfig::from_env(&env(&[(QUEUE_URL, "q")])).unwrap_err();
    assert_eq!(e.to_string(), "STRIPE_WEBHOOK_SECRET is not set");
    let e = WebhookConfig::from_env(&env(&[
        (QUEUE_URL, "q"),
        (STRIPE_WEBHOOK_SECRET, "w"),
        (STRIPE_WEBHOOK_TOLERANCE_SECS, "0"),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains(STRIPE_WEBHOOK_TOLERANCE_SECS), "{e}");
}

#[test]
fn a_secret_that_holds_no_secret_is_refused_by_name() {
    let e = verifier(&SecretString::from(" , ".to_owned()), 300).unwrap_err();
    assert!(e.to_string().contains(STRIPE_WEBHOOK_SECRET) && e.to_string().contains("holds no secret"), "{e}");
    assert_eq!(verifier(&SecretString::from("whsec_a,whsec_b".to_owned()), 300).unwrap().secret_count(), 2);
}

#[test]
fn the_consumer_reads_its_tables_keys_and_optional_queues() {
    let cfg = ConsumerConfig::from_env(&env(&CONSUMER)).unwrap();
    assert_eq!(cfg.dedup_table, "dedup");
    assert_eq!((cfg.dead_letter_queue_url, cfg.cursor_table), (None, None));
    assert_eq!(cfg.stripe.base_url, "https://api.stripe.com");
    assert_eq!(cfg.brevo.base_url, "https://api.brevo.com");
    assert_eq!(value(&cfg.stripe.secret_key), "sk_test_cfg_secret");
    assert_eq!(value(&cfg.brevo.api_key), "xkeysib-cfg-secret");

    assert_eq!((cfg.queue_url.as_deref(), cfg.stripe.requests_per_second), (None, None));

    let mut vars = CONSUMER.to_vec();
    vars.extend([
        (DLQ_URL, "http://127.0.0.1:9/dlq"),
        (CURSOR_TABLE, "cursors"),
        (QUEUE_URL, "http://127.0.0.1:9/q"),
        (STRIPE_REQUESTS_PER_SECOND, "7.5"),
    ]);
    let cfg = ConsumerConfig::from_env(&env(&vars)).unwrap();
    assert_eq!(cfg.dead_letter_queue_url.as_deref(), Some("http://127.0.0.1:9/dlq"));
    assert_eq!(cfg.cursor_table.as_deref(), Some("cursors"));
    assert_eq!(cfg.queue_url.as_deref(), Some("http://127.0.0.1:9/q"), "the queue units and copies go back on");
    assert_eq!(cfg.stripe.requests_per_second, Some(7.5), "the consumer's Stripe budget can be set too");
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("cfg_secret") && !shown.contains("cfg-secret"), "Debug prints no secret: {shown}");
}

#[test]
fn the_consumer_fails_fast_naming_the_variable() {
    for missing in [DEDUP_TABLE, STRIPE_SECRET_KEY, BREVO_API_KEY] {
        let vars: Vec<_> = CONSUMER.iter().copied().filter(|(k, _)| *k != missing).collect();
        let e = ConsumerConfig::from_env(&env(&vars)).unwrap_err();
        assert_eq!(e.to_string(), format!("{missing} is not set"));
    }
    let mut vars = CONSUMER.to_vec();
    vars.push((STRIPE_API_BASE, "ftp://stripe"));
    let e = ConsumerConfig::from_env(&env(&vars)).unwrap_err();
    assert!(e.to_string().starts_with(STRIPE_API_BASE), "a bad base URL is found at start-up: {e}");
}

#[test]
fn the_yaml_stripe_key_wins_for_the_consumer_and_the_poller() {
    let file = yaml_file("    secret_key: sk_test_from_yaml\n");
    let path = file.path().to_str().unwrap();
    let mut vars = CONSUMER.to_vec();
    vars.push((CONNECTOR_CONFIG, path));
    assert_eq!(value(&ConsumerConfig::from_env(&env(&vars)).unwrap().stripe.secret_key), "sk_test_from_yaml");
    let mut vars = POLLER.to_vec();
    vars.push((CONNECTOR_CONFIG, path));
    assert_eq!(value(&PollerConfig::from_env(&env(&vars)).unwrap().stripe.secret_key), "sk_test_from_yaml");
}

#[test]
fn the_poller_reads_its_queue_table_key_and_budget() {
    let cfg = PollerConfig::from_env(&env(&POLLER)).unwrap();
    assert_eq!((cfg.queue_url.as_str(), cfg.cursor_table.as_str()), ("http://127.0.0.1:9/q", "cursors"));
    assert_eq!(cfg.stripe.requests_per_second, None);
    let mut vars = POLLER.to_vec();
    vars.push((STRIPE_REQUESTS_PER_SECOND, "12"));
    assert_eq!(PollerConfig::from_env(&env(&vars)).unwrap().stripe.requests_per_second, Some(12.0));
}

#[test]
fn the_poller_fails_fast_naming_the_variable() {
    for missing in [QUEUE_URL, CURSOR_TABLE, STRIPE_SECRET_KEY] {
        let vars: Vec<_> = POLLER.iter().copied().filter(|(k, _)| *k != missing).collect();
        let e = PollerConfig::from_env(&env(&vars)).unwrap_err();
        assert_eq!(e.to_string(), format!("{missing} is not set"));
    }
    let mut vars = POLLER.to_vec();
    vars.push((STRIPE_REQUESTS_PER_SECOND, "-3"));
    let e = PollerConfig::from_env(&env(&vars)).unwrap_err().to_string();
    assert!(e.contains(STRIPE_REQUESTS_PER_SECOND) && e.contains("positive"), "{e}");
    assert!(!e.contains("cfg_secret"));
}

#[tokio::test]
async fn a_key_held_in_the_environment_loads_without_aws() {
    let cfg = PollerConfig::from_env(&env(&POLLER)).unwrap();
    let key = cfg.stripe.load_key(None).await.unwrap();
    assert_eq!(key.expose_secret(), "sk_test_cfg_secret");
    assert!(cfg.stripe_client(key).is_ok());
    let arn = env(&[(QUEUE_URL, "q"), (CURSOR_TABLE, "c"), ("STRIPE_SECRET_KEY_ARN", "arn:aws:secretsmanager:x")]);
    let e = PollerConfig::from_env(&arn).unwrap().stripe.load_key(None).await.unwrap_err();
    assert_eq!(e.kind(), "SecretUnavailable");
    assert!(e.to_string().contains(STRIPE_SECRET_KEY), "{e}");
}

/// The deployed consumer's and poller's variables for the budgets, as the template sets them.
const SHARED_BUDGET: [(&str, &str); 2] = [(STRIPE_ACCOUNT_REQUESTS_PER_SECOND, "20"), (CONSUMER_MAX_CONCURRENCY, "2")];

fn key() -> SecretString {
    SecretString::from("sk_test_cfg_secret".to_owned())
}

#[test]
fn deployed_the_poller_takes_a_tenth_of_the_stripe_budget_and_each_consumer_half_the_rest() {
    let mut vars = POLLER.to_vec();
    vars.extend(SHARED_BUDGET);
    let poller = PollerConfig::from_env(&env(&vars)).unwrap().stripe_client(key()).unwrap();
    let mut vars = CONSUMER.to_vec();
    vars.extend(SHARED_BUDGET);
    let cfg = ConsumerConfig::from_env(&env(&vars)).unwrap();
    let consumer = cfg.stripe.client(key()).unwrap();
    for (c, rps) in [(&poller, 2.0), (&consumer, 9.0)] {
        let (rate, burst) = c.budget();
        assert!((rate.unwrap() - rps).abs() < 1e-9, "{rate:?}");
        assert_eq!(burst, 1, "no saved-up requests: together they keep to 20 in every second");
    }
    // Without the figures a lone process keeps the client's default.
    let alone = ConsumerConfig::from_env(&env(&CONSUMER)).unwrap().stripe.client(key()).unwrap();
    assert_eq!(alone.budget(), (Some(crate::adapters::stripe::DEFAULT_TEST_RPS), 20));
}

#[test]
fn the_process_budget_still_wins_over_the_account_share() {
    let mut vars = POLLER.to_vec();
    vars.extend(SHARED_BUDGET);
    vars.push((STRIPE_REQUESTS_PER_SECOND, "9"));
    let c = PollerConfig::from_env(&env(&vars)).unwrap().stripe_client(key()).unwrap();
    assert_eq!(c.budget(), (Some(9.0), 9), "this process's own budget, undivided, as before");
}

#[test]
fn deployed_each_consumer_paces_brevo_at_its_share_of_the_configured_budget() {
    let mut vars = CONSUMER.to_vec();
    vars.extend(SHARED_BUDGET);
    let cfg = ConsumerConfig::from_env(&env(&vars)).unwrap();
    assert_eq!(cfg.brevo.instances, budget::Instances::Deployed { consumers: 2 });
    let brevo = cfg.brevo.client(SecretString::from("xkeysib-x".to_owned()), &cfg.settings).unwrap();
    for (family, rps) in [(Family::Contacts, 4.0), (Family::Events, 4.0), (Family::Orders, 2.0)] {
        let bucket = brevo.limiter(family);
        assert_eq!((bucket.rate(), bucket.burst()), (Some(rps), 1), "{family:?}: half of 80 % of the General plan");
    }
    let bad = [(CONSUMER_MAX_CONCURRENCY, "none")];
    let mut vars = CONSUMER.to_vec();
    vars.extend(bad);
    let e = ConsumerConfig::from_env(&env(&vars)).unwrap_err().to_string();
    assert!(e.starts_with(CONSUMER_MAX_CONCURRENCY), "{e}");
}
