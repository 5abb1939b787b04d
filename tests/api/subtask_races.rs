//! Tree writes racing on two web processes (each with its own actors and pool): whichever
//! order PostgreSQL gives them, both answer as they would alone, nothing deadlocks, and the
//! tree, its counts and its projects stay consistent.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

fn path(task: &Value) -> String {
    format!("/api/v1/tasks/{}", task["id"].as_str().unwrap())
}

/// Every kept count equals what it counts, and every live subtask is under a live parent in its
/// project.
async fn assert_tree_consistent(app: &TestApp) {
    let wrong_counts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasks p
         WHERE p.subtask_count <> (SELECT count(*) FROM tasks c WHERE c.parent_id = p.id AND c.deleted_at IS NULL)
            OR p.completed_subtask_count <> (SELECT count(*) FROM tasks c
                                             WHERE c.parent_id = p.id AND c.deleted_at IS NULL AND c.completed)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(wrong_counts, 0, "every count is what it counts");
    let stray: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasks c JOIN tasks p ON p.id = c.parent_id
         WHERE c.deleted_at IS NULL AND (p.deleted_at IS NOT NULL OR p.project_id IS DISTINCT FROM c.project_id)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stray, 0, "no live subtask under a trashed parent or in another project");
}

async fn project(app: &TestApp, user: &TestUser, name: &str) -> Value {
    let body = json!({"name": name});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&body)).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn moving_a_parent_on_one_process_while_deleting_its_subtask_on_another() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    let user = app.new_user().await;
    let target = project(&app, &user, "Target").await;
    for round in 0..6 {
        let parent = app.create_task(&user, json!({"title": format!("P{round}")})).await;
        let child =
            app.create_task(&user, json!({"title": format!("C{round}"), "parent_id": parent["id"]})).await;
        let kept =
            app.create_task(&user, json!({"title": format!("K{round}"), "parent_id": child["id"]})).await;
        let sibling =
            app.create_task(&user, json!({"title": format!("S{round}"), "parent_id": parent["id"]})).await;
        let (parent_path, child_path) = (path(&parent), path(&child));
        let moving = json!({"project_id": target["id"]});
        let (moved, deleted) = tokio::join!(
            app.send_as(&user.token, Method::PATCH, &parent_path, Some(&moving)),
            other.send_as(&user.token, Method::DELETE, &child_path, &[], None),
        );
        assert_eq!((moved.status().as_u16(), deleted.status().as_u16()), (200, 204), "round {round}");
        for gone in [&child, &kept] {
            assert_eq!(app.get_as(&user.token, &path(gone)).await.status(), 404, "round {round}");
        }
        let sibling: Value = app.get_as(&user.token, &path(&sibling)).await.json().await.unwrap();
        assert_eq!(sibling["project_id"], target["id"], "round {round}");
        let parent: Value = app.get_as(&user.token, &parent_path).await.json().await.unwrap();
        assert_eq!(parent["subtask_count"], 1, "round {round}");
    }
    assert_tree_consistent(&app).await;
}

#[tokio::test]
async fn completing_a_parent_on_one_process_while_its_subtask_is_edited_on_another() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    let user = app.new_user().await;
    for round in 0..6 {
        let parent = app.create_task(&user, json!({"title": format!("P{round}")})).await;
        let child =
            app.create_task(&user, json!({"title": format!("C{round}"), "parent_id": parent["id"]})).await;
        let grandchild =
            app.create_task(&user, json!({"title": format!("G{round}"), "parent_id": child["id"]})).await;
        let complete_path = format!("{}/complete", path(&parent));
        let (completing, editing) =
            (json!({"completed": true}), json!({"title": format!("C{round} edited")}));
        let child_path = path(&child);
        let (completed, edited) = tokio::join!(
            app.send_as(&user.token, Method::PATCH, &complete_path, Some(&completing)),
            other.send_as(&user.token, Method::PATCH, &child_path, &[], Some(&editing)),
        );
        assert_eq!((completed.status().as_u16(), edited.status().as_u16()), (200, 200), "round {round}");
        let child: Value = app.get_as(&user.token, &child_path).await.json().await.unwrap();
        assert_eq!(
            (child["title"].as_str(), child["completed"].as_bool()),
            (Some(&*format!("C{round} edited")), Some(true))
        );
        let grandchild: Value = app.get_as(&user.token, &path(&grandchild)).await.json().await.unwrap();
        assert_eq!(grandchild["completed"], true, "round {round}");
        let parent: Value = app.get_as(&user.token, &path(&parent)).await.json().await.unwrap();
        assert_eq!(
            (parent["subtask_count"].as_i64(), parent["completed_subtask_count"].as_i64()),
            (Some(1), Some(1))
        );
    }
    assert_tree_consistent(&app).await;
}

#[tokio::test]
async fn reparenting_and_completing_across_processes_keeps_every_count_true() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    let user = app.new_user().await;
    let left = app.create_task(&user, json!({"title": "Left"})).await;
    let right = app.create_task(&user, json!({"title": "Right"})).await;
    let mut children = Vec::new();
    for i in 0..8 {
        children
            .push(app.create_task(&user, json!({"title": format!("N{i}"), "parent_id": left["id"]})).await);
    }
    // Process one moves every child to the right while process two completes and reopens them.
    let moves = async {
        for child in &children {
            let body = json!({"parent_id": right["id"]});
            let response = app.send_as(&user.token, Method::PATCH, &path(child), Some(&body)).await;
            assert_eq!(response.status(), 200);
        }
    };
    let toggles = async {
        for child in &children {
            let response =
                other.send_as(&user.token, Method::POST, &format!("{}/toggle", path(child)), &[], None).await;
            assert_eq!(response.status(), 200);
        }
    };
    tokio::join!(moves, toggles);
    let right: Value = app.get_as(&user.token, &path(&right)).await.json().await.unwrap();
    assert_eq!(
        (right["subtask_count"].as_i64(), right["completed_subtask_count"].as_i64()),
        (Some(8), Some(8))
    );
    let left: Value = app.get_as(&user.token, &path(&left)).await.json().await.unwrap();
    assert_eq!(left["subtask_count"], 0);
    assert_tree_consistent(&app).await;
}

