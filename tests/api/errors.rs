//! Malformed requests get problem documents, never a 5xx or an HTML page.

use crate::helpers::{TEST_PASSWORD, TestApp, assert_problem};

const REGISTER: &str = "/api/v1/auth/register";

#[tokio::test]
async fn malformed_json_is_a_400_problem_document() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url(REGISTER))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com", "password": "#)
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 400, "bad_request").await;
    assert!(body["detail"].as_str().unwrap().contains("Malformed JSON"), "{body}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_problem_document() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url(REGISTER))
        .header("content-type", "text/plain")
        .body(format!("email=a@example.com&password={TEST_PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem_document() {
    let app = TestApp::spawn_with(|s| s.server.body_limit_bytes = 1024).await;
    let body = serde_json::json!({"email": "a@example.com", "password": "x".repeat(2048)});
    let response = app.post_json(REGISTER, &body).await;
    let problem = assert_problem(response, 413, "payload_too_large").await;
    assert!(problem["detail"].as_str().unwrap().contains("1024"));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_a_413_problem_document() {
    let app = TestApp::spawn_with(|s| s.server.body_limit_bytes = 1024).await;
    let chunks: Vec<Result<String, std::io::Error>> =
        vec![Ok(r#"{"email":"a@example.com","password":""#.into()), Ok("x".repeat(4096)), Ok(r#""}"#.into())];
    let response = app
        .client
        .post(app.url(REGISTER))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn wrong_types_in_well_formed_json_are_422s() {
    let app = TestApp::spawn().await;
    let response = app.post_json(REGISTER, &serde_json::json!({"email": 5, "password": TEST_PASSWORD})).await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn responses_forbid_sniffing_and_api_answers_forbid_caching() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let header = |response: &reqwest::Response, name: &str| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let health = app.get("/health").await;
    assert_eq!(header(&health, "x-content-type-options").as_deref(), Some("nosniff"));
    let me = app.get_as(&user.token, "/api/v1/users/me").await;
    assert_eq!(me.status(), 200);
    assert_eq!(header(&me, "x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header(&me, "cache-control").as_deref(), Some("no-store"), "personal data is not cached");
    let login = app
        .post_json("/api/v1/auth/login", &serde_json::json!({"email": user.email, "password": TEST_PASSWORD}))
        .await;
    assert_eq!(login.status(), 200);
    assert_eq!(header(&login, "cache-control").as_deref(), Some("no-store"), "nor are tokens");
    let problem = app.get_as(&user.token, "/api/v1/tasks/not-a-task").await;
    assert_eq!(header(&problem, "cache-control").as_deref(), Some("no-store"));
}
