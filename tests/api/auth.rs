use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::time::Duration;

use uuid::Uuid;

use crate::helpers::{TEST_PASSWORD, TestApp, assert_problem, eventually};

#[tokio::test]
async fn registering_returns_a_bearer_token_and_the_user() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "  Ann@Example.com ", "password": TEST_PASSWORD, "name": "Ann", "timezone": "Europe/Paris"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    let user = &body["user"];
    assert_eq!(user["email"], "Ann@Example.com");
    assert_eq!(user["name"], "Ann");
    assert_eq!(user["timezone"], "Europe/Paris");
    assert_eq!(user["email_reminders"], true);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password_hash").is_none() && !body.to_string().contains("argon2"));
}

#[tokio::test]
async fn the_stored_password_is_an_argon2id_hash() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(TEST_PASSWORD));
}

#[tokio::test]
async fn registering_a_taken_email_in_any_case_is_409() {
    let app = TestApp::spawn().await;
    app.register("bob@example.com").await;
    let response = app
        .post_json("/api/v1/auth/register", &json!({"email": "BOB@example.com", "password": TEST_PASSWORD}))
        .await;
    assert_problem(response, 409, "email_taken").await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_one_account() {
    let app = TestApp::spawn().await;
    let bodies: Vec<Value> = (0..8)
        .map(|i| {
            let email = if i % 2 == 0 { "race@example.com" } else { "RACE@example.com" };
            json!({"email": email, "password": TEST_PASSWORD})
        })
        .collect();
    let attempts = bodies.iter().map(|body| app.post_json("/api/v1/auth/register", body));
    let statuses: Vec<u16> = join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn registration_rules_are_422s_naming_each_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"email": "not-an-email", "password": TEST_PASSWORD}), vec!["email"]),
        (json!({"email": "a@example.com", "password": "short"}), vec!["password"]),
        (json!({"email": "a@example.com", "password": "x".repeat(1025)}), vec!["password"]),
        (
            json!({"email": "a@example.com", "password": TEST_PASSWORD, "timezone": "Mars/Base"}),
            vec!["timezone"],
        ),
        (json!({"email": "a@example.com", "password": TEST_PASSWORD, "name": "  "}), vec!["name"]),
        (json!({"email": "bad", "password": "short"}), vec!["email", "password"]),
        (json!({"password": TEST_PASSWORD}), vec!["email"]),
    ];
    for (body, fields) in cases {
        let response = app.post_json("/api/v1/auth/register", &body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        let named: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(named, fields, "for {body}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0, "no rejected registration wrote anything");
}

#[tokio::test]
async fn login_is_case_insensitive_on_email_and_returns_a_working_token() {
    let app = TestApp::spawn().await;
    app.register("carol@example.com").await;
    let response = app
        .post_json("/api/v1/auth/login", &json!({"email": " CAROL@Example.com", "password": TEST_PASSWORD}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], "carol@example.com");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(token, "/api/v1/users/me").await.status(), 200);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = TestApp::spawn().await;
    app.register("dave@example.com").await;
    let wrong = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "dave@example.com", "password": "not the password"}),
        )
        .await;
    let unknown = app
        .post_json("/api/v1/auth/login", &json!({"email": "nobody@example.com", "password": TEST_PASSWORD}))
        .await;
    let a = assert_problem(wrong, 401, "invalid_credentials").await;
    let b = assert_problem(unknown, 401, "invalid_credentials").await;
    assert_eq!(a["detail"], b["detail"]);
    assert_eq!(a["title"], b["title"]);
}

#[tokio::test]
async fn protected_routes_need_a_token_and_say_bearer() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/users/me").await;
    assert_eq!(response.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_problem(response, 401, "token_missing").await;
    let garbage = app.get_as("not.a.token", "/api/v1/users/me").await;
    assert_problem(garbage, 401, "token_invalid").await;
}

fn secret(app: &TestApp) -> Vec<u8> {
    app.settings.auth.jwt_secret.expose_secret().as_bytes().to_vec()
}

fn sign(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(key)).unwrap()
}

fn claims_for(user: Uuid, exp_offset_secs: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user, "iat": now, "exp": now + exp_offset_secs, "jti": Uuid::new_v4()})
}

