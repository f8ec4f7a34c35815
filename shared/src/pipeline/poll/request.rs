//! What an invocation asks for: the schedule (resume whatever each resource
//! is doing) or an operator's backfill override, read from the Lambda payload.

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
    pub fn from_event(event: &serde_json::Value) -> Result<Self, BadRequest> {
        let body = match event.get("mode") {
            Some(_) => event,
            None => match event.get("detail") {
                Some(d) if d.get("mode").is_some() => d,
                _ => return Ok(Self::default()),
            },
        };
        let mode = body
            .get("mode")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| BadRequest("`mode` must be a string".into()))?;
        match mode {
            "scheduled" | "incremental" | "resume" => Ok(Self::default()),
            "backfill" => {
                let since = match body.get("since") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(
                        parse_date(s).ok_or_else(|| BadRequest(format!("`since` must be YYYY-MM-DD, got {s:?}")))?,
                    ),
                    Some(serde_json::Value::Number(n)) => {
                        Some(n.as_i64().ok_or_else(|| BadRequest("`since` must be unix seconds".into()))?)
                    }
                    Some(_) => return Err(BadRequest("`since` must be YYYY-MM-DD".into())),
                };
                let resources = match body.get("resources") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::Array(items)) => {
                        let mut out = Vec::with_capacity(items.len());
                        for item in items {
                            let name = item
                                .as_str()
                                .ok_or_else(|| BadRequest("`resources` must be a list of names".into()))?;
                            let spec = resource(name).ok_or_else(|| {
                                let known: Vec<&str> = RESOURCES.iter().map(|r| r.name).collect();
                                BadRequest(format!("unknown resource {name:?} (known: {})", known.join(", ")))
                            })?;
                            out.push(spec.name.to_owned());
                        }
                        Some(out)
                    }
                    Some(_) => return Err(BadRequest("`resources` must be a list of names".into())),
                };
                Ok(Self { backfill: Some(BackfillRequest { since, resources }) })
            }
            other => Err(BadRequest(format!("unknown mode {other:?} (backfill or scheduled)"))),
        }
    }
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
