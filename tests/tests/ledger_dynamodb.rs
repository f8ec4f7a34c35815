//! The [`ledger`](super::ledger) suite against the DynamoDB ledger on moto
//! with the real SDK, in a dedup table created as the other moto tests do,
//! through two SDK clients (two Lambda containers).

use std::sync::Arc;

use e2e_tests::{aws, unique};
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::dynamodb_ledger::DynamoLedger;

use super::ledger::{ledger_suite, Ledgers};

async fn open() -> Ledgers {
    let aws = aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let table = unique("dedup");
    DynamoIdempotency::create_table(&client, &table).await.expect("table");
    Ledgers {
        a: Arc::new(DynamoLedger::new(client, table.clone())),
        b: Arc::new(DynamoLedger::new(aws_sdk_dynamodb::Client::new(&aws), table)),
        _keep: None,
    }
}

ledger_suite!(
    #[ignore = "needs moto (AWS_ENDPOINT_URL): run scripts/test"]
    open
);
