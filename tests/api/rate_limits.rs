//! Rate limits: per address on the auth routes, per user on the API, all off with one switch.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TEST_PASSWORD, TestApp, assert_problem};

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Checks a 429 the way a client reads it: a problem document, when to retry, and the budget.
async fn assert_rate_limited(response: reqwest::Response, limit: u32) {
    let retry_after: u64 = header(&response, "retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(header(&response, "ratelimit-limit"), Some(limit.to_string()));
    assert_eq!(header(&response, "ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(header(&response, "ratelimit-reset"), Some(retry_after.to_string()));
    assert_problem(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn password_guessing_from_one_address_is_stopped_with_429() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.auth_per_ip_per_minute = 10;
    })
    .await;
    let victim = app.new_user().await;
    let guess = json!({"email": victim.email, "password": "wrong-password"});
    let mut statuses = Vec::new();
    for _ in 0..19 {
        statuses.push(app.post_json("/api/v1/auth/login", &guess).await.status().as_u16());
    }
    // Registering used one request of the budget.
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 9, "{statuses:?}");
    assert!(statuses[9..].iter().all(|s| *s == 429), "{statuses:?}");
    let last = app.post_json("/api/v1/auth/login", &guess).await;
    assert_rate_limited(last, 10).await;
    // The right password is refused too while the address is limited: that is the point.
    let right = json!({"email": victim.email, "password": TEST_PASSWORD});
    assert_eq!(app.post_json("/api/v1/auth/login", &right).await.status(), 429);
    // Other routes are not the auth budget: the victim's own API calls still work.
    assert_eq!(app.get_as(&victim.token, "/api/v1/users/me").await.status(), 200);
}

#[tokio::test]
async fn each_user_has_a_write_budget_and_a_separate_read_budget() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.user_writes_per_minute = 5;
        s.rate_limit.user_reads_per_minute = 8;
    })
    .await;
    let user = app.new_user().await;
    let create = json!({"title": "Limited"});
    for _ in 0..5 {
        let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&create)).await;
        assert_eq!(response.status(), 201);
    }
    let over = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&create)).await;
    assert_rate_limited(over, 5).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 5, "a limited write is not applied");

    for _ in 0..8 {
        assert_eq!(
            app.get_as(&user.token, "/api/v1/tasks").await.status(),
            200,
            "reads have their own budget"
        );
    }
    assert_rate_limited(app.get_as(&user.token, "/api/v1/tasks").await, 8).await;

    let other = app.new_user().await;
    let response = app.send_as(&other.token, Method::POST, "/api/v1/tasks", Some(&create)).await;
    assert_eq!(response.status(), 201, "one user's limit is not another's");
}

#[tokio::test]
async fn one_switch_turns_every_limit_off() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = false;
        s.rate_limit.auth_per_ip_per_minute = 1;
        s.rate_limit.user_writes_per_minute = 1;
    })
    .await;
    let user = app.new_user().await;
    for _ in 0..3 {
        let login = json!({"email": user.email, "password": TEST_PASSWORD});
        assert_eq!(app.post_json("/api/v1/auth/login", &login).await.status(), 200);
        let create = json!({"title": "Unlimited"});
        assert_eq!(
            app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&create)).await.status(),
            201
        );
    }
}

#[tokio::test]
async fn a_batch_larger_than_the_whole_write_budget_is_a_422_not_an_endless_429() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.user_writes_per_minute = 5;
    })
    .await;
    let user = app.new_user().await;
    let operations: Vec<serde_json::Value> =
        (0..6).map(|i| json!({"op": "create", "task": {"title": format!("t{i}")}})).collect();
    let body = json!({"operations": operations});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "operations");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains('5'), "{problem}");
}
