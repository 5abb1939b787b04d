//! The links of a reminder email, end to end through the real SMTP sink, HTTP and Postgres:
//! complete and snooze pages (a GET changes nothing, the POST acts through the user's actor),
//! stale links, and the RFC 8058 one-click unsubscribe.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mail_parser::MessageParser;
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::{Received, SmtpSink};
use todo::links::{Action, Anchor, Claims, LinkKeys, Purpose, Snooze, TaskAction};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, eventually};
use crate::mail_links::{
    assert_links_only_to_public_url, assert_page, link, links_in, list_unsubscribe_url, press, token_of,
};

const WAIT: Duration = Duration::from_secs(20);
const REMINDER: &str = "todo.reminder";

async fn task(app: &TestApp, user: &TestUser, id: &str) -> (Value, String) {
    let response = app.get_as(&user.token, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    (response.json().await.unwrap(), etag)
}

async fn next_since(app: &TestApp, user: &TestUser) -> i64 {
    let page: Value = app.get_as(&user.token, "/api/v1/changes?since=0").await.json().await.unwrap();
    page["next_since"].as_i64().unwrap()
}

/// Creates a task whose reminder fires at once, and returns it with the reminder email.
async fn reminded(app: &TestApp, smtp: &SmtpSink, user: &TestUser, body: Value) -> (Value, Received) {
    let before = smtp.count();
    let task = app.create_task(user, body).await;
    app.make_due(REMINDER).await;
    let received = smtp.wait_for(before + 1, WAIT).await;
    (task, received[before].clone())
}

fn instant(value: &Value) -> DateTime<Utc> {
    value.as_str().expect("an instant").parse().unwrap()
}

fn id_of(task: &Value) -> String {
    task["id"].as_str().unwrap().to_owned()
}

/// A task link token signed as the worker signs them, for cases no email carries.
fn mint(
    app: &TestApp,
    user: Uuid,
    task: &Value,
    action: Action,
    expires_at: Option<DateTime<Utc>>,
) -> String {
    let link = TaskAction {
        task_id: id_of(task).parse().unwrap(),
        anchor: Anchor::Reminder(instant(&task["reminder_at"])),
        action,
    };
    let mut claims = Claims::new(Purpose::TaskAction, user, link.subject(), Utc::now());
    if let Some(at) = expires_at {
        claims.expires_at = at;
    }
    LinkKeys::new(&app.settings.auth).sign(&claims)
}

#[tokio::test]
async fn the_complete_link_shows_a_page_on_get_and_completes_through_the_api_path_on_post_once() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    let worker = app.spawn_worker(&smtp).await;
    let (created, mail) = reminded(
        &app,
        &smtp,
        &user,
        json!({"title": "Water <the> plants", "due_at": "2030-03-04T09:00:00Z",
               "reminder_at": "2030-03-04T08:45:00Z", "recurrence_rule": "FREQ=DAILY"}),
    )
    .await;
    let id = id_of(&created);

    let links = links_in(&mail);
    let labels: Vec<&str> = links.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["Mark as done", "Snooze 10 minutes", "Snooze 1 hour", "Snooze until tomorrow 09:00", "Unsubscribe"]
    );
    assert!(links.iter().all(|(_, url)| url.starts_with(&format!("{}/email/", app.address))), "{links:?}");
    let complete = link(&mail, "Mark as done");

    // Mail scanners open every link: the page shows the task and one button, and nothing moves.
    let (before, etag_before) = task(&app, &user, &id).await;
    for _ in 0..2 {
        let page = assert_page(app.client.get(&complete).send().await.unwrap(), 200).await;
        assert!(page.contains("Water &lt;the&gt; plants") && page.matches("<button").count() == 1, "{page}");
        assert!(page.contains(r#"<form method="post" action="&#x2f;email&#x2f;task">"#), "{page}");
    }
    let (unchanged, etag) = task(&app, &user, &id).await;
    assert_eq!((unchanged["version"].clone(), etag), (before["version"].clone(), etag_before.clone()));
    let since = next_since(&app, &user).await;

    let done = assert_page(press(&app, &token_of(&complete)).await, 200).await;
    assert!(done.contains("Task done"), "{done}");
    let (after, etag_after) = task(&app, &user, &id).await;
    assert_eq!(after["completed"], true);
    assert_eq!(after["version"].as_i64(), before["version"].as_i64().map(|v| v + 1));
    assert_ne!(etag_after, etag_before);
    let feed: Value =
        app.get_as(&user.token, &format!("/api/v1/changes?since={since}")).await.json().await.unwrap();
    let entry = feed["changes"].as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).cloned();
    assert_eq!(entry.expect("the completion is in the change feed")["task"]["completed"], true);

    // As with the API, completing a recurring task brings its next occurrence.
    let series = created["series_id"].as_str().unwrap().to_owned();
    eventually("the next occurrence", WAIT, || async {
        let page: Value = app.get_as(&user.token, "/api/v1/tasks?limit=100").await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        (items.iter().filter(|t| t["series_id"] == series.as_str()).count() == 2).then_some(())
    })
    .await;

    // The link worked once; the email's other links are stale now that the task is done.
    let replay = assert_page(press(&app, &token_of(&complete)).await, 410).await;
    assert!(replay.contains("already used"), "{replay}");
    assert_page(app.client.get(&complete).send().await.unwrap(), 410).await;
    let snooze = link(&mail, "Snooze 1 hour");
    let stale = assert_page(press(&app, &token_of(&snooze)).await, 409).await;
    assert!(stale.contains("already done"), "{stale}");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_snooze_moves_the_reminder_past_the_due_time_and_the_next_reminder_fires_then() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    let zone = app
        .send_as(&user.token, Method::PATCH, "/api/v1/users/me", Some(&json!({"timezone": "Europe/Paris"})))
        .await;
    assert_eq!(zone.status(), 200);
    let worker = app.spawn_worker(&smtp).await;
    let due = Utc::now() + chrono::Duration::minutes(5);
    let (created, mail) = reminded(
        &app,
        &smtp,
        &user,
        json!({"title": "Call Bob", "due_at": due.to_rfc3339(), "reminder_at": Utc::now().to_rfc3339()}),
    )
    .await;
    let id = id_of(&created);
    let snooze = link(&mail, "Snooze 1 hour");
    let get = assert_page(app.client.get(&snooze).send().await.unwrap(), 200).await;
    assert!(get.contains("Call Bob") && get.contains("Snooze 1 hour"), "{get}");
    assert_eq!(task(&app, &user, &id).await.0["version"], created["version"], "a GET changes nothing");

    let pressed = Utc::now();
    let page = assert_page(press(&app, &token_of(&snooze)).await, 200).await;
    let (snoozed, _) = task(&app, &user, &id).await;
    let new_reminder = instant(&snoozed["reminder_at"]);
    let hour = chrono::Duration::hours(1);
    assert!(new_reminder >= pressed + hour && new_reminder <= Utc::now() + hour, "{new_reminder}");
    assert_eq!(instant(&snoozed["due_at"]), instant(&created["due_at"]), "the due time stays");
    assert!(new_reminder > instant(&snoozed["due_at"]), "a snooze may pass the due time");
    // The confirmation shows the new time in the user's zone, with its abbreviation.
    let local = new_reminder.with_timezone(&chrono_tz::Europe::Paris).format("%H:%M %Z").to_string();
    assert!(page.contains("Reminder snoozed") && page.contains(&local), "{local}: {page}");

    // The snoozed task stays editable; the API still refuses to set a late reminder itself.
    let path = format!("/api/v1/tasks/{id}");
    let rename =
        app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"title": "Call Bob back"}))).await;
    assert_eq!(rename.status(), 200);
    let later = (new_reminder + chrono::Duration::minutes(1)).to_rfc3339();
    let late = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"reminder_at": later}))).await;
    assert_eq!(late.status(), 422);

    // The email's links name the reminder they came from: it moved, so they are stale.
    let moved = assert_page(press(&app, &token_of(&link(&mail, "Mark as done"))).await, 410).await;
    assert!(moved.contains("has moved"), "{moved}");

    // The next reminder is queued for the new time; when that time comes, it is sent.
    let pending: Vec<_> = app.jobs(REMINDER).await.into_iter().filter(|j| j.0 == "Pending").collect();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let run_at = pending[0].1;
    assert!(run_at >= new_reminder && run_at - new_reminder < chrono::Duration::seconds(1), "{run_at}");
    app.make_due(REMINDER).await;
    let received = smtp.wait_for(2, WAIT).await;
    let parsed = MessageParser::default().parse(&received[1].data).unwrap();
    assert!(parsed.message_id().unwrap().contains(&format!(".{}@", new_reminder.timestamp())));
    let history = eventually("both deliveries recorded", WAIT, || async {
        let history = app.reminders(&user, &id).await;
        (history.len() == 2 && history.iter().all(|h| h["status"] == "sent")).then_some(history)
    })
    .await;
    assert!(history.iter().any(|h| instant(&h["reminder_at"]) == new_reminder), "{history:?}");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn expired_foreign_deleted_and_tampered_links_get_html_4xx_pages_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.new_user().await;
    let bob = app.new_user().await;
    let body =
        json!({"title": "Ann's", "due_at": "2030-03-04T09:00:00Z", "reminder_at": "2030-03-04T08:00:00Z"});
    let task_a = app.create_task(&ann, body.clone()).await;
    let doomed = app.create_task(&ann, body).await;
    let deleted =
        app.send_as(&ann.token, Method::DELETE, &format!("/api/v1/tasks/{}", id_of(&doomed)), None).await;
    assert!(deleted.status().is_success());

    let expired =
        mint(&app, ann.id, &task_a, Action::Complete, Some(Utc::now() - chrono::Duration::seconds(1)));
    let foreign = mint(&app, bob.id, &task_a, Action::Complete, None);
    let gone = mint(&app, ann.id, &doomed, Action::Snooze(Snooze::TenMinutes), None);
    let good = mint(&app, ann.id, &task_a, Action::Complete, None);
    let flipped = if &good[10..11] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &good[..10], &good[11..]);
    let verify = app.verification_token(ann.id, &ann.email);
    for (token, status) in [
        (expired.as_str(), 410),
        (foreign.as_str(), 410),
        (gone.as_str(), 410),
        (tampered.as_str(), 400),
        (verify.as_str(), 400),
        ("", 400),
        ("%00%ff", 400),
    ] {
        let url = app.url(&format!("/email/task?token={token}"));
        assert_page(app.client.get(&url).send().await.unwrap(), status).await;
        assert_page(press(&app, token).await, status).await;
    }
    let not_a_form = app.client.post(app.url("/email/task")).json(&json!({"token": good})).send().await;
    assert_page(not_a_form.unwrap(), 415).await;
    let (now, _) = task(&app, &ann, &id_of(&task_a)).await;
    assert_eq!((now["version"].clone(), now["completed"].clone()), (task_a["version"].clone(), json!(false)));

    // The good link still works after all that.
    assert_page(press(&app, &good).await, 200).await;
    assert_eq!(task(&app, &ann, &id_of(&task_a)).await.0["completed"], true);
}

