//! One customer's metrics from their Stripe charges and subscriptions,
//! exactly as CONTRACT.md "Metrics" and "Precisions" define them. Pure: the
//! caller fetches every charge and subscription of the customer (whatever
//! `since` says), with `balance_transaction` and `items.data.price.product`
//! expanded.
//!
//! Decisions the CONTRACT leaves open, made here:
//! - A charge in another currency with no usable rate (balance transaction
//!   not expanded, no `exchange_rate`, or settled in a third currency) is left
//!   out of `payment_count` as well as the sums, so `average_order_value`
//!   stays `total_spent / payment_count` over the same charges; it still
//!   counts for `last_payment_date` and `pay_later_used`, which are not
//!   amounts. It is listed in [`CustomerMetrics::excluded_charges`].
//! - "Newest" subscription: greatest `created`, then greatest id.
//! - `mrr` ignores discounts and taxes (list price × quantity). A price with
//!   no `unit_amount` uses `unit_amount_decimal`; with neither (tiered
//!   pricing) the item is left out and reported. Metered items are left out
//!   silently, as the CONTRACT says.

use std::cmp::Ordering;
use std::fmt;

use super::money::{self, Money, Rate};
use super::stripe::{Charge, Subscription, SubscriptionStatus};

/// `payment_method_details.type`s that are "pay later" methods.
pub const PAY_LATER_METHODS: [&str; 4] = ["klarna", "afterpay_clearpay", "affirm", "zip"];

/// Why a charge is left out of the sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeExclusion {
    /// In another currency, and `balance_transaction` is absent.
    NoBalanceTransaction,
    /// In another currency, and `balance_transaction` is only an id (the
    /// caller must expand it).
    BalanceTransactionNotExpanded,
    /// In another currency, and the balance transaction has no
    /// `exchange_rate`.
    NoExchangeRate,
    /// The `exchange_rate` is zero, negative or not finite.
    InvalidExchangeRate,
    /// Settled in a currency that is neither the charge's nor the reporting
    /// one, so the rate does not lead to the reporting currency.
    SettledInOtherCurrency(String),
}

impl fmt::Display for ChargeExclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBalanceTransaction => f.write_str("no balance transaction to take an exchange rate from"),
            Self::BalanceTransactionNotExpanded => f.write_str("balance transaction not expanded"),
            Self::NoExchangeRate => f.write_str("balance transaction has no exchange_rate"),
            Self::InvalidExchangeRate => f.write_str("balance transaction's exchange_rate is not a positive number"),
            Self::SettledInOtherCurrency(c) => write!(f, "settled in {c}, not the reporting currency"),
        }
    }
}

/// A charge left out of the sums, for the logs and `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedCharge {
    pub charge_id: String,
    pub currency: String,
    pub reason: ChargeExclusion,
}

/// Why a subscription (or one of its items) is left out of `mrr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionExclusion {
    /// Priced in another currency than the reporting one.
    OtherCurrency(String),
    /// An item without a price.
    NoPrice,
    /// An item whose price is not recurring.
    NotRecurring,
    /// An item whose price has neither `unit_amount` nor
    /// `unit_amount_decimal` (tiered pricing).
    NoUnitAmount,
    /// An interval other than day, week, month, year.
    UnknownInterval(String),
}

impl fmt::Display for SubscriptionExclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherCurrency(c) => write!(f, "priced in {c}, not the reporting currency"),
            Self::NoPrice => f.write_str("item has no price"),
            Self::NotRecurring => f.write_str("item's price is not recurring"),
            Self::NoUnitAmount => f.write_str("item's price has no unit amount (tiered pricing)"),
            Self::UnknownInterval(i) => write!(f, "unknown billing interval `{i}`"),
        }
    }
}

/// A subscription (or one item of it) left out of `mrr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedSubscription {
    pub subscription_id: String,
    /// `None` when the whole subscription is left out.
    pub item_id: Option<String>,
    pub reason: SubscriptionExclusion,
}

/// The exact sums behind the rounded figures, in the reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExactSums {
    pub total_spent: Money,
    pub refunded: Money,
    pub lifetime_value: Money,
    pub mrr: Money,
}

