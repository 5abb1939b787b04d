//! `POST /tasks/bulk`: up to 100 task operations, applied in order as one transaction by the
//! caller's actor. Every problem in the body is reported at once, named `operations[i].field`.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::form::{BulkTaskInput, BulkTaskPatch, TaskForm};
use crate::commands::{BatchItem, BulkOp, Command, IfMatch};
use crate::domain::Invalid;
use crate::web::json::Json;
use crate::web::problem::{ApiError, FieldError, Problem};
use crate::web::routes::shared::{self, Caller};
use crate::web::state::AppState;

/// Most operations one request may carry.
const MAX_OPERATIONS: usize = 100;

/// The request: operations applied in order, all or none.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents the body; it is parsed field by field below.
pub struct BulkRequest {
    /// 1–100 operations.
    #[schema(min_items = 1, max_items = 100)]
    operations: Vec<BulkOperation>,
}

/// One operation. `op` says which; `id` names the task for every op but `create`; `if_match`
/// (an ETag) makes it conditional, as the header does on the single-task routes. A `create` may
/// carry a `ref`, a name unique in the batch; a later operation's `parent_id` (in `task` or
/// `changes`) may then be `"$"` and that name, standing for the task that create made.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BulkOperation {
    op: BulkOpName,
    /// For `create`: 1–50 letters, digits, `-` or `_`, unique in the batch; later operations
    /// name the new task as `"$<ref>"` in `parent_id`.
    #[serde(rename = "ref")]
    #[schema(nullable = false, pattern = "^[A-Za-z0-9_-]{1,50}$")]
    reference: Option<String>,
    #[schema(format = Uuid)]
    id: Option<String>,
    #[schema(nullable = false)]
    if_match: Option<String>,
    /// For `create`: a task as `POST /tasks` takes it, `parent_id` also a `"$<ref>"`.
    #[schema(nullable = false)]
    task: Option<BulkTaskInput>,
    /// For `update`: a merge patch, as `PATCH /tasks/{id}` takes, `parent_id` also a `"$<ref>"`.
    #[schema(nullable = false)]
    changes: Option<BulkTaskPatch>,
    /// For `move`: the target project, or `null` for the inbox.
    #[schema(format = Uuid)]
    project_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum BulkOpName {
    Create,
    Update,
    Complete,
    Reopen,
    Move,
    Delete,
    Restore,
}

#[derive(Serialize, ToSchema)]
pub struct BulkResponse {
    /// One per operation, in order.
    results: Vec<BatchItem>,
}

