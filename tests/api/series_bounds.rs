//! The outside review's recurrence findings: reads that cost bounded CPU, series that keep their
//! wall time across daylight saving, rules that hold by RFC 5545, times the API can return and
//! accept back, and occurrences that obey the task cap.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use todo::jobs::Handled;
use todo::jobs::recurrence::{create_next, resume_paused};
use todo::jobs::task_jobs::NextOccurrence;

use crate::helpers::{TestApp, TestUser, assert_problem};

const TASKS: &str = "/api/v1/tasks";

async fn post_task(app: &TestApp, user: &TestUser, body: &Value) -> reqwest::Response {
    app.send_as(&user.token, Method::POST, TASKS, Some(body)).await
}

fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect()
}

async fn complete(app: &TestApp, user: &TestUser, id: &str) -> Value {
    let path = format!("{TASKS}/{id}/complete");
    let response = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true}))).await;
    assert_eq!(response.status(), 200, "completing {id}");
    response.json().await.unwrap()
}

async fn get_task(app: &TestApp, user: &TestUser, id: &str) -> Value {
    app.get_as(&user.token, &format!("{TASKS}/{id}")).await.json().await.unwrap()
}

/// Runs every pending follow-up through the worker's handler and marks it done.
async fn run_follow_ups(app: &TestApp, max_tasks: u32) -> Vec<Handled> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "UPDATE apalis.jobs SET status = 'Done', done_at = now()
         WHERE job_type = 'todo.recurrence' AND status = 'Pending' RETURNING job",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut outcomes = Vec::new();
    for payload in payloads {
        let job: NextOccurrence = serde_json::from_slice(&payload).unwrap();
        outcomes.push(create_next(&app.pool, &job, max_tasks).await.expect("handler succeeds"));
    }
    outcomes
}

/// The open occurrence of the user's one series.
async fn open_task(app: &TestApp, user: &TestUser) -> Value {
    let page: Value =
        app.get_as(&user.token, &format!("{TASKS}?completed=false")).await.json().await.unwrap();
    let open: Vec<&Value> =
        page["items"].as_array().unwrap().iter().filter(|t| t["is_recurring"] == true).collect();
    assert_eq!(open.len(), 1, "one open occurrence: {page}");
    open[0].clone()
}

