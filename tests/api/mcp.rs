//! The MCP door (`POST /mcp`) over real HTTP: the transport and version negotiation, tokens and
//! scopes, problems as tool errors, bounds, and that no tool reaches another user's data.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};
use crate::token_scopes::create_token;

const WRITE_TOOLS: [&str; 6] =
    ["add_tasks", "update_tasks", "complete_tasks", "reopen_tasks", "move_tasks", "delete_tasks"];

async fn post(
    app: &TestApp,
    token: Option<&str>,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request =
        app.client.post(app.url("/mcp")).header("accept", "application/json, text/event-stream").json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

/// A JSON-RPC request's answer (HTTP 200 and a response carrying the same id).
async fn rpc(app: &TestApp, token: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response = post(app, Some(token), &body, &[("mcp-protocol-version", "2025-06-18")]).await;
    assert_eq!(response.status(), 200, "{method}");
    assert!(response.headers().get("mcp-session-id").is_none(), "no sessions are kept");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["id"], 1, "{answer}");
    answer
}

/// A tool call's result, which must be a result (problems are tool errors, not protocol errors).
async fn call(app: &TestApp, token: &str, tool: &str, arguments: Value) -> Value {
    let answer = rpc(app, token, "tools/call", json!({"name": tool, "arguments": arguments})).await;
    assert!(answer.get("error").is_none(), "{tool} answered a protocol error: {answer}");
    answer["result"].clone()
}

async fn ok(app: &TestApp, token: &str, tool: &str, arguments: Value) -> Value {
    let result = call(app, token, tool, arguments).await;
    assert_eq!(result["isError"], false, "{tool}: {result}");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"], "the text is the structured content, whole");
    result["structuredContent"].clone()
}

/// A tool error's text.
async fn tool_error(app: &TestApp, token: &str, tool: &str, arguments: Value) -> String {
    let result = call(app, token, tool, arguments).await;
    assert_eq!(result["isError"], true, "{tool} should have failed: {result}");
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

async fn full_token(app: &TestApp, user: &TestUser) -> String {
    create_token(app, user, &["tasks:read", "tasks:write", "projects:read", "projects:write"]).await
}

async fn rest_task(app: &TestApp, user: &TestUser, id: &str) -> reqwest::Response {
    app.get_as(&user.token, &format!("/api/v1/tasks/{id}")).await
}

#[tokio::test]
async fn initialize_negotiates_a_supported_revision_and_notifications_are_accepted() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    for (asked, agreed) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2025-11-25", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let params = json!({"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
        let answer = rpc(&app, &token, "initialize", params).await;
        assert_eq!(answer["result"]["protocolVersion"], agreed, "{asked}");
        assert!(answer["result"]["capabilities"]["tools"].is_object());
    }
    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post(&app, Some(&token), &notification, &[]).await;
    assert_eq!(response.status(), 202);
    assert_eq!(rpc(&app, &token, "ping", json!({})).await["result"], json!({}));
    let unknown = rpc(&app, &token, "resources/subscribe", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);
}

/// A 2026-07-28 request: the envelope in `_meta`, mirrored in headers.
async fn modern(
    app: &TestApp,
    token: &str,
    method: &str,
    mut params: Value,
    name: Option<&str>,
) -> reqwest::Response {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut headers = vec![("mcp-protocol-version", "2026-07-28"), ("mcp-method", method)];
    if let Some(name) = name {
        headers.push(("mcp-name", name));
    }
    post(app, Some(token), &body, &headers).await
}