/// Apply several task operations at once
///
/// Applies up to 100 task operations in one transaction: all of them, or none. Each result is
/// what the single-task route would have answered. When one fails, the problem names its index in
/// `operation`. Rate limits count every operation as a write.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "bulkWriteTasks", tag = "tasks", security(("bearer" = []), ("apiToken" = ["tasks:write"])), request_body = BulkRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 hours")),
    responses(
        (status = 200, body = BulkResponse),
        (status = 404, description = "An operation names a task the caller does not have; `operation` is its index", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`task_limit_reached`: the creates would take the account past its task limit; or `idempotency_key_in_use`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "An operation's `if_match` is stale", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body or an operation is invalid; fields are named `operations[i].…`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/tasks/bulk")]
#[tracing::instrument(skip_all)]
pub async fn bulk(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let idempotency = shared::idempotency(req.headers(), "bulk", &body)?;
    let operations = parse(body)?;
    // The request itself was counted once on the way in.
    state.rate_limits.charge_user_writes(caller.0, operations.len().saturating_sub(1))?;
    let outcome = state.actors.execute(caller.0, Command::Bulk { operations, idempotency }).await?;
    Ok(shared::outcome_response(outcome))
}

/// A bulk body into its operations, every problem named `operations[i].field`; MCP's batch
/// tools build the same body and parse it here, so their rules are bulk's.
pub fn parse(body: Value) -> Result<Vec<BulkOp>, ApiError> {
    let invalid = |field: &str, message: &str| ApiError::field(field, message);
    let Value::Object(mut map) = body else {
        return Err(invalid("body", "must be a JSON object with `operations`"));
    };
    if let Some(key) = map.keys().find(|k| *k != "operations") {
        return Err(invalid(key, "is not a bulk request field"));
    }
    let Some(Value::Array(raw)) = map.remove("operations") else {
        return Err(invalid("operations", "must be an array of operations"));
    };
    if raw.is_empty() || raw.len() > MAX_OPERATIONS {
        return Err(invalid(
            "operations",
            &format!("must hold 1–{MAX_OPERATIONS} operations, not {}", raw.len()),
        ));
    }
    let mut operations = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    let mut refs = std::collections::HashMap::new();
    for (index, value) in raw.into_iter().enumerate() {
        match resolve_refs(value, &mut refs).and_then(|(value, made)| Ok((operation(value)?, made))) {
            Ok((BulkOp::Create(task, _), Some(id))) => operations.push(BulkOp::Create(task, Some(id))),
            Ok((op, _)) => operations.push(op),
            Err(invalid) => errors.extend(
                invalid
                    .into_iter()
                    .map(|e| FieldError::new(format!("operations[{index}].{}", e.field), e.message)),
            ),
        }
    }
    if errors.is_empty() { Ok(operations) } else { Err(ApiError::Validation(errors)) }
}

const OP_FIELDS: &[&str] = &["op", "id", "if_match", "task", "changes", "project_id"];

/// Takes an operation's `ref` out (a create's name for the task it makes, given an id here so
/// that later operations can name it) and replaces each `"$name"` parent with the id of the
/// earlier create of that name. Returns the operation and, for a create with a `ref`, its id.
fn resolve_refs(
    mut value: Value,
    refs: &mut std::collections::HashMap<String, Uuid>,
) -> Result<(Value, Option<Uuid>), Vec<Invalid>> {
    let Value::Object(map) = &mut value else { return Ok((value, None)) };
    let made = match map.remove("ref") {
        None => None,
        Some(_) if map.get("op") != Some(&Value::String("create".into())) => {
            return Err(vec![Invalid::new("ref", "only a create has a ref")]);
        }
        Some(Value::String(name))
            if (1..=50).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            if refs.contains_key(&name) {
                return Err(vec![Invalid::new("ref", "is used by an earlier operation of this batch")]);
            }
            Some(name)
        }
        Some(_) => return Err(vec![Invalid::new("ref", "must be 1–50 letters, digits, - or _")]),
    };
    for body in ["task", "changes"] {
        let Some(Value::String(parent)) = map.get_mut(body).and_then(|b| b.get_mut("parent_id")) else {
            continue;
        };
        let Some(name) = parent.strip_prefix('$') else { continue };
        match refs.get(name) {
            Some(id) => *parent = id.to_string(),
            None => {
                return Err(vec![Invalid::new(
                    format!("{body}.parent_id"),
                    "names no ref of an earlier create in this batch",
                )]);
            }
        }
    }
    let id = made.map(|name| *refs.entry(name).or_insert_with(Uuid::now_v7));
    Ok((value, id))
}

fn operation(value: Value) -> Result<BulkOp, Vec<Invalid>> {
    let Value::Object(mut map) = value else {
        return Err(vec![Invalid::new("op", "each operation must be a JSON object")]);
    };
    let unknown: Vec<Invalid> = map
        .keys()
        .filter(|k| !OP_FIELDS.contains(&k.as_str()))
        .map(|k| Invalid::new(k.clone(), "is not an operation field"))
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let op = match map.get("op") {
        Some(Value::String(op)) => op.clone(),
        _ => {
            return Err(vec![Invalid::new(
                "op",
                "is required: create, update, complete, reopen, move, delete or restore",
            )]);
        }
    };
    if op == "create" {
        let task = map.remove("task").unwrap_or(Value::Null);
        if let Some(extra) =
            ["id", "if_match", "changes", "project_id"].iter().find(|f| map.contains_key(**f))
        {
            return Err(vec![Invalid::new(*extra, "does not belong to a create; put task fields in `task`")]);
        }
        let fields = TaskForm::parse(task).and_then(TaskForm::into_fields).map_err(in_field("task"))?;
        return Ok(BulkOp::Create(fields, None));
    }
    let id = match map.get("id") {
        Some(Value::String(id)) => {
            id.parse::<Uuid>().map_err(|_| vec![Invalid::new("id", "must be a task id")])?
        }
        _ => return Err(vec![Invalid::new("id", "is required")]),
    };
    let if_match = match map.get("if_match") {
        None => IfMatch(None),
        Some(Value::String(tag)) => shared::if_match_value(tag, id),
        Some(_) => return Err(vec![Invalid::new("if_match", "must be an ETag string")]),
    };
    let allowed: &[&str] = match op.as_str() {
        "update" => &["changes"],
        "move" => &["project_id"],
        "complete" | "reopen" | "delete" | "restore" => &[],
        other => return Err(vec![Invalid::new("op", format!("{other:?} is not an operation"))]),
    };
    if let Some(extra) =
        ["task", "changes", "project_id"].iter().find(|f| map.contains_key(**f) && !allowed.contains(*f))
    {
        return Err(vec![Invalid::new(*extra, format!("does not belong to {op:?}"))]);
    }
    Ok(match op.as_str() {
        "update" => {
            let changes = map.remove("changes").unwrap_or(Value::Object(Map::new()));
            let changes =
                TaskForm::parse(changes).and_then(TaskForm::into_changes).map_err(in_field("changes"))?;
            BulkOp::Update { id, changes, if_match }
        }
        "move" => {
            let project_id = match map.get("project_id") {
                Some(Value::Null) => None,
                Some(Value::String(p)) => Some(
                    p.parse::<Uuid>()
                        .map_err(|_| vec![Invalid::new("project_id", "must be a project id or null")])?,
                ),
                _ => {
                    return Err(vec![Invalid::new(
                        "project_id",
                        "is required: a project id, or null for the inbox",
                    )]);
                }
            };
            BulkOp::Move { id, project_id, if_match }
        }
        "complete" => BulkOp::Complete { id, if_match },
        "reopen" => BulkOp::Reopen { id, if_match },
        "delete" => BulkOp::Delete { id, if_match },
        _ => BulkOp::Restore { id, if_match },
    })
}

/// Names a nested body's field errors under their parent, as `task.title`.
fn in_field(parent: &'static str) -> impl Fn(Vec<Invalid>) -> Vec<Invalid> {
    move |errors| {
        errors.into_iter().map(|e| Invalid::new(format!("{parent}.{}", e.field), e.message)).collect()
    }
}
