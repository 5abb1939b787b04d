//! Recurring tasks: completing an occurrence brings the next one, exactly once, at the instant
//! the rule gives in the task's time zone.

use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as Days, TimeZone, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::SmtpSink;
use todo::jobs::task_jobs::NextOccurrence;
use todo::jobs::{Handled, recurrence::create_next};
use todo::jobs::{Schedule, enqueue};

use crate::helpers::{TestApp, TestUser, eventually};

const RECURRENCE: &str = "todo.recurrence";
const REMINDER: &str = "todo.reminder";

fn id_of(task: &Value) -> &str {
    task["id"].as_str().expect("task id")
}

fn instant(value: &Value) -> DateTime<Utc> {
    value.as_str().expect("a time").parse().expect("RFC 3339")
}

/// The pending follow-up jobs, decoded as the worker decodes them.
async fn pending_follow_ups(app: &TestApp) -> Vec<NextOccurrence> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT job FROM apalis.jobs WHERE job_type = $1 AND status = 'Pending' ORDER BY id",
    )
    .bind(RECURRENCE)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    payloads.iter().map(|p| serde_json::from_slice(p).expect("payload decodes")).collect()
}

/// Runs every pending follow-up through the same handler the worker calls, then marks it done.
async fn run_follow_ups(app: &TestApp) -> Vec<Handled> {
    let mut outcomes = Vec::new();
    for job in pending_follow_ups(app).await {
        outcomes.push(
            create_next(&app.pool, &job, app.settings.tasks.max_per_user).await.expect("handler succeeds"),
        );
    }
    sqlx::query(
        "UPDATE apalis.jobs SET status = 'Done', done_at = now() WHERE job_type = $1 AND status = 'Pending'",
    )
    .bind(RECURRENCE)
    .execute(&app.pool)
    .await
    .unwrap();
    outcomes
}

/// Every task of the series, oldest occurrence first.
async fn series(app: &TestApp, user: &TestUser, series_id: &str) -> Vec<Value> {
    let page: Value = app.get_as(&user.token, "/api/v1/tasks?limit=100").await.json().await.unwrap();
    let mut items: Vec<Value> =
        page["items"].as_array().unwrap().iter().filter(|t| t["series_id"] == series_id).cloned().collect();
    items.sort_by_key(|t| instant(&t["due_at"]));
    items
}

