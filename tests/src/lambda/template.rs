//! `template.yaml` read as data, so the harness follows the template instead
//! of repeating its numbers: function timeouts, memory, reserved
//! concurrency and environment; the SQS event source (batch size, batching
//! window, maximum concurrency, partial batch responses); a queue's
//! visibility timeout, retention and redrive policy; a function's schedule.
//!
//! CloudFormation tags (`!Ref`, `!GetAtt`, `!Sub`, …) are kept as opaque
//! values, with two small, explicit readings: `!Ref Parameter` is that
//! parameter's `Default` (a value the harness needs, such as
//! `PollerTimeoutSeconds`), and `!Ref Resource` / `!GetAtt Resource.Arn` name
//! the resource (resolved by [`super::stack::LocalStack`] to the local
//! queue's URL, table's name or secret's ARN).

use std::path::Path;
use std::time::Duration;

use serde_norway::Value;

/// Lambda's default timeout when a function sets none.
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html>
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Lambda's default memory size.
pub const DEFAULT_MEMORY_MB: u32 = 128;

/// The parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

/// An environment variable's value in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A plain value, or a parameter's default.
    Text(String),
    /// `!Ref` / `!GetAtt` of a resource: its logical id (and attribute).
    Resource { logical_id: String, attribute: Option<String> },
    /// Any other tag (`!Sub`, `!If`, …), as written.
    Opaque(String),
}

/// A function's SQS event source, as the template configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEventSource {
    /// The queue's logical id.
    pub queue: String,
    /// Default 10 (SQS).
    pub batch_size: usize,
    /// Default 0.
    pub batching_window: Duration,
    /// `ScalingConfig.MaximumConcurrency`; `None` = no limit set.
    pub maximum_concurrency: Option<usize>,
    /// `FunctionResponseTypes` holds `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
}

