//! Invariant 1: no user can read, change or learn of another user's task.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

/// Every task route, as (method, path suffix after /tasks/{id}, body).
fn routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"title": "hijacked"}))),
        (Method::PUT, "", Some(json!({"title": "hijacked"}))),
        (Method::DELETE, "", None),
        (Method::POST, "/restore", None),
        (Method::POST, "/toggle", None),
        (Method::PATCH, "/complete", Some(json!({"completed": true}))),
    ]
}

#[tokio::test]
async fn another_users_task_is_404_on_every_route_and_stays_untouched() {
    let app = TestApp::spawn().await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let task = app.create_task(&alice, json!({"title": "Alice's secret"})).await;
    let id = task["id"].as_str().unwrap();
    let unknown = uuid::Uuid::now_v7();

    for (method, suffix, body) in routes() {
        let theirs = app
            .send_as(&bob.token, method.clone(), &format!("/api/v1/tasks/{id}{suffix}"), body.as_ref())
            .await;
        let theirs = assert_problem(theirs, 404, "not_found").await;
        let missing =
            app.send_as(&bob.token, method, &format!("/api/v1/tasks/{unknown}{suffix}"), body.as_ref()).await;
        let missing = assert_problem(missing, 404, "not_found").await;
        assert_eq!(theirs["detail"], missing["detail"], "an existing task looks exactly like a missing one");
    }
    let bobs_list: Value = app.get_as(&bob.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(bobs_list["total"], 0);
    let bobs_trash: Value = app.get_as(&bob.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    assert_eq!(bobs_trash["total"], 0);

    let now: Value = app.get_as(&alice.token, &format!("/api/v1/tasks/{id}")).await.json().await.unwrap();
    assert_eq!(now, task, "nothing Bob sent changed Alice's task");
}

#[tokio::test]
async fn the_user_scoped_alias_is_403_for_anyone_else_and_works_for_the_owner() {
    let app = TestApp::spawn().await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let task = app.create_task(&alice, json!({"title": "Alice's"})).await;
    let id = task["id"].as_str().unwrap();

    for (method, suffix, body) in routes() {
        let path = format!("/api/v1/users/{}/tasks/{id}{suffix}", alice.id);
        assert_problem(app.send_as(&bob.token, method, &path, body.as_ref()).await, 403, "forbidden").await;
    }
    let list = app.get_as(&bob.token, &format!("/api/v1/users/{}/tasks", alice.id)).await;
    assert_problem(list, 403, "forbidden").await;
    let create = app
        .send_as(
            &bob.token,
            Method::POST,
            &format!("/api/v1/users/{}/tasks", alice.id),
            Some(&json!({"title": "x"})),
        )
        .await;
    assert_problem(create, 403, "forbidden").await;
    let nobody = app.get_as(&bob.token, &format!("/api/v1/users/{}/tasks", uuid::Uuid::now_v7())).await;
    assert_problem(nobody, 403, "forbidden").await;

    let own: Value = app
        .get_as(&alice.token, &format!("/api/v1/users/{}/tasks/{id}", alice.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own, task);
    let me: Value = app.get_as(&alice.token, "/api/v1/users/me/tasks").await.json().await.unwrap();
    assert_eq!(me["items"][0]["id"], id);
    let created = app
        .send_as(
            &alice.token,
            Method::POST,
            &format!("/api/v1/users/{}/tasks", alice.id),
            Some(&json!({"title": "Via alias"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let toggled =
        app.send_as(&alice.token, Method::POST, &format!("/api/v1/users/me/tasks/{id}/toggle"), None).await;
    assert_eq!(toggled.json::<Value>().await.unwrap()["completed"], true);
}

#[tokio::test]
async fn unauthenticated_task_requests_are_401_before_anything_else() {
    let app = TestApp::spawn().await;
    let alice = app.new_user().await;
    for path in ["/api/v1/tasks".to_owned(), format!("/api/v1/users/{}/tasks", alice.id)] {
        assert_problem(app.get(&path).await, 401, "token_missing").await;
    }
}