async fn complete(app: &TestApp, user: &TestUser, task: &Value) -> Value {
    let path = format!("/api/v1/tasks/{}/complete", id_of(task));
    let response = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true}))).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn completing_a_weekly_task_creates_exactly_one_next_occurrence_through_the_worker() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    let worker = app.spawn_worker(&smtp).await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Water plants", "description": "the big ones", "priority": "high", "tags": ["home"],
                   "due_at": "2030-03-04T09:00:00Z", "reminder_at": "2030-03-04T08:45:00Z",
                   "recurrence_rule": "FREQ=WEEKLY", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(task["next_occurrence_at"], "2030-03-11T09:00:00Z", "known before it is made");
    let series_id = task["series_id"].as_str().unwrap().to_owned();
    complete(&app, &user, &task).await;

    let tasks = eventually("the next occurrence", Duration::from_secs(10), || async {
        let tasks = series(&app, &user, &series_id).await;
        (tasks.len() == 2).then_some(tasks)
    })
    .await;
    let next = &tasks[1];
    assert_eq!(next["due_at"], "2030-03-11T09:00:00Z");
    assert_eq!(next["reminder_at"], "2030-03-11T08:45:00Z", "the reminder keeps its offset");
    assert_eq!(next["completed"], false);
    assert_eq!(next["version"], 1);
    for field in
        ["title", "description", "priority", "tags", "recurrence_rule", "recurrence_anchor", "timezone"]
    {
        assert_eq!(next[field], task[field], "{field} is copied");
    }
    assert_eq!(next["next_occurrence_at"], "2030-03-18T09:00:00Z");
    assert_eq!(tasks[0]["completed"], true, "the completed occurrence stays, completed");
    let reminders = app.jobs(REMINDER).await;
    assert_eq!(reminders.len(), 1, "the new occurrence's reminder is queued with it");
    assert_eq!(reminders[0].1, instant(&next["reminder_at"]));

    // Toggling the finished occurrence open and closed again makes no second successor.
    let toggle = format!("/api/v1/tasks/{}/toggle", id_of(&task));
    app.send_as(&user.token, Method::POST, &toggle, None).await;
    app.send_as(&user.token, Method::POST, &toggle, None).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(series(&app, &user, &series_id).await.len(), 2);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn re_completing_an_occurrence_anchored_on_completion_makes_no_second_successor() {
    // Each completion is a different instant, so only the occurrence's own flag can stop a
    // second successor: the series key would not.
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    let worker = app.spawn_worker(&smtp).await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Descale", "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=DAILY",
                   "recurrence_anchor": "completion"}),
        )
        .await;
    let series_id = task["series_id"].as_str().unwrap().to_owned();
    complete(&app, &user, &task).await;
    eventually("the next occurrence", Duration::from_secs(10), || async {
        (series(&app, &user, &series_id).await.len() == 2).then_some(())
    })
    .await;
    let toggle = format!("/api/v1/tasks/{}/toggle", id_of(&task));
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        app.send_as(&user.token, Method::POST, &toggle, None).await;
        app.send_as(&user.token, Method::POST, &toggle, None).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(series(&app, &user, &series_id).await.len(), 2);
    assert!(app.jobs(RECURRENCE).await.iter().all(|j| j.0 == "Done"), "no second follow-up was queued");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_retried_or_raced_follow_up_creates_one_occurrence() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Stand-up", "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await;
    complete(&app, &user, &task).await;
    let job = pending_follow_ups(&app).await.pop().expect("a follow-up is queued");

    // Two workers holding the same job at once, then a retry of it.
    let (a, b) = tokio::join!(
        create_next(&app.pool, &job, app.settings.tasks.max_per_user),
        create_next(&app.pool, &job, app.settings.tasks.max_per_user)
    );
    let mut outcomes = vec![
        a.unwrap(),
        b.unwrap(),
        create_next(&app.pool, &job, app.settings.tasks.max_per_user).await.unwrap(),
    ];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        vec![Handled::Cancelled("already_created"), Handled::Cancelled("already_created"), Handled::Done]
    );
    assert_eq!(series(&app, &user, task["series_id"].as_str().unwrap()).await.len(), 2);
}

#[tokio::test]
async fn reopening_or_trashing_a_completed_occurrence_cancels_its_pending_follow_up() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Gym", "due_at": "2030-03-04T18:00:00Z", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", id_of(&task));
    complete(&app, &user, &task).await;
    assert_eq!(app.jobs(RECURRENCE).await.len(), 1);

    app.send_as(&user.token, Method::POST, &format!("{path}/toggle"), None).await;
    assert!(app.jobs(RECURRENCE).await.is_empty(), "reopened: no successor for an open task");
    complete(&app, &user, &task).await;
    assert_eq!(app.jobs(RECURRENCE).await.len(), 1, "completed again: queued again");
    app.send_as(&user.token, Method::DELETE, &path, None).await;
    assert!(app.jobs(RECURRENCE).await.is_empty(), "trashed: nothing for the trash");
    app.send_as(&user.token, Method::POST, &format!("{path}/restore"), None).await;
    assert_eq!(app.jobs(RECURRENCE).await.len(), 1, "restored, still completed: queued again");

    assert_eq!(run_follow_ups(&app).await, vec![Handled::Done]);
    assert_eq!(series(&app, &user, task["series_id"].as_str().unwrap()).await.len(), 2);
}

