//! The connector's YAML config (CONTRACT.md "Config file"): which Stripe
//! resources to sync, the reporting currency, Brevo list ids, the field
//! mapping, the Brevo events to send, and optional Brevo client knobs.
//!
//! ```yaml
//! connectors:
//!   stripe: { …the CONTRACT's keys…, split_name: true }
//!   brevo:                      # optional, every key optional
//!     rate_limits: {contacts_rps: 8, events_rps: 8, orders_rps: 4}
//!     ecommerce_orders: false
//!     import_threshold: 10
//!     import_check_delay: 60s   # first look at an import's outcome (≤ 15m)
//! ```
//!
//! - `${VAR}` is replaced from an [`EnvSource`] before parsing (not inside
//!   `#` comments; `$${` writes a literal `${`); a variable that is unset or
//!   blank is an error naming it. Inside quotes the value is escaped, so a
//!   secret cannot break the YAML.
//! - Unknown keys and wrong types are errors naming the key's dotted path,
//!   e.g. `connectors.stripe.lists.subscribers: invalid type: …`.
//! - Keys left out take the built-in default ([`Settings::default`]): the
//!   CONTRACT example, except that secrets are `None` (they then come from
//!   `STRIPE_SECRET_KEY`/`STRIPE_WEBHOOK_SECRET`/`BREVO_API_KEY`, see
//!   [`crate::config`]) and list ids are `None` (no list is touched until
//!   one is configured: the example's 20/21/22 belong to someone's account).
//! - Secrets are [`SecretString`]s: `Debug` prints `[REDACTED]`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::config::{self, ConfigError, EnvSource};

/// Standard customer fields a `field_mapping` key may name.
pub const STANDARD_FIELDS: [&str; 5] = ["email", "name", "first_name", "last_name", "phone"];

/// Metric fields a `field_mapping` key may name (CONTRACT "Metrics").
pub const METRIC_FIELDS: [&str; 11] = [
    "total_spent",
    "payment_count",
    "last_payment_date",
    "average_order_value",
    "lifetime_value",
    "subscription_status",
    "plan_name",
    "mrr",
    "subscription_start",
    "refunded",
    "pay_later_used",
];

/// Prefix of `field_mapping` keys that copy a customer metadata value.
pub const METADATA_PREFIX: &str = "metadata.";

/// The CONTRACT example's field mapping.
pub const DEFAULT_FIELD_MAPPING: [(&str, &str); 13] = [
    ("email", "email"),
    ("name", "FULLNAME"),
    ("phone", "SMS"),
    ("total_spent", "TOTAL_SPENT"),
    ("payment_count", "PAYMENT_COUNT"),
    ("last_payment_date", "LAST_PAYMENT_DATE"),
    ("average_order_value", "AOV"),
    ("lifetime_value", "LTV"),
    ("subscription_status", "SUB_STATUS"),
    ("plan_name", "PLAN_NAME"),
    ("mrr", "MONTHLY_REVENUE"),
    ("subscription_start", "SUB_START_DATE"),
    ("metadata.customer_tier", "VIP_TIER"),
];

/// The CONTRACT example's events.
pub const DEFAULT_EVENTS: [&str; 10] = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "invoice.payment_failed",
    "checkout.session.expired",
];

/// Default `event_max_age`: 24 h.
pub const DEFAULT_EVENT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Brevo attributes FIRSTNAME/LASTNAME, filled from `name` when `split_name`.
pub const FIRSTNAME: &str = "FIRSTNAME";
pub const LASTNAME: &str = "LASTNAME";

/// The whole config.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `connectors.stripe`
    pub stripe: StripeSettings,
    /// `connectors.brevo` (optional section)
    pub brevo: BrevoSettings,
}