#[tokio::test]
async fn a_token_with_a_tampered_payload_is_rejected() {
    let app = TestApp::spawn().await;
    let victim = app.new_user().await;
    let attacker = app.new_user().await;
    let parts: Vec<&str> = attacker.token.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!(victim.id);
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
    assert_problem(app.get_as(&forged, "/api/v1/users/me").await, 401, "token_invalid").await;
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_rejected_beyond_the_clock_leeway() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |iat: i64| json!({"sub": user.id, "iat": iat, "exp": now + 7200, "jti": Uuid::new_v4()});
    let future = sign(&claims(now + 3600), &secret(&app));
    assert_problem(app.get_as(&future, "/api/v1/users/me").await, 401, "token_invalid").await;
    let skewed = sign(&claims(now + 10), &secret(&app));
    assert_eq!(app.get_as(&skewed, "/api/v1/users/me").await.status(), 200, "a little clock skew is fine");
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_rejected() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = sign(&claims_for(user.id, 600), b"some-other-secret-of-sufficient-length!!");
    assert_problem(app.get_as(&token, "/api/v1/users/me").await, 401, "token_invalid").await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_rejected() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims_for(user.id, 600).to_string());
    for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
        assert_problem(app.get_as(&token, "/api/v1/users/me").await, 401, "token_invalid").await;
    }
}

#[tokio::test]
async fn a_token_signed_with_another_hmac_size_is_rejected() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims_for(user.id, 600),
        &EncodingKey::from_secret(&secret(&app)),
    )
    .unwrap();
    assert_problem(app.get_as(&token, "/api/v1/users/me").await, 401, "token_invalid").await;
}

#[tokio::test]
async fn an_expired_token_is_rejected_beyond_the_leeway() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let leeway = app.settings.auth.leeway_secs as i64;
    let expired = sign(&claims_for(user.id, -(leeway + 5)), &secret(&app));
    assert_problem(app.get_as(&expired, "/api/v1/users/me").await, 401, "token_expired").await;
    let within_leeway = sign(&claims_for(user.id, -(leeway / 2)), &secret(&app));
    assert_eq!(app.get_as(&within_leeway, "/api/v1/users/me").await.status(), 200);
}

#[tokio::test]
async fn a_token_missing_a_required_claim_is_rejected() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for missing in ["jti", "exp", "sub", "iat"] {
        let mut claims = claims_for(user.id, 600);
        claims.as_object_mut().unwrap().remove(missing);
        let token = sign(&claims, &secret(&app));
        assert_problem(app.get_as(&token, "/api/v1/users/me").await, 401, "token_invalid").await;
    }
}

#[tokio::test]
async fn logout_revokes_the_token_on_every_web_process() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    // A second web process over the same database.
    let other = app.second_instance().await;
    assert_eq!(other.get_as(&user.token, "/api/v1/users/me").await.status(), 200);

    let response = app.send_as(&user.token, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(response.status(), 204);

    assert_problem(app.get_as(&user.token, "/api/v1/users/me").await, 401, "token_revoked").await;
    // The other process remembered the token as good; the logout's NOTIFY makes it forget.
    let refused = eventually("the other process refuses the token", Duration::from_secs(1), || async {
        let response = other.get_as(&user.token, "/api/v1/users/me").await;
        (response.status() == 401).then_some(response)
    })
    .await;
    assert_problem(refused, 401, "token_revoked").await;
    let again = app.send_as(&user.token, Method::POST, "/api/v1/auth/logout", None).await;
    assert_problem(again, 401, "token_revoked").await;

    // Logging in again gives a fresh, working token.
    let login =
        app.post_json("/api/v1/auth/login", &json!({"email": user.email, "password": TEST_PASSWORD})).await;
    let token = login.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_as(&token, "/api/v1/users/me").await.status(), 200);
}

#[tokio::test]
async fn a_token_of_a_deleted_user_is_rejected() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let minted_before = sign(&claims_for(user.id, 600), &secret(&app));
    assert_eq!(app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None).await.status(), 204);
    assert_problem(app.get_as(&user.token, "/api/v1/users/me").await, 401, "token_invalid").await;
    assert_problem(app.get_as(&minted_before, "/api/v1/users/me").await, 401, "token_invalid").await;
}

#[tokio::test]
async fn expired_revocations_are_purged_by_maintenance() {
    let app = TestApp::spawn().await;
    sqlx::query("INSERT INTO revoked_tokens (token_id, expires_at) VALUES ('old', now() - interval '1 minute'), ('live', now() + interval '1 hour')")
        .execute(&app.pool)
        .await
        .unwrap();
    let purged = todo::db::maintenance::purge_expired(&app.pool, retention(&app)).await.unwrap();
    assert_eq!(purged.revoked_tokens, 1);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT token_id FROM revoked_tokens").fetch_all(&app.pool).await.unwrap();
    assert_eq!(left, vec!["live".to_owned()]);
}

