//! A database outage never ends the worker: it waits, and jobs flow again within seconds of the
//! database's return. Run against a private server the test stops and starts.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use smtp_sink::SmtpSink;
use todo::commands::{self, Command};
use todo::db::users::{self, NewUser};
use todo::domain::{RecurrenceAnchor, Tags, TaskFields, Title};

use crate::helpers::TestWorker;
use crate::private_pg::PrivatePostgres;

async fn create_reminder(
    pool: &sqlx::PgPool,
    user: uuid::Uuid,
    title: &str,
    at: chrono::DateTime<chrono::Utc>,
) {
    let task = TaskFields {
        title: Title::parse(title).unwrap(),
        description: None,
        completed: false,
        priority: Default::default(),
        tags: Tags::default(),
        due_at: None,
        timezone: None,
        reminder_at: Some(at),
        recurrence_rule: None,
        recurrence_anchor: RecurrenceAnchor::Due,
        project_id: None,
        parent_id: None,
        position: None,
    };
    let command = Command::Create { task, idempotency: None };
    let settings = commands::CommandSettings {
        idempotency_ttl_hours: 24,
        max_tasks_per_user: 100,
        remember_deleted_external_secs: 60,
    };
    commands::execute(pool, settings, user, &command).await.expect("task created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_does_not_end_the_worker_and_jobs_flow_again_soon_after() {
    let (server, mut settings, pool) = PrivatePostgres::start_migrated().await;
    let user = users::insert(
        &pool,
        NewUser { email: "outage@example.com", password_hash: "x", name: None, timezone: "UTC" },
    )
    .await
    .expect("user");
    // Inserted directly, so verified directly, through the command the emailed link's page runs.
    let claims = todo::links::Claims::new(
        todo::links::Purpose::VerifyEmail,
        user.id,
        todo::links::address_digest("outage@example.com"),
        chrono::Utc::now(),
    );
    todo::commands::accounts::verify(&pool, &claims).await.expect("verified");

    let smtp = SmtpSink::start().await.unwrap();
    settings.email.smtp_url = SecretString::from(smtp.url());
    let worker = TestWorker::start(settings.clone()).await;
    create_reminder(&pool, user.id, "before", chrono::Utc::now()).await;
    smtp.wait_for(1, Duration::from_secs(20)).await;
    // Due while the database is down: it must not be lost.
    create_reminder(&pool, user.id, "during", chrono::Utc::now() + chrono::Duration::seconds(3)).await;

    let server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(worker.is_running(), "a 5 s outage did not end the worker");
    let server = tokio::task::spawn_blocking(move || {
        server.start_again();
        server
    })
    .await
    .unwrap();
    let back = Instant::now();

    assert_eq!(
        smtp.wait_for_count(2, Duration::from_secs(20)).await,
        2,
        "the reminder due during the outage"
    );
    create_reminder(&pool, user.id, "after", chrono::Utc::now()).await;
    assert_eq!(smtp.wait_for_count(3, Duration::from_secs(20)).await, 3);
    let flowing = back.elapsed();
    assert!(flowing <= Duration::from_secs(5), "jobs flowed again {flowing:?} after the database returned");
    assert!(worker.is_running());
    worker.stop().await.expect("clean shutdown after the outage");
    drop(server);
}
