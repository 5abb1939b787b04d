//! ETags, If-Match, If-None-Match and Idempotency-Key.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

async fn send(
    app: &TestApp,
    user: &TestUser,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(&user.token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn if_none_match_gives_304_until_the_task_changes() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Cache me"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let first = send(&app, &user, Method::GET, &path, &[], None).await;
    let tag = etag(&first);

    let cached = send(&app, &user, Method::GET, &path, &[("if-none-match", &tag)], None).await;
    assert_eq!(cached.status(), 304);
    assert_eq!(etag(&cached), tag);
    assert!(cached.bytes().await.unwrap().is_empty());
    let weak = format!("W/{tag}");
    assert_eq!(send(&app, &user, Method::GET, &path, &[("if-none-match", &weak)], None).await.status(), 304);

    send(&app, &user, Method::PATCH, &path, &[], Some(json!({"title": "Changed"}))).await;
    let fresh = send(&app, &user, Method::GET, &path, &[("if-none-match", &tag)], None).await;
    assert_eq!(fresh.status(), 200);
    assert_ne!(etag(&fresh), tag);
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_prevents_a_lost_update() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Shared doc"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let seen = etag(&send(&app, &user, Method::GET, &path, &[], None).await);

    // Two editors read the same version; the first write wins.
    let first =
        send(&app, &user, Method::PATCH, &path, &[("if-match", &seen)], Some(json!({"title": "Editor A"})))
            .await;
    assert_eq!(first.status(), 200);
    let second =
        send(&app, &user, Method::PATCH, &path, &[("if-match", &seen)], Some(json!({"title": "Editor B"})))
            .await;
    assert_problem(second, 412, "precondition_failed").await;
    let now: Value = app.get_as(&user.token, &path).await.json().await.unwrap();
    assert_eq!(now["title"], "Editor A");
    assert_eq!(now["version"], 2);

    for method in [Method::PUT, Method::DELETE] {
        let body = (method == Method::PUT).then(|| json!({"title": "x"}));
        let stale = send(&app, &user, method, &path, &[("if-match", &seen)], body).await;
        assert_problem(stale, 412, "precondition_failed").await;
    }
    let toggle =
        send(&app, &user, Method::POST, &format!("{path}/toggle"), &[("if-match", &seen)], None).await;
    assert_problem(toggle, 412, "precondition_failed").await;
    let other_task = format!("\"{}-2\"", uuid::Uuid::now_v7().simple());
    let foreign =
        send(&app, &user, Method::PATCH, &path, &[("if-match", &other_task)], Some(json!({"title": "y"})))
            .await;
    assert_problem(foreign, 412, "precondition_failed").await;

    let current = etag(&send(&app, &user, Method::GET, &path, &[], None).await);
    let list = format!("{seen}, {current}");
    let ok =
        send(&app, &user, Method::PATCH, &path, &[("if-match", &list)], Some(json!({"title": "Editor B"})))
            .await;
    assert_eq!(ok.status(), 200);
    let any =
        send(&app, &user, Method::PATCH, &path, &[("if-match", "*")], Some(json!({"priority": "low"}))).await;
    assert_eq!(any.status(), 200);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let body = json!({"title": "Pay rent", "priority": "high"});
    let key = [("idempotency-key", "create-rent-1")];

    let first = send(&app, &user, Method::POST, "/api/v1/tasks", &key, Some(body.clone())).await;
    assert_eq!(first.status(), 201);
    let (location, tag) = (first.headers()["location"].clone(), etag(&first));
    let created: Value = first.json().await.unwrap();

    // Same body with keys in another order: the same request.
    let reordered = json!({"priority": "high", "title": "Pay rent"});
    let again = send(&app, &user, Method::POST, "/api/v1/tasks", &key, Some(reordered)).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["location"], location);
    assert_eq!(etag(&again), tag);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), created);

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1, "the repeat created nothing");

    let different =
        send(&app, &user, Method::POST, "/api/v1/tasks", &key, Some(json!({"title": "Other"}))).await;
    assert_problem(different, 422, "idempotency_key_reused").await;

    // Keys are per user: someone else's identical key is theirs alone.
    let other = app.new_user().await;
    let theirs = send(&app, &other, Method::POST, "/api/v1/tasks", &key, Some(body)).await;
    assert_eq!(theirs.status(), 201);
    assert_ne!(theirs.json::<Value>().await.unwrap()["id"], created["id"]);
}

