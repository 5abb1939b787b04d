//! Projects: CRUD with the task resource's guarantees, tasks moving between them, the list's
//! project filter, deletion and archiving.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

async fn create_project(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let response = app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&body)).await;
    assert_eq!(response.status(), 201, "creating {body}");
    assert!(response.headers().contains_key("etag"));
    response.json().await.unwrap()
}

fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap()
}

async fn titles(app: &TestApp, user: &TestUser, query: &str) -> Vec<String> {
    let page: Value =
        app.get_as(&user.token, &format!("/api/v1/tasks?sort=title&{query}")).await.json().await.unwrap();
    page["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn projects_are_created_read_changed_and_deleted_with_etags() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let work = create_project(&app, &user, json!({"name": " Work ", "color": "#1E90FF"})).await;
    assert_eq!(work["name"], "Work");
    assert_eq!(work["color"], "#1e90ff");
    assert_eq!(work["position"], 0);
    assert_eq!(
        (work["archived"].clone(), work["open_tasks"].clone(), work["total_tasks"].clone()),
        (json!(false), json!(0), json!(0))
    );
    assert_eq!(work["version"], 1);
    let home = create_project(&app, &user, json!({"name": "Home"})).await;
    assert_eq!(home["position"], 1, "new projects go last");

    let path = format!("/api/v1/projects/{}", id(&work));
    let fetched = app.get_as(&user.token, &path).await;
    let tag = fetched.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(fetched.json::<Value>().await.unwrap(), work);

    let stale = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&user.token)
        .header("if-match", "\"00000000000000000000000000000000-1\"")
        .json(&json!({"name": "Job"}))
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412, "precondition_failed").await;
    let renamed = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&user.token)
        .header("if-match", &tag)
        .json(&json!({"name": "Job", "color": null, "position": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(
        (renamed["name"].clone(), renamed["color"].clone(), renamed["position"].clone()),
        (json!("Job"), Value::Null, json!(5))
    );
    assert_eq!(renamed["version"], 2);
    let same = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"name": "Job"}))).await;
    assert_eq!(same.json::<Value>().await.unwrap()["version"], 2, "a change to nothing keeps the version");

    let listed: Value = app.get_as(&user.token, "/api/v1/projects").await.json().await.unwrap();
    let names: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Home", "Job"], "in position order");

    assert_eq!(app.send_as(&user.token, Method::DELETE, &path, None).await.status(), 204);
    assert_problem(app.get_as(&user.token, &path).await, 404, "not_found").await;
}

#[tokio::test]
async fn if_none_match_on_a_project_gives_304_until_it_changes() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let project = create_project(&app, &user, json!({"name": "Cache me"})).await;
    let get = |tag: Option<String>| {
        let mut request = app.client.get(app.url(&format!("/api/v1/projects/{}", id(&project))));
        if let Some(tag) = tag {
            request = request.header("if-none-match", tag);
        }
        request.bearer_auth(&user.token).send()
    };
    let tag = get(None).await.unwrap().headers()["etag"].to_str().unwrap().to_owned();

    let cached = get(Some(tag.clone())).await.unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"].to_str().unwrap(), tag);
    assert!(cached.bytes().await.unwrap().is_empty());
    assert_eq!(get(Some(format!("W/{tag}"))).await.unwrap().status(), 304, "weak comparison");
    assert_eq!(get(Some("\"other\", *".into())).await.unwrap().status(), 304, "`*` matches any");
    assert_eq!(get(Some("\"other\"".into())).await.unwrap().status(), 200);

    let path = format!("/api/v1/projects/{}", id(&project));
    app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"name": "Changed"}))).await;
    let fresh = get(Some(tag.clone())).await.unwrap();
    assert_eq!(fresh.status(), 200);
    assert_ne!(fresh.headers()["etag"].to_str().unwrap(), tag);
    assert_eq!(fresh.json::<Value>().await.unwrap()["name"], "Changed");
}

