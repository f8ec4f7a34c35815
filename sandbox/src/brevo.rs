//! A stateful Brevo-like server for the tests, the benchmarks and
//! `stripe-brevo demo`. It answers the v3 endpoints the connector uses the
//! way Brevo does (status codes, `{"code","message"}` error bodies,
//! validation rules) and keeps what it was sent so tests can look:
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /v3/contacts` | 201 `{"id"}` new, 204 updated; 400 unknown attribute, bad e-mail, SMS not E.164, SMS of another contact |
//! | `POST /v3/contacts/import` | 202 `{"processId"}`, applied at once; unknown attributes and bad values silently ignored |
//! | `POST /v3/contacts/lists/{id}/contacts/add`, `/remove` | 201 `{"contacts":{"success","failure"}}`; 400 when nothing changes or > 150 e-mails; 404 unknown list |
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
//! Binds 127.0.0.1 on a free port only; stops on drop or
//! [`BrevoSandbox::shutdown`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The key the sandbox accepts unless told otherwise.
pub const SANDBOX_API_KEY: &str = "xkeysib-sandbox-0000";

/// Brevo endpoint families (rate-limited separately by Brevo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `/v3/contacts*` (contacts, import, lists, attributes).
    Contacts,
    /// `/v3/events*`.
    Events,
    /// `/v3/orders*`.
    Orders,
    /// Everything else (`/v3/account`, unknown paths).
    Other,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Contacts, Family::Events, Family::Orders, Family::Other];

    pub fn of(path: &str) -> Self {
        if path.starts_with("/v3/contacts") {
            Self::Contacts
        } else if path.starts_with("/v3/events") {
            Self::Events
        } else if path.starts_with("/v3/orders") {
            Self::Orders
        } else {
            Self::Other
        }
    }
}

/// An injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with Brevo's rate-limit headers (reset = the options' value).
    RateLimited,
    /// This status (500, 502, 503, …) with a JSON error body.
    Status(u16),
    /// Answer normally, after this long.
    Delay(Duration),
}

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
}

impl Default for BrevoSandboxOptions {
    /// Key [`SANDBOX_API_KEY`]; lists 20 `all_customers`, 21 `subscribers`,
    /// 22 `churned` (the default config's ids); Brevo's default attributes
    /// FIRSTNAME, LASTNAME, SMS; seed 42; reset 1 s; limit 10.
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
        }
    }
}

/// A contact as the sandbox holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxContact {
    pub id: i64,
    /// Lower-cased.
    pub email: String,
    /// Upper-cased attribute names.
    pub attributes: BTreeMap<String, Value>,
    pub list_ids: BTreeSet<i64>,
}

/// An event as posted (single or batch).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub event_name: String,
    /// `identifiers.email_id`, lower-cased.
    pub email: Option<String>,
    pub event_date: Option<String>,
    pub event_properties: Map<String, Value>,
    /// The whole event object as received.
    pub raw: Value,
}

/// One import as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    pub process_id: i64,
    pub list_ids: Vec<i64>,
    /// Contacts created or updated.
    pub applied: usize,
    /// Items skipped (invalid e-mail, existing contact without update).
    pub skipped: usize,
    pub body_bytes: usize,
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

#[derive(Debug, Default)]
struct FaultPlan {
    queued: VecDeque<Fault>,
    random: Option<(f64, Fault)>,
}

#[derive(Debug)]
struct State {
    api_key: String,
    contacts: BTreeMap<String, SandboxContact>,
    next_contact_id: i64,
    lists: BTreeMap<i64, String>,
    attributes: BTreeMap<String, String>,
    events: Vec<RecordedEvent>,
    orders: BTreeMap<String, Value>,
    imports: Vec<ImportRecord>,
    next_process_id: i64,
    log: Vec<LoggedRequest>,
    counts: FamilyCounts,
    faults: HashMap<Family, FaultPlan>,
    outage: bool,
    rng: StdRng,
    reset_secs: u64,
    limit: u64,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic in a
        // test holding the lock does not make it unusable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
            next_process_id: 1,
            log: Vec::new(),
            counts: FamilyCounts::default(),
            faults: HashMap::new(),
            outage: false,
            rng: StdRng::seed_from_u64(opts.seed),
            reset_secs: opts.rate_limit_reset_secs,
            limit: opts.rate_limit_limit,
        };
        let shared = Arc::new(Shared { state: Mutex::new(state) });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut me = Self { addr, shared, stop: None, task: None };
        me.serve(listener);
        Ok(me)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .fallback(handle)
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

    // ---- fault injection ----

    /// The next `n` requests of `family` get `fault`.
    pub fn fail_next(&self, family: Family, n: usize, fault: Fault) {
        let mut st = self.shared.lock();
        let plan = st.faults.entry(family).or_default();
        plan.queued.extend(std::iter::repeat_n(fault, n));
    }

    /// Each request of `family` gets `fault` with this probability (seeded RNG).
    pub fn fail_randomly(&self, family: Family, probability: f64, fault: Fault) {
        let p = if probability.is_finite() { probability.clamp(0.0, 1.0) } else { 0.0 };
        self.shared.lock().faults.entry(family).or_default().random = Some((p, fault));
    }

    /// While on, every request is answered 503.
    pub fn set_outage(&self, on: bool) {
        self.shared.lock().outage = on;
    }

    /// Removes every injected fault and ends an outage.
    pub fn reset_faults(&self) {
        let mut st = self.shared.lock();
        st.faults.clear();
        st.outage = false;
    }

    // ---- state set-up ----

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
        st.contacts.insert(
            key.clone(),
            SandboxContact { id, email: key, attributes, list_ids: list_ids.iter().copied().collect() },
        );
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

    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    pub fn clear_request_log(&self) {
        let mut st = self.shared.lock();
        st.log.clear();
        st.counts = FamilyCounts::default();
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

// ---- HTTP ----

/// Status and JSON body (extra headers are added by [`handle`]).
type Answer = (StatusCode, Option<Value>);

fn answer(status: u16, body: Option<Value>) -> Answer {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    answer(status, Some(json!({ "code": code, "message": message })))
}

fn into_response((status, body): Answer, headers: HeaderMap) -> Response {
    let mut resp = match body {
        Some(v) => (status, axum::Json(v)).into_response(),
        None => status.into_response(),
    };
    resp.headers_mut().extend(headers);
    resp
}

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let family = Family::of(&path);
    // Faults are decided first (a throttled or failing Brevo answers before
    // looking at the request), outside the lock for delays.
    let fault = {
        let mut st = shared.lock();
        *st.counts_mut(family) += 1;
        if st.outage {
            Some(Fault::Status(503))
        } else {
            st.next_fault(family)
        }
    };
    let mut extra = HeaderMap::new();
    let injected = match fault {
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(Fault::RateLimited) => {
            let st = shared.lock();
            let num = |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
            extra.insert("x-sib-ratelimit-limit", num(st.limit));
            extra.insert("x-sib-ratelimit-remaining", HeaderValue::from_static("0"));
            extra.insert("x-sib-ratelimit-reset", num(st.reset_secs));
            Some(error(429, "too_many_requests", "Too many requests"))
        }
        Some(Fault::Status(s)) => Some(error(s, "internal_error", "Internal server error")),
        None => None,
    };
    let mut st = shared.lock();
    let out = match injected {
        Some(a) => a,
        None => {
            let key_ok = headers.get("api-key").and_then(|v| v.to_str().ok()).is_some_and(|k| k == st.api_key);
            if key_ok {
                st.route(&method, &path, &body)
            } else {
                error(401, "unauthorized", "Key not found")
            }
        }
    };
    st.log.push(LoggedRequest { method: method.to_string(), path, status: out.0.as_u16(), family });
    drop(st);
    into_response(out, extra)
}

// ---- validation ----

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let ok_local =
        !local.is_empty() && local.len() <= 64 && !local.chars().any(|c| c.is_whitespace() || c == '@' || c == ',');
    let labels: Vec<&str> = domain.split('.').collect();
    let ok_domain = labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels.last().is_some_and(|t| t.len() >= 2);
    ok_local && ok_domain
}

/// `+` then 8–15 digits (CONTRACT.md's E.164 rule).
fn valid_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

fn valid_event_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Whether `v` fits an attribute of type `t`.
fn fits(t: &str, v: &Value) -> bool {
    match t {
        "float" => v.is_number(),
        "boolean" => v.is_boolean(),
        "date" => v.as_str().is_some_and(valid_date),
        _ => v.is_string() || v.is_number(),
    }
}

fn ids(v: Option<&Value>) -> Result<Vec<i64>, Answer> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_i64().ok_or_else(|| error(400, "invalid_parameter", "list ids must be integers")))
            .collect(),
        Some(_) => Err(error(400, "invalid_parameter", "list ids must be an array")),
    }
}

impl State {
    fn counts_mut(&mut self, f: Family) -> &mut u64 {
        match f {
            Family::Contacts => &mut self.counts.contacts,
            Family::Events => &mut self.counts.events,
            Family::Orders => &mut self.counts.orders,
            Family::Other => &mut self.counts.other,
        }
    }

    fn next_fault(&mut self, family: Family) -> Option<Fault> {
        let plan = self.faults.get_mut(&family)?;
        if let Some(f) = plan.queued.pop_front() {
            return Some(f);
        }
        let (p, fault) = plan.random?;
        self.rng.random_bool(p).then_some(fault)
    }

    fn route(&mut self, method: &Method, path: &str, body: &[u8]) -> Answer {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let is_get = method == Method::GET;
        let is_post = method == Method::POST;
        let parsed = || -> Result<Value, Answer> {
            match serde_json::from_slice::<Value>(body) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(error(400, "bad_request", "Input must be a valid JSON object")),
            }
        };
        let result = match segs.as_slice() {
            ["v3", "account"] if is_get => Ok(self.account()),
            ["v3", "contacts"] if is_post => parsed().and_then(|b| self.upsert_contact(&b)),
            ["v3", "contacts", "import"] if is_post => parsed().and_then(|b| self.import(&b, body.len())),
            ["v3", "contacts", "attributes"] if is_get => Ok(self.list_attributes()),
            ["v3", "contacts", "attributes", category, name] if is_post => {
                parsed().and_then(|b| self.create_attribute(category, name, &b))
            }
            ["v3", "contacts", "lists"] if is_get => Ok(self.all_lists()),
            ["v3", "contacts", "lists", id] if is_get => self.get_list(id),
            ["v3", "contacts", "lists", id, "contacts", verb @ ("add" | "remove")] if is_post => {
                parsed().and_then(|b| self.change_list(id, verb == &"add", &b))
            }
            ["v3", "events"] if is_post => parsed().and_then(|b| {
                self.validate_event(&b).map_err(|m| error(400, "invalid_parameter", &m))?;
                self.record_event(b);
                Ok(answer(204, None))
            }),
            ["v3", "events", "batch"] if is_post => parsed().and_then(|b| self.events_batch(b)),
            ["v3", "orders", "status"] if is_post => parsed().and_then(|b| self.upsert_order(b)),
            ["v3", ..] if Self::known_path(&segs) => Err(error(405, "method_not_allowed", "Method not allowed")),
            _ => Err(error(404, "not_found", "Invalid route")),
        };
        result.unwrap_or_else(|e| e)
    }

    fn known_path(segs: &[&str]) -> bool {
        matches!(
            segs,
            ["v3", "account"]
                | ["v3", "contacts"]
                | ["v3", "contacts", "import"]
                | ["v3", "contacts", "attributes", ..]
                | ["v3", "contacts", "lists", ..]
                | ["v3", "events"]
                | ["v3", "events", "batch"]
                | ["v3", "orders", "status"]
        )
    }

    fn account(&self) -> Answer {
        answer(
            200,
            Some(json!({
                "email": "owner@sandbox.local",
                "firstName": "Sandbox",
                "lastName": "Owner",
                "companyName": "Brevo sandbox",
                "plan": [{"type": "free", "creditsType": "sendLimit", "credits": 300}],
            })),
        )
    }

    fn check_lists(&self, list_ids: &[i64]) -> Result<(), Answer> {
        match list_ids.iter().find(|id| !self.lists.contains_key(id)) {
            Some(_) => Err(error(404, "document_not_found", "List ID does not exist")),
            None => Ok(()),
        }
    }

    fn upsert_contact(&mut self, b: &Value) -> Result<Answer, Answer> {
        let email = match b.get("email") {
            Some(Value::String(s)) => s.trim().to_lowercase(),
            None | Some(Value::Null) => return Err(error(400, "missing_parameter", "email is missing")),
            Some(_) => return Err(error(400, "invalid_parameter", "email should be a string")),
        };
        if !valid_email(&email) {
            return Err(error(400, "invalid_parameter", "Invalid email address"));
        }
        let mut attrs: BTreeMap<String, Value> = BTreeMap::new();
        match b.get("attributes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let name = k.to_uppercase();
                    let Some(t) = self.attributes.get(&name) else {
                        return Err(error(400, "invalid_parameter", &format!("Attribute {name} does not exist")));
                    };
                    if v.is_null() {
                        attrs.insert(name, Value::Null);
                        continue;
                    }
                    if name == "SMS" {
                        if !v.as_str().is_some_and(valid_e164) {
                            return Err(error(400, "invalid_parameter", "Invalid phone number"));
                        }
                        let taken =
                            self.contacts.values().any(|c| c.email != email && c.attributes.get("SMS") == Some(v));
                        if taken {
                            return Err(error(
                                400,
                                "duplicate_parameter",
                                "Unable to update contact, SMS is already associated with another Contact",
                            ));
                        }
                    } else if !fits(t, v) {
                        return Err(error(
                            400,
                            "invalid_parameter",
                            &format!("Invalid value for attribute {name} of type {t}"),
                        ));
                    }
                    attrs.insert(name, v.clone());
                }
            }
            Some(_) => return Err(error(400, "invalid_parameter", "attributes should be an object")),
        }
        let list_ids = ids(b.get("listIds"))?;
        let unlink = ids(b.get("unlinkListIds"))?;
        self.check_lists(&list_ids)?;
        self.check_lists(&unlink)?;
        let update_enabled = b.get("updateEnabled").and_then(Value::as_bool).unwrap_or(false);
        let created = !self.contacts.contains_key(&email);
        if !created && !update_enabled {
            return Err(error(400, "duplicate_parameter", "Contact already exist"));
        }
        let id = self.next_contact_id;
        let contact = self.contacts.entry(email.clone()).or_insert_with(|| SandboxContact {
            id,
            email: email.clone(),
            attributes: BTreeMap::new(),
            list_ids: BTreeSet::new(),
        });
        for (k, v) in attrs {
            if v.is_null() {
                contact.attributes.remove(&k);
            } else {
                contact.attributes.insert(k, v);
            }
        }
        contact.list_ids.extend(list_ids);
        for l in unlink {
            contact.list_ids.remove(&l);
        }
        if created {
            self.next_contact_id += 1;
            Ok(answer(201, Some(json!({ "id": id }))))
        } else {
            Ok(answer(204, None))
        }
    }

    fn import(&mut self, b: &Value, body_bytes: usize) -> Result<Answer, Answer> {
        let Some(items) = b.get("jsonBody").and_then(Value::as_array) else {
            return Err(error(400, "missing_parameter", "fileUrl, fileBody or jsonBody is mandatory"));
        };
        let list_ids = ids(b.get("listIds"))?;
        if list_ids.is_empty() {
            return Err(error(400, "missing_parameter", "listIds or newList is mandatory"));
        }
        self.check_lists(&list_ids)?;
        let update_existing = b.get("updateExistingContacts").and_then(Value::as_bool).unwrap_or(true);
        let erase_empty = b.get("emptyContactsAttributes").and_then(Value::as_bool).unwrap_or(false);
        let (mut applied, mut skipped) = (0, 0);
        for item in items {
            let Some(email) = item.get("email").and_then(Value::as_str).map(|s| s.trim().to_lowercase()) else {
                skipped += 1;
                continue;
            };
            if !valid_email(&email) || (!update_existing && self.contacts.contains_key(&email)) {
                skipped += 1;
                continue;
            }
            // Unknown attributes and values that do not fit are ignored, like Brevo's import.
            let mut set: Vec<(String, Option<Value>)> = Vec::new();
            if let Some(m) = item.get("attributes").and_then(Value::as_object) {
                for (k, v) in m {
                    let name = k.to_uppercase();
                    let Some(t) = self.attributes.get(&name) else { continue };
                    let empty = v.is_null() || v.as_str().is_some_and(str::is_empty);
                    if empty {
                        if erase_empty {
                            set.push((name, None));
                        }
                    } else if (name == "SMS" && v.as_str().is_some_and(valid_e164)) || (name != "SMS" && fits(t, v)) {
                        set.push((name, Some(v.clone())));
                    }
                }
            }
            let id = self.next_contact_id;
            if !self.contacts.contains_key(&email) {
                self.next_contact_id += 1;
            }
            let contact = self.contacts.entry(email.clone()).or_insert_with(|| SandboxContact {
                id,
                email: email.clone(),
                attributes: BTreeMap::new(),
                list_ids: BTreeSet::new(),
            });
            for (k, v) in set {
                match v {
                    Some(v) => contact.attributes.insert(k, v),
                    None => contact.attributes.remove(&k),
                };
            }
            contact.list_ids.extend(list_ids.iter().copied());
            applied += 1;
        }
        let process_id = self.next_process_id;
        self.next_process_id += 1;
        self.imports.push(ImportRecord { process_id, list_ids, applied, skipped, body_bytes });
        Ok(answer(202, Some(json!({ "processId": process_id }))))
    }

    fn list_attributes(&self) -> Answer {
        let attrs: Vec<Value> =
            self.attributes.iter().map(|(name, t)| json!({ "name": name, "category": "normal", "type": t })).collect();
        answer(200, Some(json!({ "attributes": attrs })))
    }

    fn create_attribute(&mut self, category: &str, name: &str, b: &Value) -> Result<Answer, Answer> {
        if category != "normal" {
            return Err(error(400, "invalid_parameter", "Only the normal category is supported by the sandbox"));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(error(400, "invalid_parameter", "Invalid attribute name"));
        }
        let t = b.get("type").and_then(Value::as_str).unwrap_or("text").to_lowercase();
        if !matches!(t.as_str(), "text" | "float" | "date" | "boolean") {
            return Err(error(400, "invalid_parameter", "Invalid attribute type"));
        }
        let key = name.to_uppercase();
        if self.attributes.contains_key(&key) {
            return Err(error(400, "invalid_parameter", "Attribute name must be unique"));
        }
        self.attributes.insert(key, t);
        Ok(answer(201, None))
    }

    fn list_json(&self, id: i64, name: &str) -> Value {
        let members = self.contacts.values().filter(|c| c.list_ids.contains(&id)).count();
        json!({
            "id": id, "name": name, "folderId": 1,
            "totalSubscribers": members, "totalBlacklisted": 0, "uniqueSubscribers": members,
        })
    }

    fn all_lists(&self) -> Answer {
        let lists: Vec<Value> = self.lists.iter().map(|(id, n)| self.list_json(*id, n)).collect();
        answer(200, Some(json!({ "lists": lists, "count": lists.len() })))
    }

    fn get_list(&self, id: &str) -> Result<Answer, Answer> {
        let id: i64 = id.parse().map_err(|_| error(400, "invalid_parameter", "listId should be an integer"))?;
        match self.lists.get(&id) {
            Some(name) => Ok(answer(200, Some(self.list_json(id, name)))),
            None => Err(error(404, "document_not_found", "List ID does not exist")),
        }
    }

    fn change_list(&mut self, id: &str, add: bool, b: &Value) -> Result<Answer, Answer> {
        let id: i64 = id.parse().map_err(|_| error(400, "invalid_parameter", "listId should be an integer"))?;
        if !self.lists.contains_key(&id) {
            return Err(error(404, "document_not_found", "List ID does not exist"));
        }
        let Some(emails) = b.get("emails").and_then(Value::as_array) else {
            return Err(error(400, "missing_parameter", "emails is missing"));
        };
        if emails.len() > 150 {
            return Err(error(400, "out_of_range", "A maximum of 150 emails is allowed per call"));
        }
        let (mut success, mut failure) = (Vec::new(), Vec::new());
        for e in emails {
            let Some(raw) = e.as_str() else {
                return Err(error(400, "invalid_parameter", "emails should be strings"));
            };
            let key = raw.trim().to_lowercase();
            let changed = match self.contacts.get_mut(&key) {
                Some(c) if add => c.list_ids.insert(id),
                Some(c) => c.list_ids.remove(&id),
                None => false,
            };
            if changed {
                success.push(raw.to_owned());
            } else {
                failure.push(raw.to_owned());
            }
        }
        if success.is_empty() {
            let message = if add {
                "Contact already in list and/or does not exist"
            } else {
                "Contact not in list and/or does not exist"
            };
            return Err(error(400, "invalid_parameter", message));
        }
        Ok(answer(201, Some(json!({ "contacts": { "success": success, "failure": failure } }))))
    }

    fn validate_event(&self, e: &Value) -> Result<(), String> {
        let name = e.get("event_name").and_then(Value::as_str).ok_or("event_name is missing")?;
        if !valid_event_name(name) {
            return Err("event_name must contain only alphanumeric characters, - and _ (max 255)".to_owned());
        }
        let ids = e.get("identifiers").and_then(Value::as_object).ok_or("identifiers is missing")?;
        if ids.is_empty() {
            return Err("At least one identifier is required".to_owned());
        }
        if let Some(email) = ids.get("email_id") {
            if !email.as_str().is_some_and(valid_email) {
                return Err("Invalid email_id".to_owned());
            }
        }
        if e.get("event_date").is_some_and(|d| !d.is_string()) {
            return Err("event_date should be a string".to_owned());
        }
        if e.get("event_properties").is_some_and(|p| !p.is_object()) {
            return Err("event_properties should be an object".to_owned());
        }
        Ok(())
    }

    fn record_event(&mut self, e: Value) {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        self.events.push(RecordedEvent {
            event_name: s(e.get("event_name")).unwrap_or_default(),
            email: s(e.pointer("/identifiers/email_id")).map(|m| m.trim().to_lowercase()),
            event_date: s(e.get("event_date")),
            event_properties: e.get("event_properties").and_then(Value::as_object).cloned().unwrap_or_default(),
            raw: e,
        });
    }

    fn events_batch(&mut self, b: Value) -> Result<Answer, Answer> {
        let Some(events) = b.get("events").and_then(Value::as_array) else {
            return Err(error(400, "missing_parameter", "events is missing"));
        };
        if events.is_empty() {
            return Err(error(400, "invalid_parameter", "events should not be empty"));
        }
        if events.len() > 200 {
            return Err(error(400, "out_of_range", "A batch accepts at most 200 events"));
        }
        let mut errors = Vec::new();
        let mut ok = Vec::new();
        for (index, e) in events.iter().enumerate() {
            match self.validate_event(e) {
                Ok(()) => ok.push(e.clone()),
                Err(message) => errors.push(json!({ "index": index, "message": message })),
            }
        }
        if ok.is_empty() {
            let first =
                errors.first().and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("invalid events");
            return Err(error(400, "invalid_parameter", first));
        }
        let recorded = ok.len();
        for e in ok {
            self.record_event(e);
        }
        if errors.is_empty() {
            Ok(answer(204, None))
        } else {
            Ok(answer(207, Some(json!({ "successCount": recorded, "failureCount": errors.len(), "errors": errors }))))
        }
    }

    fn upsert_order(&mut self, b: Value) -> Result<Answer, Answer> {
        let id = b.get("id").and_then(Value::as_str).ok_or_else(|| error(400, "missing_parameter", "id is missing"))?;
        for field in ["status", "createdAt"] {
            if !b.get(field).is_some_and(Value::is_string) {
                return Err(error(400, "missing_parameter", &format!("{field} is missing")));
            }
        }
        if !b.get("amount").is_some_and(Value::is_number) {
            return Err(error(400, "missing_parameter", "amount is missing"));
        }
        if !b.get("products").is_some_and(Value::is_array) {
            return Err(error(400, "missing_parameter", "products is missing"));
        }
        let email = b.pointer("/identifiers/email_id").or_else(|| b.get("email")).and_then(Value::as_str);
        if let Some(email) = email {
            if !valid_email(email) {
                return Err(error(400, "invalid_parameter", "Invalid email_id"));
            }
        }
        self.orders.insert(id.to_owned(), b.clone());
        Ok(answer(204, None))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Client {
        http: reqwest::Client,
        base: String,
        key: String,
    }

    impl Client {
        fn new(sb: &BrevoSandbox) -> Self {
            Self { http: reqwest::Client::new(), base: sb.base_url(), key: sb.api_key() }
        }

        async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, HeaderMap, Value) {
            let mut req = self.http.request(method, format!("{}{}", self.base, path)).header("api-key", &self.key);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap();
            let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
            (status, headers, v)
        }

        async fn post(&self, path: &str, body: Value) -> (u16, Value) {
            let (s, _, v) = self.send(reqwest::Method::POST, path, Some(body)).await;
            (s, v)
        }

        async fn get(&self, path: &str) -> (u16, Value) {
            let (s, _, v) = self.send(reqwest::Method::GET, path, None).await;
            (s, v)
        }
    }

    async fn sandbox() -> BrevoSandbox {
        BrevoSandbox::start(BrevoSandboxOptions::default()).await.unwrap()
    }

    #[tokio::test]
    async fn binds_to_localhost_only_and_refuses_a_wrong_key() {
        let sb = sandbox().await;
        assert!(sb.addr().ip().is_loopback());
        let mut c = Client::new(&sb);
        c.key = "wrong".into();
        let (s, v) = c.get("/v3/account").await;
        assert_eq!(s, 401);
        assert_eq!(v, json!({"code": "unauthorized", "message": "Key not found"}));
        let resp = reqwest::get(format!("{}/v3/account", sb.base_url())).await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "a missing key is refused too");
        assert_eq!(Client::new(&sb).get("/v3/account").await.0, 200);
        let log = sb.request_log();
        assert_eq!(log.iter().map(|l| l.status).collect::<Vec<_>>(), vec![401, 401, 200]);
        assert_eq!(sb.requests(Family::Other), 3);
    }

    #[tokio::test]
    async fn upserts_contacts_with_lists_and_validates_like_brevo() {
        let sb = sandbox().await;
        sb.add_attribute("TOTAL_SPENT", "float");
        let c = Client::new(&sb);
        let (s, v) = c
            .post("/v3/contacts", json!({"email": "Jane@Example.com", "attributes": {"FIRSTNAME": "Jane", "TOTAL_SPENT": 12.5}, "listIds": [20, 21], "updateEnabled": true}))
            .await;
        assert_eq!(s, 201);
        assert!(v["id"].is_i64());
        let (s, _) = c
            .post(
                "/v3/contacts",
                json!({"email": "jane@example.com", "listIds": [22], "unlinkListIds": [21], "updateEnabled": true}),
            )
            .await;
        assert_eq!(s, 204);
        assert_eq!(sb.lists_of("jane@example.com"), vec![20, 22]);
        assert_eq!(sb.contact("JANE@example.com").unwrap().attributes["TOTAL_SPENT"], json!(12.5));
        // Without updateEnabled an existing contact is a duplicate.
        assert_eq!(c.post("/v3/contacts", json!({"email": "jane@example.com"})).await.0, 400);
        // Unknown attribute, wrong type, bad e-mail, unknown list.
        let (s, v) = c.post("/v3/contacts", json!({"email": "a@example.com", "attributes": {"NOPE": 1}})).await;
        assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
        assert_eq!(
            c.post("/v3/contacts", json!({"email": "a@example.com", "attributes": {"TOTAL_SPENT": "x"}})).await.0,
            400
        );
        let (s, v) = c.post("/v3/contacts", json!({"email": "not-an-email"})).await;
        assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
        assert_eq!(c.post("/v3/contacts", json!({"email": "a@example.com", "listIds": [99]})).await.0, 404);
        assert_eq!(sb.contacts().len(), 1);
    }

    #[tokio::test]
    async fn requires_sms_numbers_in_e164_and_unique() {
        let sb = sandbox().await;
        let c = Client::new(&sb);
        let (s, v) = c
            .post(
                "/v3/contacts",
                json!({"email": "a@example.com", "attributes": {"SMS": "06 12 34 56 78"}, "updateEnabled": true}),
            )
            .await;
        assert_eq!(s, 400);
        assert_eq!(v, json!({"code": "invalid_parameter", "message": "Invalid phone number"}));
        assert_eq!(
            c.post("/v3/contacts", json!({"email": "a@example.com", "attributes": {"SMS": "+12"}})).await.0,
            400
        );
        assert_eq!(
            c.post("/v3/contacts", json!({"email": "a@example.com", "attributes": {"SMS": "+33612345678"}})).await.0,
            201
        );
        let (s, v) =
            c.post("/v3/contacts", json!({"email": "b@example.com", "attributes": {"SMS": "+33612345678"}})).await;
        assert_eq!((s, v["code"].as_str()), (400, Some("duplicate_parameter")));
    }

    #[tokio::test]
    async fn imports_apply_at_once_and_ignore_unknown_attributes() {
        let sb = sandbox().await;
        sb.seed_contact("old@example.com", [("FIRSTNAME".to_owned(), json!("Old"))].into(), &[21]);
        let c = Client::new(&sb);
        let body = json!({
            "jsonBody": [
                {"email": "new@example.com", "attributes": {"FIRSTNAME": "New", "UNKNOWN": 3, "SMS": "bad"}},
                {"email": "old@example.com", "attributes": {"FIRSTNAME": ""}},
                {"email": "broken"}
            ],
            "listIds": [20], "updateExistingContacts": true, "emptyContactsAttributes": false
        });
        let (s, v) = c.post("/v3/contacts/import", body).await;
        assert_eq!(s, 202);
        assert_eq!(v["processId"], json!(1));
        let new = sb.contact("new@example.com").unwrap();
        assert_eq!(new.attributes, [("FIRSTNAME".to_owned(), json!("New"))].into());
        assert_eq!(sb.contact("old@example.com").unwrap().attributes["FIRSTNAME"], "Old", "empty values do not erase");
        assert_eq!(sb.lists_of("old@example.com"), vec![20, 21]);
        let rec = &sb.imports()[0];
        assert_eq!((rec.applied, rec.skipped), (2, 1));
        assert_eq!(c.post("/v3/contacts/import", json!({"jsonBody": []})).await.0, 400, "listIds are mandatory");
    }

    #[tokio::test]
    async fn list_changes_follow_brevos_rules() {
        let sb = sandbox().await;
        sb.seed_contact("a@example.com", BTreeMap::new(), &[]);
        sb.seed_contact("b@example.com", BTreeMap::new(), &[20]);
        let c = Client::new(&sb);
        let (s, v) =
            c.post("/v3/contacts/lists/20/contacts/add", json!({"emails": ["a@example.com", "b@example.com"]})).await;
        assert_eq!(s, 201);
        assert_eq!(v["contacts"]["success"], json!(["a@example.com"]));
        assert_eq!(v["contacts"]["failure"], json!(["b@example.com"]));
        let (s, v) = c.post("/v3/contacts/lists/20/contacts/add", json!({"emails": ["a@example.com"]})).await;
        assert_eq!(s, 400);
        assert_eq!(v, json!({"code": "invalid_parameter", "message": "Contact already in list and/or does not exist"}));
        let many: Vec<String> = (0..151).map(|i| format!("u{i}@example.com")).collect();
        assert_eq!(c.post("/v3/contacts/lists/20/contacts/add", json!({ "emails": many })).await.0, 400);
        assert_eq!(c.post("/v3/contacts/lists/99/contacts/add", json!({"emails": ["a@example.com"]})).await.0, 404);
        assert_eq!(c.post("/v3/contacts/lists/20/contacts/remove", json!({"emails": ["a@example.com"]})).await.0, 201);
        assert_eq!(c.post("/v3/contacts/lists/20/contacts/remove", json!({"emails": ["a@example.com"]})).await.0, 400);
        assert_eq!(sb.lists_of("a@example.com"), Vec::<i64>::new());
        let (s, v) = c.get("/v3/contacts/lists/20").await;
        assert_eq!((s, v["totalSubscribers"].as_u64()), (200, Some(1)));
        assert_eq!(c.get("/v3/contacts/lists/99").await.0, 404);
    }

    #[tokio::test]
    async fn creates_attributes_once() {
        let sb = sandbox().await;
        let c = Client::new(&sb);
        assert_eq!(c.post("/v3/contacts/attributes/normal/LTV", json!({"type": "float"})).await.0, 201);
        let (s, v) = c.post("/v3/contacts/attributes/normal/LTV", json!({"type": "float"})).await;
        assert_eq!((s, v["message"].as_str()), (400, Some("Attribute name must be unique")));
        let (_, v) = c.get("/v3/contacts/attributes").await;
        assert!(v["attributes"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "LTV", "category": "normal", "type": "float"})));
    }

    #[tokio::test]
    async fn validates_and_records_events_single_and_batched() {
        let sb = sandbox().await;
        let c = Client::new(&sb);
        let ev = |name: &str, email: &str| json!({"event_name": name, "identifiers": {"email_id": email}, "event_properties": {"amount": 12.5}});
        assert_eq!(c.post("/v3/events", ev("stripe_charge_refunded", "A@example.com")).await.0, 204);
        assert_eq!(c.post("/v3/events", ev("stripe.charge.refunded", "a@example.com")).await.0, 400);
        let (s, v) = c.post("/v3/events/batch", json!({"events": [ev("ok_1", "a@example.com"), ev("bad name", "a@example.com"), ev("ok_2", "b@example.com")]})).await;
        assert_eq!(s, 207);
        assert_eq!(v["errors"][0]["index"], json!(1));
        let too_many: Vec<Value> = (0..201).map(|_| ev("x", "a@example.com")).collect();
        assert_eq!(c.post("/v3/events/batch", json!({ "events": too_many })).await.0, 400);
        let names: Vec<String> = sb.events_for("a@example.com").into_iter().map(|e| e.event_name).collect();
        assert_eq!(names, vec!["stripe_charge_refunded", "ok_1"]);
        assert_eq!(sb.events()[0].event_properties["amount"], json!(12.5));
        assert_eq!(sb.requests(Family::Events), 4);
    }

    #[tokio::test]
    async fn records_orders() {
        let sb = sandbox().await;
        let c = Client::new(&sb);
        let order = json!({"id": "in_1", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "status": "completed", "amount": 10.0, "identifiers": {"email_id": "a@example.com"}, "products": []});
        assert_eq!(c.post("/v3/orders/status", order).await.0, 204);
        assert_eq!(c.post("/v3/orders/status", json!({"id": "x"})).await.0, 400);
        assert_eq!(sb.orders()["in_1"]["amount"], json!(10.0));
    }

    #[tokio::test]
    async fn injects_rate_limits_errors_delays_and_outages_per_family() {
        let sb =
            BrevoSandbox::start(BrevoSandboxOptions { rate_limit_reset_secs: 7, ..Default::default() }).await.unwrap();
        let c = Client::new(&sb);
        let ev = json!({"event_name": "e", "identifiers": {"email_id": "a@example.com"}});
        sb.fail_next(Family::Events, 1, Fault::RateLimited);
        sb.fail_next(Family::Events, 1, Fault::Status(502));
        let (s, h, _) = c.send(reqwest::Method::POST, "/v3/events", Some(ev.clone())).await;
        assert_eq!(s, 429);
        assert_eq!(h["x-sib-ratelimit-reset"], "7");
        assert_eq!(h["x-sib-ratelimit-limit"], "10");
        assert_eq!(h["x-sib-ratelimit-remaining"], "0");
        assert_eq!(c.post("/v3/events", ev.clone()).await.0, 502);
        assert_eq!(c.get("/v3/account").await.0, 200, "other families are not affected");
        assert_eq!(c.post("/v3/events", ev.clone()).await.0, 204);
        assert_eq!(sb.events().len(), 1, "faulted requests change nothing");

        sb.fail_next(Family::Other, 1, Fault::Delay(Duration::from_millis(120)));
        let start = std::time::Instant::now();
        assert_eq!(c.get("/v3/account").await.0, 200);
        assert!(start.elapsed() >= Duration::from_millis(110));

        sb.set_outage(true);
        assert_eq!(c.get("/v3/account").await.0, 503);
        assert_eq!(c.post("/v3/events", ev.clone()).await.0, 503);
        sb.reset_faults();
        assert_eq!(c.get("/v3/account").await.0, 200);

        sb.fail_randomly(Family::Contacts, 0.5, Fault::Status(500));
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(c.get("/v3/contacts/attributes").await.0);
        }
        let failed = statuses.iter().filter(|s| **s == 500).count();
        assert!((5..=35).contains(&failed), "about half should fail: {failed}");
        sb.reset_faults();
        assert_eq!(c.get("/v3/contacts/attributes").await.0, 200);
        let counts = sb.request_counts();
        assert_eq!(counts.get(Family::Contacts), 41);
        assert_eq!(counts.total(), sb.request_log().len() as u64);
    }

    #[tokio::test]
    async fn random_faults_are_reproducible_with_the_same_seed() {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let sb = sandbox().await;
            sb.fail_randomly(Family::Other, 0.3, Fault::Status(503));
            let c = Client::new(&sb);
            let mut statuses = Vec::new();
            for _ in 0..20 {
                statuses.push(c.get("/v3/account").await.0);
            }
            runs.push(statuses);
        }
        assert_eq!(runs[0], runs[1]);
    }

    #[tokio::test]
    async fn shuts_down_on_request() {
        let sb = sandbox().await;
        let base = sb.base_url();
        sb.shutdown().await;
        assert!(reqwest::get(format!("{base}/v3/account")).await.is_err());
    }
}