#[tokio::test]
async fn a_daily_series_returns_to_its_wall_time_after_the_spring_gap() {
    // The review's case: 02:30 Berlin does not exist on 28 March 2027, so that occurrence is at
    // 03:30 (RFC 5545); the ones after it are back at 02:30, not stuck at 03:30.
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let max = app.settings.tasks.max_per_user;
    let first = app
        .create_task(
            &user,
            json!({"title": "Night shift check", "due_at": "2027-03-27T02:30:00+01:00",
                   "timezone": "Europe/Berlin", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await;
    assert_eq!(first["next_occurrence_at"], "2027-03-28T01:30:00Z", "03:30 CEST, in the gap's place");
    let mut dues = vec![first["due_at"].clone()];
    let mut current = first;
    for _ in 0..3 {
        complete(&app, &user, current["id"].as_str().unwrap()).await;
        assert_eq!(run_follow_ups(&app, max).await, [Handled::Done]);
        current = open_task(&app, &user).await;
        dues.push(current["due_at"].clone());
    }
    assert_eq!(
        dues,
        ["2027-03-27T01:30:00Z", "2027-03-28T01:30:00Z", "2027-03-29T00:30:00Z", "2027-03-30T00:30:00Z"],
        "02:30 CET, 03:30 CEST (the gap), then 02:30 CEST again"
    );
    assert_eq!(current["next_occurrence_at"], "2027-03-31T00:30:00Z");
}

#[tokio::test]
async fn times_outside_1900_to_9999_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for (field, at) in [
        ("due_at", "0000-01-01T00:00:00+01:00"),
        ("due_at", "9999-12-31T23:59:59-23:59"),
        ("due_at", "0001-01-01T00:00:00Z"),
        ("due_at", "1899-12-31T23:59:59Z"),
        ("reminder_at", "0000-01-01T00:00:00+01:00"),
        ("reminder_at", "9999-12-31T23:59:59-23:59"),
    ] {
        let response = post_task(&app, &user, &json!({"title": "t", field: at})).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(fields(&problem), [field], "{field} = {at}");
    }
    // The edges themselves are accepted, and come back exactly as they can be sent again.
    for at in ["1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
        let task = app.create_task(&user, json!({"title": "edge", "due_at": at, "reminder_at": at})).await;
        assert_eq!(task["due_at"], at);
        let again = post_task(&app, &user, &json!({"title": "again", "due_at": task["due_at"]})).await;
        assert_eq!(again.status(), 201, "what the API returned, it accepts back");
    }
    // A yearly series on the last possible day ends rather than step into year 10000.
    let last = app
        .create_task(
            &user,
            json!({"title": "y", "due_at": "9999-06-01T09:00:00Z", "recurrence_rule": "FREQ=YEARLY;COUNT=5"}),
        )
        .await;
    assert_eq!(last["next_occurrence_at"], Value::Null);
}

#[tokio::test]
async fn rules_that_break_rfc_5545_or_fire_more_than_hourly_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let minutes = (0..60).map(|m| m.to_string()).collect::<Vec<_>>().join(",");
    for rule in [
        format!("FREQ=HOURLY;BYMINUTE={minutes}"),
        format!("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND={minutes}"),
        "FREQ=DAILY;BYDAY=+1MO".into(),
        "FREQ=WEEKLY;BYDAY=+1MO".into(),
        "FREQ=DAILY;COUNT=0".into(),
        "FREQ=DAILY;COUNT=3;UNTIL=20301201T000000Z".into(),
    ] {
        let body = json!({"title": "t", "due_at": "2030-01-07T09:00:00Z", "recurrence_rule": rule});
        let problem = assert_problem(post_task(&app, &user, &body).await, 422, "validation_failed").await;
        assert_eq!(fields(&problem), ["recurrence_rule"], "{rule}");
    }
    // Their valid neighbours still work.
    for rule in ["FREQ=MONTHLY;BYDAY=+1MO", "FREQ=HOURLY;BYMINUTE=30", "FREQ=DAILY;COUNT=1"] {
        let body = json!({"title": "t", "due_at": "2030-01-07T09:00:00Z", "recurrence_rule": rule});
        assert_eq!(post_task(&app, &user, &body).await.status(), 201, "{rule}");
    }
}

#[tokio::test]
async fn a_series_whose_next_step_is_past_the_budget_is_refused_when_written() {
    // Completed a century and more late, with COUNT: every skipped hour must be counted, which
    // is past the step budget. Before, this was accepted and the worker discarded its job.
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let body = json!({"title": "t", "due_at": "1900-01-01T00:00:00Z", "completed": true,
                      "recurrence_rule": "FREQ=HOURLY;COUNT=2000000"});
    let problem = assert_problem(post_task(&app, &user, &body).await, 422, "validation_failed").await;
    assert_eq!(fields(&problem), ["recurrence_rule"]);
    // Open, the same series is fine; completing it now is the write that is refused.
    let open = app
        .create_task(
            &user,
            json!({"title": "t", "due_at": "1900-01-01T00:00:00Z",
                                               "recurrence_rule": "FREQ=HOURLY;COUNT=2000000"}),
        )
        .await;
    assert_eq!(open["next_occurrence_at"], "1900-01-01T01:00:00Z");
    let path = format!("{TASKS}/{}/complete", open["id"].as_str().unwrap());
    let response = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true}))).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(fields(&problem), ["recurrence_rule"]);
    assert_eq!(
        get_task(&app, &user, open["id"].as_str().unwrap()).await["completed"],
        false,
        "nothing written"
    );
}

