//! Subtasks: `parent_id`, the kept counts, the listings, and the tree's rules, held by the
//! database under writes from two web processes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

async fn create(app: &TestApp, user: &TestUser, body: Value) -> Value {
    app.create_task(user, body).await
}

async fn get(app: &TestApp, user: &TestUser, id: &Value) -> Value {
    let response = app.get_as(&user.token, &format!("/api/v1/tasks/{}", id.as_str().unwrap())).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn patch(app: &TestApp, user: &TestUser, id: &Value, body: Value) -> reqwest::Response {
    let path = format!("/api/v1/tasks/{}", id.as_str().unwrap());
    app.send_as(&user.token, Method::PATCH, &path, Some(&body)).await
}

async fn titles(app: &TestApp, user: &TestUser, path: &str) -> Vec<String> {
    let response = app.get_as(&user.token, path).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_owned()).collect()
}

/// The 422 a refused parent gets: one error, on `parent_id`.
async fn refused_parent(response: reqwest::Response, field: &str) -> String {
    let body = assert_problem(response, 422, "validation_failed").await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["field"], field, "{body}");
    errors[0]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_parent_counts_its_live_subtasks_and_the_completed_ones_as_they_change() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = create(&app, &user, json!({"title": "Move house"})).await;
    assert_eq!((parent["parent_id"].clone(), parent["subtask_count"].clone()), (Value::Null, json!(0)));
    let pack = create(&app, &user, json!({"title": "Pack", "parent_id": parent["id"]})).await;
    let call = create(&app, &user, json!({"title": "Call movers", "parent_id": parent["id"]})).await;
    assert_eq!(pack["parent_id"], parent["id"]);

    let seen = get(&app, &user, &parent["id"]).await;
    assert_eq!(
        (seen["subtask_count"].as_i64(), seen["completed_subtask_count"].as_i64()),
        (Some(2), Some(0))
    );
    assert!(seen["version"].as_i64() > parent["version"].as_i64(), "the counts are part of its version");

    let done = app
        .send_as(
            &user.token,
            Method::PATCH,
            &format!("/api/v1/tasks/{}/complete", pack["id"].as_str().unwrap()),
            Some(&json!({"completed": true})),
        )
        .await;
    assert_eq!(done.status(), 200);
    let seen = get(&app, &user, &parent["id"]).await;
    assert_eq!(
        (seen["subtask_count"].as_i64(), seen["completed_subtask_count"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        seen["completed"], false,
        "completing the last open child... or any child, leaves the parent open"
    );

    let path = format!("/api/v1/tasks/{}", call["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path, None).await.status(), 204);
    let seen = get(&app, &user, &parent["id"]).await;
    assert_eq!(
        (seen["subtask_count"].as_i64(), seen["completed_subtask_count"].as_i64()),
        (Some(1), Some(1))
    );

    // Detaching the last one empties the counts.
    assert_eq!(patch(&app, &user, &pack["id"], json!({"parent_id": null})).await.status(), 200);
    let seen = get(&app, &user, &parent["id"]).await;
    assert_eq!(
        (seen["subtask_count"].as_i64(), seen["completed_subtask_count"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(get(&app, &user, &pack["id"]).await["parent_id"], Value::Null);
}

#[tokio::test]
async fn subtasks_list_in_position_order_and_the_list_filters_by_parent() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = create(&app, &user, json!({"title": "Trip"})).await;
    let other = create(&app, &user, json!({"title": "Other"})).await;
    for (title, position) in [("Tickets", 2), ("Passport", 0), ("Bags", 1), ("Hotel", 1)] {
        create(&app, &user, json!({"title": title, "parent_id": parent["id"], "position": position})).await;
    }
    create(&app, &user, json!({"title": "Elsewhere", "parent_id": other["id"]})).await;
    let id = parent["id"].as_str().unwrap();

    let listed = titles(&app, &user, &format!("/api/v1/tasks/{id}/subtasks")).await;
    assert_eq!(listed, ["Passport", "Bags", "Hotel", "Tickets"], "by position, then creation");

    // Moved by PATCH of `position`.
    let tickets = app.get_as(&user.token, &format!("/api/v1/tasks?parent_id={id}&q=tickets")).await;
    let tickets: Value = tickets.json().await.unwrap();
    let tickets = tickets["items"][0]["id"].clone();
    assert_eq!(patch(&app, &user, &tickets, json!({"position": 1})).await.status(), 200);
    let listed = titles(&app, &user, &format!("/api/v1/tasks/{id}/subtasks")).await;
    assert_eq!(listed, ["Passport", "Tickets", "Bags", "Hotel"]);
    let aliased = titles(&app, &user, &format!("/api/v1/users/me/tasks/{id}/subtasks")).await;
    assert_eq!(aliased, listed, "the /users/{{user_id}} form answers the same");

    let mut children = titles(&app, &user, &format!("/api/v1/tasks?parent_id={id}")).await;
    children.sort();
    assert_eq!(children, ["Bags", "Hotel", "Passport", "Tickets"]);
    let mut top = titles(&app, &user, "/api/v1/tasks?parent_id=none").await;
    top.sort();
    assert_eq!(top, ["Other", "Trip"]);

    let response = app.get_as(&user.token, "/api/v1/tasks?parent_id=nope").await;
    assert_eq!(refused_parent(response, "parent_id").await, "must be a task id or none");
    let response = patch(&app, &user, &tickets, json!({"position": -1})).await;
    refused_parent(response, "position").await;

    // Another user's task has no subtasks to show, and neither does a missing one.
    let stranger = app.new_user().await;
    let response = app.get_as(&stranger.token, &format!("/api/v1/tasks/{id}/subtasks")).await;
    assert_problem(response, 404, "not_found").await;
}

#[tokio::test]
async fn another_users_task_is_the_same_422_as_a_missing_or_trashed_one() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let stranger = app.new_user().await;
    let theirs = create(&app, &stranger, json!({"title": "Theirs"})).await;
    let trashed = create(&app, &user, json!({"title": "Trashed"})).await;
    let path = format!("/api/v1/tasks/{}", trashed["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path, None).await.status(), 204);

    // The same answer on every path that sets a parent: create, PATCH, PUT and a bulk update.
    let mine = create(&app, &user, json!({"title": "Mine"})).await;
    let mine_path = format!("/api/v1/tasks/{}", mine["id"].as_str().unwrap());
    let mut messages = Vec::new();
    for parent in [theirs["id"].clone(), json!(uuid::Uuid::now_v7()), trashed["id"].clone()] {
        let body = json!({"title": "Child", "parent_id": parent});
        let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
        messages.push(refused_parent(response, "parent_id").await);
        let response = patch(&app, &user, &mine["id"], json!({"parent_id": parent})).await;
        messages.push(refused_parent(response, "parent_id").await);
        let body = json!({"title": "Mine", "parent_id": parent});
        let response = app.send_as(&user.token, Method::PUT, &mine_path, Some(&body)).await;
        messages.push(refused_parent(response, "parent_id").await);
        let update = json!({"op": "update", "id": mine["id"], "changes": {"parent_id": parent}});
        let response = bulk(&app, &user, vec![update]).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["operation"], 0, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "operations[0].changes.parent_id", "{problem}");
        messages.push(problem["errors"][0]["message"].as_str().unwrap().to_owned());
    }
    assert!(messages.iter().all(|m| m == "is not one of your tasks"), "{messages:?}");
    let stored = get(&app, &user, &mine["id"]).await;
    assert_eq!(
        (stored["parent_id"].clone(), stored["version"].clone()),
        (Value::Null, mine["version"].clone())
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE title = 'Child'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    assert_eq!(get(&app, &stranger, &theirs["id"]).await["subtask_count"], 0);
}

#[tokio::test]
async fn no_task_is_its_own_ancestor_trees_stop_at_four_levels_and_subtasks_do_not_recur() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let a = create(&app, &user, json!({"title": "A"})).await;
    let b = create(&app, &user, json!({"title": "B", "parent_id": a["id"]})).await;
    let c = create(&app, &user, json!({"title": "C", "parent_id": b["id"]})).await;
    let d = create(&app, &user, json!({"title": "D", "parent_id": c["id"]})).await;

    let body = json!({"title": "E", "parent_id": d["id"]});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
    assert_eq!(refused_parent(response, "parent_id").await, "subtasks nest at most four levels deep");

    for (task, under) in [(&a, &d), (&a, &a), (&b, &c)] {
        let response = patch(&app, &user, &task["id"], json!({"parent_id": under["id"]})).await;
        let message = refused_parent(response, "parent_id").await;
        assert_eq!(message, "cannot be the task itself or one of its subtasks");
    }

    // A two-level subtree may not go under the third level.
    let x = create(&app, &user, json!({"title": "X"})).await;
    create(&app, &user, json!({"title": "Y", "parent_id": x["id"]})).await;
    let response = patch(&app, &user, &x["id"], json!({"parent_id": c["id"]})).await;
    assert_eq!(refused_parent(response, "parent_id").await, "subtasks nest at most four levels deep");
    assert_eq!(patch(&app, &user, &x["id"], json!({"parent_id": b["id"]})).await.status(), 200);

    let recurring = json!({"title": "R", "parent_id": a["id"], "due_at": "2030-01-01T09:00:00Z",
                           "recurrence_rule": "FREQ=DAILY"});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&recurring)).await;
    assert_eq!(refused_parent(response, "recurrence_rule").await, "a subtask cannot recur");
    let response = patch(
        &app,
        &user,
        &d["id"],
        json!({"due_at": "2030-01-01T09:00:00Z",
                                                        "recurrence_rule": "FREQ=DAILY"}),
    )
    .await;
    refused_parent(response, "recurrence_rule").await;
    let series = create(
        &app,
        &user,
        json!({"title": "S", "due_at": "2030-01-01T09:00:00Z",
                                             "recurrence_rule": "FREQ=DAILY"}),
    )
    .await;
    let response = patch(&app, &user, &series["id"], json!({"parent_id": a["id"]})).await;
    refused_parent(response, "recurrence_rule").await;
}

#[tokio::test]
async fn a_task_holds_at_most_200_subtasks() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = create(&app, &user, json!({"title": "Big"})).await;
    for batch in 0..2 {
        let operations: Vec<Value> = (0..100)
            .map(|i| json!({"op": "create", "task": {"title": format!("S{batch}-{i}"), "parent_id": parent["id"]}}))
            .collect();
        let body = json!({"operations": operations});
        let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(get(&app, &user, &parent["id"]).await["subtask_count"], 200);
    let body = json!({"title": "One too many", "parent_id": parent["id"]});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
    let message = refused_parent(response, "parent_id").await;
    assert!(message.contains("200"), "{message}");
    // The same limit in one batch that would cross it.
    let other = create(&app, &user, json!({"title": "Other"})).await;
    let operations: Vec<Value> = (0..2)
        .map(|i| json!({"op": "update", "id": other["id"], "changes": {"title": format!("O{i}"), "parent_id": parent["id"]}}))
        .collect();
    let body = json!({"operations": operations});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await;
    assert_eq!(response.status(), 422);
    let listed =
        titles(&app, &user, &format!("/api/v1/tasks/{}/subtasks", parent["id"].as_str().unwrap())).await;
    assert_eq!(listed.len(), 200);
}

#[tokio::test]
async fn a_subtask_is_in_its_parents_project_and_moves_into_a_new_parents_project() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let mut projects = Vec::new();
    for name in ["Home", "Work"] {
        let response =
            app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": name}))).await;
        assert_eq!(response.status(), 201);
        projects.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    let (home, work) = (&projects[0], &projects[1]);
    let parent = create(&app, &user, json!({"title": "Paint", "project_id": home})).await;
    let child = create(&app, &user, json!({"title": "Buy paint", "parent_id": parent["id"]})).await;
    assert_eq!(child["project_id"], *home, "a subtask left without a project is in its parent's");

    let response = patch(&app, &user, &child["id"], json!({"project_id": work})).await;
    refused_parent(response, "project_id").await;
    let body = json!({"title": "Elsewhere", "parent_id": parent["id"], "project_id": work});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
    refused_parent(response, "project_id").await;

    // Under a parent in another project, it moves there, with its own subtasks.
    let grandchild = create(&app, &user, json!({"title": "Pick colour", "parent_id": child["id"]})).await;
    let report = create(&app, &user, json!({"title": "Report", "project_id": work})).await;
    let response = patch(&app, &user, &child["id"], json!({"parent_id": report["id"]})).await;
    assert_eq!(response.status(), 200);
    let moved: Value = response.json().await.unwrap();
    assert_eq!(
        (moved["parent_id"].clone(), moved["project_id"].clone()),
        (report["id"].clone(), work.clone())
    );
    assert_eq!(get(&app, &user, &grandchild["id"]).await["project_id"], *work);

    // Moving a parent to another project moves its subtree.
    let response = patch(&app, &user, &report["id"], json!({"project_id": home})).await;
    assert_eq!(response.status(), 200);
    for task in [&child, &grandchild] {
        assert_eq!(get(&app, &user, &task["id"]).await["project_id"], *home);
    }
    let counts: Vec<(String, i32)> = sqlx::query_as("SELECT name, total_tasks FROM projects ORDER BY name")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(counts, [("Home".to_owned(), 4), ("Work".to_owned(), 0)]);
}

#[tokio::test]
async fn the_database_refuses_a_cycle_or_a_foreign_parent_written_around_the_api() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let stranger = app.new_user().await;
    let a = create(&app, &user, json!({"title": "A"})).await;
    let b = create(&app, &user, json!({"title": "B", "parent_id": a["id"]})).await;
    let theirs = create(&app, &stranger, json!({"title": "Theirs"})).await;
    let uuid = |v: &Value| v["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap();

    let cycle = sqlx::query("UPDATE tasks SET parent_id = $1 WHERE id = $2")
        .bind(uuid(&b))
        .bind(uuid(&a))
        .execute(&app.pool)
        .await
        .unwrap_err();
    assert_eq!(cycle.as_database_error().and_then(|e| e.constraint()), Some("tasks_parent_cycle"));
    let foreign = sqlx::query("UPDATE tasks SET parent_id = $1 WHERE id = $2")
        .bind(uuid(&theirs))
        .bind(uuid(&a))
        .execute(&app.pool)
        .await
        .unwrap_err();
    assert_eq!(foreign.as_database_error().and_then(|e| e.constraint()), Some("tasks_parent_fkey"));
    let live_under_trashed = sqlx::query("UPDATE tasks SET deleted_at = now() WHERE id = $1")
        .bind(uuid(&a))
        .execute(&app.pool)
        .await
        .unwrap_err();
    assert_eq!(
        live_under_trashed.as_database_error().and_then(|e| e.constraint()),
        Some("tasks_parent_same_project"),
        "{live_under_trashed}"
    );
}

#[tokio::test]
async fn two_processes_moving_a_under_b_and_b_under_a_at_once_never_make_a_cycle() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    let user = app.new_user().await;
    for round in 0..8 {
        let a = create(&app, &user, json!({"title": format!("A{round}")})).await;
        let b = create(&app, &user, json!({"title": format!("B{round}")})).await;
        let path = |t: &Value| format!("/api/v1/tasks/{}", t["id"].as_str().unwrap());
        let (a_path, b_path) = (path(&a), path(&b));
        let (a_under_b, b_under_a) = (json!({"parent_id": b["id"]}), json!({"parent_id": a["id"]}));
        let (first, second) = tokio::join!(
            app.send_as(&user.token, Method::PATCH, &a_path, Some(&a_under_b)),
            other.send_as(&user.token, Method::PATCH, &b_path, &[], Some(&b_under_a)),
        );
        let statuses = [first.status().as_u16(), second.status().as_u16()];
        assert!(statuses.contains(&200) && statuses.contains(&422), "round {round}: {statuses:?}");
        let parents: Vec<Option<uuid::Uuid>> =
            sqlx::query_scalar("SELECT parent_id FROM tasks WHERE title IN ($1, $2)")
                .bind(format!("A{round}"))
                .bind(format!("B{round}"))
                .fetch_all(&app.pool)
                .await
                .unwrap();
        assert_eq!(
            parents.iter().filter(|p| p.is_some()).count(),
            1,
            "round {round}: one is under the other"
        );
    }
}

async fn bulk(app: &TestApp, user: &TestUser, operations: Vec<Value>) -> reqwest::Response {
    let body = json!({"operations": operations});
    app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await
}

async fn task_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap()
}

/// A refused batch's problem: the operation that crossed the limit, named in its own field.
async fn refused_operation(response: reqwest::Response, index: usize, field: &str) {
    let body = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(body["operation"], index, "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["field"], format!("operations[{index}].{field}"), "{body}");
    assert!(errors[0]["message"].as_str().unwrap().contains("200"), "{body}");
}

#[tokio::test]
async fn a_batch_that_would_pass_200_subtasks_is_refused_at_the_operation_that_crosses_it() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = create(&app, &user, json!({"title": "Big"})).await;
    let children = |from: usize, count: usize| -> Vec<Value> {
        (from..from + count)
            .map(|i| json!({"op": "create", "task": {"title": format!("S{i}"), "parent_id": parent["id"]}}))
            .collect()
    };
    assert_eq!(bulk(&app, &user, children(0, 100)).await.status(), 200);
    assert_eq!(bulk(&app, &user, children(100, 50)).await.status(), 200);
    let before = task_count(&app).await;

    // 150 + 60: the 51st create of the batch (operation 50) would be the 201st subtask.
    refused_operation(bulk(&app, &user, children(150, 60)).await, 50, "task.parent_id").await;
    assert_eq!(task_count(&app).await, before, "nothing of the batch was written");
    assert_eq!(get(&app, &user, &parent["id"]).await["subtask_count"], 150);

    // Updates that move tasks under it count against the same limit, after the batch's creates.
    assert_eq!(bulk(&app, &user, children(150, 49)).await.status(), 200);
    let x = create(&app, &user, json!({"title": "X"})).await;
    let y = create(&app, &user, json!({"title": "Y"})).await;
    let moves = vec![
        json!({"op": "update", "id": x["id"], "changes": {"parent_id": parent["id"]}}),
        json!({"op": "update", "id": y["id"], "changes": {"parent_id": parent["id"]}}),
    ];
    refused_operation(bulk(&app, &user, moves).await, 1, "changes.parent_id").await;
    let mixed = vec![
        json!({"op": "create", "task": {"title": "Last", "parent_id": parent["id"]}}),
        json!({"op": "update", "id": x["id"], "changes": {"parent_id": parent["id"]}}),
    ];
    refused_operation(bulk(&app, &user, mixed).await, 1, "changes.parent_id").await;
    for task in [&x, &y] {
        assert_eq!(get(&app, &user, &task["id"]).await["parent_id"], Value::Null, "{}", task["title"]);
    }
    assert_eq!(get(&app, &user, &parent["id"]).await["subtask_count"], 199);
}

/// (title, position) of a parent's subtasks, as listed.
async fn places(app: &TestApp, user: &TestUser, parent: &Value) -> Vec<(String, i64)> {
    let path = format!("/api/v1/tasks/{}/subtasks", parent["id"].as_str().unwrap());
    let body: Value = app.get_as(&user.token, &path).await.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    items.iter().map(|t| (t["title"].as_str().unwrap().to_owned(), t["position"].as_i64().unwrap())).collect()
}

fn owned(places: &[(&str, i64)]) -> Vec<(String, i64)> {
    places.iter().map(|(title, position)| ((*title).to_owned(), *position)).collect()
}

#[tokio::test]
async fn a_subtask_given_no_position_goes_after_its_last_sibling() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = create(&app, &user, json!({"title": "Trip"})).await;
    for title in ["Tickets", "Passport"] {
        create(&app, &user, json!({"title": title, "parent_id": parent["id"]})).await;
    }
    create(&app, &user, json!({"title": "Hotel", "parent_id": parent["id"], "position": 7})).await;
    // A batch appends each of its creates after the one before, and after an explicit place.
    let operations = vec![
        json!({"op": "create", "task": {"title": "Bags", "parent_id": parent["id"]}}),
        json!({"op": "create", "task": {"title": "Visa", "parent_id": parent["id"]}}),
    ];
    assert_eq!(bulk(&app, &user, operations).await.status(), 200);
    assert_eq!(
        places(&app, &user, &parent).await,
        owned(&[("Tickets", 0), ("Passport", 1), ("Hotel", 7), ("Bags", 8), ("Visa", 9)])
    );

    // A task given a new parent without a position goes last; an edit that keeps the parent
    // keeps the place, and a position moves it.
    let taxi = create(&app, &user, json!({"title": "Taxi", "position": 3})).await;
    assert_eq!(patch(&app, &user, &taxi["id"], json!({"parent_id": parent["id"]})).await.status(), 200);
    assert_eq!(get(&app, &user, &taxi["id"]).await["position"], 10);
    assert_eq!(patch(&app, &user, &taxi["id"], json!({"title": "Cab"})).await.status(), 200);
    assert_eq!(get(&app, &user, &taxi["id"]).await["position"], 10);
    assert_eq!(patch(&app, &user, &taxi["id"], json!({"position": 1})).await.status(), 200);
    let listed: Vec<String> = places(&app, &user, &parent).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(listed, ["Tickets", "Passport", "Cab", "Hotel", "Bags", "Visa"], "ties in creation order");
    let response = patch(&app, &user, &taxi["id"], json!({"position": null})).await;
    refused_parent(response, "position").await;

    // Appends from two processes at once each get their own place, in the order they committed.
    let other = app.second_instance().await;
    let fresh = create(&app, &user, json!({"title": "Fresh"})).await;
    let body = |title: String| json!({"title": title, "parent_id": fresh["id"]});
    let here = async {
        for i in 0..6 {
            let response =
                app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body(format!("A{i}")))).await;
            assert_eq!(response.status(), 201);
        }
    };
    let there = async {
        for i in 0..6 {
            let response = other
                .send_as(&user.token, Method::POST, "/api/v1/tasks", &[], Some(&body(format!("B{i}"))))
                .await;
            assert_eq!(response.status(), 201);
        }
    };
    tokio::join!(here, there);
    let mut positions: Vec<i64> = places(&app, &user, &fresh).await.into_iter().map(|(_, p)| p).collect();
    positions.sort_unstable();
    assert_eq!(positions, (0..12).collect::<Vec<_>>());
    let listed: Vec<String> = places(&app, &user, &fresh).await.into_iter().map(|(t, _)| t).collect();
    for prefix in ["A", "B"] {
        let own: Vec<&String> = listed.iter().filter(|t| t.starts_with(prefix)).collect();
        let expected: Vec<String> = (0..6).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "each process's appends in its order");
    }
}

#[tokio::test]
async fn put_sets_and_clears_a_parent_as_patch_does() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = create(&app, &user, json!({"title": "Parent"})).await;
    create(&app, &user, json!({"title": "First", "parent_id": parent["id"]})).await;
    let task = create(&app, &user, json!({"title": "Task", "priority": "high"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());

    let body = json!({"title": "Task", "parent_id": parent["id"]});
    let response = app.send_as(&user.token, Method::PUT, &path, Some(&body)).await;
    assert_eq!(response.status(), 200);
    let put: Value = response.json().await.unwrap();
    assert_eq!(put["parent_id"], parent["id"]);
    assert_eq!(put["priority"], "medium", "a PUT replaces the whole task");
    assert_eq!(put["position"], 1, "after its sibling");
    assert_eq!(get(&app, &user, &parent["id"]).await["subtask_count"], 2);

    let body = json!({"title": "Task"});
    let response = app.send_as(&user.token, Method::PUT, &path, Some(&body)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["parent_id"],
        Value::Null,
        "left out of a PUT: top level"
    );
    assert_eq!(get(&app, &user, &parent["id"]).await["subtask_count"], 1);
}
