//! Tokens minted by another auth server that shares a secret, as Better Auth does.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

const SECRET: &str = "better-auth-shared-secret-0123456789abcdef";

async fn app_trusting_external_issuer() -> TestApp {
    TestApp::spawn_with(|s| {
        s.auth.external.enabled = true;
        s.auth.external.secret = SecretString::from(SECRET);
        s.auth.external.issuer = "https://auth.example.com".into();
        s.auth.external.audience = "todo-api".into();
    })
    .await
}

fn external_token(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn claims(sub: &str, email: Option<&str>) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"sub": sub, "iat": now, "exp": now + 600, "iss": "https://auth.example.com", "aud": "todo-api"});
    if let Some(email) = email {
        claims["email"] = json!(email);
    }
    claims
}

#[tokio::test]
async fn an_external_users_row_is_created_on_first_sight_and_reused() {
    let app = app_trusting_external_issuer().await;
    let token = external_token(claims("ba_user_42", Some("ext@example.com")));
    let first: Value = app.get_as(&token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(first["email"], "ext@example.com");
    let again = external_token(claims("ba_user_42", Some("ext@example.com")));
    let second: Value = app.get_as(&again, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn an_external_token_cannot_take_over_a_local_accounts_email() {
    let app = app_trusting_external_issuer().await;
    let local = app.register("owner@example.com").await;
    let token = external_token(claims("ba_intruder", Some("OWNER@example.com")));
    let response = app.get_as(&token, "/api/v1/users/me").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_ne!(body["id"], local.id.to_string());
    assert!(body["email"].is_null(), "the intruder does not get the email");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows, 2);
    let owner: Value = app.get_as(&local.token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(owner["email"], "owner@example.com", "the local account is untouched");
}

#[tokio::test]
async fn external_tokens_with_the_wrong_issuer_or_audience_are_rejected() {
    let app = app_trusting_external_issuer().await;
    let mut wrong_iss = claims("ba_user", None);
    wrong_iss["iss"] = json!("https://evil.example.com");
    let mut wrong_aud = claims("ba_user", None);
    wrong_aud["aud"] = json!("someone-else");
    let mut no_iss = claims("ba_user", None);
    no_iss.as_object_mut().unwrap().remove("iss");
    for c in [wrong_iss, wrong_aud, no_iss] {
        let response = app.get_as(&external_token(c.clone()), "/api/v1/users/me").await;
        assert_problem(response, 401, "token_invalid").await;
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows, 0, "rejected tokens create no user");
}

#[tokio::test]
async fn external_tokens_are_refused_unless_configured() {
    let app = TestApp::spawn().await;
    let token = external_token(claims("ba_user", Some("ext@example.com")));
    assert_problem(app.get_as(&token, "/api/v1/users/me").await, 401, "token_invalid").await;
}

#[tokio::test]
async fn an_external_token_without_jti_can_still_be_logged_out() {
    let app = app_trusting_external_issuer().await;
    let token = external_token(claims("ba_user_7", None));
    assert_eq!(app.get_as(&token, "/api/v1/users/me").await.status(), 200);
    assert_eq!(app.send_as(&token, Method::POST, "/api/v1/auth/logout", None).await.status(), 204);
    assert_problem(app.get_as(&token, "/api/v1/users/me").await, 401, "token_revoked").await;
    // A distinct token for the same user: a different `iat` gives a different digest.
    let mut earlier = claims("ba_user_7", None);
    earlier["iat"] = json!(earlier["iat"].as_i64().unwrap() - 1);
    let other = external_token(earlier);
    assert_eq!(app.get_as(&other, "/api/v1/users/me").await.status(), 200, "other tokens still work");
}

#[tokio::test]
async fn concurrent_first_requests_from_a_new_external_user_create_one_row() {
    let app = app_trusting_external_issuer().await;
    let tokens: Vec<String> = (0..8)
        .map(|i| {
            let mut c = claims("ba_burst", Some("burst@example.com"));
            c["iat"] = json!(c["iat"].as_i64().unwrap() - i);
            external_token(c)
        })
        .collect();
    let responses = futures::future::join_all(tokens.iter().map(|t| app.get_as(t, "/api/v1/users/me"))).await;
    for response in responses {
        assert_eq!(response.status(), 200);
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_deleted_external_account_stays_deleted_for_tokens_issued_before_the_deletion() {
    let app = app_trusting_external_issuer().await;
    let mut earlier = claims("ba_leaver", Some("leaver@example.com"));
    earlier["iat"] = json!(earlier["iat"].as_i64().unwrap() - 5);
    let token = external_token(earlier);
    assert_eq!(app.get_as(&token, "/api/v1/users/me").await.status(), 200);
    let deleted = app.send_as(&token, Method::DELETE, "/api/v1/users/me", None).await;
    assert_eq!(deleted.status(), 204);

    // The same token, and another minted before the deletion, do not bring the account back.
    assert_problem(app.get_as(&token, "/api/v1/users/me").await, 401, "token_revoked").await;
    let mut older = claims("ba_leaver", None);
    older["iat"] = json!(older["iat"].as_i64().unwrap() - 60);
    assert_problem(app.get_as(&external_token(older), "/api/v1/users/me").await, 401, "token_revoked").await;
    let mut no_iat = claims("ba_leaver", None);
    no_iat.as_object_mut().unwrap().remove("iat");
    assert_problem(app.get_as(&external_token(no_iat), "/api/v1/users/me").await, 401, "token_revoked").await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows, 0, "no account was recreated");

    // A sign-in after the deletion is a new account, as the issuer intends.
    let mut later = claims("ba_leaver", None);
    later["iat"] = json!(later["iat"].as_i64().unwrap() + 2);
    assert_eq!(app.get_as(&external_token(later), "/api/v1/users/me").await.status(), 200);
}

#[tokio::test]
async fn requests_of_a_known_external_user_do_not_write_the_users_row() {
    let app = app_trusting_external_issuer().await;
    let token = external_token(claims("ba_reader", Some("reader@example.com")));
    assert_eq!(app.get_as(&token, "/api/v1/users/me").await.status(), 200);
    // xmin is the id of the transaction that last wrote the row: reads must leave it alone.
    let version = || async {
        sqlx::query_scalar::<_, String>("SELECT xmin::text FROM users WHERE external_id = 'ba_reader'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = version().await;
    for _ in 0..3 {
        assert_eq!(app.get_as(&token, "/api/v1/tasks").await.status(), 200);
    }
    assert_eq!(version().await, before, "the row was rewritten by a read");
}

#[tokio::test]
async fn an_external_address_is_verified_only_when_the_issuer_says_so() {
    let app = app_trusting_external_issuer().await;
    let me = |claims: Value| {
        let app = &app;
        async move {
            let response = app.get_as(&external_token(claims), "/api/v1/users/me").await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let mut vouched = claims("ext-vouched", Some("vouched@example.com"));
    vouched["email_verified"] = json!(true);
    assert_eq!(me(vouched).await["email_verified"], true);
    assert!(app.jobs("todo.verification").await.is_empty(), "no email for a vouched address");

    let mut unsure = claims("ext-unsure", Some("unsure@example.com"));
    unsure["email_verified"] = json!("true");
    let body = me(unsure).await;
    assert_eq!(body["email_verified"], false, "only the boolean true vouches");
    let queued = app.jobs("todo.verification").await;
    assert_eq!(queued.len(), 1, "the same verification email as a registration: {queued:?}");
    // Seen again: no second email.
    me(claims("ext-unsure", Some("unsure@example.com"))).await;
    assert_eq!(app.jobs("todo.verification").await.len(), 1);
}
