use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};
use crate::sse::EventStream;

#[tokio::test]
async fn creating_a_task_answers_201_with_location_etag_and_defaults() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let response =
        app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&json!({"title": "  Buy milk "}))).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let task: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()));
    assert_eq!(etag, format!("\"{}-1\"", task["id"].as_str().unwrap().replace('-', "")));
    assert_eq!(task["title"], "Buy milk");
    assert_eq!(task["priority"], "medium");
    assert_eq!(task["tags"], json!([]));
    assert_eq!(task["completed"], false);
    assert!(task["completed_at"].is_null() && task["due_at"].is_null() && task["series_id"].is_null());
    assert_eq!(task["timezone"], "UTC", "defaults to the user's time zone");
    assert_eq!(task["recurrence_anchor"], "due");
    assert_eq!(task["is_recurring"], false);
    assert_eq!(task["version"], 1);
    assert_eq!(task.get("deleted_at"), Some(&Value::Null), "sent as null, as every unset field is");
    assert!(task.get("user_id").is_none());

    let fetched: Value = app.get_as(&user.token, &location).await.json().await.unwrap();
    assert_eq!(fetched, task);
}

#[tokio::test]
async fn a_full_task_is_normalised_on_the_way_in() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    app.send_as(&user.token, Method::PATCH, "/api/v1/users/me", Some(&json!({"timezone": "Europe/Paris"})))
        .await;
    let task = app
        .create_task(
            &user,
            json!({
                "title": "Standup", "description": "Daily sync", "priority": "HIGH",
                "tags": ["Work", "work", " Meetings "], "due_at": "2030-03-04T09:00:00+01:00",
                "reminder_at": "2030-03-04T08:45:00+01:00", "recurrence_rule": "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
                "recurrence_anchor": "Completion"
            }),
        )
        .await;
    assert_eq!(task["priority"], "high");
    assert_eq!(task["tags"], json!(["work", "meetings"]));
    assert_eq!(task["due_at"], "2030-03-04T08:00:00Z");
    assert_eq!(task["reminder_at"], "2030-03-04T07:45:00Z");
    assert_eq!(task["timezone"], "Europe/Paris", "the user's zone is the default");
    assert_eq!(task["recurrence_rule"], "FREQ=WEEKLY;BYDAY=MO,WE,FR");
    assert_eq!(task["recurrence_anchor"], "completion");
    assert_eq!(task["is_recurring"], true);
    assert_eq!(task["series_id"], task["id"], "the first occurrence starts the series");
}

#[tokio::test]
async fn patch_changes_only_what_is_sent_and_null_clears() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(&user, json!({"title": "Write report", "description": "Q3", "due_at": "2030-01-01T10:00:00Z", "tags": ["a"]}))
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());

    let patched: Value = app
        .send_as(&user.token, Method::PATCH, &path, Some(&json!({"priority": "low", "description": null})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["priority"], "low");
    assert!(patched["description"].is_null());
    assert_eq!(patched["title"], "Write report");
    assert_eq!(patched["due_at"], "2030-01-01T10:00:00Z");
    assert_eq!(patched["tags"], json!(["a"]));
    assert_eq!(patched["version"], 2);

    let cleared: Value = app
        .send_as(&user.token, Method::PATCH, &path, Some(&json!({"tags": null, "due_at": null})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["tags"], json!([]));
    assert!(cleared["due_at"].is_null());
    assert_eq!(cleared["version"], 3);
}

#[tokio::test]
async fn put_replaces_the_whole_task() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(&user, json!({"title": "Old", "description": "d", "priority": "high", "tags": ["x"], "due_at": "2030-01-01T10:00:00Z"}))
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let response = app.send_as(&user.token, Method::PUT, &path, Some(&json!({"title": "New"}))).await;
    assert_eq!(response.status(), 200);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["title"], "New");
    assert_eq!(replaced["priority"], "medium", "left-out fields take their defaults");
    assert!(replaced["description"].is_null() && replaced["due_at"].is_null());
    assert_eq!(replaced["tags"], json!([]));
    assert_eq!(replaced["id"], task["id"]);
    assert_eq!(replaced["created_at"], task["created_at"]);
    assert_eq!(replaced["version"], 2);
    let missing_title = app.send_as(&user.token, Method::PUT, &path, Some(&json!({"priority": "low"}))).await;
    let problem = assert_problem(missing_title, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "title");
}