/// One customer's metrics. Money figures are major units of
/// `reporting_currency` rounded to 2 decimals (half away from zero) from the
/// exact sums in `exact`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerMetrics {
    /// Lower case.
    pub reporting_currency: String,
    pub payment_count: u64,
    pub total_spent: f64,
    pub refunded: f64,
    pub lifetime_value: f64,
    /// `None` when `payment_count` is 0.
    pub average_order_value: Option<f64>,
    /// `YYYY-MM-DD` (UTC) of the newest successful charge.
    pub last_payment_date: Option<String>,
    /// Unix seconds of that charge.
    pub last_payment_at: Option<i64>,
    pub mrr: f64,
    /// The newest subscription that is not `incomplete_expired`; `None` when
    /// there is none (then the subscription attributes stay unset).
    pub newest_subscription_id: Option<String>,
    pub subscription_status: Option<SubscriptionStatus>,
    pub plan_name: Option<String>,
    /// `YYYY-MM-DD` of its `start_date` (`created` when absent).
    pub subscription_start: Option<String>,
    pub pay_later_used: bool,
    /// Some subscription is `active`, `trialing` or `past_due`.
    pub is_subscriber: bool,
    /// Some subscription has a status other than `incomplete` /
    /// `incomplete_expired`.
    pub ever_subscribed: bool,
    pub exact: ExactSums,
    pub excluded_charges: Vec<ExcludedCharge>,
    pub excluded_subscriptions: Vec<ExcludedSubscription>,
}

/// `YYYY-MM-DD` (UTC) of a unix timestamp; `None` when out of range.
pub fn utc_date(unix: i64) -> Option<String> {
    let date = time::OffsetDateTime::from_unix_timestamp(unix).ok()?.date();
    Some(format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day()))
}

/// How a charge's amounts reach the reporting currency.
enum Conversion {
    Same,
    Rate(Rate),
}

fn conversion(charge: &Charge, reporting: &str) -> Result<Conversion, ChargeExclusion> {
    if money::same_currency(&charge.currency, reporting) {
        return Ok(Conversion::Same);
    }
    let bt = charge.balance_transaction.as_ref().ok_or(ChargeExclusion::NoBalanceTransaction)?;
    let bt = bt.as_object().ok_or(ChargeExclusion::BalanceTransactionNotExpanded)?;
    if !money::same_currency(&bt.currency, reporting) {
        return Err(ChargeExclusion::SettledInOtherCurrency(bt.currency.to_ascii_lowercase()));
    }
    let rate = bt.exchange_rate.ok_or(ChargeExclusion::NoExchangeRate)?;
    Rate::from_f64(rate).map(Conversion::Rate).ok_or(ChargeExclusion::InvalidExchangeRate)
}

fn to_reporting(amount: i64, currency: &str, conversion: &Conversion) -> Money {
    match conversion {
        Conversion::Same => Money::from_minor(amount, currency),
        Conversion::Rate(rate) => Money::convert(amount, currency, *rate),
    }
}

/// Months per billing interval as a fraction (numerator, denominator).
fn per_month(interval: &str) -> Option<(i128, i128)> {
    match interval {
        "day" => Some((365, 12)),
        "week" => Some((52, 12)),
        "month" => Some((1, 1)),
        "year" => Some((1, 12)),
        _ => None,
    }
}

fn newest_first(a: &Subscription, b: &Subscription) -> Ordering {
    a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id))
}

/// Computes one customer's metrics (CONTRACT "Metrics").
pub fn compute_metrics(
    charges: &[Charge],
    subscriptions: &[Subscription],
    reporting_currency: &str,
) -> CustomerMetrics {
    let reporting = reporting_currency.trim().to_ascii_lowercase();
    let mut m = CustomerMetrics { reporting_currency: reporting, ..CustomerMetrics::default() };
    let mut exact = ExactSums::default();

    for charge in charges {
        let captured = charge.captured_amount();
        if !charge.is_succeeded() || captured <= 0 {
            continue;
        }
        if m.last_payment_at.is_none_or(|t| charge.created > t) {
            m.last_payment_at = Some(charge.created);
        }
        if charge.payment_method_type().is_some_and(|t| PAY_LATER_METHODS.contains(&t)) {
            m.pay_later_used = true;
        }
        match conversion(charge, &m.reporting_currency) {
            Ok(conv) => {
                let spent = to_reporting(captured, &charge.currency, &conv);
                let refunded = to_reporting(charge.amount_refunded, &charge.currency, &conv);
                m.payment_count += 1;
                exact.total_spent += spent;
                exact.refunded += refunded;
                exact.lifetime_value += spent - refunded;
            }
            Err(reason) => m.excluded_charges.push(ExcludedCharge {
                charge_id: charge.id.clone(),
                currency: charge.currency.to_ascii_lowercase(),
                reason,
            }),
        }
    }
    m.last_payment_date = m.last_payment_at.and_then(utc_date);
    if m.payment_count > 0 {
        let count = i128::from(m.payment_count);
        m.average_order_value = Some(exact.total_spent.scaled(1, count).to_major_rounded_2dp());
    }

    for sub in subscriptions {
        match sub.status {
            SubscriptionStatus::Active | SubscriptionStatus::PastDue => {
                exact.mrr += subscription_mrr(sub, &m.reporting_currency, &mut m.excluded_subscriptions);
                m.is_subscriber = true;
                m.ever_subscribed = true;
            }
            SubscriptionStatus::Trialing => {
                m.is_subscriber = true;
                m.ever_subscribed = true;
            }
            SubscriptionStatus::Incomplete | SubscriptionStatus::IncompleteExpired => {}
            _ => m.ever_subscribed = true,
        }
    }

    let newest = subscriptions
        .iter()
        .filter(|s| s.status != SubscriptionStatus::IncompleteExpired)
        .max_by(|a, b| newest_first(a, b));
    if let Some(sub) = newest {
        m.newest_subscription_id = Some(sub.id.clone());
        m.subscription_status = Some(sub.status.clone());
        let plan = sub.items.data.first().and_then(|item| item.price.as_ref()).and_then(|price| {
            price.product_name().or_else(|| price.nickname.as_deref().map(str::trim).filter(|n| !n.is_empty()))
        });
        m.plan_name = plan.map(str::to_owned);
        m.subscription_start = utc_date(sub.start_date.unwrap_or(sub.created));
    }

    m.total_spent = exact.total_spent.to_major_rounded_2dp();
    m.refunded = exact.refunded.to_major_rounded_2dp();
    m.lifetime_value = exact.lifetime_value.to_major_rounded_2dp();
    m.mrr = exact.mrr.to_major_rounded_2dp();
    m.exact = exact;
    m
}

