//! Defects found by an outside review, each pinned by the test that reproduced it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

fn version(task: &Value) -> i64 {
    task["version"].as_i64().expect("version")
}

#[tokio::test]
async fn writes_that_change_nothing_keep_the_version_and_updated_at() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Same", "tags": ["a"], "priority": "high"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());

    let complete = json!({"completed": true});
    let first: Value = app
        .send_as(&user.token, Method::PATCH, &format!("{path}/complete"), Some(&complete))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(version(&first), version(&task) + 1);
    for _ in 0..2 {
        let again =
            app.send_as(&user.token, Method::PATCH, &format!("{path}/complete"), Some(&complete)).await;
        assert_eq!(again.status(), 200);
        let again: Value = again.json().await.unwrap();
        assert_eq!(version(&again), version(&first), "completing a completed task changed it");
        assert_eq!(again["updated_at"], first["updated_at"]);
    }

    let empty = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({}))).await;
    assert_eq!(version(&empty.json::<Value>().await.unwrap()), version(&first), "PATCH {{}}");
    let same = json!({"title": "Same", "tags": ["a"], "priority": "high", "completed": true});
    let replaced: Value =
        app.send_as(&user.token, Method::PUT, &path, Some(&same)).await.json().await.unwrap();
    assert_eq!(version(&replaced), version(&first), "PUT of the same state");

    let changed = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"title": "Other"}))).await;
    assert_eq!(version(&changed.json::<Value>().await.unwrap()), version(&first) + 1, "a real change counts");
}

#[tokio::test]
async fn an_idempotency_key_repeated_under_another_if_match_is_refused_not_replayed() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Toggle"})).await;
    let path = format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap());
    let toggle = |if_match: &'static str| {
        app.client
            .post(app.url(&path))
            .bearer_auth(&user.token)
            .header("idempotency-key", "k-1")
            .header("if-match", if_match)
            .send()
    };
    let simple = task["id"].as_str().unwrap().replace('-', "");
    let tag: &'static str = Box::leak(format!("\"{simple}-1\"").into());
    let stale: &'static str = Box::leak(format!("\"{simple}-7\"").into());
    assert_eq!(toggle(tag).await.unwrap().status(), 200);
    assert_eq!(toggle(tag).await.unwrap().status(), 200, "the same request replays");
    let other = toggle(stale).await.unwrap();
    assert_problem(other, 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn deleting_an_account_never_deadlocks_with_its_idempotent_writes_on_another_process() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    for round in 0..30 {
        let user = app.new_user().await;
        let task = app.create_task(&user, json!({"title": "Race"})).await;
        let toggle_path = format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap());
        let key = [("idempotency-key", format!("race-{round}"))];
        let (deleted, toggled) = tokio::join!(
            app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None),
            other.send_as(&user.token, Method::POST, &toggle_path, &key, None),
        );
        assert_eq!(deleted.status(), 204, "round {round}: {}", deleted.text().await.unwrap());
        let status = toggled.status().as_u16();
        assert!(
            [200, 401, 404].contains(&status),
            "round {round}: the toggle got {status}: {}",
            toggled.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn an_account_holds_at_most_the_configured_number_of_tasks() {
    let app = TestApp::spawn_with(|s| s.tasks.max_per_user = 3).await;
    let user = app.new_user().await;
    for i in 0..3 {
        app.create_task(&user, json!({"title": format!("Task {i}")})).await;
    }
    let over =
        app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&json!({"title": "One more"}))).await;
    let problem = assert_problem(over, 409, "task_limit_reached").await;
    assert!(problem["detail"].as_str().unwrap().contains('3'), "{problem}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 3, "the refused task was not kept");
    let other = app.new_user().await;
    app.create_task(&other, json!({"title": "Another account has its own allowance"})).await;
}

