//! Reminder emails, end to end: task writes queue them, a real worker sends them to a real SMTP
//! server, and the delivery history tells the user what happened.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::{Mode, SmtpSink};
use todo::jobs::task_jobs::Reminder;
use todo::jobs::{Schedule, enqueue};
use uuid::Uuid;

use crate::helpers::{TEST_PASSWORD, TestApp, TestUser, eventually};

const REMINDER: &str = "todo.reminder";
const WAIT: Duration = Duration::from_secs(20);

fn past(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds)).to_rfc3339()
}

fn id_of(task: &Value) -> String {
    task["id"].as_str().expect("task id").to_owned()
}

/// Queues a reminder job as a worker may already have fetched it before the task changed.
async fn enqueue_stale(app: &TestApp, user: &TestUser, task: &Value, reminder_at: &str) {
    let job = Reminder {
        user_id: user.id,
        task_id: id_of(task).parse().unwrap(),
        version: 1,
        reminder_at: reminder_at.parse().unwrap(),
    };
    let mut conn = app.pool.acquire().await.unwrap();
    enqueue(&mut conn, &job, Schedule::default()).await.expect("enqueue a stale job");
}

async fn jobs_with_status(app: &TestApp, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = $2")
        .bind(REMINDER)
        .bind(status)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_due_reminder_is_delivered_once_with_recipient_subject_both_parts_and_local_time() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let email = format!("ann-{}@example.com", Uuid::new_v4().simple());
    let registered = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": TEST_PASSWORD, "name": "Ann", "timezone": "Europe/Paris"}),
        )
        .await;
    let body: Value = registered.json().await.unwrap();
    let user = TestUser {
        token: body["access_token"].as_str().unwrap().to_owned(),
        id: body["user"]["id"].as_str().unwrap().parse().unwrap(),
        email: email.clone(),
    };
    app.verify_address(user.id, &email).await;
    let worker = app.spawn_worker(&smtp).await;
    let task = app
        .create_task(
            &user,
            json!({"title": "Team <standup>", "description": "Bring notes & coffee",
                   "due_at": "2030-03-04T08:00:00Z", "reminder_at": "2030-03-04T07:45:00Z"}),
        )
        .await;
    app.make_due(REMINDER).await;

    let received = smtp.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1, "delivered");
    let mail = &received[0];
    assert_eq!(mail.to, vec![email.clone()]);
    assert_eq!(mail.from, "todo@localhost");
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated"),
        "auto-responders stay quiet"
    );
    let unsubscribe = mail.header("List-Unsubscribe").expect("a one-click unsubscribe URL");
    assert!(unsubscribe.starts_with(&format!("<{}/email/unsubscribe?token=", app.address)), "{unsubscribe}");
    assert_eq!(mail.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let parsed = MessageParser::default().parse(&mail.data).expect("a parseable message");
    let local = "Monday 4 March 2030, 09:00 CET (Europe/Paris)";
    let subject = parsed.subject().unwrap();
    assert!(subject.contains("Team <standup>") && subject.contains(local), "subject: {subject}");
    let text = parsed.body_text(0).expect("a plain-text part");
    assert!(
        text.contains("Team <standup>") && text.contains("Bring notes & coffee") && text.contains(local),
        "{text}"
    );
    assert!(text.contains("Hello Ann"), "{text}");
    let html = parsed.body_html(0).expect("an html part");
    assert!(
        html.contains("Team &lt;standup&gt;") && !html.contains("<standup>"),
        "html escapes the title: {html}"
    );
    // The zone's slash is escaped too (`&#x2f;`), which a mail client shows as `/`.
    assert!(
        html.contains("Bring notes &amp; coffee") && html.contains("Monday 4 March 2030, 09:00 CET (Europe"),
        "{html}"
    );
    let task_id: Uuid = id_of(&task).parse().unwrap();
    let reminder_ts = "2030-03-04T07:45:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp();
    assert_eq!(
        parsed.message_id(),
        Some(format!("reminder.{}.{reminder_ts}@localhost", task_id.simple()).as_str())
    );

    // The worker records the send after the SMTP server accepted it: wait for that commit.
    let history = eventually("the delivery recorded as sent", WAIT, || async {
        let history = app.reminders(&user, &id_of(&task)).await;
        (history.first().is_some_and(|h| h["status"] != "pending")).then_some(history)
    })
    .await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["status"], "sent");
    assert_eq!(history[0]["attempts"], 1);
    assert_eq!(history[0]["reminder_at"], "2030-03-04T07:45:00Z");
    assert!(history[0]["sent_at"].is_string());

    // The job is done and nothing more arrives, however many polls pass.
    eventually("the job to finish", WAIT, || async {
        (jobs_with_status(&app, "Done").await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(smtp.count(), 1, "sent exactly once");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn nothing_is_sent_for_a_reminder_that_is_no_longer_wanted_and_a_moved_one_is_sent_once_at_its_new_time()
 {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    // An hour ago: a job for it runs at once, and the moved-to time is newer.
    let old_at = chrono::Utc::now() - chrono::Duration::hours(1);
    let old_at = chrono::DateTime::from_timestamp(old_at.timestamp(), 0).unwrap();
    let old = old_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let old = old.as_str();
    let remind = |title: &str| json!({"title": title, "reminder_at": old});

    let completed = app.create_task(&user, remind("completed")).await;
    let trashed = app.create_task(&user, remind("trashed")).await;
    let cleared = app.create_task(&user, remind("cleared")).await;
    let moved = app.create_task(&user, remind("moved")).await;
    let path = |task: &Value| format!("/api/v1/tasks/{}", id_of(task));
    app.send_as(&user.token, Method::POST, &format!("{}/toggle", path(&completed)), None).await;
    app.send_as(&user.token, Method::DELETE, &path(&trashed), None).await;
    app.send_as(&user.token, Method::PATCH, &path(&cleared), Some(&json!({"reminder_at": null}))).await;
    let new_time = past(5);
    app.send_as(&user.token, Method::PATCH, &path(&moved), Some(&json!({"reminder_at": new_time}))).await;
    // The writes cancelled their pending jobs; these stand for jobs a worker had already fetched.
    for task in [&completed, &trashed, &cleared, &moved] {
        enqueue_stale(&app, &user, task, old).await;
    }
    let worker = app.spawn_worker(&smtp).await;

    eventually("every reminder job to finish", WAIT, || async {
        (jobs_with_status(&app, "Done").await == 5).then_some(())
    })
    .await;
    assert_eq!(smtp.count(), 1, "only the moved reminder, at its new time");
    let subject = smtp.messages()[0].header("Subject").unwrap();
    assert!(subject.contains("moved"), "{subject}");

    let skipped = |task: &Value| {
        let id: Uuid = id_of(task).parse().unwrap();
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT status, skip_reason FROM reminder_deliveries WHERE task_id = $1 AND reminder_at = $2",
            )
            .bind(id)
            .bind(old_at)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let as_skipped = |reason: &str| ("skipped".to_owned(), Some(reason.to_owned()));
    assert_eq!(skipped(&completed).await, as_skipped("task_completed"));
    assert_eq!(skipped(&trashed).await, as_skipped("task_deleted"));
    assert_eq!(skipped(&cleared).await, as_skipped("reminder_cleared"));
    assert_eq!(skipped(&moved).await, as_skipped("reminder_moved"));

    let history = app.reminders(&user, &id_of(&moved)).await;
    let statuses: Vec<(&str, &str)> =
        history.iter().map(|h| (h["reminder_at"].as_str().unwrap(), h["status"].as_str().unwrap())).collect();
    assert_eq!(statuses.len(), 2, "{history:?}");
    assert_eq!(statuses[0].1, "sent", "newest first: the moved reminder was sent");
    assert_eq!(statuses[1], (old, "skipped"));
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_user_who_turned_reminders_off_gets_no_email() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    let worker = app.spawn_worker(&smtp).await;
    let off = app
        .send_as(&user.token, Method::PATCH, "/api/v1/users/me", Some(&json!({"email_reminders": false})))
        .await;
    assert_eq!(off.status(), 200);
    let task = app.create_task(&user, json!({"title": "Quiet", "reminder_at": past(1)})).await;

    let history = eventually("the reminder to be decided", WAIT, || async {
        let history = app.reminders(&user, &id_of(&task)).await;
        (history.first().is_some_and(|h| h["status"] != "pending")).then_some(history)
    })
    .await;
    assert_eq!(history[0]["status"], "skipped");
    assert_eq!(history[0]["skip_reason"], "reminders_off");
    assert_eq!(smtp.count(), 0);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_temporary_smtp_failure_is_retried_with_growing_delays_until_the_server_recovers() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    smtp.set_mode(Mode::TempFail);
    let worker = app
        .spawn_worker_with(&smtp, |s| {
            s.worker.retry_base_ms = 400;
            s.worker.retry_max_secs = 10;
            s.worker.max_attempts = 8;
        })
        .await;
    let task = app.create_task(&user, json!({"title": "Flaky", "reminder_at": past(1)})).await;

    // Time each refusal as the server saw it.
    let deadline = Instant::now() + WAIT;
    while smtp.refused() < 4 {
        assert!(Instant::now() < deadline, "only {} refusals", smtp.refused());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    smtp.set_mode(Mode::Accept);
    let refusals = smtp.refusal_times();
    let gaps: Vec<Duration> = refusals.windows(2).map(|w| w[1] - w[0]).collect();
    // Delays are base·2^(n-1) with equal jitter: at least 200, 400 and 800 ms.
    for (gap, least) in gaps.iter().zip([200, 400, 800]) {
        assert!(*gap >= Duration::from_millis(least), "gaps {gaps:?}");
    }
    assert!(gaps[2] > gaps[0], "delays grow: {gaps:?}");

    let history = app.reminders(&user, &id_of(&task)).await;
    assert_eq!(history[0]["status"], "pending", "still being retried");
    assert!(history[0]["last_error"].as_str().unwrap().contains("451"), "{history:?}");

    smtp.wait_for(1, WAIT).await;
    let history = eventually("the delivery to be recorded", WAIT, || async {
        let history = app.reminders(&user, &id_of(&task)).await;
        (history[0]["status"] == "sent").then_some(history)
    })
    .await;
    assert_eq!(history[0]["attempts"], 5, "four refusals, then delivered");
    assert_eq!(smtp.count(), 1);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn reminders_due_while_the_smtp_server_is_down_are_sent_once_it_returns() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    let addr = smtp.addr();
    smtp.stop();
    let worker = app
        .spawn_worker_with(&smtp, |s| {
            s.worker.retry_base_ms = 300;
            s.worker.retry_max_secs = 2;
            s.worker.max_attempts = 20;
        })
        .await;
    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(
            app.create_task(&user, json!({"title": format!("Down {i}"), "reminder_at": past(1)})).await,
        );
    }
    // Nothing listens: every attempt fails to connect, and none is recorded as sent.
    let failing = eventually("attempts against the dead server", WAIT, || async {
        let history = app.reminders(&user, &id_of(&tasks[0])).await;
        let attempts = history.first().and_then(|h| h["attempts"].as_i64()).unwrap_or(0);
        (attempts >= 2).then_some(history)
    })
    .await;
    assert_eq!(failing[0]["status"], "pending", "retried, not given up and not marked sent");
    assert!(failing[0]["last_error"].is_string());

    // The server comes back on the same address.
    let smtp = SmtpSink::bind(addr).await.unwrap();
    let messages = smtp.wait_for(3, WAIT).await;
    assert_eq!(messages.len(), 3, "every reminder due during the outage arrives");
    for task in &tasks {
        let history = eventually("the delivery to be recorded", WAIT, || async {
            let history = app.reminders(&user, &id_of(task)).await;
            history.first().is_some_and(|h| h["status"] == "sent").then_some(history)
        })
        .await;
        assert!(history[0]["attempts"].as_i64().unwrap() >= 2);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.count(), 3, "each sent once");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_permanent_smtp_failure_is_recorded_and_not_retried() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    smtp.set_mode(Mode::PermFail);
    let worker = app.spawn_worker(&smtp).await;
    let task = app.create_task(&user, json!({"title": "Bounced", "reminder_at": past(1)})).await;

    let history = eventually("the failure to be recorded", WAIT, || async {
        let history = app.reminders(&user, &id_of(&task)).await;
        (history.first().is_some_and(|h| h["status"] == "failed")).then_some(history)
    })
    .await;
    assert!(history[0]["last_error"].as_str().unwrap().contains("550"), "{history:?}");
    assert_eq!(history[0]["attempts"], 1);
    eventually("the job to be discarded", WAIT, || async {
        (jobs_with_status(&app, "Killed").await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.refused(), 1, "never retried");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn the_last_failed_attempt_leaves_the_job_failed_and_the_history_says_so() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    smtp.set_mode(Mode::TempFail);
    let worker = app
        .spawn_worker_with(&smtp, |s| {
            s.worker.retry_base_ms = 50;
            s.worker.max_attempts = 3;
        })
        .await;
    let task = app.create_task(&user, json!({"title": "Doomed", "reminder_at": past(1)})).await;

    let history = eventually("the last attempt to fail", WAIT, || async {
        let history = app.reminders(&user, &id_of(&task)).await;
        (history.first().is_some_and(|h| h["status"] == "failed")).then_some(history)
    })
    .await;
    assert_eq!(history[0]["attempts"], 3);
    eventually("the job to stay failed", WAIT, || async {
        (jobs_with_status(&app, "Failed").await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.refused(), 3, "no fourth attempt");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_job_left_running_by_a_dead_worker_is_rescued_and_delivered_once() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    let task =
        app.create_task(&user, json!({"title": "Orphan", "reminder_at": "2030-01-01T08:00:00Z"})).await;
    // A worker took the job and was killed: it stays Running under a name that stopped beating.
    let dead = "dead-host-1-deadbeef:todo.reminder";
    let worker = app.spawn_worker(&smtp).await;
    // It was alive a moment ago, so only the heartbeats of the running worker can notice.
    sqlx::query(
        "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen)
         VALUES ($1, $2, 'PgStorage', '', now())",
    )
    .bind(dead)
    .bind(REMINDER)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE apalis.jobs SET status = 'Running', lock_by = $1, lock_at = now() - interval '1 hour',
                attempts = 1, run_at = now() - interval '1 hour'
         WHERE job_type = $2",
    )
    .bind(dead)
    .bind(REMINDER)
    .execute(&app.pool)
    .await
    .unwrap();

    let started = Instant::now();
    smtp.wait_for(1, WAIT).await;
    let (orphan, beat) = (app.settings.worker.orphan_after_secs, app.settings.worker.heartbeat_secs);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(orphan) - Duration::from_millis(500),
        "not before the window: {elapsed:?}"
    );
    assert!(elapsed <= Duration::from_secs(orphan + 2 * beat + 2), "rescued within the window: {elapsed:?}");
    eventually("the rescued job to finish", WAIT, || async {
        (jobs_with_status(&app, "Done").await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(smtp.count(), 1, "delivered once");
    assert_eq!(app.reminders(&user, &id_of(&task)).await[0]["status"], "sent");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn two_workers_deliver_each_of_200_reminders_exactly_once() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let users = [app.new_user().await, app.new_user().await];
    for i in 0..200 {
        let body = json!({"title": format!("Reminder {i}"), "reminder_at": "2030-01-01T08:00:00Z"});
        app.create_task(&users[i % 2], body).await;
    }
    // A second job for every reminder, as a rescued or re-queued job would be: both workers
    // may hold the same reminder at once, and only the delivery record keeps it to one email.
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT job FROM apalis.jobs WHERE job_type = $1")
        .bind(REMINDER)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    for payload in payloads {
        let job: Reminder = serde_json::from_slice(&payload).unwrap();
        enqueue(&mut conn, &job, Schedule::default()).await.unwrap();
    }
    drop(conn);
    let first = app.spawn_worker(&smtp).await;
    let second = app.spawn_worker(&smtp).await;
    app.make_due(REMINDER).await;

    let received = smtp.wait_for(200, Duration::from_secs(60)).await;
    assert_eq!(received.len(), 200);
    eventually("every job to finish", WAIT, || async {
        (jobs_with_status(&app, "Done").await == 400).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ids: HashSet<String> = smtp.messages().iter().filter_map(|m| m.header("Message-ID")).collect();
    assert_eq!((smtp.count(), ids.len()), (200, 200), "each reminder exactly once");
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM reminder_deliveries WHERE status = 'sent'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sent, 200);
    let lockers: HashSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT split_part(lock_by, ':', 1) FROM apalis.jobs WHERE job_type = $1",
    )
    .bind(REMINDER)
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(lockers.contains(&first.name) || lockers.contains(&second.name), "{lockers:?}");
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn the_delivery_history_is_only_the_owners_and_answers_under_the_user_alias() {
    let app = TestApp::spawn().await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let task = app.create_task(&owner, json!({"title": "Mine", "reminder_at": "2030-01-01T08:00:00Z"})).await;
    let path = format!("/api/v1/tasks/{}/reminders", id_of(&task));

    assert_eq!(app.get_as(&other.token, &path).await.status(), 404, "another user's task is a 404");
    let alias = format!("/api/v1/users/{}/tasks/{}/reminders", owner.id, id_of(&task));
    let response = app.get_as(&owner.token, &alias).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"items": []}), "nothing has fired yet");
    let foreign = format!("/api/v1/users/{}/tasks/{}/reminders", other.id, id_of(&task));
    assert_eq!(app.get_as(&owner.token, &foreign).await.status(), 403);
    let missing = format!("/api/v1/tasks/{}/reminders", Uuid::now_v7());
    assert_eq!(app.get_as(&owner.token, &missing).await.status(), 404);
    let openapi: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(openapi["paths"]["/api/v1/tasks/{id}/reminders"]["get"].is_object(), "documented");
}