/// `connectors.stripe`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeSettings {
    pub enabled: bool,
    /// `None` when absent or blank: then `STRIPE_SECRET_KEY` applies.
    #[serde(deserialize_with = "secret")]
    pub secret_key: Option<SecretString>,
    /// `None` when absent or blank: then `STRIPE_WEBHOOK_SECRET` applies.
    #[serde(deserialize_with = "secret")]
    pub webhook_secret: Option<SecretString>,
    /// Verbose logs of each event's id/type/outcome (never bodies or PII).
    pub debug: bool,
    pub log_level: String,
    pub log_webhooks: bool,
    pub sync: SyncSettings,
    /// Earliest creation date a backfill enumerates (metrics ignore it).
    #[serde(deserialize_with = "date")]
    pub since: Option<time::Date>,
    /// Lower-case ISO code.
    #[serde(deserialize_with = "currency")]
    pub reporting_currency: String,
    pub lists: ListIds,
    /// Field key (`name`, `mrr`, `metadata.tier`…) → Brevo attribute.
    pub field_mapping: BTreeMap<String, String>,
    /// Also fill FIRSTNAME/LASTNAME from `name`, split on the last space
    /// (overridable with `first_name:`/`last_name:` keys). Default true.
    pub split_name: bool,
    /// Events older than this when processed send no Brevo event.
    #[serde(deserialize_with = "duration")]
    pub event_max_age: Duration,
    /// Stripe event types that become Brevo events.
    pub events: Vec<String>,
}

impl Default for StripeSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            secret_key: None,
            webhook_secret: None,
            debug: false,
            log_level: "info".to_owned(),
            log_webhooks: false,
            sync: SyncSettings::default(),
            since: None,
            reporting_currency: "usd".to_owned(),
            lists: ListIds::default(),
            field_mapping: DEFAULT_FIELD_MAPPING.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            split_name: true,
            event_max_age: DEFAULT_EVENT_MAX_AGE,
            events: DEFAULT_EVENTS.iter().map(|e| (*e).to_owned()).collect(),
        }
    }
}

impl StripeSettings {
    /// True when `event_type` is in `events`.
    pub fn sends_event(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == event_type)
    }

    /// `event_max_age` in whole seconds.
    pub fn event_max_age_secs(&self) -> i64 {
        i64::try_from(self.event_max_age.as_secs()).unwrap_or(i64::MAX)
    }
}

/// `connectors.stripe.sync`: which resources the poller/backfill reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    pub customers: bool,
    pub payments: bool,
    pub subscriptions: bool,
    pub invoices: bool,
    pub products: bool,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self { customers: true, payments: true, subscriptions: true, invoices: true, products: true }
    }
}

/// `connectors.stripe.lists`: Brevo list ids; `None` = not managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListIds {
    #[serde(deserialize_with = "list_id")]
    pub all_customers: Option<i64>,
    #[serde(deserialize_with = "list_id")]
    pub subscribers: Option<i64>,
    #[serde(deserialize_with = "list_id")]
    pub churned: Option<i64>,
}

impl ListIds {
    /// Every configured list id.
    pub fn all(&self) -> Vec<i64> {
        [self.all_customers, self.subscribers, self.churned].into_iter().flatten().collect()
    }
}

/// `connectors.brevo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrevoSettings {
    pub rate_limits: RateLimits,
    /// Also send eCommerce orders (`/v3/orders/status`).
    pub ecommerce_orders: bool,
    /// From this many contacts in one batch on, use the asynchronous
    /// `/v3/contacts/import` instead of one `POST /v3/contacts` each.
    pub import_threshold: usize,
    /// How long after an import its outcome is first looked at (later looks
    /// back off, doubling up to 15 minutes): Brevo applies an import's rows
    /// asynchronously, and its process status is limited to 100 requests an
    /// hour. At most 15 minutes (SQS's longest message delay).
    #[serde(deserialize_with = "duration")]
    pub import_check_delay: Duration,
}

/// Default `import_threshold`.
pub const DEFAULT_IMPORT_THRESHOLD: usize = 10;
/// Default `import_check_delay`: 60 s.
pub const DEFAULT_IMPORT_CHECK_DELAY: Duration = Duration::from_secs(60);
/// SQS's longest `DelaySeconds`
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).
pub const MAX_QUEUE_DELAY_SECS: u32 = 900;

impl Default for BrevoSettings {
    fn default() -> Self {
        Self {
            rate_limits: RateLimits::default(),
            ecommerce_orders: false,
            import_threshold: DEFAULT_IMPORT_THRESHOLD,
            import_check_delay: DEFAULT_IMPORT_CHECK_DELAY,
        }
    }
}

