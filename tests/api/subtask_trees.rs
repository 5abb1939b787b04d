//! What happens to a subtree when its root is completed, trashed, restored or purged, as a
//! client sees it: over the task routes, the trash, the change feed and the job queue.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

const REMINDER: &str = "todo.reminder";

fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339()
}

fn path(task: &Value) -> String {
    format!("/api/v1/tasks/{}", task["id"].as_str().unwrap())
}

async fn get(app: &TestApp, user: &TestUser, task: &Value) -> reqwest::Response {
    app.get_as(&user.token, &path(task)).await
}

async fn seen(app: &TestApp, user: &TestUser, task: &Value) -> Value {
    let response = get(app, user, task).await;
    assert_eq!(response.status(), 200, "{}", task["title"]);
    response.json().await.unwrap()
}

async fn head(app: &TestApp, user: &TestUser) -> i64 {
    let response = app.get_as(&user.token, "/api/v1/changes?since=0&limit=500").await;
    let body: Value = response.json().await.unwrap();
    body["next_since"].as_i64().unwrap()
}

/// The ids the change feed carries after `since`.
async fn changed_since(app: &TestApp, user: &TestUser, since: i64) -> Vec<String> {
    let response = app.get_as(&user.token, &format!("/api/v1/changes?since={since}&limit=500")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["changes"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

fn id(task: &Value) -> String {
    task["id"].as_str().unwrap().to_owned()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn completing_a_parent_completes_its_open_subtree_cancels_their_reminders_and_reopening_leaves_them() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = app.create_task(&user, json!({"title": "Launch"})).await;
    let reminded = json!({"due_at": at(Duration::days(2)), "reminder_at": at(Duration::days(1))});
    let mut child = json!({"title": "Write post", "parent_id": parent["id"]});
    child.as_object_mut().unwrap().extend(reminded.as_object().unwrap().clone());
    let child = app.create_task(&user, child).await;
    let mut grandchild = json!({"title": "Proofread", "parent_id": child["id"]});
    grandchild.as_object_mut().unwrap().extend(reminded.as_object().unwrap().clone());
    let grandchild = app.create_task(&user, grandchild).await;
    let done = app
        .create_task(&user, json!({"title": "Book venue", "parent_id": parent["id"], "completed": true}))
        .await;
    assert_eq!(app.jobs(REMINDER).await.len(), 2);
    let since = head(&app, &user).await;

    let response = app
        .send_as(
            &user.token,
            Method::PATCH,
            &format!("{}/complete", path(&parent)),
            Some(&json!({"completed": true})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answered: Value = response.json().await.unwrap();
    assert_eq!(
        (answered["subtask_count"].as_i64(), answered["completed_subtask_count"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        answered,
        seen(&app, &user, &parent).await,
        "the answer is the task as stored, counts included"
    );
    for task in [&child, &grandchild] {
        let now = seen(&app, &user, task).await;
        assert_eq!(now["completed"], true, "{}", task["title"]);
        assert_eq!(now["completed_at"], answered["completed_at"], "one write, one completion time");
    }
    assert_eq!(
        seen(&app, &user, &done).await["completed_at"],
        done["completed_at"],
        "already done: untouched"
    );
    assert!(app.jobs(REMINDER).await.is_empty(), "each descendant's reminder is cancelled");
    let mut changed = changed_since(&app, &user, since).await;
    changed.sort();
    let mut expected = vec![id(&parent), id(&child), id(&grandchild)];
    expected.sort();
    assert_eq!(changed, expected, "the feed carries every task the completion touched");

    // Reopening the parent leaves the subtree as it is.
    let response = app.send_as(&user.token, Method::POST, &format!("{}/toggle", path(&parent)), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(seen(&app, &user, &child).await["completed"], true);
    assert!(app.jobs(REMINDER).await.is_empty());

    // Completing through PATCH of `completed` cascades the same way.
    let response =
        app.send_as(&user.token, Method::PATCH, &path(&child), Some(&json!({"completed": false}))).await;
    assert_eq!(response.status(), 200);
    let response =
        app.send_as(&user.token, Method::PATCH, &path(&grandchild), Some(&json!({"completed": false}))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.jobs(REMINDER).await.len(), 2, "reopened subtasks get their reminders back");
    let response =
        app.send_as(&user.token, Method::PATCH, &path(&child), Some(&json!({"completed": true}))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(seen(&app, &user, &grandchild).await["completed"], true);
    assert!(app.jobs(REMINDER).await.is_empty());
    assert_eq!(
        seen(&app, &user, &parent).await["completed"],
        false,
        "the last open child completing leaves the parent open"
    );
}

#[tokio::test]
async fn deleting_a_parent_trashes_its_subtree_and_a_restore_brings_back_only_what_went_with_it() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = app.create_task(&user, json!({"title": "Garden"})).await;
    let kept = app
        .create_task(
            &user,
            json!({"title": "Mow", "parent_id": parent["id"], "reminder_at": at(Duration::days(1))}),
        )
        .await;
    let below = app.create_task(&user, json!({"title": "Oil mower", "parent_id": kept["id"]})).await;
    let alone = app.create_task(&user, json!({"title": "Weed", "parent_id": parent["id"]})).await;
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path(&alone), None).await.status(), 204);
    let since = head(&app, &user).await;

    assert_eq!(app.send_as(&user.token, Method::DELETE, &path(&parent), None).await.status(), 204);
    for task in [&parent, &kept, &below] {
        assert_eq!(get(&app, &user, task).await.status(), 404, "{}", task["title"]);
    }
    assert!(app.jobs(REMINDER).await.is_empty(), "the trashed subtask's reminder is cancelled");
    let mut changed = changed_since(&app, &user, since).await;
    changed.sort();
    let mut expected = vec![id(&parent), id(&kept), id(&below)];
    expected.sort();
    assert_eq!(changed, expected);

    let since = head(&app, &user).await;
    let response = app.send_as(&user.token, Method::POST, &format!("{}/restore", path(&parent)), None).await;
    assert_eq!(response.status(), 200);
    let restored: Value = response.json().await.unwrap();
    assert_eq!(restored["subtask_count"], 1, "Weed was trashed on its own and stays there");
    assert_eq!(
        sorted(changed_since(&app, &user, since).await),
        sorted(vec![id(&parent), id(&kept), id(&below)])
    );
    assert_eq!(seen(&app, &user, &below).await["parent_id"], kept["id"]);
    assert_eq!(get(&app, &user, &alone).await.status(), 404);
    assert_eq!(app.jobs(REMINDER).await.len(), 1, "the restored subtask's reminder is back");

    // A subtask restored on its own goes back under its parent while that is live...
    let response = app.send_as(&user.token, Method::POST, &format!("{}/restore", path(&alone)), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["parent_id"], parent["id"]);
    assert_eq!(seen(&app, &user, &parent).await["subtask_count"], 2);
    // ...and to the top level when it is not.
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path(&parent), None).await.status(), 204);
    let response = app.send_as(&user.token, Method::POST, &format!("{}/restore", path(&kept)), None).await;
    assert_eq!(response.status(), 200);
    let lone: Value = response.json().await.unwrap();
    assert_eq!(lone["parent_id"], Value::Null);
    assert_eq!(get(&app, &user, &below).await.status(), 200, "its own subtree comes with it");
}

#[tokio::test]
async fn purging_a_trashed_parent_purges_its_subtree() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = app.create_task(&user, json!({"title": "Old"})).await;
    let child = app.create_task(&user, json!({"title": "Older", "parent_id": parent["id"]})).await;
    app.create_task(&user, json!({"title": "Oldest", "parent_id": child["id"]})).await;
    let other = app.create_task(&user, json!({"title": "Stays"})).await;
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path(&parent), None).await.status(), 204);
    app.age_trash().await;
    app.purge(None).await;
    let left: Vec<String> = sqlx::query_scalar("SELECT title FROM tasks").fetch_all(&app.pool).await.unwrap();
    assert_eq!(left, ["Stays"]);
    assert_eq!(seen(&app, &user, &other).await["title"], "Stays");
    let trash: Value = app.get_as(&user.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    assert_eq!(trash["items"].as_array().unwrap().len(), 0);
}

/// Runs every pending follow-up job through the handler the worker calls.
async fn run_follow_ups(app: &TestApp) -> Vec<todo::jobs::Handled> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT job FROM apalis.jobs WHERE job_type = 'todo.recurrence' AND status = 'Pending' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut outcomes = Vec::new();
    for payload in payloads {
        let job: todo::jobs::task_jobs::NextOccurrence = serde_json::from_slice(&payload).unwrap();
        let max = app.settings.tasks.max_per_user;
        outcomes.push(todo::jobs::recurrence::create_next(&app.pool, &job, max).await.expect("handled"));
    }
    outcomes
}

#[tokio::test]
async fn the_next_occurrence_of_a_recurring_parent_gets_one_fresh_open_copy_of_its_subtree() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = app
        .create_task(
            &user,
            json!({"title": "Weekly review", "due_at": "2030-03-04T09:00:00Z",
                                    "recurrence_rule": "FREQ=WEEKLY"}),
        )
        .await;
    let inbox = app
        .create_task(
            &user,
            json!({"title": "Empty inbox", "parent_id": parent["id"], "position": 1,
                                    "due_at": "2030-03-04T08:00:00Z", "reminder_at": "2030-03-04T07:30:00Z"}),
        )
        .await;
    app.create_task(&user, json!({"title": "Archive mail", "parent_id": inbox["id"]})).await;
    let trashed = app.create_task(&user, json!({"title": "Gone", "parent_id": parent["id"]})).await;
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path(&trashed), None).await.status(), 204);

    let response = app
        .send_as(
            &user.token,
            Method::PATCH,
            &format!("{}/complete", path(&parent)),
            Some(&json!({"completed": true})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(seen(&app, &user, &inbox).await["completed"], true);
    let since = head(&app, &user).await;
    let outcomes = run_follow_ups(&app).await;
    assert_eq!(outcomes, [todo::jobs::Handled::Done]);
    let made_by_worker = changed_since(&app, &user, since).await;

    let page: Value =
        app.get_as(&user.token, "/api/v1/tasks?parent_id=none&completed=false").await.json().await.unwrap();
    let next = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["series_id"] == parent["series_id"])
        .unwrap()
        .clone();
    assert_eq!(next["due_at"], "2030-03-11T09:00:00Z");
    assert_eq!(
        (next["subtask_count"].as_i64(), next["completed_subtask_count"].as_i64()),
        (Some(1), Some(0))
    );
    let listed: Value =
        app.get_as(&user.token, &format!("{}/subtasks", path(&next))).await.json().await.unwrap();
    let copies = listed["items"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "the trashed subtask is not copied");
    let copy = &copies[0];
    assert_ne!(copy["id"], inbox["id"]);
    assert_eq!(
        (copy["title"].as_str(), copy["completed"].as_bool(), copy["position"].as_i64()),
        (Some("Empty inbox"), Some(false), Some(1))
    );
    assert_eq!(copy["due_at"], "2030-03-11T08:00:00Z", "moved by the occurrence's step");
    assert_eq!(copy["reminder_at"], "2030-03-11T07:30:00Z", "the reminder keeps its offset");
    let below: Value =
        app.get_as(&user.token, &format!("{}/subtasks", path(copy))).await.json().await.unwrap();
    assert_eq!(below["items"][0]["title"], "Archive mail");
    assert_eq!(below["items"][0]["completed"], false);
    for made in [&next, copy, &below["items"][0]] {
        assert!(made_by_worker.contains(&id(made)), "the feed carries {}: {made_by_worker:?}", made["title"]);
    }
    let reminders: Vec<chrono::DateTime<Utc>> =
        app.jobs(REMINDER).await.into_iter().map(|(_, at, _)| at).collect();
    assert_eq!(reminders, ["2030-03-11T07:30:00Z".parse::<chrono::DateTime<Utc>>().unwrap()]);

    // Exactly once: a rerun of the job, or completing the occurrence again, copies nothing more.
    sqlx::query("UPDATE apalis.jobs SET status = 'Pending' WHERE job_type = 'todo.recurrence'")
        .execute(&app.pool)
        .await
        .unwrap();
    run_follow_ups(&app).await;
    let toggle = format!("{}/toggle", path(&parent));
    for completed in [false, true] {
        let response = app.send_as(&user.token, Method::POST, &toggle, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["completed"], completed);
    }
    run_follow_ups(&app).await;
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE title = 'Archive mail'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(copies, 2, "the original and one copy");
    let occurrences: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE title = 'Weekly review' AND deleted_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(occurrences, 2, "the first occurrence and one next");
}