#[tokio::test]
async fn deleting_moves_to_the_trash_and_restore_brings_it_back() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Temp"})).await;
    let id = task["id"].as_str().unwrap();
    let path = format!("/api/v1/tasks/{id}");

    assert_eq!(app.send_as(&user.token, Method::DELETE, &path, None).await.status(), 204);
    assert_problem(app.get_as(&user.token, &path).await, 404, "not_found").await;
    assert_problem(app.send_as(&user.token, Method::DELETE, &path, None).await, 404, "not_found").await;
    let list: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(list["total"], 0);
    let trash: Value = app.get_as(&user.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    assert_eq!(trash["total"], 1);
    assert_eq!(trash["items"][0]["id"], id);
    assert!(trash["items"][0]["deleted_at"].as_str().unwrap().ends_with('Z'));

    let restored = app.send_as(&user.token, Method::POST, &format!("{path}/restore"), None).await;
    assert_eq!(restored.status(), 200);
    let restored: Value = restored.json().await.unwrap();
    assert_eq!(restored.get("deleted_at"), Some(&Value::Null));
    assert_eq!(restored["version"], 3, "delete and restore are each one change");
    assert_eq!(app.get_as(&user.token, &path).await.status(), 200);
    let again = app.send_as(&user.token, Method::POST, &format!("{path}/restore"), None).await;
    assert_problem(again, 404, "not_found").await;
}

#[tokio::test]
async fn toggle_flips_and_complete_sets_completion() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Flip"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());

    let on: Value =
        app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await.json().await.unwrap();
    assert_eq!(on["completed"], true);
    assert!(on["completed_at"].as_str().unwrap().ends_with('Z'));
    let off: Value =
        app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await.json().await.unwrap();
    assert_eq!(off["completed"], false);
    assert!(off["completed_at"].is_null());

    let complete = |completed: bool| {
        let (app, token, path) = (&app, &user.token, format!("{path}/complete"));
        async move {
            app.send_as(token, Method::PATCH, &path, Some(&json!({"completed": completed})))
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let first = complete(true).await;
    let second = complete(true).await;
    assert_eq!(first["completed"], true);
    assert_eq!(first["completed_at"], second["completed_at"], "completing twice keeps the first time");
    assert_eq!(complete(false).await["completed"], false);

    let bad = app
        .send_as(&user.token, Method::PATCH, &format!("{path}/complete"), Some(&json!({"completed": "yes"})))
        .await;
    assert_problem(bad, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_malformed_task_id_is_simply_not_found() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    assert_problem(app.get_as(&user.token, "/api/v1/tasks/not-a-uuid").await, 404, "not_found").await;
}

#[tokio::test]
async fn the_export_includes_every_task_and_deleting_the_account_removes_them() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let kept = app
        .create_task(
            &user,
            json!({"title": "Kept", "due_at": "2099-01-01T10:00:00Z", "reminder_at": "2099-01-01T09:00:00Z"}),
        )
        .await;
    let trashed = app.create_task(&user, json!({"title": "Trashed"})).await;
    app.send_as(
        &user.token,
        Method::DELETE,
        &format!("/api/v1/tasks/{}", trashed["id"].as_str().unwrap()),
        None,
    )
    .await;
    app.create_task(&other, json!({"title": "Someone else's"})).await;

    let export: Value = app.get_as(&user.token, "/api/v1/users/me/export").await.json().await.unwrap();
    let ids: Vec<&Value> = export["tasks"].as_array().unwrap().iter().map(|t| &t["id"]).collect();
    assert_eq!(ids, [&kept["id"], &trashed["id"]]);

    assert_eq!(app.jobs("todo.reminder").await.len(), 1);
    assert_eq!(app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None).await.status(), 204);
    let owners: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT user_id FROM tasks").fetch_all(&app.pool).await.unwrap();
    assert_eq!(owners, vec![other.id], "the account's tasks, trashed ones included, are gone");
    assert!(app.jobs("todo.reminder").await.is_empty(), "its queued reminder is gone too");
}

