//! Helpers for the end-to-end tests in `tests/tests/`: the moto endpoint and
//! AWS configuration that `scripts/test` provides, the venv's Python, unique
//! resource names, and a log capture to prove what never reaches a log;
//! [`lambda`], the deployed-shape harness (a Lambda Runtime API emulator, the
//! SQS event source mapping, the schedule, the template as data).
//!
//! Tests that need moto or the venv are `#[ignore = "…"]` so a bare
//! `cargo test` stays green offline; `scripts/test` runs them all
//! (`--run-ignored all`) with `AWS_ENDPOINT_URL` and `STRIPE_BREVO_PYTHON` set.

pub mod lambda;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The moto endpoint; panics with a clear message when not run by `scripts/test`.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run this test through scripts/test, which starts moto")
}

/// SDK configuration pointing at moto with dummy credentials.
pub async fn aws() -> aws_config::SdkConfig {
    let _ = moto_endpoint();
    shared::adapters::aws::load().await
}

/// SDK configuration pointing at a closed loopback port (an outage).
pub async fn aws_unreachable() -> aws_config::SdkConfig {
    let port = closed_port();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
        .timeout_config(shared::adapters::aws::timeouts())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

/// The venv's Python (with `stripe` installed); panics when not run by `scripts/test`.
pub fn python() -> String {
    std::env::var("STRIPE_BREVO_PYTHON")
        .expect("STRIPE_BREVO_PYTHON is not set: run this test through scripts/test, which creates the venv")
}

/// A name unique within this test process and run, for queues and tables.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{}-{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}

/// Creates an SQS queue on moto and returns its URL.
pub async fn create_queue(aws: &aws_config::SdkConfig, name: &str) -> String {
    aws_sdk_sqs::Client::new(aws)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("moto creates the queue")
        .queue_url()
        .expect("queue url")
        .to_owned()
}

/// Everything logged while it is installed, at every level.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// A subscriber writing every level (`RUST_LOG=trace`, with the
    /// production caps of `shared::telemetry::filter`), spans included.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let me = self.clone();
        tracing_subscriber::fmt()
            .with_env_filter(shared::telemetry::filter("trace"))
            .with_ansi(false)
            .with_writer(move || me.clone())
            .finish()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `moto_server` process of the test's own on a fixed loopback port, so an
/// outage is the real thing: the process is killed (connections refused) and
/// later started again on the same port. moto keeps its state in memory, so a
/// restart comes back empty, like a region that lost nothing it had not yet
/// acknowledged: the test re-creates its queue or table after [`restart`].
///
/// [`restart`]: MotoProcess::restart
pub struct MotoProcess {
    port: u16,
    child: Option<std::process::Child>,
    log: std::path::PathBuf,
}

impl MotoProcess {
    /// Starts the venv's `moto_server` on a free 127.0.0.1 port and waits until it answers.
    pub fn start() -> Self {
        let log = std::env::temp_dir().join(format!("{}.log", unique("moto-outage")));
        let mut me = Self { port: closed_port(), child: None, log };
        me.restart();
        me
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration for this server (dummy credentials, the production
    /// timeouts, two attempts so an outage is reported quickly).
    pub async fn aws(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
            .timeout_config(shared::adapters::aws::timeouts())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .load()
            .await
    }

    /// Kills the process and waits for it: the port is closed afterwards.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// (Re)starts `moto_server` on the same port and waits (≤ 30 s) until it answers HTTP.
    pub fn restart(&mut self) {
        self.stop();
        let bin = std::path::Path::new(&python()).with_file_name("moto_server");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("moto log file");
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", bin.display()));
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::Read;
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let req =
                    format!("GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port);
                let mut head = [0u8; 12];
                // moto's dashboard answers 200; anything else is not (yet) our moto.
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_exact(&mut head).is_ok()
                    && head.starts_with(b"HTTP/1.")
                    && &head[9..12] == b"200"
                {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "moto_server exited ({status}) on port {}: {}",
                    self.port,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not answer on port {} within 30 s",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for MotoProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
