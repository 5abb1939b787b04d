//! Personal API tokens as their owner sees them: created with the secret shown once, listed
//! without it, used as a bearer token, bounded in number and lifetime, and ended everywhere by
//! revocation, a password change or the account's deletion.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{LogWatch, TEST_PASSWORD, TestApp, TestUser, assert_problem, audit_events, eventually};
use crate::sse::{EventStream, Message};

async fn create(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.send_as(&user.token, Method::POST, "/api/v1/tokens", Some(&body)).await
}

/// A token with these scopes: its secret and id.
async fn token(app: &TestApp, user: &TestUser, scopes: &[&str]) -> (String, String) {
    let response = create(app, user, json!({"name": "script", "scopes": scopes})).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (body["token"].as_str().unwrap().to_owned(), body["id"].as_str().unwrap().to_owned())
}

async fn listed(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let response = app.get_as(&user.token, "/api/v1/tokens").await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_secret_is_shown_once_works_as_a_bearer_token_and_is_never_listed_or_logged() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let body = json!({"name": "  backup script ", "scopes": ["tasks:read", "tasks:read", "account"]});
    let response = create(&app, &user, body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: Value = response.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    let watch = LogWatch::new(&secret);
    assert!(secret.starts_with("todo_pat_") && secret.len() == 52, "{secret}");
    assert_eq!(created["name"], "backup script");
    assert_eq!(created["scopes"], json!(["tasks:read", "account"]), "de-duplicated");
    assert_eq!(created["hint"], format!("todo_pat_…{}", &secret[secret.len() - 4..]));
    assert_eq!(created["expires_at"], Value::Null);
    assert_eq!(created["last_used_at"], Value::Null);

    let me = app.get_as(&secret, "/api/v1/users/me").await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["id"], user.id.to_string());
    assert_eq!(app.get_as(&secret, "/api/v1/tasks").await.status(), 200);
    // A bad request with the token, which logs an error path too.
    assert_eq!(app.get_as(&secret, "/api/v1/tasks?limit=1000").await.status(), 422);

    let response = app.get_as(&user.token, "/api/v1/tokens").await;
    let text = response.text().await.unwrap();
    assert!(!text.contains(&secret[9..]), "the list never carries the secret: {text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let item = &list["items"][0];
    assert_eq!(item["id"], created["id"]);
    assert_eq!(item["hint"], created["hint"]);
    assert!(item.get("token").is_none());

    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT digest FROM api_tokens").fetch_one(&app.pool).await.unwrap();
    assert_ne!(stored, secret.as_bytes(), "only a digest is stored");
    assert_eq!(watch.hits(), 0, "the secret appeared in a log event or span");
    let audited: Vec<_> = audit_events()
        .into_iter()
        .filter(|e| {
            e.get("user_id") == Some(&user.id.to_string())
                && e.get("event").map(String::as_str) == Some("api_token_created")
        })
        .collect();
    assert_eq!(audited.len(), 1);
    assert!(audited[0].values().all(|v| !v.contains(&secret[9..])));
}

#[tokio::test]
async fn names_scopes_and_expiry_are_checked_and_the_field_named() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let in_a_year = |days: i64| (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
    for (body, field) in [
        (json!({"name": "", "scopes": ["tasks:read"]}), "name"),
        (json!({"name": "x".repeat(101), "scopes": ["tasks:read"]}), "name"),
        (json!({"name": "n", "scopes": []}), "scopes"),
        (json!({"name": "n", "scopes": ["tasks:delete"]}), "scopes"),
        (json!({"name": "n", "scopes": ["tasks:read"], "expires_at": in_a_year(367)}), "expires_at"),
        (json!({"name": "n", "scopes": ["tasks:read"], "expires_at": "2020-01-01T00:00:00Z"}), "expires_at"),
    ] {
        let problem = assert_problem(create(&app, &user, body.clone()).await, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    let body = json!({"name": "n", "scopes": ["tasks:read"], "expires_at": in_a_year(360)});
    assert_eq!(create(&app, &user, body).await.status(), 201);
    assert_eq!(listed(&app, &user).await.len(), 1, "no refused request made a token");
}

#[tokio::test]
async fn an_expired_token_answers_401_token_expired() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let response =
        create(&app, &user, json!({"name": "n", "scopes": ["tasks:read"], "expires_at": soon})).await;
    let secret = response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_as(&secret, "/api/v1/tasks").await.status(), 200);
    // Five minutes later, as far as the database is concerned.
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1")
        .bind(user.id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_problem(app.get_as(&secret, "/api/v1/tasks").await, 401, "token_expired").await;
    // Made-up and mangled tokens are simply invalid.
    // The last character changed to another one (replacing it with a fixed letter would leave
    // one token in 64 unchanged).
    let last = if secret.ends_with('A') { 'B' } else { 'A' };
    let mangled = format!("{}{last}", &secret[..secret.len() - 1]);
    assert_problem(app.get_as(&mangled, "/api/v1/tasks").await, 401, "token_invalid").await;
    assert_problem(app.get_as("todo_pat_x", "/api/v1/tasks").await, 401, "token_invalid").await;
}

#[tokio::test]
async fn an_account_holds_at_most_50_live_tokens_even_when_they_are_created_at_once() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let requests = (0..60).map(|i| {
        let body = json!({"name": format!("token {i}"), "scopes": ["tasks:read"]});
        let (app, user) = (&app, &user);
        async move { create(app, user, body).await }
    });
    let responses = futures::future::join_all(requests).await;
    let mut created = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            _ => {
                assert_problem(response, 409, "token_limit_reached").await;
            }
        }
    }
    assert_eq!(created, 50);
    assert_eq!(listed(&app, &user).await.len(), 50);
    // Revoking one makes room for one.
    let first = listed(&app, &user).await[0]["id"].as_str().unwrap().to_owned();
    let revoke = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tokens/{first}"), None).await;
    assert_eq!(revoke.status(), 204);
    assert_eq!(create(&app, &user, json!({"name": "again", "scopes": ["tasks:read"]})).await.status(), 201);
    let full = create(&app, &user, json!({"name": "one too many", "scopes": ["tasks:read"]})).await;
    assert_problem(full, 409, "token_limit_reached").await;
}

