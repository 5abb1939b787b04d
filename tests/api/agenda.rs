//! The daily agenda against a real worker and SMTP server. Time is controlled through the job's
//! scheduled instant: a test queues the agenda of a chosen local date (as a profile change would
//! on that day) and moves the job's run time to now, instead of sleeping until 02:30.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use mail_parser::MessageParser;
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::{Received, SmtpSink};
use todo::jobs::agenda::{self, Agenda};
use todo::jobs::maintenance::Maintenance;
use todo::jobs::{Job, Schedule, enqueue};

use crate::helpers::{TestApp, TestUser, assert_problem, eventually};
use crate::mail_links::{
    assert_links_only_to_public_url, assert_page, links_in, list_unsubscribe_url, press, token_of,
};

const WAIT: Duration = Duration::from_secs(20);
const QUEUE: &str = Agenda::QUEUE;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn patch_me(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.send_as(&user.token, Method::PATCH, "/api/v1/users/me", Some(&body)).await
}

/// A verified user whose agenda goes out at `time` in `zone`.
async fn agenda_user(app: &TestApp, time: &str, zone: &str) -> TestUser {
    let user = app.new_user().await;
    let response = patch_me(app, &user, json!({"agenda_time": time, "timezone": zone})).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["agenda_time"], time);
    user
}

/// Queues the agenda of `day`, as the account's own settings ask, in place of the pending one.
async fn queue_day(app: &TestApp, user: &TestUser, day: NaiveDate) {
    let (time, zone): (NaiveTime, String) =
        sqlx::query_as("SELECT agenda_time, timezone FROM users WHERE id = $1")
            .bind(user.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    agenda::reschedule(&mut tx, user.id, Some(time), &zone, Some(day)).await.unwrap();
    tx.commit().await.unwrap();
}

/// The pending agenda jobs, as (local date, run time).
async fn pending(app: &TestApp) -> Vec<(NaiveDate, DateTime<Utc>)> {
    let rows: Vec<(Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT job, run_at FROM apalis.jobs WHERE job_type = $1 AND status = 'Pending' ORDER BY run_at",
    )
    .bind(QUEUE)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter().map(|(job, at)| (serde_json::from_slice::<Agenda>(&job).unwrap().date, at)).collect()
}

/// Runs every agenda job now and waits until none is left to run.
async fn run_due(app: &TestApp) {
    app.make_due(QUEUE).await;
    eventually("the agenda jobs to finish", WAIT, || async {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1
               AND (status IN ('Running', 'Queued') OR (status = 'Pending' AND run_at <= now()))",
        )
        .bind(QUEUE)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (busy == 0).then_some(())
    })
    .await;
}

/// The recorded outcome of the user's agenda for `day`.
async fn outcome(app: &TestApp, user: &TestUser, day: NaiveDate) -> Option<String> {
    sqlx::query_scalar("SELECT outcome FROM agenda_sends WHERE user_id = $1 AND local_date = $2")
        .bind(user.id)
        .bind(day)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

fn parts(mail: &Received) -> (String, String, String) {
    let parsed = MessageParser::default().parse(&mail.data).expect("a parseable message");
    let subject = parsed.subject().unwrap_or_default().to_owned();
    (subject, parsed.body_text(0).unwrap().into_owned(), parsed.body_html(0).unwrap().into_owned())
}

#[tokio::test]
async fn agenda_time_is_validated_shown_and_off_by_default() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let me: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(me["agenda_time"], Value::Null, "off by default");
    for bad in ["7:30", "24:00", "07:60", "07:30:00", "noon"] {
        let response = patch_me(&app, &user, json!({"agenda_time": bad, "name": "Ann"})).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "agenda_time", "{bad}: {problem}");
    }
    let me: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(me["name"], Value::Null, "a refused change changes nothing");
    assert!(pending(&app).await.is_empty(), "nothing queued for a refused change");
}