#[tokio::test]
async fn occurrences_obey_the_task_cap_and_the_series_resumes_once_there_is_room() {
    let app = TestApp::spawn_with(|s| s.tasks.max_per_user = 3).await;
    let user = app.new_user().await;
    let series = app
        .create_task(&user, json!({"title": "Weekly review", "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=WEEKLY"}))
        .await;
    let spare = app.create_task(&user, json!({"title": "Spare"})).await;
    app.create_task(&user, json!({"title": "Third"})).await;
    let full = post_task(&app, &user, &json!({"title": "Fourth"})).await;
    assert_problem(full, 409, "task_limit_reached").await;

    let id = series["id"].as_str().unwrap();
    let completed = complete(&app, &user, id).await;
    assert_eq!(run_follow_ups(&app, 3).await, [Handled::Cancelled("task_limit_reached")]);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 3, "the worker made no fourth task");
    let paused = get_task(&app, &user, id).await;
    assert_eq!(paused["series_paused"], "task_limit_reached", "the user can see why: {paused}");
    assert!(paused["version"].as_i64() > completed["version"].as_i64(), "a change clients sync");

    // Reopening clears the pause; completing again tries again, and pauses again: still full.
    let path = format!("{TASKS}/{id}/complete");
    let reopened = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": false}))).await;
    assert_eq!(reopened.json::<Value>().await.unwrap()["series_paused"], Value::Null);
    complete(&app, &user, id).await;
    assert_eq!(run_follow_ups(&app, 3).await, [Handled::Cancelled("task_limit_reached")]);
    assert_eq!(get_task(&app, &user, id).await["series_paused"], "task_limit_reached");

    // No room yet: maintenance leaves it paused.
    assert_eq!(resume_paused(&app.pool, 3).await.unwrap(), 0);
    // Room: the spare task is deleted and purged from the trash.
    let path = format!("{TASKS}/{}", spare["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path, None).await.status(), 204);
    app.age_trash().await;
    app.purge(None).await;
    assert_eq!(resume_paused(&app.pool, 3).await.unwrap(), 1, "the series resumes");
    let next = open_task(&app, &user).await;
    assert_eq!(next["title"], "Weekly review");
    assert_eq!(next["due_at"], "2030-03-11T09:00:00Z");
    assert_eq!(get_task(&app, &user, id).await["series_paused"], Value::Null, "no longer paused");
}

#[tokio::test]
async fn costly_recurring_tasks_do_not_slow_another_users_requests() {
    // The review's case: 99 tasks with a rule whose every occurrence is a year of hourly passes
    // apart, from the earliest due date there is. Reads once stepped each series from its start;
    // now they step nothing, so four clients reading in a loop leave another user unaffected.
    // Two actix workers, as a two-core production machine runs by default.
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = false;
        s.server.workers = 2;
    })
    .await;
    let heavy = app.new_user().await;
    let operations: Vec<Value> = (0..99)
        .map(|i| {
            json!({"op": "create", "task": {"title": format!("Costly {i}"), "due_at": "1900-01-01T00:00:00Z",
                   "recurrence_rule": "FREQ=HOURLY;BYMONTH=1;BYMONTHDAY=1;BYHOUR=0"}})
        })
        .collect();
    let response = app
        .send_as(&heavy.token, Method::POST, "/api/v1/tasks/bulk", Some(&json!({"operations": operations})))
        .await;
    assert_eq!(response.status(), 200);
    let other = app.new_user().await;
    // The same requests with nothing else running, for bounds that hold on a busy machine too:
    // what the readers may not do is slow the other user far beyond this.
    let mut quiet_me = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(app.get_as(&other.token, "/api/v1/users/me").await.status(), 200);
        quiet_me = quiet_me.max(started.elapsed());
    }
    let started = Instant::now();
    assert_eq!(app.get_as(&heavy.token, "/api/v1/changes?since=0&limit=500").await.status(), 200);
    let quiet_read = started.elapsed();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let (client, address, token, stop) =
                (app.client.clone(), app.address.clone(), heavy.token.clone(), stop.clone());
            tokio::spawn(async move {
                let path =
                    if i % 2 == 0 { "/api/v1/changes?since=0&limit=500" } else { "/api/v1/tasks?limit=100" };
                let mut slowest = Duration::ZERO;
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    // Read whole, neither parsed nor checked against the document: the client's
                    // own JSON work would compete with the server for the same cores, and this
                    // test times the server. These operations are checked in tasks_list and sync_feed.
                    let request = client.get(format!("{address}{path}")).outside_the_contract();
                    let response = request.bearer_auth(&token).send().await.unwrap();
                    assert_eq!(response.status(), 200, "{path}");
                    let body = response.bytes().await.unwrap();
                    assert!(body.len() > 10_000, "{path}: every costly task, {} bytes", body.len());
                    slowest = slowest.max(started.elapsed());
                    reads += 1;
                }
                (reads, slowest)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut slowest_me = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(app.get_as(&other.token, "/api/v1/users/me").await.status(), 200);
        slowest_me = slowest_me.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        let (reads, slowest) = reader.await.unwrap();
        assert!(reads > 0);
        let bound = Duration::from_secs(1).max(quiet_read * 10);
        assert!(slowest < bound, "a read of the costly tasks took {slowest:?} (alone: {quiet_read:?})");
    }
    let bound = Duration::from_millis(300).max(quiet_me * 10);
    assert!(slowest_me < bound, "another user's GET /users/me took {slowest_me:?} (alone: {quiet_me:?})");
}
