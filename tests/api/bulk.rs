//! `POST /tasks/bulk`: many operations, one transaction, all or nothing.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

const BULK: &str = "/api/v1/tasks/bulk";

async fn bulk(app: &TestApp, user: &TestUser, operations: Value) -> reqwest::Response {
    app.send_as(&user.token, Method::POST, BULK, Some(&json!({"operations": operations}))).await
}

/// Everything a failed batch must leave as it was: tasks, projects and queued jobs.
async fn snapshot(
    app: &TestApp,
) -> (Vec<(String, String, bool, i64, Option<String>)>, Vec<(String, String)>, i64) {
    let tasks =
        sqlx::query_as("SELECT id::text, title, completed, version, deleted_at::text FROM tasks ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let jobs = sqlx::query_as("SELECT job_type, status FROM apalis.jobs ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let projects: i64 = sqlx::query_scalar("SELECT coalesce(sum(open_tasks + total_tasks), 0) FROM projects")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (tasks, jobs, projects)
}

#[tokio::test]
async fn a_batch_of_100_creates_makes_100_tasks_in_order() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let operations: Vec<Value> = (0..100)
        .map(|i| json!({"op": "create", "task": {"title": format!("Item {i:03}"), "tags": ["import"]}}))
        .collect();
    let response = bulk(&app, &user, json!(operations)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], i);
        assert_eq!(result["op"], "create");
        assert_eq!(result["status"], 201);
        assert_eq!(result["task"]["title"], format!("Item {i:03}"));
    }
    let page: Value =
        app.get_as(&user.token, "/api/v1/tasks?tags=import&limit=1").await.json().await.unwrap();
    assert_eq!(page["total"], 100);
}

