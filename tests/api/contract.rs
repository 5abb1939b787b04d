//! The served OpenAPI document as a client generator reads it: every operation has its own id,
//! and the answers the routes give are declared.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn every_operation_id_is_unique_and_the_task_limit_409s_are_documented() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(id) = operation.get("operationId") else { continue };
            seen.entry(id.as_str().unwrap().to_owned()).or_default().push(format!("{method} {path}"));
        }
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, uses)| uses.len() > 1).collect();
    assert!(duplicated.is_empty(), "operationIds used more than once: {duplicated:?}");
    for (path, id) in [
        ("/api/v1/tasks", "createTask"),
        ("/api/v1/tasks/bulk", "bulkWriteTasks"),
        ("/api/v1/users/{user_id}/tasks", "createTaskAlias"),
        ("/api/v1/users/{user_id}/tasks/bulk", "bulkWriteTasksAlias"),
    ] {
        let post = &doc["paths"][path]["post"];
        assert_eq!(post["operationId"], id, "{path}");
        let conflict = &post["responses"]["409"];
        assert!(
            conflict["description"].as_str().is_some_and(|d| d.contains("task_limit_reached")),
            "POST {path} documents 409 task_limit_reached: {conflict}"
        );
        assert_eq!(
            conflict["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
    assert_eq!(doc["paths"]["/api/v1/projects"]["post"]["operationId"], "createProject");
    assert_eq!(doc["paths"]["/api/v1/projects"]["get"]["operationId"], "listProjects");
    assert_eq!(doc["paths"]["/api/v1/tasks"]["get"]["operationId"], "listTasks");
}

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), operation));
        }
    }
    all
}

#[tokio::test]
async fn every_operation_reads_as_a_method_with_a_summary_a_description_and_examples() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(
            id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{method} {path}: operationId {id:?} is camelCase"
        );
        let summary = operation["summary"].as_str().unwrap_or_default();
        assert!((1..=120).contains(&summary.len()), "{id}: summary of {} chars", summary.len());
        assert!(
            operation["description"].as_str().is_some_and(|d| d.len() > summary.len()),
            "{id}: a description"
        );
        let bodies = operation["requestBody"]["content"].as_object().into_iter().flatten().chain(
            operation["responses"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(status, _)| status.starts_with('2'))
                .flat_map(|(_, r)| r["content"].as_object().into_iter().flatten()),
        );
        for (media_type, body) in bodies {
            assert!(!body["example"].is_null(), "{id}: an example of its {media_type} body");
        }
        for (status, response) in operation["responses"].as_object().unwrap() {
            assert!(
                response["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{id} {status}: described"
            );
            assert!(response["headers"]["X-Request-Id"].is_object(), "{id} {status}: X-Request-Id");
        }
    }
}

