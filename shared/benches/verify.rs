//! Verify + envelope parse per event, on a real ~4.3 KB Stripe event
//! (`events/stripe/customer.subscription.updated.json`, Stripe's own fixture
//! shape). Run: `cargo bench -p shared --bench verify`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use secrecy::SecretString;
use shared::domain::event::parse_envelope;
use shared::domain::signature::{sign_header, Verifier};

fn event_body() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/stripe/customer.subscription.updated.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample event")).expect("json");
    serde_json::to_vec(&v).expect("serialises")
}

fn bench(c: &mut Criterion) {
    let body = event_body();
    let secret = "whsec_bench_secret";
    let t = 1_763_800_000;
    let header = sign_header(&[secret], t, &body);
    let one = Verifier::new(vec![SecretString::from(secret.to_owned())], 300);
    let two =
        Verifier::new(vec![SecretString::from("whsec_old".to_owned()), SecretString::from(secret.to_owned())], 300);

    let mut g = c.benchmark_group(format!("webhook_{}B", body.len()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_only", |b| b.iter(|| one.verify(Some(&header), &body, t).expect("valid")));
    g.bench_function("parse_envelope_only", |b| b.iter(|| parse_envelope(&body).expect("event").created));
    g.bench_function("verify_and_parse", |b| {
        b.iter(|| {
            one.verify(Some(&header), &body, t).expect("valid");
            parse_envelope(&body).expect("event").created
        })
    });
    g.bench_function("verify_and_parse_two_secrets", |b| {
        b.iter(|| {
            two.verify(Some(&header), &body, t).expect("valid");
            parse_envelope(&body).expect("event").created
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
