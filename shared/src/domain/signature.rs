//! Stripe webhook signatures: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`.
//!
//! The signed payload is `"{t}.{raw body}"`, HMAC-SHA256 with the endpoint's
//! `whsec_…` secret. A header is accepted when **any** `v1` entry matches the
//! HMAC under **any** configured secret (Stripe sends one `v1` per active
//! secret while a secret is being rolled), compared in constant time, and its
//! timestamp is within the tolerance in both directions (the caller's: 300 s
//! unless configured, see [`crate::config::webhook_tolerance`]).
//! See <https://docs.stripe.com/webhooks#verify-manually>.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature header was refused. Each case is distinct so logs and
/// metrics can tell a misconfigured secret from a replay or garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(&'static str),
    #[error("Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("no v1 signature matches any configured webhook secret")]
    NoMatch,
    #[error("signature timestamp is {skew_secs}s away from now (tolerance {tolerance_secs}s)")]
    TimestampOutsideTolerance { skew_secs: i64, tolerance_secs: u64 },
}

impl SignatureError {
    /// Short machine-readable code used in HTTP answers and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_signature",
            Self::MalformedHeader(_) => "malformed_signature",
            Self::NoV1Signature => "no_v1_signature",
            Self::NoMatch => "signature_mismatch",
            Self::TimestampOutsideTolerance { .. } => "timestamp_out_of_tolerance",
        }
    }
}

/// A parsed header: the timestamp and every `v1` entry that is well-formed hex
/// of the right length (others can never match and are dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub v1: Vec<[u8; 32]>,
    /// Number of `v1=` entries seen, well-formed or not.
    pub v1_entries: usize,
}

/// Upper bound on entries read from one header; a real one has 1–3.
const MAX_ENTRIES: usize = 32;

/// Parses `t=…,v1=…` strictly: exactly one `t`, all digits; other schemes ignored.
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(SignatureError::MalformedHeader("empty"));
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    let mut v1_entries = 0usize;
    for (i, item) in header.split(',').enumerate() {
        if i >= MAX_ENTRIES {
            return Err(SignatureError::MalformedHeader("too many entries"));
        }
        let item = item.trim();
        let Some((key, value)) = item.split_once('=') else {
            return Err(SignatureError::MalformedHeader("entry without '='"));
        };
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::MalformedHeader("more than one timestamp"));
                }
                let value = value.trim();
                if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::MalformedHeader("timestamp is not an integer"));
                }
                timestamp = Some(
                    value.parse::<i64>().map_err(|_| SignatureError::MalformedHeader("timestamp is not an integer"))?,
                );
            }
            "v1" => {
                v1_entries += 1;
                let mut buf = [0u8; 32];
                if hex::decode_to_slice(value.trim(), &mut buf).is_ok() {
                    v1.push(buf);
                }
            }
            _ => {} // v0 and future schemes are ignored, as Stripe's SDKs do
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader("no timestamp"))?;
    if v1_entries == 0 {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(SignatureHeader { timestamp, v1, v1_entries })
}

/// Computes the v1 signature of `"{timestamp}.{body}"` under `secret`.
pub fn compute_v1(secret: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    let ts = itoa_buf(timestamp);
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Builds a header exactly as Stripe does (`t=…,v1=…`), one `v1` per secret.
/// Used by tests, `events/` re-signing and the demo.
pub fn sign_header(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut out = format!("t={timestamp}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&hex::encode(compute_v1(s, timestamp, body)));
    }
    out
}

/// The configured endpoint secrets and the tolerance. Secrets never print.
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<SecretString>,
    tolerance_secs: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &format_args!("[{} redacted]", self.secrets.len()))
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl Verifier {
    /// `secrets` must not be empty; a tolerance of 0 is raised to 1 s so
    /// the check can never be disabled.
    pub fn new(secrets: Vec<SecretString>, tolerance_secs: u64) -> Self {
        Self { secrets, tolerance_secs: tolerance_secs.max(1) }
    }

    /// Splits a comma-separated `STRIPE_WEBHOOK_SECRET` value (rotation).
    pub fn from_comma_separated(value: &SecretString, tolerance_secs: u64) -> Self {
        let secrets = value
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        Self::new(secrets, tolerance_secs)
    }

    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    pub fn tolerance_secs(&self) -> u64 {
        self.tolerance_secs
    }

    /// Verifies `header` over the raw `body` at time `now_unix`; returns the
    /// signed timestamp. The signature is checked before the timestamp, as in
    /// Stripe's SDKs, so "outside tolerance" is only said of authentic headers.
    pub fn verify(&self, header: Option<&str>, body: &[u8], now_unix: i64) -> Result<i64, SignatureError> {
        let header = header.ok_or(SignatureError::MissingHeader)?;
        let parsed = parse_header(header)?;
        let mut matched = subtle::Choice::from(0u8);
        for secret in &self.secrets {
            let expected = compute_v1(secret.expose_secret(), parsed.timestamp, body);
            for candidate in &parsed.v1 {
                matched |= expected.ct_eq(candidate);
            }
        }
        if !bool::from(matched) {
            return Err(SignatureError::NoMatch);
        }
        let skew = now_unix.saturating_sub(parsed.timestamp);
        if skew.unsigned_abs() > self.tolerance_secs {
            return Err(SignatureError::TimestampOutsideTolerance {
                skew_secs: skew,
                tolerance_secs: self.tolerance_secs,
            });
        }
        Ok(parsed.timestamp)
    }
}