#[tokio::test]
async fn security_headers_and_closed_sets_are_declared_for_generators() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert!(doc["servers"].as_array().is_some_and(|s| !s.is_empty()));
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    for public in
        [op("post", "/api/v1/auth/register"), op("post", "/api/v1/auth/login"), op("get", "/health")]
    {
        assert_eq!(public["security"], serde_json::json!([]), "{}", public["operationId"]);
    }
    assert_eq!(
        op("get", "/api/v1/events")["security"],
        serde_json::json!([{"bearer": []}, {"apiToken": ["tasks:read"]}, {"ticket": []}]),
        "either credential, never none"
    );
    assert_eq!(doc["components"]["securitySchemes"]["ticket"]["in"], "query");

    // The headers a client must read, and whether they always come.
    let headers = &doc["components"]["headers"];
    for (method, path) in [
        ("patch", "/api/v1/tasks/{id}"),
        ("put", "/api/v1/tasks/{id}"),
        ("patch", "/api/v1/tasks/{id}/complete"),
        ("post", "/api/v1/tasks/{id}/toggle"),
        ("post", "/api/v1/tasks/{id}/restore"),
        ("patch", "/api/v1/projects/{id}"),
    ] {
        let etag = &op(method, path)["responses"]["200"]["headers"]["ETag"];
        assert_eq!(etag["required"], true, "{method} {path} 200 sends its ETag");
    }
    let created = &op("post", "/api/v1/tasks")["responses"]["201"]["headers"];
    assert_eq!(created["Location"]["required"], true);
    assert_eq!(created["ETag"]["required"], true);
    assert_eq!(created["Idempotent-Replayed"]["$ref"], "#/components/headers/Idempotent-Replayed");
    let limited = &op("get", "/api/v1/tasks")["responses"]["429"]["headers"];
    for name in
        ["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"]
    {
        assert!(limited[name].is_object(), "429 declares {name}");
    }
    assert_eq!(headers["Retry-After"]["required"], true);
    assert_eq!(
        op("get", "/api/v1/tasks")["responses"]["503"]["headers"]["Retry-After"]["$ref"],
        "#/components/headers/Retry-After"
    );
    assert_eq!(op("get", "/api/v1/projects/{id}")["responses"]["304"]["headers"]["ETag"]["required"], true);

    // Closed sets are enums, with one schema each, and bounds are in the schema.
    let schemas = &doc["components"]["schemas"];
    assert!(schemas.get("PriorityName").is_none() && schemas.get("AnchorName").is_none());
    let params: BTreeMap<String, Value> = op("get", "/api/v1/tasks")["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["schema"].clone()))
        .collect();
    assert_eq!(params["sort"]["$ref"], "#/components/schemas/TaskSort");
    assert_eq!(params["order"]["$ref"], "#/components/schemas/SortOrder");
    assert_eq!(params["tag_mode"]["$ref"], "#/components/schemas/TagMatch");
    assert_eq!(params["priority"]["items"]["$ref"], "#/components/schemas/Priority");
    assert_eq!(
        (params["limit"]["minimum"].clone(), params["limit"]["maximum"].clone()),
        (1.into(), 100.into())
    );
    assert_eq!(params["offset"]["minimum"], 0);
    assert_eq!(schemas["Problem"]["properties"]["code"]["$ref"], "#/components/schemas/ProblemCode");
    for code in ["task_limit_reached", "resync_required", "validation_failed", "rate_limited"] {
        assert!(schemas["ProblemCode"]["enum"].as_array().unwrap().contains(&code.into()), "{code}");
    }
    assert_eq!(schemas["Delivery"]["properties"]["status"]["$ref"], "#/components/schemas/DeliveryStatus");
    assert_eq!(schemas["BatchItem"]["properties"]["op"]["$ref"], "#/components/schemas/BulkOpName");
    assert_eq!(schemas["TaskInput"]["properties"]["priority"]["$ref"], "#/components/schemas/Priority");
}

/// Request bodies as a generated client validates them before sending: a bulk operation's
/// `parent_id` may be `"$<ref>"` (README, Bulk), while the single-task bodies take only a task id.
#[test]
fn a_bulk_parent_id_may_name_an_earlier_ref_and_the_task_bodies_take_only_ids() {
    let document = serde_json::to_value(todo::web::openapi::document()).unwrap();
    let example = document["paths"]["/api/v1/tasks/bulk"]["post"]["requestBody"]["content"]["application/json"]
        ["example"]
        .clone();
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler.enable_format_assertions();
    compiler.add_resource("urn:todo:openapi", document).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut valid = |name: &str, body: Value| {
        let index = compiler.compile(&format!("urn:todo:openapi#/components/schemas/{name}"), &mut schemas);
        schemas.validate(&body, index.unwrap()).is_ok()
    };
    let id = uuid::Uuid::now_v7().to_string();
    assert!(example.to_string().contains("\"$trip\""), "the example shows a ref: {example}");
    assert!(valid("BulkRequest", example));
    let batch = serde_json::json!({"operations": [
        {"op": "create", "ref": "trip", "task": {"title": "Trip"}},
        {"op": "create", "task": {"title": "Pack", "parent_id": "$trip"}},
        {"op": "update", "id": id, "changes": {"parent_id": "$trip"}},
        {"op": "update", "id": id, "changes": {"parent_id": id}},
        {"op": "update", "id": id, "changes": {"parent_id": null}},
    ]});
    assert!(valid("BulkRequest", batch));
    for parent in ["trip", "$", "$no spaces", "not-a-uuid"] {
        let batch = serde_json::json!({"operations": [{"op": "create", "task": {"title": "A", "parent_id": parent}}]});
        assert!(!valid("BulkRequest", batch), "{parent}");
    }
    assert!(valid("TaskInput", serde_json::json!({"title": "A", "parent_id": id})));
    assert!(!valid("TaskInput", serde_json::json!({"title": "A", "parent_id": "$trip"})));
    assert!(!valid("TaskPatch", serde_json::json!({"parent_id": "$trip"})));
}

// The checker that every test's responses pass through (helpers::contract_check) must be able
// to fail: each of these hands it an answer the document does not describe.

mod checker {
    use reqwest::header::{ALLOW, CONTENT_TYPE, HeaderMap, HeaderValue};
    use reqwest::{Method, StatusCode};
    use serde_json::json;

    use crate::helpers::CheckedClient;
    use crate::helpers::contract_check::{Contract, DOCUMENT};

    const TASK: &str = "/api/v1/tasks/0197a0c4-1b2c-7d3e-8f40-123456789abc";

