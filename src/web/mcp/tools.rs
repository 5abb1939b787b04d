//! The tools. Each one only translates: its arguments become what the REST route would have
//! parsed (query pairs for the list, a bulk body for the batches, a project body), parsed by the
//! REST layer's own functions into the same domain values and commands, and sent through the
//! caller's actor. A problem becomes a tool error (`isError: true`) whose text names the field
//! and the rule, never a protocol error.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone as _, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::schema::{self, component, object};
use crate::commands::{Command, Outcome};
use crate::db::task_list::Shelf;
use crate::db::{projects, reminders, tasks, users};
use crate::domain::{Scope, Scopes, TimeZone};
use crate::web::problem::{ApiError, FieldError};
use crate::web::routes::projects as project_routes;
use crate::web::routes::tasks::{bulk, list};
use crate::web::state::AppState;

/// Tasks a list tool returns per call unless asked for fewer; `find_tasks` pages on with `cursor`.
pub const PAGE: i64 = 50;
/// Items one batch tool call may carry, as a bulk request may.
const MAX_BATCH: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    Read,
    /// Changes data, but repeating the same call changes nothing more.
    Idempotent,
    Additive,
    Destructive,
}

struct Tool {
    name: &'static str,
    title: &'static str,
    scope: Scope,
    effect: Effect,
    description: &'static str,
    input: fn() -> Value,
    output: fn() -> Value,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "find_tasks",
        title: "Find tasks",
        scope: Scope::TasksRead,
        effect: Effect::Read,
        description: "Search and filter the user's open and completed tasks. Returns up to `limit` tasks (50 by default, at most 100), the `total` that match, and `next_cursor`: pass it back as `cursor`, with the same other arguments, for the next page. Filters combine with AND. Use this to look tasks up by words, tags, priority, project or due dates; use `agenda` for what is due soon, and `get_task` when you already have an id.",
        input: find_input,
        output: find_output,
    },
    Tool {
        name: "get_task",
        title: "Get a task",
        scope: Scope::TasksRead,
        effect: Effect::Read,
        description: "One task by id, with its `etag`. Pass the etag to a write tool to make sure the task has not changed since you read it.",
        input: || object(json!({ "id": schema::uuid("The task's id.") }), &["id"]),
        output: || {
            object(json!({ "task": component("Task"), "etag": { "type": "string" } }), &["task", "etag"])
        },
    },
    Tool {
        name: "add_tasks",
        title: "Add tasks",
        scope: Scope::TasksWrite,
        effect: Effect::Additive,
        description: "Create 1–100 tasks in one all-or-nothing step. Each item takes the task's fields: only `title` is required; times are RFC 3339 with an offset; `timezone` defaults to the user's. If any item is invalid, nothing is created and the error names the item (`tasks[i].field`). Returns each created task with its etag.",
        input: || batch_input(component("TaskInput")),
        output: batch_output,
    },
    Tool {
        name: "update_tasks",
        title: "Update tasks",
        scope: Scope::TasksWrite,
        effect: Effect::Idempotent,
        description: "Change fields of 1–100 tasks in one all-or-nothing step. Each item names a task `id` and `changes`: only the fields given change, and `null` clears a field (for example `due_at: null`). Use this to reschedule, rename, retag or reprioritise; use `complete_tasks`, `reopen_tasks` and `move_tasks` for those changes. Returns each task as it now is.",
        input: || {
            batch_input(object(
                json!({ "id": schema::uuid("The task's id."), "changes": component("TaskPatch"), "etag": schema::etag() }),
                &["id", "changes"],
            ))
        },
        output: batch_output,
    },
    Tool {
        name: "complete_tasks",
        title: "Complete tasks",
        scope: Scope::TasksWrite,
        effect: Effect::Idempotent,
        description: "Mark 1–100 tasks done in one all-or-nothing step. Completing an occurrence of a recurring task creates its next occurrence. Completing a task that is already done changes nothing. Returns each task as it now is.",
        input: || batch_input(id_item(json!({}))),
        output: batch_output,
    },
    Tool {
        name: "reopen_tasks",
        title: "Reopen tasks",
        scope: Scope::TasksWrite,
        effect: Effect::Idempotent,
        description: "Mark 1–100 completed tasks as not done, in one all-or-nothing step. Returns each task as it now is.",
        input: || batch_input(id_item(json!({}))),
        output: batch_output,
    },
    Tool {
        name: "move_tasks",
        title: "Move tasks",
        scope: Scope::TasksWrite,
        effect: Effect::Idempotent,
        description: "Move 1–100 tasks to a project, or to the inbox with `project_id: null`, in one all-or-nothing step. Get project ids from `list_projects`. Returns each task as it now is.",
        input: || {
            batch_input(id_item(json!({
                "project_id": { "type": ["string", "null"], "format": "uuid", "description": "The target project's id, or null for the inbox." }
            })))
        },
        output: batch_output,
    },
    Tool {
        name: "delete_tasks",
        title: "Delete tasks",
        scope: Scope::TasksWrite,
        effect: Effect::Destructive,
        description: "Move 1–100 tasks to the trash in one all-or-nothing step; the user can restore them from the trash until it is emptied. Pending reminders of these tasks are cancelled. Returns each task as it is in the trash.",
        input: || batch_input(id_item(json!({}))),
        output: batch_output,
    },
    Tool {
        name: "list_projects",
        title: "List projects",
        scope: Scope::ProjectsRead,
        effect: Effect::Read,
        description: "The user's projects, lowest position first, with counts of open and live tasks. `archived: true` lists only archived ones, `false` only active ones; without it, all.",
        input: || object(json!({ "archived": { "type": "boolean" } }), &[]),
        output: || object(json!({ "items": { "type": "array", "items": component("Project") } }), &["items"]),
    },
    Tool {
        name: "add_project",
        title: "Add a project",
        scope: Scope::ProjectsWrite,
        effect: Effect::Additive,
        description: "Create a project. Its name must be unique for the user, ignoring case. Returns the project; put tasks in it with `project_id` in `add_tasks` or with `move_tasks`.",
        input: || component("ProjectInput"),
        output: || component("Project"),
    },
    Tool {
        name: "agenda",
        title: "Agenda",
        scope: Scope::TasksRead,
        effect: Effect::Read,
        description: "What needs attention: open tasks that are overdue, due later today, and due in the 7 days after today, in the user's time zone, each soonest first. Each section holds at most 50 tasks and says how many there are in all; use `find_tasks` with `due_from`/`due_to` for the rest.",
        input: || object(json!({}), &[]),
        output: agenda_output,
    },
    Tool {
        name: "reminder_history",
        title: "Reminder history",
        scope: Scope::TasksRead,
        effect: Effect::Read,
        description: "What became of a task's email reminders, newest first: sent, failed (with the error), skipped (with why) or pending. At most 50 entries, with the total.",
        input: || object(json!({ "task_id": schema::uuid("The task's id.") }), &["task_id"]),
        output: || {
            object(
                json!({ "items": { "type": "array", "items": component("Delivery") }, "total": { "type": "integer" } }),
                &["items", "total"],
            )
        },
    },
];