#[tokio::test]
async fn a_batch_creates_a_parent_and_its_subtasks_together_through_refs() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let existing = app.create_task(&user, json!({"title": "Existing"})).await;
    let project: Value = app
        .send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "Trip"})))
        .await
        .json()
        .await
        .unwrap();
    let operations = json!([
        {"op": "create", "ref": "trip", "task": {"title": "Trip", "project_id": project["id"]}},
        {"op": "create", "ref": "pack", "task": {"title": "Pack", "parent_id": "$trip", "position": 2}},
        {"op": "create", "task": {"title": "Socks", "parent_id": "$pack"}},
        {"op": "create", "task": {"title": "Tickets", "parent_id": "$trip", "position": 1}},
        {"op": "update", "id": existing["id"], "changes": {"parent_id": "$trip"}},
    ]);
    let body = json!({"operations": operations});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await;
    assert_eq!(response.status(), 200);
    let results: Value = response.json().await.unwrap();
    let task = |i: usize| results["results"][i]["task"].clone();
    assert_eq!(task(1)["parent_id"], task(0)["id"]);
    assert_eq!(task(2)["parent_id"], task(1)["id"]);
    assert_eq!(task(4)["parent_id"], task(0)["id"]);
    for i in 1..5 {
        assert_eq!(task(i)["project_id"], project["id"], "every subtask is in the parent's project");
    }
    let listed: Value =
        app.get_as(&user.token, &format!("{}/subtasks", path(&task(0)))).await.json().await.unwrap();
    let titles: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    // Existing, moved under it with no position, goes after the subtasks placed before it.
    assert_eq!(titles, ["Tickets", "Pack", "Existing"]);
    assert_eq!(seen(&app, &user, &task(0)).await["subtask_count"], 3);

    // A whole subtree moves and completes through bulk too.
    let operations = json!([
        {"op": "move", "id": task(0)["id"], "project_id": null},
        {"op": "complete", "id": task(0)["id"]},
    ]);
    let body = json!({"operations": operations});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await;
    assert_eq!(response.status(), 200);
    let socks = seen(&app, &user, &task(2)).await;
    assert_eq!((socks["project_id"].clone(), socks["completed"].clone()), (Value::Null, json!(true)));

    // A reference must name an earlier create's ref; a ref belongs to a create, once.
    for (operations, field) in [
        (
            json!([{"op": "create", "task": {"title": "Orphan", "parent_id": "$nobody"}}]),
            "operations[0].task.parent_id",
        ),
        (
            json!([{"op": "create", "task": {"title": "Early", "parent_id": "$late"}},
                {"op": "create", "ref": "late", "task": {"title": "Late"}}]),
            "operations[0].task.parent_id",
        ),
        (
            json!([{"op": "create", "ref": "twice", "task": {"title": "A"}},
                {"op": "create", "ref": "twice", "task": {"title": "B"}}]),
            "operations[1].ref",
        ),
        (json!([{"op": "delete", "ref": "x", "id": existing["id"]}]), "operations[0].ref"),
    ] {
        let body = json!({"operations": operations});
        let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await;
        let problem = crate::helpers::assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 5, "nothing of a refused batch was written");
}