#[tokio::test]
async fn the_2026_revision_is_served_without_a_handshake() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let discovered: Value =
        modern(&app, &token, "server/discover", json!({}), None).await.json().await.unwrap();
    assert_eq!(discovered["result"]["supportedVersions"], json!(["2026-07-28"]));
    assert_eq!(discovered["result"]["resultType"], "complete");
    let listed: Value = modern(&app, &token, "tools/list", json!({}), None).await.json().await.unwrap();
    assert_eq!(listed["result"]["tools"].as_array().unwrap().len(), 12);
    assert_eq!(listed["result"]["cacheScope"], "private");
    let call = json!({"name": "add_tasks", "arguments": {"tasks": [{"title": "From 2026"}]}});
    let called: Value =
        modern(&app, &token, "tools/call", call.clone(), Some("add_tasks")).await.json().await.unwrap();
    assert_eq!(called["result"]["isError"], false, "{called}");
    assert_eq!(called["result"]["resultType"], "complete");
    let mismatch = modern(&app, &token, "tools/call", call, Some("delete_tasks")).await;
    assert_eq!(mismatch.status(), 400);
    assert_eq!(mismatch.json::<Value>().await.unwrap()["error"]["code"], -32020);
    let unknown = modern(&app, &token, "prompts/list", json!({}), None).await;
    assert_eq!(unknown.status(), 404);
    // A discover probe without the envelope is refused, which sends SDKs to the handshake.
    let probe = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}});
    let bare = post(&app, Some(&token), &probe, &[]).await;
    assert_eq!(bare.status(), 400);
    assert_eq!(bare.json::<Value>().await.unwrap()["error"]["code"], -32602);
}

#[tokio::test]
async fn the_transport_refuses_what_it_does_not_serve() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    for method in [Method::GET, Method::DELETE] {
        let response = app.send_as(&token, method.clone(), "/mcp", None).await;
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
    }
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]);
    let response = post(&app, Some(&token), &batch, &[]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], -32600);
    let response = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], -32700);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let response = post(&app, Some(&token), &ping, &[("mcp-protocol-version", "2099-01-01")]).await;
    assert_eq!(response.status(), 400, "an unsupported MCP-Protocol-Version");
    let response = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&token)
        .header("accept", "text/html")
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
}