/// A queue's settings, as the template declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// Default 30 s (SQS).
    pub visibility_timeout: Duration,
    pub message_retention: Option<Duration>,
    /// (the dead-letter queue's logical id, `maxReceiveCount`).
    pub redrive: Option<(String, u32)>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_norway::from_str(text).map(|root| Self { root }).map_err(|e| format!("template.yaml: {e}"))
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text)
    }

    /// The workspace's `template.yaml` (panics when it cannot be read).
    pub fn workspace() -> Self {
        Self::load(&super::workspace_root().join("template.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.root.get("Resources")?.get(logical_id)
    }

    fn properties(&self, logical_id: &str) -> Option<&Value> {
        self.resource(logical_id)?.get("Properties")
    }

    /// The resource's `Type`, e.g. `AWS::SQS::Queue`.
    pub fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resource(logical_id)?.get("Type")?.as_str()
    }

    /// A function property, else its `Globals.Function` value.
    fn function_property(&self, function: &str, key: &str) -> Option<&Value> {
        self.properties(function)
            .and_then(|p| p.get(key))
            .or_else(|| self.root.get("Globals")?.get("Function")?.get(key))
    }

    pub fn parameter_default(&self, name: &str) -> Option<&Value> {
        self.root.get("Parameters")?.get(name)?.get("Default")
    }

    /// A value with `!Ref Parameter` replaced by the parameter's default
    /// (other tags are returned as they are).
    pub fn resolved<'a>(&'a self, v: &'a Value) -> &'a Value {
        match ref_target(v) {
            Some(name) => self.parameter_default(name).unwrap_or(v),
            None => v,
        }
    }

    fn number(&self, v: Option<&Value>) -> Option<u64> {
        let v = self.resolved(v?);
        v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    }

    /// `Timeout` (function, then globals), `!Ref` to a parameter resolved.
    pub fn function_timeout(&self, function: &str) -> Duration {
        self.number(self.function_property(function, "Timeout")).map(Duration::from_secs).unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn function_memory_mb(&self, function: &str) -> u32 {
        self.number(self.function_property(function, "MemorySize"))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_MEMORY_MB)
    }

    pub fn reserved_concurrency(&self, function: &str) -> Option<usize> {
        self.number(self.properties(function)?.get("ReservedConcurrentExecutions"))
            .and_then(|n| usize::try_from(n).ok())
    }

    /// `LoggingConfig.LogFormat` (e.g. `JSON`).
    pub fn log_format(&self, function: &str) -> Option<String> {
        let v = self.function_property(function, "LoggingConfig")?.get("LogFormat")?;
        self.resolved(v).as_str().map(str::to_owned)
    }

    /// `Globals.Function.Environment.Variables` overlaid with the function's own.
    pub fn environment(&self, function: &str) -> Vec<(String, EnvValue)> {
        let vars = |v: Option<&Value>| -> Vec<(String, EnvValue)> {
            let Some(Value::Mapping(m)) = v.and_then(|e| e.get("Environment")).and_then(|e| e.get("Variables")) else {
                return Vec::new();
            };
            m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), self.env_value(v)))).collect()
        };
        let mut out = vars(self.root.get("Globals").and_then(|g| g.get("Function")));
        for (k, v) in vars(self.properties(function)) {
            out.retain(|(name, _)| *name != k);
            out.push((k, v));
        }
        out
    }

    fn env_value(&self, v: &Value) -> EnvValue {
        if let Some(target) = ref_target(v) {
            if let Some(default) = self.parameter_default(target) {
                return EnvValue::Text(scalar_text(default));
            }
            return EnvValue::Resource { logical_id: target.to_owned(), attribute: None };
        }
        if let Some((logical_id, attribute)) = get_att(v) {
            return EnvValue::Resource { logical_id, attribute: Some(attribute) };
        }
        match v {
            Value::Tagged(t) => EnvValue::Opaque(format!("{} {:?}", t.tag, t.value)),
            other => EnvValue::Text(scalar_text(other)),
        }
    }

    /// The function's events of `Type: kind` (`SQS`, `Schedule`, `HttpApi`, …): their `Properties`.
    fn events_of(&self, function: &str, kind: &str) -> Vec<&Value> {
        let Some(Value::Mapping(events)) = self.properties(function).and_then(|p| p.get("Events")) else {
            return Vec::new();
        };
        events
            .values()
            .filter(|e| e.get("Type").and_then(Value::as_str) == Some(kind))
            .filter_map(|e| e.get("Properties"))
            .collect()
    }

    /// The function's (first) SQS event source.
    pub fn sqs_event_source(&self, function: &str) -> Option<SqsEventSource> {
        let p = *self.events_of(function, "SQS").first()?;
        let queue =
            get_att(p.get("Queue")?).map(|(id, _)| id).or_else(|| ref_target(p.get("Queue")?).map(str::to_owned))?;
        let types = p.get("FunctionResponseTypes").and_then(Value::as_sequence);
        Some(SqsEventSource {
            queue,
            batch_size: self.number(p.get("BatchSize")).and_then(|n| usize::try_from(n).ok()).unwrap_or(10),
            batching_window: Duration::from_secs(self.number(p.get("MaximumBatchingWindowInSeconds")).unwrap_or(0)),
            maximum_concurrency: self
                .number(p.get("ScalingConfig").and_then(|s| s.get("MaximumConcurrency")))
                .and_then(|n| usize::try_from(n).ok()),
            report_batch_item_failures: types
                .is_some_and(|t| t.iter().any(|v| v.as_str() == Some("ReportBatchItemFailures"))),
        })
    }

    /// The function's (first) `Schedule` expression, e.g. `rate(5 minutes)`.
    pub fn schedule(&self, function: &str) -> Option<String> {
        let p = *self.events_of(function, "Schedule").first()?;
        self.resolved(p.get("Schedule")?).as_str().map(str::to_owned)
    }

    /// An `AWS::SQS::Queue`'s settings.
    pub fn queue(&self, logical_id: &str) -> Option<QueueSettings> {
        let p = self.properties(logical_id)?;
        let redrive = p.get("RedrivePolicy").and_then(|r| {
            let dlq = get_att(r.get("deadLetterTargetArn")?)?.0;
            let max = u32::try_from(self.number(r.get("maxReceiveCount"))?).ok()?;
            Some((dlq, max))
        });
        Some(QueueSettings {
            visibility_timeout: Duration::from_secs(self.number(p.get("VisibilityTimeout")).unwrap_or(30)),
            message_retention: self.number(p.get("MessageRetentionPeriod")).map(Duration::from_secs),
            redrive,
        })
    }
}

/// The target of `!Ref X` (or `{Ref: X}`).
fn ref_target(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref")?.as_str(),
        _ => None,
    }
}

/// `!GetAtt Resource.Attribute` (or the list form) → (resource, attribute).
fn get_att(v: &Value) -> Option<(String, String)> {
    let Value::Tagged(t) = v else { return None };
    if t.tag != "GetAtt" {
        return None;
    }
    match &t.value {
        Value::String(s) => s.split_once('.').map(|(r, a)| (r.to_owned(), a.to_owned())),
        Value::Sequence(parts) => Some((parts.first()?.as_str()?.to_owned(), parts.get(1)?.as_str()?.to_owned())),
        _ => None,
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => format!("{other:?}"),
    }
}