#[tokio::test]
async fn a_mixed_batch_applies_each_operation_as_its_route_would() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let project =
        app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "Lisbon"}))).await;
    let project: Value = project.json().await.unwrap();
    let a = app.create_task(&user, json!({"title": "A"})).await;
    let b = app.create_task(&user, json!({"title": "B"})).await;
    let c = app.create_task(&user, json!({"title": "C"})).await;
    let trashed = app.create_task(&user, json!({"title": "T"})).await;
    let path = format!("/api/v1/tasks/{}", trashed["id"].as_str().unwrap());
    app.send_as(&user.token, Method::DELETE, &path, None).await;
    let tag = format!("\"{}-1\"", a["id"].as_str().unwrap().replace('-', ""));

    let response = bulk(
        &app,
        &user,
        json!([
            {"op": "update", "id": a["id"], "if_match": tag, "changes": {"title": "A2", "priority": "high"}},
            {"op": "complete", "id": b["id"]},
            {"op": "move", "id": c["id"], "project_id": project["id"]},
            {"op": "restore", "id": trashed["id"]},
            {"op": "delete", "id": a["id"]},
            {"op": "reopen", "id": b["id"]},
            {"op": "create", "task": {"title": "New", "project_id": project["id"]}},
        ]),
    )
    .await;
    assert_eq!(response.status(), 200);
    let results: Value = response.json().await.unwrap();
    let results = results["results"].as_array().unwrap().clone();
    let ops: Vec<&str> = results.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["update", "complete", "move", "restore", "delete", "reopen", "create"]);
    assert_eq!(results[0]["task"]["title"], "A2");
    assert_eq!(results[1]["task"]["completed"], true);
    assert_eq!(results[2]["task"]["project_id"], project["id"]);
    assert!(results[3]["task"]["deleted_at"].is_null());
    assert!(results[4]["task"]["deleted_at"].is_string(), "delete shows the task as it is in the trash");
    assert_eq!(results[5]["task"]["completed"], false);
    assert_eq!(results[6]["status"], 201);

    let project_now: Value = app
        .get_as(&user.token, &format!("/api/v1/projects/{}", project["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(project_now["total_tasks"], 2);
    let live: Value = app.get_as(&user.token, "/api/v1/tasks?sort=title").await.json().await.unwrap();
    let titles: Vec<&str> =
        live["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["B", "C", "New", "T"]);
}

#[tokio::test]
async fn a_batch_whose_57th_operation_fails_changes_nothing_jobs_included() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let remind = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let due = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let existing =
        app.create_task(&user, json!({"title": "Keep", "due_at": due, "reminder_at": remind})).await;
    let before = snapshot(&app).await;

    let mut operations: Vec<Value> = (0..56)
        .map(|i| json!({"op": "create", "task": {"title": format!("N{i}"), "due_at": due, "reminder_at": remind}}))
        .collect();
    operations[10] = json!({"op": "complete", "id": existing["id"]});
    operations.push(json!({"op": "complete", "id": uuid::Uuid::now_v7()}));
    operations.push(json!({"op": "create", "task": {"title": "after"}}));
    let response = bulk(&app, &user, json!(operations)).await;
    let problem = assert_problem(response, 404, "not_found").await;
    assert_eq!(problem["operation"], 56, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("Operation 56"), "{problem}");
    assert_eq!(snapshot(&app).await, before, "nothing of the batch remains");

    let stale = json!([{"op": "complete", "id": existing["id"], "if_match": "\"00000000000000000000000000000000-9\""}]);
    let problem = assert_problem(bulk(&app, &user, stale).await, 412, "precondition_failed").await;
    assert_eq!(problem["operation"], 0);
    let invalid = json!([{"op": "create", "task": {"title": "ok"}}, {"op": "update", "id": existing["id"], "changes": {"title": ""}}]);
    let problem = assert_problem(bulk(&app, &user, invalid).await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "operations[1].changes.title", "{problem}");
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn malformed_batches_are_422s_naming_the_operation() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let too_many: Vec<Value> = (0..101).map(|_| json!({"op": "create", "task": {"title": "x"}})).collect();
    for (operations, field) in [
        (json!([]), "operations"),
        (json!(too_many), "operations"),
        (
            json!([{"op": "create", "task": {"title": "ok"}}, {"op": "explode", "id": uuid::Uuid::now_v7()}]),
            "operations[1].op",
        ),
        (json!([{"op": "complete"}]), "operations[0].id"),
        (json!([{"op": "delete", "id": "not-an-id"}]), "operations[0].id"),
        (json!([{"op": "create", "task": {"title": "ok", "user_id": "x"}}]), "operations[0].task.user_id"),
        (json!([{"op": "move", "id": uuid::Uuid::now_v7()}]), "operations[0].project_id"),
        (json!([{"id": uuid::Uuid::now_v7()}]), "operations[0].op"),
    ] {
        let response = bulk(&app, &user, operations.clone()).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{operations}");
    }
    let not_object = app.send_as(&user.token, Method::POST, BULK, Some(&json!([1, 2]))).await;
    assert_problem(not_object, 422, "validation_failed").await;
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(tasks, 0);
}

#[tokio::test]
async fn a_batch_replays_under_its_idempotency_key() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let body = json!({"operations": [{"op": "create", "task": {"title": "Once"}}, {"op": "create", "task": {"title": "Twice?"}}]});
    let send = || {
        app.client
            .post(app.url(BULK))
            .bearer_auth(&user.token)
            .header("idempotency-key", "batch-1")
            .json(&body)
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(tasks, 2, "applied once");
}

#[tokio::test]
async fn bulk_operations_schedule_and_cancel_reminders_as_single_routes_do() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let remind = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let due = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let created = bulk(
        &app,
        &user,
        json!([
            {"op": "create", "task": {"title": "R1", "due_at": due, "reminder_at": remind}},
            {"op": "create", "task": {"title": "R2", "due_at": due, "reminder_at": remind}},
            {"op": "create", "task": {"title": "R3", "due_at": due, "reminder_at": remind}},
        ]),
    )
    .await;
    let created: Value = created.json().await.unwrap();
    assert_eq!(app.jobs("todo.reminder").await.len(), 3, "each create queued its reminder");
    let ids: Vec<Value> =
        created["results"].as_array().unwrap().iter().map(|r| r["task"]["id"].clone()).collect();
    let changed = bulk(
        &app,
        &user,
        json!([
            {"op": "complete", "id": ids[0]},
            {"op": "delete", "id": ids[1]},
            {"op": "update", "id": ids[2], "changes": {"reminder_at": null}},
        ]),
    )
    .await;
    assert_eq!(changed.status(), 200);
    assert!(app.jobs("todo.reminder").await.is_empty(), "completed, trashed and cleared: all cancelled");
}

#[tokio::test]
async fn one_users_batches_serialise_while_another_users_do_not_wait() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Contended"})).await;
    let renames = |prefix: &str| -> Vec<Value> {
        (0..10)
            .map(|i| json!({"op": "update", "id": task["id"], "changes": {"title": format!("{prefix}{i}")}}))
            .collect()
    };
    // Hold the task's row so the first batch waits inside its transaction.
    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let mut blocker = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT 1 FROM tasks WHERE id = $1::uuid FOR UPDATE")
        .bind(task["id"].as_str().unwrap())
        .execute(&mut blocker)
        .await
        .unwrap();
    let first = tokio::spawn({
        let (client, url, token, ops) = (app.client.clone(), app.url(BULK), user.token.clone(), renames("a"));
        async move { client.post(url).bearer_auth(token).json(&json!({"operations": ops})).send().await.unwrap() }
    });
    let second = tokio::spawn({
        let (client, url, token, ops) = (app.client.clone(), app.url(BULK), user.token.clone(), renames("b"));
        async move { client.post(url).bearer_auth(token).json(&json!({"operations": ops})).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another user is not behind the first user's actor.
    let started = std::time::Instant::now();
    let theirs = bulk(&app, &other, json!([{"op": "create", "task": {"title": "Mine"}}])).await;
    assert_eq!(theirs.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!first.is_finished() && !second.is_finished(), "the user's batches wait for the lock");
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    let mut versions = Vec::new();
    for batch in [first, second] {
        let response = batch.await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let mine: Vec<i64> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["task"]["version"].as_i64().unwrap())
            .collect();
        assert!(mine.windows(2).all(|w| w[1] == w[0] + 1), "a batch's writes were interleaved: {mine:?}");
        versions.extend(mine);
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=21).collect::<Vec<i64>>(), "one batch after the other");
}

#[tokio::test]
async fn every_operation_in_a_batch_counts_against_the_write_limit() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.user_writes_per_minute = 10;
    })
    .await;
    let user = app.new_user().await;
    let eight: Vec<Value> =
        (0..8).map(|i| json!({"op": "create", "task": {"title": format!("t{i}")}})).collect();
    assert_eq!(bulk(&app, &user, json!(eight)).await.status(), 200);
    let three: Vec<Value> =
        (0..3).map(|i| json!({"op": "create", "task": {"title": format!("u{i}")}})).collect();
    let response = bulk(&app, &user, json!(three)).await;
    assert_problem(response, 429, "rate_limited").await;
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(tasks, 8);
}

#[tokio::test]
async fn a_create_in_a_batch_naming_another_users_project_is_refused_by_index() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let theirs =
        app.send_as(&other.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "Theirs"}))).await;
    let theirs: Value = theirs.json().await.unwrap();
    let mine =
        app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "Mine"}))).await;
    let mine: Value = mine.json().await.unwrap();
    let response = bulk(
        &app,
        &user,
        json!([
            {"op": "create", "task": {"title": "a", "project_id": mine["id"]}},
            {"op": "create", "task": {"title": "b"}},
            {"op": "create", "task": {"title": "c", "project_id": theirs["id"]}},
        ]),
    )
    .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "operations[2].task.project_id", "{problem}");
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(tasks, 0);
}