/// `connectors.brevo.rate_limits`, requests per second: the connector's
/// budget on the Brevo account, **all consumer instances together** (Brevo's
/// limits are per account); each instance paces itself at its share
/// (`wiring::budget::brevo_limits`). The default is 80 % of the General
/// plan's limits (contacts 10, events 10, orders 5 rps:
/// <https://developers.brevo.com/docs/api-limits>); on a bigger plan raise
/// it (Professional 20/20/10, Enterprise 60/60/15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    #[serde(deserialize_with = "rps")]
    pub contacts_rps: u32,
    #[serde(deserialize_with = "rps")]
    pub events_rps: u32,
    #[serde(deserialize_with = "rps")]
    pub orders_rps: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { contacts_rps: 8, events_rps: 8, orders_rps: 4 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoot {
    connectors: Connectors,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Connectors {
    stripe: StripeSettings,
    #[serde(default)]
    brevo: BrevoSettings,
}

impl Settings {
    /// Reads the YAML file at `path`, `${VAR}`s from `env`.
    pub fn load(path: &Path, env: &dyn EnvSource) -> Result<Settings, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: origin.clone(), reason: format!("cannot read: {e}") })?;
        Self::parse(&text, env, &origin)
    }

    /// Parses YAML text (`${VAR}`s from `env`); errors name it `(inline)`.
    pub fn from_yaml(text: &str, env: &dyn EnvSource) -> Result<Settings, ConfigError> {
        Self::parse(text, env, "(inline)")
    }

    /// The file named by `CONNECTOR_CONFIG`, or the built-in default.
    pub fn from_env(env: &dyn EnvSource) -> Result<Settings, ConfigError> {
        match config::optional(env, config::CONNECTOR_CONFIG) {
            Some(path) => Self::load(Path::new(&path), env),
            None => Ok(Settings::default()),
        }
    }

    fn parse(text: &str, env: &dyn EnvSource, origin: &str) -> Result<Settings, ConfigError> {
        let err = |reason: String| ConfigError::File { path: origin.to_owned(), reason };
        let text = substitute_env(text, env).map_err(err)?;
        let root: FileRoot = serde_norway::from_str(&text).map_err(|e| err(describe_yaml_error(&e)))?;
        let settings = Settings { stripe: root.connectors.stripe, brevo: root.connectors.brevo };
        settings.validate().map_err(err)?;
        Ok(settings)
    }

    /// Checks what serde cannot: mapping keys and attribute names, event
    /// types, distinct list ids.
    fn validate(&self) -> Result<(), String> {
        let s = &self.stripe;
        for (key, attribute) in &s.field_mapping {
            let path = format!("connectors.stripe.field_mapping.{key}");
            let known = STANDARD_FIELDS.contains(&key.as_str())
                || METRIC_FIELDS.contains(&key.as_str())
                || key.strip_prefix(METADATA_PREFIX).is_some_and(|k| !k.is_empty());
            if !known {
                return Err(format!(
                    "{path}: unknown field `{key}`, expected one of {}, {} or metadata.<key>",
                    STANDARD_FIELDS.join(", "),
                    METRIC_FIELDS.join(", ")
                ));
            }
            if !valid_attribute_name(attribute) {
                return Err(format!(
                    "{path}: `{attribute}` is not a Brevo attribute name (a letter, then letters, digits or _)"
                ));
            }
        }
        for (i, event) in s.events.iter().enumerate() {
            let ok = !event.is_empty()
                && event.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'));
            if !ok {
                return Err(format!("connectors.stripe.events[{i}]: `{event}` is not a Stripe event type"));
            }
        }
        let mut seen = BTreeSet::new();
        for (name, id) in [
            ("all_customers", s.lists.all_customers),
            ("subscribers", s.lists.subscribers),
            ("churned", s.lists.churned),
        ] {
            if let Some(id) = id {
                if !seen.insert(id) {
                    return Err(format!(
                        "connectors.stripe.lists.{name}: list {id} is used twice; the lists must differ"
                    ));
                }
            }
        }
        if self.brevo.import_check_delay.as_secs() > u64::from(MAX_QUEUE_DELAY_SECS) {
            return Err("connectors.brevo.import_check_delay: at most 15m (SQS's longest delay)".to_owned());
        }
        Ok(())
    }
}

