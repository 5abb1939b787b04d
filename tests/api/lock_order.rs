//! Every writer takes its locks in one order: the user's row, task rows by id, the user's change
//! counter (`task_counts`), then a project. Each test holds, on a connection of its own, the locks
//! of one writer up to a point, starts another writer through the API, and checks that the first
//! can take its next lock at once: had the second taken them in another order, the two would
//! deadlock (PostgreSQL would then fail one of them after a second).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::helpers::TestApp;

fn id(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

async fn run(conn: &mut PgConnection, sql: &str, bind: Uuid) {
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(bind).execute(conn).await.unwrap();
}

async fn finish(conn: &mut PgConnection, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(conn).await.unwrap();
}

/// Takes a lock that must be free at once: shorter than PostgreSQL's deadlock check (1 s).
async fn lock_at_once(conn: &mut PgConnection, sql: &str, bind: Uuid, what: &str) {
    sqlx::query("SET lock_timeout = '500ms'").execute(&mut *conn).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bind)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

async fn purge(app: &TestApp) -> u64 {
    app.purge(None).await.trashed_tasks
}

async fn project(app: &TestApp, token: &str) -> Value {
    let response = app.send_as(token, Method::POST, "/api/v1/projects", Some(&json!({"name": "P"}))).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// A connection of its own, in a transaction, for holding another writer's locks.
async fn held(app: &TestApp) -> PgConnection {
    use secrecy::ExposeSecret;
    use sqlx::Connection;
    let mut conn = PgConnection::connect(app.settings.database.url.expose_secret()).await.unwrap();
    sqlx::query("SET lock_timeout = '5s'").execute(&mut conn).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    conn
}

/// Starts `method path body` through the API; its status, once it answers.
fn start(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> tokio::task::JoinHandle<u16> {
    let request = app.client.request(method, app.url(path)).bearer_auth(token).json(&body);
    tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
}

const USER_ROW: &str = "SELECT 1 FROM users WHERE id = $1 FOR UPDATE";
const COUNTER: &str = "SELECT 1 FROM task_counts WHERE user_id = $1 FOR NO KEY UPDATE";
const PROJECT: &str = "SELECT 1 FROM projects WHERE id = $1 FOR NO KEY UPDATE";
const TASK: &str = "SELECT 1 FROM tasks WHERE id = $1 FOR NO KEY UPDATE";

#[tokio::test]
async fn the_trash_purge_never_waits_on_an_account_being_deleted_or_a_locked_task() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (a, b) = (
        app.create_task(&user, json!({"title": "a"})).await,
        app.create_task(&user, json!({"title": "b"})).await,
    );
    for task in [&a, &b] {
        app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tasks/{}", id(task)), None).await;
    }
    app.age_trash().await;
    // Account deletion's first lock, the user's row; and someone working on trashed task `a`.
    let mut deleting = held(&app).await;
    run(&mut deleting, USER_ROW, user.id).await;
    let mut restoring = held(&app).await;
    run(&mut restoring, TASK, id(&a)).await;
    let purged = tokio::time::timeout(Duration::from_secs(5), purge(&app)).await;
    assert_eq!(purged.expect("the purge waits on neither"), 1, "the locked task is left for the next run");
    // Account deletion's next lock, the tasks, is free of the purge.
    lock_at_once(&mut deleting, "SELECT id FROM tasks WHERE id = $1 FOR UPDATE", id(&b), "task b").await;
    finish(&mut deleting, "ROLLBACK").await;
    finish(&mut restoring, "ROLLBACK").await;
    assert_eq!(purge(&app).await, 1, "the next run takes it");
}

#[tokio::test]
async fn moving_a_task_into_a_project_never_deadlocks_with_the_projects_deletion() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let project = project(&app, &user.token).await;
    let inside = app.create_task(&user, json!({"title": "inside", "project_id": project["id"]})).await;
    let outside = app.create_task(&user, json!({"title": "outside"})).await;
    // The project's deletion so far: its tasks, then the counter. Its next lock is the project.
    let mut deleting = held(&app).await;
    run(&mut deleting, TASK, id(&inside)).await;
    run(&mut deleting, COUNTER, user.id).await;
    let path = format!("/api/v1/tasks/{}", id(&outside));
    let moving = start(&app, &user.token, Method::PATCH, &path, json!({"project_id": project["id"]}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock_at_once(&mut deleting, PROJECT, id(&project), "the move holds the project").await;
    finish(&mut deleting, "COMMIT").await;
    assert_eq!(moving.await.unwrap(), 200);
}

#[tokio::test]
async fn creating_a_task_in_a_project_never_deadlocks_with_the_accounts_deletion() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let project = project(&app, &user.token).await;
    app.create_task(&user, json!({"title": "first"})).await;
    // Account deletion so far: the user's row. It next removes the counter and the projects.
    let mut deleting = held(&app).await;
    run(&mut deleting, USER_ROW, user.id).await;
    let creating = start(
        &app,
        &user.token,
        Method::POST,
        "/api/v1/tasks",
        json!({"title": "t", "project_id": project["id"]}),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock_at_once(&mut deleting, COUNTER, user.id, "the create holds the counter").await;
    lock_at_once(&mut deleting, PROJECT, id(&project), "the create holds the project").await;
    finish(&mut deleting, "ROLLBACK").await;
    assert_eq!(creating.await.unwrap(), 201);
}

#[tokio::test]
async fn a_batch_creating_into_a_project_never_deadlocks_with_a_write_to_that_projects_tasks() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let project = project(&app, &user.token).await;
    let inside = app.create_task(&user, json!({"title": "inside", "project_id": project["id"]})).await;
    // Completing `inside` so far: the task, then (numbering it) the counter. Next, its project's
    // open count.
    let mut completing = held(&app).await;
    run(&mut completing, TASK, id(&inside)).await;
    run(&mut completing, COUNTER, user.id).await;
    let ops =
        json!({"operations": [{"op": "create", "task": {"title": "new", "project_id": project["id"]}}]});
    let batch = start(&app, &user.token, Method::POST, "/api/v1/tasks/bulk", ops);
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock_at_once(&mut completing, PROJECT, id(&project), "the batch holds the project").await;
    finish(&mut completing, "COMMIT").await;
    assert_eq!(batch.await.unwrap(), 200);
}

const TREE: &str = "SELECT pg_advisory_xact_lock(task_tree_lock_key($1))";

#[tokio::test]
async fn a_write_that_sets_a_parent_takes_the_tree_lock_before_any_task_row() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = app.create_task(&user, json!({"title": "parent"})).await;
    let child = app.create_task(&user, json!({"title": "child"})).await;
    // Another tree write so far: the user's tree lock. Its next locks are task rows.
    let mut other = held(&app).await;
    run(&mut other, TREE, user.id).await;
    let path = format!("/api/v1/tasks/{}", id(&child));
    let reparenting = start(&app, &user.token, Method::PATCH, &path, json!({"parent_id": parent["id"]}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock_at_once(&mut other, TASK, id(&child), "the reparent holds the child").await;
    lock_at_once(&mut other, TASK, id(&parent), "the reparent holds the parent").await;
    finish(&mut other, "COMMIT").await;
    assert_eq!(reparenting.await.unwrap(), 200);
}

#[tokio::test]
async fn a_subtask_write_locks_its_parent_before_the_counter_its_count_trigger_needs() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let parent = app.create_task(&user, json!({"title": "parent"})).await;
    let child = app.create_task(&user, json!({"title": "child", "parent_id": parent["id"]})).await;
    // A write to the parent so far (the worker's next occurrence, say): its row. Next, the counter.
    let mut other = held(&app).await;
    run(&mut other, TASK, id(&parent)).await;
    let path = format!("/api/v1/tasks/{}/complete", id(&child));
    let completing = start(&app, &user.token, Method::PATCH, &path, json!({"completed": true}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock_at_once(&mut other, COUNTER, user.id, "the subtask's write holds the counter").await;
    finish(&mut other, "COMMIT").await;
    assert_eq!(completing.await.unwrap(), 200);
    let parent: Value =
        app.get_as(&user.token, &format!("/api/v1/tasks/{}", id(&parent))).await.json().await.unwrap();
    assert_eq!(parent["completed_subtask_count"], 1);
}

#[tokio::test]
async fn changing_a_project_takes_the_counter_before_the_project() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    // With an endpoint, the project's webhook trigger numbers the change from the counter.
    crate::webhooks::register(&app, &user, "https://hooks.example.com/in", &["project.updated"]).await;
    let project = project(&app, &user.token).await;
    let inside = app.create_task(&user, json!({"title": "inside", "project_id": project["id"]})).await;
    // Completing `inside` so far: the task, then the counter. Next, its project's open count.
    let mut completing = held(&app).await;
    run(&mut completing, TASK, id(&inside)).await;
    run(&mut completing, COUNTER, user.id).await;
    let path = format!("/api/v1/projects/{}", id(&project));
    let renaming = start(&app, &user.token, Method::PATCH, &path, json!({"name": "Renamed"}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock_at_once(&mut completing, PROJECT, id(&project), "the rename holds the project").await;
    finish(&mut completing, "COMMIT").await;
    assert_eq!(renaming.await.unwrap(), 200);
}
