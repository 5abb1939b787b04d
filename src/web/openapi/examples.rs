//! One example per request and success body, by schema, so each operation shows what goes in and
//! what comes out. The contract tests validate every example against its schema.

use serde_json::{Value, json};

const TASK_ID: &str = "0193a5f2-7c1e-7d3a-9f4b-2c8e1a6b5d40";
const PROJECT_ID: &str = "0193a5f1-0b2a-7c44-8e19-5f3d2a7c9e01";
const USER_ID: &str = "0193a5e8-41d0-7b6f-a2c3-9d8e7f6a5b4c";

/// Sets `example` on every request body and 2xx body that has none, from its schema.
pub(super) fn attach(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            if let Some(content) = operation.get_mut("requestBody").and_then(|b| b.get_mut("content")) {
                attach_to(content);
            }
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (_, response) in responses.iter_mut().filter(|(status, _)| status.starts_with('2')) {
                if let Some(content) = response.get_mut("content") {
                    attach_to(content);
                }
            }
        }
    }
}

fn attach_to(content: &mut Value) {
    let Some(media) = content.as_object_mut() else { return };
    for (media_type, body) in media.iter_mut() {
        if body.get("example").is_some() {
            continue;
        }
        let schema = body["schema"]["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/"));
        let example = match (media_type.as_str(), schema) {
            (_, Some(name)) => of_schema(name),
            ("text/plain", None) => Some(json!(
                "# TYPE http_requests_total counter\nhttp_requests_total{method=\"GET\",route=\"/api/v1/tasks\",status=\"200\"} 42\n"
            )),
            ("text/event-stream", None) => Some(json!(format!(
                ": connected\n\nid: 8\nevent: task.upserted\ndata: {}\n\nid: 9\nevent: task.deleted\ndata: {{\"id\":\"{TASK_ID}\"}}\n\n",
                task()
            ))),
            _ => None,
        };
        if let Some(example) = example {
            body["example"] = example;
        }
    }
}