#[tokio::test]
async fn revoking_a_token_ends_it_and_its_event_stream_on_another_process_within_a_second() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (secret, id) = token(&app, &user, &["tasks:read"]).await;
    let other = app.second_instance().await;
    assert_eq!(other.get_as(&secret, "/api/v1/tasks").await.status(), 200);
    let mut stream = EventStream::bearer(&other.address, &secret).await;

    let response = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(response.status(), 204);
    let started = Instant::now();
    assert_problem(app.get_as(&secret, "/api/v1/tasks").await, 401, "token_revoked").await;
    let refused = eventually("the other process refuses the token", Duration::from_secs(1), || async {
        let response = other.get_as(&secret, "/api/v1/tasks").await;
        (response.status() == 401).then_some(response)
    })
    .await;
    assert_problem(refused, 401, "token_revoked").await;
    let last = stream.until_end(Duration::from_secs(1)).await;
    assert_eq!(last, [Message::Comment("the token was revoked".into())]);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());

    // Gone from the list; a second revocation, like another user's id, is a 404.
    assert!(listed(&app, &user).await.is_empty());
    let again = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_problem(again, 404, "not_found").await;
    let revoked = audit_events().into_iter().any(|e| {
        e.get("event").map(String::as_str) == Some("api_token_revoked") && e.get("token_id") == Some(&id)
    });
    assert!(revoked, "the revocation is in the audit log");
}

#[tokio::test]
async fn another_users_token_cannot_be_revoked_or_seen() {
    let app = TestApp::spawn().await;
    let (alice, mallory) = (app.new_user().await, app.new_user().await);
    let (secret, id) = token(&app, &alice, &["tasks:read"]).await;
    let response = app.send_as(&mallory.token, Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_problem(response, 404, "not_found").await;
    assert!(listed(&app, &mallory).await.is_empty());
    assert_eq!(app.get_as(&secret, "/api/v1/tasks").await.status(), 200, "still Alice's and working");
}

#[tokio::test]
async fn changing_the_password_ends_every_api_token_on_every_process() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (first, _) = token(&app, &user, &["tasks:read"]).await;
    let (second, _) = token(&app, &user, &["account"]).await;
    let other = app.second_instance().await;
    assert_eq!(other.get_as(&first, "/api/v1/tasks").await.status(), 200);

    let wrong = json!({"current_password": "not it at all", "new_password": "a brand new password"});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/users/me/password", Some(&wrong)).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "current_password");
    assert_eq!(app.get_as(&first, "/api/v1/tasks").await.status(), 200, "a refused change ends nothing");

    let change = json!({"current_password": TEST_PASSWORD, "new_password": "a brand new password"});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/users/me/password", Some(&change)).await;
    assert_eq!(response.status(), 204);
    assert_problem(app.get_as(&second, "/api/v1/users/me").await, 401, "token_revoked").await;
    eventually("the other process refuses the token", Duration::from_secs(1), || async {
        (other.get_as(&first, "/api/v1/tasks").await.status() == 401).then_some(())
    })
    .await;
    // The new password signs in; the old one does not.
    let login = |password: &str| json!({"email": user.email, "password": password});
    assert_eq!(app.post_json("/api/v1/auth/login", &login("a brand new password")).await.status(), 200);
    assert_eq!(app.post_json("/api/v1/auth/login", &login(TEST_PASSWORD)).await.status(), 401);
}

