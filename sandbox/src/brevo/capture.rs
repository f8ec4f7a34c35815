//! The record of what the connector's client sent to a Brevo sandbox, for
//! the contract test (`tests/tests/brevo_contract.rs`): when
//! [`CAPTURE_DIR_ENV`] names a directory, every sandbox appends each request
//! that carries the client's `User-Agent` ([`CLIENT_AGENT_PREFIX`]) as one
//! JSON line `{"method","path","query","status","body"}` to its own file
//! `<pid>-<n>.jsonl` there. Requests without that agent — the sandbox's own
//! tests, which send invalid bodies on purpose — are not recorded; neither
//! is anything when the variable is unset (`stripe-brevo demo`, normal runs).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::value::RawValue;

/// The directory to record into (`scripts/test` sets it for the suite).
pub const CAPTURE_DIR_ENV: &str = "BREVO_CAPTURE_DIR";

/// How the connector's Brevo client names itself (`stripe-brevo/<version>`,
/// `shared::adapters::brevo::BrevoClient`); only such requests are recorded.
pub const CLIENT_AGENT_PREFIX: &str = "stripe-brevo/";

/// One recorded request (a line of the capture file).
#[derive(Serialize)]
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    status: u16,
    /// The body as sent when it is JSON, `null` when empty.
    body: Option<&'a RawValue>,
    /// The body as text when it is not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
}

/// One sandbox's capture file.
#[derive(Debug)]
pub(super) struct Capture {
    file: Mutex<File>,
    path: PathBuf,
}

impl Capture {
    /// The directory named by [`CAPTURE_DIR_ENV`], if set and not empty.
    pub(super) fn dir_from_env() -> Option<PathBuf> {
        std::env::var_os(CAPTURE_DIR_ENV).filter(|d| !d.is_empty()).map(PathBuf::from)
    }

    /// A new capture file in `dir` (created if needed); an error when it
    /// cannot be created (a capture silently missing would let the contract
    /// test check less than the suite sent).
    pub(super) fn open(dir: &Path) -> io::Result<Self> {
        static SANDBOXES: AtomicUsize = AtomicUsize::new(0);
        std::fs::create_dir_all(dir)?;
        let n = SANDBOXES.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{n}.jsonl", std::process::id()));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self { file: Mutex::new(file), path })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Records one request when `agent` is the client's.
    pub(super) fn record(
        &self,
        agent: Option<&str>,
        method: &str,
        path: &str,
        query: Option<&str>,
        status: u16,
        body: &[u8],
    ) {
        if !agent.is_some_and(|a| a.starts_with(CLIENT_AGENT_PREFIX)) {
            return;
        }
        let raw = (!body.is_empty()).then(|| serde_json::from_slice::<&RawValue>(body));
        let (json, text) = match raw {
            None => (None, None),
            Some(Ok(v)) => (Some(v), None),
            Some(Err(_)) => (None, Some(String::from_utf8_lossy(body).into_owned())),
        };
        let line = Line { method, path, query, status, body: json, body_text: text };
        let result = serde_json::to_vec(&line).map_err(io::Error::from).and_then(|mut bytes| {
            bytes.push(b'\n');
            // One write per line on an append-only file: lines never interleave.
            self.file.lock().unwrap_or_else(|p| p.into_inner()).write_all(&bytes)
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, file = %self.path.display(), "could not record a Brevo request");
        }
    }
}