/// An example of the named schema, when it has one.
pub(super) fn of_schema(name: &str) -> Option<Value> {
    Some(match name {
        "Task" => task(),
        "TaskInput" => json!({
            "title": "Renew passport",
            "description": "Photos first",
            "priority": "high",
            "tags": ["admin", "travel"],
            "due_at": "2027-01-15T17:00:00+01:00",
            "reminder_at": "2027-01-15T09:00:00+01:00",
            "project_id": PROJECT_ID,
        }),
        "TaskPatch" => json!({"priority": "medium", "due_at": null, "tags": ["admin"]}),
        "SubtaskList" => json!({"items": [subtask()]}),
        "CompleteRequest" => json!({"completed": true}),
        "TaskPage" => json!({
            "items": [task()],
            "total": 1,
            "total_is_exact": true,
            "limit": 50,
            "offset": 0,
            "next_cursor": null,
        }),
        // The second create names the first by its `ref`: a parent and its subtask in one batch.
        "BulkRequest" => json!({"operations": [
            {"op": "create", "ref": "trip", "task": {"title": "Trip", "tags": ["travel"]}},
            {"op": "create", "task": {"title": "Book hotel", "parent_id": "$trip"}},
            {"op": "update", "id": TASK_ID, "changes": {"parent_id": "$trip"}},
            {"op": "complete", "id": TASK_ID, "if_match": format!("\"{}-3\"", TASK_ID.replace('-', ""))},
            {"op": "move", "id": TASK_ID, "project_id": null},
        ]}),
        "BulkResponse" => json!({"results": [
            {"index": 0, "op": "create", "status": 201, "task": task()},
        ]}),
        "DeliveryHistory" => json!({"items": [{
            "reminder_at": "2027-01-15T08:00:00Z",
            "status": "sent",
            "attempts": 1,
            "last_error": null,
            "skip_reason": null,
            "created_at": "2027-01-10T12:00:00Z",
            "updated_at": "2027-01-15T08:00:02Z",
            "sent_at": "2027-01-15T08:00:02Z",
        }]}),
        "Project" => project(),
        "ProjectInput" => json!({"name": "Travel", "color": "#3366ff"}),
        "ProjectPatch" => json!({"archived": true}),
        "ProjectList" => json!({"items": [project()]}),
        "RegisterRequest" => json!({
            "email": "ann@example.com",
            "password": "correct horse battery staple",
            "name": "Ann",
            "timezone": "Europe/Paris",
        }),
        "LoginRequest" => json!({"email": "ann@example.com", "password": "correct horse battery staple"}),
        "TokenResponse" => json!({
            "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMTkzIn0.c2lnbmF0dXJl",
            "token_type": "bearer",
            "expires_in": 3600,
            "user": user(),
        }),
        "UserView" => user(),
        "ProfileUpdate" => {
            json!({"timezone": "America/New_York", "email": "ann@example.org", "agenda_time": "07:30"})
        }
        "Export" => json!({
            "exported_at": "2027-01-20T10:00:00Z",
            "user": user(),
            "projects": [project()],
            "tasks": [task()],
        }),
        "ChangesPage" => json!({
            "changes": [
                {"change": 8, "type": "upsert", "id": TASK_ID, "task": task()},
                {"change": 9, "type": "delete", "id": "0193a5f3-1111-7222-8333-944455556666"},
            ],
            "next_since": 9,
            "has_more": false,
        }),
        "EventTicket" => json!({"ticket": "Yk3Jq2mW9xR4tZ8vN1pL6sD0", "expires_at": "2027-01-20T10:01:00Z"}),
        "Status" => json!({"status": "ok"}),
        "PasswordChange" => {
            json!({"current_password": "correct horse battery staple", "new_password": "battery staple horse correct"})
        }
        "TokenRequest" => {
            json!({"name": "backup script", "scopes": ["tasks:read", "projects:read"], "expires_at": "2027-06-30T00:00:00Z"})
        }
        "CreatedToken" => {
            let mut created = api_token();
            created["token"] = json!("todo_pat_jxJgKEMEb8E9gXQzd7AVJ_JzblDsUUtz6JzpDXYwSEY");
            created["last_used_at"] = Value::Null;
            created
        }
        "TokenList" => json!({"items": [api_token()]}),
        "WebhookInput" => json!({
            "url": "https://hooks.example.com/todo",
            "events": ["task.created", "task.completed"],
            "description": "Sync to the team board",
        }),
        "WebhookPatch" => json!({"enabled": true}),
        "WebhookEndpoint" => webhook(),
        "WebhookList" => json!({"items": [webhook()]}),
        "WebhookWithSecret" => {
            let mut endpoint = webhook();
            endpoint["secret"] = json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
            endpoint
        }
        "WebhookDelivery" => delivery(),
        "WebhookDeliveryPage" => json!({"items": [delivery()], "limit": 50, "next_cursor": "41"}),
        "WebhookEvent" => {
            let mut data = task();
            data["completed"] = json!(true);
            data["completed_at"] = json!("2027-01-15T16:02:11.204518Z");
            data["version"] = json!(2);
            data["change_seq"] = json!(42);
            json!({"type": "task.completed", "timestamp": "2027-01-15T16:02:11.204518Z", "data": data})
        }
        "FeedRequest" => json!({"name": "Work tasks", "project_id": PROJECT_ID}),
        "CreatedFeed" => {
            let mut created = calendar_feed();
            created["url"] = json!(
                "https://todo.example.com/calendar/todo_cal_Qm9vc3RlZCBieSB0aGUgY2FsZW5kYXIgZmVlZCBleGF.ics"
            );
            created
        }
        "FeedList" => json!({"items": [calendar_feed()]}),
        _ => return None,
    })
}

