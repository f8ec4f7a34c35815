//! One container: a function process started with Lambda's variables and
//! its own Runtime API server, and the wait for one invocation's outcome
//! (the answer, the deadline — then SIGKILL —, or the process's end).

use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;
use tokio::sync::mpsc;

use super::api::{router, Pending, RuntimeApi, RuntimeEvent};
use super::{stats_mut, ErrorBody, FunctionSpec, InvokeError, Stats, EXIT_POLL, INIT_TIMEOUT, REGION};

pub(super) struct Container {
    child: Child,
    server: tokio::task::JoinHandle<()>,
    invocations: mpsc::Sender<Pending>,
    events: mpsc::UnboundedReceiver<RuntimeEvent>,
    spawned: Instant,
    initialised: bool,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
        self.server.abort();
    }
}

/// Lambda's reserved variables for a provided.al2023 function.
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>
pub(super) fn reserved_env(spec: &FunctionSpec, runtime_api: &str, stream: &str) -> Vec<(String, String)> {
    let task_root = spec.binary.parent().map(|p| p.display().to_string()).unwrap_or_default();
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name)),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream.to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Container {
    pub(super) async fn start(spec: &FunctionSpec, env_index: usize, cold_start: u64) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (to_runtime, pending) = mpsc::channel(1);
        let (events_tx, events) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            pending: tokio::sync::Mutex::new(pending),
            events: events_tx,
            timeout: spec.timeout,
            arn: spec.arn(),
        });
        let app = router(api);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        std::fs::create_dir_all(&spec.log_dir)?;
        let log_path = spec.log_dir.join(format!("{}-{env_index}.log", spec.name));
        let mut log = OpenOptions::new().create(true).append(true).open(&log_path)?;
        writeln!(log, "==== {} environment {env_index}: cold start {cold_start}", spec.name)?;
        let stream = format!("env{env_index}-start{cold_start}");
        let mut cmd = Command::new(&spec.binary);
        cmd.env_clear()
            .envs(reserved_env(spec, &addr.to_string(), &stream))
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let spawned = Instant::now();
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(e);
            }
        };
        Ok(Self { child, server, invocations: to_runtime, events, spawned, initialised: false })
    }

    /// Resolves when the process has exited, with how it ended.
    async fn exited(child: &mut Child) -> String {
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) => tokio::time::sleep(EXIT_POLL).await,
                Err(e) => return format!("cannot be waited for: {e}"),
            }
        }
    }

    /// Hands `body` to the runtime and waits for its answer, the deadline,
    /// or the process's end. Returns the result, the invocation's duration
    /// (when answered) and whether the container can be reused.
    pub(super) async fn run(
        &mut self,
        body: Vec<u8>,
        timeout: Duration,
        stats: &Stats,
    ) -> (Result<Value, InvokeError>, Option<Duration>, bool) {
        let id = request_id();
        if self.invocations.send(Pending { id: id.clone(), body }).await.is_err() {
            return (Err(InvokeError::Crashed("the runtime API server stopped".into())), None, false);
        }
        let init_until = Instant::now() + INIT_TIMEOUT;
        let mut handed: Option<Instant> = None;
        let mut init_error: Option<ErrorBody> = None;
        loop {
            let until = handed.map_or(init_until, |at| at + timeout);
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(RuntimeEvent::Handed { id: i, at }) if i == id => {
                        if !self.initialised {
                            self.initialised = true;
                            stats_mut(stats).init_durations.push(at - self.spawned);
                        }
                        handed = Some(at);
                    }
                    Some(RuntimeEvent::Response { id: i, body, at }) if i == id => {
                        let took = handed.map(|h| at - h);
                        let value = if body.is_empty() {
                            Ok(Value::Null)
                        } else {
                            serde_json::from_slice(&body).map_err(|e| {
                                InvokeError::FunctionError(ErrorBody {
                                    error_type: "Runtime.InvalidResponse".into(),
                                    error_message: e.to_string(),
                                })
                            })
                        };
                        return (value, took, true);
                    }
                    Some(RuntimeEvent::Error { id: i, error, at }) if i == id => {
                        return (Err(InvokeError::FunctionError(error)), handed.map(|h| at - h), true);
                    }
                    Some(RuntimeEvent::InitError(e)) => init_error = Some(e),
                    Some(_) => {} // another request id: nothing of this invocation
                    None => return (Err(InvokeError::Crashed("the runtime API server stopped".into())), None, false),
                },
                status = Self::exited(&mut self.child) => {
                    let err = match init_error.take() {
                        Some(e) => InvokeError::InitError(e),
                        None => InvokeError::Crashed(format!("process exited ({status})")),
                    };
                    return (Err(err), None, false);
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {
                    let _ = self.child.kill(); // SIGKILL, as Lambda ends a timed-out sandbox
                    let err = match handed {
                        Some(_) => InvokeError::Timeout(timeout),
                        None => InvokeError::InitError(init_error.take().unwrap_or(ErrorBody {
                            error_type: "Runtime.InitTimeout".into(),
                            error_message: format!("init did not finish within {INIT_TIMEOUT:?}"),
                        })),
                    };
                    return (Err(err), None, false);
                }
            }
        }
    }
}

/// A request id shaped like Lambda's (a UUID v4).
pub(super) fn request_id() -> String {
    let n: u128 = rand::rng().random();
    let n = (n & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}
