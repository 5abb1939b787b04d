//! `GET /changes`: every kind of change gets the user's next number, deletes leave tombstones, and
//! a client that follows the feed ends with exactly the server's state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};
use crate::sse::{Replica, follow_feed, server_state};

fn id(task: &Value) -> &str {
    task["id"].as_str().unwrap()
}

async fn changes(app: &TestApp, user: &TestUser, since: i64) -> Value {
    let response = app.get_as(&user.token, &format!("/api/v1/changes?since={since}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `(type, id)` of each entry, and checks the numbers rise strictly.
fn summary(page: &Value) -> Vec<(String, String)> {
    let entries = page["changes"].as_array().unwrap();
    let numbers: Vec<i64> = entries.iter().map(|c| c["change"].as_i64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "numbers rise strictly: {numbers:?}");
    entries
        .iter()
        .map(|c| (c["type"].as_str().unwrap().to_owned(), c["id"].as_str().unwrap().to_owned()))
        .collect()
}

/// Ages the trash past its retention and purges it, as the maintenance job would.
async fn purge_trash(app: &TestApp) -> u64 {
    app.age_trash().await;
    app.purge(None).await.trashed_tasks
}

#[tokio::test]
async fn every_kind_of_change_is_in_the_feed_once_in_its_latest_state() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let empty = changes(&app, &user, 0).await;
    assert_eq!(empty, json!({"changes": [], "next_since": 0, "has_more": false}));

    let a = app.create_task(&user, json!({"title": "a"})).await;
    let b = app.create_task(&user, json!({"title": "b"})).await;
    let c = app.create_task(&user, json!({"title": "c", "due_at": "2030-01-01T09:00:00Z"})).await;
    let start = changes(&app, &user, 0).await;
    assert_eq!(summary(&start).len(), 3);
    assert_eq!(start["changes"][0]["task"], a, "an upsert carries the task as GET returns it");
    let since = start["next_since"].as_i64().unwrap();

    let path = |t: &Value| format!("/api/v1/tasks/{}", id(t));
    app.send_as(&user.token, Method::PATCH, &path(&a), Some(&json!({"title": "a1"}))).await;
    app.send_as(&user.token, Method::PATCH, &path(&a), Some(&json!({"title": "a2"}))).await;
    app.send_as(&user.token, Method::POST, &format!("{}/toggle", path(&b)), None).await;
    app.send_as(&user.token, Method::DELETE, &path(&c), None).await;
    let page = changes(&app, &user, since).await;
    assert_eq!(
        summary(&page),
        [
            ("upsert".into(), id(&a).into()),
            ("upsert".into(), id(&b).into()),
            ("delete".into(), id(&c).into())
        ],
        "two updates of a collapse to one"
    );
    let current_a: Value = app.get_as(&user.token, &path(&a)).await.json().await.unwrap();
    assert_eq!(page["changes"][0]["task"], current_a);
    assert_eq!(page["changes"][0]["task"]["title"], "a2");
    assert!(page["changes"][2].get("task").is_none(), "a delete carries only the id");
    let since = page["next_since"].as_i64().unwrap();
    assert_eq!(since, page["changes"][2]["change"].as_i64().unwrap());
    assert_eq!(summary(&changes(&app, &user, since).await), [], "nothing after the head");

    // A no-op write takes no number; restore, then purge, each do.
    app.send_as(&user.token, Method::PATCH, &path(&a), Some(&json!({"title": "a2"}))).await;
    assert_eq!(summary(&changes(&app, &user, since).await), []);
    app.send_as(&user.token, Method::POST, &format!("{}/restore", path(&c)), None).await;
    let restored = changes(&app, &user, since).await;
    assert_eq!(summary(&restored), [("upsert".into(), id(&c).into())]);
    let since = restored["next_since"].as_i64().unwrap();
    app.send_as(&user.token, Method::DELETE, &path(&b), None).await;
    assert_eq!(purge_trash(&app).await, 1);
    let purged = changes(&app, &user, since).await;
    let entries = purged["changes"].as_array().unwrap();
    assert_eq!(
        summary(&purged),
        [("delete".into(), id(&b).into())],
        "the purge's tombstone replaces the trash's"
    );
    assert!(entries[0]["change"].as_i64().unwrap() > since + 1, "the purge took its own number");

    // A new device starts from the live tasks alone.
    let fresh = changes(&app, &user, 0).await;
    let ids: Vec<String> = summary(&fresh).into_iter().map(|(kind, id)| format!("{kind} {id}")).collect();
    assert_eq!(ids, [format!("upsert {}", id(&a)), format!("upsert {}", id(&c))]);
    assert_eq!(fresh["next_since"], purged["next_since"]);
}

#[tokio::test]
async fn a_client_paging_while_writes_continue_ends_with_exactly_the_server_state() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let ops: Vec<Value> =
        (0..100).map(|i| json!({"op": "create", "task": {"title": format!("seed {i}")}})).collect();
    let response =
        app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&json!({"operations": ops}))).await;
    assert_eq!(response.status(), 200);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (client, url, token, stop, written) =
            (app.client.clone(), app.url("/api/v1/tasks"), user.token.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut ids: Vec<String> = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let request = match (n % 3, ids.last()) {
                    (1, Some(last)) => {
                        client.patch(format!("{url}/{last}")).json(&json!({"title": format!("edit {n}")}))
                    }
                    (2, Some(_)) => client.delete(format!("{url}/{}", ids.remove(0))),
                    _ => client.post(&url).json(&json!({"title": format!("new {n}")})),
                };
                let response = request.bearer_auth(&token).send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                if response.status() == 201 {
                    ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
                }
                written.fetch_add(1, Ordering::Relaxed);
            }
            n
        })
    };

    // A new device pages from 0 in small pages while the writer runs, then catches up again.
    // Every few pages it lets the writer land a write first, so writes fall between its pages
    // however the machine schedules the two (a loaded machine once let the reader finish first).
    let mut replica = Replica::default();
    let (mut since, mut pages, before) = (0, 0, written.load(Ordering::Relaxed));
    loop {
        let page: Value = app
            .get_as(&user.token, &format!("/api/v1/changes?since={since}&limit=2"))
            .await
            .json()
            .await
            .unwrap();
        page["changes"].as_array().unwrap().iter().for_each(|c| replica.apply_change(c));
        since = page["next_since"].as_i64().unwrap();
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        pages += 1;
        if pages % 5 == 0 {
            let seen = written.load(Ordering::Relaxed);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while written.load(Ordering::Relaxed) == seen && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let during = written.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    let (entries, since) = follow_feed(&app, &user.token, since, 7).await;
    entries.iter().for_each(|c| replica.apply_change(c));
    assert!(during > 5, "the writer ran during the paging ({during} of {writes} writes)");
    assert_eq!(replica, server_state(&app, &user.token).await, "every task, field for field");
    let (after, _) = follow_feed(&app, &user.token, since, 7).await;
    assert!(after.is_empty(), "the last page repeats nothing");
}

#[tokio::test]
async fn numbers_stay_strictly_increasing_with_two_processes_writing_for_one_user() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    let user = app.new_user().await;
    let mut writers = Vec::new();
    for w in 0..6 {
        let (address, client) =
            if w % 2 == 0 { (&app.address, &app.client) } else { (&other.address, &other.client) };
        let (address, client, token) = (address.clone(), client.clone(), user.token.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..15 {
                let ops: Vec<Value> = (0..3)
                    .map(|k| json!({"op": "create", "task": {"title": format!("{w}-{i}-{k}")}}))
                    .collect();
                let request = client.post(format!("{address}/api/v1/tasks/bulk")).bearer_auth(&token);
                let response = request.json(&json!({"operations": ops})).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let (entries, since) = follow_feed(&app, &user.token, 0, 50).await;
    let numbers: Vec<i64> = entries.iter().map(|c| c["change"].as_i64().unwrap()).collect();
    assert_eq!(numbers.len(), 6 * 15 * 3);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "strictly increasing across pages");
    assert_eq!(since, *numbers.last().unwrap());
    assert_eq!(numbers, (1..=270).collect::<Vec<_>>(), "no number was taken twice, and none skipped");

    // A batch that fails at its second operation rolls back the number its first one took.
    let kept = app.create_task(&user, json!({"title": "kept"})).await;
    let stale = format!("\"{}-99\"", kept["id"].as_str().unwrap().replace('-', ""));
    let ops = json!({"operations": [
        {"op": "create", "task": {"title": "rolled back"}},
        {"op": "update", "id": kept["id"], "changes": {"title": "x"}, "if_match": stale},
    ]});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&ops)).await;
    assert_eq!(response.status(), 412);
    app.create_task(&user, json!({"title": "next"})).await;
    let (after, _) = follow_feed(&app, &user.token, since, 50).await;
    let numbers: Vec<i64> = after.iter().map(|c| c["change"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [271, 272], "the failed batch left no gap");
}

#[tokio::test]
async fn a_since_older_than_the_kept_tombstones_is_gone_but_a_new_device_can_still_page_through() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let old: Vec<Value> = futures::future::join_all(
        (0..5).map(|i| app.create_task(&user, json!({"title": format!("old {i}")}))),
    )
    .await;
    let doomed = app.create_task(&user, json!({"title": "doomed"})).await;
    let since_before_delete = changes(&app, &user, 0).await["next_since"].as_i64().unwrap();
    app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tasks/{}", id(&doomed)), None).await;
    purge_trash(&app).await;
    let after_delete = changes(&app, &user, since_before_delete).await;
    assert_eq!(summary(&after_delete), [("delete".into(), id(&doomed).into())]);

    // The tombstones pass their retention and the maintenance job prunes them.
    sqlx::query("UPDATE task_tombstones SET deleted_at = deleted_at - interval '31 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    let pruned = todo::db::changes::prune_tombstones(&app.pool, 30.0 * 86_400.0).await.unwrap();
    assert_eq!(pruned, 1);

    let response = app.get_as(&user.token, &format!("/api/v1/changes?since={since_before_delete}")).await;
    let problem = assert_problem(response, 410, "resync_required").await;
    assert!(problem["detail"].as_str().unwrap().contains("since=0"), "{problem}");

    // Starting again from 0 works page by page: the old tasks were re-announced above the mark.
    let (entries, since) = follow_feed(&app, &user.token, 0, 2).await;
    let mut replica = Replica::default();
    entries.iter().for_each(|c| replica.apply_change(c));
    assert_eq!(replica.0.len(), old.len());
    assert_eq!(replica, server_state(&app, &user.token).await);
    assert_eq!(summary(&changes(&app, &user, since).await), []);

    // A number from the future is not from this feed.
    let response = app.get_as(&user.token, &format!("/api/v1/changes?since={}", since + 1000)).await;
    assert_problem(response, 410, "resync_required").await;
}

#[tokio::test]
async fn another_users_changes_never_appear_in_your_feed() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let mine = app.create_task(&alice, json!({"title": "mine"})).await;
    for i in 0..5 {
        let theirs = app.create_task(&bob, json!({"title": format!("theirs {i}")})).await;
        app.send_as(&bob.token, Method::DELETE, &format!("/api/v1/tasks/{}", id(&theirs)), None).await;
    }
    purge_trash(&app).await;
    let (entries, _) = follow_feed(&app, &alice.token, 0, 100).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], mine["id"]);
    let page = changes(&app, &alice, 1).await;
    assert_eq!(summary(&page), [], "bob's tombstones are not alice's");

    let response = app.get_as(&alice.token, &format!("/api/v1/users/{}/changes?since=0", bob.id)).await;
    assert_problem(response, 403, "forbidden").await;
    let response = app.get_as(&alice.token, &format!("/api/v1/users/{}/changes?since=0", alice.id)).await;
    assert_eq!(response.status(), 200, "the alias works for yourself");
}

