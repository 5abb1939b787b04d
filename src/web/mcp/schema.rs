//! Tool schemas built from the OpenAPI document's components, so a task, a project or a task
//! patch is described to a model exactly as it is to REST clients, and cannot drift from it.
//! MCP wants self-contained JSON Schemas, so `$ref`s are inlined.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

static DOCUMENT: LazyLock<Value> = LazyLock::new(crate::web::openapi::document);

/// The component `name`, with every `$ref` in it replaced by what it names.
pub fn component(name: &str) -> Value {
    inline(&DOCUMENT["components"]["schemas"][name], 0)
}

fn inline(schema: &Value, depth: usize) -> Value {
    // The components this door uses nest a few levels; a cycle would be a bug in the document.
    assert!(depth < 16, "the OpenAPI components nest too deep to inline");
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let name = target.trim_start_matches("#/components/schemas/");
                let mut resolved = inline(&DOCUMENT["components"]["schemas"][name], depth + 1);
                // Siblings of `$ref` (a description) refine what it names.
                if let Value::Object(resolved_map) = &mut resolved {
                    for (key, value) in map.iter().filter(|(key, _)| *key != "$ref") {
                        resolved_map.insert(key.clone(), inline(value, depth + 1));
                    }
                }
                return resolved;
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), inline(v, depth + 1))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// An object schema with these properties, the `required` ones named, and no others allowed.
pub fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// An ETag as the REST API sends it, to make a write conditional.
pub fn etag() -> Value {
    json!({
        "type": "string",
        "description": "The task's ETag from get_task or an earlier result (`\"<id hex>-<version>\"`). \
            When given, the write happens only if the task has not changed since; otherwise the whole \
            batch fails with a precondition error and nothing is applied."
    })
}

pub fn uuid(description: &str) -> Value {
    json!({ "type": "string", "format": "uuid", "description": description })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_ref(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.contains_key("$ref") || map.values().any(has_ref),
            Value::Array(items) => items.iter().any(has_ref),
            _ => false,
        }
    }

    #[test]
    fn components_are_inlined_whole() {
        for name in ["Task", "TaskInput", "TaskPatch", "Project", "Delivery", "BatchItem"] {
            let schema = component(name);
            assert_eq!(schema["type"], "object", "{name}");
            assert!(!has_ref(&schema), "{name} still has a $ref");
        }
        assert_eq!(component("Task")["properties"]["priority"]["enum"], json!(["low", "medium", "high"]));
    }
}
