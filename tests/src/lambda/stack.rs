//! The template's AWS resources on moto, and what their logical ids resolve
//! to: `!Ref` of a queue is its URL, of a table its name, of a secret its
//! ARN; `!GetAtt X.Arn` is the ARN. Queues are created with the template's
//! attributes (visibility timeout, retention, the redrive policy to their
//! dead-letter queue), so moto applies `maxReceiveCount` as SQS does.
//! A function's environment is then the template's variables resolved
//! through this map ([`LocalStack::environment`]): a variable the stack
//! cannot resolve is an error naming it, so the harness follows the template.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use super::esm::QueueRef;
use super::template::{EnvValue, Template};

/// The local resources, by logical id.
#[derive(Debug, Clone, Default)]
pub struct LocalStack {
    refs: BTreeMap<String, String>,
    arns: BTreeMap<String, String>,
    queues: BTreeMap<String, QueueRef>,
}

impl LocalStack {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what `!Ref logical_id` (and optionally `!GetAtt logical_id.Arn`) is locally.
    pub fn add(&mut self, logical_id: &str, reference: impl Into<String>, arn: Option<String>) {
        self.refs.insert(logical_id.to_owned(), reference.into());
        if let Some(a) = arn {
            self.arns.insert(logical_id.to_owned(), a);
        }
    }

    pub fn reference(&self, logical_id: &str) -> Option<&str> {
        self.refs.get(logical_id).map(String::as_str)
    }

    pub fn queue(&self, logical_id: &str) -> Option<&QueueRef> {
        self.queues.get(logical_id)
    }

    /// Creates queue `logical_id` as `name` with the template's attributes;
    /// its dead-letter queue must have been created first.
    /// `visibility_override` replaces the template's visibility timeout.
    pub async fn create_queue(
        &mut self,
        sqs: &aws_sdk_sqs::Client,
        template: &Template,
        logical_id: &str,
        name: &str,
        visibility_override: Option<Duration>,
    ) -> Result<QueueRef, String> {
        let settings =
            template.queue(logical_id).ok_or_else(|| format!("{logical_id} is not a queue of the template"))?;
        let visibility = visibility_override.unwrap_or(settings.visibility_timeout);
        let mut req = sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility.as_secs().to_string());
        if let Some(r) = settings.message_retention {
            req = req.attributes(QueueAttributeName::MessageRetentionPeriod, r.as_secs().to_string());
        }
        if let Some((dlq, max)) = &settings.redrive {
            let dlq_arn = self.arns.get(dlq).ok_or_else(|| format!("create {dlq} before {logical_id}"))?;
            let policy = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max}).to_string();
            req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
        }
        let url = req
            .send()
            .await
            .map_err(|e| format!("CreateQueue {name}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?
            .queue_url
            .ok_or("CreateQueue gave no URL")?;
        let arn = queue_arn(sqs, &url).await?;
        let region = arn.split(':').nth(3).unwrap_or("us-east-1").to_owned();
        let queue = QueueRef { url: url.clone(), arn: arn.clone(), region };
        self.add(logical_id, url, Some(arn));
        self.queues.insert(logical_id.to_owned(), queue.clone());
        Ok(queue)
    }

    /// Creates a Secrets Manager secret on moto (through boto3 in the venv)
    /// and records its ARN as `!Ref logical_id`.
    pub fn create_secret(&mut self, logical_id: &str, name: &str, value: &str) -> String {
        let arn = create_secret(name, value);
        self.add(logical_id, arn.clone(), Some(arn.clone()));
        arn
    }

    /// The function's environment from the template, every resource
    /// resolved locally; `overrides` replace or add variables (endpoints of
    /// the local stand-ins, a config file). Errors name what cannot be resolved.
    pub fn environment(
        &self,
        template: &Template,
        function: &str,
        overrides: &[(&str, String)],
    ) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for (name, value) in template.environment(function) {
            if let Some((_, v)) = overrides.iter().find(|(k, _)| *k == name) {
                out.push((name, v.clone()));
                continue;
            }
            let v = match value {
                EnvValue::Text(t) => t,
                EnvValue::Resource { logical_id, attribute: None } => {
                    self.refs.get(&logical_id).cloned().ok_or_else(|| {
                        format!("{function}: {name} is !Ref {logical_id}, which the local stack lacks")
                    })?
                }
                EnvValue::Resource { logical_id, attribute: Some(a) } if a == "Arn" => {
                    self.arns.get(&logical_id).cloned().ok_or_else(|| {
                        format!("{function}: {name} is !GetAtt {logical_id}.Arn, which the local stack lacks")
                    })?
                }
                other => return Err(format!("{function}: {name} = {other:?} cannot be resolved locally")),
            };
            out.push((name, v));
        }
        for (k, v) in overrides {
            if !out.iter().any(|(name, _)| name == k) {
                out.push(((*k).to_owned(), v.clone()));
            }
        }
        Ok(out)
    }
}

/// A queue's ARN (`GetQueueAttributes`).
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes {url}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| format!("{url}: no QueueArn"))
}

/// Creates a Secrets Manager secret on moto with boto3 (the test crate has
/// no Secrets Manager client) and returns its ARN. Needs the venv.
pub fn create_secret(name: &str, value: &str) -> String {
    let script = "import boto3,os,sys; c=boto3.client('secretsmanager',endpoint_url=os.environ['AWS_ENDPOINT_URL'],region_name='us-east-1'); print(c.create_secret(Name=sys.argv[1],SecretString=sys.argv[2])['ARN'])";
    let out = Command::new(crate::python()).args(["-c", script, name, value]).output().expect("python runs");
    assert!(out.status.success(), "create_secret: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn resolves_each_functions_environment_from_the_template_or_names_what_is_missing() {
        let t = Template::workspace();
        let mut stack = LocalStack::new();
        let err = stack.environment(&t, "StripePollerFunction", &[]).unwrap_err();
        assert!(
            err.contains("QUEUE_URL") || err.contains("CURSOR_TABLE") || err.contains("STRIPE_SECRET_KEY_ARN"),
            "{err}"
        );
        stack.add(
            "EventQueue",
            "http://127.0.0.1:5000/123456789012/q",
            Some("arn:aws:sqs:us-east-1:123456789012:q".into()),
        );
        stack.add("CursorTable", "cursors-1", None);
        stack.add("StripeSecretKeySecret", "arn:aws:secretsmanager:us-east-1:123456789012:secret:k", None);
        let env: BTreeMap<String, String> = stack
            .environment(
                &t,
                "StripePollerFunction",
                &[("STRIPE_API_BASE", "http://127.0.0.1:1".into()), ("RUST_LOG", "debug".into())],
            )
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(env["QUEUE_URL"], "http://127.0.0.1:5000/123456789012/q");
        assert_eq!(env["CURSOR_TABLE"], "cursors-1");
        assert!(env["STRIPE_SECRET_KEY_ARN"].starts_with("arn:aws:secretsmanager"));
        assert_eq!(env["RUST_LOG"], "debug", "an override wins over the template");
        assert_eq!(env["STRIPE_API_BASE"], "http://127.0.0.1:1", "an override the template lacks is added");
        assert_eq!(env["SECRETS_REVISION"], "1", "Globals, a parameter default");
    }
}