#[tokio::test]
async fn the_export_carries_the_tree_and_the_task_limit_counts_subtasks() {
    let app = TestApp::spawn_with(|settings| settings.tasks.max_per_user = 3).await;
    let user = app.new_user().await;
    let parent = app.create_task(&user, json!({"title": "Parent"})).await;
    let child =
        app.create_task(&user, json!({"title": "Child", "parent_id": parent["id"], "position": 4})).await;
    app.create_task(&user, json!({"title": "Grandchild", "parent_id": child["id"]})).await;
    let body = json!({"title": "One too many", "parent_id": parent["id"]});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
    crate::helpers::assert_problem(response, 409, "task_limit_reached").await;

    let export: Value = app.get_as(&user.token, "/api/v1/users/me/export").await.json().await.unwrap();
    let tasks = export["tasks"].as_array().unwrap();
    let by_title = |title: &str| tasks.iter().find(|t| t["title"] == title).unwrap().clone();
    assert_eq!(by_title("Child")["parent_id"], parent["id"]);
    assert_eq!(by_title("Child")["position"], 4);
    assert_eq!(by_title("Grandchild")["parent_id"], child["id"]);
    assert_eq!(by_title("Parent")["subtask_count"], 1);
}

#[tokio::test]
async fn the_feed_carries_a_moved_subtree_and_both_parents_of_a_reparented_task() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let project: Value = app
        .send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "Work"})))
        .await
        .json()
        .await
        .unwrap();
    let parent = app.create_task(&user, json!({"title": "Report"})).await;
    let child = app.create_task(&user, json!({"title": "Draft", "parent_id": parent["id"]})).await;
    let grandchild = app.create_task(&user, json!({"title": "Outline", "parent_id": child["id"]})).await;
    let other = app.create_task(&user, json!({"title": "Slides"})).await;

    // A project move carries the whole subtree.
    let since = head(&app, &user).await;
    let body = json!({"project_id": project["id"]});
    assert_eq!(app.send_as(&user.token, Method::PATCH, &path(&parent), Some(&body)).await.status(), 200);
    assert_eq!(
        sorted(changed_since(&app, &user, since).await),
        sorted(vec![id(&parent), id(&child), id(&grandchild)])
    );

    // A reparent changes the task and both parents' counts.
    app.send_as(&user.token, Method::PATCH, &path(&other), Some(&body)).await;
    let since = head(&app, &user).await;
    let body = json!({"parent_id": other["id"]});
    assert_eq!(app.send_as(&user.token, Method::PATCH, &path(&child), Some(&body)).await.status(), 200);
    assert_eq!(
        sorted(changed_since(&app, &user, since).await),
        sorted(vec![id(&parent), id(&child), id(&other)])
    );
    assert_eq!(seen(&app, &user, &parent).await["subtask_count"], 0);
    assert_eq!(seen(&app, &user, &other).await["subtask_count"], 1);
    assert_eq!(seen(&app, &user, &grandchild).await["parent_id"], child["id"]);
}