#[tokio::test]
async fn credentials_and_origins_are_checked_before_anything_runs() {
    let app = TestApp::spawn_with(|s| {
        s.server.cors_allowed_origins = vec!["https://app.example.com".into()];
        s.server.public_url = "https://todo.example.com".into();
    })
    .await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});

    let response = post(&app, None, &ping, &[]).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let response = post(&app, Some("todo_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), &ping, &[]).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));

    let response = post(&app, Some(&token), &ping, &[("origin", "https://evil.example")]).await;
    assert_eq!(response.status(), 403, "a foreign Origin (DNS rebinding)");
    let response = post(&app, Some(&token), &ping, &[("origin", "https://app.example.com")]).await;
    assert_eq!(response.status(), 200, "a configured origin");
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/mcp"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "a browser client at a configured origin may send MCP headers");
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("mcp-protocol-version"), "{allowed}");
    let response = post(&app, Some(&token), &ping, &[("origin", "https://todo.example.com")]).await;
    let status = response.status();
    assert_eq!(status, 200, "the public URL: {}", response.text().await.unwrap());
    let repeated = r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}"#;
    let response = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(repeated)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "a repeated key is malformed, as on REST routes");

    // A login works too, with every tool.
    let tools = rpc(&app, &user.token, "tools/list", json!({})).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn a_read_only_token_sees_only_read_tools_and_cannot_call_a_write_tool() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Keep me"})).await;
    let read_only = create_token(&app, &user, &["tasks:read"]).await;

    let tools = rpc(&app, &read_only, "tools/list", json!({})).await;
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["find_tasks", "get_task", "agenda", "reminder_history"]);
    for tool in tools["result"]["tools"].as_array().unwrap() {
        assert_eq!(tool["annotations"]["readOnlyHint"], true);
        assert_eq!(tool["inputSchema"]["type"], "object");
        assert_eq!(tool["outputSchema"]["type"], "object");
    }
    for tool in WRITE_TOOLS {
        let text = tool_error(&app, &read_only, tool, json!({"tasks": [{"id": task["id"]}]})).await;
        assert!(text.contains("tasks:write"), "{tool}: {text}");
    }
    let text = tool_error(&app, &read_only, "add_project", json!({"name": "x"})).await;
    assert!(text.contains("projects:write"), "{text}");
    let after: Value = rest_task(&app, &user, task["id"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(after["version"], task["version"], "nothing changed");

    let full = full_token(&app, &user).await;
    assert_eq!(
        rpc(&app, &full, "tools/list", json!({})).await["result"]["tools"].as_array().unwrap().len(),
        12
    );
}

#[tokio::test]
async fn problems_come_back_as_tool_errors_naming_the_field_and_nothing_is_applied() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;

    let text =
        tool_error(&app, &token, "add_tasks", json!({"tasks": [{"title": "fine"}, {"title": "  "}]})).await;
    assert!(text.contains("tasks[1].title"), "{text}");
    let text = tool_error(&app, &token, "add_tasks", json!({"tasks": [{"title": "x", "reminder_at": "2030-01-02T00:00:00Z", "due_at": "2030-01-01T00:00:00Z"}]})).await;
    assert!(text.contains("tasks[0].reminder_at"), "{text}");
    let list: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(list["total"], 0, "all or nothing");

    let created =
        ok(&app, &token, "add_tasks", json!({"tasks": [{"title": "a"}, {"title": "b", "priority": "HIGH"}]}))
            .await;
    let results = created["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["task"]["priority"], "high", "parsed by the REST rules");
    let (a, b) = (results[0]["task"]["id"].clone(), results[1]["task"]["id"].clone());
    let etag_a = results[0]["etag"].clone();

    // A stale etag fails the whole batch.
    ok(&app, &token, "update_tasks", json!({"tasks": [{"id": a, "changes": {"title": "a2"}}]})).await;
    let text =
        tool_error(&app, &token, "complete_tasks", json!({"tasks": [{"id": b}, {"id": a, "etag": etag_a}]}))
            .await;
    assert!(text.contains("precondition_failed") && text.contains("tasks[1]"), "{text}");
    let b_now: Value = rest_task(&app, &user, b.as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(b_now["completed"], false, "the first item was rolled back");

    let text = tool_error(&app, &token, "get_task", json!({"id": uuid::Uuid::new_v4()})).await;
    assert!(text.contains("not_found"), "{text}");
    let text = tool_error(
        &app,
        &token,
        "update_tasks",
        json!({"tasks": [{"id": a, "changes": {"priority": "urgent"}}]}),
    )
    .await;
    assert!(text.contains("tasks[0].changes.priority"), "{text}");
    let text = tool_error(&app, &token, "find_tasks", json!({"limit": 500, "sort": "color"})).await;
    assert!(text.contains("limit") && text.contains("sort"), "{text}");
    let text = tool_error(&app, &token, "find_tasks", json!({"colour": "red"})).await;
    assert!(text.contains("colour"), "{text}");
    let text = tool_error(
        &app,
        &token,
        "move_tasks",
        json!({"tasks": [{"id": a, "project_id": uuid::Uuid::new_v4()}]}),
    )
    .await;
    assert!(text.contains("tasks[0]"), "{text}");
    ok(&app, &token, "add_project", json!({"name": "Home"})).await;
    let text = tool_error(&app, &token, "add_project", json!({"name": "home"})).await;
    assert!(text.contains("409"), "{text}");
    let unknown = rpc(&app, &token, "tools/call", json!({"name": "drop_database", "arguments": {}})).await;
    assert_eq!(unknown["error"]["code"], -32602, "an unknown tool is a protocol error");
}

#[tokio::test]
async fn writes_are_the_rest_api_s_writes() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let project = ok(&app, &token, "add_project", json!({"name": "Work"})).await;
    let added =
        ok(&app, &token, "add_tasks", json!({"tasks": [{"title": "Report", "tags": ["Q3", "q3"]}]})).await;
    let id = added["results"][0]["task"]["id"].as_str().unwrap().to_owned();
    ok(&app, &token, "move_tasks", json!({"tasks": [{"id": id, "project_id": project["id"]}]})).await;
    ok(
        &app,
        &token,
        "update_tasks",
        json!({"tasks": [{"id": id, "changes": {"due_at": "2030-05-01T09:00:00+02:00"}}]}),
    )
    .await;
    ok(&app, &token, "complete_tasks", json!({"tasks": [{"id": id}]})).await;
    let rest: Value = rest_task(&app, &user, &id).await.json().await.unwrap();
    assert_eq!(rest["project_id"], project["id"]);
    assert_eq!(rest["due_at"], "2030-05-01T07:00:00Z");
    assert_eq!(rest["tags"], json!(["q3"]));
    assert_eq!(rest["completed"], true);
    let got = ok(&app, &token, "get_task", json!({"id": id})).await;
    assert_eq!(got["task"], rest);
    ok(&app, &token, "reopen_tasks", json!({"tasks": [{"id": id}]})).await;
    ok(&app, &token, "delete_tasks", json!({"tasks": [{"id": id}]})).await;
    assert_eq!(rest_task(&app, &user, &id).await.status(), 404, "in the trash");
    let listed = ok(&app, &token, "list_projects", json!({})).await;
    assert_eq!(listed["items"][0]["name"], "Work");
}

#[tokio::test]
async fn results_are_bounded_and_page_on_with_a_cursor() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let tasks: Vec<Value> = (0..60).map(|i| json!({"title": format!("task {i}")})).collect();
    ok(&app, &token, "add_tasks", json!({"tasks": tasks})).await;
    let first = ok(&app, &token, "find_tasks", json!({})).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 50);
    assert_eq!(first["total"], 60);
    let cursor = first["next_cursor"].as_str().expect("a cursor for the rest");
    let second = ok(&app, &token, "find_tasks", json!({"cursor": cursor})).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 10);
    assert_eq!(second["next_cursor"], Value::Null);
    let too_many: Vec<Value> = (0..101).map(|i| json!({"title": format!("t{i}")})).collect();
    let text = tool_error(&app, &token, "add_tasks", json!({"tasks": too_many})).await;
    assert!(text.contains("tasks"), "{text}");
}