fn valid_attribute_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic()) && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// serde_norway's message already starts with the dotted path of the value
/// at fault; for an unknown key it names the parent, so the key is appended.
fn describe_yaml_error(e: &serde_norway::Error) -> String {
    let msg = e.to_string();
    let marker = "unknown field `";
    if let Some(pos) = msg.find(marker) {
        let rest = &msg[pos + marker.len()..];
        if let Some(end) = rest.find('`') {
            let field = &rest[..end];
            let prefix = &msg[..pos];
            return match prefix.strip_suffix(": ") {
                Some(parent) => format!("{parent}.{field}: {}", &msg[pos..]),
                None if prefix.is_empty() => format!("{field}: {msg}"),
                None => msg.clone(),
            };
        }
    }
    msg
}

/// Replaces `${VAR}` from `env`, line by line, outside `#` comments; `$${`
/// is a literal `${`. Inside double quotes the value is escaped for YAML,
/// inside single quotes `'` is doubled.
fn substitute_env(text: &str, env: &dyn EnvSource) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let mut quote: Option<u8> = None;
        let mut escaped = false;
        let bytes = line.as_bytes();
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if quote == Some(b'"') && escaped {
                escaped = false;
                i += 1;
                continue;
            }
            match b {
                b'\\' if quote == Some(b'"') => escaped = true,
                b'"' | b'\'' if quote.is_none() => quote = Some(b),
                b'"' | b'\'' if quote == Some(b) => quote = None,
                b'#' if quote.is_none() && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => break,
                b'$' if line[i..].starts_with("$${") => {
                    out.push_str(&line[copied..i]);
                    out.push_str("${");
                    i += 3;
                    copied = i;
                    continue;
                }
                b'$' if line[i..].starts_with("${") => {
                    let Some(len) = line[i + 2..].find('}') else {
                        return Err(format!("line {line_no}: `${{` without a closing `}}`"));
                    };
                    let name = &line[i + 2..i + 2 + len];
                    if !valid_var_name(name) {
                        return Err(format!("line {line_no}: `${{{name}}}` is not a valid variable reference"));
                    }
                    // A secret deployed as `{NAME}_ARN`/`{NAME}_PARAM` is read from AWS
                    // later: the placeholder then stands for "from the environment".
                    let deferred = config::optional(env, &format!("{name}{}", config::ARN_SUFFIX)).is_some()
                        || config::optional(env, &format!("{name}{}", config::PARAM_SUFFIX)).is_some();
                    let value = match config::optional(env, name) {
                        Some(v) => v,
                        None if deferred => String::new(),
                        None => {
                            return Err(format!(
                                "line {line_no}: environment variable {name} (from ${{{name}}}) is not set"
                            ))
                        }
                    };
                    out.push_str(&line[copied..i]);
                    match quote {
                        Some(b'"') => {
                            for c in value.chars() {
                                match c {
                                    '"' => out.push_str("\\\""),
                                    '\\' => out.push_str("\\\\"),
                                    '\n' => out.push_str("\\n"),
                                    c => out.push(c),
                                }
                            }
                        }
                        Some(_) => out.push_str(&value.replace('\'', "''")),
                        None => out.push_str(&value),
                    }
                    i += 2 + len + 1;
                    copied = i;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        out.push_str(&line[copied..]);
    }
    Ok(out)
}

fn valid_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    Ok(raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).map(SecretString::from))
}

/// Validates inside the visitor, so serde_norway's error carries the path of
/// the value itself (an error raised after the value was read names its
/// parent instead).
struct Checked<F>(&'static str, F);

impl<'de, T, F> Visitor<'de> for Checked<F>
where
    F: Fn(Scalar<'_>) -> Result<Option<T>, String>,
{
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        (self.1)(Scalar::Str(v)).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        (self.1)(Scalar::Int(i128::from(v))).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        (self.1)(Scalar::Int(i128::from(v))).map_err(E::custom)
    }
}

/// A scalar handed to a [`Checked`] validator.
enum Scalar<'a> {
    Str(&'a str),
    Int(i128),
}

impl Scalar<'_> {
    fn describe(&self) -> String {
        match self {
            Scalar::Str(s) => format!("invalid type: string `{s}`"),
            Scalar::Int(n) => format!("invalid type: integer `{n}`"),
        }
    }
}

fn date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<time::Date>, D::Error> {
    d.deserialize_any(Checked("a date (YYYY-MM-DD)", |v: Scalar<'_>| match v {
        Scalar::Str(raw) if raw.trim().is_empty() => Ok(None),
        Scalar::Str(raw) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(raw.trim(), &format).map(Some).map_err(|_| format!("`{raw}` is not a date (YYYY-MM-DD)"))
        }
        other => Err(format!("{}, expected a date (YYYY-MM-DD)", other.describe())),
    }))
}

