//! Jobs are enqueued, rescheduled and cancelled in the same transaction as the task write.

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const REMINDER: &str = "todo.reminder";
const RECURRENCE: &str = "todo.recurrence";

fn at(offset: Duration) -> String {
    (Utc::now() + offset).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[tokio::test]
async fn a_reminder_is_queued_for_its_time_and_moved_with_it() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Call mum", "due_at": at(Duration::days(2)), "reminder_at": at(Duration::days(1))})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());

    let jobs = app.jobs(REMINDER).await;
    assert_eq!(jobs.len(), 1);
    let (status, run_at, key) = &jobs[0];
    assert_eq!(status, "Pending");
    assert_eq!(
        Some(run_at.to_owned()),
        task["reminder_at"].as_str().map(|s| s.parse::<DateTime<Utc>>().unwrap())
    );
    assert_eq!(key.as_deref(), Some(format!("reminder:{}:1", task["id"].as_str().unwrap()).as_str()));

    let moved = at(Duration::hours(5));
    app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"reminder_at": moved}))).await;
    let jobs = app.jobs(REMINDER).await;
    assert_eq!(jobs.len(), 1, "the old reminder was replaced, not kept");
    assert_eq!(jobs[0].1, moved.parse::<DateTime<Utc>>().unwrap());

    app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"title": "Call mum back"}))).await;
    assert_eq!(
        app.jobs(REMINDER).await[0].1,
        moved.parse::<DateTime<Utc>>().unwrap(),
        "unrelated edits keep it"
    );
}

#[tokio::test]
async fn completing_deleting_or_clearing_a_reminder_cancels_it_and_undoing_brings_it_back() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Pay", "reminder_at": at(Duration::days(1))})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());

    app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await;
    assert!(app.jobs(REMINDER).await.is_empty(), "completed");
    app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await;
    assert_eq!(app.jobs(REMINDER).await.len(), 1, "reopened");

    app.send_as(&user.token, Method::DELETE, &path, None).await;
    assert!(app.jobs(REMINDER).await.is_empty(), "trashed");
    app.send_as(&user.token, Method::POST, &format!("{path}/restore"), None).await;
    assert_eq!(app.jobs(REMINDER).await.len(), 1, "restored");

    app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"reminder_at": null}))).await;
    assert!(app.jobs(REMINDER).await.is_empty(), "cleared");
}

#[tokio::test]
async fn a_reminder_set_in_the_past_fires_at_once_but_is_not_repeated_on_reopen() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Late", "reminder_at": at(-Duration::hours(1))})).await;
    let jobs = app.jobs(REMINDER).await;
    assert_eq!(jobs.len(), 1, "queued to run now");
    assert!(jobs[0].1 <= Utc::now() + Duration::seconds(1));

    let toggle = format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap());
    app.send_as(&user.token, Method::POST, &toggle, None).await;
    assert!(app.jobs(REMINDER).await.is_empty(), "completing cancels it");
    app.send_as(&user.token, Method::POST, &toggle, None).await;
    assert!(
        app.jobs(REMINDER).await.is_empty(),
        "reopening does not resend a reminder whose time has passed"
    );
}

#[tokio::test]
async fn a_reminder_never_runs_before_its_time() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let when = "2099-05-01T08:00:00.250Z";
    app.create_task(&user, json!({"title": "Precise", "reminder_at": when})).await;
    let run_at = app.jobs(REMINDER).await[0].1;
    assert_eq!(
        run_at,
        "2099-05-01T08:00:01Z".parse::<DateTime<Utc>>().unwrap(),
        "rounded up to the next second"
    );
}

#[tokio::test]
async fn completing_a_recurring_task_queues_its_next_occurrence_once_however_often_toggled() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(&user, json!({"title": "Water plants", "due_at": at(Duration::days(1)), "recurrence_rule": "FREQ=WEEKLY"}))
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    assert!(app.jobs(RECURRENCE).await.is_empty(), "nothing until it is completed");

    for _ in 0..3 {
        app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await;
        app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await;
    }
    app.send_as(&user.token, Method::PATCH, &format!("{path}/complete"), Some(&json!({"completed": true})))
        .await;
    let jobs = app.jobs(RECURRENCE).await;
    assert_eq!(jobs.len(), 1, "one follow-up for this occurrence: {jobs:?}");
    let key = jobs[0].2.as_deref().unwrap_or_default();
    assert!(
        key.starts_with(&format!("next:{}:", task["id"].as_str().unwrap())),
        "keyed by task and version: {key}"
    );

    let payload: Vec<u8> = sqlx::query_scalar("SELECT job FROM apalis.jobs WHERE job_type = $1")
        .bind(RECURRENCE)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["task_id"], task["id"]);
    assert_eq!(payload["series_id"], task["series_id"]);
    assert_eq!(payload["occurrence_at"], task["due_at"]);

    // Much later the finished job is purged from the queue; the occurrence still remembers that
    // its follow-up was queued, so toggling it again queues nothing.
    sqlx::query(
        "UPDATE apalis.jobs SET status = 'Done', done_at = now() - interval '8 days' WHERE job_type = $1",
    )
    .bind(RECURRENCE)
    .execute(&app.pool)
    .await
    .unwrap();
    let retention = todo::db::maintenance::Retention {
        trash_days: 30,
        idempotency_hours: 24,
        tombstone_secs: 2_592_000,
        webhook_log_days: 30,
    };
    // A job finished yesterday stays for inspection; only week-old history goes.
    sqlx::query(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, done_at, priority)
         VALUES ('recent', $1, '\\x7b7d', 'Done', 1, 1, now(), now() - interval '1 day', 0)",
    )
    .bind(RECURRENCE)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(todo::db::maintenance::purge_expired(&app.pool, retention).await.unwrap().finished_jobs, 1);
    sqlx::query("DELETE FROM apalis.jobs WHERE id = 'recent'").execute(&app.pool).await.unwrap();
    app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await;
    app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await;
    assert!(app.jobs(RECURRENCE).await.is_empty(), "no second follow-up for the same occurrence");
}

#[tokio::test]
async fn completing_a_one_off_task_queues_nothing() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Once", "due_at": at(Duration::days(1))})).await;
    let toggled = app
        .send_as(
            &user.token,
            Method::POST,
            &format!("/api/v1/tasks/{}/toggle", task["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(toggled.status(), 200);
    assert!(app.jobs(RECURRENCE).await.is_empty());
}

#[tokio::test]
async fn a_refused_write_leaves_the_tasks_jobs_as_they_were() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "Keep", "reminder_at": at(Duration::days(1))})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let before = app.jobs(REMINDER).await;

    let stale = format!("\"{}-0\"", task["id"].as_str().unwrap().replace('-', ""));
    let response = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&user.token)
        .header("if-match", stale)
        .json(&json!({"reminder_at": at(Duration::hours(2))}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 412);
    let invalid = app
        .send_as(&user.token, Method::PATCH, &path, Some(&json!({"reminder_at": null, "title": ""})))
        .await;
    assert_eq!(invalid.status(), 422);
    assert_eq!(app.jobs(REMINDER).await, before, "neither refusal touched the queue");
}