#[tokio::test]
async fn setting_queues_the_next_agenda_and_turning_it_off_cancels_it() {
    let app = TestApp::spawn().await;
    let user = agenda_user(&app, "07:30", "America/New_York").await;
    let queued = pending(&app).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    let (day, at) = queued[0];
    assert!(at > Utc::now() && at <= Utc::now() + chrono::Duration::days(1) + chrono::Duration::hours(1));
    let zone: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let local = at.with_timezone(&zone);
    assert_eq!((local.date_naive(), local.format("%H:%M").to_string()), (day, "07:30".to_owned()));

    // Moving it replaces the job rather than adding one.
    assert_eq!(patch_me(&app, &user, json!({"agenda_time": "18:00"})).await.status(), 200);
    assert_eq!(pending(&app).await.len(), 1);
    assert_eq!(patch_me(&app, &user, json!({"timezone": "Asia/Tokyo"})).await.status(), 200);
    assert_eq!(pending(&app).await.len(), 1);

    let response = patch_me(&app, &user, json!({"agenda_time": null})).await;
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["agenda_time"], Value::Null);
    assert!(pending(&app).await.is_empty(), "turning it off cancels the pending agenda");
}

#[tokio::test]
async fn once_per_local_day_across_both_dst_changes_and_a_second_run_sends_nothing() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = agenda_user(&app, "02:30", "Europe/Paris").await;
    // Paris springs forward on 28 March 2027 (02:00 → 03:00) and falls back on 31 October.
    app.create_task(&user, json!({"title": "Late <b>report</b>", "due_at": "2027-03-26T09:00:00Z"})).await;
    app.create_task(&user, json!({"title": "Spring dentist", "due_at": "2027-03-28T14:00:00+02:00"})).await;
    app.create_task(&user, json!({"title": "Autumn dentist", "due_at": "2027-10-31T15:00:00+01:00"})).await;
    app.create_task(&user, json!({"title": "Autumn call", "due_at": "2027-10-31T08:00:00+01:00"})).await;
    let worker = app.spawn_worker(&smtp).await;

    queue_day(&app, &user, date("2027-03-27")).await;
    assert_eq!(pending(&app).await, vec![(date("2027-03-27"), instant("2027-03-27T01:30:00Z"))]);
    run_due(&app).await;
    assert_eq!(outcome(&app, &user, date("2027-03-27")).await.as_deref(), Some("sent"));
    // 02:30 does not exist on the 28th: the agenda goes out once, at 03:30 CEST.
    assert_eq!(pending(&app).await, vec![(date("2027-03-28"), instant("2027-03-28T01:30:00Z"))]);
    run_due(&app).await;
    assert_eq!(outcome(&app, &user, date("2027-03-28")).await.as_deref(), Some("sent"));
    assert_eq!(pending(&app).await, vec![(date("2027-03-29"), instant("2027-03-29T00:30:00Z"))]);

    let mails = smtp.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2);
    let (subject, text, html) = parts(&mails[1]);
    assert_eq!(subject, "Your agenda for Sunday 28 March");
    let (overdue, today) = (text.find("Late <b>report</b>").unwrap(), text.find("Spring dentist").unwrap());
    assert!(text.find("Overdue").unwrap() < overdue && overdue < text.find("Due today").unwrap(), "{text}");
    assert!(text.find("Due today").unwrap() < today, "{text}");
    assert!(text.contains("Sunday 28 March 2027, 14:00 CEST (Europe/Paris)"), "{text}");
    assert!(html.contains("Late &lt;b&gt;report") && !html.contains("<b>report"), "{html}");
    assert!(text.contains(&app.settings.public_url().unwrap().join("/")), "a link to the app: {text}");
    assert!(mails[1].header("Auto-Submitted").is_some());
    assert_eq!(parts(&mails[0]).0, "Your agenda for Saturday 27 March");

    // Another worker, or a retry, running the 28th again: the day is recorded, nothing is sent.
    let again = Agenda {
        user_id: user.id,
        date: date("2027-03-28"),
        agenda_time: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
        timezone: "Europe/Paris".into(),
    };
    let mut conn = app.pool.acquire().await.unwrap();
    enqueue(&mut conn, &again, Schedule { owner: Some(user.id), ..Schedule::default() }).await.unwrap();
    drop(conn);
    eventually("the repeated run to finish", WAIT, || async {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'")
                .bind(QUEUE)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (done >= 3).then_some(())
    })
    .await;
    assert_eq!(smtp.count(), 2, "the same day twice sends once");
    assert_eq!(pending(&app).await.len(), 1, "and queues no second follow-up");

    // Fall back: 02:30 happens twice on 31 October; the first one counts, and the next job is
    // the 1st of November, not the second 02:30.
    queue_day(&app, &user, date("2027-10-31")).await;
    assert_eq!(pending(&app).await, vec![(date("2027-10-31"), instant("2027-10-31T00:30:00Z"))]);
    run_due(&app).await;
    assert_eq!(pending(&app).await, vec![(date("2027-11-01"), instant("2027-11-01T01:30:00Z"))]);
    let mails = smtp.wait_for(3, WAIT).await;
    assert_eq!(mails.len(), 3);
    let (subject, text, _) = parts(&mails[2]);
    assert_eq!(subject, "Your agenda for Sunday 31 October");
    let positions: Vec<usize> = ["Late <b>report", "Spring dentist", "Autumn call", "Autumn dentist"]
        .iter()
        .map(|title| text.find(title).unwrap_or_else(|| panic!("{title} in {text}")))
        .collect();
    assert!(positions.is_sorted(), "overdue first, then due today, each in due order: {text}");
    assert!(text.contains("08:00 CET"), "after the change, winter time: {text}");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn nothing_due_sends_nothing_and_is_recorded() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = agenda_user(&app, "07:00", "America/New_York").await;
    app.create_task(&user, json!({"title": "Next week", "due_at": "2027-06-09T12:00:00Z"})).await;
    app.create_task(&user, json!({"title": "Someday"})).await;
    let done = app.create_task(&user, json!({"title": "Done", "due_at": "2027-06-01T12:00:00Z"})).await;
    let path = format!("/api/v1/tasks/{}/toggle", done["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::POST, &path, None).await.status(), 200);
    let worker = app.spawn_worker(&smtp).await;

    queue_day(&app, &user, date("2027-06-02")).await;
    run_due(&app).await;
    assert_eq!(outcome(&app, &user, date("2027-06-02")).await.as_deref(), Some("empty"));
    assert_eq!(pending(&app).await[0].0, date("2027-06-03"), "the chain goes on");

    // An unverified address gets no agenda either; the day is recorded as skipped.
    let unverified = app.register_unverified("agenda-unverified@example.com").await;
    assert_eq!(patch_me(&app, &unverified, json!({"agenda_time": "07:00"})).await.status(), 200);
    app.create_task(&unverified, json!({"title": "Due", "due_at": "2027-06-02T12:00:00Z"})).await;
    queue_day(&app, &unverified, date("2027-06-02")).await;
    run_due(&app).await;
    assert_eq!(outcome(&app, &unverified, date("2027-06-02")).await.as_deref(), Some("skipped"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agendas =
        smtp.messages().iter().filter(|m| m.header("Subject").is_some_and(|s| s.contains("agenda"))).count();
    assert_eq!(agendas, 0);
    worker.stop().await.unwrap();

    // The records are bounded: the maintenance job purges them after a week.
    sqlx::query("UPDATE agenda_sends SET recorded_at = now() - interval '8 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.purge(None).await;
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM agenda_sends").fetch_one(&app.pool).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_list_stops_at_fifty_with_how_many_more() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = agenda_user(&app, "08:00", "Europe/Paris").await;
    let operations: Vec<Value> = (0..53)
        .map(|i| {
            let due = format!("2027-05-10T{:02}:{:02}:00+02:00", 9 + i / 60, i % 60);
            json!({"op": "create", "task": {"title": format!("Task {i:02}"), "due_at": due}})
        })
        .collect();
    let response = app
        .send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&json!({"operations": operations})))
        .await;
    assert_eq!(response.status(), 200);
    let worker = app.spawn_worker(&smtp).await;

    queue_day(&app, &user, date("2027-05-10")).await;
    run_due(&app).await;
    let mails = smtp.wait_for(1, WAIT).await;
    let (_, text, html) = parts(&mails[0]);
    assert!(text.contains("Task 49") && !text.contains("Task 50"), "the first fifty in due order: {text}");
    assert!(text.contains("and 3 more"), "{text}");
    assert!(html.contains("and 3 more"), "{html}");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_time_zone_change_the_same_day_still_sends_at_most_one() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = agenda_user(&app, "07:00", "Europe/Paris").await;
    app.create_task(&user, json!({"title": "Flight", "due_at": "2027-06-01T20:00:00Z"})).await;
    let worker = app.spawn_worker(&smtp).await;

    queue_day(&app, &user, date("2027-06-01")).await;
    run_due(&app).await;
    assert_eq!(smtp.wait_for(1, WAIT).await.len(), 1);

    // Later that day the user flies to New York, where 07:00 on 1 June is still ahead: the
    // change queues that day's agenda again, in the new zone.
    assert_eq!(patch_me(&app, &user, json!({"timezone": "America/New_York"})).await.status(), 200);
    queue_day(&app, &user, date("2027-06-01")).await;
    assert_eq!(pending(&app).await, vec![(date("2027-06-01"), instant("2027-06-01T11:00:00Z"))]);
    run_due(&app).await;
    assert_eq!(outcome(&app, &user, date("2027-06-01")).await.as_deref(), Some("sent"));
    assert_eq!(pending(&app).await[0].0, date("2027-06-02"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.count(), 1, "one agenda for the 1st of June");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn the_agendas_one_click_unsubscribe_turns_the_agenda_off_and_leaves_reminders_on() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = agenda_user(&app, "08:00", "Europe/Paris").await;
    app.create_task(&user, json!({"title": "Call the bank", "due_at": "2027-05-10T10:00:00+02:00"})).await;
    let worker = app.spawn_worker(&smtp).await;
    queue_day(&app, &user, date("2027-05-10")).await;
    run_due(&app).await;
    let mails = smtp.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let url = list_unsubscribe_url(mail);
    assert!(url.starts_with(&format!("{}/email/unsubscribe?token=", app.address)), "{url}");
    let (_, text, _) = parts(mail);
    assert!(text.contains(&url), "the body shows the link too: {text}");

    // What a mailbox provider sends (RFC 8058): no session, the token in the URL.
    let one_click = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);
    let me: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!(me["agenda_time"], Value::Null, "the agenda is off");
    assert_eq!(me["email_reminders"], true, "reminders are another kind of email");
    assert!(pending(&app).await.is_empty(), "and no agenda is queued any more");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn each_listed_task_carries_working_complete_and_snooze_links_bound_to_its_due_time() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = agenda_user(&app, "08:00", "Europe/Paris").await;
    let mut ids = Vec::new();
    for (title, due) in [
        ("Pay rent", "2027-05-10T10:00:00+02:00"),
        ("Call the bank", "2027-05-10T11:00:00+02:00"),
        ("Book the dentist", "2027-05-10T12:00:00+02:00"),
    ] {
        let task = app.create_task(&user, json!({"title": title, "due_at": due})).await;
        ids.push(task["id"].as_str().unwrap().to_owned());
    }
    let worker = app.spawn_worker(&smtp).await;
    queue_day(&app, &user, date("2027-05-10")).await;
    run_due(&app).await;
    let mail = smtp.wait_for(1, WAIT).await[0].clone();
    worker.stop().await.unwrap();

    // Each task lists the reminder's four links, under `public_url`, in due order.
    let links = links_in(&mail);
    let of =
        |label: &str| links.iter().filter(|(l, _)| l == label).map(|(_, u)| u.clone()).collect::<Vec<_>>();
    let (complete, snooze) = (of("Mark as done"), of("Snooze 1 hour"));
    assert_eq!((complete.len(), snooze.len(), of("Snooze 10 minutes").len()), (3, 3, 3), "{links:?}");
    let under = format!("{}/email/task?token=", app.address);
    assert!(complete.iter().chain(&snooze).all(|url| url.starts_with(&under)), "{links:?}");
    let (_, _, html) = parts(&mail);
    assert!(complete.iter().all(|url| html.contains(&token_of(url))), "the HTML part links them too: {html}");
    let get = |id: &str| {
        let path = format!("/api/v1/tasks/{id}");
        let (app, token) = (&app, user.token.clone());
        async move { app.get_as(&token, &path).await.json::<Value>().await.unwrap() }
    };

    // A GET shows the task and changes nothing; the POST completes it as the API would.
    let before = get(&ids[0]).await;
    let page = assert_page(app.client.get(&complete[0]).send().await.unwrap(), 200).await;
    assert!(page.contains("Pay rent") && page.matches("<button").count() == 1, "{page}");
    assert_eq!(get(&ids[0]).await["version"], before["version"], "a GET changes nothing");
    let done = assert_page(press(&app, &token_of(&complete[0])).await, 200).await;
    assert!(done.contains("Task done"), "{done}");
    let after = get(&ids[0]).await;
    assert_eq!(
        (after["completed"].clone(), after["version"].as_i64()),
        (json!(true), before["version"].as_i64().map(|v| v + 1))
    );
    let replay = assert_page(press(&app, &token_of(&complete[0])).await, 410).await;
    assert!(replay.contains("already used"), "{replay}");

    // A snooze from the agenda sets a reminder; the due time stays.
    let pressed = Utc::now();
    let snoozed = assert_page(press(&app, &token_of(&snooze[1])).await, 200).await;
    assert!(snoozed.contains("Reminder snoozed"), "{snoozed}");
    let bank = get(&ids[1]).await;
    let reminder = instant(bank["reminder_at"].as_str().expect("a reminder now"));
    let hour = chrono::Duration::hours(1);
    assert!(reminder >= pressed + hour && reminder <= Utc::now() + hour, "{reminder}");
    assert_eq!(instant(bank["due_at"].as_str().unwrap()), instant("2027-05-10T09:00:00Z"));

    // Links name the due time the agenda listed: once the task is rescheduled they are stale.
    let path = format!("/api/v1/tasks/{}", ids[2]);
    let moved = app
        .send_as(&user.token, Method::PATCH, &path, Some(&json!({"due_at": "2027-05-11T12:00:00+02:00"})))
        .await;
    assert_eq!(moved.status(), 200);
    let stale = assert_page(press(&app, &token_of(&complete[2])).await, 410).await;
    assert!(stale.contains("rescheduled"), "{stale}");
    assert_eq!(get(&ids[2]).await["completed"], false, "a stale link changes nothing");
}

#[tokio::test]
async fn unsubscribing_from_a_reminder_email_leaves_the_agenda_on() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = agenda_user(&app, "08:00", "Europe/Paris").await;
    let worker = app.spawn_worker(&smtp).await;
    app.create_task(
        &user,
        json!({"title": "Call the bank", "due_at": "2027-05-10T10:00:00+02:00",
               "reminder_at": Utc::now().to_rfc3339()}),
    )
    .await;
    app.make_due("todo.reminder").await;
    let reminder = smtp.wait_for(1, WAIT).await[0].clone();
    assert!(parts(&reminder).0.contains("Call the bank"), "a reminder first");

    let one_click = app
        .client
        .post(list_unsubscribe_url(&reminder))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);
    let me: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
    assert_eq!((me["email_reminders"].clone(), me["agenda_time"].clone()), (json!(false), json!("08:00")));

    // The reminder's link turned reminders off; the agenda is another kind of email.
    queue_day(&app, &user, date("2027-05-10")).await;
    run_due(&app).await;
    assert_eq!(outcome(&app, &user, date("2027-05-10")).await.as_deref(), Some("sent"));
    let mails = smtp.wait_for(2, WAIT).await;
    let (subject, text, _) = parts(&mails[1]);
    assert_eq!(subject, "Your agenda for Monday 10 May");
    assert!(text.contains("Call the bank"), "{text}");
    assert_links_only_to_public_url(&app, &reminder);
    assert_links_only_to_public_url(&app, &mails[1]);
    worker.stop().await.unwrap();
}