#[tokio::test]
async fn a_follow_up_for_an_occurrence_that_is_no_longer_completed_creates_nothing() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Read", "due_at": "2030-03-04T18:00:00Z", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await;
    complete(&app, &user, &task).await;
    let job = pending_follow_ups(&app).await.pop().unwrap();
    // Reopened after a worker fetched the job: the fetched job cannot be recalled.
    app.send_as(&user.token, Method::POST, &format!("/api/v1/tasks/{}/toggle", id_of(&task)), None).await;
    assert_eq!(
        create_next(&app.pool, &job, app.settings.tasks.max_per_user).await.unwrap(),
        Handled::Cancelled("not_completed")
    );
    assert_eq!(series(&app, &user, task["series_id"].as_str().unwrap()).await.len(), 1);

    // Completing it again queues a fresh follow-up, which does create the next one.
    complete(&app, &user, &task).await;
    assert_eq!(run_follow_ups(&app).await, vec![Handled::Done]);
    let mut conn = app.pool.acquire().await.unwrap();
    enqueue(&mut conn, &job, Schedule::default()).await.unwrap();
    drop(conn);
    assert_eq!(run_follow_ups(&app).await, vec![Handled::Cancelled("already_created")]);
    assert_eq!(series(&app, &user, task["series_id"].as_str().unwrap()).await.len(), 2);
}

/// One rule, completed on time (well before its due date), and the due time the occurrence after
/// it must have — written out by hand from the calendar and the tz database.
struct Case {
    rule: &'static str,
    timezone: &'static str,
    due_at: &'static str,
    next: Option<&'static str>,
}

#[tokio::test]
async fn each_rule_steps_to_the_instant_the_calendar_gives() {
    let cases = [
        // Berlin's summer time starts on Sunday 31 March 2030: 09:00 stays 09:00 local.
        Case {
            rule: "FREQ=DAILY",
            timezone: "Europe/Berlin",
            due_at: "2030-03-30T08:00:00Z",
            next: Some("2030-03-31T07:00:00Z"),
        },
        // …and ends on Sunday 27 October 2030.
        Case {
            rule: "FREQ=DAILY",
            timezone: "Europe/Berlin",
            due_at: "2030-10-26T07:00:00Z",
            next: Some("2030-10-27T08:00:00Z"),
        },
        // February has no 31st; March does.
        Case {
            rule: "FREQ=MONTHLY",
            timezone: "UTC",
            due_at: "2030-01-31T10:00:00Z",
            next: Some("2030-03-31T10:00:00Z"),
        },
        // Monday 4 March 2030 → Wednesday 6 March.
        Case {
            rule: "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            timezone: "UTC",
            due_at: "2030-03-04T09:00:00Z",
            next: Some("2030-03-06T09:00:00Z"),
        },
        // Friday 8 March → Monday 11 March.
        Case {
            rule: "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            timezone: "UTC",
            due_at: "2030-03-08T09:00:00Z",
            next: Some("2030-03-11T09:00:00Z"),
        },
        Case {
            rule: "FREQ=WEEKLY;INTERVAL=2",
            timezone: "UTC",
            due_at: "2030-03-04T09:00:00Z",
            next: Some("2030-03-18T09:00:00Z"),
        },
        Case {
            rule: "FREQ=DAILY;UNTIL=20300305T090000Z",
            timezone: "UTC",
            due_at: "2030-03-04T09:00:00Z",
            next: Some("2030-03-05T09:00:00Z"),
        },
        Case {
            rule: "FREQ=DAILY;UNTIL=20300305T090000Z",
            timezone: "UTC",
            due_at: "2030-03-05T09:00:00Z",
            next: None,
        },
        // New York's summer time starts on Sunday 10 March 2030.
        Case {
            rule: "FREQ=WEEKLY",
            timezone: "America/New_York",
            due_at: "2030-03-04T14:00:00Z",
            next: Some("2030-03-11T13:00:00Z"),
        },
    ];
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for case in cases {
        let body = json!({"title": case.rule, "due_at": case.due_at, "recurrence_rule": case.rule, "timezone": case.timezone});
        let task = app.create_task(&user, body).await;
        assert_eq!(
            task["next_occurrence_at"].as_str(),
            case.next,
            "{} from {}: shown ahead",
            case.rule,
            case.due_at
        );
        complete(&app, &user, &task).await;
        run_follow_ups(&app).await;
        let tasks = series(&app, &user, task["series_id"].as_str().unwrap()).await;
        let made = tasks.get(1).map(|t| t["due_at"].as_str().unwrap().to_owned());
        assert_eq!(made.as_deref(), case.next, "{} in {} from {}", case.rule, case.timezone, case.due_at);
    }
}

