//! Where a command keeps its state ([`StateChoice`]) and the stores over it
//! ([`Backend`]): the SQLite state file, or with `--aws` the deployed stack's
//! SQS queue and DynamoDB tables (`QUEUE_URL`, `CURSOR_TABLE`, `DEDUP_TABLE`,
//! optional `DLQ_URL`), as the functions use them. Uses only [`crate::queue`].

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use shared::adapters::dynamodb::DynamoIdempotency;
use shared::adapters::dynamodb_cursors::DynamoCursors;
use shared::adapters::dynamodb_ledger::DynamoLedger;
use shared::adapters::sqlite::SqliteStore;
use shared::adapters::sqs::{SqsDeadLetters, SqsQueue};
use shared::config::{self, ProcessEnv};
use shared::ports::{ContactLedger, CursorStore, DeadLetters, EventQueue, IdempotencyStore};

use crate::queue::{LocalQueue, SqsWork, WorkQueue};

/// Where the command keeps its state.
#[derive(Debug, Clone)]
pub enum StateChoice {
    Local(PathBuf),
    Aws,
}

/// The state a command works on.
pub struct Backend {
    pub queue: Arc<dyn EventQueue>,
    pub work: Arc<dyn WorkQueue>,
    pub dedup: Arc<dyn IdempotencyStore>,
    /// The contacts last written to Brevo (see `shared::ports::ContactLedger`).
    pub ledger: Arc<dyn ContactLedger>,
    pub cursors: Arc<dyn CursorStore>,
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
    /// The SQLite store in local mode.
    pub local: Option<SqliteStore>,
    /// The AWS SDK configuration in `--aws` mode (for secrets held in AWS).
    pub aws: Option<aws_config::SdkConfig>,
    /// Where the state lives, for messages.
    pub describe: String,
}

impl Backend {
    pub async fn open(choice: &StateChoice, visibility_secs: i64) -> anyhow::Result<Self> {
        match choice {
            StateChoice::Local(path) => {
                let store = SqliteStore::open(path)
                    .with_context(|| format!("opening the state file {} (--state)", path.display()))?;
                Ok(Self {
                    queue: Arc::new(store.clone()),
                    work: Arc::new(LocalQueue { store: store.clone(), visibility_secs }),
                    dedup: Arc::new(store.clone()),
                    ledger: Arc::new(store.clone()),
                    cursors: Arc::new(store.clone()),
                    dead_letters: Some(Arc::new(store.clone())),
                    local: Some(store),
                    aws: None,
                    describe: path.display().to_string(),
                })
            }
            StateChoice::Aws => {
                let env = ProcessEnv;
                let needed =
                    |var: &str| config::required(&env, var).map_err(|e| anyhow::anyhow!("{e} (needed by --aws)"));
                let queue_url = needed(config::QUEUE_URL)?;
                let cursor_table = needed(config::CURSOR_TABLE)?;
                let dedup_table = needed(config::DEDUP_TABLE)?;
                let aws = shared::adapters::aws::load().await;
                let sqs = aws_sdk_sqs::Client::new(&aws);
                let ddb = aws_sdk_dynamodb::Client::new(&aws);
                let queue = SqsQueue::new(sqs.clone(), queue_url.clone());
                let dlq_url = match config::optional(&env, config::DLQ_URL) {
                    Some(u) => Some(u),
                    None => queue.dead_letter_queue_url().await,
                };
                let dlq = dlq_url.map(|u| SqsQueue::new(sqs, u));
                Ok(Self {
                    queue: Arc::new(queue.clone()),
                    dead_letters: dlq.clone().map(|q| Arc::new(SqsDeadLetters(q)) as Arc<dyn DeadLetters>),
                    work: Arc::new(SqsWork {
                        queue,
                        dead_letters: dlq,
                        visibility_secs: i32::try_from(visibility_secs).unwrap_or(60),
                    }),
                    dedup: Arc::new(DynamoIdempotency::new(ddb.clone(), dedup_table.clone())),
                    ledger: Arc::new(DynamoLedger::new(ddb.clone(), dedup_table)),
                    cursors: Arc::new(DynamoCursors::new(ddb, cursor_table)),
                    local: None,
                    aws: Some(aws),
                    describe: format!("SQS {queue_url}"),
                })
            }
        }
    }
}
