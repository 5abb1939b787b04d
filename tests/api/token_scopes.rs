//! What each API token scope lets through, read from the OpenAPI document: every operation that
//! takes credentials is called with a token that lacks the scope it declares (403
//! `insufficient_scope`) and with one that holds only that scope (not refused for it). So a route
//! added later is checked without touching this file, and a route that declares no scope must be
//! one of the few that take a login only.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, assert_problem};

const ALL_SCOPES: [&str; 6] =
    ["tasks:read", "tasks:write", "projects:read", "projects:write", "webhooks", "account"];

/// Operations an API token may never call, whatever its scopes.
const LOGIN_ONLY: [&str; 6] =
    ["logoutUser", "deleteCurrentUser", "changePassword", "createToken", "listTokens", "deleteToken"];

pub async fn create_token(app: &TestApp, user: &TestUser, scopes: &[&str]) -> String {
    let body = json!({"name": format!("scopes {}", scopes.join(" ")), "scopes": scopes});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tokens", Some(&body)).await;
    assert_eq!(response.status(), 201, "creating a token with {scopes:?}");
    let created: Value = response.json().await.unwrap();
    created["token"].as_str().unwrap().to_owned()
}

/// The one scope the operation's `apiToken` requirement names, if any.
fn declared_scope(operation: &Value) -> Option<String> {
    let security = operation["security"].as_array()?;
    let scopes = security.iter().find_map(|r| r.get("apiToken"))?.as_array()?;
    assert_eq!(scopes.len(), 1, "{}: one scope per operation", operation["operationId"]);
    Some(scopes[0].as_str().unwrap().to_owned())
}

fn concrete(path: &str) -> String {
    path.replace("{user_id}", "me").replace("{id}", &Uuid::new_v4().to_string())
}

async fn call(app: &TestApp, token: &str, method: &str, path: &str) -> reqwest::Response {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
    app.send_as(token, method, &concrete(path), body.as_ref()).await
}

fn challenge(response: &reqwest::Response) -> String {
    let value = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
    value.unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_operation_refuses_a_token_without_its_declared_scope_and_admits_one_with_it() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut lacking = Vec::new();
    let mut only = Vec::new();
    for scope in ALL_SCOPES {
        let others: Vec<&str> = ALL_SCOPES.into_iter().filter(|s| *s != scope).collect();
        lacking.push((scope, create_token(&app, &user, &others).await));
        only.push((scope, create_token(&app, &user, &[scope]).await));
    }
    let everything = create_token(&app, &user, &ALL_SCOPES).await;
    let token_for = |tokens: &[(&str, String)], scope: &str| {
        tokens.iter().find(|(s, _)| *s == scope).map(|(_, t)| t.clone()).expect("a known scope")
    };

    let mut scoped = 0;
    let mut login_only = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            if operation["security"].as_array().is_none_or(Vec::is_empty) {
                continue;
            }
            let Some(scope) = declared_scope(operation) else {
                // A login-only operation: even a token with every scope is refused.
                let response = call(&app, &everything, method, path).await;
                assert!(challenge(&response).starts_with(r#"Bearer error="insufficient_scope""#), "{id}");
                let body = assert_problem(response, 403, "insufficient_scope").await;
                assert!(body.get("required_scope").is_none(), "{id}: no scope would do: {body}");
                login_only.insert(id);
                continue;
            };
            assert!(ALL_SCOPES.contains(&scope.as_str()), "{id} declares an unknown scope {scope}");
            let response = call(&app, &token_for(&lacking, &scope), method, path).await;
            let status = response.status();
            assert_eq!(
                challenge(&response),
                format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
                "{id} without {scope}: {status}"
            );
            let body = assert_problem(response, 403, "insufficient_scope").await;
            assert_eq!(body["required_scope"], scope.as_str(), "{id}");
            assert!(body["detail"].as_str().unwrap().contains(&scope), "{id}: the detail names it");

            let response = call(&app, &token_for(&only, &scope), method, path).await;
            let status = response.status().as_u16();
            assert!(status != 401 && status != 403, "{id} with only {scope}: {status}");
            scoped += 1;
        }
    }
    assert!(scoped >= 40, "the walk covered {scoped} scoped operations, aliases included");
    let expected: BTreeSet<String> = LOGIN_ONLY.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(login_only, expected, "operations that take no API token");
    // The account is still there: no login-only operation ran for a token.
    assert_eq!(app.get_as(&user.token, "/api/v1/users/me").await.status(), 200);
}

#[tokio::test]
async fn a_read_only_token_reads_tasks_and_is_told_which_scope_a_write_needs() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    app.create_task(&user, json!({"title": "Water the plants"})).await;
    let token = create_token(&app, &user, &["tasks:read"]).await;

    let list = app.get_as(&token, "/api/v1/tasks").await;
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["items"][0]["title"], "Water the plants");
    assert_eq!(app.get_as(&token, "/api/v1/changes?since=0").await.status(), 200);

    let write = app.send_as(&token, Method::POST, "/api/v1/tasks", Some(&json!({"title": "Nope"}))).await;
    assert_eq!(challenge(&write), r#"Bearer error="insufficient_scope", scope="tasks:write""#);
    let body = assert_problem(write, 403, "insufficient_scope").await;
    assert_eq!(body["required_scope"], "tasks:write");
    assert_problem(app.get_as(&token, "/api/v1/projects").await, 403, "insufficient_scope").await;
    assert_problem(app.get_as(&token, "/api/v1/users/me").await, 403, "insufficient_scope").await;
    // Nothing was written by the refused request.
    let list: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn a_token_with_every_scope_still_cannot_manage_tokens_or_delete_the_account() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = create_token(&app, &user, &ALL_SCOPES).await;
    let list: Value = app.get_as(&user.token, "/api/v1/tokens").await.json().await.unwrap();
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();

    let mint = json!({"name": "child", "scopes": ["tasks:read"]});
    for (method, path, body) in [
        (Method::POST, "/api/v1/tokens".to_owned(), Some(mint)),
        (Method::GET, "/api/v1/tokens".to_owned(), None),
        (Method::DELETE, format!("/api/v1/tokens/{id}"), None),
        (Method::DELETE, "/api/v1/users/me".to_owned(), None),
        (
            Method::POST,
            "/api/v1/users/me/password".to_owned(),
            Some(json!({"current_password": "x", "new_password": "yyyyyyyyyy"})),
        ),
        (Method::POST, "/api/v1/auth/logout".to_owned(), None),
    ] {
        let response = app.send_as(&token, method.clone(), &path, body.as_ref()).await;
        let body = assert_problem(response, 403, "insufficient_scope").await;
        assert!(body["detail"].as_str().unwrap().contains("login"), "{method} {path}: {body}");
    }
    // Routes that take no credentials ignore one.
    let login = json!({"email": user.email, "password": crate::helpers::TEST_PASSWORD});
    let response =
        app.client.post(app.url("/api/v1/auth/login")).bearer_auth(&token).json(&login).send().await;
    assert_eq!(response.unwrap().status(), 200);
    // The token is still good, and the account and its one token are untouched.
    assert_eq!(app.get_as(&token, "/api/v1/users/me").await.status(), 200);
    let list: Value = app.get_as(&user.token, "/api/v1/tokens").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}