fn find_input() -> Value {
    let task = component("Task");
    let priority = task["properties"]["priority"].clone();
    let instant = |what: &str| json!({ "type": "string", "format": "date-time", "description": what });
    object(
        json!({
            "q": { "type": "string", "maxLength": 500, "description": "Words to search for in titles and descriptions; `\"a phrase\"`, `or` and `-word` work as in a search engine. Results are ranked by relevance unless `sort` is given." },
            "completed": { "type": "boolean" },
            "priority": { "type": "array", "items": priority, "description": "Tasks of any of these priorities." },
            "tags": { "type": "array", "items": { "type": "string" }, "description": "Tasks with these tags (see `tag_mode`)." },
            "tag_mode": { "enum": ["any", "all"], "description": "Whether a task needs any (the default) or all of `tags`." },
            "due_from": instant("Due at or after this time (RFC 3339 with an offset)."),
            "due_to": instant("Due at or before this time (RFC 3339 with an offset)."),
            "overdue": { "type": "boolean", "description": "true: open tasks whose due time has passed." },
            "has_due": { "type": "boolean", "description": "Whether the task has a due time." },
            "project_id": { "type": "string", "description": "A project's id, or `inbox` for tasks in no project. Without it, tasks of archived projects are left out." },
            "sort": { "enum": ["created_at", "updated_at", "due_at", "priority", "title"] },
            "order": { "enum": ["asc", "desc"] },
            "limit": { "type": "integer", "minimum": 1, "maximum": 100, "default": PAGE },
            "cursor": { "type": "string", "description": "`next_cursor` from the previous call with the same other arguments." },
        }),
        &[],
    )
}