#[tokio::test]
async fn no_tool_reaches_another_user_s_tasks() {
    let app = TestApp::spawn().await;
    let owner = app.new_user().await;
    let task = app.create_task(&owner, json!({"title": "Private", "due_at": "2020-01-01T00:00:00Z"})).await;
    let id = task["id"].clone();
    let stranger = app.new_user().await;
    let token = full_token(&app, &stranger).await;

    for tool in ["get_task", "reminder_history"] {
        let key = if tool == "get_task" { "id" } else { "task_id" };
        let text = tool_error(&app, &token, tool, json!({key: id})).await;
        assert!(text.contains("not_found") && !text.contains("Private"), "{tool}: {text}");
    }
    for tool in WRITE_TOOLS.iter().filter(|t| **t != "add_tasks") {
        let mut item = json!({"id": id});
        match *tool {
            "update_tasks" => item["changes"] = json!({"title": "mine now"}),
            "move_tasks" => item["project_id"] = Value::Null,
            _ => {}
        }
        let text = tool_error(&app, &token, tool, json!({"tasks": [item]})).await;
        assert!(text.contains("not_found"), "{tool}: {text}");
    }
    let found = ok(&app, &token, "find_tasks", json!({"q": "Private"})).await;
    assert_eq!(found["total"], 0);
    let agenda = ok(&app, &token, "agenda", json!({})).await;
    assert_eq!(agenda["overdue"]["total"], 0);
    let read =
        rpc(&app, &token, "resources/read", json!({"uri": format!("task://{}", id.as_str().unwrap())})).await;
    assert_eq!(read["error"]["code"], -32002);
    let after: Value = rest_task(&app, &owner, id.as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(after, task, "untouched");
}

#[tokio::test]
async fn the_agenda_sorts_open_tasks_into_overdue_today_and_the_next_week() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let now = chrono::Utc::now();
    let at = |hours: i64| (now + chrono::Duration::hours(hours)).to_rfc3339();
    app.create_task(&user, json!({"title": "late", "due_at": at(-30)})).await;
    app.create_task(&user, json!({"title": "soon", "due_at": at(72)})).await;
    app.create_task(&user, json!({"title": "later", "due_at": at(24 * 30)})).await;
    let agenda = ok(&app, &token, "agenda", json!({})).await;
    assert_eq!(agenda["timezone"], "UTC");
    assert_eq!(agenda["overdue"]["items"][0]["title"], "late");
    assert_eq!(agenda["next_7_days"]["items"][0]["title"], "soon");
    let shown = agenda["overdue"]["total"].as_i64().unwrap()
        + agenda["today"]["total"].as_i64().unwrap()
        + agenda["next_7_days"]["total"].as_i64().unwrap();
    assert_eq!(shown, 2, "a month away is not on the agenda");
    let read = rpc(&app, &token, "resources/templates/list", json!({})).await;
    assert_eq!(read["result"]["resourceTemplates"][0]["uriTemplate"], "task://{id}");
}

