//! One reading of a JSON body on every route: a key repeated in any object, at any depth, is a
//! malformed body (400) and nothing is applied; a well-formed body of the wrong shape is a 422.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

async fn send_raw(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: &str,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

#[tokio::test]
async fn a_repeated_key_is_a_400_on_every_json_route_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "kept"})).await;
    let task_path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let response =
        app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "P"}))).await;
    assert_eq!(response.status(), 201);
    let project: Value = response.json().await.unwrap();
    let project_path = format!("/api/v1/projects/{}", project["id"].as_str().unwrap());
    let (complete_path, email) = (format!("{task_path}/complete"), &user.email);

    let cases: Vec<(Method, &str, String)> = vec![
        (
            Method::POST,
            "/api/v1/tasks/bulk",
            r#"{"operations": [{"op": "create", "task": {"title": "first"}}],
                "operations": [{"op": "create", "task": {"title": "second"}}]}"#
                .to_owned(),
        ),
        (
            Method::POST,
            "/api/v1/tasks/bulk",
            r#"{"operations": [{"op": "create", "task": {"title": "a", "title": "b"}}]}"#.to_owned(),
        ),
        (Method::POST, "/api/v1/tasks", r#"{"title": "a", "title": "b"}"#.to_owned()),
        (Method::POST, "/api/v1/tasks", r#"{"title": "a", "tags": ["x"], "\u0074itle": "b"}"#.to_owned()),
        (Method::PATCH, &task_path, r#"{"title": "a", "title": "b"}"#.to_owned()),
        (Method::PUT, &task_path, r#"{"title": "a", "title": "b"}"#.to_owned()),
        (Method::PATCH, &complete_path, r#"{"completed": true, "completed": false}"#.to_owned()),
        (Method::POST, "/api/v1/projects", r#"{"name": "a", "name": "b"}"#.to_owned()),
        (Method::PATCH, &project_path, r#"{"name": "a", "name": "b"}"#.to_owned()),
        (Method::PATCH, "/api/v1/users/me", r#"{"name": "a", "name": "b"}"#.to_owned()),
        (
            Method::POST,
            "/api/v1/auth/login",
            format!(r#"{{"email": "{email}", "email": "{email}", "password": "x"}}"#),
        ),
        (
            Method::POST,
            "/api/v1/auth/register",
            r#"{"email": "a@example.com", "email": "b@example.com", "password": "long enough"}"#.to_owned(),
        ),
    ];
    for (method, path, body) in cases {
        let response = send_raw(&app, Some(&user.token), method.clone(), path, &body).await;
        let problem = assert_problem(response, 400, "bad_request").await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("duplicate key"), "{method} {path}: {detail}");
    }

    let page: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(page["total"], 1, "no task was created: {page}");
    let kept: Value = app.get_as(&user.token, &task_path).await.json().await.unwrap();
    assert_eq!((kept["title"].as_str(), kept["completed"].as_bool()), (Some("kept"), Some(false)));
    let kept: Value = app.get_as(&user.token, &project_path).await.json().await.unwrap();
    assert_eq!(kept["name"], "P");
    let me: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
    assert!(me["name"].is_null());
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1, "no account was registered");
}

#[tokio::test]
async fn a_well_formed_body_of_the_wrong_shape_is_still_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "t"})).await;
    let path = format!("/api/v1/tasks/{}/complete", task["id"].as_str().unwrap());
    let response = send_raw(&app, Some(&user.token), Method::PATCH, &path, r#"{"completed": "yes"}"#).await;
    assert_problem(response, 422, "validation_failed").await;
    let response =
        send_raw(&app, Some(&user.token), Method::PATCH, "/api/v1/users/me", r#"{"nickname": "x"}"#).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "nickname");
}