fn retention(app: &TestApp) -> todo::db::maintenance::Retention {
    todo::db::maintenance::Retention::new(&app.settings)
}

#[tokio::test]
async fn nul_characters_in_credentials_are_4xx_not_5xx() {
    let app = TestApp::spawn().await;
    let register = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "a\u{0}@example.com", "password": TEST_PASSWORD}),
        )
        .await;
    assert_problem(register, 422, "validation_failed").await;
    let login = app
        .post_json("/api/v1/auth/login", &json!({"email": "a\u{0}@example.com", "password": TEST_PASSWORD}))
        .await;
    assert_problem(login, 401, "invalid_credentials").await;
    let name = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "n@example.com", "password": TEST_PASSWORD, "name": "x\u{0}"}),
        )
        .await;
    assert_problem(name, 422, "validation_failed").await;
}

#[tokio::test]
async fn every_protected_route_refuses_a_request_without_a_token() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let routes = [
        (Method::POST, "/api/v1/auth/logout".to_owned()),
        (Method::GET, "/api/v1/users/me".to_owned()),
        (Method::PATCH, "/api/v1/users/me".to_owned()),
        (Method::DELETE, "/api/v1/users/me".to_owned()),
        (Method::GET, "/api/v1/users/me/export".to_owned()),
        (Method::GET, "/api/v1/tasks".to_owned()),
        (Method::POST, "/api/v1/tasks".to_owned()),
        (Method::GET, "/api/v1/tasks/trash".to_owned()),
        (Method::GET, format!("/api/v1/tasks/{id}")),
        (Method::PATCH, format!("/api/v1/tasks/{id}")),
        (Method::PUT, format!("/api/v1/tasks/{id}")),
        (Method::DELETE, format!("/api/v1/tasks/{id}")),
        (Method::POST, format!("/api/v1/tasks/{id}/restore")),
        (Method::POST, format!("/api/v1/tasks/{id}/toggle")),
        (Method::PATCH, format!("/api/v1/tasks/{id}/complete")),
    ];
    for (method, path) in routes {
        let response = app
            .client
            .request(method.clone(), app.url(&path))
            .json(&json!({"title": "x"}))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 401, "token_missing").await;
        assert_eq!(problem["instance"], path, "{method} {path}");
    }
}

#[tokio::test]
async fn a_deleted_account_stops_working_on_every_process_within_a_second() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.second_instance().await;
    // Both processes have now seen the token good, and remember it.
    for _ in 0..2 {
        assert_eq!(other.get_as(&user.token, "/api/v1/tasks").await.status(), 200);
        assert_eq!(app.get_as(&user.token, "/api/v1/tasks").await.status(), 200);
    }
    assert_eq!(app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None).await.status(), 204);
    assert_problem(app.get_as(&user.token, "/api/v1/tasks").await, 401, "token_invalid").await;
    let started = std::time::Instant::now();
    eventually("the other process refuses the deleted user", Duration::from_secs(1), || async {
        (other.get_as(&user.token, "/api/v1/tasks").await.status() == 401).then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn after_the_listener_loses_its_connection_a_token_revoked_meanwhile_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.second_instance().await;
    assert_eq!(other.get_as(&user.token, "/api/v1/tasks").await.status(), 200);
    // Cut every LISTEN connection of this database, then revoke at once: the notification may
    // be sent while the other process is not listening.
    let database: String =
        sqlx::query_scalar("SELECT current_database()").fetch_one(&app.pool).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&database)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(cut.len() >= 2, "each web process holds one listener: {cut:?}");
    assert_eq!(app.send_as(&user.token, Method::POST, "/api/v1/auth/logout", None).await.status(), 204);
    eventually("the other process refuses the revoked token", Duration::from_secs(1), || async {
        (other.get_as(&user.token, "/api/v1/tasks").await.status() == 401).then_some(())
    })
    .await;
    // And it reconnects: a later logout reaches it by notification again.
    let login =
        app.post_json("/api/v1/auth/login", &json!({"email": user.email, "password": TEST_PASSWORD})).await;
    let token = login.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(other.get_as(&token, "/api/v1/tasks").await.status(), 200);
    assert_eq!(other.get_as(&token, "/api/v1/tasks").await.status(), 200);
    assert_eq!(app.send_as(&token, Method::POST, "/api/v1/auth/logout", None).await.status(), 204);
    eventually("the reconnected listener hears the next logout", Duration::from_secs(1), || async {
        (other.get_as(&token, "/api/v1/tasks").await.status() == 401).then_some(())
    })
    .await;
}