#[tokio::test]
async fn each_item_of_a_tool_call_counts_as_a_write() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.user_writes_per_minute = 8;
    })
    .await;
    let user = app.new_user().await;
    let token = create_token(&app, &user, &["tasks:read", "tasks:write"]).await;
    let three = json!({"tasks": [{"title": "1"}, {"title": "2"}, {"title": "3"}]});
    ok(&app, &token, "add_tasks", three.clone()).await;
    ok(&app, &token, "add_tasks", three.clone()).await;
    let text = tool_error(&app, &token, "add_tasks", three).await;
    assert!(text.contains("rate_limited") && text.contains("Retry after"), "{text}");
}

#[tokio::test]
async fn subtasks_are_added_with_parent_id_and_found_by_their_parent() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let parent = app.create_task(&user, json!({"title": "Move house"})).await;
    let steps = json!({"tasks": [
        {"title": "Book the van", "parent_id": parent["id"]},
        {"title": "Pack the books", "parent_id": parent["id"]},
    ]});
    ok(&app, &token, "add_tasks", steps).await;
    let children = ok(&app, &token, "find_tasks", json!({"parent_id": parent["id"]})).await;
    let mut titles: Vec<&str> =
        children["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["Book the van", "Pack the books"]);
    let top = ok(&app, &token, "find_tasks", json!({"parent_id": "none"})).await;
    let top = top["items"].as_array().unwrap();
    assert_eq!((top.len(), top[0]["subtask_count"].as_i64()), (1, Some(2)), "{top:?}");
    let text = tool_error(&app, &token, "find_tasks", json!({"parent_id": "soon"})).await;
    assert!(text.contains("parent_id"), "{text}");
}

