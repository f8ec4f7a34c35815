//! A local Lambda Runtime API emulator for the real function binaries.
//!
//! An [`ExecutionEnvironment`] is one Lambda container. On its first
//! invocation (and after anything that ends a container: a timeout, a crash,
//! an init error) it starts the binary with `AWS_LAMBDA_RUNTIME_API` pointing
//! at a fresh Runtime API server of its own on 127.0.0.1, Lambda's reserved
//! variables and the function's environment (nothing else is inherited).
//! It serves
//! - `GET /2018-06-01/runtime/invocation/next`: the next event, with
//!   `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` (now +
//!   the function's timeout), `Lambda-Runtime-Invoked-Function-Arn` and
//!   `Lambda-Runtime-Trace-Id`;
//! - `POST …/invocation/{id}/response`, `…/invocation/{id}/error`,
//!   `…/init/error`.
//!
//! It **enforces the deadline**: a function that has not answered by it is
//! killed (SIGKILL) and the invocation is a [`InvokeError::Timeout`]; the next
//! invocation starts a new process (a cold start), as Lambda does. The init
//! phase is limited to [`INIT_TIMEOUT`] and does not count toward the
//! function's timeout (on-demand Lambda).
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>
//!
//! A [`Function`] is a pool of environments: its concurrency (the event
//! source's `MaximumConcurrency`, a reserved concurrency). Each container's
//! stdout/stderr goes to `{log_dir}/{name}-{n}.log` (appended, a line per
//! cold start), so its log survives the process.
//!
//! Layout: this file holds the public handles and their counters; `api` the
//! Runtime API server; `container` a process with its server and the wait
//! for one invocation's outcome.

mod api;
mod container;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::Value;
use tokio::sync::Semaphore;

use container::Container;

/// Lambda's limit on an on-demand function's init phase.
/// <https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html>
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// How often a running invocation checks whether its process exited.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// What a container runs.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`, the ARN, log files).
    pub name: String,
    pub binary: PathBuf,
    /// The function's timeout: each invocation's deadline.
    pub timeout: Duration,
    pub memory_mb: u32,
    /// The function's environment (the template's variables, resolved, and
    /// the local stand-ins' endpoints and credentials). The process gets
    /// these and Lambda's reserved variables, nothing from the test process.
    pub env: Vec<(String, String)>,
    /// Where container logs go.
    pub log_dir: PathBuf,
}

impl FunctionSpec {
    pub fn arn(&self) -> String {
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.name)
    }
}

/// A function error as the runtime reported it (`POST …/error`, `…/init/error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    pub error_type: String,
    pub error_message: String,
}

impl ErrorBody {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let header = headers.get("lambda-runtime-function-error-type").and_then(|h| h.to_str().ok());
        Self {
            error_type: v["errorType"].as_str().or(header).unwrap_or("Unhandled").to_owned(),
            error_message: v["errorMessage"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

/// Why an invocation gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// No answer by the deadline: the process was killed.
    #[error("timed out after {0:?} (process killed)")]
    Timeout(Duration),
    /// The handler returned an error (`POST …/invocation/{id}/error`).
    #[error("function error {}: {}", .0.error_type, .0.error_message)]
    FunctionError(ErrorBody),
    /// The runtime reported an init error, or init outlasted [`INIT_TIMEOUT`].
    #[error("init error {}: {}", .0.error_type, .0.error_message)]
    InitError(ErrorBody),
    /// The process exited (or could not start) before answering.
    #[error("crashed: {0}")]
    Crashed(String),
    /// Every environment was busy (an asynchronous invocation over the concurrency).
    #[error("throttled: every execution environment is busy")]
    Throttled,
}

/// What happened to a function's invocations (all its environments).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub invocations: u64,
    pub succeeded: u64,
    pub timeouts: u64,
    pub function_errors: u64,
    pub init_errors: u64,
    pub crashes: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    /// Per answered invocation: from the event handed out to the answer.
    pub durations: Vec<Duration>,
    /// Per cold start: from the process spawned to its first `/next`.
    pub init_durations: Vec<Duration>,
}

impl Counters {
    fn record(&mut self, result: &Result<Value, InvokeError>) {
        self.invocations += 1;
        match result {
            Ok(_) => self.succeeded += 1,
            Err(InvokeError::Timeout(_)) => self.timeouts += 1,
            Err(InvokeError::FunctionError(_)) => self.function_errors += 1,
            Err(InvokeError::InitError(_)) => self.init_errors += 1,
            Err(InvokeError::Crashed(_)) => self.crashes += 1,
            Err(InvokeError::Throttled) => self.throttles += 1,
        }
    }

    /// The `q` quantile (0..=1) of the durations.
    pub fn duration_quantile(&self, q: f64) -> Option<Duration> {
        let mut d = self.durations.clone();
        d.sort();
        let last = d.len().checked_sub(1)?;
        let i = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
        d.get(i).copied()
    }

    /// One line for a report.
    pub fn summary(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{}ms", d.as_millis()));
        format!(
            "invocations={} ok={} timeouts={} errors={} init_errors={} crashes={} throttled={} cold_starts={} \
             duration_p50={} duration_max={} init_max={}",
            self.invocations,
            self.succeeded,
            self.timeouts,
            self.function_errors,
            self.init_errors,
            self.crashes,
            self.throttles,
            self.cold_starts,
            ms(self.duration_quantile(0.5)),
            ms(self.duration_quantile(1.0)),
            ms(self.init_durations.iter().max().copied()),
        )
    }
}

type Stats = Arc<Mutex<Counters>>;

fn stats_mut(stats: &Stats) -> std::sync::MutexGuard<'_, Counters> {
    stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One execution environment (a container): at most one invocation at a time.
pub struct ExecutionEnvironment {
    spec: Arc<FunctionSpec>,
    index: usize,
    stats: Stats,
    container: tokio::sync::Mutex<Option<Container>>,
}

impl ExecutionEnvironment {
    fn new(spec: Arc<FunctionSpec>, index: usize, stats: Stats) -> Self {
        Self { spec, index, stats, container: tokio::sync::Mutex::new(None) }
    }

