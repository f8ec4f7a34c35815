//! The deployed shape, locally: the three real function binaries driven the
//! way AWS drives them, with the numbers read from `template.yaml`.
//!
//! - [`template`]: the SAM template read with `serde_norway` (CloudFormation
//!   tags kept opaque, `!Ref Parameter` resolved to its default): timeouts,
//!   memory, environment, the SQS event source, queues, schedule;
//! - [`runtime`]: a Lambda Runtime API emulator. An [`ExecutionEnvironment`]
//!   is one container: it starts the binary on first use (a cold start),
//!   hands it one invocation at a time with Lambda's headers, enforces the
//!   deadline (SIGKILL, counted as a timeout; the next invocation is a cold
//!   start again). A [`Function`] is a pool of them (its concurrency);
//! - [`events`]: the payloads AWS sends (SQS batch, API Gateway HTTP API v2,
//!   EventBridge schedule) and the SQS partial-batch response rules;
//! - [`esm`]: the SQS event source mapping over a real (moto) queue: batch
//!   size, batching window, maximum concurrency, partial batch failures,
//!   deletes; failures come back after the visibility timeout and moto's
//!   redrive policy moves a message to the DLQ after `maxReceiveCount`;
//! - [`schedule`]: an EventBridge `rate(...)` schedule invoking a function
//!   asynchronously (a busy reserved-concurrency function is throttled);
//! - [`stack`]: the template's queues, tables and secrets on moto, and the
//!   logical-id map that resolves each function's environment.
//!
//! What it may use: the AWS SDK against moto, the venv's Python (boto3, for
//! Secrets Manager), local processes it starts itself (and kills by handle).
//! Servers bind 127.0.0.1 only.

pub mod esm;
pub mod events;
pub mod runtime;
pub mod schedule;
pub mod stack;
pub mod template;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use esm::{EventSourceMapping, MappingStats, QueueRef, SqsMapping};
pub use runtime::{Counters, ErrorBody, ExecutionEnvironment, Function, FunctionSpec, InvokeError};
pub use schedule::{Schedule, ScheduledRun};
pub use stack::LocalStack;
pub use template::Template;

/// The workspace root (where `template.yaml` and `events/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".."))
}

/// The debug binaries of the three functions (built if missing or stale).
///
/// `cargo test --workspace --no-run` is the build nextest itself runs (each
/// function crate has an integration test, so its binary is part of it): under
/// `scripts/test` it must be a no-op, because other tests are running from the
/// binaries it would rewrite. Two things keep it one:
/// - the variables cargo and nextest set for a test process (`CARGO_MANIFEST_DIR`,
///   `CARGO_PKG_*`, `NEXTEST_*`, …) are removed: build scripts watch some of
///   them (ring's reruns on `CARGO_MANIFEST_DIR`), and a rerun rebuilds the
///   whole tree mid-run;
/// - a build that rewrites this very test binary fails the test by name.
///
/// A `cargo build -p …` here would resolve features without the workspace's
/// dev-dependencies and compile a second copy of every dependency.
pub fn function_binaries() -> PathBuf {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args(["test", "--workspace", "--no-run"]);
    let injected = |k: &str| {
        k.starts_with("NEXTEST")
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_EXE_")
            || matches!(k, "CARGO_MANIFEST_DIR" | "CARGO_MANIFEST_PATH" | "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE")
            || matches!(k, "CARGO_TARGET_TMPDIR" | "OUT_DIR" | "RUST_RECURSION_COUNT")
    };
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(injected) {
            cmd.env_remove(&k);
        }
    }
    let me = std::env::current_exe().expect("test binary path");
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let before = stamp(&me);
    let out = cmd.output().expect("cargo runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo build of the function binaries failed:\n{log}");
    assert_eq!(
        stamp(&me),
        before,
        "the in-test build rewrote the running test binary (and so the binaries other tests are running): \
         an environment variable that a build script watches differs from the outer build's\n{log}"
    );
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    target.join("debug")
}

/// A directory under the workspace's `.tmp/` for a test's logs and files.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = workspace_root().join(".tmp").join(name);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}