/// The ids of a page of tasks, in order.
fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn find_tasks_filters_as_the_rest_list_does() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let garden = ok(&app, &token, "add_project", json!({"name": "Garden"})).await;
    let garden_id = garden["id"].as_str().unwrap().to_owned();
    let added = ok(&app, &token, "add_tasks", json!({"tasks": [
        {"title": "Buy seeds", "tags": ["errand", "garden"], "priority": "high", "due_at": "2030-01-02T10:00:00Z", "project_id": garden_id},
        {"title": "Buy bread", "tags": ["errand"], "priority": "low", "due_at": "2030-01-05T10:00:00Z"},
        {"title": "Fix the fence", "tags": ["garden"], "priority": "medium", "due_at": "2030-01-03T10:00:00Z", "project_id": garden_id},
        {"title": "Read a book", "priority": "high"},
        {"title": "Buy paint", "tags": ["garden", "errand"], "priority": "medium", "project_id": garden_id},
    ]}))
    .await;
    let id: Vec<String> = added["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["task"]["id"].as_str().unwrap().to_owned())
        .collect();
    ok(&app, &token, "complete_tasks", json!({"tasks": [{"id": id[4]}]})).await;

    // Each query as find_tasks arguments, as the REST query string, and the tasks it must find.
    let cases: Vec<(Value, String, Vec<usize>)> = vec![
        (json!({"q": "buy"}), "q=buy".into(), vec![0, 1, 4]),
        (
            json!({"tags": ["errand", "garden"], "tag_mode": "all"}),
            "tags=errand,garden&tag_mode=all".into(),
            vec![0, 4],
        ),
        (
            json!({"tags": ["errand", "garden"], "tag_mode": "any"}),
            "tags=errand,garden&tag_mode=any".into(),
            vec![0, 1, 2, 4],
        ),
        (json!({"priority": ["high", "low"]}), "priority=high,low".into(), vec![0, 1, 3]),
        (json!({"project_id": garden_id}), format!("project_id={garden_id}"), vec![0, 2, 4]),
        (
            json!({"due_from": "2030-01-02T00:00:00Z", "due_to": "2030-01-04T00:00:00Z"}),
            "due_from=2030-01-02T00:00:00Z&due_to=2030-01-04T00:00:00Z".into(),
            vec![0, 2],
        ),
        (json!({"completed": true}), "completed=true".into(), vec![4]),
        (
            json!({"q": "buy", "tags": ["errand"], "completed": false, "priority": ["high", "low"], "sort": "title"}),
            "q=buy&tags=errand&completed=false&priority=high,low&sort=title".into(),
            vec![1, 0],
        ),
    ];
    for (arguments, query, expected) in cases {
        let found = ok(&app, &token, "find_tasks", arguments.clone()).await;
        let rest: Value =
            app.get_as(&user.token, &format!("/api/v1/tasks?{query}")).await.json().await.unwrap();
        assert_eq!(ids(&found), ids(&rest), "{arguments} against ?{query}");
        assert_eq!(found["total"], rest["total"], "{arguments}");
        let mut found_ids = ids(&found);
        let mut expected: Vec<String> = expected.into_iter().map(|i| id[i].clone()).collect();
        if !query.contains("sort=") {
            found_ids.sort();
            expected.sort();
        }
        assert_eq!(found_ids, expected, "{arguments}");
    }
}

#[tokio::test]
async fn a_task_is_readable_as_a_resource_with_its_etag() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let task = app.create_task(&user, json!({"title": "Read me", "tags": ["x"]})).await;
    let id = task["id"].as_str().unwrap();
    let uri = format!("task://{id}");
    let read = rpc(&app, &token, "resources/read", json!({"uri": uri})).await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(
        (contents["uri"].as_str(), contents["mimeType"].as_str()),
        (Some(uri.as_str()), Some("application/json"))
    );
    let resource: Value = serde_json::from_str(contents["text"].as_str().unwrap()).unwrap();
    let response = rest_task(&app, &user, id).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let rest: Value = response.json().await.unwrap();
    assert_eq!(resource["task"], rest);
    assert_eq!(resource["etag"], etag, "the ETag REST sends");

    let projects_only = create_token(&app, &user, &["projects:read"]).await;
    let refused = rpc(&app, &projects_only, "resources/read", json!({"uri": uri})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("tasks:read"), "{refused}");
    assert_eq!(refused["error"]["data"]["required_scope"], "tasks:read");
    assert!(!refused.to_string().contains("Read me"), "nothing of the task leaks");
}