#[tokio::test]
async fn project_names_are_unique_per_user_ignoring_case_and_checked() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    create_project(&app, &user, json!({"name": "Groceries"})).await;
    let again =
        app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "GROCERIES"}))).await;
    assert_problem(again, 409, "project_name_taken").await;
    let other = app.new_user().await;
    create_project(&app, &other, json!({"name": "Groceries"})).await;
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "Ok", "color": "blue"}), "color"),
        (json!({"name": "Ok", "position": -1}), "position"),
        (json!({"name": "Ok", "owner": "me"}), "owner"),
    ] {
        let response = app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&body)).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn another_users_project_is_404_and_cannot_hold_your_tasks() {
    let app = TestApp::spawn().await;
    let owner = app.new_user().await;
    let intruder = app.new_user().await;
    let project = create_project(&app, &owner, json!({"name": "Secret"})).await;
    let path = format!("/api/v1/projects/{}", id(&project));
    assert_problem(app.get_as(&intruder.token, &path).await, 404, "not_found").await;
    let patch = app.send_as(&intruder.token, Method::PATCH, &path, Some(&json!({"name": "Mine"}))).await;
    assert_problem(patch, 404, "not_found").await;
    assert_problem(app.send_as(&intruder.token, Method::DELETE, &path, None).await, 404, "not_found").await;
    let alias = format!("/api/v1/users/{}/projects", owner.id);
    assert_problem(app.get_as(&intruder.token, &alias).await, 403, "forbidden").await;
    assert_eq!(app.get_as(&owner.token, &alias).await.status(), 200);

    // Using it as project_id is a 422 that does not say whether it exists.
    let body = json!({"title": "Sneaky", "project_id": id(&project)});
    let response = app.send_as(&intruder.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
    let theirs = assert_problem(response, 422, "validation_failed").await;
    let body = json!({"title": "Sneaky", "project_id": uuid::Uuid::now_v7()});
    let response = app.send_as(&intruder.token, Method::POST, "/api/v1/tasks", Some(&body)).await;
    let nobodys = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(theirs["errors"], nobodys["errors"]);
    assert_eq!(theirs["errors"][0]["field"], "project_id");
    let unchanged: Value = app.get_as(&owner.token, &path).await.json().await.unwrap();
    assert_eq!(unchanged["total_tasks"], 0);
}

#[tokio::test]
async fn tasks_move_between_projects_and_the_list_filters_by_project() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let work = create_project(&app, &user, json!({"name": "Work"})).await;
    let home = create_project(&app, &user, json!({"name": "Home"})).await;
    let report =
        app.create_task(&user, json!({"title": "Report", "project_id": id(&work), "priority": "high"})).await;
    assert_eq!(report["project_id"], id(&work));
    app.create_task(&user, json!({"title": "Slides", "project_id": id(&work)})).await;
    app.create_task(&user, json!({"title": "Dishes", "project_id": id(&home), "priority": "high"})).await;
    app.create_task(&user, json!({"title": "Inbox thing"})).await;

    assert_eq!(titles(&app, &user, &format!("project_id={}", id(&work))).await, ["Report", "Slides"]);
    assert_eq!(titles(&app, &user, "project_id=inbox").await, ["Inbox thing"]);
    assert_eq!(titles(&app, &user, &format!("project_id={}&priority=high", id(&work))).await, ["Report"]);
    assert_eq!(titles(&app, &user, "priority=high").await, ["Dishes", "Report"]);
    let bad = app.get_as(&user.token, "/api/v1/tasks?project_id=nope").await;
    assert_problem(bad, 422, "validation_failed").await;

    let path = format!("/api/v1/tasks/{}", id(&report));
    let moved = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"project_id": id(&home)}))).await;
    assert_eq!(moved.json::<Value>().await.unwrap()["project_id"], id(&home));
    assert_eq!(titles(&app, &user, &format!("project_id={}", id(&home))).await, ["Dishes", "Report"]);
    let to_inbox = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"project_id": null}))).await;
    assert!(to_inbox.json::<Value>().await.unwrap()["project_id"].is_null());

    // Counts follow moves, completion and the trash, without counting on read.
    let complete = format!("/api/v1/tasks/{}/complete", id(&report));
    app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"project_id": id(&work)}))).await;
    app.send_as(&user.token, Method::PATCH, &complete, Some(&json!({"completed": true}))).await;
    let work_now: Value =
        app.get_as(&user.token, &format!("/api/v1/projects/{}", id(&work))).await.json().await.unwrap();
    assert_eq!((work_now["total_tasks"].clone(), work_now["open_tasks"].clone()), (json!(2), json!(1)));
    app.send_as(&user.token, Method::DELETE, &path, None).await;
    let work_now: Value =
        app.get_as(&user.token, &format!("/api/v1/projects/{}", id(&work))).await.json().await.unwrap();
    assert_eq!((work_now["total_tasks"].clone(), work_now["open_tasks"].clone()), (json!(1), json!(1)));
}

