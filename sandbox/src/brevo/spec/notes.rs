//! What changed at Brevo after the vendored definition (the team's
//! `shared/brevo/NOTES.md`), applied to the parsed document so every check
//! sees Brevo as it is today; the file itself stays as Brevo published it.
//! Each change is listed in `sandbox/spec/brevo/README.md`.

use serde_json::{json, Value};

/// `POST /v3/events/batch` (added 2026-03, not in the file): up to 200
/// events of the `event` shape in `{"events": [...]}`.
pub(super) const EVENTS_BATCH: (&str, &str, &str) = ("post", "/events/batch", "createBatchEvents");

/// The most events one `POST /v3/events/batch` takes.
pub const EVENTS_BATCH_MAX: u64 = 200;

/// Applies the changes to the definition's `paths` and `components/schemas`.
pub(super) fn apply(doc: &mut Value) {
    // createContact also takes forceMerge and getId (Brevo's SDKs 5.x send
    // them as booleans); still no unlinkListIds.
    if let Some(props) = doc.pointer_mut("/components/schemas/createContact/properties").and_then(Value::as_object_mut)
    {
        props.insert("forceMerge".into(), json!({ "type": "boolean" }));
        props.insert("getId".into(), json!({ "type": "boolean" }));
    }
    // The events batch endpoint.
    let (method, path, id) = EVENTS_BATCH;
    let batch = json!({
        "operationId": id,
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": {
                "type": "object",
                "required": ["events"],
                "properties": { "events": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": EVENTS_BATCH_MAX,
                    "items": { "$ref": "#/components/schemas/event" },
                } },
            } } },
        },
    });
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        paths.insert(path.to_owned(), json!({ method: batch }));
    }
    // A correction from the definition's own words: event_properties "supports
    // string, number, boolean (true/false), date", but its anyOf lists only
    // string, integer, object and array.
    if let Some(alts) = doc
        .pointer_mut("/components/schemas/event/properties/event_properties/additionalProperties/anyOf")
        .and_then(Value::as_array_mut)
    {
        for t in ["number", "boolean"] {
            let alt = json!({ "type": t });
            if !alts.contains(&alt) {
                alts.push(alt);
            }
        }
    }
}
