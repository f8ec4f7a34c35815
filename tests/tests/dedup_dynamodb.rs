//! The DynamoDB idempotency store against moto with the real SDK.

use e2e_tests::{aws, unique};
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::ports::{Claim, IdempotencyStore};

async fn store() -> DynamoIdempotency {
    let aws = aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let table = unique("dedup");
    DynamoIdempotency::create_table(&client, &table).await.expect("table");
    DynamoIdempotency::new(client, table)
}

const NOW: i64 = 1_763_800_000;
const WEEK: i64 = 7 * 86_400;

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn the_first_claim_wins_and_a_concurrent_second_loses() {
    let s = store().await;
    let (a, b) =
        tokio::join!(s.claim("evt_1", NOW, NOW + 600, NOW + WEEK), s.claim("evt_1", NOW, NOW + 600, NOW + WEEK));
    let mut got = [a.expect("a"), b.expect("b")];
    got.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(got, [Claim::Acquired, Claim::InProgressElsewhere]);
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn a_completed_duplicate_is_skipped() {
    let s = store().await;
    assert_eq!(s.claim("evt_2", NOW, NOW + 600, NOW + WEEK).await.expect("claim"), Claim::Acquired);
    s.complete("evt_2", NOW + WEEK).await.expect("complete");
    assert_eq!(s.claim("evt_2", NOW + 5, NOW + 605, NOW + WEEK).await.expect("claim"), Claim::AlreadyCompleted);
    // Three days later (Stripe's retry horizon) it is still a duplicate.
    assert_eq!(s.claim("evt_2", NOW + 3 * 86_400, NOW, NOW + WEEK).await.expect("claim"), Claim::AlreadyCompleted);
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn an_expired_in_progress_claim_is_retaken() {
    let s = store().await;
    assert_eq!(s.claim("evt_3", NOW, NOW + 600, NOW + WEEK).await.expect("claim"), Claim::Acquired);
    assert_eq!(s.claim("evt_3", NOW + 599, NOW + 1199, NOW + WEEK).await.expect("claim"), Claim::InProgressElsewhere);
    assert_eq!(
        s.claim("evt_3", NOW + 601, NOW + 1201, NOW + WEEK).await.expect("claim"),
        Claim::Acquired,
        "a crashed attempt is retaken"
    );
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn a_completed_record_past_its_expiry_counts_as_absent_even_before_ttl_deletes_it() {
    let s = store().await;
    s.claim("evt_4", NOW, NOW + 600, NOW + 100).await.expect("claim");
    s.complete("evt_4", NOW + 100).await.expect("complete");
    assert_eq!(s.claim("evt_4", NOW + 101, NOW + 701, NOW + WEEK).await.expect("claim"), Claim::Acquired);
}

#[tokio::test]
#[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
async fn release_lets_a_retry_run_but_never_deletes_a_completed_record() {
    let s = store().await;
    s.claim("evt_5", NOW, NOW + 600, NOW + WEEK).await.expect("claim");
    s.release("evt_5").await.expect("release");
    assert_eq!(s.claim("evt_5", NOW + 1, NOW + 601, NOW + WEEK).await.expect("claim"), Claim::Acquired);
    s.complete("evt_5", NOW + WEEK).await.expect("complete");
    s.release("evt_5").await.expect("release is a no-op");
    assert_eq!(s.claim("evt_5", NOW + 2, NOW + 602, NOW + WEEK).await.expect("claim"), Claim::AlreadyCompleted);
}