fn find_output() -> Value {
    object(
        json!({
            "items": { "type": "array", "items": component("Task") },
            "total": { "type": "integer", "description": "How many tasks match in all." },
            "limit": { "type": "integer" },
            "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page." },
        }),
        &["items", "total", "limit", "next_cursor"],
    )
}

fn id_item(extra: Value) -> Value {
    let mut properties = json!({ "id": schema::uuid("The task's id."), "etag": schema::etag() });
    let mut required = vec!["id"];
    if let (Value::Object(properties), Value::Object(extra)) = (&mut properties, extra) {
        for (name, property) in extra {
            properties.insert(name, property);
        }
        if properties.contains_key("project_id") {
            required.push("project_id");
        }
    }
    object(properties, &required)
}

fn batch_input(item: Value) -> Value {
    object(
        json!({ "tasks": { "type": "array", "items": item, "minItems": 1, "maxItems": MAX_BATCH } }),
        &["tasks"],
    )
}

fn batch_output() -> Value {
    let mut item = component("BatchItem");
    item["properties"]["etag"] = json!({ "type": "string" });
    item["required"].as_array_mut().into_iter().for_each(|required| required.push(json!("etag")));
    item["description"] = json!("One item's result: `index` is its place in `tasks`.");
    object(json!({ "results": { "type": "array", "items": item } }), &["results"])
}

fn agenda_output() -> Value {
    let section = || {
        object(
            json!({ "items": { "type": "array", "items": component("Task") }, "total": { "type": "integer" } }),
            &["items", "total"],
        )
    };
    object(
        json!({
            "timezone": { "type": "string" },
            "now": { "type": "string", "format": "date-time" },
            "overdue": section(),
            "today": section(),
            "next_7_days": section(),
        }),
        &["timezone", "now", "overdue", "today", "next_7_days"],
    )
}

/// Every tool's definition as `tools/list` gives it, with the scope that offers it.
static DEFINITIONS: LazyLock<Vec<(Scope, Value)>> = LazyLock::new(|| {
    TOOLS
        .iter()
        .map(|tool| {
            let read_only = tool.effect == Effect::Read;
            let definition = json!({
                "name": tool.name,
                "title": tool.title,
                "description": tool.description,
                "inputSchema": (tool.input)(),
                "outputSchema": (tool.output)(),
                "annotations": {
                    "title": tool.title,
                    "readOnlyHint": read_only,
                    "destructiveHint": tool.effect == Effect::Destructive,
                    "idempotentHint": read_only || tool.effect == Effect::Idempotent,
                    "openWorldHint": false,
                },
            });
            (tool.scope, definition)
        })
        .collect()
});

/// The tools a caller with `scopes` may call.
pub fn listed(scopes: &Scopes) -> Vec<Value> {
    DEFINITIONS.iter().filter(|(scope, _)| scopes.contains(*scope)).map(|(_, d)| d.clone()).collect()
}

/// Runs tool `name` for `user`; `None` when there is no such tool.
pub async fn call(
    state: &AppState,
    user: Uuid,
    scopes: &Scopes,
    name: &str,
    arguments: Value,
) -> Option<Value> {
    let tool = TOOLS.iter().find(|tool| tool.name == name)?;
    if !scopes.contains(tool.scope) {
        return Some(failure(name, &ApiError::InsufficientScope { needs: Some(tool.scope) }));
    }
    let outcome = match name {
        "find_tasks" => find_tasks(state, user, arguments).await,
        "get_task" => get_task(state, user, arguments).await,
        "add_tasks" => batch(state, user, "create", arguments).await,
        "update_tasks" => batch(state, user, "update", arguments).await,
        "complete_tasks" => batch(state, user, "complete", arguments).await,
        "reopen_tasks" => batch(state, user, "reopen", arguments).await,
        "move_tasks" => batch(state, user, "move", arguments).await,
        "delete_tasks" => batch(state, user, "delete", arguments).await,
        "list_projects" => list_projects(state, user, arguments).await,
        "add_project" => add_project(state, user, arguments).await,
        "agenda" => agenda(state, user, arguments).await,
        _ => reminder_history(state, user, arguments).await,
    };
    Some(match outcome {
        Ok(structured) => json!({
            "content": [{ "type": "text", "text": structured.to_string() }],
            "structuredContent": structured,
            "isError": false,
        }),
        Err(err) => failure(name, &err),
    })
}