#[tokio::test]
async fn the_one_click_unsubscribe_post_turns_reminders_off_without_a_session() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    let worker = app.spawn_worker(&smtp).await;
    let (_, mail) =
        reminded(&app, &smtp, &user, json!({"title": "First", "reminder_at": Utc::now().to_rfc3339()})).await;

    let url = list_unsubscribe_url(&mail);
    assert!(url.starts_with(&format!("{}/email/unsubscribe?token=", app.address)), "{url}");
    assert_eq!(mail.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert_eq!(link(&mail, "Unsubscribe"), url, "the body shows the same link");

    let me = || async {
        let me: Value = app.get_as(&user.token, "/api/v1/users/me").await.json().await.unwrap();
        me["email_reminders"].clone()
    };
    let page = assert_page(app.client.get(&url).send().await.unwrap(), 200).await;
    assert!(page.contains("<button") && page.contains("reminder emails"), "{page}");
    assert_eq!(me().await, true, "a GET changes nothing");

    // What a mailbox provider sends (RFC 8058): no cookie, no token but the URL's.
    for _ in 0..2 {
        let one_click = app
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        let done = assert_page(one_click, 200).await;
        assert!(done.contains("unsubscribed"), "{done}");
        assert_eq!(me().await, false);
    }
    let bad = app.client.post(app.url("/email/unsubscribe?token=nope")).body("List-Unsubscribe=One-Click");
    assert_page(bad.send().await.unwrap(), 400).await;

    let next =
        app.create_task(&user, json!({"title": "Second", "reminder_at": Utc::now().to_rfc3339()})).await;
    app.make_due(REMINDER).await;
    let history = eventually("the next reminder to be decided", WAIT, || async {
        let history = app.reminders(&user, &id_of(&next)).await;
        history.first().is_some_and(|h| h["status"] != "pending").then_some(history)
    })
    .await;
    assert_eq!(
        (&history[0]["status"], &history[0]["skip_reason"]),
        (&json!("skipped"), &json!("reminders_off"))
    );
    assert_eq!(smtp.count(), 1);
    worker.stop().await.unwrap();
}

