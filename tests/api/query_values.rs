//! Query parameters read the same on every route: a repeated one is refused (400), and a number
//! too large for 64 bits is a bad value (422 naming the parameter), not a malformed request.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn integers_beyond_64_bits_are_a_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let huge = "99999999999999999999";
    for (path, field) in [
        (format!("/api/v1/tasks?limit={huge}"), "limit"),
        (format!("/api/v1/tasks?limit=-{huge}"), "limit"),
        (format!("/api/v1/tasks?offset={huge}"), "offset"),
        (format!("/api/v1/tasks/trash?limit={huge}"), "limit"),
        (format!("/api/v1/changes?since={huge}"), "since"),
        (format!("/api/v1/changes?limit={huge}"), "limit"),
        (format!("/api/v1/events?since={huge}"), "since"),
    ] {
        let problem = assert_problem(app.get_as(&user.token, &path).await, 422, "validation_failed").await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
        assert_eq!(fields, [field], "{path}: {problem}");
    }
    // A value that is no number at all is still a malformed parameter.
    let response = app.get_as(&user.token, "/api/v1/tasks?limit=ten").await;
    let problem: Value = assert_problem(response, 400, "bad_request").await;
    assert!(problem["detail"].as_str().unwrap().contains("limit"));
}

#[tokio::test]
async fn repeated_parameters_on_changes_and_events_are_refused_as_on_tasks() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for path in [
        "/api/v1/tasks?limit=5&limit=6",
        "/api/v1/changes?since=0&since=5",
        "/api/v1/changes?limit=1&limit=2",
        "/api/v1/events?since=0&since=5",
    ] {
        let problem = assert_problem(app.get_as(&user.token, path).await, 400, "bad_request").await;
        assert!(problem["detail"].as_str().unwrap().contains("only once"), "{path}: {problem}");
    }
    let response = app.send_as(&user.token, Method::POST, "/api/v1/events/tickets", None).await;
    let ticket: Value = response.json().await.unwrap();
    let ticket = ticket["ticket"].as_str().unwrap();
    let twice = app.url(&format!("/api/v1/events?ticket={ticket}&ticket={ticket}"));
    assert_problem(app.client.get(twice).send().await.unwrap(), 400, "bad_request").await;
}
