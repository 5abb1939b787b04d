use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn me_returns_the_profile_without_secrets() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let response = app.get_as(&user.token, "/api/v1/users/me").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], user.id.to_string());
    assert_eq!(body["email"], user.email);
    assert_eq!(body["timezone"], "UTC");
    assert_eq!(body["email_reminders"], true);
    assert!(body["name"].is_null());
    assert_eq!(body["email_verified"], true, "the helper followed the verification link");
    assert!(body["pending_email"].is_null());
    assert!(body["agenda_time"].is_null(), "no daily agenda until asked for");
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys.len(),
        9,
        "only id, email, name, timezone, email_reminders, email_verified, pending_email, agenda_time, created_at: {keys:?}"
    );
}

#[tokio::test]
async fn patching_the_profile_changes_only_the_fields_sent() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let patch = |body: Value| {
        let (app, token) = (&app, &user.token);
        async move { app.send_as(token, Method::PATCH, "/api/v1/users/me", Some(&body)).await }
    };

    let body: Value =
        patch(json!({"name": "Erin", "timezone": "America/New_York"})).await.json().await.unwrap();
    assert_eq!((body["name"].as_str(), body["timezone"].as_str()), (Some("Erin"), Some("America/New_York")));

    let body: Value = patch(json!({"email_reminders": false})).await.json().await.unwrap();
    assert_eq!(body["name"], "Erin", "absent fields stay");
    assert_eq!(body["email_reminders"], false);

    let body: Value = patch(json!({"name": null})).await.json().await.unwrap();
    assert!(body["name"].is_null(), "null clears the name");
    assert_eq!(body["timezone"], "America/New_York");

    let stored: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(stored, body);
}

#[tokio::test]
async fn invalid_profile_changes_are_422s_and_change_nothing() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let cases = [
        (json!({"timezone": "Nowhere/Land"}), "timezone"),
        (json!({"timezone": null}), "timezone"),
        (json!({"email_reminders": null}), "email_reminders"),
        (json!({"name": ""}), "name"),
        (json!({"nickname": "x"}), "nickname"),
        (json!({"email_reminders": "yes"}), "body"),
    ];
    for (body, field) in cases {
        let response = app.send_as(&user.token, Method::PATCH, "/api/v1/users/me", Some(&body)).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "for {body}: {problem}");
    }
    let stored: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(stored["timezone"], "UTC");
    assert_eq!(stored["email_reminders"], true);
}

#[tokio::test]
async fn export_contains_the_account_and_no_password_hash() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let response = app.get_as(&user.token, "/api/v1/users/me/export").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("argon2") && !text.contains("password"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["user"]["email"], user.email);
    assert!(body["exported_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn deleting_the_account_removes_it_and_frees_the_email() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    assert_eq!(app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None).await.status(), 204);
    let left: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM users").fetch_all(&app.pool).await.unwrap();
    assert_eq!(left, vec![other.id], "only the caller's account is gone");
    app.register(&user.email).await;
}

#[tokio::test]
async fn an_address_the_mailer_cannot_use_is_refused_at_registration_and_on_patch() {
    let app = TestApp::spawn().await;
    // Passes a loose "something@domain" check, but lettre cannot build a To header from it, so
    // every reminder for it would fail.
    let unusable = r#"a<b>"c@example.com"#;
    let body = json!({"email": unusable, "password": "correct horse battery"});
    let problem =
        assert_problem(app.post_json("/api/v1/auth/register", &body).await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0);

    // The profile route takes no email at all, so it cannot store one either.
    let user = app.new_user().await;
    let response =
        app.send_as(&user.token, Method::PATCH, "/api/v1/users/me", Some(&json!({"email": unusable}))).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    let me: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(me["email"], user.email);
}
