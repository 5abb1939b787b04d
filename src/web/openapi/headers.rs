//! The response headers a client reads, declared on every response that sends them. utoipa's
//! header object has no `required`, so this pass works on the document's JSON.

use serde_json::{Map, Value, json};

/// Adds the headers every response of a kind carries, and marks the ones always sent as
/// required.
pub(super) fn declare(doc: &mut Value) {
    doc["components"]["headers"] = shared();
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let idempotent = takes_header(operation, "Idempotency-Key");
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                let headers = response
                    .as_object_mut()
                    .map(|r| r.entry("headers").or_insert_with(|| json!({})))
                    .and_then(Value::as_object_mut);
                if let Some(headers) = headers {
                    declare_for(status, idempotent, headers);
                }
            }
        }
    }
}

fn declare_for(status: &str, idempotent: bool, headers: &mut Map<String, Value>) {
    // Declared by the handlers' annotations: sent on every such answer.
    for name in ["ETag", "Location"] {
        if let Some(header) = headers.get_mut(name) {
            header["required"] = json!(true);
            header["schema"] = json!({"type": "string"});
        }
    }
    if let Some(etag) = headers.get_mut("ETag") {
        etag["description"] =
            json!("The version, for `If-Match` on the next write and `If-None-Match` on reads.");
    }
    if let Some(location) = headers.get_mut("Location") {
        location["description"] = json!("The new resource's path.");
    }
    let mut add = |names: &[&str]| {
        for name in names {
            headers.insert((*name).to_owned(), json!({"$ref": format!("#/components/headers/{name}")}));
        }
    };
    add(&["X-Request-Id"]);
    match status {
        "401" => add(&["WWW-Authenticate"]),
        "429" => add(&[
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
        ]),
        "503" => add(&["Retry-After"]),
        _ if idempotent && status.starts_with('2') => add(&["Idempotent-Replayed"]),
        _ => {}
    }
}

/// The headers many responses share, declared once under `components/headers`.
fn shared() -> Value {
    json!({
        "X-Request-Id": header(true, "This request's id, as the logs and any problem document name it; the caller's own when it sent a well-formed one."),
        "WWW-Authenticate": header(true, "Always `Bearer`."),
        "Retry-After": seconds(true, "Seconds to wait before trying again."),
        "RateLimit-Limit": seconds(false, "Requests allowed a minute; sent when a rate limit was reached, not when too many streams are open."),
        "RateLimit-Remaining": seconds(false, "Requests left in the window: 0 when a rate limit was reached."),
        "RateLimit-Reset": seconds(false, "Seconds until the window allows a request again."),
        "RateLimit-Policy": header(false, "The limit and its window in seconds, as `60;w=60`."),
        "Idempotent-Replayed": {
            "description": "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    })
}

fn takes_header(operation: &Map<String, Value>, name: &str) -> bool {
    operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|params| params.iter().any(|p| p["in"] == "header" && p["name"] == name))
}

fn header(required: bool, description: &str) -> Value {
    json!({"required": required, "description": description, "schema": {"type": "string"}})
}

fn seconds(required: bool, description: &str) -> Value {
    json!({"required": required, "description": description, "schema": {"type": "integer", "minimum": 0}})
}
