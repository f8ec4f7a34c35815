//! Redaction of vendor messages before they reach an error, a log or a
//! `RemoteError`: e-mail addresses in Brevo's messages ([`scrub_emails`]) and
//! Stripe keys, masked or not, in Stripe's ([`redact_keys`]).

use crate::telemetry::redact_email;

/// Replaces anything that looks like an e-mail address by its redacted form
/// ([`redact_email`]); the rest of the text is kept as it is.
pub fn scrub_emails(text: &str) -> String {
    let is_addr_char = |c: char| c.is_alphanumeric() || "._%+-@".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.contains('@') {
            out.push_str(&redact_email(token));
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if is_addr_char(c) {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// Replaces anything that looks like a Stripe key (`sk_…`, `rk_…`, `pk_…`,
/// masked or not) and the given secret itself by `[redacted]`.
pub fn redact_keys(text: &str, secret: Option<&str>) -> String {
    let mut s = text.to_owned();
    if let Some(k) = secret.filter(|k| k.len() >= 4) {
        s = s.replace(k, "[redacted]");
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'*';
    while i < bytes.len() {
        let at_boundary = i == 0 || !is_word(bytes[i - 1]);
        let rest = &s[i..];
        if at_boundary && (rest.starts_with("sk_") || rest.starts_with("rk_") || rest.starts_with("pk_")) {
            let mut j = i + 3;
            while j < bytes.len() && is_word(bytes[j]) {
                j += 1;
            }
            out.push_str("[redacted]");
            i = j;
        } else {
            // Push one whole char (the input may be non-ASCII).
            let ch_len = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..ch_len]);
            i += ch_len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_redacts_addresses_only() {
        assert_eq!(scrub_emails("Contact jane.doe@example.com exists"), "Contact j***@e***.com exists");
        assert_eq!(scrub_emails("Invalid phone number"), "Invalid phone number");
        assert_eq!(scrub_emails("\"a@b.io\","), "\"a***@b***.io\",");
    }

    #[test]
    fn redaction_removes_key_like_tokens_and_the_secret() {
        assert_eq!(
            redact_keys("Invalid API Key provided: sk_test_****abcd.", None),
            "Invalid API Key provided: [redacted]."
        );
        assert_eq!(redact_keys("key 'rk_live_abc123' on acct", None), "key '[redacted]' on acct");
        assert_eq!(redact_keys("task_sk_1 stays, mysecret goes", Some("mysecret")), "task_sk_1 stays, [redacted] goes");
        assert_eq!(redact_keys("désolé", None), "désolé");
    }
}