/// The result of a call refused before the tool ran (a rate limit); `None` for no such tool.
pub fn refused(name: &str, err: &ApiError) -> Option<Value> {
    TOOLS.iter().any(|tool| tool.name == name).then(|| failure(name, err))
}

/// A tool error: the problem as text a model can act on, with fields named as the tool's
/// arguments name them (a batch's `operations[i]` is the tool's `tasks[i]`).
fn failure(tool: &str, err: &ApiError) -> Value {
    let summary = err.summary();
    let rename = |text: &str| {
        let text = text.replace("operations[", "tasks[").replace("].if_match", "].etag");
        let text = if tool == "add_tasks" { text.replace("].task.", "].") } else { text };
        if text == "operations" { "tasks".to_owned() } else { text }
    };
    let mut lines = vec![format!("{} ({}): {}", summary.code, summary.status, rename(&summary.detail))];
    for error in summary.errors.iter().flatten() {
        lines.push(format!("- {}: {}", rename(&error.field), error.message));
    }
    if let Some(index) = summary.operation {
        lines.push(format!("The failing item is tasks[{index}]. Nothing in this call was applied."));
    }
    if let Some(scope) = summary.required_scope {
        lines.push(format!("This tool needs an API token with the `{scope}` scope."));
    }
    if let Some(secs) = summary.retry_after_secs {
        lines.push(format!("Retry after {secs} seconds."));
    }
    json!({ "content": [{ "type": "text", "text": lines.join("\n") }], "isError": true })
}

/// A tool's arguments: an object naming only the arguments the tool takes.
fn arguments(tool: &str, value: Value, allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let map = match value {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        _ => return Err(ApiError::field("arguments", "must be an object")),
    };
    let unknown: Vec<FieldError> = map
        .keys()
        .filter(|key| !allowed.contains(&key.as_str()))
        .map(|key| {
            FieldError::new(
                key.clone(),
                format!("is not an argument of {tool}; it takes {}", allowed.join(", ")),
            )
        })
        .collect();
    if unknown.is_empty() { Ok(map) } else { Err(ApiError::Validation(unknown)) }
}

fn required_id(map: &Map<String, Value>, field: &str) -> Result<Uuid, ApiError> {
    match map.get(field) {
        Some(Value::String(raw)) => {
            raw.trim().parse().map_err(|_| ApiError::field(field, "must be a task id (a UUID)"))
        }
        _ => Err(ApiError::field(field, "is required: a task id (a UUID)")),
    }
}

const FIND_ARGS: &[&str] = &[
    "q",
    "completed",
    "priority",
    "tags",
    "tag_mode",
    "due_from",
    "due_to",
    "overdue",
    "has_due",
    "project_id",
    "sort",
    "order",
    "limit",
    "cursor",
];

/// The arguments as the query string `GET /tasks` parses, so every rule of the list holds here.
fn query_pairs(map: Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in map {
        let text = match (name.as_str(), value) {
            (_, Value::Null) => continue,
            ("priority" | "tags", Value::Array(items)) => {
                let texts: Option<Vec<String>> =
                    items.into_iter().map(|v| v.as_str().map(str::to_owned)).collect();
                match texts {
                    Some(texts) if texts.is_empty() => continue,
                    Some(texts) => texts.join(","),
                    None => {
                        errors.push(FieldError::new(name, "must be an array of strings"));
                        continue;
                    }
                }
            }
            (_, Value::String(text)) => text,
            (_, Value::Bool(flag)) => flag.to_string(),
            (_, Value::Number(number)) => number.to_string(),
            _ => {
                errors.push(FieldError::new(name, "must be a string, a number or a boolean"));
                continue;
            }
        };
        pairs.push((name, text));
    }
    if errors.is_empty() { Ok(pairs) } else { Err(ApiError::Validation(errors)) }
}

async fn find_tasks(state: &AppState, user: Uuid, arguments: Value) -> Result<Value, ApiError> {
    let pairs = query_pairs(self::arguments("find_tasks", arguments, FIND_ARGS)?)?;
    let page = list::page(state, user, Shelf::Live, &pairs).await?;
    Ok(
        json!({ "items": page.items, "total": page.total, "limit": page.limit, "next_cursor": page.next_cursor }),
    )
}