#[tokio::test]
async fn every_write_answer_carries_the_new_etag() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Tagged"})).await;
    let id = task["id"].as_str().unwrap();
    let path = format!("/api/v1/tasks/{id}");
    let writes = [
        (Method::PATCH, path.clone(), Some(json!({"title": "a"}))),
        (Method::PUT, path.clone(), Some(json!({"title": "b"}))),
        (Method::POST, format!("{path}/toggle"), None),
        (Method::PATCH, format!("{path}/complete"), Some(json!({"completed": false}))),
    ];
    for (method, url, body) in writes {
        let response = app.send_as(&user.token, method, &url, body.as_ref()).await;
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(etag, format!("\"{}-{}\"", id.replace('-', ""), body["version"]));
    }
    app.send_as(&user.token, Method::DELETE, &path, None).await;
    let restored = app.send_as(&user.token, Method::POST, &format!("{path}/restore"), None).await;
    assert_eq!(restored.headers()["etag"].to_str().unwrap(), format!("\"{}-7\"", id.replace('-', "")));
}

#[tokio::test]
async fn every_create_path_stores_every_field_it_is_given() {
    // The one-statement create once listed its own columns and dropped `recurrence_anchor`.
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let body =
        json!({"title": "plain", "recurrence_anchor": "completion", "priority": "high", "tags": ["a"]});
    let created: Value =
        app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body)).await.json().await.unwrap();
    let path = format!("/api/v1/tasks/{}", created["id"].as_str().unwrap());
    let stored: Value = app.get_as(&user.token, &path).await.json().await.unwrap();
    assert_eq!(stored["recurrence_anchor"], "completion");
    let bulk = json!({"operations": [{"op": "create", "task": body}]});
    let batch: Value =
        app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&bulk)).await.json().await.unwrap();
    let from_batch = &batch["results"][0]["task"];
    for field in ["recurrence_anchor", "priority", "tags", "timezone", "title"] {
        assert_eq!(from_batch[field], stored[field], "{field}");
    }
}

#[tokio::test]
async fn a_live_task_sends_deleted_at_as_null_wherever_it_is_shown() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let mut events = EventStream::bearer(&app.address, &user.token).await;
    let created = app.create_task(&user, json!({"title": "Shown everywhere"})).await;
    let id = created["id"].as_str().unwrap();
    let (app, user) = (&app, &user);
    let read = |path: String| async move {
        let response = app.get_as(&user.token, &path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json::<Value>().await.unwrap()
    };
    let get = read(format!("/api/v1/tasks/{id}")).await;
    let list = read("/api/v1/tasks".into()).await;
    let changes = read("/api/v1/changes".into()).await;
    let export = read("/api/v1/users/me/export".into()).await;
    let event = events.next_event(std::time::Duration::from_secs(5)).await.expect("the create's event");
    let bulk = app
        .send_as(
            &user.token,
            Method::POST,
            "/api/v1/tasks/bulk",
            Some(&json!({"operations": [{"op": "create", "task": {"title": "Bulk"}}]})),
        )
        .await;
    let bulk: Value = bulk.json().await.unwrap();
    for (door, task) in [
        ("create", &created),
        ("GET", &get),
        ("list", &list["items"][0]),
        ("changes", &changes["changes"][0]["task"]),
        ("export", &export["tasks"][0]),
        ("event", &event.data()),
        ("bulk", &bulk["results"][0]["task"]),
    ] {
        let fields = task.as_object().unwrap_or_else(|| panic!("{door}: a task, not {task}"));
        assert_eq!(fields.get("deleted_at"), Some(&Value::Null), "{door}: {task}");
    }
}