fn calendar_feed() -> Value {
    json!({
        "id": "0193a5f4-5e6f-7b21-c3d4-8e9f0a1b2c3d",
        "name": "Work tasks",
        "project_id": PROJECT_ID,
        "hint": "todo_cal_…leGF",
        "created_at": "2026-12-07T09:00:00Z",
    })
}

fn api_token() -> Value {
    json!({
        "id": "0193a5f3-2d4e-7a10-b5c6-7d8e9f0a1b2c",
        "name": "backup script",
        "scopes": ["projects:read", "tasks:read"],
        "hint": "todo_pat_…wSEY",
        "created_at": "2027-01-20T10:00:00Z",
        "expires_at": "2027-06-30T00:00:00Z",
        "last_used_at": "2027-01-21T07:30:00Z",
    })
}

fn task() -> Value {
    json!({
        "id": TASK_ID,
        "title": "Renew passport",
        "description": "Photos first",
        "completed": false,
        "completed_at": null,
        "priority": "high",
        "tags": ["admin", "travel"],
        "due_at": "2027-01-15T16:00:00Z",
        "reminder_at": "2027-01-15T08:00:00Z",
        "timezone": "Europe/Paris",
        "recurrence_rule": null,
        "recurrence_anchor": "due",
        "is_recurring": false,
        "next_occurrence_at": null,
        "series_id": null,
        "series_paused": null,
        "project_id": PROJECT_ID,
        "parent_id": null,
        "position": 0,
        "subtask_count": 2,
        "completed_subtask_count": 1,
        "created_at": "2027-01-10T12:00:00Z",
        "updated_at": "2027-01-10T12:00:00Z",
        "deleted_at": null,
        "version": 1,
    })
}

fn subtask() -> Value {
    let mut subtask = task();
    subtask["id"] = json!("0193a5f3-1d2e-7a4b-8c5d-6e7f8a9b0c1d");
    subtask["title"] = json!("Book photo booth");
    subtask["parent_id"] = json!(TASK_ID);
    subtask["subtask_count"] = json!(0);
    subtask["completed_subtask_count"] = json!(0);
    subtask
}

fn project() -> Value {
    json!({
        "id": PROJECT_ID,
        "name": "Travel",
        "color": "#3366ff",
        "position": 0,
        "archived": false,
        "open_tasks": 1,
        "total_tasks": 1,
        "created_at": "2027-01-10T11:00:00Z",
        "updated_at": "2027-01-10T11:00:00Z",
        "version": 1,
    })
}

fn webhook() -> Value {
    json!({
        "id": "0193a5f3-1d2e-7f40-8a6b-3c9d0e1f2a3b",
        "url": "https://hooks.example.com/todo",
        "description": "Sync to the team board",
        "events": ["task.created", "task.completed"],
        "enabled": true,
        "disabled_reason": null,
        "previous_secret_expires_at": null,
        "created_at": "2027-01-10T11:00:00Z",
        "updated_at": "2027-01-10T11:00:00Z",
    })
}

fn delivery() -> Value {
    json!({
        "id": "0193a5f4-aa01-4c2d-9e3f-5a6b7c8d9e0f",
        "webhook_id": "msg_0193a5f4aa014c2d9e3f5a6b7c8d9e0f",
        "event_type": "task.completed",
        "status": "succeeded",
        "attempts": 2,
        "status_code": 200,
        "duration_ms": 84,
        "response_body": "ok",
        "error": null,
        "next_attempt_at": null,
        "last_attempt_at": "2027-01-15T16:02:16Z",
        "created_at": "2027-01-15T16:02:11Z",
    })
}

fn user() -> Value {
    json!({
        "id": USER_ID,
        "email": "ann@example.com",
        "name": "Ann",
        "timezone": "Europe/Paris",
        "email_reminders": true,
        "email_verified": true,
        "pending_email": null,
        "agenda_time": "07:30",
        "created_at": "2027-01-01T09:00:00Z",
    })
}
