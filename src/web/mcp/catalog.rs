//! What the tools are, as `tools/list` describes them: a name, the scope that offers it, a
//! description written for a model (what it does, what it returns, when to use it rather than
//! another; never user data), and input and output schemas built from the OpenAPI components.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::schema::{self, component, object};
use super::tools::{MAX_BATCH, MAX_PAGE, PAGE};
use crate::domain::{Scope, Scopes};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    Read,
    /// Changes data, but repeating the same call changes nothing more.
    Idempotent,
    Additive,
    Destructive,
}

pub(super) struct Tool {
    pub(super) name: &'static str,
    title: &'static str,
    pub(super) scope: Scope,
    effect: Effect,
    description: &'static str,
    input: fn() -> Value,
    output: fn() -> Value,
}

pub(super) const TOOLS: &[Tool] = &[
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
        description: "Create 1–100 tasks in one all-or-nothing step. Each item takes the task's fields: only `title` is required; times are RFC 3339 with an offset; `timezone` defaults to the user's. If any item is invalid, nothing is created and the error names the item (`tasks[i].field`). Returns each created task with its etag. Use this for new tasks, also a single one; to change tasks that exist use `update_tasks`, and for a new project `add_project`.",
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
        description: "Mark 1–100 tasks done in one all-or-nothing step. Completing an occurrence of a recurring task creates its next occurrence. Completing a task that is already done changes nothing. Returns each task as it now is. Use this rather than `update_tasks` to mark tasks done, and rather than `delete_tasks` when the work was finished.",
        input: || batch_input(id_item(json!({}))),
        output: batch_output,
    },
    Tool {
        name: "reopen_tasks",
        title: "Reopen tasks",
        scope: Scope::TasksWrite,
        effect: Effect::Idempotent,
        description: "Mark 1–100 completed tasks as not done, in one all-or-nothing step. Returns each task as it now is. Use this rather than `update_tasks` to undo a completion; a task in the trash cannot be reopened.",
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
        description: "Move 1–100 tasks to the trash in one all-or-nothing step; the user can restore them from the trash until it is emptied. Pending reminders of these tasks are cancelled. Returns each task as it is in the trash. Use this only when the user wants tasks gone; use `complete_tasks` for work that was done.",
        input: || batch_input(id_item(json!({}))),
        output: batch_output,
    },
    Tool {
        name: "list_projects",
        title: "List projects",
        scope: Scope::ProjectsRead,
        effect: Effect::Read,
        description: "The user's projects, lowest position first, with counts of open and live tasks. `archived: true` lists only archived ones, `false` only active ones; without it, all. Use this to find a project's id for `find_tasks`, `add_tasks` or `move_tasks`; use `find_tasks` with `project_id` for a project's tasks.",
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
        description: "What became of a task's email reminders, newest first: sent, failed (with the error), skipped (with why) or pending. Returns up to `limit` entries (50 by default, at most 100), the exact `total`, and `next_cursor`: pass it back as `cursor`, with the same `task_id`, for the next page. Use this to tell whether a reminder went out; use `get_task` for the reminder time that is set now.",
        input: || {
            object(
                json!({
                    "task_id": schema::uuid("The task's id."),
                    "limit": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": PAGE },
                    "cursor": { "type": "string", "description": "`next_cursor` from the previous call for the same task." },
                }),
                &["task_id"],
            )
        },
        output: || {
            object(
                json!({
                    "items": { "type": "array", "items": component("Delivery") },
                    "total": { "type": "integer", "description": "How many entries the task has in all, counted exactly." },
                    "limit": { "type": "integer" },
                    "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page." },
                }),
                &["items", "total", "limit", "next_cursor"],
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
            "parent_id": { "type": "string", "description": "A task's id for its direct subtasks, or `none` for top-level tasks only." },
            "sort": { "enum": ["created_at", "updated_at", "due_at", "priority", "title"] },
            "order": { "enum": ["asc", "desc"] },
            "limit": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": PAGE },
            "cursor": { "type": "string", "description": "`next_cursor` from the previous call with the same other arguments." },
        }),
        &[],
    )
}

fn find_output() -> Value {
    object(
        json!({
            "items": { "type": "array", "items": component("Task") },
            "total": { "type": "integer", "description": "How many tasks match in all; an estimate when `total_is_exact` is false." },
            "total_is_exact": { "type": "boolean", "description": "False when more tasks match than are counted exactly (1,000 by default)." },
            "limit": { "type": "integer" },
            "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page." },
        }),
        &["items", "total", "total_is_exact", "limit", "next_cursor"],
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
            json!({
                "items": { "type": "array", "items": component("Task") },
                "total": { "type": "integer" },
                "total_is_exact": { "type": "boolean" },
            }),
            &["items", "total", "total_is_exact"],
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
