//! The hourly caps on reminder emails, per account and per address, with real workers racing.

use std::time::Duration;

use serde_json::{Value, json};
use smtp_sink::SmtpSink;
use todo::config::ReminderCaps;

use crate::helpers::{TestApp, TestUser, TestWorker, eventually};

const WAIT: Duration = Duration::from_secs(20);

fn past() -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339()
}

/// `reminders_rate_limited_total{cap="…"}` as the worker serves it.
async fn rate_limited(app: &TestApp, worker: &TestWorker, cap: &str) -> u64 {
    let url = format!("http://{}/metrics", worker.metrics_addr);
    let text = app.client.get(url).send().await.unwrap().text().await.unwrap();
    let series = format!("reminders_rate_limited_total{{cap=\"{cap}\"}} ");
    let line = text.lines().find(|l| l.starts_with(&series));
    line.unwrap_or_else(|| panic!("{series} is served:\n{text}"))
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

/// Every reminder of `tasks`, once each is decided: (status, skip reason).
async fn outcomes(app: &TestApp, user: &TestUser, tasks: &[Value]) -> Vec<(String, Option<String>)> {
    let mut outcomes = Vec::new();
    for task in tasks {
        let id = task["id"].as_str().unwrap();
        let history = eventually("the reminder to be decided", WAIT, || async {
            let history = app.reminders(user, id).await;
            history.first().is_some_and(|h| h["status"] != "pending").then_some(history)
        })
        .await;
        let reason = history[0]["skip_reason"].as_str().map(str::to_owned);
        outcomes.push((history[0]["status"].as_str().unwrap().to_owned(), reason));
    }
    outcomes
}

fn count(outcomes: &[(String, Option<String>)], status: &str, reason: Option<&str>) -> usize {
    outcomes.iter().filter(|(s, r)| s == status && r.as_deref() == reason).count()
}

#[tokio::test]
async fn two_racing_workers_send_an_account_no_more_than_its_hourly_cap_and_skip_the_rest_as_rate_limited() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let caps = ReminderCaps { per_account_per_hour: 2, per_recipient_per_hour: 0 };
    let user = app.new_user().await;
    let other = app.new_user().await;
    let mut tasks = Vec::new();
    for i in 0..5 {
        tasks.push(
            app.create_task(
                &user,
                json!({"title": format!("Capped {i}"), "reminder_at": "2030-01-01T08:00:00Z"}),
            )
            .await,
        );
    }
    let others =
        [app.create_task(&other, json!({"title": "Other", "reminder_at": "2030-01-01T08:00:00Z"})).await];
    let first = app.spawn_worker_with(&smtp, |s| s.email.caps = caps).await;
    let second = app.spawn_worker_with(&smtp, |s| s.email.caps = caps).await;
    let before = rate_limited(&app, &first, "account").await;
    // All due at once, so both workers' reminder slots race for the same account.
    app.make_due("todo.reminder").await;

    let decided = outcomes(&app, &user, &tasks).await;
    assert_eq!(count(&decided, "sent", None), 2, "{decided:?}");
    assert_eq!(count(&decided, "skipped", Some("rate_limited")), 3, "{decided:?}");
    assert_eq!(
        outcomes(&app, &other, &others).await,
        [("sent".to_owned(), None)],
        "another account has its own cap"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.count(), 3);
    // The recorder is shared by every worker in this test process, so count the difference.
    assert_eq!(rate_limited(&app, &first, "account").await - before, 3);

    // A reminder sent over an hour ago no longer counts.
    sqlx::query(
        "UPDATE reminder_deliveries SET sent_at = sent_at - interval '61 minutes' WHERE status = 'sent'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let later = app.create_task(&user, json!({"title": "Next hour", "reminder_at": past()})).await;
    assert_eq!(outcomes(&app, &user, &[later]).await, [("sent".to_owned(), None)]);
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn an_address_gets_no_more_than_its_hourly_cap_whichever_account_sends_to_it() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let caps = ReminderCaps { per_account_per_hour: 0, per_recipient_per_hour: 2 };
    let worker = app.spawn_worker_with(&smtp, |s| s.email.caps = caps).await;
    let before = rate_limited(&app, &worker, "recipient").await;
    let address = format!("victim-{}@example.org", uuid::Uuid::new_v4().simple());
    let first = app.register(&address).await;
    let mut tasks = Vec::new();
    for i in 0..2 {
        tasks.push(
            app.create_task(&first, json!({"title": format!("First {i}"), "reminder_at": past()})).await,
        );
    }
    assert_eq!(count(&outcomes(&app, &first, &tasks).await, "sent", None), 2);

    // The first account moves to another address, and a new account takes this one (in any case).
    sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
        .bind(format!("moved-{address}"))
        .bind(first.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let second = app.register(&address.to_uppercase()).await;
    let task = app.create_task(&second, json!({"title": "Second", "reminder_at": past()})).await;
    assert_eq!(
        outcomes(&app, &second, &[task]).await,
        [("skipped".to_owned(), Some("rate_limited".to_owned()))]
    );
    let moved = app.create_task(&first, json!({"title": "Moved", "reminder_at": past()})).await;
    assert_eq!(
        outcomes(&app, &first, &[moved]).await,
        [("sent".to_owned(), None)],
        "the new address has its own cap"
    );
    // The worker runs while the second account registers, so its verification email may go out
    // before the test verifies the address itself: count the reminders only.
    let received = smtp.wait_for(0, Duration::from_millis(1)).await;
    let subjects = received.iter().filter_map(|m| m.header("Subject"));
    assert_eq!(subjects.filter(|s| s.starts_with("Reminder:")).count(), 3);
    assert_eq!(rate_limited(&app, &worker, "recipient").await - before, 1);
    worker.stop().await.unwrap();
}