/// One active/past-due subscription's monthly amount in the reporting
/// currency; what it leaves out goes to `excluded`.
fn subscription_mrr(sub: &Subscription, reporting: &str, excluded: &mut Vec<ExcludedSubscription>) -> Money {
    let sub_currency = sub.currency.as_deref().filter(|c| !c.is_empty()).unwrap_or(reporting);
    let currency_of =
        |price_currency: &str| if price_currency.is_empty() { sub_currency } else { price_currency }.to_owned();
    // Stripe subscriptions have one currency; any item in another one leaves
    // the whole subscription out rather than a part of it.
    let foreign = sub
        .items
        .data
        .iter()
        .map(|item| {
            item.price.as_ref().map_or(sub_currency, |p| if p.currency.is_empty() { sub_currency } else { &p.currency })
        })
        .chain(std::iter::once(sub_currency))
        .find(|c| !money::same_currency(c, reporting));
    if let Some(currency) = foreign {
        excluded.push(ExcludedSubscription {
            subscription_id: sub.id.clone(),
            item_id: None,
            reason: SubscriptionExclusion::OtherCurrency(currency.to_ascii_lowercase()),
        });
        return Money::ZERO;
    }
    let mut total = Money::ZERO;
    for item in &sub.items.data {
        let mut exclude = |reason| {
            excluded.push(ExcludedSubscription {
                subscription_id: sub.id.clone(),
                item_id: Some(item.id.clone()),
                reason,
            })
        };
        let Some(price) = item.price.as_ref() else {
            exclude(SubscriptionExclusion::NoPrice);
            continue;
        };
        let Some(recurring) = price.recurring.as_ref() else {
            exclude(SubscriptionExclusion::NotRecurring);
            continue;
        };
        if recurring.usage_type.as_deref() == Some("metered") {
            continue;
        }
        let interval = recurring.interval.as_deref().unwrap_or("");
        let Some((num, den)) = per_month(interval) else {
            exclude(SubscriptionExclusion::UnknownInterval(interval.to_owned()));
            continue;
        };
        let currency = currency_of(&price.currency);
        let unit = match (price.unit_amount, price.unit_amount_decimal.as_deref()) {
            (Some(minor), _) => Money::from_minor(minor, &currency),
            (None, Some(text)) => match Money::from_minor_decimal(text, &currency) {
                Some(m) => m,
                None => {
                    exclude(SubscriptionExclusion::NoUnitAmount);
                    continue;
                }
            },
            (None, None) => {
                exclude(SubscriptionExclusion::NoUnitAmount);
                continue;
            }
        };
        let count = i128::from(recurring.interval_count.max(1));
        total += unit.scaled(i128::from(item.quantity) * num, den * count);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::stripe::{Expandable, Product};
    use serde_json::{json, Value};

    use crate::domain::fixtures::fixture;

    /// 2024-03-10T12:00:00Z
    const T0: i64 = 1_710_072_000;
    const DAY: i64 = 86_400;

    /// Stripe's fixture charge made a captured, succeeded payment.
    fn charge(id: &str, amount: i64, currency: &str, created: i64) -> Charge {
        let mut c = fixture("charge");
        c["id"] = json!(id);
        c["amount"] = json!(amount);
        c["amount_captured"] = json!(amount);
        c["captured"] = json!(true);
        c["status"] = json!("succeeded");
        c["currency"] = json!(currency);
        c["created"] = json!(created);
        c["customer"] = json!("cus_QXg1o8vcGmoR32");
        serde_json::from_value(c).unwrap()
    }

    fn refunded(mut c: Charge, amount: i64) -> Charge {
        c.amount_refunded = amount;
        c.refunded = amount == c.amount;
        c
    }

    /// `c` settled in `bt_currency` at `rate` (an expanded balance transaction).
    fn settled(mut c: Charge, bt_currency: &str, rate: Option<f64>) -> Charge {
        let mut bt = fixture("balance_transaction");
        bt["currency"] = json!(bt_currency);
        bt["exchange_rate"] = json!(rate);
        c.balance_transaction = Some(Expandable::Object(Box::new(serde_json::from_value(bt).unwrap())));
        c
    }

    struct Item {
        unit_amount: Option<i64>,
        interval: &'static str,
        interval_count: u64,
        quantity: Option<u64>,
        usage_type: &'static str,
    }

    fn monthly(unit_amount: i64) -> Item {
        Item {
            unit_amount: Some(unit_amount),
            interval: "month",
            interval_count: 1,
            quantity: None,
            usage_type: "licensed",
        }
    }

    /// Stripe's fixture subscription with the given status, created time and
    /// items, priced in `currency`.
    fn subscription(id: &str, status: &str, created: i64, currency: &str, items: &[Item]) -> Subscription {
        let mut s = fixture("subscription");
        s["id"] = json!(id);
        s["status"] = json!(status);
        s["created"] = json!(created);
        s["start_date"] = json!(created);
        s["currency"] = json!(currency);
        let template = s["items"]["data"][0].clone();
        let data: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                let mut item = template.clone();
                item["id"] = json!(format!("si_{id}_{i}"));
                match it.quantity {
                    Some(q) => item["quantity"] = json!(q),
                    None => {
                        item.as_object_mut().unwrap().remove("quantity");
                    }
                }
                item["price"]["currency"] = json!(currency);
                item["price"]["unit_amount"] = json!(it.unit_amount);
                item["price"]["unit_amount_decimal"] = json!(it.unit_amount.map(|a| a.to_string()));
                item["price"]["recurring"]["interval"] = json!(it.interval);
                item["price"]["recurring"]["interval_count"] = json!(it.interval_count);
                item["price"]["recurring"]["usage_type"] = json!(it.usage_type);
                item
            })
            .collect();
        s["items"]["data"] = json!(data);
        serde_json::from_value(s).unwrap()
    }

    fn usd_sub(id: &str, status: &str, created: i64) -> Subscription {
        subscription(id, status, created, "usd", &[monthly(2000)])
    }

    #[test]
    fn no_charges_and_no_subscriptions_give_zeroes_and_no_dates() {
        let m = compute_metrics(&[], &[], "usd");
        assert_eq!(m.payment_count, 0);
        assert_eq!((m.total_spent, m.lifetime_value, m.refunded, m.mrr), (0.0, 0.0, 0.0, 0.0));
        assert_eq!(m.average_order_value, None);
        assert_eq!(m.last_payment_date, None);
        assert_eq!(m.subscription_status, None);
        assert_eq!(m.plan_name, None);
        assert_eq!(m.subscription_start, None);
        assert!(!m.is_subscriber && !m.ever_subscribed && !m.pay_later_used);
    }

    #[test]
    fn sums_count_and_average_succeeded_captured_charges() {
        let charges = [
            charge("ch_1", 1000, "usd", T0),
            charge("ch_2", 2550, "usd", T0 + DAY),
            charge("ch_3", 999, "usd", T0 + 2 * DAY),
        ];
        let m = compute_metrics(&charges, &[], "usd");
        assert_eq!(m.payment_count, 3);
        assert_eq!(m.total_spent, 45.49);
        assert_eq!(m.lifetime_value, 45.49);
        assert_eq!(m.refunded, 0.0);
        // 45.49 / 3 = 15.1633…
        assert_eq!(m.average_order_value, Some(15.16));
        assert_eq!(m.exact.total_spent, Money::from_minor(4549, "usd"));
    }

    #[test]
    fn failed_pending_and_uncaptured_charges_do_not_count() {
        let mut failed = charge("ch_failed", 5000, "usd", T0 + 5 * DAY);
        failed.status = Some("failed".into());
        let mut pending = charge("ch_pending", 5000, "usd", T0 + 5 * DAY);
        pending.status = Some("pending".into());
        let mut uncaptured = charge("ch_auth", 5000, "usd", T0 + 5 * DAY);
        uncaptured.amount_captured = Some(0);
        uncaptured.captured = false;
        let ok = charge("ch_ok", 1000, "usd", T0);
        let m = compute_metrics(&[failed, pending, uncaptured, ok], &[], "usd");
        assert_eq!(m.payment_count, 1);
        assert_eq!(m.total_spent, 10.0);
        assert_eq!(m.last_payment_date.as_deref(), Some("2024-03-10"));
    }

    #[test]
    fn the_fixture_charge_as_is_counts_nothing_because_nothing_was_captured() {
        let c: Charge = serde_json::from_value(fixture("charge")).unwrap();
        let m = compute_metrics(&[c], &[], "usd");
        assert_eq!(m.payment_count, 0);
        assert_eq!(m.last_payment_date, None);
    }

    #[test]
    fn a_partially_captured_charge_counts_what_was_captured() {
        let mut c = charge("ch_1", 1000, "usd", T0);
        c.amount_captured = Some(600);
        let m = compute_metrics(&[c], &[], "usd");
        assert_eq!(m.total_spent, 6.0);
    }

    #[test]
    fn a_partial_refund_lowers_lifetime_value_not_total_spent() {
        let charges = [refunded(charge("ch_1", 5000, "usd", T0), 1250), charge("ch_2", 1000, "usd", T0)];
        let m = compute_metrics(&charges, &[], "usd");
        assert_eq!(m.payment_count, 2);
        assert_eq!(m.total_spent, 60.0);
        assert_eq!(m.refunded, 12.5);
        assert_eq!(m.lifetime_value, 47.5);
        assert_eq!(m.average_order_value, Some(30.0));
    }

    #[test]
    fn a_fully_refunded_charge_still_counts_as_a_payment() {
        let charges = [refunded(charge("ch_1", 5000, "usd", T0), 5000)];
        let m = compute_metrics(&charges, &[], "usd");
        assert_eq!(m.payment_count, 1);
        assert_eq!(m.total_spent, 50.0);
        assert_eq!(m.refunded, 50.0);
        assert_eq!(m.lifetime_value, 0.0);
        assert_eq!(m.last_payment_date.as_deref(), Some("2024-03-10"));
    }

    #[test]
    fn a_jpy_charge_counts_in_whole_yen() {
        let charges = [charge("ch_1", 1500, "jpy", T0), refunded(charge("ch_2", 500, "jpy", T0), 200)];
        let m = compute_metrics(&charges, &[], "JPY");
        assert_eq!(m.reporting_currency, "jpy");
        assert_eq!(m.total_spent, 2000.0);
        assert_eq!(m.refunded, 200.0);
        assert_eq!(m.lifetime_value, 1800.0);
        assert_eq!(m.average_order_value, Some(1000.0));
    }

    #[test]
    fn a_charge_in_another_currency_is_converted_with_its_exchange_rate() {
        // 100.00 EUR at 1.0845 → 108.45 USD, 20.00 EUR refunded → 21.69 USD.
        let eur = refunded(settled(charge("ch_eur", 10_000, "eur", T0), "usd", Some(1.0845)), 2000);
        let usd = charge("ch_usd", 1000, "usd", T0);
        let m = compute_metrics(&[eur, usd], &[], "usd");
        assert!(m.excluded_charges.is_empty());
        assert_eq!(m.payment_count, 2);
        assert_eq!(m.total_spent, 118.45);
        assert_eq!(m.refunded, 21.69);
        assert_eq!(m.lifetime_value, 96.76);
        // 118.45 / 2 = 59.225 → 59.23 (half away from zero, exact arithmetic)
        assert_eq!(m.average_order_value, Some(59.23));
    }

    #[test]
    fn a_zero_decimal_charge_is_converted_into_a_two_decimal_currency() {
        // ¥1,500 at 0.0067 → $10.05
        let jpy = settled(charge("ch_jpy", 1500, "jpy", T0), "usd", Some(0.0067));
        let m = compute_metrics(&[jpy], &[], "usd");
        assert_eq!(m.total_spent, 10.05);
    }

    #[test]
    fn a_charge_with_no_rate_is_excluded_and_reported() {
        let no_rate = settled(charge("ch_norate", 10_000, "eur", T0 + DAY), "usd", None);
        let not_expanded = charge("ch_id_only", 10_000, "eur", T0 + 2 * DAY);
        let mut no_bt = charge("ch_no_bt", 10_000, "eur", T0);
        no_bt.balance_transaction = None;
        let third = settled(charge("ch_gbp", 10_000, "eur", T0), "gbp", Some(0.85));
        let zero = settled(charge("ch_zero", 10_000, "eur", T0), "usd", Some(0.0));
        let usd = charge("ch_usd", 1000, "usd", T0);
        let m = compute_metrics(&[no_rate, not_expanded, no_bt, third, zero, usd], &[], "usd");
        assert_eq!(m.payment_count, 1);
        assert_eq!(m.total_spent, 10.0);
        assert_eq!(m.average_order_value, Some(10.0));
        let reasons: Vec<(&str, &ChargeExclusion)> =
            m.excluded_charges.iter().map(|e| (e.charge_id.as_str(), &e.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                ("ch_norate", &ChargeExclusion::NoExchangeRate),
                ("ch_id_only", &ChargeExclusion::BalanceTransactionNotExpanded),
                ("ch_no_bt", &ChargeExclusion::NoBalanceTransaction),
                ("ch_gbp", &ChargeExclusion::SettledInOtherCurrency("gbp".into())),
                ("ch_zero", &ChargeExclusion::InvalidExchangeRate),
            ]
        );
        assert_eq!(m.excluded_charges[0].currency, "eur");
        // Not an amount: an excluded charge still dates the last payment.
        assert_eq!(m.last_payment_date.as_deref(), Some("2024-03-12"));
        assert!(m.excluded_charges[0].reason.to_string().contains("exchange_rate"));
    }

    #[test]
    fn a_charge_in_the_reporting_currency_ignores_its_balance_transaction() {
        // Settled in another currency, but already in the reporting one.
        let c = settled(charge("ch_1", 1000, "usd", T0), "eur", Some(0.9));
        let m = compute_metrics(&[c], &[], "usd");
        assert_eq!(m.total_spent, 10.0);
        assert!(m.excluded_charges.is_empty());
    }

    #[test]
    fn currency_codes_match_whatever_their_case() {
        let c = charge("ch_1", 1000, "USD", T0);
        let m = compute_metrics(&[c], &[], "usd");
        assert_eq!(m.total_spent, 10.0);
    }

    #[test]
    fn the_last_payment_date_is_the_newest_charge_in_utc() {
        // 2024-03-10T23:59:59Z and 2024-03-11T00:00:01Z
        let late = charge("ch_late", 100, "usd", 1_710_115_199);
        let next = charge("ch_next", 100, "usd", 1_710_115_201);
        let m = compute_metrics(&[next.clone(), late.clone()], &[], "usd");
        assert_eq!(m.last_payment_date.as_deref(), Some("2024-03-11"));
        assert_eq!(m.last_payment_at, Some(1_710_115_201));
        let m = compute_metrics(&[late], &[], "usd");
        assert_eq!(m.last_payment_date.as_deref(), Some("2024-03-10"));
    }

    #[test]
    fn pay_later_methods_are_recognised() {
        for (kind, want) in
            [("klarna", true), ("afterpay_clearpay", true), ("affirm", true), ("zip", true), ("card", false)]
        {
            let mut c = charge("ch_1", 1000, "usd", T0);
            c.payment_method_details.as_mut().unwrap().kind = Some(kind.into());
            assert_eq!(compute_metrics(&[c], &[], "usd").pay_later_used, want, "{kind}");
        }
        // A failed Klarna attempt is not a use.
        let mut c = charge("ch_1", 1000, "usd", T0);
        c.payment_method_details.as_mut().unwrap().kind = Some("klarna".into());
        c.status = Some("failed".into());
        assert!(!compute_metrics(&[c], &[], "usd").pay_later_used);
    }

    #[test]
    fn a_monthly_plan_counts_its_unit_amount() {
        let m = compute_metrics(&[], &[usd_sub("sub_1", "active", T0)], "usd");
        assert_eq!(m.mrr, 20.0);
    }

    #[test]
    fn quantity_multiplies_the_unit_amount() {
        let item = Item { quantity: Some(3), ..monthly(1999) };
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "usd", &[item])], "usd");
        assert_eq!(m.mrr, 59.97);
    }

    #[test]
    fn a_yearly_plan_is_divided_by_twelve() {
        let item = Item { interval: "year", ..monthly(10_000) };
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "usd", &[item])], "usd");
        // 100 / 12 = 8.333…
        assert_eq!(m.mrr, 8.33);
        assert_eq!(m.exact.mrr, Money::from_minor(10_000, "usd").scaled(1, 12));
    }

    #[test]
    fn a_weekly_plan_is_times_52_over_12() {
        let item = Item { interval: "week", ..monthly(1000) };
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "usd", &[item])], "usd");
        assert_eq!(m.mrr, 43.33);
    }

    #[test]
    fn a_daily_plan_is_times_365_over_12() {
        let item = Item { interval: "day", ..monthly(100) };
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "usd", &[item])], "usd");
        // 1 × 365 / 12 = 30.4166…
        assert_eq!(m.mrr, 30.42);
    }

    #[test]
    fn an_interval_count_of_3_divides_by_3() {
        let quarterly = Item { interval_count: 3, ..monthly(3000) };
        let every_3_weeks = Item { interval: "week", interval_count: 3, ..monthly(3000) };
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "usd", &[quarterly])], "usd");
        assert_eq!(m.mrr, 10.0);
        let m = compute_metrics(&[], &[subscription("sub_2", "active", T0, "usd", &[every_3_weeks])], "usd");
        // 30 × 52 / 12 / 3 = 43.333…
        assert_eq!(m.mrr, 43.33);
    }

    #[test]
    fn rounding_happens_once_after_summing_items() {
        // Three yearly items of 1.00: each 0.0833…, together 0.25 exactly.
        let items = [
            Item { interval: "year", ..monthly(100) },
            Item { interval: "year", ..monthly(100) },
            Item { interval: "year", ..monthly(100) },
        ];
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "usd", &items)], "usd");
        assert_eq!(m.mrr, 0.25);
    }

    #[test]
    fn a_metered_price_is_excluded_from_mrr() {
        let items = [monthly(2000), Item { usage_type: "metered", ..monthly(5) }];
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "usd", &items)], "usd");
        assert_eq!(m.mrr, 20.0);
    }

    #[test]
    fn a_trialing_subscription_counts_zero_but_is_a_subscriber() {
        let m = compute_metrics(&[], &[usd_sub("sub_1", "trialing", T0)], "usd");
        assert_eq!(m.mrr, 0.0);
        assert!(m.is_subscriber && m.ever_subscribed);
        assert_eq!(m.subscription_status, Some(SubscriptionStatus::Trialing));
    }

    #[test]
    fn past_due_counts_in_mrr_but_canceled_and_unpaid_do_not() {
        let subs = [
            usd_sub("sub_a", "active", T0),
            usd_sub("sub_b", "past_due", T0),
            usd_sub("sub_c", "canceled", T0),
            usd_sub("sub_d", "unpaid", T0),
            usd_sub("sub_e", "incomplete", T0),
            usd_sub("sub_f", "paused", T0),
        ];
        let m = compute_metrics(&[], &subs, "usd");
        assert_eq!(m.mrr, 40.0);
    }

    #[test]
    fn a_subscription_in_another_currency_is_left_out_of_mrr_and_reported() {
        let subs = [usd_sub("sub_usd", "active", T0), subscription("sub_eur", "active", T0, "eur", &[monthly(5000)])];
        let m = compute_metrics(&[], &subs, "usd");
        assert_eq!(m.mrr, 20.0);
        assert_eq!(
            m.excluded_subscriptions,
            vec![ExcludedSubscription {
                subscription_id: "sub_eur".into(),
                item_id: None,
                reason: SubscriptionExclusion::OtherCurrency("eur".into()),
            }]
        );
        // Still a subscriber: membership does not depend on currency.
        assert!(m.is_subscriber);
    }

    #[test]
    fn a_tiered_price_without_unit_amount_is_reported() {
        let items = [monthly(2000), Item { unit_amount: None, ..monthly(0) }];
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "usd", &items)], "usd");
        assert_eq!(m.mrr, 20.0);
        assert_eq!(m.excluded_subscriptions.len(), 1);
        assert_eq!(m.excluded_subscriptions[0].item_id.as_deref(), Some("si_sub_1_1"));
        assert_eq!(m.excluded_subscriptions[0].reason, SubscriptionExclusion::NoUnitAmount);
    }

    #[test]
    fn a_sub_cent_price_uses_unit_amount_decimal() {
        let mut s = subscription("sub_1", "active", T0, "usd", &[Item { quantity: Some(1000), ..monthly(0) }]);
        let price = s.items.data[0].price.as_mut().unwrap();
        price.unit_amount = None;
        price.unit_amount_decimal = Some("0.25".into());
        let m = compute_metrics(&[], &[s], "usd");
        // 1000 × 0.25¢ = $2.50
        assert_eq!(m.mrr, 2.5);
    }

    #[test]
    fn a_yen_plan_counts_in_whole_yen() {
        let m = compute_metrics(&[], &[subscription("sub_1", "active", T0, "jpy", &[monthly(980)])], "jpy");
        assert_eq!(m.mrr, 980.0);
    }

    #[test]
    fn the_newest_subscription_gives_status_plan_and_start() {
        let mut old = usd_sub("sub_old", "canceled", T0);
        let mut new = usd_sub("sub_new", "active", T0 + 30 * DAY);
        old.items.data[0].price.as_mut().unwrap().nickname = Some("Old plan".into());
        new.items.data[0].price.as_mut().unwrap().nickname = Some("Pro monthly".into());
        new.start_date = Some(T0 + 29 * DAY);
        let m = compute_metrics(&[], &[new, old], "usd");
        assert_eq!(m.subscription_status, Some(SubscriptionStatus::Active));
        assert_eq!(m.newest_subscription_id.as_deref(), Some("sub_new"));
        assert_eq!(m.plan_name.as_deref(), Some("Pro monthly"));
        assert_eq!(m.subscription_start.as_deref(), Some("2024-04-08"));
    }

    #[test]
    fn the_plan_name_prefers_the_product_name_over_the_nickname() {
        let mut s = usd_sub("sub_1", "active", T0);
        let price = s.items.data[0].price.as_mut().unwrap();
        price.nickname = Some("Nick".into());
        let product: Product = serde_json::from_value(fixture("product")).unwrap();
        price.product = Some(Expandable::Object(Box::new(product)));
        let m = compute_metrics(&[], &[s.clone()], "usd");
        assert_eq!(m.plan_name.as_deref(), Some("T-shirt"));
        // Not expanded: only the nickname is known.
        s.items.data[0].price.as_mut().unwrap().product = Some(Expandable::Id("prod_1".into()));
        assert_eq!(compute_metrics(&[], &[s.clone()], "usd").plan_name.as_deref(), Some("Nick"));
        s.items.data[0].price.as_mut().unwrap().nickname = None;
        assert_eq!(compute_metrics(&[], &[s], "usd").plan_name, None);
    }

    #[test]
    fn incomplete_expired_is_ignored_when_choosing_the_newest() {
        let canceled = usd_sub("sub_a", "canceled", T0);
        let expired = usd_sub("sub_b", "incomplete_expired", T0 + DAY);
        let m = compute_metrics(&[], &[canceled, expired.clone()], "usd");
        assert_eq!(m.subscription_status, Some(SubscriptionStatus::Canceled));
        assert_eq!(m.newest_subscription_id.as_deref(), Some("sub_a"));
        // Only incomplete_expired: as if there were no subscription.
        let m = compute_metrics(&[], &[expired], "usd");
        assert_eq!(m.subscription_status, None);
        assert_eq!(m.plan_name, None);
        assert_eq!(m.subscription_start, None);
        assert!(!m.ever_subscribed && !m.is_subscriber);
    }

    #[test]
    fn ties_on_created_are_broken_by_id() {
        let a = usd_sub("sub_A", "canceled", T0);
        let b = usd_sub("sub_B", "active", T0);
        let m = compute_metrics(&[], &[b.clone(), a.clone()], "usd");
        assert_eq!(m.newest_subscription_id.as_deref(), Some("sub_B"));
        let m = compute_metrics(&[], &[a, b], "usd");
        assert_eq!(m.subscription_status, Some(SubscriptionStatus::Active));
    }

    #[test]
    fn list_membership_follows_the_statuses() {
        let cases: [(&[&str], bool, bool); 8] = [
            (&["active"], true, true),
            (&["trialing"], true, true),
            (&["past_due"], true, true),
            (&["canceled"], false, true),
            (&["unpaid"], false, true),
            (&["incomplete"], false, false),
            (&["incomplete_expired"], false, false),
            (&["canceled", "active"], true, true),
        ];
        for (statuses, subscriber, ever) in cases {
            let subs: Vec<Subscription> =
                statuses.iter().enumerate().map(|(i, s)| usd_sub(&format!("sub_{i}"), s, T0)).collect();
            let m = compute_metrics(&[], &subs, "usd");
            assert_eq!((m.is_subscriber, m.ever_subscribed), (subscriber, ever), "{statuses:?}");
        }
    }

    #[test]
    fn an_incomplete_subscription_still_reports_its_status() {
        let m = compute_metrics(&[], &[usd_sub("sub_1", "incomplete", T0)], "usd");
        assert_eq!(m.subscription_status, Some(SubscriptionStatus::Incomplete));
        assert_eq!(m.mrr, 0.0);
    }

    #[test]
    fn utc_dates_format_as_iso() {
        assert_eq!(utc_date(0).as_deref(), Some("1970-01-01"));
        assert_eq!(utc_date(1_234_567_890).as_deref(), Some("2009-02-13"));
        assert_eq!(utc_date(i64::MAX), None);
    }
}
