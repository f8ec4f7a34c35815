//! A stateful Brevo-like server for the tests, the benchmarks and
//! `stripe-brevo demo`. It answers the v3 endpoints the connector uses the
//! way Brevo does (status codes, `{"code","message"}` error bodies,
//! validation rules) and keeps what it was sent so tests can look.
//!
//! Every request is first checked against its operation in **Brevo's own
//! API definition** ([`spec`]: the vendored `openapi-v3.yml` plus the later
//! changes of `NOTES.md`): a field the operation does not have is refused
//! with 400 `invalid_parameter` (`unlinkListIds is not a valid parameter`),
//! a value of the wrong JSON type too (`listIds[0] should be an integer`), a
//! missing required field with 400 `missing_parameter`, too many items with
//! 400 `out_of_range`. Then Brevo's rules on values:
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /v3/contacts` | 201 `{"id"}` new, 204 updated; 400 unknown attribute, bad e-mail, SMS not E.164, SMS of another contact, existing contact without `updateEnabled`; values of the wrong type for their attribute ignored |
//! | `PUT /v3/contacts/{identifier}` (`identifierType`) | 204; 404 unknown contact; `attributes.EMAIL` renames, `unlinkListIds` leaves lists; same attribute rules |
//! | `POST /v3/contacts/import` | 202 `{"processId"}`; rows applied later ([`ImportPace`]), a row whose SMS belongs to another contact skipped; unknown attributes and bad values silently ignored; 400 over 10 MB |
//! | `GET /v3/processes/{id}` | 200 `{"id","status","name":"IMPORTUSER"}`, `queued` → `in_process` → `completed`; 404 unknown |
//! | `GET /v3/contacts/lists/{id}/contacts` | 200 `{"contacts":[{email,id,createdAt,modifiedAt,listIds,attributes,…}],"count"}`; `modifiedSince`, `limit` ≤ 500, `offset`, `sort` |
//! | `POST /v3/contacts/lists/{id}/contacts/add`, `/remove` | 201 `{"contacts":{"success","failure"}}` by `emails`, `ids` or `extIds`; 400 when nothing changes or > 150; 404 unknown list |
//! | `GET /v3/contacts/lists/{id}`, `GET /v3/contacts/lists` | 200 / 404 |
//! | `GET /v3/contacts/attributes`, `POST /v3/contacts/attributes/normal/{name}` | 200 / 201; 400 "Attribute name must be unique" |
//! | `POST /v3/events` | 204; 400 bad `event_name` (`[A-Za-z0-9_-]`) or identifiers |
//! | `POST /v3/events/batch` | 204 all recorded, 207 `{"errors":[{"index","message"}]}` partial, 400 none or > 200 |
//! | `POST /v3/orders/status` | 204 |
//! | `GET /v3/account` | 200 |
//!
//! Every request needs `api-key` equal to the configured key (else 401
//! `{"code":"unauthorized","message":"Key not found"}`). Faults can be
//! injected at run time per endpoint family ([`Family`]): the next `n`
//! requests, or each request with a probability drawn from a seeded RNG,
//! answer 429 (with `x-sib-ratelimit-limit/-remaining/-reset`), a 5xx, or
//! are delayed; [`BrevoSandbox::set_outage`] answers 503 to everything.
//! Every request can also wait a response latency with jitter
//! ([`BrevoSandboxOptions::latency`], [`BrevoSandbox::set_response_latency`];
//! none by default), which is the sandbox's pace, not a fault; and Brevo's
//! rate limits can be enforced per family ([`BrevoSandboxOptions::rate_limits`],
//! [`BrevoSandbox::set_rate_limit`]; none by default).
//! When [`CAPTURE_DIR_ENV`] is set, the requests of the connector's client
//! are recorded for the contract test (`capture`). Binds 127.0.0.1 on a
//! free port only; stops on drop or [`BrevoSandbox::shutdown`].
//!
//! Layout: this file holds the handle ([`BrevoSandbox`]: start, stop,
//! restart, set-up and what tests can read) and its options; `state` the
//! shared state; `http` the handler, the router and the answer helpers;
//! `spec` Brevo's definition and the check of a request against it;
//! `capture` the record of the client's requests; `faults` the endpoint
//! families and fault injection; `validation` the value rules shared by
//! several endpoints; `times` the date-times; one file per endpoint family:
//! `contacts`, `import` (and its process), `lists` (and the list's contacts,
//! paged by `limit`/`offset`), `attributes`, `events`, `orders`, `account`.

mod account;
mod attributes;
mod capture;
#[cfg(test)]
mod conformance_tests;
mod contacts;
mod events;
mod faults;
mod http;
mod import;
mod lists;
mod orders;
pub mod spec;
mod state;
#[cfg(test)]
mod tests;
mod times;
mod validation;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use capture::{CAPTURE_DIR_ENV, CLIENT_AGENT_PREFIX};
pub use contacts::SandboxContact;
pub use events::RecordedEvent;
pub use faults::{Family, Fault};
pub use http::SERVED_OPERATIONS;
pub use import::{ImportPace, ImportRecord, ImportStatus};

use crate::latency::{Jittered, Latency};
use state::{Shared, State};

/// The key the sandbox accepts unless told otherwise.
pub const SANDBOX_API_KEY: &str = "xkeysib-sandbox-0000";

/// How the sandbox starts.
#[derive(Debug, Clone)]
pub struct BrevoSandboxOptions {
    pub api_key: String,
    /// Pre-created lists (id → name).
    pub lists: BTreeMap<i64, String>,
    /// Pre-existing contact attributes (name → `text`/`float`/`date`/`boolean`).
    pub attributes: BTreeMap<String, String>,
    /// Seed of the RNG behind probabilistic faults.
    pub seed: u64,
    /// `x-sib-ratelimit-reset` sent with injected 429s (seconds).
    pub rate_limit_reset_secs: u64,
    /// `x-sib-ratelimit-limit` sent with injected 429s.
    pub rate_limit_limit: u64,
    /// Delay before every answer, uniform in [latency − jitter, latency +
    /// jitter] (see [`crate::latency`]); zero by default.
    pub latency: Duration,
    pub jitter: Duration,
    /// Brevo's rate limits, enforced per family (requests per one-second
    /// window, then 429 with Brevo's headers); none by default.
    pub rate_limits: BTreeMap<Family, u32>,
    /// Where to record the requests of the connector's client, for the
    /// contract test (see [`CAPTURE_DIR_ENV`]); by default the directory
    /// that variable names, none when it is unset.
    pub capture_dir: Option<PathBuf>,
    /// When an import's rows are applied (by default 100 ms after its 202).
    pub import_pace: ImportPace,
}

impl BrevoSandboxOptions {
    /// Imports are applied at this pace.
    pub fn with_import_pace(mut self, pace: ImportPace) -> Self {
        self.import_pace = pace;
        self
    }

    /// At most `per_second` requests of `family` per second (e.g. the General
    /// plan's 10 for contacts and events), then 429.
    pub fn with_rate_limit(mut self, family: Family, per_second: u32) -> Self {
        self.rate_limits.insert(family, per_second);
        self
    }

    /// Every answer waits uniformly in [latency − jitter, latency + jitter].
    pub fn with_latency(mut self, latency: Duration, jitter: Duration) -> Self {
        self.latency = latency;
        self.jitter = jitter;
        self
    }
}

impl Default for BrevoSandboxOptions {
    /// Key [`SANDBOX_API_KEY`]; lists 20 `all_customers`, 21 `subscribers`,
    /// 22 `churned` (the default config's ids); Brevo's default attributes
    /// FIRSTNAME, LASTNAME, SMS; seed 42; reset 1 s; limit 10; no latency,
    /// no rate limit enforced; imports applied 100 ms after their 202;
    /// requests recorded into `$BREVO_CAPTURE_DIR` when it is set.
    fn default() -> Self {
        Self {
            api_key: SANDBOX_API_KEY.to_owned(),
            lists: [(20, "all_customers"), (21, "subscribers"), (22, "churned")]
                .into_iter()
                .map(|(id, n)| (id, n.to_owned()))
                .collect(),
            attributes: ["FIRSTNAME", "LASTNAME", "SMS"]
                .into_iter()
                .map(|n| (n.to_owned(), "text".to_owned()))
                .collect(),
            seed: 42,
            rate_limit_reset_secs: 1,
            rate_limit_limit: 10,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_limits: BTreeMap::new(),
            capture_dir: capture::Capture::dir_from_env(),
            import_pace: ImportPace::default(),
        }
    }
}

/// One line of the request log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub family: Family,
}

/// Requests received per family (faulted and refused ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    pub contacts: u64,
    pub events: u64,
    pub orders: u64,
    pub other: u64,
}

impl FamilyCounts {
    pub fn get(&self, f: Family) -> u64 {
        match f {
            Family::Contacts => self.contacts,
            Family::Events => self.events,
            Family::Orders => self.orders,
            Family::Other => self.other,
        }
    }

    pub fn total(&self) -> u64 {
        self.contacts + self.events + self.orders + self.other
    }
}

/// A running Brevo-like server on 127.0.0.1.
pub struct BrevoSandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for BrevoSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrevoSandbox").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl BrevoSandbox {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub async fn start(opts: BrevoSandboxOptions) -> std::io::Result<Self> {
        let attributes = opts.attributes.into_iter().map(|(k, v)| (k.to_uppercase(), v.to_lowercase())).collect();
        let state = State {
            api_key: opts.api_key,
            contacts: BTreeMap::new(),
            next_contact_id: 1,
            lists: opts.lists,
            attributes,
            events: Vec::new(),
            orders: BTreeMap::new(),
            imports: Vec::new(),
            pending_imports: BTreeMap::new(),
            import_pace: opts.import_pace,
            next_process_id: 1,
            log: Vec::new(),
            counts: FamilyCounts::default(),
            rate_limited: FamilyCounts::default(),
            faults: HashMap::new(),
            outage: false,
            rng: StdRng::seed_from_u64(opts.seed),
            reset_secs: opts.rate_limit_reset_secs,
            limit: opts.rate_limit_limit,
            latency: Jittered::new(Latency::new(opts.latency, opts.jitter), opts.seed),
            limits: opts.rate_limits.iter().map(|(f, n)| (*f, faults::Window::new(*n))).collect(),
        };
        let capture = opts.capture_dir.as_deref().map(capture::Capture::open).transpose()?;
        // Brevo's definition is parsed once per process, here rather than
        // in the first request (which would answer late).
        tokio::task::spawn_blocking(spec::spec).await.map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared { state: Mutex::new(state), capture });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut me = Self { addr, shared, stop: None, task: None };
        me.serve(listener);
        Ok(me)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .fallback(http::handle)
            .with_state(Arc::clone(&self.shared))
            .layer(DefaultBodyLimit::max(16 * 1024 * 1024));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "Brevo sandbox stopped with an error");
            }
        });
        self.stop = Some(stop);
        self.task = Some(task);
    }

    /// Stops serving (the port is closed: connections are refused) and keeps
    /// every contact, list and event, so [`restart`](Self::restart) brings the
    /// same Brevo account back: an outage of the real kind, not a 503.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
    }

    /// Serves again on the same port with the same state.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    /// `http://127.0.0.1:PORT` (the client appends `/v3/...`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> String {
        self.shared.lock().api_key.clone()
    }

    /// Stops the server and waits (at most 2 s) for it to finish.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    // ---- state set-up ----
    // (Fault injection is in `faults`.)

    pub fn add_list(&self, id: i64, name: &str) {
        self.shared.lock().lists.insert(id, name.to_owned());
    }

    pub fn add_attribute(&self, name: &str, attribute_type: &str) {
        self.shared.lock().attributes.insert(name.to_uppercase(), attribute_type.to_lowercase());
    }

    /// Creates or replaces a contact directly (no validation).
    pub fn seed_contact(&self, email: &str, attributes: BTreeMap<String, Value>, list_ids: &[i64]) {
        let mut st = self.shared.lock();
        let key = email.trim().to_lowercase();
        let id = st.contacts.get(&key).map(|c| c.id).unwrap_or_else(|| {
            st.next_contact_id += 1;
            st.next_contact_id - 1
        });
        let attributes = attributes.into_iter().map(|(k, v)| (k.to_uppercase(), v)).collect();
        let now = times::now_ms();
        let created_at = st.contacts.get(&key).map_or(now, |c| c.created_at);
        st.contacts.insert(
            key.clone(),
            SandboxContact {
                id,
                email: key,
                attributes,
                list_ids: list_ids.iter().copied().collect(),
                created_at,
                modified_at: now,
            },
        );
    }

    /// Sets a contact's `modifiedAt` (unix milliseconds), e.g. to put it
    /// before a `modifiedSince`.
    pub fn set_modified_at(&self, email: &str, unix_ms: i64) {
        if let Some(c) = self.shared.lock().contacts.get_mut(&email.trim().to_lowercase()) {
            c.modified_at = unix_ms;
        }
    }

    /// From now on, imports are applied at this pace (pending ones too).
    pub fn set_import_pace(&self, pace: ImportPace) {
        self.shared.lock().import_pace = pace;
    }

    /// Applies every pending import now, as if Brevo had finished them.
    pub fn complete_imports(&self) {
        self.shared.lock().complete_all_imports();
    }

    // ---- accessors ----

    pub fn contact(&self, email: &str) -> Option<SandboxContact> {
        self.shared.lock().contacts.get(&email.trim().to_lowercase()).cloned()
    }

    pub fn contacts(&self) -> Vec<SandboxContact> {
        self.shared.lock().contacts.values().cloned().collect()
    }

    pub fn events(&self) -> Vec<RecordedEvent> {
        self.shared.lock().events.clone()
    }

    pub fn events_for(&self, email: &str) -> Vec<RecordedEvent> {
        let key = email.trim().to_lowercase();
        self.shared.lock().events.iter().filter(|e| e.email.as_deref() == Some(key.as_str())).cloned().collect()
    }

    /// The lists a contact is in (empty when unknown).
    pub fn lists_of(&self, email: &str) -> Vec<i64> {
        self.contact(email).map(|c| c.list_ids.into_iter().collect()).unwrap_or_default()
    }

    pub fn lists(&self) -> BTreeMap<i64, String> {
        self.shared.lock().lists.clone()
    }

    /// Attribute name → type.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        self.shared.lock().attributes.clone()
    }

    /// Orders by id, as last posted.
    pub fn orders(&self) -> BTreeMap<String, Value> {
        self.shared.lock().orders.clone()
    }

    pub fn imports(&self) -> Vec<ImportRecord> {
        self.shared.lock().imports.clone()
    }

    /// The file this sandbox records the client's requests into, if any.
    pub fn capture_file(&self) -> Option<PathBuf> {
        self.shared.capture.as_ref().map(|c| c.path().to_path_buf())
    }

    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    pub fn clear_request_log(&self) {
        let mut st = self.shared.lock();
        st.log.clear();
        st.counts = FamilyCounts::default();
        st.rate_limited = FamilyCounts::default();
    }

    pub fn request_counts(&self) -> FamilyCounts {
        self.shared.lock().counts
    }

    pub fn requests(&self, family: Family) -> u64 {
        self.request_counts().get(family)
    }
}

impl Drop for BrevoSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
