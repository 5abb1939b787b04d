//! The tools. Each one only translates: its arguments become what the REST route would have
//! parsed (query pairs for the list, a bulk body for the batches, a project body), parsed by the
//! REST layer's own functions into the same domain values and commands, and sent through the
//! caller's actor. A problem becomes a tool error (`isError: true`) whose text names the field
//! and the rule, never a protocol error.

use chrono::{DateTime, Duration, SecondsFormat, TimeZone as _, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::catalog::TOOLS;
use crate::commands::{Command, Outcome};
use crate::db::task_list::{After, Key, Shelf};
use crate::db::{projects, reminders, tasks, users};
use crate::domain::{Scopes, TimeZone};
use crate::web::problem::{ApiError, FieldError};
use crate::web::routes::projects as project_routes;
use crate::web::routes::tasks::cursor::{CursorError, Cursors};
use crate::web::routes::tasks::{bulk, list};
use crate::web::state::AppState;

/// Tasks a list tool returns per call unless asked for fewer; `find_tasks` pages on with `cursor`.
pub const PAGE: i64 = 50;
/// The most a list tool returns per call when asked for more.
pub const MAX_PAGE: i64 = 100;
/// Items one batch tool call may carry, as a bulk request may.
pub const MAX_BATCH: usize = 100;

/// Runs tool `name` for `user`; `None` when there is no such tool.
#[tracing::instrument(skip(state, scopes, arguments))]
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
    "parent_id",
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
    let page = list::page(state, &state.pool, user, Shelf::Live, &pairs).await?;
    Ok(
        json!({ "items": page.items, "total": page.total, "total_is_exact": page.total_is_exact, "limit": page.limit, "next_cursor": page.next_cursor }),
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
    match state.actors.execute(user, Command::CreateProject { id: None, project, idempotency: None }).await? {
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
        let page = list::page(state, &state.pool, user, Shelf::Live, &pairs).await?;
        sections
            .push(json!({ "items": page.items, "total": page.total, "total_is_exact": page.total_is_exact }));
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
    let map = self::arguments("reminder_history", arguments, &["task_id", "limit", "cursor"])?;
    let id = required_id(&map, "task_id")?;
    let limit = match map.get("limit") {
        None | Some(Value::Null) => PAGE,
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| (1..=MAX_PAGE).contains(&n)) => {
            n.as_i64().unwrap_or(PAGE)
        }
        Some(_) => return Err(ApiError::field("limit", format!("must be an integer from 1 to {MAX_PAGE}"))),
    };
    // The list's sealed cursors, bound to this user's task, so one cannot be forged or carried
    // over to another task's history.
    let cursors = Cursors::new(&state.settings.auth.jwt_secret);
    let fingerprint = Cursors::fingerprint(&format!("reminder_history|{user}|{id}"));
    let before = match map.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(cursor)) => match cursors.open(&fingerprint, cursor) {
            Ok(After { key: Key::Time(at), .. }) => Some(at),
            Ok(_) => return Err(ApiError::field("cursor", CursorError::OtherQuery.to_string())),
            Err(err) => return Err(ApiError::field("cursor", err.to_string())),
        },
        Some(_) => {
            return Err(ApiError::field("cursor", "must be a string: `next_cursor` of the previous call"));
        }
    };
    // The task must be the caller's and live, as on `GET /tasks/{id}/reminders`.
    tasks::find_live(&state.pool, user, id).await.map_err(ApiError::from_db)?.ok_or(ApiError::NotFound)?;
    let mut conn = state.pool.acquire().await.map_err(ApiError::from_db)?;
    let (items, more, total) =
        reminders::history_page(&mut conn, user, id, before, limit).await.map_err(ApiError::from_db)?;
    let next_cursor = match items.last() {
        Some(last) if more => {
            Some(cursors.seal(&fingerprint, &After { key: Key::Time(last.reminder_at), id }))
        }
        _ => None,
    };
    Ok(json!({ "items": items, "total": total, "limit": limit, "next_cursor": next_cursor }))
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