/// Small stack formatter for the timestamp (avoids an allocation per event).
struct ItoaBuf {
    buf: [u8; 24],
    start: usize,
}

impl ItoaBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: i64) -> ItoaBuf {
    let mut buf = [0u8; 24];
    let mut pos = buf.len();
    let neg = n < 0;
    if n == 0 {
        pos -= 1;
        buf[pos] = b'0';
    }
    while n != 0 {
        let digit = (n % 10).unsigned_abs() as u8;
        pos -= 1;
        buf[pos] = b'0' + digit;
        n /= 10;
    }
    if neg {
        pos -= 1;
        buf[pos] = b'-';
    }
    ItoaBuf { buf, start: pos }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;

    fn verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(secrets.iter().map(|s| SecretString::from(s.to_string())).collect(), 300)
    }

    #[test]
    fn accepts_its_own_signature() {
        let h = sign_header(&[SECRET], 1_700_000_000, BODY);
        assert_eq!(verifier(&[SECRET]).verify(Some(&h), BODY, 1_700_000_010), Ok(1_700_000_000));
    }

    #[test]
    fn matches_a_vector_computed_independently() {
        // python3: hmac.new(b'whsec_test_secret', b'1700000000.' + BODY, hashlib.sha256).hexdigest()
        assert_eq!(
            hex::encode(compute_v1(SECRET, 1_700_000_000, BODY)),
            "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd"
        );
    }

    #[test]
    fn any_v1_may_match_and_the_good_one_may_come_second() {
        let good = hex::encode(compute_v1(SECRET, 100, BODY));
        let h = format!("t=100,v1={},v1={good}", "ab".repeat(32));
        assert!(verifier(&[SECRET]).verify(Some(&h), BODY, 100).is_ok());
    }

    #[test]
    fn any_configured_secret_may_match_during_rotation() {
        let h = sign_header(&["whsec_new"], 100, BODY);
        assert!(verifier(&["whsec_old", "whsec_new"]).verify(Some(&h), BODY, 100).is_ok());
        assert_eq!(verifier(&["whsec_old"]).verify(Some(&h), BODY, 100), Err(SignatureError::NoMatch));
    }

    #[test]
    fn comma_separated_secrets_are_split_and_trimmed() {
        let v = Verifier::from_comma_separated(&SecretString::from(" whsec_a , whsec_b,".to_string()), 300);
        assert_eq!(v.secret_count(), 2);
        let h = sign_header(&["whsec_b"], 5, BODY);
        assert!(v.verify(Some(&h), BODY, 5).is_ok());
    }

    #[test]
    fn rejects_a_replayed_signature_older_than_tolerance() {
        let h = sign_header(&[SECRET], 1000, BODY);
        let v = verifier(&[SECRET]);
        assert!(v.verify(Some(&h), BODY, 1300).is_ok());
        assert!(matches!(
            v.verify(Some(&h), BODY, 1301),
            Err(SignatureError::TimestampOutsideTolerance { skew_secs: 301, .. })
        ));
        assert!(matches!(
            v.verify(Some(&h), BODY, 699),
            Err(SignatureError::TimestampOutsideTolerance { skew_secs: -301, .. })
        ));
        assert!(v.verify(Some(&h), BODY, 700).is_ok());
    }

    #[test]
    fn tolerance_can_never_be_disabled() {
        let v = Verifier::new(vec![SecretString::from(SECRET.to_string())], 0);
        assert_eq!(v.tolerance_secs(), 1);
        let h = sign_header(&[SECRET], 1000, BODY);
        assert!(v.verify(Some(&h), BODY, 1002).is_err());
    }

    #[test]
    fn distinct_errors_for_each_kind_of_bad_header() {
        let v = verifier(&[SECRET]);
        assert_eq!(v.verify(None, BODY, 0), Err(SignatureError::MissingHeader));
        assert!(matches!(v.verify(Some(""), BODY, 0), Err(SignatureError::MalformedHeader(_))));
        assert!(matches!(v.verify(Some("t=abc,v1=00"), BODY, 0), Err(SignatureError::MalformedHeader(_))));
        assert!(matches!(v.verify(Some("t=123junk,v1=00"), BODY, 0), Err(SignatureError::MalformedHeader(_))));
        assert!(matches!(v.verify(Some("v1=00"), BODY, 0), Err(SignatureError::MalformedHeader(_))));
        assert!(matches!(v.verify(Some("t=1,t=2,v1=00"), BODY, 0), Err(SignatureError::MalformedHeader(_))));
        assert_eq!(v.verify(Some("t=1,v0=abcd"), BODY, 0), Err(SignatureError::NoV1Signature));
        assert_eq!(v.verify(Some("t=1,v1=zz"), BODY, 0), Err(SignatureError::NoMatch));
    }

    #[test]
    fn tampered_body_does_not_match() {
        let h = sign_header(&[SECRET], 1, BODY);
        assert_eq!(verifier(&[SECRET]).verify(Some(&h), b"{\"id\":\"evt_2\"}", 1), Err(SignatureError::NoMatch));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s = format!("{:?}", verifier(&[SECRET]));
        assert!(!s.contains(SECRET), "{s}");
    }

    #[test]
    fn itoa_matches_std() {
        for n in [0i64, 1, 9, 10, 1_700_000_000, -5, i64::MAX, i64::MIN + 1] {
            assert_eq!(std::str::from_utf8(itoa_buf(n).as_bytes()).unwrap(), n.to_string());
        }
    }
}
