//! Every task rule is a 422 naming the field, and a rejected write changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn each_broken_rule_on_create_is_a_422_naming_its_field() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let due = "2030-01-01T10:00:00Z";
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({}), &["title"]),
        (json!({"title": "   "}), &["title"]),
        (json!({"title": "x".repeat(201)}), &["title"]),
        (json!({"title": 42}), &["title"]),
        (json!({"title": "t", "description": "d".repeat(2001)}), &["description"]),
        (json!({"title": "t", "priority": "urgent"}), &["priority"]),
        (json!({"title": "t", "priority": null}), &["priority"]),
        (json!({"title": "t", "tags": ["ok", ""]}), &["tags"]),
        (json!({"title": "t", "tags": ["x".repeat(51)]}), &["tags"]),
        (json!({"title": "t", "tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}), &["tags"]),
        (json!({"title": "t", "tags": "work"}), &["tags"]),
        (json!({"title": "t", "due_at": "tomorrow"}), &["due_at"]),
        (json!({"title": "t", "due_at": "2030-01-01T10:00:00"}), &["due_at"]),
        (json!({"title": "t", "timezone": "Moon/Base"}), &["timezone"]),
        (json!({"title": "t", "due_at": due, "reminder_at": "2030-01-01T10:00:01Z"}), &["reminder_at"]),
        (json!({"title": "t", "recurrence_rule": "FREQ=DAILY"}), &["recurrence_rule"]),
        (json!({"title": "t", "due_at": due, "recurrence_rule": "FREQ=OFTEN"}), &["recurrence_rule"]),
        (json!({"title": "t", "due_at": due, "recurrence_rule": "FREQ=MINUTELY"}), &["recurrence_rule"]),
        (json!({"title": "t", "due_at": due, "recurrence_anchor": "whenever"}), &["recurrence_anchor"]),
        (json!({"title": "t", "colour": "red"}), &["colour"]),
        (json!({"title": "nul\u{0}byte"}), &["title"]),
        (json!({"title": "t", "description": "nul\u{0}"}), &["description"]),
        (json!({"title": "t", "tags": ["a\u{0}"]}), &["tags"]),
        (json!({"title": "", "priority": "urgent", "due_at": "soon"}), &["title", "priority", "due_at"]),
    ];
    for (body, expected) in cases {
        let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(fields(&problem), expected, "for {body}");
    }
    let not_an_object =
        app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&json!(["title"]))).await;
    assert_eq!(fields(&assert_problem(not_an_object, 422, "validation_failed").await), ["body"]);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0, "no rejected create wrote anything");
}

#[tokio::test]
async fn a_patch_is_checked_against_the_merged_task_and_rejected_whole() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Series", "due_at": "2030-01-01T10:00:00Z", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let cases: Vec<(Value, &str)> = vec![
        (json!({"due_at": null}), "recurrence_rule"),
        (json!({"reminder_at": "2030-01-01T11:00:00Z"}), "reminder_at"),
        (json!({"title": null}), "title"),
        (json!({"completed": null}), "completed"),
        (json!({"timezone": null}), "timezone"),
        (json!({"title": "ok", "priority": "nope"}), "priority"),
    ];
    for (body, field) in cases {
        let response = app.send_as(&user.token, Method::PATCH, &path, Some(&body)).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(fields(&problem), [field], "for {body}");
    }
    let now: Value = app.get_as(&user.token, &path).await.json().await.unwrap();
    assert_eq!(now, task, "no rejected patch changed the task");

    let made_one_off: Value = app
        .send_as(&user.token, Method::PATCH, &path, Some(&json!({"recurrence_rule": null, "due_at": null})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(made_one_off["is_recurring"], false);
}

#[tokio::test]
async fn malformed_json_bodies_on_task_routes_are_400() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let response = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "bad_request").await;
}