    fn typed(content_type: &'static str) -> HeaderMap {
        HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static(content_type))])
    }

    /// With the headers the document requires of the answers checked here, so that each test
    /// fails on the mismatch it is about.
    fn from_the_app(content_type: &'static str) -> HeaderMap {
        let mut headers = typed(content_type);
        headers.insert("x-request-id", HeaderValue::from_static("r1"));
        headers.insert("etag", HeaderValue::from_static("\"1\""));
        headers
    }

    fn check(
        method: Method,
        path: &str,
        status: u16,
        content_type: &'static str,
        body: &str,
    ) -> Result<(), String> {
        let status = StatusCode::from_u16(status).unwrap();
        DOCUMENT.check(&method, path, status, &from_the_app(content_type), Some(body.as_bytes()))
    }

    #[test]
    fn a_body_that_breaks_the_schema_names_the_operation_the_status_and_the_mismatch() {
        let drift = check(Method::GET, TASK, 200, "application/json", r#"{"id": 5}"#).unwrap_err();
        assert!(
            drift.starts_with(&format!("GET /api/v1/tasks/{{id}} answered 200 OK for {TASK}")),
            "{drift}"
        );
        assert!(drift.contains("#/components/schemas/Task"), "names the schema: {drift}");
        assert!(drift.contains("missing properties"), "says what is wrong: {drift}");
        let problem = r#"{"type": "urn:todo:problem:not_found", "title": "Not Found", "status": "404"}"#;
        let drift = check(Method::GET, TASK, 404, "application/problem+json", problem).unwrap_err();
        assert!(drift.contains("answered 404 Not Found") && drift.contains("/status"), "{drift}");
    }

    #[test]
    fn formats_are_asserted() {
        let page = json!({"items": [{"id": "not-a-uuid"}], "total": 1, "limit": 50, "offset": 0});
        let drift =
            check(Method::GET, "/api/v1/tasks", 200, "application/json", &page.to_string()).unwrap_err();
        assert!(drift.contains("/items/0/id") && drift.contains("uuid"), "{drift}");
    }

    #[test]
    fn an_undocumented_status_or_method_on_a_documented_path_is_a_drift() {
        let drift = check(Method::GET, TASK, 418, "application/problem+json", "{}").unwrap_err();
        assert!(drift.contains("answered 418") && drift.contains("not documented"), "{drift}");
        let drift = check(Method::POST, "/api/v1/users/me", 200, "application/json", "{}").unwrap_err();
        assert!(drift.contains("POST /api/v1/users/me") && drift.contains("no such operation"), "{drift}");
    }

    #[test]
    fn a_literal_segment_beats_a_parameter_and_unknown_paths_are_not_checked() {
        // `/tasks/trash` answers a page; checked as `/tasks/{id}` a page would be a broken task.
        let page =
            json!({"items": [], "total": 0, "total_is_exact": true, "limit": 50, "offset": 0, "next_cursor": null}).to_string();
        check(Method::GET, "/api/v1/tasks/trash", 200, "application/json", &page).unwrap();
        let drift = check(Method::DELETE, "/api/v1/tasks/trash", 204, "application/json", "").unwrap_err();
        assert!(drift.starts_with("DELETE /api/v1/tasks/trash "), "{drift}");
        check(Method::GET, "/nowhere", 404, "text/html", "<html>").unwrap();
        check(Method::GET, "/api/v1/tasks/a/b/c", 404, "text/html", "<html>").unwrap();
    }

    #[test]
    fn the_content_type_must_be_a_declared_one() {
        let problem = json!({"type": "urn:todo:problem:not_found", "title": "Not Found", "status": 404,
            "detail": "No task", "instance": TASK, "code": "not_found", "request_id": "r1"})
        .to_string();
        check(Method::GET, TASK, 404, "application/problem+json", &problem).unwrap();
        let drift = check(Method::GET, TASK, 404, "application/json", &problem).unwrap_err();
        assert!(drift.contains("Content-Type application/json is not among"), "{drift}");
        let drift = check(Method::DELETE, TASK, 204, "application/json", "{}").unwrap_err();
        assert!(drift.contains("declares no body"), "{drift}");
    }

    #[test]
    fn head_is_checked_as_the_documented_get_without_a_body() {
        let status = StatusCode::OK;
        let mut headers = from_the_app("application/json");
        DOCUMENT.check(&Method::HEAD, TASK, status, &headers, None).unwrap();
        let etag = headers.remove("etag").unwrap();
        let drift = DOCUMENT.check(&Method::HEAD, TASK, status, &headers, None).unwrap_err();
        assert!(drift.starts_with("HEAD /api/v1/tasks/{id} answered 200 OK"), "{drift}");
        assert!(drift.contains("the required header ETag is missing"), "{drift}");
        headers.insert("etag", etag);
        let drift = DOCUMENT.check(&Method::HEAD, TASK, StatusCode::IM_A_TEAPOT, &headers, None).unwrap_err();
        assert!(drift.contains("not documented"), "{drift}");
    }

    #[test]
    fn a_405_must_allow_exactly_the_methods_the_document_lists() {
        let answer = |method: Method, allow: Option<&'static str>| {
            let mut headers = typed("application/problem+json");
            if let Some(allow) = allow {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            DOCUMENT.check(&method, "/api/v1/tasks", StatusCode::METHOD_NOT_ALLOWED, &headers, Some(b"{}"))
        };
        answer(Method::PUT, Some("GET, HEAD, POST")).unwrap();
        let drift = answer(Method::PUT, Some("GET, HEAD")).unwrap_err();
        assert!(
            drift.contains(r#"405 with Allow: GET, HEAD, but the document lists {"GET", "POST"}"#),
            "{drift}"
        );
        assert!(answer(Method::PUT, Some("GET, HEAD, POST, DELETE")).is_err(), "DELETE is not documented");
        assert!(answer(Method::PUT, None).unwrap_err().contains("a 405 without Allow"));
        // A documented method refused with a 405 is a drift like any undocumented status.
        assert!(answer(Method::GET, Some("GET, HEAD, POST")).unwrap_err().contains("not documented"));
    }

    #[test]
    fn required_headers_ranges_and_default_answers() {
        let contract = Contract::new(json!({
            "openapi": "3.1.0",
            "paths": {"/things/{id}": {"get": {"responses": {
                "200": {"$ref": "#/components/responses/Thing"},
                "4XX": {"description": "", "content": {"application/problem+json": {"schema": {"type": "object"}}}},
                "default": {"description": "", "content": {"text/*": {}}},
            }}}},
            "components": {"responses": {"Thing": {
                "description": "",
                "headers": {"ETag": {"required": true, "schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"type": "object", "required": ["id"]}}},
            }}},
        }))
        .unwrap();
        let answer = |status: u16, headers: &HeaderMap, body: &str| {
            let status = StatusCode::from_u16(status).unwrap();
            contract.check(&Method::GET, "/things/1", status, headers, Some(body.as_bytes()))
        };
        let json = typed("application/json; charset=utf-8");
        let drift = answer(200, &json, r#"{"id": 1}"#).unwrap_err();
        assert!(drift.contains("required header ETag is missing"), "{drift}");
        let mut tagged = json.clone();
        tagged.insert("etag", HeaderValue::from_static("\"1\""));
        answer(200, &tagged, r#"{"id": 1}"#).unwrap();
        assert!(answer(200, &tagged, "{}").unwrap_err().contains("missing properties 'id'"));
        answer(409, &typed("application/problem+json"), "{}").unwrap();
        assert!(answer(409, &json, "{}").unwrap_err().contains("not among"));
        answer(500, &typed("text/plain"), "oops").unwrap();
        assert!(answer(500, &json, "{}").unwrap_err().contains("not among"));
    }

    /// A server on port 0 that answers every request with `raw`, for as long as the test runs:
    /// its address. Every connection, because a stray one can arrive first (other tests in this
    /// process probe ports that were free a moment ago, see `WebProcess::start`).
    async fn answering(raw: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0];
                    while !head.ends_with(b"\r\n\r\n") && socket.read_exact(&mut byte).await.is_ok() {
                        head.push(byte[0]);
                    }
                    let _ = socket.write_all(raw.as_bytes()).await;
                });
            }
        });
        address
    }

    const HEALTH_DRIFT: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: r1\r\ncontent-length: 13\r\nconnection: close\r\n\r\n{\"status\": 1}";

    #[tokio::test]
    #[should_panic(
        expected = "contract drift: GET /health answered 200 OK for /health: the body does not match"
    )]
    async fn the_test_client_fails_on_a_drift() {
        let address = answering(HEALTH_DRIFT).await;
        let sent = CheckedClient::for_app(&address).get(format!("{address}/health")).send().await;
        sent.expect("the server answers");
    }

    #[tokio::test]
    async fn the_test_client_hands_back_the_whole_answer_and_leaves_other_servers_unchecked() {
        let address = answering(HEALTH_DRIFT).await;
        let client = CheckedClient::for_app("http://127.0.0.1:1");
        let response = client.get(format!("{address}/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.url().as_str(), format!("{address}/health"));
        assert_eq!(response.text().await.unwrap(), r#"{"status": 1}"#);
    }
}
