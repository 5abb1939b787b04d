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
        serde_json::json!([{"bearer": []}, {"ticket": []}]),
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
