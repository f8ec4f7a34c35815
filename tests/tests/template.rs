//! Static checks of `template.yaml` (no AWS, no Python): least privilege per
//! function, secrets never in the template, the runtime and build settings,
//! the queue/DLQ/table/schedule settings the pipeline's guarantees rest on,
//! and the alarms. `sam validate --lint` and `cfn-lint` run in `scripts/test`.
//!
//! CloudFormation short tags (`!Ref`, `!GetAtt`, `!Sub`, …) are normalised to
//! their long form (`{"Ref": …}`, `{"Fn::GetAtt": [..]}`) so the assertions
//! read the template as CloudFormation does.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

const WEBHOOK: &str = "StripeWebhookFunction";
const CONSUMER: &str = "StripeToBrevoFunction";
const POLLER: &str = "StripePollerFunction";
const FUNCTIONS: [&str; 3] = [WEBHOOK, CONSUMER, POLLER];

const STRIPE_KEY_SECRET: &str = "StripeSecretKeySecret";
const WEBHOOK_SECRET: &str = "StripeWebhookSecretSecret";
const BREVO_KEY_SECRET: &str = "BrevoApiKeySecret";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn template_text() -> String {
    std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml at the workspace root")
}

/// The template as JSON, short tags expanded.
fn template() -> Value {
    let yaml: serde_norway::Value = serde_norway::from_str(&template_text()).expect("template.yaml parses as YAML");
    to_json(yaml)
}

fn to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64().unwrap())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(to_json).collect()),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(t.value);
            let (key, value) = match name {
                "Ref" | "Condition" => (name.to_owned(), inner),
                "GetAtt" => {
                    let parts = match inner {
                        Value::String(s) => {
                            let (res, attr) = s.split_once('.').expect("!GetAtt Resource.Attribute");
                            json!([res, attr])
                        }
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), parts)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut m = Map::new();
            m.insert(key, value);
            Value::Object(m)
        }
    }
}

fn resources(t: &Value) -> &Map<String, Value> {
    t["Resources"].as_object().expect("Resources")
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    resources(t).get(id).unwrap_or_else(|| panic!("resource {id} missing"))
}

fn props<'a>(t: &'a Value, id: &str) -> &'a Value {
    &resource(t, id)["Properties"]
}

/// A function property, falling back to `Globals.Function`.
fn fn_prop<'a>(t: &'a Value, id: &str, key: &str) -> &'a Value {
    let own = &props(t, id)[key];
    if own.is_null() {
        &t["Globals"]["Function"][key]
    } else {
        own
    }
}

/// A function's environment, Globals merged under its own variables.
fn env_of(t: &Value, id: &str) -> Map<String, Value> {
    let mut env = t["Globals"]["Function"]["Environment"]["Variables"].as_object().cloned().unwrap_or_default();
    if let Some(own) = props(t, id)["Environment"]["Variables"].as_object() {
        env.extend(own.clone());
    }
    env
}