async fn get_task(state: &AppState, user: Uuid, arguments: Value) -> Result<Value, ApiError> {
    let id = required_id(&self::arguments("get_task", arguments, &["id"])?, "id")?;
    let task = tasks::find_live(&state.pool, user, id)
        .await
        .map_err(ApiError::from_db)?
        .ok_or(ApiError::NotFound)?;
    Ok(json!({ "etag": task.etag(), "task": task }))
}

/// The fields an item of each batch tool takes, besides `id` and `etag`.
fn item_fields(op: &str) -> &'static [&'static str] {
    match op {
        "update" => &["id", "etag", "changes"],
        "move" => &["id", "etag", "project_id"],
        _ => &["id", "etag"],
    }
}

/// One item of a batch tool as the bulk operation it is.
fn operation(op: &str, index: usize, item: Value) -> Result<Value, Vec<FieldError>> {
    if op == "create" {
        return Ok(json!({ "op": "create", "task": item }));
    }
    let Value::Object(mut map) = item else {
        return Err(vec![FieldError::new(format!("tasks[{index}]"), "must be an object")]);
    };
    let allowed = item_fields(op);
    let unknown: Vec<FieldError> = map
        .keys()
        .filter(|key| !allowed.contains(&key.as_str()))
        .map(|key| {
            FieldError::new(
                format!("tasks[{index}].{key}"),
                format!("is not a field here; an item takes {}", allowed.join(", ")),
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let mut operation = Map::new();
    operation.insert("op".into(), json!(op));
    match map.remove("etag") {
        None | Some(Value::Null) => {}
        Some(etag) => {
            operation.insert("if_match".into(), etag);
        }
    }
    for (key, value) in map {
        operation.insert(key, value);
    }
    Ok(Value::Object(operation))
}

/// A batch tool: its items become one bulk request, applied all or nothing by the actor.
async fn batch(state: &AppState, user: Uuid, op: &str, arguments: Value) -> Result<Value, ApiError> {
    let tool = match op {
        "create" => "add_tasks",
        "update" => "update_tasks",
        "complete" => "complete_tasks",
        "reopen" => "reopen_tasks",
        "move" => "move_tasks",
        _ => "delete_tasks",
    };
    let mut map = self::arguments(tool, arguments, &["tasks"])?;
    let Some(Value::Array(items)) = map.remove("tasks") else {
        return Err(ApiError::field("tasks", format!("is required: an array of 1–{MAX_BATCH} items")));
    };
    let mut operations = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match operation(op, index, item) {
            Ok(operation) => operations.push(operation),
            Err(found) => errors.extend(found),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let operations = bulk::parse(json!({ "operations": operations }))?;
    // Every item is a write, as every operation of a bulk request is.
    state.rate_limits.charge_user_writes(user, operations.len())?;
    match state.actors.execute(user, Command::Bulk { operations, idempotency: None }).await? {
        Outcome::Batch(items) => {
            let results: Vec<Value> = items
                .into_iter()
                .map(|item| {
                    let etag = item.task.etag();
                    let mut value = serde_json::to_value(&item).unwrap_or(Value::Null);
                    value["etag"] = json!(etag);
                    value
                })
                .collect();
            Ok(json!({ "results": results }))
        }
        other => Err(ApiError::internal(anyhow::anyhow!("a batch answered {other:?}"))),
    }
}

async fn list_projects(state: &AppState, user: Uuid, arguments: Value) -> Result<Value, ApiError> {
    let map = self::arguments("list_projects", arguments, &["archived"])?;
    let archived = match map.get("archived") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(flag)) => Some(*flag),
        Some(_) => return Err(ApiError::field("archived", "must be true or false")),
    };
    let items = projects::list(&state.pool, user, archived).await.map_err(ApiError::from_db)?;
    Ok(json!({ "items": items }))
}

async fn add_project(state: &AppState, user: Uuid, arguments: Value) -> Result<Value, ApiError> {
    let body = match arguments {
        Value::Null => json!({}),
        other => other,
    };
    let project = project_routes::parse_input(body)?;
    state.rate_limits.charge_user_writes(user, 1)?;
    match state.actors.execute(user, Command::CreateProject { project, idempotency: None }).await? {
        Outcome::ProjectCreated(project) => Ok(serde_json::to_value(project).map_err(ApiError::internal)?),
        other => Err(ApiError::internal(anyhow::anyhow!("a project creation answered {other:?}"))),
    }
}

async fn agenda(state: &AppState, user: Uuid, arguments: Value) -> Result<Value, ApiError> {
    self::arguments("agenda", arguments, &[])?;
    let account =
        users::find(&state.pool, user).await.map_err(ApiError::from_db)?.ok_or(ApiError::NotFound)?;
    let zone = TimeZone::parse("timezone", &account.timezone).map_err(|e| ApiError::invalid(vec![e]))?;
    let now = Utc::now();
    let tomorrow = start_of_next_day(now, zone);
    let week_end = tomorrow + Duration::days(7);
    let text = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let before = |at: DateTime<Utc>| text(at - Duration::microseconds(1));
    let section = |filters: Vec<(&str, String)>| {
        let mut pairs: Vec<(String, String)> = filters.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        pairs.extend([("sort".to_owned(), "due_at".to_owned()), ("limit".to_owned(), PAGE.to_string())]);
        pairs
    };
    let mut sections = Vec::new();
    for pairs in [
        section(vec![("overdue", "true".into())]),
        section(vec![("completed", "false".into()), ("due_from", text(now)), ("due_to", before(tomorrow))]),
        section(vec![
            ("completed", "false".into()),
            ("due_from", text(tomorrow)),
            ("due_to", before(week_end)),
        ]),
    ] {
        let page = list::page(state, user, Shelf::Live, &pairs).await?;
        sections.push(json!({ "items": page.items, "total": page.total }));
    }
    let [overdue, today, next] = <[Value; 3]>::try_from(sections).unwrap_or_default();
    Ok(json!({
        "timezone": zone.name(),
        "now": text(now),
        "overdue": overdue,
        "today": today,
        "next_7_days": next,
    }))
}

/// Midnight at the start of the day after `now`'s, in `zone` (the first instant of that day
/// where a DST gap swallows midnight).
fn start_of_next_day(now: DateTime<Utc>, zone: TimeZone) -> DateTime<Utc> {
    let tz = zone.tz();
    let date = now.with_timezone(&tz).date_naive() + Duration::days(1);
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..4)
        .find_map(|hour| tz.from_local_datetime(&(midnight + Duration::hours(hour))).earliest())
        .map_or(now + Duration::days(1), |at| at.with_timezone(&Utc))
}

async fn reminder_history(state: &AppState, user: Uuid, arguments: Value) -> Result<Value, ApiError> {
    let id = required_id(&self::arguments("reminder_history", arguments, &["task_id"])?, "task_id")?;
    // The task must be the caller's and live, as on `GET /tasks/{id}/reminders`.
    tasks::find_live(&state.pool, user, id).await.map_err(ApiError::from_db)?.ok_or(ApiError::NotFound)?;
    let mut items = reminders::history(&state.pool, user, id).await.map_err(ApiError::from_db)?;
    let total = items.len();
    items.truncate(PAGE as usize);
    Ok(json!({ "items": items, "total": total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_day_starts_at_local_midnight() {
        let zone = TimeZone::parse("timezone", "Europe/Berlin").unwrap();
        let now = Utc.with_ymd_and_hms(2030, 3, 4, 22, 30, 0).unwrap(); // 23:30 in Berlin
        assert_eq!(start_of_next_day(now, zone), Utc.with_ymd_and_hms(2030, 3, 4, 23, 0, 0).unwrap());
    }

    #[test]
    fn a_batch_item_becomes_its_bulk_operation_and_strangers_are_named() {
        let op = operation("move", 0, json!({"id": "x", "etag": "\"a-1\"", "project_id": null})).unwrap();
        assert_eq!(op, json!({"op": "move", "id": "x", "if_match": "\"a-1\"", "project_id": null}));
        let errors = operation("complete", 3, json!({"id": "x", "op": "delete"})).unwrap_err();
        assert_eq!(errors[0].field, "tasks[3].op");
    }

    #[test]
    fn tool_errors_name_the_tool_s_own_fields() {
        let err =
            ApiError::Validation(vec![FieldError::new("operations[2].task.title", "must not be empty")]);
        let text = failure("add_tasks", &err)["content"][0]["text"].as_str().unwrap().to_owned();
        assert!(text.contains("tasks[2].title: must not be empty"), "{text}");
        assert_eq!(failure("add_tasks", &err)["isError"], true);
    }
}
