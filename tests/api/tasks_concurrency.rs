//! Writes through per-user actors, and the invariants across several web processes.

use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{TestApp, assert_problem, eventually};

#[tokio::test]
async fn a_hundred_concurrent_toggles_leave_the_state_their_count_implies() {
    // Room and time for all of them: this is about ordering, not backpressure.
    let app = TestApp::spawn_with(|s| {
        s.actors.mailbox_capacity = 128;
        s.actors.send_timeout_secs = 60;
    })
    .await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Hammered"})).await;
    let path = format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap());

    let responses = join_all((0..100).map(|_| app.send_as(&user.token, Method::POST, &path, None))).await;
    let mut versions: Vec<i64> = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        versions.push(response.json::<Value>().await.unwrap()["version"].as_i64().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=101).collect::<Vec<_>>(), "each toggle saw its own version");
    let now: Value = app
        .get_as(&user.token, &format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["completed"], false, "an even number of toggles");
    assert_eq!(now["version"], 101);
}

#[tokio::test]
async fn idle_actors_are_reaped_and_restarted_on_the_next_write() {
    let app = TestApp::spawn_with(|s| s.actors.idle_timeout_secs = 2).await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Wake me"})).await;
    assert_eq!(app.state.actors.live(), 1, "started by the first write");

    let mut reaped = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if app.state.actors.live() == 0 {
            reaped = true;
            break;
        }
    }
    assert!(reaped, "the idle actor stopped");

    let path = format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::POST, &path, None).await.status(), 200);
    assert_eq!(app.state.actors.live(), 1, "restarted by the next write");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("user_actors ")), "{metrics}");
}

#[tokio::test]
async fn one_users_writes_wait_for_each_other_while_another_users_do_not() {
    let app = TestApp::spawn().await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let blocked = app.create_task(&alice, json!({"title": "A"})).await;
    let other = app.create_task(&alice, json!({"title": "B"})).await;
    let bobs = app.create_task(&bob, json!({"title": "C"})).await;
    let mut blocker = lock_task(&app, blocked["id"].as_str().unwrap()).await;

    let toggle = |user: &crate::helpers::TestUser, task: &Value| {
        let request =
            app.client.post(app.url(&format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap())));
        tokio::spawn(request.bearer_auth(&user.token).send())
    };
    let first = toggle(&alice, &blocked);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A different task, but the same user: it queues behind the blocked write in Alice's actor.
    let second = toggle(&alice, &other);
    let bobs_write = toggle(&bob, &bobs);
    let bob_status =
        tokio::time::timeout(Duration::from_secs(5), bobs_write).await.expect("Bob is not held up");
    assert_eq!(bob_status.unwrap().unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "Alice's second write waits for her first");

    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(second.await.unwrap().unwrap().status(), 200);
}

