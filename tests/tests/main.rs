//! Every end-to-end test, in one test binary. Each module is one area; the
//! module name is the first part of each test's name, so nextest filters
//! such as `-E 'test(soak)'` still pick an area.
#![allow(clippy::unwrap_used)]

mod common;

mod brevo_client;
mod brevo_contract;
mod consumer;
mod dedup_dynamodb;
mod deployed_shape;
mod fuzz;
mod lambda_e2e;
mod lambda_runtime;
mod ledger;
mod ledger_dynamodb;
mod poller;
mod soak;
mod stripe_client;
mod stripe_sdk_signatures;
mod template;
mod webhook_sqs;