#[tokio::test]
async fn the_agenda_follows_the_user_s_time_zone() {
    use chrono::{Duration, TimeZone as _, Utc};
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let zone = chrono_tz::Pacific::Auckland;
    let response = app
        .send_as(
            &user.token,
            Method::PATCH,
            "/api/v1/users/me",
            Some(&json!({"timezone": "Pacific/Auckland"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let token = full_token(&app, &user).await;
    let now = Utc::now();
    let today = now.with_timezone(&zone).date_naive();
    // 23:30 in Auckland, later today there; in the day's last half hour, its last second instead.
    let local = |date: chrono::NaiveDate, h, m, s| {
        zone.from_local_datetime(&date.and_hms_opt(h, m, s).unwrap()).earliest().unwrap().with_timezone(&Utc)
    };
    let mut tonight = local(today, 23, 30, 0);
    if tonight <= now + Duration::seconds(30) {
        tonight = local(today, 23, 59, 59);
    }
    let tomorrow_morning = local(today + Duration::days(1), 0, 30, 0);
    app.create_task(&user, json!({"title": "tonight", "due_at": tonight.to_rfc3339()})).await;
    app.create_task(&user, json!({"title": "past", "due_at": (now - Duration::hours(2)).to_rfc3339()})).await;
    app.create_task(&user, json!({"title": "after midnight", "due_at": tomorrow_morning.to_rfc3339()})).await;
    let agenda = ok(&app, &token, "agenda", json!({})).await;
    let titles = |section: &str| -> Vec<String> {
        agenda[section]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(agenda["timezone"], "Pacific/Auckland");
    assert_eq!(titles("overdue"), ["past"]);
    assert_eq!(titles("today"), ["tonight"], "23:30 in Auckland is today there: {agenda}");
    assert_eq!(titles("next_7_days"), ["after midnight"]);
}

#[tokio::test]
async fn reminder_history_pages_on_past_fifty_with_an_exact_total() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    let task = app.create_task(&user, json!({"title": "Water the plants"})).await;
    let other = app.create_task(&user, json!({"title": "Other"})).await;
    let id: uuid::Uuid = task["id"].as_str().unwrap().parse().unwrap();
    // Sixty deliveries, an hour apart, as the reminder job would have recorded failed ones: sending
    // sixty emails through the worker would only slow the test.
    sqlx::query(
        "INSERT INTO reminder_deliveries (task_id, reminder_at, user_id, status, attempts, last_error)
         SELECT $1, timestamptz '2030-01-01 00:00:00+00' + n * interval '1 hour', $2, 'failed', 3, 'mailbox full'
         FROM generate_series(1, 60) AS n",
    )
    .bind(id)
    .bind(user.id)
    .execute(&app.pool)
    .await
    .unwrap();

    let first = ok(&app, &token, "reminder_history", json!({"task_id": id})).await;
    assert_eq!((first["items"].as_array().unwrap().len(), first["total"].as_i64()), (50, Some(60)));
    let cursor = first["next_cursor"].as_str().expect("a cursor past the first fifty").to_owned();
    let second = ok(&app, &token, "reminder_history", json!({"task_id": id, "cursor": cursor})).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 10);
    assert_eq!(second["next_cursor"], Value::Null);
    let mut paged = first["items"].as_array().unwrap().clone();
    paged.extend(second["items"].as_array().unwrap().iter().cloned());
    let rest: Value =
        app.get_as(&user.token, &format!("/api/v1/tasks/{id}/reminders")).await.json().await.unwrap();
    assert_eq!(Value::Array(paged), rest["items"], "the pages are REST's history, newest first, whole");

    let small = ok(&app, &token, "reminder_history", json!({"task_id": id, "limit": 7})).await;
    assert_eq!(small["items"].as_array().unwrap().len(), 7);
    let text = tool_error(&app, &token, "reminder_history", json!({"task_id": id, "cursor": "forged"})).await;
    assert!(text.contains("cursor"), "{text}");
    let text =
        tool_error(&app, &token, "reminder_history", json!({"task_id": other["id"], "cursor": cursor})).await;
    assert!(text.contains("cursor"), "another task's cursor: {text}");
    let text = tool_error(&app, &token, "reminder_history", json!({"task_id": id, "limit": 101})).await;
    assert!(text.contains("limit"), "{text}");
}

#[tokio::test]
async fn a_rate_limited_message_is_a_429_with_retry_after() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.user_reads_per_minute = 3;
    })
    .await;
    let user = app.new_user().await;
    let token = create_token(&app, &user, &["tasks:read"]).await;
    let mut limited = None;
    for attempt in 0..10 {
        let body = json!({"jsonrpc": "2.0", "id": attempt, "method": if attempt % 2 == 0 { "tools/list" } else { "ping" }});
        let response = post(&app, Some(&token), &body, &[("mcp-protocol-version", "2025-06-18")]).await;
        if response.status() != 200 {
            limited = Some((attempt, response));
            break;
        }
    }
    let (attempt, response) = limited.expect("the read limit is reached");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["id"], attempt, "the JSON-RPC error still answers the request");
    assert_eq!(answer["error"]["code"], -32000);
    assert_eq!(answer["error"]["data"]["code"], "rate_limited");
    // A tool call over the limit stays a tool result, so a model reads when to retry.
    let text = tool_error(&app, &token, "find_tasks", json!({})).await;
    assert!(text.contains("rate_limited") && text.contains("Retry after"), "{text}");
}