fn currency<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let code = d.deserialize_any(Checked("a 3-letter ISO currency code", |v: Scalar<'_>| match v {
        Scalar::Str(raw) => {
            let code = raw.trim().to_ascii_lowercase();
            if code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase()) {
                Ok(Some(code))
            } else {
                Err(format!("`{raw}` is not a 3-letter ISO currency code"))
            }
        }
        other => Err(format!("{}, expected a 3-letter ISO currency code", other.describe())),
    }))?;
    code.ok_or_else(|| de::Error::custom("a currency code is required"))
}

fn list_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(Checked("a Brevo list id", |v: Scalar<'_>| match v {
        Scalar::Int(n) if n > 0 => i64::try_from(n).map(Some).map_err(|_| format!("list id {n} is too large")),
        Scalar::Int(n) => Err(format!("list id {n} must be a positive integer")),
        other => Err(format!("{}, expected a Brevo list id (a positive integer)", other.describe())),
    }))
}

fn rps<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = d.deserialize_any(Checked("requests per second", |v: Scalar<'_>| match v {
        Scalar::Int(n) if n >= 1 => u32::try_from(n).map(Some).map_err(|_| format!("{n} is too large")),
        Scalar::Int(_) => Err("must be at least 1 request per second".to_owned()),
        other => Err(format!("{}, expected requests per second", other.describe())),
    }))?;
    n.ok_or_else(|| de::Error::custom("a number of requests per second is required"))
}

/// Parses `90s`, `30m`, `24h`, `7d`, `2w`, combinations like `1h30m`, or a
/// bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add(u64::from(digit))?);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if number.is_some() {
        return None;
    }
    Some(Duration::from_secs(total))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as 30m, 24h or 7d")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v).map(Duration::from_secs).map_err(|_| E::custom("a duration cannot be negative"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).ok_or_else(|| E::custom(format!("`{v}` is not a duration such as 30m, 24h or 7d")))
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    /// The CONTRACT's "Config file" example, verbatim.
    const CONTRACT_EXAMPLE: &str = r#"
connectors:
  stripe:
    enabled: true
    secret_key: "${STRIPE_SECRET_KEY}"
    webhook_secret: "${STRIPE_WEBHOOK_SECRET}"
    debug: false                # true: verbose logs of each event's id/type/outcome (never bodies or PII)
    log_level: info
    log_webhooks: false
    sync: {customers: true, payments: true, subscriptions: true, invoices: true, products: true}
    since: "2023-01-01"
    reporting_currency: usd
    lists: {all_customers: 20, subscribers: 21, churned: 22}
    field_mapping:
      email: email
      name: FULLNAME            # also FIRSTNAME/LASTNAME split by default
      phone: SMS
      total_spent: TOTAL_SPENT
      payment_count: PAYMENT_COUNT
      last_payment_date: LAST_PAYMENT_DATE
      average_order_value: AOV
      lifetime_value: LTV
      subscription_status: SUB_STATUS
      plan_name: PLAN_NAME
      mrr: MONTHLY_REVENUE
      subscription_start: SUB_START_DATE
      metadata.customer_tier: VIP_TIER
    event_max_age: 24h
    events: [payment_intent.succeeded, payment_intent.payment_failed, charge.refunded,
             charge.dispute.created, customer.subscription.created,
             customer.subscription.updated, customer.subscription.deleted,
             customer.subscription.trial_will_end, invoice.payment_failed,
             checkout.session.expired]
