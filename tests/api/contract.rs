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
