//! The maintenance job's purges work one user at a time: a user whose rows another transaction
//! holds is left for the next run, and every other user's expired rows go now.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{TestApp, TestUser};
use crate::webhooks::{app_allowing_private, deliveries, register};

/// Nothing listens there: with no worker running, messages stay pending and jobs stay queued.
const NOWHERE: &str = "http://127.0.0.1:9/hook";

async fn sql(app: &TestApp, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&app.pool).await.unwrap();
}

/// Creates a task under `key`; whether the answer was a replay of an earlier one.
async fn create_with_key(app: &TestApp, user: &TestUser, key: &str) -> bool {
    let response = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&user.token)
        .header("idempotency-key", key)
        .json(&json!({"title": key}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.headers().contains_key("idempotent-replayed")
}

async fn trash(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let page: Value = app.get_as(&user.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

/// A user with one trashed task, one stored idempotency key and one delivered webhook message,
/// all past retention, and one pending message, as old, that is still owed.
async fn user_with_expired_rows(app: &TestApp) -> (TestUser, String) {
    let user = app.new_user().await;
    let (endpoint, _) = register(app, &user, NOWHERE, &["task.created"]).await;
    assert!(!create_with_key(app, &user, "k").await);
    let task = app.create_task(&user, json!({"title": "trashed"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path, None).await.status(), 204);
    // Two `task.created` messages: the first is settled, the second still owed.
    let settle = format!(
        "UPDATE webhook_messages SET status = 'succeeded'
         WHERE user_id = '{}' AND seq = (SELECT min(seq) FROM webhook_messages WHERE user_id = '{}')",
        user.id, user.id
    );
    sql(app, &settle).await;
    (user, endpoint)
}

async fn age_everything(app: &TestApp) {
    app.age_trash().await;
    sql(app, "UPDATE idempotency_keys SET created_at = now() - interval '400 days'").await;
    sql(app, "UPDATE webhook_messages SET created_at = now() - interval '400 days'").await;
}

/// A connection of its own holding `lock` (bound to `id`) in an open transaction.
async fn holding(app: &TestApp, lock: &str, id: &str) -> PgConnection {
    use secrecy::ExposeSecret;
    let mut conn = PgConnection::connect(app.settings.database.url.expose_secret()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(lock)).bind(id).execute(&mut conn).await.unwrap();
    conn
}

#[tokio::test]
async fn expired_rows_are_purged_user_by_user_and_a_busy_users_rows_wait_for_the_next_run() {
    let app = app_allowing_private().await;
    let (free, free_endpoint) = user_with_expired_rows(&app).await;
    let (busy, busy_endpoint) = user_with_expired_rows(&app).await;
    age_everything(&app).await;
    // Someone is restoring `busy`'s trashed task and replaying their key right now.
    let busy_task = trash(&app, &busy).await[0]["id"].as_str().unwrap().to_owned();
    let mut restoring = holding(&app, "SELECT 1 FROM tasks WHERE id = $1::uuid FOR UPDATE", &busy_task).await;
    let mut replaying = holding(
        &app,
        "SELECT 1 FROM idempotency_keys WHERE user_id = $1::uuid FOR UPDATE",
        &busy.id.to_string(),
    )
    .await;

    let purged = tokio::time::timeout(Duration::from_secs(10), app.purge(None)).await;
    let purged = purged.expect("the purge waits on no user's locks");
    assert_eq!((purged.trashed_tasks, purged.idempotency_keys), (1, 1), "only the free user's");
    assert_eq!(purged.webhook_messages, 2, "both users' delivered messages, none of the owed ones");
    assert!(trash(&app, &free).await.is_empty());
    assert_eq!(trash(&app, &busy).await.len(), 1, "the held task is left");
    for (user, endpoint) in [(&free, &free_endpoint), (&busy, &busy_endpoint)] {
        let log = deliveries(&app, user, endpoint).await;
        let statuses: Vec<&str> = log.iter().map(|m| m["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["pending"], "the owed message stays, however old");
    }
    assert!(!create_with_key(&app, &free, "k").await, "the free user's key was forgotten");

    sqlx::query("ROLLBACK").execute(&mut restoring).await.unwrap();
    sqlx::query("ROLLBACK").execute(&mut replaying).await.unwrap();
    let purged = app.purge(None).await;
    assert_eq!((purged.trashed_tasks, purged.idempotency_keys), (1, 1), "the next run takes the rest");
    assert!(trash(&app, &busy).await.is_empty());
    assert!(!create_with_key(&app, &busy, "k").await);
}

/// The delivery jobs for `endpoint` that are still to run.
async fn live_jobs(app: &TestApp, endpoint: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM apalis.jobs WHERE job_type = 'todo.webhook'
           AND status IN ('Pending', 'Queued', 'Running') AND metadata -> 'endpoint_id' = $1",
    )
    .bind(endpoint)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_endpoint_whose_job_was_lost_gets_a_new_one_and_no_other_endpoint_does() {
    let app = app_allowing_private().await;
    let mut endpoints = Vec::new();
    for _ in 0..3 {
        let user = app.new_user().await;
        let (endpoint, _) = register(&app, &user, NOWHERE, &["task.created"]).await;
        app.create_task(&user, json!({"title": "owed"})).await;
        assert_eq!(live_jobs(&app, &endpoint).await, 1);
        endpoints.push((user, endpoint));
    }
    let [(_, lost), (disabled_owner, disabled), (_, waiting)] = &endpoints[..] else { unreachable!() };
    // A job that failed for good, say through a long outage, leaves its messages owed.
    for endpoint in [lost, disabled] {
        let kill = format!(
            "UPDATE apalis.jobs SET status = 'Killed', done_at = now()
             WHERE job_type = 'todo.webhook' AND metadata -> 'endpoint_id' = '{endpoint}'"
        );
        sql(&app, &kill).await;
    }
    let path = format!("/api/v1/webhooks/{disabled}");
    let response =
        app.send_as(&disabled_owner.token, Method::PATCH, &path, Some(&json!({"enabled": false}))).await;
    assert_eq!(response.status(), 200);

    app.purge(None).await;
    assert_eq!(live_jobs(&app, lost).await, 1, "the lost job is replaced");
    assert_eq!(live_jobs(&app, disabled).await, 0, "a disabled endpoint waits to be enabled");
    assert_eq!(live_jobs(&app, waiting).await, 1, "a live job is not doubled");
    app.purge(None).await;
    assert_eq!(live_jobs(&app, lost).await, 1, "a second run adds none");
}

/// A disabled endpoint's backlog does not outlive the log's retention: enabling the endpoint a
/// month later sends none of it. An enabled endpoint's owed messages stay, however old.
#[tokio::test]
async fn pending_messages_of_a_disabled_endpoint_go_after_the_retention() {
    let app = app_allowing_private().await;
    let user = app.new_user().await;
    let (disabled, _) = register(&app, &user, NOWHERE, &["task.created"]).await;
    let (enabled, _) = register(&app, &user, NOWHERE, &["task.created"]).await;
    app.create_task(&user, json!({"title": "old news"})).await;
    sql(&app, "UPDATE webhook_messages SET created_at = now() - interval '31 days'").await;
    app.create_task(&user, json!({"title": "recent"})).await;
    let path = format!("/api/v1/webhooks/{disabled}");
    let off = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"enabled": false}))).await;
    assert_eq!(off.status(), 200);

    let purged = app.purge(None).await;
    assert_eq!(purged.webhook_messages, 1, "only the disabled endpoint's stale message");
    let left = deliveries(&app, &user, &disabled).await;
    assert_eq!(left.len(), 1, "the message within the retention is kept: {left:?}");
    assert_eq!(left[0]["status"], "pending");
    let owed = deliveries(&app, &user, &enabled).await;
    let statuses: Vec<&str> = owed.iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["pending", "pending"], "an enabled endpoint's messages are still owed");
    assert_eq!(app.purge(None).await.webhook_messages, 0);
}