#[tokio::test]
async fn a_stream_on_another_process_gets_every_task_a_tree_write_touched() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    let user = app.new_user().await;
    let parent = app.create_task(&user, json!({"title": "Parent"})).await;
    let child = app.create_task(&user, json!({"title": "Child", "parent_id": parent["id"]})).await;
    let grandchild = app.create_task(&user, json!({"title": "Grandchild", "parent_id": child["id"]})).await;
    let mut stream = crate::sse::EventStream::bearer(&other.address, &user.token).await;

    let complete = format!("{}/complete", path(&parent));
    let response =
        app.send_as(&user.token, Method::PATCH, &complete, Some(&json!({"completed": true}))).await;
    assert_eq!(response.status(), 200);
    let mut upserted = std::collections::BTreeMap::new();
    while let Some(event) = stream.next_event(std::time::Duration::from_secs(1)).await {
        assert_eq!(event.kind(), "task.upserted");
        let task = event.data();
        upserted.insert(task["title"].as_str().unwrap().to_owned(), task);
    }
    assert_eq!(upserted.keys().collect::<Vec<_>>(), ["Child", "Grandchild", "Parent"]);
    assert!(upserted.values().all(|t| t["completed"] == true));
    assert_eq!(upserted["Child"]["completed_subtask_count"], 1, "the last state of each task arrives");
    assert_eq!(
        upserted["Parent"],
        app.get_as(&user.token, &path(&parent)).await.json::<Value>().await.unwrap()
    );

    assert_eq!(app.send_as(&user.token, Method::DELETE, &path(&parent), None).await.status(), 204);
    let mut deleted = Vec::new();
    while let Some(event) = stream.next_event(std::time::Duration::from_secs(1)).await {
        assert_eq!(event.kind(), "task.deleted");
        deleted.push(event.data()["id"].as_str().unwrap().to_owned());
    }
    deleted.sort();
    let mut expected: Vec<String> =
        [&parent, &child, &grandchild].iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    expected.sort();
    assert_eq!(deleted, expected);
}

/// One side of a raw race: on its own connection, puts `child` under `parent` and commits,
/// starting its statement when the other side does.
async fn reparent_raw(
    url: &str,
    child: uuid::Uuid,
    parent: uuid::Uuid,
    start: &tokio::sync::Barrier,
) -> Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    start.wait().await;
    let moved = sqlx::query("UPDATE tasks SET parent_id = $1 WHERE id = $2")
        .bind(parent)
        .bind(child)
        .execute(&mut *tx)
        .await;
    match moved {
        Ok(_) => tx.commit().await,
        Err(error) => Err(error),
    }
}

#[tokio::test]
async fn two_raw_transactions_moving_a_under_b_and_b_under_a_cannot_both_commit() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let uuid = |task: &Value| task["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap();
    for round in 0..10 {
        let a = uuid(&app.create_task(&user, json!({"title": format!("A{round}")})).await);
        let b = uuid(&app.create_task(&user, json!({"title": format!("B{round}")})).await);
        let start = tokio::sync::Barrier::new(2);
        let (first, second) =
            tokio::join!(reparent_raw(&url, a, b, &start), reparent_raw(&url, b, a, &start));
        let failed: Vec<&sqlx::Error> =
            [&first, &second].into_iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(failed.len(), 1, "round {round}: exactly one commits: {first:?} {second:?}");
        // The loser is stopped by the commit-time cycle check, by the tree lock's try (40001), or
        // by PostgreSQL's deadlock detector (40P01) when the count triggers' row locks cross.
        let error = failed[0].as_database_error().expect("a database error");
        let cycle = error.constraint() == Some("tasks_parent_cycle");
        let code = error.code().unwrap_or_default().into_owned();
        assert!(cycle || code == "40001" || code == "40P01", "round {round}: {error} ({code})");
        let parents: Vec<Option<uuid::Uuid>> =
            sqlx::query_scalar("SELECT parent_id FROM tasks WHERE id IN ($1, $2)")
                .bind(a)
                .bind(b)
                .fetch_all(&app.pool)
                .await
                .unwrap();
        assert_eq!(parents.iter().flatten().count(), 1, "round {round}: one is under the other");
    }
    // No task anywhere is its own ancestor.
    let cyclic: i64 = sqlx::query_scalar(
        "WITH RECURSIVE up (start, id, level) AS (
             SELECT id, parent_id, 1 FROM tasks WHERE parent_id IS NOT NULL
             UNION ALL
             SELECT up.start, t.parent_id, up.level + 1 FROM up JOIN tasks t ON t.id = up.id
             WHERE t.parent_id IS NOT NULL AND up.level < 10
         ) SELECT count(*) FROM up WHERE id = start",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(cyclic, 0);
    assert_tree_consistent(&app).await;
}
