//! What a reminder email says and which headers it carries, as the real SMTP sink receives it.

use std::time::Duration;

use mail_parser::MessageParser;
use serde_json::json;
use smtp_sink::SmtpSink;

use crate::helpers::TestApp;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_subject_is_the_title_on_one_bounded_line_even_when_the_stored_title_has_line_breaks() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    // The API refuses control characters in titles, but the mailer must not rely on every door
    // (or an old row) doing so: this one is written straight to the database.
    let task =
        app.create_task(&user, json!({"title": "placeholder", "reminder_at": "2030-01-01T08:00:00Z"})).await;
    let injected = format!("  Pay now\r\nBcc: victim@example.org\u{202E} {}", "x".repeat(150));
    sqlx::query("UPDATE tasks SET title = $1 WHERE id = $2::uuid")
        .bind(&injected)
        .bind(task["id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let worker = app.spawn_worker(&smtp).await;
    app.make_due("todo.reminder").await;

    let received = smtp.wait_for(1, WAIT).await;
    let mail = &received[0];
    assert_eq!(mail.header("Bcc"), None, "no header smuggled in through the title");
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    let subject = parsed.subject().unwrap();
    assert!(subject.starts_with("Reminder: Pay now Bcc: victim@example.org xxx"), "{subject}");
    assert!(!subject.contains(|c: char| c.is_control() || c == '\u{202E}'), "{subject:?}");
    assert!(subject.ends_with("x…"), "cut with an ellipsis: {subject}");
    assert_eq!(subject.chars().count(), "Reminder: ".len() + 80, "{subject}");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn times_show_the_zone_abbreviation_for_the_date_they_fall_on() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    let zone = json!({"timezone": "America/New_York"});
    let response = app.send_as(&user.token, reqwest::Method::PATCH, "/api/v1/users/me", Some(&zone)).await;
    assert_eq!(response.status(), 200);
    // Due in summer, reminded in winter: each time carries its own abbreviation.
    app.create_task(
        &user,
        json!({"title": "Taxes", "due_at": "2030-07-01T13:00:00Z", "reminder_at": "2030-01-15T14:00:00Z"}),
    )
    .await;
    let worker = app.spawn_worker(&smtp).await;
    app.make_due("todo.reminder").await;

    let received = smtp.wait_for(1, WAIT).await;
    let parsed = MessageParser::default().parse(&received[0].data).unwrap();
    let due = "Monday 1 July 2030, 09:00 EDT (America/New_York)";
    assert_eq!(parsed.subject().unwrap(), format!("Reminder: Taxes (due {due})"));
    assert!(parsed.body_text(0).unwrap().contains(&format!("Due: {due}")));
    assert!(parsed.body_html(0).unwrap().contains("09:00 EDT (America&#x2f;New_York)"));
    assert_eq!(received[0].header("Auto-Submitted").as_deref(), Some("auto-generated"));
    worker.stop().await.unwrap();
}
