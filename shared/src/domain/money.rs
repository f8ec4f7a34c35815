//! Exact money arithmetic for the metrics: Stripe amounts stay integers of
//! minor units until the very last step, sums are fixed-point `i128`s, and a
//! float appears only when a total is rounded to 2 decimals for Brevo.
//!
//! - Currency exponents follow Stripe's list of zero-decimal and three-decimal
//!   currencies: <https://docs.stripe.com/currencies#zero-decimal> and
//!   <https://docs.stripe.com/currencies#three-decimal>. (ISK, HUF, TWD and
//!   UGX are "special cases" that Stripe still represents with 2 decimals in
//!   the API, except UGX which is on the zero-decimal list.)
//! - [`Money`] counts in 10⁻¹⁵ of a major unit of the reporting currency, so an
//!   amount of any currency (exponent 0–3) converted with a rate held to 10⁻⁹
//!   ([`Rate`]) is an exact integer: `minor × rate×10⁹ × 10^(6 − exponent)`.
//! - [`Money::to_major_rounded_2dp`] is the last step only: half away from
//!   zero to 2 decimals.

use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// Stripe's zero-decimal currencies (amounts are whole units).
pub const ZERO_DECIMAL_CURRENCIES: [&str; 16] =
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];

/// Stripe's three-decimal currencies.
pub const THREE_DECIMAL_CURRENCIES: [&str; 5] = ["bhd", "jod", "kwd", "omr", "tnd"];

/// Number of decimals of a currency's minor unit as Stripe counts it (0, 2 or
/// 3), case-insensitive; 2 for anything unknown.
pub fn exponent(currency: &str) -> u32 {
    let b = currency.as_bytes();
    if b.len() != 3 {
        return 2;
    }
    let code = [b[0].to_ascii_lowercase(), b[1].to_ascii_lowercase(), b[2].to_ascii_lowercase()];
    match &code {
        b"bif" | b"clp" | b"djf" | b"gnf" | b"jpy" | b"kmf" | b"krw" | b"mga" | b"pyg" | b"rwf" | b"ugx" | b"vnd"
        | b"vuv" | b"xaf" | b"xof" | b"xpf" => 0,
        b"bhd" | b"jod" | b"kwd" | b"omr" | b"tnd" => 3,
        _ => 2,
    }
}