/// Holds a row lock on the task from outside the app, so its actor's write waits.
async fn lock_task(app: &TestApp, id: &str) -> sqlx::PgConnection {
    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query("SELECT 1 FROM tasks WHERE id = $1::uuid FOR UPDATE")
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

#[tokio::test]
async fn a_full_mailbox_answers_503_with_retry_after_instead_of_queueing() {
    let app = TestApp::spawn_with(|s| s.actors.mailbox_capacity = 1).await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Busy"})).await;
    let id = task["id"].as_str().unwrap().to_owned();
    let mut blocker = lock_task(&app, &id).await;

    // While the first write waits on the lock, at most one more fits in the mailbox; the rest are
    // refused at once. Hold the lock until the refusals are back, however slowly requests arrive.
    let path = format!("/api/v1/tasks/{id}/toggle");
    let first = tokio::spawn({
        let (client, url, token) = (app.client.clone(), app.url(&path), user.token.clone());
        async move { client.post(url).bearer_auth(token).send().await.unwrap() }
    });
    // The first write is running (waiting on the row lock) before the others arrive: without
    // this, all eight could reach the mailbox before the actor takes the first from it.
    eventually("the first write to wait on the lock", Duration::from_secs(10), || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (waiting > 0).then_some(())
    })
    .await;
    let mut pending: futures::stream::FuturesUnordered<_> =
        (0..7).map(|_| app.send_as(&user.token, Method::POST, &path, None)).collect();
    let mut responses = Vec::new();
    while responses.len() < 6 {
        let next = tokio::time::timeout(Duration::from_secs(10), pending.next()).await;
        responses.push(next.expect("refusals come back while the lock is held").expect("a response"));
    }
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    while let Some(response) = pending.next().await {
        responses.push(response);
    }
    responses.push(first.await.unwrap());

    let mut accepted = 0;
    for response in responses {
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "1");
            assert_problem(response, 503, "too_many_pending_writes").await;
        } else {
            assert_eq!(response.status(), 200);
            accepted += 1;
        }
    }
    assert_eq!(accepted, 2, "the running write and the one queued behind it");
    let now: Value = app.get_as(&user.token, &format!("/api/v1/tasks/{id}")).await.json().await.unwrap();
    assert_eq!(now["version"], 1 + accepted, "exactly the accepted writes were applied");
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_quickly_and_recovers() {
    let app = TestApp::spawn_with(|s| {
        s.database.max_connections = 3;
        s.database.acquire_timeout_secs = 1;
    })
    .await;
    let other = app.new_user().await;
    // Three users' writes each hold a pool connection while they wait on a row lock.
    let mut blockers = Vec::new();
    let mut stuck = Vec::new();
    for _ in 0..3 {
        let user = app.new_user().await;
        let task = app.create_task(&user, json!({"title": "Stuck"})).await;
        let id = task["id"].as_str().unwrap().to_owned();
        blockers.push(lock_task(&app, &id).await);
        let path = format!("/api/v1/tasks/{id}/toggle");
        let (client, url, token) = (app.client.clone(), app.url(&path), user.token.clone());
        stuck.push(tokio::spawn(async move {
            client.post(url).bearer_auth(token).send().await.unwrap().status()
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Another user is told to come back, within about the acquire timeout, rather than queued.
    let started = std::time::Instant::now();
    let response = app.get_as(&other.token, "/api/v1/tasks").await;
    let waited = started.elapsed();
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 503, "database_unavailable").await;
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");

    for mut blocker in blockers {
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    }
    for write in stuck {
        assert_eq!(write.await.unwrap(), 200, "the waiting writes complete");
    }
    assert_eq!(app.get_as(&other.token, "/api/v1/tasks").await.status(), 200, "and the pool serves again");
}

#[tokio::test]
async fn a_write_that_outlasts_the_send_timeout_is_a_503_not_a_hang() {
    let app = TestApp::spawn_with(|s| s.actors.send_timeout_secs = 2).await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Slow"})).await;
    let id = task["id"].as_str().unwrap().to_owned();
    let mut blocker = lock_task(&app, &id).await;

    // The first toggle starts and waits on the lock; the second waits in the mailbox.
    let path = format!("/api/v1/tasks/{id}/toggle");
    let (started, queued) = futures::join!(
        app.send_as(&user.token, Method::POST, &path, None),
        app.send_as(&user.token, Method::POST, &path, None)
    );
    for response in [started, queued] {
        assert_eq!(response.headers()["retry-after"], "2");
        assert_problem(response, 503, "write_timed_out").await;
    }
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    // The started write was past the point of no return; the queued one is dropped, since its
    // caller was already told it failed.
    let version = || async {
        let now: Value = app.get_as(&user.token, &format!("/api/v1/tasks/{id}")).await.json().await.unwrap();
        now["version"].as_i64().unwrap()
    };
    let mut landed = false;
    for _ in 0..50 {
        if version().await == 2 {
            landed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(landed, "the started write commits once the lock is free");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(version().await, 2, "the queued write never runs");
}

#[tokio::test]
async fn two_web_processes_keep_every_invariant_on_one_users_tasks() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Contended"})).await;
    let id = task["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/tasks/{id}");

    // Toggles from both processes at once are each applied exactly once.
    let toggle = format!("{path}/toggle");
    let here = (0..25).map(|_| app.send_as(&user.token, Method::POST, &toggle, None));
    let there = (0..24).map(|_| other.send_as(&user.token, Method::POST, &toggle, &[], None));
    let (here, there) = futures::join!(join_all(here), join_all(there));
    let mut versions: Vec<i64> = Vec::new();
    for response in here.into_iter().chain(there) {
        assert_eq!(response.status(), 200);
        versions.push(response.json::<Value>().await.unwrap()["version"].as_i64().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=50).collect::<Vec<_>>(), "version rose by exactly one per change");
    let now: Value = app.get_as(&user.token, &path).await.json().await.unwrap();
    assert_eq!((now["completed"].as_bool(), now["version"].as_i64()), (Some(true), Some(50)), "49 toggles");

    // Conditional writes racing from both processes on one version: exactly one wins.
    let tag = format!("\"{}-50\"", id.replace('-', ""));
    let bodies: Vec<Value> = (0..10).map(|i| json!({"title": format!("writer {i}")})).collect();
    let headers = [("if-match", tag.clone())];
    let here = bodies[..5].iter().map(|b| {
        let request =
            app.client.patch(app.url(&path)).bearer_auth(&user.token).header("if-match", &tag).json(b);
        async move { request.send().await.unwrap() }
    });
    let there =
        bodies[5..].iter().map(|b| other.send_as(&user.token, Method::PATCH, &path, &headers, Some(b)));
    let (here, there) = futures::join!(join_all(here), join_all(there));
    let statuses: Vec<u16> = here.iter().chain(there.iter()).map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 9, "{statuses:?}");
    let after: Value = app.get_as(&user.token, &path).await.json().await.unwrap();
    assert_eq!(after["version"], 51);
}