/// Runs one maintenance job through the worker, for a slot no ticker uses, and waits for it.
async fn run_maintenance(app: &TestApp, slot: i64) {
    let job = Maintenance { slot_start: DateTime::from_timestamp(slot, 0).unwrap() };
    let schedule = Schedule { idempotency_key: Some(job.idempotency_key()), ..Schedule::default() };
    let mut conn = app.pool.acquire().await.unwrap();
    enqueue(&mut conn, &job, schedule).await.unwrap();
    drop(conn);
    eventually("the maintenance jobs to finish", WAIT, || async {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status NOT IN ('Done', 'Killed')",
        )
        .bind(Maintenance::QUEUE)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (open == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_maintenance_job_queues_the_agenda_again_when_its_chain_broke() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = agenda_user(&app, "07:30", "Europe/Paris").await;
    let _without_agenda = app.new_user().await;
    let queued = pending(&app).await;
    assert_eq!(queued.len(), 1, "{queued:?}");

    // A day's last attempt failed: its follow-up rolled back with it, and no job is left.
    sqlx::query("UPDATE apalis.jobs SET status = 'Failed', attempts = max_attempts WHERE job_type = $1")
        .bind(QUEUE)
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(pending(&app).await.is_empty());

    let worker = app.spawn_worker(&smtp).await;
    run_maintenance(&app, 1).await;
    let again = pending(&app).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].0 >= queued[0].0 && again[0].1 > Utc::now(), "the next agenda: {again:?} {queued:?}");
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT metadata -> 'user_id' FROM apalis.jobs WHERE job_type = $1 AND status = 'Pending'",
    )
    .bind(QUEUE)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(owner, Some(user.id.to_string()));

    // A chain that is whole is left alone: still one job.
    run_maintenance(&app, 2).await;
    assert_eq!(pending(&app).await, again);
    worker.stop().await.unwrap();
}