#[tokio::test]
async fn bad_feed_parameters_get_problems_naming_them() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for (query, status, code) in [
        ("since=-1", 422, "validation_failed"),
        ("since=abc", 422, "validation_failed"),
        ("limit=0", 422, "validation_failed"),
        ("limit=501", 422, "validation_failed"),
        ("since=99999999999999999999", 422, "validation_failed"),
        ("cursor=x", 400, "bad_request"),
    ] {
        let response = app.get_as(&user.token, &format!("/api/v1/changes?{query}")).await;
        let problem = assert_problem(response, status, code).await;
        if status == 422 {
            let field = query.split('=').next().unwrap();
            assert_eq!(problem["errors"][0]["field"], field, "{query}");
        }
    }
    let response = app.get("/api/v1/changes").await;
    assert_problem(response, 401, "token_missing").await;
}

async fn head(app: &TestApp, user: &TestUser) -> i64 {
    todo::db::changes::head(&app.pool, user.id).await.unwrap()
}

#[tokio::test]
async fn a_rerun_of_the_next_occurrence_job_takes_no_change_number() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(
            &user,
            json!({"title": "weekly", "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=WEEKLY"}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}/complete", id(&task));
    let done: Value = app
        .send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true})))
        .await
        .json()
        .await
        .unwrap();
    let job = todo::jobs::task_jobs::NextOccurrence {
        user_id: user.id,
        task_id: id(&task).parse().unwrap(),
        series_id: task["series_id"].as_str().unwrap().parse().unwrap(),
        occurrence_at: "2030-03-04T09:00:00Z".parse().unwrap(),
        completed_at: done["completed_at"].as_str().unwrap().parse().unwrap(),
    };
    todo::jobs::recurrence::create_next(&app.pool, &job, app.settings.tasks.max_per_user).await.unwrap();
    let after_first = head(&app, &user).await;
    todo::jobs::recurrence::create_next(&app.pool, &job, app.settings.tasks.max_per_user).await.unwrap();
    assert_eq!(head(&app, &user).await, after_first, "the rerun found the occurrence made");
    let (entries, _) = follow_feed(&app, &user.token, 0, 100).await;
    assert_eq!(entries.len(), 2, "the completed occurrence and its successor");
}
