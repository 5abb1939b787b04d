use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use todo::web::startup::Application;

use crate::helpers::{CheckedClient, TestApp, assert_problem, test_settings};

#[tokio::test]
async fn health_answers_ok_with_a_request_id() {
    let app = TestApp::spawn().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_is_ok_when_the_database_is_migrated() {
    let app = TestApp::spawn().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn ready_is_503_while_migrations_are_pending() {
    let app = TestApp::spawn_unmigrated().await;
    let body = assert_problem(app.get("/ready").await, 503, "migrations_pending").await;
    assert!(body.get("errors").is_none());

    todo::db::migrate(&app.pool).await.unwrap();
    assert_eq!(app.get("/ready").await.status(), 200);
}

#[tokio::test]
async fn ready_is_503_while_the_database_is_unreachable_and_health_stays_ok() {
    let mut settings = test_settings();
    settings.database.acquire_timeout_secs = 1;
    // Port 1 on loopback: nothing listens there, so every connection is refused.
    let options = PgConnectOptions::new().host("127.0.0.1").port(1).username("postgres");
    let pool =
        PgPoolOptions::new().acquire_timeout(settings.database.acquire_timeout()).connect_lazy_with(options);
    let app = Application::build_with_pool(settings, pool).unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let client = CheckedClient::for_app(&address);
    let ready = client.get(format!("{address}/ready")).send().await.unwrap();
    assert_eq!(ready.headers().get("retry-after").unwrap(), "5");
    let body = assert_problem(ready, 503, "database_unavailable").await;
    assert!(!body["detail"].as_str().unwrap().contains("127.0.0.1:1"), "no internals leak: {body}");

    let health = client.get(format!("{address}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem_document() {
    let app = TestApp::spawn().await;
    let body = assert_problem(app.get("/api/v1/no-such-thing").await, 404, "not_found").await;
    assert_eq!(body["instance"], "/api/v1/no-such-thing");
}

#[tokio::test]
async fn a_well_formed_incoming_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let response =
        app.client.get(app.url("/nowhere")).header("x-request-id", "client-trace-42").send().await.unwrap();
    assert_eq!(response.headers().get("x-request-id").unwrap(), "client-trace-42");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "client-trace-42");
}

#[tokio::test]
async fn a_malformed_incoming_request_id_is_replaced() {
    let app = TestApp::spawn().await;
    let response =
        app.client.get(app.url("/health")).header("x-request-id", "bad id with spaces").send().await.unwrap();
    let id = response.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert_ne!(id, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "a generated id is a UUID: {id}");
}

#[tokio::test]
async fn each_request_gets_its_own_generated_id() {
    let app = TestApp::spawn().await;
    let first = app.get("/health").await;
    let second = app.get("/health").await;
    assert_ne!(first.headers().get("x-request-id"), second.headers().get("x-request-id"));
}

#[tokio::test]
async fn openapi_document_is_openapi_3_1_and_lists_operations_routes() {
    let app = TestApp::spawn().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for path in ["/health", "/ready", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["paths"]["/api/v1/users/me"]["get"]["security"][0]["bearer"], serde_json::json!([]));
    assert_eq!(
        doc["paths"]["/api/v1/auth/register"]["post"]["security"],
        serde_json::json!([]),
        "registering is public"
    );
    let register = &doc["paths"]["/api/v1/auth/register"]["post"];
    assert!(register["requestBody"]["content"]["application/json"]["schema"].is_object());
    assert!(register["responses"]["201"].is_object() && register["responses"]["409"].is_object());

    for (path, method) in [
        ("/api/v1/tasks", "get"),
        ("/api/v1/tasks", "post"),
        ("/api/v1/tasks/trash", "get"),
        ("/api/v1/tasks/{id}", "get"),
        ("/api/v1/tasks/{id}", "patch"),
        ("/api/v1/tasks/{id}", "put"),
        ("/api/v1/tasks/{id}", "delete"),
        ("/api/v1/tasks/{id}/restore", "post"),
        ("/api/v1/tasks/{id}/toggle", "post"),
        ("/api/v1/tasks/{id}/complete", "patch"),
    ] {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        let alias = &doc["paths"][path.replace("/api/v1/", "/api/v1/users/{user_id}/")][method];
        assert_eq!(alias["parameters"][0]["name"], "user_id", "{method} {path} has a user-scoped alias");
        assert!(alias["responses"]["403"].is_object());
    }
    // The documented task body lists exactly the fields the parser accepts.
    let mut documented: Vec<&str> = doc["components"]["schemas"]["TaskInput"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    documented.sort_unstable();
    let mut accepted = todo::web::routes::tasks::FIELDS.to_vec();
    accepted.sort_unstable();
    assert_eq!(documented, accepted);
}

#[tokio::test]
async fn docs_page_is_served_from_vendored_assets() {
    let app = TestApp::spawn().await;
    let redirect = app.get("/docs").await;
    assert_eq!(redirect.status(), 308);
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "the page loads Swagger UI");
    assert!(!html.contains("https://"), "no asset comes from a CDN");
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), 200);
    let config = app.get("/docs/swagger-initializer.js").await.text().await.unwrap();
    assert!(config.contains("/openapi.json"));
}

#[tokio::test]
async fn metrics_expose_request_counts_and_latencies_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/health").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"route="/health""#)
            && l.contains(r#"status="200""#)),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
}
