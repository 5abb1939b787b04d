//! `task://{id}`: a task as a readable resource, for clients that attach context by URI. Reading
//! one is `get_task` by another name, with the same scope and the same 404 for anyone else's.

use serde_json::{Value, json};
use uuid::Uuid;

use super::rpc;
use crate::db::tasks;
use crate::domain::{Scope, Scopes};
use crate::web::state::AppState;

pub fn templates(scopes: &Scopes) -> Vec<Value> {
    if !scopes.contains(Scope::TasksRead) {
        return Vec::new();
    }
    vec![json!({
        "uriTemplate": "task://{id}",
        "name": "task",
        "title": "A task",
        "description": "One of the user's tasks as JSON, as get_task returns it.",
        "mimeType": "application/json",
    })]
}

pub async fn read(state: &AppState, user: Uuid, scopes: &Scopes, id: &Value, params: &Value) -> Value {
    let Some(uri) = params["uri"].as_str() else {
        return rpc::error(id, rpc::INVALID_PARAMS, "resources/read needs `uri`.", None);
    };
    let not_found =
        || rpc::error(id, rpc::RESOURCE_NOT_FOUND, "Resource not found", Some(json!({ "uri": uri })));
    let Some(task_id) = uri.strip_prefix("task://").and_then(|raw| raw.parse::<Uuid>().ok()) else {
        return not_found();
    };
    if !scopes.contains(Scope::TasksRead) {
        let data = json!({ "uri": uri, "required_scope": Scope::TasksRead.as_str() });
        return rpc::error(id, rpc::INVALID_PARAMS, "This token lacks the tasks:read scope.", Some(data));
    }
    match tasks::find_live(&state.pool, user, task_id).await {
        Ok(Some(task)) => {
            let text = json!({ "task": &task, "etag": task.etag() }).to_string();
            rpc::result(
                id,
                json!({ "contents": [{ "uri": uri, "mimeType": "application/json", "text": text }] }),
            )
        }
        Ok(None) => not_found(),
        Err(err) => {
            let summary = crate::web::problem::ApiError::from_db(err).summary();
            rpc::error(id, -32000, &summary.detail, Some(json!(summary)))
        }
    }
}
