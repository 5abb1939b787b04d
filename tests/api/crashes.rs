//! Processes killed with SIGKILL mid-flight: what was acknowledged survives, nothing is half
//! written, and what was queued is finished by the next process.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use smtp_sink::SmtpSink;
use uuid::Uuid;

use crate::helpers::{TestApp, WebProcess, eventually, register_at};

/// What one client was told: the last acknowledged revision of its task.
#[derive(Debug, Default, Clone)]
struct Acknowledged {
    created: Vec<(Uuid, String)>,
    /// Task id → the highest revision whose update was answered 2xx.
    revised: HashMap<Uuid, u32>,
}

/// The full state revision `n` writes: every field changes together, so a half-applied write
/// would show fields from two revisions.
fn revision(n: u32) -> Value {
    let priority = ["low", "medium", "high"][n as usize % 3];
    json!({"title": format!("rev {n}"), "description": format!("description {n}"), "tags": [format!("t{n}")],
           "priority": priority})
}

#[tokio::test]
async fn a_web_process_killed_under_load_loses_no_acknowledged_write_and_leaves_none_half_done() {
    let app = TestApp::spawn().await;
    let mut web = WebProcess::start(&app, &[]).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let token = register_at(&web.address, "crash@example.com").await;

    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let mut clients = Vec::new();
    for c in 0..12 {
        let (client, token, base, acknowledged) =
            (client.clone(), token.clone(), web.address.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u32;
            let mut current: Option<Uuid> = None;
            loop {
                n += 1;
                // Every fourth step creates a task; the others revise the current one fully.
                let sent = match current {
                    Some(id) if !n.is_multiple_of(4) => {
                        let response = client
                            .put(format!("{base}/api/v1/tasks/{id}"))
                            .bearer_auth(&token)
                            .json(&revision(n))
                            .send()
                            .await;
                        match response {
                            Ok(r) if r.status().is_success() => {
                                acknowledged.lock().unwrap().revised.insert(id, n);
                                true
                            }
                            _ => false,
                        }
                    }
                    _ => {
                        let title = format!("client {c} task {n}");
                        let response = client
                            .post(format!("{base}/api/v1/tasks"))
                            .bearer_auth(&token)
                            .json(&json!({"title": title}))
                            .send()
                            .await;
                        match response {
                            Ok(r) if r.status() == 201 => {
                                let body: Value = r.json().await.unwrap_or_default();
                                let id: Uuid =
                                    body["id"].as_str().unwrap_or_default().parse().unwrap_or_default();
                                acknowledged.lock().unwrap().created.push((id, title));
                                current = Some(id);
                                true
                            }
                            _ => false,
                        }
                    }
                };
                if !sent {
                    // The process is gone: this client's in-flight request was not acknowledged.
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    web.kill();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.created.len() >= 12, "the load ran: {} creates", acknowledged.created.len());

    // Restarted on the same port, as a supervisor would.
    let web = WebProcess::start_on(&app, web.port, &[]).await;
    for (id, title) in &acknowledged.created {
        let response =
            client.get(format!("{}/api/v1/tasks/{id}", web.address)).bearer_auth(&token).send().await;
        let task: Value = response.unwrap().json().await.unwrap();
        let revised = acknowledged.revised.get(id).copied();
        match revised {
            None => {
                // Never revised, or only by a request still in flight at the kill.
                let untouched = task["title"] == title.as_str();
                let in_flight = task["title"].as_str().is_some_and(|t| t.starts_with("rev "));
                assert!(untouched || in_flight, "task {id}: {task}");
            }
            Some(n) => {
                let at =
                    task["title"].as_str().unwrap().strip_prefix("rev ").unwrap().parse::<u32>().unwrap();
                // The last acknowledged revision, or the next one if it committed before the kill.
                assert!(at == n || at == n + 1, "task {id} shows rev {at}, acknowledged rev {n}");
            }
        }
        if let Some(at) = task["title"].as_str().and_then(|t| t.strip_prefix("rev ")) {
            let n: u32 = at.parse().unwrap();
            let expected = revision(n);
            for field in ["description", "tags", "priority"] {
                assert_eq!(task[field], expected[field], "task {id} is half rev {n}: {task}");
            }
        }
    }
    let half: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasks WHERE title LIKE 'rev %' AND description <> 'description ' || substr(title, 5)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(half, 0, "no task mixes two revisions");
    let list = client.get(format!("{}/api/v1/tasks", web.address)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(list.status(), 200, "the restarted process serves");
}

/// The `todo-worker` binary. `cargo test --workspace` builds it (for the worker package's own
/// binary test); running this suite alone builds it here when it is missing.
pub(crate) fn worker_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            // target/debug/deps/api-… → target/debug/todo-worker
            let worker = exe.parent().unwrap().parent().unwrap().join("todo-worker");
            if !worker.is_file() {
                let status = Command::new(env!("CARGO"))
                    .args(["build", "--quiet", "-p", "todo-worker", "--bin", "todo-worker"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .expect("run cargo build");
                assert!(status.success(), "building todo-worker");
            }
            worker
        })
        .clone()
}

fn start_worker(app: &TestApp, smtp: &SmtpSink) -> Child {
    Command::new(worker_binary())
        .env("APP_ENV", "test")
        .env("DATABASE_URL", app.settings.database.url.expose_secret())
        .env("SMTP_URL", smtp.url())
        .env("APP__WORKER__REMINDER_CONCURRENCY", "4")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start todo-worker")
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_no_reminder_and_no_occurrence() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    // Slow sends, so the kill lands while messages are in flight.
    smtp.set_delay(Duration::from_millis(300));
    let user = app.new_user().await;
    let due = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let remind = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let mut reminded: Vec<String> = Vec::new();
    for i in 0..24 {
        app.create_task(
            &user,
            json!({"title": format!("Remind [{i:02}]"), "due_at": due, "reminder_at": remind}),
        )
        .await;
        reminded.push(format!("Remind [{i:02}]"));
    }
    let mut series = Vec::new();
    for i in 0..8 {
        let task = app
            .create_task(
                &user,
                json!({"title": format!("Daily {i}"), "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=DAILY"}),
            )
            .await;
        let path = format!("/api/v1/tasks/{}/complete", task["id"].as_str().unwrap());
        let done = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true}))).await;
        assert_eq!(done.status(), 200);
        series.push(task["series_id"].as_str().unwrap().to_owned());
    }

    let mut first = start_worker(&app, &smtp);
    smtp.wait_for_count(3, Duration::from_secs(60)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let sent_before_kill = smtp.count();
    assert!(sent_before_kill < 24, "the kill came mid-way ({sent_before_kill} sent)");

    let mut second = start_worker(&app, &smtp);
    let all_sent = eventually("every reminder is sent", Duration::from_secs(120), || {
        let app = &app;
        async move {
            let sent: i64 =
                sqlx::query_scalar("SELECT count(*) FROM reminder_deliveries WHERE status = 'sent'")
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            (sent == 24).then_some(sent)
        }
    })
    .await;
    assert_eq!(all_sent, 24);
    let messages = smtp.messages();
    let mut per_task: HashMap<&str, usize> = HashMap::new();
    for message in &messages {
        let text = String::from_utf8_lossy(&message.data);
        if let Some(title) = reminded.iter().find(|title| text.contains(title.as_str())) {
            *per_task.entry(title.as_str()).or_default() += 1;
        }
    }
    assert_eq!(per_task.len(), reminded.len(), "every reminder arrived: {per_task:?}");
    let duplicates: usize = per_task.values().map(|n| n - 1).sum();
    // Only a message the sink accepted whose record had not committed may go twice: at most one
    // per send in flight at the kill.
    assert!(duplicates <= 4, "{duplicates} duplicates for at most 4 sends in flight");

    let occurrences = eventually("every next occurrence exists", Duration::from_secs(60), || {
        let (app, series) = (&app, &series);
        async move {
            let counts: Vec<i64> = sqlx::query_scalar(
                "SELECT count(*) FROM tasks WHERE series_id::text = ANY($1) GROUP BY series_id ORDER BY series_id",
            )
            .bind(series)
            .fetch_all(&app.pool)
            .await
            .unwrap();
            (counts.len() == 8 && counts.iter().all(|c| *c >= 2)).then_some(counts)
        }
    })
    .await;
    assert!(occurrences.iter().all(|c| *c == 2), "each occurrence exactly once: {occurrences:?}");
    second.kill().unwrap();
    second.wait().unwrap();
}
