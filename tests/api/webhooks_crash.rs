//! A worker killed with SIGKILL mid-delivery loses no webhook: the next worker sends every
//! message, still in change order, and only a message in flight at the kill may come twice.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use smtp_sink::SmtpSink;

use crate::crashes::worker_binary;
use crate::helpers::{TestApp, eventually};
use crate::webhook_receiver::Receiver;
use crate::webhooks::{app_allowing_private, register};

fn start_worker(app: &TestApp, smtp: &SmtpSink) -> Child {
    Command::new(worker_binary())
        .env("APP_ENV", "test")
        .env("DATABASE_URL", app.settings.database.url.expose_secret())
        .env("SMTP_URL", smtp.url())
        .env("APP__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")
        .env("APP__WEBHOOKS__RETRY_SCHEDULE_MS", "300,300,300,300,300,300,300")
        .env("APP__WEBHOOKS__TIMEOUT_SECS", "2")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start todo-worker")
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_loses_no_webhook_and_keeps_their_order() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    // Slow answers, so the kill lands while a delivery is in flight.
    receiver.set_delay(Duration::from_millis(200));
    let user = app.new_user().await;
    let (_, secret) = register(&app, &user, &receiver.url("/crash"), &["task.created"]).await;
    receiver.trust(&secret);
    for i in 0..20 {
        app.create_task(&user, json!({"title": format!("Crash {i:02}")})).await;
    }

    let mut first = start_worker(&app, &smtp);
    eventually("a few deliveries", Duration::from_secs(60), || async {
        (receiver.received().len() >= 3).then_some(())
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    let before_kill = receiver.received().len();
    assert!(before_kill < 20, "the kill came mid-way ({before_kill} received)");

    let mut second = start_worker(&app, &smtp);
    eventually("every message is delivered", Duration::from_secs(90), || async {
        let sent: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_messages WHERE status = 'succeeded'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (sent == 20).then_some(())
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();

    let received = receiver.received();
    assert!(received.iter().all(|r| r.verified_by == [0]), "every signature verifies");
    let mut firsts: Vec<&Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &received {
        if seen.insert(r.id.clone()) {
            firsts.push(&r.body["data"]["title"]);
        }
    }
    let expected: Vec<String> = (0..20).map(|i| format!("Crash {i:02}")).collect();
    assert_eq!(firsts, expected.iter().collect::<Vec<_>>(), "all 20, first seen in change order");
    let duplicates = received.len() - seen.len();
    assert!(duplicates <= 1, "only the message in flight at the kill may come twice ({duplicates})");
}
