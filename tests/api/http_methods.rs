//! Methods as HTTP clients and tooling expect them: every read answers HEAD as it answers GET,
//! minus the body, and a known path asked with a method it does not serve is a 405 naming the
//! methods it does serve, not a 404.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

async fn send(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// The headers a client reads from a GET, which HEAD must repeat.
fn described(response: &Response) -> (u16, [Option<String>; 4]) {
    let names = ["etag", "content-type", "content-length", "cache-control"];
    (response.status().as_u16(), names.map(|name| header(response, name)))
}

/// Sends HEAD and the same GET, asserts they agree on status and headers and that HEAD has no
/// body, and returns the HEAD response's headers.
async fn head_matches_get(
    app: &TestApp,
    user: &TestUser,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, [Option<String>; 4]) {
    let get = send(app, Some(&user.token), Method::GET, path, headers).await;
    let head = send(app, Some(&user.token), Method::HEAD, path, headers).await;
    let expected = described(&get);
    assert_eq!(described(&head), expected, "HEAD {path} answers as GET does");
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path} has no body");
    expected
}

fn allowed(response: &Response) -> BTreeSet<String> {
    let allow = header(response, "allow").expect("a 405 names the allowed methods");
    allow.split(',').map(|m| m.trim().to_owned()).collect()
}

fn set(methods: &[&str]) -> BTreeSet<String> {
    methods.iter().map(|m| (*m).to_owned()).collect()
}

#[tokio::test]
async fn head_on_a_task_answers_like_get_without_a_body() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Peek at me"})).await;
    let id = task["id"].as_str().unwrap();
    for path in [format!("/api/v1/tasks/{id}"), format!("/api/v1/users/{}/tasks/{id}", user.id)] {
        let (status, [etag, content_type, length, _]) = head_matches_get(&app, &user, &path, &[]).await;
        assert_eq!(status, 200);
        assert!(etag.is_some(), "HEAD {path} carries the ETag");
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert!(length.is_some_and(|l| l.parse::<u64>().unwrap() > 0), "the length GET would send");

        let tag = etag.unwrap();
        let (status, [cached_tag, ..]) =
            head_matches_get(&app, &user, &path, &[("if-none-match", &tag)]).await;
        assert_eq!(status, 304, "a matching If-None-Match is a 304 for HEAD too");
        assert_eq!(cached_tag, Some(tag));
    }

    let missing = format!("/api/v1/tasks/{}", uuid::Uuid::new_v4());
    let (status, [_, content_type, ..]) = head_matches_get(&app, &user, &missing, &[]).await;
    assert_eq!((status, content_type.as_deref()), (404, Some("application/problem+json")));

    let anonymous = send(&app, None, Method::HEAD, &format!("/api/v1/tasks/{id}"), &[]).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(header(&anonymous, "www-authenticate").as_deref(), Some("Bearer"));
    assert!(anonymous.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn every_read_route_answers_head() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    app.create_task(&user, json!({"title": "Listed"})).await;
    let project =
        app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "P"}))).await;
    let project: Value = project.json().await.unwrap();
    for path in [
        "/api/v1/tasks".to_owned(),
        "/api/v1/tasks/trash".to_owned(),
        "/api/v1/projects".to_owned(),
        format!("/api/v1/projects/{}", project["id"].as_str().unwrap()),
        "/api/v1/users/me".to_owned(),
        "/api/v1/changes".to_owned(),
        "/health".to_owned(),
    ] {
        let (status, [_, content_type, ..]) = head_matches_get(&app, &user, &path, &[]).await;
        assert_eq!(status, 200, "HEAD {path}");
        assert_eq!(content_type.as_deref(), Some("application/json"), "HEAD {path}");
    }
}

#[tokio::test]
async fn head_on_the_event_stream_is_refused_rather_than_left_hanging() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for path in ["/api/v1/events".to_owned(), format!("/api/v1/users/{}/events", user.id)] {
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            send(&app, Some(&user.token), Method::HEAD, &path, &[]),
        )
        .await
        .expect("HEAD on a stream answers at once");
        assert_eq!(response.status(), 405, "HEAD {path}");
        assert_eq!(allowed(&response), set(&["GET"]));
    }
}

#[tokio::test]
async fn a_known_path_asked_with_another_method_is_405_naming_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "T"})).await;
    let project =
        app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "P"}))).await;
    let project: Value = project.json().await.unwrap();
    let project_path = format!("/api/v1/projects/{}", project["id"].as_str().unwrap());
    let cases = [
        (Method::PUT, project_path.clone(), &["GET", "HEAD", "PATCH", "DELETE"][..]),
        (Method::POST, project_path, &["GET", "HEAD", "PATCH", "DELETE"]),
        (Method::DELETE, "/api/v1/tasks".to_owned(), &["GET", "HEAD", "POST"]),
        (Method::PUT, "/api/v1/users/me".to_owned(), &["GET", "HEAD", "PATCH", "DELETE"]),
        (Method::GET, "/api/v1/auth/login".to_owned(), &["POST"]),
        (Method::HEAD, "/api/v1/auth/login".to_owned(), &["POST"]),
        (Method::PATCH, "/api/v1/projects".to_owned(), &["GET", "HEAD", "POST"]),
        (Method::GET, format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap()), &["POST"]),
        (Method::DELETE, format!("/api/v1/users/{}/tasks", user.id), &["GET", "HEAD", "POST"]),
        (Method::POST, "/health".to_owned(), &["GET", "HEAD"]),
    ];
    for (method, path, methods) in cases {
        let response = send(&app, Some(&user.token), method.clone(), &path, &[]).await;
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(allowed(&response), set(methods), "{method} {path}");
        if method == Method::HEAD {
            continue;
        }
        let body = assert_problem(response, 405, "method_not_allowed").await;
        assert_eq!(body["instance"], path.as_str());
        assert!(body["detail"].as_str().unwrap().contains(method.as_str()), "{body}");
    }

    // Without a token too: the method is wrong whoever asks.
    let anonymous = send(&app, None, Method::PUT, "/api/v1/tasks", &[]).await;
    assert_eq!(allowed(&anonymous), set(&["GET", "HEAD", "POST"]));
    assert_problem(anonymous, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn an_unknown_path_stays_404_whatever_the_method() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        for path in ["/api/v1/no-such-thing", "/api/v1/tasks/a/b/c", "/nowhere"] {
            let response = send(&app, Some(&user.token), method.clone(), path, &[]).await;
            assert_eq!(header(&response, "allow"), None, "{method} {path}");
            assert_problem(response, 404, "not_found").await;
        }
    }
}