#[tokio::test]
async fn a_repeated_toggle_with_one_key_toggles_once() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Once"})).await;
    let path = format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap());
    let key = [("idempotency-key", "toggle-once")];
    let first: Value = send(&app, &user, Method::POST, &path, &key, None).await.json().await.unwrap();
    let second: Value = send(&app, &user, Method::POST, &path, &key, None).await.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(second["completed"], true);
    assert_eq!(second["version"], 2);
    // The same key on another route is another request.
    let restore = format!("/api/v1/tasks/{}/restore", task["id"].as_str().unwrap());
    assert_problem(
        send(&app, &user, Method::POST, &restore, &key, None).await,
        422,
        "idempotency_key_reused",
    )
    .await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_task() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.second_instance().await;
    let body = json!({"title": "Exactly once"});
    let headers = [("idempotency-key", "burst".to_owned())];
    let here = (0..5).map(|_| {
        send(&app, &user, Method::POST, "/api/v1/tasks", &[("idempotency-key", "burst")], Some(body.clone()))
    });
    let there =
        (0..5).map(|_| other.send_as(&user.token, Method::POST, "/api/v1/tasks", &headers, Some(&body)));
    let (here, there) = futures::join!(futures::future::join_all(here), futures::future::join_all(there));
    let mut ids = Vec::new();
    for response in here.into_iter().chain(there) {
        assert_eq!(response.status(), 201);
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the one task");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_400() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let long = "k".repeat(256);
    let response = send(
        &app,
        &user,
        Method::POST,
        "/api/v1/tasks",
        &[("idempotency-key", &long)],
        Some(json!({"title": "x"})),
    )
    .await;
    assert_problem(response, 400, "bad_request").await;
}

#[tokio::test]
async fn stored_idempotency_keys_and_old_trash_are_purged_by_maintenance() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    send(
        &app,
        &user,
        Method::POST,
        "/api/v1/tasks",
        &[("idempotency-key", "old")],
        Some(json!({"title": "a"})),
    )
    .await;
    let task = app.create_task(&user, json!({"title": "b"})).await;
    send(&app, &user, Method::DELETE, &format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()), &[], None)
        .await;
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE tasks SET deleted_at = now() - interval '31 days' WHERE deleted_at IS NOT NULL")
        .execute(&app.pool)
        .await
        .unwrap();

    // Fresh rows of each kind, which must survive the purge.
    send(
        &app,
        &user,
        Method::POST,
        "/api/v1/tasks",
        &[("idempotency-key", "new")],
        Some(json!({"title": "c"})),
    )
    .await;
    let recent = app.create_task(&user, json!({"title": "recently trashed"})).await;
    send(
        &app,
        &user,
        Method::DELETE,
        &format!("/api/v1/tasks/{}", recent["id"].as_str().unwrap()),
        &[],
        None,
    )
    .await;

    let retention = todo::db::maintenance::Retention::new(&app.settings);
    let purged = todo::db::maintenance::purge_expired(&app.pool, retention).await.unwrap();
    assert_eq!((purged.idempotency_keys, purged.trashed_tasks), (1, 1));
    let trash: Value = app.get_as(&user.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    assert_eq!(trash["total"], 1, "only trash past retention is purged");
    assert_eq!(trash["items"][0]["id"], recent["id"]);
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM idempotency_keys").fetch_all(&app.pool).await.unwrap();
    assert_eq!(keys, ["new"], "only keys past their replay window are purged");
    let live: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(live["total"], 2, "live tasks stay");
}