/// True when two ISO codes name the same currency (Stripe sends lower case,
/// configs may not).
pub fn same_currency(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// An amount of minor units as a major-unit float (`1050` usd → `10.5`,
/// `1050` jpy → `1050.0`, `1050` kwd → `1.05`). For display in event
/// properties only: one exact integer divided by a power of ten, never summed.
pub fn minor_to_major(amount: i64, currency: &str) -> f64 {
    amount as f64 / pow10(exponent(currency)) as f64
}

const fn pow10(e: u32) -> i128 {
    let mut v: i128 = 1;
    let mut i = 0;
    while i < e {
        v *= 10;
        i += 1;
    }
    v
}

/// `n / d` rounded half away from zero; `d` must be positive.
fn div_round(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    let q = n / d;
    let r = n % d;
    if r.unsigned_abs() * 2 >= d.unsigned_abs() {
        if n < 0 {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

/// An exchange rate in fixed point: the rate × 10⁹, rounded (so `1.234` is
/// `1_234_000_000`). Stripe's `exchange_rate` multiplies an amount of the
/// charge's currency (major units) into the balance transaction's currency.
/// See <https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-exchange_rate>.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(i128);

impl Rate {
    pub const SCALE: i128 = 1_000_000_000;
    pub const ONE: Rate = Rate(Self::SCALE);

    /// The fixed-point form of a float rate; `None` unless finite and > 0 once
    /// rounded to 10⁻⁹ (a zero or negative rate is never a valid conversion).
    pub fn from_f64(rate: f64) -> Option<Rate> {
        if !rate.is_finite() || rate <= 0.0 || rate > 1e18 {
            return None;
        }
        let fixed = (rate * Self::SCALE as f64).round();
        (fixed >= 1.0).then_some(Rate(fixed as i128))
    }

    /// The rate × 10⁹.
    pub fn fixed(self) -> i128 {
        self.0
    }
}

/// An exact amount in a (reporting) currency, in 10⁻¹⁵ of its major unit.
/// Operations saturate instead of overflowing (unreachable with real sums:
/// i128 holds ~10²³ major units at this scale).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i128);

impl Money {
    /// Fixed-point units per major unit.
    pub const UNITS_PER_MAJOR: i128 = 1_000_000_000_000_000;
    pub const ZERO: Money = Money(0);

    /// Raw fixed-point units (10⁻¹⁵ major).
    pub const fn from_units(units: i128) -> Money {
        Money(units)
    }

    pub const fn units(self) -> i128 {
        self.0
    }

    /// An amount of `currency`'s minor units, exactly.
    pub fn from_minor(amount: i64, currency: &str) -> Money {
        Money(i128::from(amount).saturating_mul(pow10(15 - exponent(currency))))
    }

    /// An amount of `from_currency`'s minor units converted with `rate` into
    /// another currency, exactly (given the rate's 10⁻⁹ precision). The target
    /// currency's exponent does not matter: `Money` counts major units.
    pub fn convert(amount: i64, from_currency: &str, rate: Rate) -> Money {
        // minor / 10^e × rate9 / 10^9 × 10^15 = minor × rate9 × 10^(6 − e)
        Money(i128::from(amount).saturating_mul(rate.0).saturating_mul(pow10(6 - exponent(from_currency).min(6))))
    }

    /// A decimal string of minor units (Stripe's `unit_amount_decimal`, up to
    /// 12 decimals) of `currency`. Digits finer than 10⁻¹⁵ major are rounded
    /// half away from zero. `None` when not a plain decimal number.
    pub fn from_minor_decimal(text: &str, currency: &str) -> Option<Money> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if int_part.len() > 20 {
            return None;
        }
        // Units per minor unit: 10^(15 − e).
        let places = 15 - exponent(currency) as usize;
        let mut units: i128 = 0;
        for b in int_part.bytes() {
            units = units * 10 + i128::from(b - b'0');
        }
        units = units.checked_mul(pow10(places as u32))?;
        let kept = &frac_part[..frac_part.len().min(places)];
        let mut frac: i128 = 0;
        for b in kept.bytes() {
            frac = frac * 10 + i128::from(b - b'0');
        }
        frac *= pow10((places - kept.len()) as u32);
        if let Some(next) = frac_part.as_bytes().get(places) {
            if *next >= b'5' {
                frac += 1;
            }
        }
        let total = units.checked_add(frac)?;
        Some(Money(if negative { -total } else { total }))
    }

    /// `self × numerator / denominator`, rounded half away from zero to the
    /// fixed-point unit; `denominator` must be positive (zero gives zero).
    pub fn scaled(self, numerator: i128, denominator: i128) -> Money {
        if denominator <= 0 {
            return Money::ZERO;
        }
        match self.0.checked_mul(numerator) {
            Some(n) => Money(div_round(n, denominator)),
            // Beyond any real amount: fall back to divide-then-multiply.
            None => Money(div_round(self.0, denominator).saturating_mul(numerator)),
        }
    }

    /// Rounded to whole minor units of `currency` (half away from zero).
    pub fn to_minor_rounded(self, currency: &str) -> i128 {
        div_round(self.0, pow10(15 - exponent(currency)))
    }

    /// Rounded to hundredths (half away from zero), as an integer.
    pub fn hundredths(self) -> i128 {
        div_round(self.0, Self::UNITS_PER_MAJOR / 100)
    }

    /// The final step: major units rounded half away from zero to 2 decimals.
    pub fn to_major_rounded_2dp(self) -> f64 {
        self.hundredths() as f64 / 100.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0.saturating_sub(rhs.0))
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        self.0 = self.0.saturating_sub(rhs.0);
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(self.0.saturating_neg())
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_decimal_currencies_have_exponent_0_whatever_the_case() {
        for c in ZERO_DECIMAL_CURRENCIES {
            assert_eq!(exponent(c), 0, "{c}");
            assert_eq!(exponent(&c.to_uppercase()), 0, "{c}");
        }
        assert_eq!(exponent("JPY"), 0);
        assert_eq!(exponent("Krw"), 0);
    }

    #[test]
    fn three_decimal_currencies_have_exponent_3() {
        for c in THREE_DECIMAL_CURRENCIES {
            assert_eq!(exponent(c), 3, "{c}");
        }
        assert_eq!(exponent("KWD"), 3);
    }

    #[test]
    fn other_currencies_have_exponent_2() {
        for c in ["usd", "EUR", "gbp", "isk", "huf", "twd", "", "us", "dollar"] {
            assert_eq!(exponent(c), 2, "{c}");
        }
    }

    #[test]
    fn minor_amounts_become_major_per_exponent() {
        assert_eq!(minor_to_major(1050, "usd"), 10.5);
        assert_eq!(minor_to_major(1050, "jpy"), 1050.0);
        assert_eq!(minor_to_major(1050, "kwd"), 1.05);
        assert_eq!(minor_to_major(-199, "eur"), -1.99);
    }

    #[test]
    fn a_jpy_amount_counts_in_whole_yen() {
        assert_eq!(Money::from_minor(1500, "jpy").to_major_rounded_2dp(), 1500.0);
        assert_eq!(Money::from_minor(1500, "usd").to_major_rounded_2dp(), 15.0);
        assert_eq!(Money::from_minor(1500, "bhd").to_major_rounded_2dp(), 1.5);
    }

    #[test]
    fn sums_are_exact_where_floats_are_not() {
        // 0.1 + 0.2 in floats is 0.30000000000000004.
        let total: Money = [10, 20].iter().map(|c| Money::from_minor(*c, "usd")).sum();
        assert_eq!(total, Money::from_minor(30, "usd"));
        // A million cents one by one stays exact.
        let many: Money = (0..1_000_000).map(|_| Money::from_minor(1, "usd")).sum();
        assert_eq!(many.to_minor_rounded("usd"), 1_000_000);
        assert_eq!(many.to_major_rounded_2dp(), 10_000.0);
    }

    #[test]
    fn conversion_uses_the_rate_in_major_units() {
        // Stripe's own example: 10.00 EUR at 1.234 is 12.34 USD.
        let rate = Rate::from_f64(1.234).unwrap();
        assert_eq!(rate.fixed(), 1_234_000_000);
        let usd = Money::convert(1000, "eur", rate);
        assert_eq!(usd, Money::from_minor(1234, "usd"));
        // 1000 JPY at 0.0067 is 6.70 USD.
        let usd = Money::convert(1000, "jpy", Rate::from_f64(0.0067).unwrap());
        assert_eq!(usd.to_minor_rounded("usd"), 670);
        // 10.00 USD at 150.123 is 1501.23 JPY: fractional yen kept until the end.
        let jpy = Money::convert(1000, "usd", Rate::from_f64(150.123).unwrap());
        assert_eq!(jpy.to_major_rounded_2dp(), 1501.23);
        assert_eq!(jpy.to_minor_rounded("jpy"), 1501);
        // 1.000 KWD at 3.25 is 3.25 USD.
        assert_eq!(Money::convert(1000, "kwd", Rate::from_f64(3.25).unwrap()), Money::from_minor(325, "usd"));
    }

    #[test]
    fn invalid_rates_are_refused() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-12] {
            assert!(Rate::from_f64(r).is_none(), "{r}");
        }
        assert_eq!(Rate::from_f64(1.0), Some(Rate::ONE));
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_2_decimals() {
        // 0.125 → 0.13, −0.125 → −0.13, 0.124999… → 0.12
        let eighth = Money::from_units(Money::UNITS_PER_MAJOR / 8);
        assert_eq!(eighth.to_major_rounded_2dp(), 0.13);
        assert_eq!((-eighth).to_major_rounded_2dp(), -0.13);
        assert_eq!((eighth - Money::from_units(1)).to_major_rounded_2dp(), 0.12);
        // 2.675 is 2.67499999… as an f64; exact arithmetic gives 2.68.
        assert_eq!(Money::from_minor(2675, "kwd").to_major_rounded_2dp(), 2.68);
        assert_eq!(Money::from_minor(1, "kwd").to_major_rounded_2dp(), 0.0);
        assert_eq!(Money::from_minor(5, "kwd").to_major_rounded_2dp(), 0.01);
    }

    #[test]
    fn scaling_rounds_half_away_from_zero() {
        let ten = Money::from_minor(1000, "usd");
        assert_eq!(ten.scaled(1, 3).units(), 3_333_333_333_333_333);
        assert_eq!(Money::from_units(5).scaled(1, 2).units(), 3);
        assert_eq!(Money::from_units(-5).scaled(1, 2).units(), -3);
        assert_eq!(Money::from_units(4).scaled(1, 3).units(), 1);
        assert_eq!(ten.scaled(12, 0), Money::ZERO);
        // A weekly 10.00 normalised to a month: 10 × 52 / 12 = 43.33.
        assert_eq!(ten.scaled(52, 12).to_major_rounded_2dp(), 43.33);
    }

    #[test]
    fn decimal_minor_amounts_parse_exactly() {
        assert_eq!(Money::from_minor_decimal("2000", "usd"), Some(Money::from_minor(2000, "usd")));
        assert_eq!(Money::from_minor_decimal("0.5", "usd").unwrap().units(), 5 * 10i128.pow(12));
        assert_eq!(Money::from_minor_decimal("12.000000000001", "usd").unwrap().units(), 12 * 10i128.pow(13) + 10);
        assert_eq!(Money::from_minor_decimal("7", "jpy"), Some(Money::from_minor(7, "jpy")));
        assert_eq!(Money::from_minor_decimal("-1.5", "usd").unwrap().units(), -15 * 10i128.pow(12));
        for bad in ["", ".", "abc", "1.2.3", "1e5", " - "] {
            assert!(Money::from_minor_decimal(bad, "usd").is_none(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let max = Money::from_units(i128::MAX);
        assert_eq!((max + max).units(), i128::MAX);
        assert!(Money::from_minor(i64::MAX, "usd") > Money::ZERO);
    }

    #[test]
    fn currencies_compare_case_insensitively() {
        assert!(same_currency("usd", "USD"));
        assert!(same_currency(" eur", "EUR "));
        assert!(!same_currency("usd", "eur"));
    }
}