/// The used row and the task's new version, by the transaction that wrote each.
async fn writers(app: &TestApp, token: &str, id: &str) -> (Option<String>, String) {
    let claims = LinkKeys::new(&app.settings.auth).open(token, Purpose::TaskAction, Utc::now()).unwrap();
    sqlx::query_as(
        "SELECT (SELECT xmin::text FROM used_link_tokens WHERE token_id = $1),
                (SELECT xmin::text FROM tasks WHERE id = $2)",
    )
    .bind(claims.id)
    .bind(id.parse::<Uuid>().unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_link_is_spent_in_the_transaction_of_its_write_and_a_failed_write_leaves_it_working() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    let worker = app.spawn_worker(&smtp).await;
    let (created, mail) =
        reminded(&app, &smtp, &user, json!({"title": "Pay rent", "reminder_at": Utc::now().to_rfc3339()}))
            .await;
    worker.stop().await.unwrap();
    let id = id_of(&created);
    let token = token_of(&link(&mail, "Mark as done"));

    // A write that fails after the press began: the database refuses the task's update.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
         CREATE TRIGGER refuse BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let failed = assert_page(press(&app, &token).await, 503).await;
    assert!(failed.contains("Nothing was changed"), "{failed}");
    assert_eq!(writers(&app, &token, &id).await.0, None, "the link is not spent");
    assert_eq!(task(&app, &user, &id).await.0["completed"], false);

    sqlx::raw_sql("DROP TRIGGER refuse ON tasks").execute(&app.pool).await.unwrap();
    let done = assert_page(press(&app, &token).await, 200).await;
    assert!(done.contains("Task done"), "{done}");
    let (used_by, task_by) = writers(&app, &token, &id).await;
    assert_eq!(used_by, Some(task_by), "the use and the completion commit as one transaction");
    assert_eq!(task(&app, &user, &id).await.0["completed"], true);

    let replay = assert_page(press(&app, &token).await, 410).await;
    assert!(replay.contains("already used"), "{replay}");
}

#[tokio::test]
async fn snoozing_ten_minutes_or_until_tomorrow_nine_moves_the_reminder_there_in_the_users_zone() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    let zone = app
        .send_as(
            &user.token,
            Method::PATCH,
            "/api/v1/users/me",
            Some(&json!({"timezone": "America/New_York"})),
        )
        .await;
    assert_eq!(zone.status(), 200);
    let new_york = chrono_tz::America::New_York;
    let worker = app.spawn_worker(&smtp).await;
    let body = |title: &str| {
        json!({"title": title, "due_at": "2030-03-04T09:00:00Z", "reminder_at": Utc::now().to_rfc3339(),
               "description": "<a href=\"https://evil.example/\">a link someone typed</a>"})
    };
    let (soon, soon_mail) = reminded(&app, &smtp, &user, body("Stretch")).await;
    let (later, later_mail) = reminded(&app, &smtp, &user, body("Water the garden")).await;
    worker.stop().await.unwrap();
    // What the user typed is shown as text: the HTML part links only to the service.
    assert_links_only_to_public_url(&app, &soon_mail);

    let pressed = Utc::now();
    let page = assert_page(press(&app, &token_of(&link(&soon_mail, "Snooze 10 minutes"))).await, 200).await;
    let reminder = instant(&task(&app, &user, &id_of(&soon)).await.0["reminder_at"]);
    let ten = chrono::Duration::minutes(10);
    assert!(reminder >= pressed + ten && reminder <= Utc::now() + ten, "{reminder}");
    let local = reminder.with_timezone(&new_york).format("%H:%M %Z").to_string();
    assert!(page.contains("Reminder snoozed") && page.contains(&local), "{local}: {page}");

    let pressed = Utc::now().with_timezone(&new_york);
    let page =
        assert_page(press(&app, &token_of(&link(&later_mail, "Snooze until tomorrow 09:00"))).await, 200)
            .await;
    let (snoozed, _) = task(&app, &user, &id_of(&later)).await;
    let reminder = instant(&snoozed["reminder_at"]).with_timezone(&new_york);
    assert_eq!(reminder.date_naive(), pressed.date_naive().succ_opt().unwrap(), "tomorrow, in New York");
    assert_eq!(reminder.format("%H:%M:%S").to_string(), "09:00:00", "{reminder}");
    let shown = reminder.format("09:00 %Z").to_string();
    assert!(page.contains("Reminder snoozed") && page.contains(&shown), "{shown}: {page}");
    assert_eq!(instant(&snoozed["due_at"]), instant(&later["due_at"]), "the due time stays");
}