/// An EventBridge `rate(N unit)` expression as a period (`cron(...)` is not supported).
/// <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html>
pub fn parse_rate(expression: &str) -> Result<Duration, String> {
    let inner = expression
        .trim()
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("{expression:?}: only rate(N unit) schedules are supported"))?;
    let (n, unit) = inner.trim().split_once(' ').ok_or_else(|| format!("{expression:?}: rate(N unit)"))?;
    let n: u64 = n.parse().map_err(|_| format!("{expression:?}: {n:?} is not a whole number"))?;
    let secs = match (unit.trim(), n) {
        ("minute", 1) | ("minutes", 2..) => 60,
        ("hour", 1) | ("hours", 2..) => 3_600,
        ("day", 1) | ("days", 2..) => 86_400,
        _ => return Err(format!("{expression:?}: unit must be minute(s), hour(s) or day(s), singular only for 1")),
    };
    Ok(Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const CONSUMER: &str = "StripeToBrevoFunction";
    const POLLER: &str = "StripePollerFunction";
    const WEBHOOK: &str = "StripeWebhookFunction";

    #[test]
    fn reads_the_consumers_event_source_and_queue_from_the_workspace_template() {
        let t = Template::workspace();
        assert_eq!(t.function_timeout(CONSUMER), Duration::from_secs(60));
        assert_eq!(t.function_timeout(WEBHOOK), Duration::from_secs(10));
        assert_eq!(t.function_memory_mb(CONSUMER), 128, "from Globals");
        let source = t.sqs_event_source(CONSUMER).expect("SQS event");
        assert_eq!(
            source,
            SqsEventSource {
                queue: "EventQueue".into(),
                batch_size: 100,
                batching_window: Duration::from_secs(5),
                maximum_concurrency: Some(2),
                report_batch_item_failures: true,
            }
        );
        let q = t.queue("EventQueue").expect("queue");
        assert_eq!(q.visibility_timeout, Duration::from_secs(420));
        assert_eq!(q.redrive, Some(("DeadLetterQueue".into(), 5)));
        assert_eq!(t.resource_type("DeadLetterQueue"), Some("AWS::SQS::Queue"));
        assert_eq!(t.log_format(CONSUMER).as_deref(), Some("JSON"));
    }

    #[test]
    fn resolves_a_ref_to_a_parameter_default_and_keeps_resources_by_logical_id() {
        let t = Template::workspace();
        assert_eq!(t.function_timeout(POLLER), Duration::from_secs(240), "!Ref PollerTimeoutSeconds");
        assert_eq!(t.reserved_concurrency(POLLER), Some(1));
        assert_eq!(t.schedule(POLLER).as_deref(), Some("rate(5 minutes)"));
        let env = t.environment(POLLER);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("QUEUE_URL"), Some(EnvValue::Resource { logical_id: "EventQueue".into(), attribute: None }));
        assert_eq!(get("RUST_LOG"), Some(EnvValue::Text("info".into())), "a Globals variable, !Ref LogLevel");
        assert_eq!(get("CONNECTOR_CONFIG"), Some(EnvValue::Text(String::new())));
    }

    #[test]
    fn tolerates_any_tag_and_reports_it_as_opaque() {
        let t = Template::parse(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: !If [Cond, 5, 6]\n      Environment:\n        Variables:\n          A: !Sub \"${AWS::StackName}-x\"\n          B: !GetAtt Q.Arn\n          C: 7\n",
        )
        .unwrap();
        assert_eq!(t.function_timeout("F"), DEFAULT_TIMEOUT, "an opaque timeout falls back to Lambda's default");
        let env = t.environment("F");
        assert!(matches!(&env[0].1, EnvValue::Opaque(s) if s.starts_with("!Sub")), "{env:?}");
        assert_eq!(env[1].1, EnvValue::Resource { logical_id: "Q".into(), attribute: Some("Arn".into()) });
        assert_eq!(env[2].1, EnvValue::Text("7".into()));
    }

    #[test]
    fn parses_rate_expressions() {
        assert_eq!(parse_rate("rate(5 minutes)"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_rate("rate(1 hour)"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_rate(" rate(2 days) "), Ok(Duration::from_secs(172_800)));
        assert!(parse_rate("rate(1 minutes)").is_err(), "EventBridge wants the singular for 1");
        assert!(parse_rate("cron(0 12 * * ? *)").is_err());
        assert!(parse_rate("rate(x minutes)").is_err());
    }
}