    /// A standalone environment with counters of its own.
    pub fn standalone(spec: FunctionSpec) -> Self {
        Self::new(Arc::new(spec), 0, Stats::default())
    }

    /// Invokes synchronously (waits while another invocation runs here).
    pub async fn invoke(&self, payload: &Value) -> Result<Value, InvokeError> {
        let mut slot = self.container.lock().await;
        self.invoke_in(&mut slot, payload).await
    }

    async fn invoke_in(&self, slot: &mut Option<Container>, payload: &Value) -> Result<Value, InvokeError> {
        let body = serde_json::to_vec(payload).unwrap_or_default();
        if slot.is_none() {
            let n = {
                let mut s = stats_mut(&self.stats);
                s.cold_starts += 1;
                s.cold_starts
            };
            match Container::start(&self.spec, self.index, n).await {
                Ok(c) => *slot = Some(c),
                Err(e) => {
                    let result =
                        Err(InvokeError::Crashed(format!("{} could not start: {e}", self.spec.binary.display())));
                    stats_mut(&self.stats).record(&result);
                    return result;
                }
            }
        }
        let Some(container) = slot.as_mut() else {
            return Err(InvokeError::Crashed("no container".into()));
        };
        let (result, took, keep) = container.run(body, self.spec.timeout, &self.stats).await;
        if !keep {
            *slot = None; // dropping kills the process and stops its server
        }
        let mut s = stats_mut(&self.stats);
        s.record(&result);
        s.durations.extend(took);
        result
    }

    pub fn counters(&self) -> Counters {
        stats_mut(&self.stats).clone()
    }

    /// Ends the container (if any) as Lambda does when it reclaims one.
    pub async fn shut_down(&self) {
        *self.container.lock().await = None;
    }
}

/// A function: `concurrency` execution environments sharing one set of counters.
pub struct Function {
    spec: Arc<FunctionSpec>,
    environments: Vec<ExecutionEnvironment>,
    free: Semaphore,
    stats: Stats,
}

impl Function {
    pub fn new(spec: FunctionSpec, concurrency: usize) -> Self {
        let spec = Arc::new(spec);
        let stats = Stats::default();
        let n = concurrency.max(1);
        let environments =
            (0..n).map(|i| ExecutionEnvironment::new(Arc::clone(&spec), i, Arc::clone(&stats))).collect();
        Self { spec, environments, free: Semaphore::new(n), stats }
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    pub fn concurrency(&self) -> usize {
        self.environments.len()
    }

    /// Invokes synchronously, waiting for a free environment (a warm one first).
    pub async fn invoke(&self, payload: &Value) -> Result<Value, InvokeError> {
        let Ok(_permit) = self.free.acquire().await else {
            return Err(InvokeError::Throttled);
        };
        self.invoke_on_free(payload).await
    }

    /// Invokes only if an environment is free now; otherwise counts and
    /// returns [`InvokeError::Throttled`] (an asynchronous invocation over a
    /// reserved concurrency).
    pub async fn try_invoke(&self, payload: &Value) -> Result<Value, InvokeError> {
        let Ok(_permit) = self.free.try_acquire() else {
            let result = Err(InvokeError::Throttled);
            stats_mut(&self.stats).record(&result);
            return result;
        };
        self.invoke_on_free(payload).await
    }

    /// With a permit held, at most `concurrency − 1` environments are taken.
    async fn invoke_on_free(&self, payload: &Value) -> Result<Value, InvokeError> {
        for warm_only in [true, false] {
            for env in &self.environments {
                let Ok(mut slot) = env.container.try_lock() else { continue };
                if warm_only && slot.is_none() {
                    continue;
                }
                return env.invoke_in(&mut slot, payload).await;
            }
        }
        Err(InvokeError::Crashed("no free environment although a permit was held".into()))
    }

    /// Environments running an invocation now.
    pub fn busy(&self) -> usize {
        self.environments.len() - self.free.available_permits()
    }

    pub fn counters(&self) -> Counters {
        stats_mut(&self.stats).clone()
    }

    /// The last `lines` lines of each environment's log, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for i in 0..self.environments.len() {
            let path = self.spec.log_dir.join(format!("{}-{i}.log", self.spec.name));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            out.push_str(&format!("--- {}\n", path.display()));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Log lines of every environment that contain `needle`, counted.
    pub fn log_matches(&self, needle: &str) -> usize {
        (0..self.environments.len())
            .map(|i| self.spec.log_dir.join(format!("{}-{i}.log", self.spec.name)))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.lines().filter(|l| l.contains(needle)).count())
            .sum()
    }

    /// Ends every container.
    pub async fn shut_down(&self) {
        for env in &self.environments {
            env.shut_down().await;
        }
    }
}

/// The variables that point a function at the local AWS stand-in (moto):
/// `AWS_ENDPOINT_URL` and the dummy credentials, from the test's environment.
pub fn aws_stand_in_env() -> Vec<(String, String)> {
    ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_owned(), v)))
        .collect()
}

/// Environment overlay: `overrides` replace or add to `base`, in order.
pub fn overlay(base: Vec<(String, String)>, overrides: &[(&str, String)]) -> Vec<(String, String)> {
    let mut map: BTreeMap<String, String> = base.into_iter().collect();
    for (k, v) in overrides {
        map.insert((*k).to_owned(), v.clone());
    }
    map.into_iter().collect()
}

#[cfg(test)]
mod tests;