#[tokio::test]
async fn count_counts_from_the_first_occurrence_and_ends_the_series() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let first = app
        .create_task(&user, json!({"title": "Course", "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=DAILY;COUNT=3"}))
        .await;
    let series_id = first["series_id"].as_str().unwrap().to_owned();
    let mut current = first;
    for expected in ["2030-03-05T09:00:00Z", "2030-03-06T09:00:00Z"] {
        assert_eq!(current["next_occurrence_at"], expected);
        complete(&app, &user, &current).await;
        assert_eq!(run_follow_ups(&app).await, vec![Handled::Done]);
        current = series(&app, &user, &series_id).await.pop().unwrap();
        assert_eq!(current["due_at"], expected);
    }
    assert_eq!(current["next_occurrence_at"], Value::Null, "the third is the last");
    complete(&app, &user, &current).await;
    assert_eq!(run_follow_ups(&app).await, vec![Handled::Cancelled("series_ended")]);
    assert_eq!(series(&app, &user, &series_id).await.len(), 3);
}

#[tokio::test]
async fn a_due_time_far_in_the_past_lands_on_the_first_future_occurrence() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Stretch", "due_at": "2020-01-06T09:00:00Z", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await;
    let completed = complete(&app, &user, &task).await;
    run_follow_ups(&app).await;
    // Independently: the first 09:00 UTC strictly after the moment of completion.
    let done = instant(&completed["completed_at"]);
    let nine = Utc.with_ymd_and_hms(done.year(), done.month(), done.day(), 9, 0, 0).unwrap();
    let expected = if nine > done { nine } else { nine + Days::days(1) };
    let tasks = series(&app, &user, task["series_id"].as_str().unwrap()).await;
    assert_eq!(tasks.len(), 2);
    assert_eq!(instant(&tasks[1]["due_at"]), expected);
    assert_eq!(completed["next_occurrence_at"], tasks[1]["due_at"], "the completed task showed what came");
}

#[tokio::test]
async fn the_completion_anchor_steps_from_the_moment_of_completion() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Haircut", "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=WEEKLY;INTERVAL=3",
                   "recurrence_anchor": "completion", "timezone": "UTC"}),
        )
        .await;
    let completed = complete(&app, &user, &task).await;
    run_follow_ups(&app).await;
    let done = instant(&completed["completed_at"]);
    let whole_second = DateTime::from_timestamp(done.timestamp(), 0).unwrap();
    let tasks = series(&app, &user, task["series_id"].as_str().unwrap()).await;
    assert_eq!(tasks.len(), 2);
    let next = tasks.iter().find(|t| t["id"] != task["id"]).unwrap();
    assert_eq!(instant(&next["due_at"]), whole_second + Days::weeks(3));
}

#[tokio::test]
async fn the_next_occurrence_stays_in_its_series_project() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let project =
        app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "Chores"}))).await;
    let project: Value = project.json().await.unwrap();
    let task = app
        .create_task(
            &user,
            json!({"title": "Bins", "due_at": "2030-03-04T07:00:00Z", "recurrence_rule": "FREQ=WEEKLY",
                   "project_id": project["id"]}),
        )
        .await;
    complete(&app, &user, &task).await;
    assert_eq!(run_follow_ups(&app).await.len(), 1);
    let tasks = series(&app, &user, task["series_id"].as_str().unwrap()).await;
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1]["project_id"], project["id"], "the next occurrence keeps the project");
}
