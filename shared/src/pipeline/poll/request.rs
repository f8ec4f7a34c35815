//! What an invocation asks for: the schedule (resume whatever each resource
//! is doing) or an operator's backfill override, read from the Lambda payload
//! with serde.
//!
//! The request is the payload itself when it has a `mode`, else an
//! EventBridge event's `detail` when that has one; anything else (a scheduled
//! event, `{}`, a payload that is not an object) is the schedule. Modes:
//! `scheduled` (also `incremental`, `resume`; other fields ignored) and
//! `backfill` with an optional `since` (`YYYY-MM-DD`, RFC 3339 or unix
//! seconds) and `resources` (names as in [`RESOURCES`]); `since` is checked
//! before `resources`, and each is refused with its own message.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::catalogue::{resource, RESOURCES};

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PollRequest {
    /// Restart a historical sync (`{"mode":"backfill",…}`); `None` for the
    /// schedule, which resumes whatever each resource is doing.
    pub backfill: Option<BackfillRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackfillRequest {
    /// Lower bound (unix seconds); `None`: the config's `since`, else all history.
    pub since: Option<i64>,
    /// Resources to restart; `None`: every enabled one.
    pub resources: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid poller request: {0}")]
pub struct BadRequest(pub String);

impl PollRequest {
    /// From the invocation payload: an EventBridge scheduled event (→ resume),
    /// or an override `{"mode":"backfill","since":"2023-01-01","resources":[…]}`
    /// (also accepted inside an EventBridge event's `detail`).
    pub fn from_event(event: &Value) -> Result<Self, BadRequest> {
        let Some(body) = request_body(event) else {
            return Ok(Self::default());
        };
        // Only a string names a mode: serde's tag would also take an integer
        // as a variant index, and word a wrong type in its own terms.
        let Some(mode) = body.get("mode").and_then(Value::as_str) else {
            return Err(BadRequest("`mode` must be a string".into()));
        };
        match Mode::deserialize(body).map_err(|e| BadRequest(e.to_string()))? {
            Mode::Scheduled => Ok(Self::default()),
            Mode::Backfill(b) => Ok(Self { backfill: Some(b.into_request()?) }),
            Mode::Unknown => Err(BadRequest(format!("unknown mode {mode:?} (backfill or scheduled)"))),
        }
    }
}

/// The object that carries the request: the payload when it has a `mode`,
/// else its `detail` when that has one; `None` for the schedule.
fn request_body(event: &Value) -> Option<&Value> {
    if event.get("mode").is_some() {
        return Some(event);
    }
    event.get("detail").filter(|d| d.get("mode").is_some())
}

/// A request body, told apart by its `mode`.
#[derive(Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
enum Mode {
    /// Resume whatever each resource is doing.
    #[serde(alias = "incremental", alias = "resume")]
    Scheduled,
    Backfill(BackfillBody),
    /// Any other mode (refused, by name).
    #[serde(other)]
    Unknown,
}

/// A backfill override's fields as sent. Each takes any JSON value, so that
/// a wrong one is refused with that field's message, `since` first.
#[derive(Deserialize)]
struct BackfillBody {
    #[serde(default)]
    since: Option<Since>,
    #[serde(default)]
    resources: Option<Names>,
}

/// `since` as sent (`null` and absent are `None`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Since {
    Seconds(i64),
    /// A number that is not whole or does not fit unix seconds (only its
    /// shape matters).
    NotSeconds(#[allow(dead_code)] f64),
    Date(String),
    Other(IgnoredAny),
}

/// `resources` as sent.
#[derive(Deserialize)]
#[serde(untagged)]
enum Names {
    List(Vec<Name>),
    Other(IgnoredAny),
}

/// One entry of `resources`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Name {
    Text(String),
    Other(IgnoredAny),
}

impl BackfillBody {
    fn into_request(self) -> Result<BackfillRequest, BadRequest> {
        let since = match self.since {
            None => None,
            Some(Since::Seconds(n)) => Some(n),
            Some(Since::NotSeconds(_)) => return Err(BadRequest("`since` must be unix seconds".into())),
            Some(Since::Date(s)) => {
                Some(parse_date(&s).ok_or_else(|| BadRequest(format!("`since` must be YYYY-MM-DD, got {s:?}")))?)
            }
            Some(Since::Other(_)) => return Err(BadRequest("`since` must be YYYY-MM-DD".into())),
        };
        let resources = match self.resources {
            None => None,
            Some(Names::List(names)) => Some(names.into_iter().map(Name::resolve).collect::<Result<_, _>>()?),
            Some(Names::Other(_)) => return Err(not_a_list()),
        };
        Ok(BackfillRequest { since, resources })
    }
}

impl Name {
    /// The catalogue's name for it (`checkout.sessions` → `checkout_sessions`).
    fn resolve(self) -> Result<String, BadRequest> {
        let Self::Text(name) = self else {
            return Err(not_a_list());
        };
        let spec = resource(&name).ok_or_else(|| {
            let known: Vec<&str> = RESOURCES.iter().map(|r| r.name).collect();
            BadRequest(format!("unknown resource {name:?} (known: {})", known.join(", ")))
        })?;
        Ok(spec.name.to_owned())
    }
}

fn not_a_list() -> BadRequest {
    BadRequest("`resources` must be a list of names".into())
}

/// `YYYY-MM-DD` (UTC midnight) or an RFC 3339 time → unix seconds.
fn parse_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s.trim(), &fmt) {
        return Some(d.midnight().assume_utc().unix_timestamp());
    }
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    //! GIVEN an invocation payload WHEN it is parsed THEN the request, or a
    //! refusal that names what is wrong.
    #![allow(clippy::unwrap_used)]
    use serde_json::{json, Value};

    use super::*;

    fn parse(v: Value) -> Result<PollRequest, BadRequest> {
        PollRequest::from_event(&v)
    }

    fn backfill(v: Value) -> BackfillRequest {
        parse(v).unwrap().backfill.unwrap()
    }

    fn refusal(v: Value) -> String {
        parse(v).unwrap_err().0
    }

    #[test]
    fn requests_parse_from_the_schedule_and_the_override() {
        let sched: Value = serde_json::from_str(include_str!("../../../../events/schedule/scheduled.json")).unwrap();
        assert_eq!(PollRequest::from_event(&sched).unwrap(), PollRequest::default());
        let bf: Value = serde_json::from_str(include_str!("../../../../events/schedule/backfill.json")).unwrap();
        let r = PollRequest::from_event(&bf).unwrap().backfill.unwrap();
        assert_eq!(r.since, Some(1_672_531_200));
        assert_eq!(r.resources.unwrap(), ["customers", "charges", "subscriptions"]);
        let r = PollRequest::from_event(&json!({"detail": {"mode": "backfill", "resources": ["checkout.sessions"]}}))
            .unwrap();
        assert_eq!(r.backfill.unwrap().resources.unwrap(), ["checkout_sessions"]);
        assert!(PollRequest::from_event(&json!({"mode": "backfill", "resources": ["widgets"]}))
            .unwrap_err()
            .0
            .contains("widgets"));
        assert!(PollRequest::from_event(&json!({"mode": "backfill", "since": "01/01/2023"})).is_err());
        assert!(PollRequest::from_event(&json!({"mode": "explode"})).is_err());
    }

    #[test]
    fn a_payload_without_a_mode_is_the_schedule() {
        for v in [
            json!({}),
            json!({"detail": {}}),
            json!({"detail": null}),
            json!({"detail": "backfill"}),
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "resources": ["arn:x"], "detail": {}}),
            json!(null),
            json!([]),
            json!("backfill"),
            json!(42),
        ] {
            assert_eq!(parse(v.clone()).unwrap(), PollRequest::default(), "{v}");
        }
    }

    #[test]
    fn scheduled_incremental_and_resume_all_mean_the_schedule_whatever_else_is_sent() {
        for mode in ["scheduled", "incremental", "resume"] {
            assert_eq!(parse(json!({"mode": mode})).unwrap(), PollRequest::default(), "{mode}");
            assert_eq!(parse(json!({"detail": {"mode": mode}})).unwrap(), PollRequest::default(), "{mode}");
            let noisy = json!({"mode": mode, "since": true, "resources": "x"});
            assert_eq!(parse(noisy).unwrap(), PollRequest::default(), "{mode}");
        }
    }

    #[test]
    fn a_bare_backfill_restarts_every_resource_from_the_configs_since() {
        assert_eq!(backfill(json!({"mode": "backfill"})), BackfillRequest { since: None, resources: None });
        let nulls = json!({"mode": "backfill", "since": null, "resources": null, "note": "ignored"});
        assert_eq!(backfill(nulls), BackfillRequest::default());
    }

    #[test]
    fn since_is_a_date_an_rfc3339_time_or_unix_seconds() {
        let since = |s: Value| backfill(json!({"mode": "backfill", "since": s})).since;
        assert_eq!(since(json!("2023-01-01")), Some(1_672_531_200));
        assert_eq!(since(json!(" 2023-01-01 ")), Some(1_672_531_200));
        assert_eq!(since(json!("2023-01-01T12:00:00Z")), Some(1_672_574_400));
        assert_eq!(since(json!("2023-01-01T12:00:00+02:00")), Some(1_672_567_200));
        assert_eq!(since(json!(1_672_531_200)), Some(1_672_531_200));
        assert_eq!(since(json!(-5)), Some(-5));
        assert_eq!(since(json!(i64::MAX)), Some(i64::MAX));
    }

    #[test]
    fn resources_are_normalised_and_kept_as_listed() {
        let names = |r: Value| backfill(json!({"mode": "backfill", "resources": r})).resources.unwrap();
        assert_eq!(names(json!(["checkout/sessions", " customers "])), ["checkout_sessions", "customers"]);
        assert_eq!(names(json!(["prices", "prices"])), ["prices", "prices"]);
        assert!(names(json!([])).is_empty(), "an empty list restarts nothing");
    }

    #[test]
    fn the_payloads_own_mode_wins_over_its_detail() {
        assert!(parse(json!({"mode": "backfill", "detail": {"mode": "scheduled"}})).unwrap().backfill.is_some());
        assert!(parse(json!({"mode": "scheduled", "detail": {"mode": "backfill"}})).unwrap().backfill.is_none());
        let r = backfill(json!({"source": "aws.events", "detail": {"mode": "backfill", "since": "2024-02-29"}}));
        assert_eq!(r.since, Some(1_709_164_800));
    }

    #[test]
    fn an_unknown_mode_is_refused_by_name() {
        for mode in ["explode", "Scheduled", "BACKFILL", "unknown", ""] {
            let e = refusal(json!({"mode": mode}));
            assert_eq!(e, format!("unknown mode {mode:?} (backfill or scheduled)"));
            assert_eq!(refusal(json!({"detail": {"mode": mode}})), e);
        }
    }

    #[test]
    fn a_mode_that_is_not_a_string_is_refused() {
        // 0 and 1 would be variant indices to serde: refused all the same.
        for mode in [json!(null), json!(0), json!(1), json!(5), json!(true), json!(["backfill"]), json!({})] {
            assert_eq!(refusal(json!({"mode": mode})), "`mode` must be a string", "{mode}");
        }
        assert_eq!(refusal(json!({"detail": {"mode": 1}})), "`mode` must be a string");
    }

    #[test]
    fn a_since_of_the_wrong_type_or_form_is_refused() {
        let since = |s: Value| refusal(json!({"mode": "backfill", "since": s}));
        assert_eq!(since(json!("01/01/2023")), r#"`since` must be YYYY-MM-DD, got "01/01/2023""#);
        assert_eq!(since(json!("2023-02-30")), r#"`since` must be YYYY-MM-DD, got "2023-02-30""#);
        assert_eq!(since(json!("")), r#"`since` must be YYYY-MM-DD, got """#);
        for n in [json!(1.5), json!(1.0), json!(-1.0), json!(u64::MAX)] {
            assert_eq!(since(n.clone()), "`since` must be unix seconds", "{n}");
        }
        for v in [json!(true), json!([]), json!({})] {
            assert_eq!(since(v.clone()), "`since` must be YYYY-MM-DD", "{v}");
        }
    }

    #[test]
    fn resources_that_are_not_a_list_of_known_names_are_refused() {
        let resources = |r: Value| refusal(json!({"mode": "backfill", "resources": r}));
        for r in
            [json!("customers"), json!({}), json!(3), json!(["customers", 1]), json!([null]), json!([1, "widgets"])]
        {
            assert_eq!(resources(r.clone()), "`resources` must be a list of names", "{r}");
        }
        let e = resources(json!(["Customers"]));
        assert!(e.starts_with(r#"unknown resource "Customers" (known: customers, subscriptions, "#), "{e}");
        assert!(resources(json!(["widgets", 1])).starts_with(r#"unknown resource "widgets""#), "in list order");
    }

    #[test]
    fn since_is_checked_before_resources() {
        let both = json!({"mode": "backfill", "since": true, "resources": 5});
        assert_eq!(refusal(both), "`since` must be YYYY-MM-DD");
        let both = json!({"mode": "backfill", "resources": ["widgets"], "since": "x"});
        assert_eq!(refusal(both), r#"`since` must be YYYY-MM-DD, got "x""#);
    }

    #[test]
    fn a_refusal_says_it_is_the_poller_request() {
        let e = parse(json!({"mode": "explode"})).unwrap_err();
        assert_eq!(e.to_string(), r#"invalid poller request: unknown mode "explode" (backfill or scheduled)"#);
    }
}
