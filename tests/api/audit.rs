//! Account events are audit-logged with who, from where and which request, never secrets.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TEST_PASSWORD, TestApp, audit_events};

#[tokio::test]
async fn account_events_are_audit_logged_without_secrets() {
    let app = TestApp::spawn().await;
    let email = format!("audited-{}@example.com", uuid::Uuid::new_v4().simple());
    let user = app.register(&email).await;
    let wrong = json!({"email": email, "password": "definitely-not-it"});
    let failed = app.post_json("/api/v1/auth/login", &wrong).await;
    let failed_request_id = failed.headers()["x-request-id"].to_str().unwrap().to_owned();
    let login =
        app.post_json("/api/v1/auth/login", &json!({"email": email, "password": TEST_PASSWORD})).await;
    assert_eq!(login.status(), 200);
    app.send_as(&user.token, Method::POST, "/api/v1/auth/logout", None).await;
    let fresh =
        app.post_json("/api/v1/auth/login", &json!({"email": email, "password": TEST_PASSWORD})).await;
    let token = fresh.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    app.send_as(&token, Method::DELETE, "/api/v1/users/me", None).await;

    let id = user.id.to_string();
    let events = audit_events();
    let mine: Vec<_> = events.iter().filter(|e| e.get("user_id") == Some(&id)).collect();
    let kinds: Vec<&str> = mine.iter().map(|e| e["event"].as_str()).collect();
    // The helper verifies the address through the emailed link's page right after registering.
    assert_eq!(
        kinds,
        [
            "registered",
            "email_verified",
            "login_succeeded",
            "logged_out",
            "login_succeeded",
            "account_deleted"
        ]
    );
    for event in &mine {
        assert_eq!(event["ip"], "127.0.0.1");
        assert!(!event["request_id"].is_empty());
    }

    let failure = events
        .iter()
        .find(|e| e["event"] == "login_failed" && e.get("request_id") == Some(&failed_request_id))
        .expect("the failed login is logged under its request id");
    assert!(failure.get("user_id").is_none(), "a failure names no account");
    assert_eq!(failure["email_hash"], todo::web::auth::email_digest(&email));

    let everything = format!("{events:?}");
    assert!(!everything.contains(TEST_PASSWORD) && !everything.contains("definitely-not-it"));
    assert!(!everything.contains(&user.token) && !everything.contains(&token));
    assert!(!everything.contains(&email), "emails appear only as digests");
}