#[tokio::test]
async fn no_tool_writes_into_another_user_s_projects_or_tasks() {
    let app = TestApp::spawn().await;
    let owner = app.new_user().await;
    let owner_token = full_token(&app, &owner).await;
    let project = ok(&app, &owner_token, "add_project", json!({"name": "Owner's project"})).await;
    let parent = app.create_task(&owner, json!({"title": "Owner's parent"})).await;
    let stranger = app.new_user().await;
    let token = full_token(&app, &stranger).await;
    let mine = app.create_task(&stranger, json!({"title": "Stranger's own"})).await;

    let text = tool_error(
        &app,
        &token,
        "add_tasks",
        json!({"tasks": [{"title": "into their project", "project_id": project["id"]}]}),
    )
    .await;
    assert!(text.contains("tasks[0]") && !text.contains("(500)"), "{text}");
    let text = tool_error(
        &app,
        &token,
        "add_tasks",
        json!({"tasks": [{"title": "under their task", "parent_id": parent["id"]}]}),
    )
    .await;
    assert!(text.contains("tasks[0]") && !text.contains("(500)"), "{text}");
    let text = tool_error(
        &app,
        &token,
        "move_tasks",
        json!({"tasks": [{"id": mine["id"], "project_id": project["id"]}]}),
    )
    .await;
    assert!(text.contains("tasks[0]") && !text.contains("(500)"), "{text}");

    let theirs: Value = app.get_as(&stranger.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(ids(&theirs), [mine["id"].as_str().unwrap()], "nothing was added for the stranger");
    let after: Value = rest_task(&app, &stranger, mine["id"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(after, mine, "not moved");
    let owners: Value = app.get_as(&owner.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(ids(&owners), [parent["id"].as_str().unwrap()], "nothing was added for the owner");
    let project_now: Value = app
        .get_as(&owner.token, &format!("/api/v1/projects/{}", project["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(project_now, project, "the owner's project is as it was, its counts too");
    let listed = ok(&app, &token, "list_projects", json!({})).await;
    assert!(!listed.to_string().contains("Owner's project"), "{listed}");
}

#[tokio::test]
async fn deleted_tasks_are_in_the_trash_and_long_descriptions_come_back_whole() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = full_token(&app, &user).await;
    // The longest description allowed (2,000 characters), in several scripts and an emoji.
    let description = "é漢a 🙂".repeat(400);
    assert_eq!(description.chars().count(), 2000);
    let added =
        ok(&app, &token, "add_tasks", json!({"tasks": [{"title": "Long", "description": description}]}))
            .await;
    let id = added["results"][0]["task"]["id"].as_str().unwrap().to_owned();
    let got = ok(&app, &token, "get_task", json!({"id": id})).await;
    assert_eq!(got["task"]["description"], description);
    let text = tool_error(
        &app,
        &token,
        "add_tasks",
        json!({"tasks": [{"title": "Longer", "description": format!("{description}x")}]}),
    )
    .await;
    assert!(text.contains("tasks[0].description"), "{text}");

    ok(&app, &token, "delete_tasks", json!({"tasks": [{"id": id}]})).await;
    let trash: Value = app.get_as(&user.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    assert_eq!(ids(&trash), [id.as_str()], "the trash lists it");
    assert_eq!(trash["items"][0]["description"], description);
}