"#;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn secrets() -> HashMap<String, String> {
        env(&[("STRIPE_SECRET_KEY", "sk_test_abc"), ("STRIPE_WEBHOOK_SECRET", "whsec_123")])
    }

    fn reason(e: ConfigError) -> String {
        match e {
            ConfigError::File { reason, .. } => reason,
            other => panic!("expected a File error, got {other:?}"),
        }
    }

    fn minimal(stripe_body: &str) -> String {
        format!("connectors:\n  stripe:\n{stripe_body}")
    }

    #[test]
    fn the_contract_example_parses() {
        let s = Settings::from_yaml(CONTRACT_EXAMPLE, &secrets()).unwrap();
        let st = &s.stripe;
        assert!(st.enabled);
        assert_eq!(st.secret_key.as_ref().unwrap().expose_secret(), "sk_test_abc");
        assert_eq!(st.webhook_secret.as_ref().unwrap().expose_secret(), "whsec_123");
        assert!(!st.debug);
        assert_eq!(st.log_level, "info");
        assert_eq!(st.sync, SyncSettings::default());
        assert_eq!(st.since, Some(time::macros::date!(2023 - 01 - 01)));
        assert_eq!(st.reporting_currency, "usd");
        assert_eq!(st.lists, ListIds { all_customers: Some(20), subscribers: Some(21), churned: Some(22) });
        assert_eq!(st.field_mapping.len(), 13);
        assert_eq!(st.field_mapping["mrr"], "MONTHLY_REVENUE");
        assert_eq!(st.field_mapping["metadata.customer_tier"], "VIP_TIER");
        assert_eq!(st.event_max_age, Duration::from_secs(86_400));
        assert_eq!(st.events, DEFAULT_EVENTS.map(str::to_owned).to_vec());
        assert!(st.split_name);
        assert_eq!(s.brevo, BrevoSettings::default());
    }

    #[test]
    fn the_default_is_the_contract_example_without_secrets_or_lists() {
        let d = Settings::default();
        let example = Settings::from_yaml(CONTRACT_EXAMPLE, &secrets()).unwrap();
        assert!(d.stripe.secret_key.is_none() && d.stripe.webhook_secret.is_none());
        assert_eq!(d.stripe.lists, ListIds::default());
        assert_eq!(d.stripe.events, example.stripe.events);
        assert_eq!(d.stripe.event_max_age, example.stripe.event_max_age);
        assert_eq!(d.stripe.reporting_currency, "usd");
        assert_eq!(d.stripe.since, None);
        for (k, v) in &example.stripe.field_mapping {
            assert_eq!(d.stripe.field_mapping.get(k), Some(v), "{k}");
        }
        assert_eq!(d.stripe.field_mapping.len(), example.stripe.field_mapping.len());
        assert_eq!(d.brevo.rate_limits, RateLimits { contacts_rps: 8, events_rps: 8, orders_rps: 4 });
        assert!(!d.brevo.ecommerce_orders);
        assert_eq!(d.brevo.import_threshold, 10);
        // The built-in default passes its own validation.
        d.validate().unwrap();
    }

    #[test]
    fn keys_left_out_take_the_defaults() {
        let s = Settings::from_yaml(&minimal("    reporting_currency: EUR\n"), &env(&[])).unwrap();
        assert_eq!(s.stripe.reporting_currency, "eur");
        assert!(s.stripe.enabled);
        assert_eq!(s.stripe.events.len(), 10);
        assert!(s.stripe.secret_key.is_none());
        let s = Settings::from_yaml("connectors:\n  stripe: {}\n", &env(&[])).unwrap();
        assert_eq!(s.stripe.reporting_currency, "usd");
    }

    #[test]
    fn the_brevo_section_is_optional_and_partial() {
        let yaml =
            "connectors:\n  stripe: {}\n  brevo:\n    rate_limits: {events_rps: 5}\n    ecommerce_orders: true\n";
        let s = Settings::from_yaml(yaml, &env(&[])).unwrap();
        assert_eq!(s.brevo.rate_limits, RateLimits { contacts_rps: 8, events_rps: 5, orders_rps: 4 });
        assert!(s.brevo.ecommerce_orders);
        assert_eq!(s.brevo.import_threshold, DEFAULT_IMPORT_THRESHOLD);
        assert_eq!(s.brevo.import_check_delay, Duration::from_secs(60));
        let two = Settings::from_yaml(&format!("{yaml}    import_check_delay: 2m\n"), &env(&[])).unwrap();
        assert_eq!(two.brevo.import_check_delay, Duration::from_secs(120));
        let e = reason(Settings::from_yaml(&format!("{yaml}    import_check_delay: 16m\n"), &env(&[])).unwrap_err());
        assert!(e.starts_with("connectors.brevo.import_check_delay: "), "{e}");
        let e = reason(Settings::from_yaml(&format!("{yaml}    import_threshold: -1\n"), &env(&[])).unwrap_err());
        assert!(e.starts_with("connectors.brevo.import_threshold: "), "{e}");
        let zero = "connectors:\n  stripe: {}\n  brevo: {rate_limits: {orders_rps: 0}}\n";
        let e = reason(Settings::from_yaml(zero, &env(&[])).unwrap_err());
        assert!(e.starts_with("connectors.brevo.rate_limits.orders_rps: "), "{e}");
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_its_path() {
        let yaml = CONTRACT_EXAMPLE.replace("    log_webhooks: false\n", "    log_webhook: false\n");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.log_webhook: unknown field `log_webhook`"), "{e}");
        let yaml = CONTRACT_EXAMPLE.replace("churned: 22}", "churned: 22, vip: 23}");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.lists.vip: unknown field"), "{e}");
        let e = reason(Settings::from_yaml("connectors: {stripe: {}}\nextra: 1\n", &env(&[])).unwrap_err());
        assert!(e.starts_with("extra: unknown field"), "{e}");
        let e = reason(Settings::from_yaml("connectors: {stripe: {}, hubspot: {}}\n", &env(&[])).unwrap_err());
        assert!(e.starts_with("connectors.hubspot: unknown field"), "{e}");
    }

    #[test]
    fn a_wrong_type_is_an_error_naming_its_path() {
        let yaml = CONTRACT_EXAMPLE.replace("subscribers: 21", "subscribers: twenty-one");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.lists.subscribers: invalid type"), "{e}");
        let yaml = CONTRACT_EXAMPLE.replace("    debug: false ", "    debug: sometimes ");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.debug: "), "{e}");
        let yaml = CONTRACT_EXAMPLE.replace("event_max_age: 24h", "event_max_age: soon");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.event_max_age: "), "{e}");
        let yaml = CONTRACT_EXAMPLE.replace("since: \"2023-01-01\"", "since: \"01/01/2023\"");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.since: "), "{e}");
        let yaml = CONTRACT_EXAMPLE.replace("reporting_currency: usd", "reporting_currency: dollars");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.reporting_currency: "), "{e}");
        let yaml = CONTRACT_EXAMPLE.replace("churned: 22", "churned: -22");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.lists.churned: "), "{e}");
    }

    #[test]
    fn an_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connector.yaml");
        std::fs::write(&path, "connectors: {stripe: {debug: 3}}\n").unwrap();
        let e = Settings::load(&path, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("connector.yaml") && e.contains("connectors.stripe.debug"), "{e}");
        let e = Settings::load(&dir.path().join("missing.yaml"), &env(&[])).unwrap_err().to_string();
        assert!(e.contains("missing.yaml") && e.contains("cannot read"), "{e}");
    }

    #[test]
    fn unknown_mapping_keys_and_bad_attribute_names_are_errors() {
        let yaml = CONTRACT_EXAMPLE.replace("      mrr: MONTHLY_REVENUE", "      mrrr: MONTHLY_REVENUE");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.field_mapping.mrrr: unknown field"), "{e}");
        let yaml = CONTRACT_EXAMPLE.replace("      plan_name: PLAN_NAME", "      plan_name: PLAN NAME");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.field_mapping.plan_name: "), "{e}");
        let yaml = CONTRACT_EXAMPLE.replace("metadata.customer_tier", "metadata.");
        assert!(Settings::from_yaml(&yaml, &secrets()).is_err());
    }

    #[test]
    fn a_list_used_twice_is_an_error() {
        let yaml = CONTRACT_EXAMPLE.replace("churned: 22", "churned: 21");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.lists.churned: "), "{e}");
    }

    #[test]
    fn a_malformed_event_type_is_an_error() {
        let yaml = CONTRACT_EXAMPLE.replace("charge.refunded,", "charge refunded,");
        let e = reason(Settings::from_yaml(&yaml, &secrets()).unwrap_err());
        assert!(e.starts_with("connectors.stripe.events[2]: "), "{e}");
    }

    #[test]
    fn variables_are_substituted() {
        let yaml =
            minimal("    secret_key: ${KEY}\n    reporting_currency: \"${CUR}\"\n    lists: {subscribers: ${SUBS}}\n");
        let s = Settings::from_yaml(&yaml, &env(&[("KEY", "rk_live_9"), ("CUR", "EUR"), ("SUBS", "7")])).unwrap();
        assert_eq!(s.stripe.secret_key.unwrap().expose_secret(), "rk_live_9");
        assert_eq!(s.stripe.reporting_currency, "eur");
        assert_eq!(s.stripe.lists.subscribers, Some(7));
    }

    #[test]
    fn a_missing_variable_is_an_error_naming_it() {
        let e = Settings::from_yaml(CONTRACT_EXAMPLE, &env(&[("STRIPE_SECRET_KEY", "sk_test_1")])).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("STRIPE_WEBHOOK_SECRET"), "{text}");
        assert!(text.contains("line 6"), "{text}");
        // Blank counts as missing.
        let e =
            Settings::from_yaml(CONTRACT_EXAMPLE, &env(&[("STRIPE_SECRET_KEY", " "), ("STRIPE_WEBHOOK_SECRET", "w")]))
                .unwrap_err();
        assert!(e.to_string().contains("STRIPE_SECRET_KEY"), "{e}");
    }

    #[test]
    fn comments_and_escapes_are_not_substituted() {
        let yaml = minimal("    log_level: \"$${LITERAL}\"   # uses ${NOT_SET}\n# ${ALSO_NOT_SET}\n");
        let s = Settings::from_yaml(&yaml, &env(&[])).unwrap();
        assert_eq!(s.stripe.log_level, "${LITERAL}");
    }

    #[test]
    fn substituted_values_cannot_break_the_yaml() {
        let nasty = "a\"b\\c' #d: e";
        let yaml = minimal("    secret_key: \"${S}\"\n    webhook_secret: '${S}'\n");
        let s = Settings::from_yaml(&yaml, &env(&[("S", nasty)])).unwrap();
        assert_eq!(s.stripe.secret_key.unwrap().expose_secret(), nasty);
        assert_eq!(s.stripe.webhook_secret.unwrap().expose_secret(), nasty);
    }

    #[test]
    fn malformed_variable_references_are_errors() {
        for body in ["    log_level: ${UNCLOSED\n", "    log_level: ${1BAD}\n", "    log_level: ${}\n"] {
            assert!(Settings::from_yaml(&minimal(body), &env(&[("UNCLOSED", "x")])).is_err(), "{body}");
        }
    }

    #[test]
    fn a_secret_deployed_as_an_arn_leaves_its_placeholder_to_the_environment() {
        let yaml = minimal("    secret_key: \"${STRIPE_SECRET_KEY}\"\n");
        let s = Settings::from_yaml(&yaml, &env(&[("STRIPE_SECRET_KEY_ARN", "arn:aws:secretsmanager:x")])).unwrap();
        assert!(s.stripe.secret_key.is_none(), "blank → the key comes from STRIPE_SECRET_KEY_ARN");
        assert!(Settings::from_yaml(&yaml, &env(&[])).is_err(), "neither the variable nor an ARN: an error");
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::from_yaml(CONTRACT_EXAMPLE, &secrets()).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("sk_test_abc") && !debug.contains("whsec_123"), "{debug}");
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn durations_parse_in_human_units() {
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2w"), Some(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration("3600"), Some(Duration::from_secs(3600)));
        for bad in ["", "h", "24", "24x", "-1h", "1.5h", "24 h"] {
            if bad == "24" {
                continue;
            }
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let s = Settings::from_yaml(&minimal("    event_max_age: 3600\n"), &env(&[])).unwrap();
        assert_eq!(s.stripe.event_max_age_secs(), 3600);
    }

    #[test]
    fn from_env_uses_connector_config_or_the_default() {
        let s = Settings::from_env(&env(&[])).unwrap();
        assert_eq!(s.stripe.events.len(), 10);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "connectors: {stripe: {reporting_currency: gbp}}\n").unwrap();
        let s = Settings::from_env(&env(&[("CONNECTOR_CONFIG", path.to_str().unwrap())])).unwrap();
        assert_eq!(s.stripe.reporting_currency, "gbp");
        assert!(Settings::from_env(&env(&[("CONNECTOR_CONFIG", "/nonexistent/c.yaml")])).is_err());
    }

    #[test]
    fn sends_event_only_for_listed_types() {
        let s = Settings::default();
        assert!(s.stripe.sends_event("invoice.payment_failed"));
        assert!(!s.stripe.sends_event("invoice.paid"));
        assert_eq!(s.stripe.lists.all(), Vec::<i64>::new());
    }
}
