//! Property tests (the fuzz targets that run in every test run; FUZZ_CASES=N
//! for a longer run): the header
//! parser never panics on arbitrary input, and no header that was not made
//! with the secret over this body and timestamp is ever accepted; the event
//! envelope parser and the config loader never panic.

use proptest::prelude::*;
use secrecy::SecretString;
use shared::domain::event::parse_envelope;
use shared::domain::signature::{compute_v1, parse_header, sign_header, Verifier};

const SECRET: &str = "whsec_fuzz_secret";

fn verifier() -> Verifier {
    Verifier::new(vec![SecretString::from(SECRET.to_owned())], 300)
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(s in ".{0,300}") {
        let _ = parse_header(&s);
        let _ = verifier().verify(Some(&s), b"{}", 0);
    }

    #[test]
    fn the_parser_never_panics_on_header_like_text(
        parts in proptest::collection::vec(("[tv0-9]{0,3}", "[=]{0,2}", "[0-9a-fA-Fx -]{0,70}"), 0..8)
    ) {
        let h = parts.iter().map(|(k, e, v)| format!("{k}{e}{v}")).collect::<Vec<_>>().join(",");
        let _ = parse_header(&h);
    }

    #[test]
    fn random_signatures_are_never_accepted(t in 0i64..4_000_000_000, sigs in proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 1..4), body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let expected = compute_v1(SECRET, t, &body);
        prop_assume!(!sigs.contains(&expected));
        let h = format!("t={t},{}", sigs.iter().map(|s| format!("v1={}", hex::encode(s))).collect::<Vec<_>>().join(","));
        prop_assert!(verifier().verify(Some(&h), &body, t).is_err());
    }

    #[test]
    fn a_signature_for_one_body_or_time_never_verifies_another(body in proptest::collection::vec(any::<u8>(), 0..256), other in proptest::collection::vec(any::<u8>(), 0..256), t in 1_000i64..2_000_000_000, dt in 1i64..100) {
        let h = sign_header(&[SECRET], t, &body);
        prop_assert_eq!(verifier().verify(Some(&h), &body, t), Ok(t));
        if other != body {
            prop_assert!(verifier().verify(Some(&h), &other, t).is_err());
        }
        // Moving the timestamp invalidates the signature.
        let moved = h.replacen(&format!("t={t}"), &format!("t={}", t + dt), 1);
        prop_assert!(verifier().verify(Some(&moved), &body, t + dt).is_err());
    }

    #[test]
    fn the_envelope_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_envelope(&bytes);
    }

    #[test]
    fn the_envelope_parser_never_panics_on_json_like_text(s in r#"[{}\[\]":,a-z0-9_. ]{0,200}"#) {
        let _ = parse_envelope(s.as_bytes());
    }
}

#[test]
fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let body = format!(
        r#"{{"id":"evt_1","object":"event","type":"a.b","created":1,"data":{{"object":{{"x":{}{}}}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(parse_envelope(body.as_bytes()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 4, ..ProptestConfig::default() })]

    /// The config loader refuses garbage with an error, never a panic.
    #[test]
    fn the_config_loader_never_panics(s in "(connectors|stripe|sync|lists|field_mapping|events|\\$\\{[A-Z]{0,4}\\}|[:\\-\\[\\]{}\"' \n]|[a-z0-9_.]{1,8}){0,60}") {
        let env: std::collections::HashMap<String, String> = [("A".to_owned(), "1".to_owned())].into_iter().collect();
        let _ = shared::settings::Settings::from_yaml(&s, &env);
    }

    /// Well-formed configs with a random unknown key are refused, naming it.
    #[test]
    fn an_unknown_key_is_refused_with_its_path(key in "[a-z]{3,10}") {
        prop_assume!(!["enabled", "debug", "since", "lists", "events", "sync"].contains(&key.as_str()));
        let yaml = format!("connectors:\n  stripe:\n    {key}_x: 1\n");
        let env: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let err = shared::settings::Settings::from_yaml(&yaml, &env).expect_err("unknown key").to_string();
        prop_assert!(err.contains("connectors.stripe"), "{}", err);
        prop_assert!(err.contains(&format!("{key}_x")), "{}", err);
    }
}
