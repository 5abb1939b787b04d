//! The worker process as an operator sees it: names, metrics, shutdown.

use std::time::Duration;

use serde_json::json;
use smtp_sink::SmtpSink;

use crate::helpers::{TestApp, TestWorker, eventually};

#[tokio::test]
async fn worker_registers_a_unique_name_per_queue_runs_maintenance_and_stops_on_signal() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let worker = app.spawn_worker(&smtp).await;

    let done_jobs = eventually("the first maintenance slot", Duration::from_secs(30), || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'todo.maintenance' AND status = 'Done'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (done > 0).then_some(done)
    })
    .await;
    assert_eq!(done_jobs, 1, "the first maintenance slot ran once");

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let prefix = format!("{}-{}-", host.trim(), std::process::id());
    assert!(worker.name.starts_with(&prefix), "name {} has host and pid", worker.name);
    let suffix = &worker.name[prefix.len()..];
    assert!(suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "random suffix {suffix:?}");
    let mut names: Vec<String> =
        sqlx::query_scalar("SELECT id FROM apalis.workers").fetch_all(&app.pool).await.unwrap();
    names.sort();
    let expected: Vec<String> = [
        "todo.agenda",
        "todo.maintenance",
        "todo.recurrence",
        "todo.reminder",
        "todo.verification",
        "todo.webhook",
        "todo.webhook_disabled",
    ]
    .iter()
    .map(|queue| format!("{}:{queue}", worker.name))
    .collect();
    assert_eq!(names, expected, "one registration per queue under the process's name");

    worker.stop().await.expect("clean shutdown");
}

#[test]
fn worker_names_differ_between_processes_and_restarts() {
    assert_ne!(todo_worker::worker_name(), todo_worker::worker_name());
}

#[tokio::test]
async fn the_worker_serves_health_and_metrics_with_every_series_from_the_start() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let worker = app.spawn_worker(&smtp).await;
    let base = format!("http://{}", worker.metrics_addr);

    let health = app.client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = app.client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for queue in ["todo.reminder", "todo.recurrence", "todo.maintenance"] {
        for outcome in ["done", "cancelled", "retried", "failed", "discarded"] {
            let series = format!("worker_jobs_total{{queue=\"{queue}\",outcome=\"{outcome}\"}}");
            assert!(text.contains(&series), "{series} is registered:\n{text}");
        }
    }
    assert!(text.contains("reminder_lateness_seconds"), "lateness histogram registered:\n{text}");
    for cap in ["account", "recipient"] {
        let series = format!("reminders_rate_limited_total{{cap=\"{cap}\"}}");
        assert!(text.contains(&series), "{series} is registered:\n{text}");
    }
    let missing = app.client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let post = app.client.post(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_sent_reminder_is_counted_and_its_lateness_observed() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    let worker = app.spawn_worker(&smtp).await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    app.create_task(&user, json!({"title": "Counted", "reminder_at": soon})).await;
    assert_eq!(smtp.wait_for(1, Duration::from_secs(20)).await.len(), 1);
    // The sink records the message before it answers, and the worker observes the lateness
    // once it has read that answer: poll for it rather than read the metrics once.
    eventually("the lateness observation", Duration::from_secs(20), || async {
        let text = app.client.get(format!("http://{}/metrics", worker.metrics_addr)).send().await.ok()?;
        let text = text.text().await.ok()?;
        let count = text
            .lines()
            .find(|l| l.starts_with("reminder_lateness_seconds_count"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())?;
        (count >= 1.0).then_some(())
    })
    .await;
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn on_shutdown_a_running_job_finishes_and_nothing_stays_running() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    smtp.set_delay(Duration::from_millis(1500));
    let worker = app.spawn_worker(&smtp).await;
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    app.create_task(&user, json!({"title": "In flight", "reminder_at": past})).await;
    eventually("the job to start", Duration::from_secs(20), || async {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'todo.reminder' AND status = 'Running'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (running == 1).then_some(())
    })
    .await;

    worker.stop().await.expect("clean shutdown");
    assert_eq!(smtp.count(), 1, "the running job finished its send");
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM apalis.jobs WHERE job_type = 'todo.reminder'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(statuses, ["Done"]);
}

#[tokio::test]
async fn jobs_still_running_after_the_grace_period_are_returned_to_the_queue() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    smtp.set_delay(Duration::from_secs(5));
    let worker = app.spawn_worker_with(&smtp, |s| s.server.shutdown_timeout_secs = 1).await;
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    app.create_task(&user, json!({"title": "Too slow", "reminder_at": past})).await;
    eventually("the job to start", Duration::from_secs(20), || async {
        let running: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE status = 'Running'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (running == 1).then_some(())
    })
    .await;
    // Stop only once the message reached the server, which now sits on its answer: a send
    // interrupted before its end of DATA would leave nothing to see at the sink.
    assert_eq!(smtp.wait_for_bodies(1, Duration::from_secs(20)).await, 1, "the send reached the server");
    worker.stop().await.expect("stops after the grace period");
    let status: String =
        sqlx::query_scalar("SELECT status FROM apalis.jobs WHERE job_type = 'todo.reminder'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status, "Pending", "handed back at once, not left Running until the orphan window");

    smtp.set_delay(Duration::ZERO);
    let next = TestWorker::start({
        let mut s = app.settings.clone();
        s.email.smtp_url = secrecy::SecretString::from(smtp.url());
        s
    })
    .await;
    // The interrupted send reached the server (it answers only after its delay) and the next
    // worker sent again: the crash window's one duplicate, recognisable by its Message-ID.
    let received = smtp.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].header("Message-ID"), received[1].header("Message-ID"));
    eventually("the job to finish", Duration::from_secs(20), || async {
        let status: String =
            sqlx::query_scalar("SELECT status FROM apalis.jobs WHERE job_type = 'todo.reminder'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (status == "Done").then_some(())
    })
    .await;
    next.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_worker_on_the_same_metrics_port_still_starts_on_a_free_one() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let first = app.spawn_worker(&smtp).await;
    let port = first.metrics_addr.port();
    let second = app.spawn_worker_with(&smtp, |s| s.worker.metrics_port = port).await;
    assert_ne!(second.metrics_addr.port(), port);
    let health = app.client.get(format!("http://{}/health", second.metrics_addr)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}