/// Logical ids a value references through Ref, Fn::GetAtt or Fn::Sub.
fn refs(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_refs(v, &mut out);
    out
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, inner) in m {
                match (k.as_str(), inner) {
                    ("Ref", Value::String(s)) if !s.starts_with("AWS::") => {
                        out.insert(s.clone());
                    }
                    ("Fn::GetAtt", Value::Array(a)) => {
                        if let Some(Value::String(s)) = a.first() {
                            out.insert(s.clone());
                        }
                    }
                    ("Fn::Sub", sub) => {
                        let (text, vars) = match sub {
                            Value::String(s) => (s.as_str(), None),
                            Value::Array(a) => (a[0].as_str().unwrap_or(""), a.get(1)),
                            _ => ("", None),
                        };
                        let mut rest = text;
                        while let Some(start) = rest.find("${") {
                            let after = &rest[start + 2..];
                            let Some(end) = after.find('}') else { break };
                            let name = after[..end].split('.').next().unwrap_or("");
                            if !name.starts_with("AWS::") && !name.starts_with('!') {
                                out.insert(name.to_owned());
                            }
                            rest = &after[end..];
                        }
                        if let Some(vars) = vars {
                            collect_refs(vars, out);
                        }
                    }
                    _ => collect_refs(inner, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        other => vec![other.clone()],
    }
}

/// Every IAM statement in the template: roles' inline policies, queue and
/// other resource policies, and SAM `Policies` statements.
fn all_statements(t: &Value) -> Vec<(String, Value)> {
    fn walk(owner: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                if let Some(st) = m.get("Statement") {
                    for s in as_list(st) {
                        out.push((owner.to_owned(), s));
                    }
                }
                for inner in m.values() {
                    walk(owner, inner, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(owner, x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (id, r) in resources(t) {
        walk(id, r, &mut out);
    }
    out
}

/// The Allow statements of a function's execution role.
fn role_statements(t: &Value, function: &str) -> Vec<Value> {
    let role = fn_prop(t, function, "Role");
    let ids = refs(role);
    assert_eq!(ids.len(), 1, "{function} must use one explicit role of this template, got {role}");
    let role_id = ids.into_iter().next().unwrap();
    let role = resource(t, &role_id);
    assert_eq!(role["Type"], "AWS::IAM::Role");
    let trust = serde_json::to_string(&role["Properties"]["AssumeRolePolicyDocument"]).unwrap();
    assert!(trust.contains("lambda.amazonaws.com"), "{role_id} is assumable by Lambda only");
    assert!(
        role["Properties"]["ManagedPolicyArns"].is_null(),
        "{role_id}: no managed policies (their statements use Resource \"*\")"
    );
    as_list(&role["Properties"]["Policies"])
        .iter()
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .filter(|s| s["Effect"] == "Allow")
        .collect()
}

fn actions(s: &Value) -> Vec<String> {
    as_list(&s["Action"]).iter().map(|a| a.as_str().unwrap().to_owned()).collect()
}

/// Logical ids the role may apply `action` to.
fn granted(t: &Value, function: &str, action: &str) -> BTreeSet<String> {
    role_statements(t, function)
        .iter()
        .filter(|s| actions(s).iter().any(|a| a == action))
        .flat_map(|s| refs(&s["Resource"]))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn num(v: &Value) -> i64 {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A Number parameter's default, or a literal number.
fn resolve_num(t: &Value, v: &Value) -> i64 {
    match v.get("Ref").and_then(Value::as_str) {
        Some(p) => num(&t["Parameters"][p]["Default"]),
        None => num(v),
    }
}

#[test]
fn template_functions_are_rust_on_al2023_arm64_built_by_cargo_lambda() {
    let t = template();
    assert_eq!(t["Transform"], "AWS::Serverless-2016-10-31");
    for (id, binary) in [(WEBHOOK, "stripe-webhook"), (CONSUMER, "stripe-to-brevo"), (POLLER, "stripe-poller")] {
        let r = resource(&t, id);
        assert_eq!(r["Type"], "AWS::Serverless::Function", "{id}");
        assert_eq!(fn_prop(&t, id, "Runtime"), "provided.al2023", "{id}");
        assert_eq!(fn_prop(&t, id, "Handler"), "bootstrap", "{id}");
        assert_eq!(fn_prop(&t, id, "Architectures"), &json!(["arm64"]), "{id}");
        assert_eq!(r["Metadata"]["BuildMethod"], "rust-cargolambda", "{id}");
        assert_eq!(r["Metadata"]["BuildProperties"]["Binary"], binary, "{id}");
        // The binary is a workspace member built from the workspace root.
        assert_eq!(fn_prop(&t, id, "CodeUri"), ".", "{id}");
        let manifest = std::fs::read_to_string(root().join("functions").join(binary).join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("name = \"{binary}\"")), "functions/{binary} builds the `{binary}` binary");
        let memory = num(fn_prop(&t, id, "MemorySize"));
        assert!((128..=256).contains(&memory), "{id}: {memory} MB (measured peak RSS is far below 64 MB)");
    }
    assert_eq!(num(fn_prop(&t, WEBHOOK, "Timeout")), 10);
    assert_eq!(num(fn_prop(&t, CONSUMER, "Timeout")), 60);
    let poller_timeout = resolve_num(&t, fn_prop(&t, POLLER, "Timeout"));
    assert!((30..300).contains(&poller_timeout), "poller timeout {poller_timeout}s below the 5-minute schedule");
}

#[test]
fn template_secret_parameters_are_noecho_and_never_defaulted() {
    let t = template();
    for p in ["StripeSecretKey", "StripeWebhookSecret", "BrevoApiKey"] {
        let param = &t["Parameters"][p];
        assert_eq!(param["Type"], "String", "{p}");
        assert_eq!(param["NoEcho"], true, "{p} must be NoEcho");
        assert!(param.get("Default").is_none(), "{p} must have no Default");
    }
    // Nothing that looks like a real credential anywhere in the template.
    let text = template_text();
    for prefix in ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_", "xkeysib-"] {
        for (i, _) in text.match_indices(prefix) {
            let next = text[i + prefix.len()..].chars().next().unwrap_or(' ');
            assert!(!next.is_ascii_alphanumeric(), "template.yaml contains a literal {prefix}… value");
        }
    }
    // Each secret parameter goes into exactly one Secrets Manager secret.
    for (param, secret) in [
        ("StripeSecretKey", STRIPE_KEY_SECRET),
        ("StripeWebhookSecret", WEBHOOK_SECRET),
        ("BrevoApiKey", BREVO_KEY_SECRET),
    ] {
        let r = resource(&t, secret);
        assert_eq!(r["Type"], "AWS::SecretsManager::Secret");
        assert_eq!(r["Properties"]["SecretString"], json!({"Ref": param}));
        let users: Vec<&String> =
            resources(&t).iter().filter(|(id, r)| *id != secret && refs(r).contains(param)).map(|(id, _)| id).collect();
        assert!(users.is_empty(), "parameter {param} must only feed {secret}, also used by {users:?}");
    }
}

#[test]
fn template_functions_get_secret_arns_and_the_variables_they_read() {
    let t = template();
    let expected: [(&str, &[(&str, &str)]); 3] = [
        (WEBHOOK, &[("QUEUE_URL", "EventQueue"), ("STRIPE_WEBHOOK_SECRET_ARN", WEBHOOK_SECRET)]),
        (
            CONSUMER,
            &[
                ("DEDUP_TABLE", "DedupTable"),
                ("CURSOR_TABLE", "CursorTable"),
                ("DLQ_URL", "DeadLetterQueue"),
                ("STRIPE_SECRET_KEY_ARN", STRIPE_KEY_SECRET),
                ("BREVO_API_KEY_ARN", BREVO_KEY_SECRET),
            ],
        ),
        (
            POLLER,
            &[
                ("QUEUE_URL", "EventQueue"),
                ("CURSOR_TABLE", "CursorTable"),
                ("STRIPE_SECRET_KEY_ARN", STRIPE_KEY_SECRET),
            ],
        ),
    ];
    for (id, vars) in expected {
        let env = env_of(&t, id);
        for (var, target) in vars {
            let v = env.get(*var).unwrap_or_else(|| panic!("{id}: {var} not set"));
            assert_eq!(v, &json!({"Ref": target}), "{id}: {var}");
        }
        for secret_var in ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "BREVO_API_KEY"] {
            assert!(
                !env.contains_key(secret_var),
                "{id}: the secret itself ({secret_var}) must never be in the environment"
            );
        }
        // A function only learns the ARNs of the secrets it may read.
        let arn_vars: BTreeSet<&str> = env.keys().filter(|k| k.ends_with("_ARN")).map(String::as_str).collect();
        let wanted: BTreeSet<&str> = vars.iter().map(|(k, _)| *k).filter(|k| k.ends_with("_ARN")).collect();
        assert_eq!(arn_vars, wanted, "{id}");
    }
    let connector = &t["Globals"]["Function"]["Environment"]["Variables"]["CONNECTOR_CONFIG"];
    let param = connector["Ref"].as_str().expect("CONNECTOR_CONFIG from a parameter");
    assert_eq!(t["Parameters"][param]["Default"], "", "empty CONNECTOR_CONFIG = built-in default");
}

#[test]
fn template_each_function_reads_only_its_own_secrets() {
    let t = template();
    assert_eq!(
        granted(&t, WEBHOOK, "secretsmanager:GetSecretValue"),
        set(&[WEBHOOK_SECRET]),
        "webhook: its signing secret only"
    );
    assert_eq!(granted(&t, CONSUMER, "secretsmanager:GetSecretValue"), set(&[STRIPE_KEY_SECRET, BREVO_KEY_SECRET]));
    assert_eq!(granted(&t, POLLER, "secretsmanager:GetSecretValue"), set(&[STRIPE_KEY_SECRET]));
    // No other action on any secret, and no SSM or KMS reach-around.
    for f in FUNCTIONS {
        for s in role_statements(&t, f) {
            let touches_secret = refs(&s["Resource"])
                .iter()
                .any(|r| [STRIPE_KEY_SECRET, WEBHOOK_SECRET, BREVO_KEY_SECRET].contains(&r.as_str()));
            if touches_secret {
                assert_eq!(actions(&s), vec!["secretsmanager:GetSecretValue".to_owned()], "{f}: {s}");
            }
            for a in actions(&s) {
                assert!(!a.starts_with("ssm:") && !a.starts_with("kms:"), "{f}: unexpected {a}");
            }
        }
    }
}

#[test]
fn template_each_function_touches_only_its_own_resources() {
    let t = template();
    let allowed = [
        (WEBHOOK, set(&["WebhookLogGroup", WEBHOOK_SECRET, "EventQueue"])),
        (
            CONSUMER,
            set(&[
                "ConsumerLogGroup",
                STRIPE_KEY_SECRET,
                BREVO_KEY_SECRET,
                "EventQueue",
                "DeadLetterQueue",
                "DedupTable",
                "CursorTable",
            ]),
        ),
        (POLLER, set(&["PollerLogGroup", STRIPE_KEY_SECRET, "EventQueue", "CursorTable"])),
    ];
    for (f, allowed) in allowed {
        let touched: BTreeSet<String> = role_statements(&t, f).iter().flat_map(|s| refs(&s["Resource"])).collect();
        assert_eq!(touched, allowed, "{f}");
        assert!(props(&t, f)["Policies"].is_null(), "{f}: permissions live in its explicit role");
    }
    assert_eq!(granted(&t, WEBHOOK, "sqs:SendMessage"), set(&["EventQueue"]));
    assert_eq!(granted(&t, POLLER, "sqs:SendMessage"), set(&["EventQueue"]));
    // The DLQ for poison, the event queue for fan-out units and deferred copies.
    assert_eq!(granted(&t, CONSUMER, "sqs:SendMessage"), set(&["DeadLetterQueue", "EventQueue"]));
    assert_eq!(granted(&t, CONSUMER, "sqs:ReceiveMessage"), set(&["EventQueue"]));
    assert_eq!(granted(&t, CONSUMER, "sqs:DeleteMessage"), set(&["EventQueue"]));
    for a in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"] {
        assert_eq!(granted(&t, CONSUMER, a), set(&["DedupTable"]), "consumer {a}");
        assert_eq!(granted(&t, POLLER, a), set(&["CursorTable"]), "poller {a}");
    }
    assert_eq!(granted(&t, CONSUMER, "dynamodb:UpdateItem"), set(&["DedupTable", "CursorTable"]), "consumer counters");
    // The contact ledger (in the dedup table) reads entries in batches.
    assert_eq!(granted(&t, CONSUMER, "dynamodb:BatchGetItem"), set(&["DedupTable"]), "consumer ledger");
    // The consumer's dedup and ledger adapters use exactly these (no Query, Scan or batch writes).
    let consumer_ddb: BTreeSet<String> =
        role_statements(&t, CONSUMER).iter().flat_map(actions).filter(|a| a.starts_with("dynamodb:")).collect();
    assert_eq!(
        consumer_ddb,
        set(&[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchGetItem"
        ])
    );
    // The poller's cursor adapter uses exactly these (no Query, no batch ops).
    let poller_ddb: BTreeSet<String> =
        role_statements(&t, POLLER).iter().flat_map(actions).filter(|a| a.starts_with("dynamodb:")).collect();
    assert_eq!(
        poller_ddb,
        set(&["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"])
    );
    for s in role_statements(&t, WEBHOOK) {
        assert!(actions(&s).iter().all(|a| !a.starts_with("dynamodb:")), "the webhook has no table access");
    }
    for s in role_statements(&t, CONSUMER) {
        if refs(&s["Resource"]).contains("CursorTable") {
            assert_eq!(
                actions(&s),
                vec!["dynamodb:UpdateItem".to_owned()],
                "consumer: counters only on the cursor table"
            );
        }
    }
}

#[test]
fn template_no_statement_allows_a_wildcard_resource_or_action() {
    let t = template();
    let statements = all_statements(&t);
    assert!(statements.len() >= 10, "found only {} statements", statements.len());
    for (owner, s) in statements {
        assert!(s.get("NotResource").is_none() && s.get("NotAction").is_none(), "{owner}: {s}");
        for r in as_list(&s["Resource"]) {
            assert_ne!(r, json!("*"), "{owner}: Resource \"*\" in {s}");
            if let Some(text) = r.as_str() {
                assert!(!text.contains(":*:") && !text.ends_with(":*"), "{owner}: wildcard ARN {text}");
            }
        }
        if s["Effect"] == "Allow" {
            for a in actions(&s) {
                assert!(a != "*" && !a.ends_with(":*") && !a.contains('*'), "{owner}: wildcard action {a}");
            }
        }
    }
    // SAM adds AWS managed policies whose statements use "*" to roles it
    // generates; every function uses an explicit role instead.
    for f in FUNCTIONS {
        assert!(!fn_prop(&t, f, "Role").is_null(), "{f} needs an explicit role");
    }
}

#[test]
fn template_queue_has_a_dlq_and_outlives_the_consumer() {
    let t = template();
    let q = props(&t, "EventQueue");
    assert_eq!(q["RedrivePolicy"]["maxReceiveCount"], 5);
    assert_eq!(q["RedrivePolicy"]["deadLetterTargetArn"], json!({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}));
    let sqs = &props(&t, CONSUMER)["Events"]["Queue"]["Properties"];
    let timeout = num(fn_prop(&t, CONSUMER, "Timeout"));
    let window = num(&sqs["MaximumBatchingWindowInSeconds"]);
    let visibility = num(&q["VisibilityTimeout"]);
    assert!(visibility >= 6 * timeout + window, "visibility {visibility}s < 6 × {timeout}s + {window}s");
    let dlq = props(&t, "DeadLetterQueue");
    assert_eq!(num(&dlq["MessageRetentionPeriod"]), 14 * 24 * 3600);
    // Standard queues keep the original enqueue time: the DLQ must keep
    // messages longer than the source queue or they expire on arrival.
    assert!(num(&q["MessageRetentionPeriod"]) < num(&dlq["MessageRetentionPeriod"]));
    for id in ["EventQueue", "DeadLetterQueue"] {
        let p = props(&t, id);
        assert!(p["SqsManagedSseEnabled"] == true || !p["KmsMasterKeyId"].is_null(), "{id}: SSE");
    }
}

#[test]
fn template_consumer_reports_partial_batch_failures_within_brevo_limits() {
    let t = template();
    let event = &props(&t, CONSUMER)["Events"]["Queue"];
    assert_eq!(event["Type"], "SQS");
    let p = &event["Properties"];
    assert_eq!(p["Queue"], json!({"Fn::GetAtt": ["EventQueue", "Arn"]}));
    assert_eq!(p["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
    assert_eq!(num(&p["BatchSize"]), 100);
    let window = num(&p["MaximumBatchingWindowInSeconds"]);
    assert!((1..=10).contains(&window), "batching window {window}s");
    assert_eq!(
        resolve_num(&t, &p["ScalingConfig"]["MaximumConcurrency"]),
        2,
        "2 is SQS's minimum; the instances share Brevo's 10 rps"
    );
}

#[test]
fn template_rate_budgets_come_from_one_parameter_each_and_are_shared_by_every_process_that_calls_the_vendors() {
    let t = template();
    let instances_param = json!({"Ref": "ConsumerMaximumConcurrency"});
    let budget_param = json!({"Ref": "StripeRequestsPerSecond"});
    let scaling = &props(&t, CONSUMER)["Events"]["Queue"]["Properties"]["ScalingConfig"]["MaximumConcurrency"];
    assert_eq!(scaling, &instances_param, "MaximumConcurrency and the share count have one source");
    for id in [CONSUMER, POLLER] {
        let env = env_of(&t, id);
        assert_eq!(env.get("CONSUMER_MAX_CONCURRENCY"), Some(&instances_param), "{id}");
        assert_eq!(env.get("STRIPE_ACCOUNT_REQUESTS_PER_SECOND"), Some(&budget_param), "{id}");
        assert!(!env.contains_key("STRIPE_REQUESTS_PER_SECOND"), "{id}: a per-process figure is not divided");
    }
    let webhook = env_of(&t, WEBHOOK);
    assert!(
        !webhook.contains_key("CONSUMER_MAX_CONCURRENCY")
            && !webhook.contains_key("STRIPE_ACCOUNT_REQUESTS_PER_SECOND"),
        "the webhook calls no vendor"
    );
    let params = &t["Parameters"];
    for p in ["StripeRequestsPerSecond", "ConsumerMaximumConcurrency"] {
        assert_eq!(params[p]["Type"], "Number", "{p}");
        assert!(params[p]["NoEcho"].is_null(), "{p} is no secret");
    }
    assert_eq!(num(&params["ConsumerMaximumConcurrency"]["MinValue"]), 2, "SQS's minimum MaximumConcurrency");
    // The template's numbers through the connector's own share computation.
    let consumers = u32::try_from(resolve_num(&t, scaling)).unwrap();
    let budget = resolve_num(&t, &budget_param) as f64;
    let instances = shared::wiring::budget::Instances::Deployed { consumers };
    assert_eq!(
        u32::try_from(num(&props(&t, POLLER)["ReservedConcurrentExecutions"])).unwrap(),
        shared::wiring::budget::POLLER_INSTANCES,
        "the shares count the poller the template reserves"
    );
    use shared::wiring::budget::Role;
    let total = budget * instances.stripe_part(Role::Poller) * f64::from(shared::wiring::budget::POLLER_INSTANCES)
        + budget * instances.stripe_part(Role::Consumer) * f64::from(consumers);
    assert!(total <= budget + 1e-9, "the parts of {budget} add up to {total}");
    assert!(budget <= 20.0, "the default leaves room in test mode's 25 r/s and most of live's 100 for checkout");
}

#[test]
fn template_tables_are_on_demand_with_dedup_ttl_and_cursor_pitr() {
    let t = template();
    for id in ["CursorTable", "DedupTable"] {
        let p = props(&t, id);
        assert_eq!(resource(&t, id)["Type"], "AWS::DynamoDB::Table");
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{id}");
        assert_eq!(p["KeySchema"], json!([{"AttributeName": "pk", "KeyType": "HASH"}]), "{id}");
        assert_eq!(p["AttributeDefinitions"], json!([{"AttributeName": "pk", "AttributeType": "S"}]), "{id}");
        assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{id}");
    }
    let dedup = props(&t, "DedupTable");
    assert_eq!(dedup["TimeToLiveSpecification"], json!({"AttributeName": "expires_at", "Enabled": true}));
    assert_eq!(props(&t, "CursorTable")["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
}

#[test]
fn template_poller_runs_alone_on_a_parameterised_schedule() {
    let t = template();
    assert_eq!(num(&props(&t, POLLER)["ReservedConcurrentExecutions"]), 1);
    let events = props(&t, POLLER)["Events"].as_object().unwrap();
    let schedule =
        events.values().find(|e| e["Type"] == "Schedule" || e["Type"] == "ScheduleV2").expect("a schedule event");
    assert_eq!(schedule["Properties"]["Schedule"], json!({"Ref": "PollSchedule"}));
    assert!(schedule["Properties"]["Input"].is_null(), "the poller receives the EventBridge scheduled event");
    assert_eq!(t["Parameters"]["PollSchedule"]["Default"], "rate(5 minutes)");
    assert_eq!(
        num(&props(&t, POLLER)["EventInvokeConfig"]["MaximumRetryAttempts"]),
        0,
        "the next tick resumes from the cursor"
    );
}

#[test]
fn template_webhook_is_routed_and_the_url_is_an_output() {
    let t = template();
    let events = props(&t, WEBHOOK)["Events"].as_object().unwrap();
    assert_eq!(events.len(), 1);
    let e = events.values().next().unwrap();
    assert_eq!(e["Type"], "HttpApi");
    assert_eq!(e["Properties"]["Method"], "POST");
    assert_eq!(e["Properties"]["Path"], "/webhooks/stripe");
    let api = refs(&e["Properties"]["ApiId"]).into_iter().next().expect("an explicit HttpApi");
    assert_eq!(resource(&t, &api)["Type"], "AWS::Serverless::HttpApi");
    let outputs = t["Outputs"].as_object().unwrap();
    for o in ["WebhookUrl", "QueueUrl", "DeadLetterQueueUrl", "CursorTableName", "DedupTableName"] {
        assert!(outputs.contains_key(o), "output {o}");
    }
    let url = t["Outputs"]["WebhookUrl"]["Value"]["Fn::Sub"].as_str().unwrap();
    assert!(
        url.starts_with("https://${") && url.contains(&format!("${{{api}}}")) && url.ends_with("/webhooks/stripe"),
        "{url}"
    );
    assert_eq!(t["Outputs"]["QueueUrl"]["Value"], json!({"Ref": "EventQueue"}));
    assert_eq!(t["Outputs"]["DeadLetterQueueUrl"]["Value"], json!({"Ref": "DeadLetterQueue"}));
    // The webhook must answer fast; Stripe times out after 10-20 s.
    assert!(num(fn_prop(&t, WEBHOOK, "Timeout")) <= 10);
}

#[test]
fn template_alarms_cover_dlq_errors_throttles_and_a_stale_poller() {
    let t = template();
    let alarms: Vec<(&String, &Value)> = resources(&t)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(id, r)| (id, &r["Properties"]))
        .collect();
    let find = |namespace: &str, metric: &str, dim: &str| {
        alarms.iter().find(|(_, p)| {
            p["Namespace"] == namespace
                && p["MetricName"] == metric
                && as_list(&p["Dimensions"]).iter().any(|d| refs(&d["Value"]).contains(dim))
        })
    };
    let (_, dlq) = find("AWS/SQS", "ApproximateNumberOfMessagesVisible", "DeadLetterQueue").expect("DLQ depth alarm");
    assert_eq!(dlq["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(num(&dlq["Threshold"]), 0);
    for f in FUNCTIONS {
        for metric in ["Errors", "Throttles"] {
            let (id, p) = find("AWS/Lambda", metric, f).unwrap_or_else(|| panic!("{metric} alarm for {f}"));
            assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
            assert_eq!(num(&p["Threshold"]), 0, "{id}");
        }
    }
    // The poller's "age of cursor": no successful run for a while.
    let (_, stale) = alarms
        .iter()
        .find(|(_, p)| {
            let m = serde_json::to_string(&p["Metrics"]).unwrap();
            m.contains("Invocations") && refs(&p["Metrics"]).contains(POLLER)
        })
        .expect("poller staleness alarm");
    assert_eq!(stale["ComparisonOperator"], "LessThanThreshold");
    assert_eq!(stale["TreatMissingData"], "breaching", "no data means the poller did not run");
    for (id, p) in &alarms {
        assert!(refs(&p["AlarmActions"]).contains("AlarmTopic"), "{id} notifies the alarm topic");
    }
}

#[test]
fn template_normaliser_expands_short_tags() {
    let y: serde_norway::Value = serde_norway::from_str(
        "a: !Ref X\nb: !GetAtt Q.Arn\nc: !Sub '${A}-${AWS::Region}-${B.Arn}'\nd: !Not [!Equals [!Ref P, '']]",
    )
    .unwrap();
    let j = to_json(y);
    assert_eq!(j["a"], json!({"Ref": "X"}));
    assert_eq!(j["b"], json!({"Fn::GetAtt": ["Q", "Arn"]}));
    assert_eq!(refs(&j["c"]), set(&["A", "B"]));
    assert_eq!(j["d"], json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]}));
}