#[tokio::test]
async fn deleting_a_project_trashes_its_tasks_and_a_restored_one_lands_in_the_inbox() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let trip = create_project(&app, &user, json!({"name": "Trip"})).await;
    let remind = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let due = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let tickets = app
        .create_task(
            &user,
            json!({"title": "Tickets", "project_id": id(&trip), "due_at": due, "reminder_at": remind}),
        )
        .await;
    app.create_task(&user, json!({"title": "Hotel", "project_id": id(&trip)})).await;
    app.create_task(&user, json!({"title": "Elsewhere"})).await;
    assert_eq!(app.jobs("todo.reminder").await.len(), 1);

    let deleted =
        app.send_as(&user.token, Method::DELETE, &format!("/api/v1/projects/{}", id(&trip)), None).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(titles(&app, &user, "").await, ["Elsewhere"]);
    let trash: Value = app.get_as(&user.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    assert_eq!(trash["total"], 2);
    assert!(app.jobs("todo.reminder").await.is_empty(), "the trashed task's reminder is cancelled");

    let restored = app
        .send_as(&user.token, Method::POST, &format!("/api/v1/tasks/{}/restore", id(&tickets)), None)
        .await;
    let restored: Value = restored.json().await.unwrap();
    assert!(restored["project_id"].is_null(), "back in the inbox: {restored}");
    assert_eq!(titles(&app, &user, "project_id=inbox").await, ["Elsewhere", "Tickets"]);
}

#[tokio::test]
async fn archiving_hides_a_projects_tasks_from_the_list_until_named_or_unarchived() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let old = create_project(&app, &user, json!({"name": "Old"})).await;
    app.create_task(&user, json!({"title": "Archived task", "project_id": id(&old)})).await;
    app.create_task(&user, json!({"title": "Visible"})).await;
    let path = format!("/api/v1/projects/{}", id(&old));
    app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"archived": true}))).await;

    let page: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["title"], "Visible");
    let filtered: Value = app.get_as(&user.token, "/api/v1/tasks?q=task").await.json().await.unwrap();
    assert_eq!(filtered["total"], 0, "filters leave archived projects out too");
    assert_eq!(titles(&app, &user, &format!("project_id={}", id(&old))).await, ["Archived task"]);
    let archived: Value =
        app.get_as(&user.token, "/api/v1/projects?archived=true").await.json().await.unwrap();
    assert_eq!(archived["items"].as_array().unwrap().len(), 1);
    let active: Value =
        app.get_as(&user.token, "/api/v1/projects?archived=false").await.json().await.unwrap();
    assert!(active["items"].as_array().unwrap().is_empty());

    app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"archived": false}))).await;
    let page: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(page["total"], 2);
}

#[tokio::test]
async fn projects_are_exported_and_go_with_the_account() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let project = create_project(&app, &user, json!({"name": "Keep"})).await;
    app.create_task(&user, json!({"title": "In it", "project_id": id(&project)})).await;
    let export: Value = app.get_as(&user.token, "/api/v1/users/me/export").await.json().await.unwrap();
    assert_eq!(export["projects"][0]["name"], "Keep");
    assert_eq!(export["tasks"][0]["project_id"], id(&project));
    assert_eq!(app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None).await.status(), 204);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM projects").fetch_one(&app.pool).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_project_create_replays_under_its_idempotency_key() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let send = || {
        app.client
            .post(app.url("/api/v1/projects"))
            .bearer_auth(&user.token)
            .header("idempotency-key", "p-1")
            .json(&json!({"name": "Once"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"].to_str().unwrap(), format!("/api/v1/projects/{}", id(&first)));
    assert_eq!(again.json::<Value>().await.unwrap(), first);
}