#[tokio::test]
async fn deleting_the_account_ends_its_tokens_on_every_process() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (secret, _) = token(&app, &user, &["tasks:read", "tasks:write"]).await;
    let other = app.second_instance().await;
    assert_eq!(other.get_as(&secret, "/api/v1/tasks").await.status(), 200);
    assert_eq!(app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None).await.status(), 204);
    assert_problem(app.get_as(&secret, "/api/v1/tasks").await, 401, "token_invalid").await;
    eventually("the other process refuses the token", Duration::from_secs(1), || async {
        (other.get_as(&secret, "/api/v1/tasks").await.status() == 401).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_token_spends_its_users_rate_limit() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.user_reads_per_minute = 5;
    })
    .await;
    let user = app.new_user().await;
    let (secret, _) = token(&app, &user, &["tasks:read"]).await;
    for _ in 0..3 {
        assert_eq!(app.get_as(&user.token, "/api/v1/tasks").await.status(), 200);
    }
    for _ in 0..2 {
        assert_eq!(app.get_as(&secret, "/api/v1/tasks").await.status(), 200);
    }
    // Five reads between the login and the token: the budget is one.
    let limited = app.get_as(&secret, "/api/v1/tasks").await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_problem(limited, 429, "rate_limited").await;
    assert_problem(app.get_as(&user.token, "/api/v1/tasks").await, 429, "rate_limited").await;
}

#[tokio::test]
async fn last_used_at_is_recorded_but_written_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (secret, _) = token(&app, &user, &["tasks:read"]).await;
    assert_eq!(listed(&app, &user).await[0]["last_used_at"], Value::Null);

    assert_eq!(app.get_as(&secret, "/api/v1/tasks").await.status(), 200);
    let first = listed(&app, &user).await[0]["last_used_at"].clone();
    assert!(first.is_string(), "recorded on first use");
    for _ in 0..5 {
        assert_eq!(app.get_as(&secret, "/api/v1/tasks").await.status(), 200);
    }
    assert_eq!(listed(&app, &user).await[0]["last_used_at"], first, "not rewritten within the minute");

    // A minute on, the next use records itself again.
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = last_used_at - interval '61 seconds' WHERE user_id = $1",
    )
    .bind(user.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let aged = listed(&app, &user).await[0]["last_used_at"].clone();
    assert_eq!(app.get_as(&secret, "/api/v1/tasks").await.status(), 200);
    let later = listed(&app, &user).await[0]["last_used_at"].clone();
    assert_ne!(later, aged);
    assert!(later.as_str().unwrap() >= first.as_str().unwrap());
}

#[tokio::test]
async fn maintenance_forgets_a_token_a_month_after_it_was_revoked_or_expired() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (revoked_secret, revoked) = token(&app, &user, &["tasks:read"]).await;
    let (expired_secret, expired) = token(&app, &user, &["tasks:read"]).await;
    let (recent_secret, recently_revoked) = token(&app, &user, &["tasks:read"]).await;
    let (live_secret, live) = token(&app, &user, &["tasks:read"]).await;
    for id in [&revoked, &recently_revoked] {
        let response = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
        assert_eq!(response.status(), 204);
    }
    // A month and a day on, as far as the database is concerned, for two of them.
    let age = |sql: &'static str, id: &str| {
        let id: uuid::Uuid = id.parse().unwrap();
        let pool = app.pool.clone();
        async move { sqlx::query(sql).bind(id).execute(&pool).await.unwrap() }
    };
    age("UPDATE api_tokens SET revoked_at = now() - interval '31 days' WHERE id = $1", &revoked).await;
    age("UPDATE api_tokens SET expires_at = now() - interval '31 days' WHERE id = $1", &expired).await;
    assert_problem(app.get_as(&expired_secret, "/api/v1/tasks").await, 401, "token_expired").await;

    assert_eq!(app.purge(None).await.api_tokens, 2);
    // Forgotten: the old ones are unknown now; the recent revocation is still told as such.
    assert_problem(app.get_as(&revoked_secret, "/api/v1/tasks").await, 401, "token_invalid").await;
    assert_problem(app.get_as(&expired_secret, "/api/v1/tasks").await, 401, "token_invalid").await;
    assert_problem(app.get_as(&recent_secret, "/api/v1/tasks").await, 401, "token_revoked").await;
    let left: Vec<Value> = listed(&app, &user).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], live.as_str());
    assert_eq!(app.get_as(&live_secret, "/api/v1/tasks").await.status(), 200);
}