#[tokio::test]
async fn the_export_streams_every_task_in_creation_order() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    // More than two pages of the stream, written directly to keep the test fast.
    sqlx::query(
        "INSERT INTO tasks (id, user_id, title, timezone, created_at, deleted_at)
         SELECT gen_random_uuid(), $1, 'Task ' || n, 'UTC', now() - make_interval(secs => 1000 - n),
                CASE WHEN n % 10 = 0 THEN now() END
         FROM generate_series(1, 450) AS n",
    )
    .bind(user.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let response = app.get_as(&user.token, "/api/v1/users/me/export").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let export: Value = response.json().await.expect("the streamed export is one JSON document");
    assert_eq!(export["user"]["id"], user.id.to_string());
    let tasks = export["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 450, "trashed tasks included");
    let titles: Vec<&str> = tasks.iter().map(|t| t["title"].as_str().unwrap()).collect();
    let expected: Vec<String> = (1..=450).map(|n| format!("Task {n}")).collect();
    assert_eq!(titles, expected.iter().map(String::as_str).collect::<Vec<_>>());

    let empty = app.new_user().await;
    let export: Value = app.get_as(&empty.token, "/api/v1/users/me/export").await.json().await.unwrap();
    assert_eq!(export["tasks"], json!([]));
}

#[tokio::test]
async fn a_recurrence_rule_is_bounded_in_the_domain_and_the_database() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let long_rule = format!("FREQ=WEEKLY;BYDAY={}MO", "MO,".repeat(200));
    let body = json!({"title": "Long rule", "due_at": "2030-01-07T09:00:00Z", "recurrence_rule": long_rule});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "recurrence_rule");

    let task = app.create_task(&user, json!({"title": "Short rule", "due_at": "2030-01-07T09:00:00Z"})).await;
    let written = sqlx::query("UPDATE tasks SET recurrence_rule = $2 WHERE id = $1")
        .bind(task["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap())
        .bind(&long_rule)
        .execute(&app.pool)
        .await;
    let err = written.expect_err("the database refuses the long rule too");
    assert!(err.to_string().contains("tasks_recurrence_rule_length"), "{err}");
}

#[tokio::test]
async fn maintenance_purges_a_large_backlog_in_batches() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO revoked_tokens (token_id, expires_at)
         SELECT 'old-' || n, now() - interval '1 hour' FROM generate_series(1, 2500) AS n",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO revoked_tokens (token_id, expires_at) VALUES ('live', now() + interval '1 hour')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let retention = todo::db::maintenance::Retention::new(&app.settings);
    let purged = todo::db::maintenance::purge_expired(&app.pool, retention).await.unwrap();
    assert_eq!(purged.revoked_tokens, 2500);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT token_id FROM revoked_tokens").fetch_all(&app.pool).await.unwrap();
    assert_eq!(left, ["live"]);
}

#[tokio::test]
async fn batches_never_deadlock_with_account_deletion_or_other_processes_writes() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    for round in 0..12 {
        // A batch that locks a task and then inserts, against the account's deletion.
        let user = app.new_user().await;
        let task = app.create_task(&user, json!({"title": "T"})).await;
        let batch = json!({"operations": [{"op": "complete", "id": task["id"]}, {"op": "create", "task": {"title": "x"}}]});
        let (deleted, batched) = tokio::join!(
            app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None),
            other.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", &[], Some(&batch)),
        );
        assert_eq!(deleted.status(), 204, "round {round}");
        let status = batched.status().as_u16();
        assert!([200, 401, 404].contains(&status), "round {round}: the batch got {status}");

        // A batch over two tasks of a project, against a single write to the second task, and
        // the project's deletion against a task moving into it.
        let user = app.new_user().await;
        let project =
            app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "P"}))).await;
        let project: Value = project.json().await.unwrap();
        let a = app.create_task(&user, json!({"title": "A", "project_id": project["id"]})).await;
        let b = app.create_task(&user, json!({"title": "B", "project_id": project["id"]})).await;
        let inbox = app.create_task(&user, json!({"title": "C"})).await;
        let batch =
            json!({"operations": [{"op": "complete", "id": a["id"]}, {"op": "complete", "id": b["id"]}]});
        let b_path = format!("/api/v1/tasks/{}", b["id"].as_str().unwrap());
        let high = json!({"priority": "high"});
        let into_project = json!({"project_id": project["id"]});
        let (batched, patched) = tokio::join!(
            app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&batch)),
            other.send_as(&user.token, Method::PATCH, &b_path, &[], Some(&high)),
        );
        assert_eq!(batched.status(), 200, "round {round}");
        assert_eq!(patched.status(), 200, "round {round}");
        let c_path = format!("/api/v1/tasks/{}", inbox["id"].as_str().unwrap());
        let p_path = format!("/api/v1/projects/{}", project["id"].as_str().unwrap());
        let (removed, moved) = tokio::join!(
            app.send_as(&user.token, Method::DELETE, &p_path, None),
            other.send_as(&user.token, Method::PATCH, &c_path, &[], Some(&into_project)),
        );
        assert_eq!(removed.status(), 204, "round {round}");
        let status = moved.status().as_u16();
        assert!(status == 200 || status == 422, "round {round}: the move got {status}");
    }
}
