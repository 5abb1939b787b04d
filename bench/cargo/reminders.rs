//! Reminder delivery benchmark: `bench/run reminders`
//! (`cargo bench -p todo-worker --bench reminders`).
//!
//! Seeds 10,000 reminders that come due within one minute over a fresh database, starts real
//! `todo-worker` processes (one, then two) against a local SMTP sink in this process, and
//! reports delivery throughput and lateness (time the sink received the message minus
//! `reminder_at`), and checks that every reminder arrived exactly once.
//!
//! `REMINDERS=2000 SPREAD_SECS=20` shortens it; `DATABASE_URL` names a server where databases may
//! be created (default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use smtp_sink::SmtpSink;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use todo::jobs::task_jobs::Reminder;
use todo::jobs::{Job, Schedule, enqueue};
use uuid::Uuid;

const USERS: usize = 100;
/// Seeding and starting the workers finish before the first reminder is due.
const LEAD: Duration = Duration::from_secs(20);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let reminders: usize = env_or("REMINDERS", 10_000);
    let spread: u64 = env_or("SPREAD_SECS", 60);
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    println!("reminder benchmark: {reminders} reminders due within {spread} s, SMTP sink in this process\n");
    println!("| worker processes | delivered | duplicates | throughput | lateness p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    for workers in [1, 2] {
        let report = round(&admin, workers, reminders, spread).await?;
        println!("{report}");
    }
    Ok(())
}

async fn round(admin: &str, workers: usize, reminders: usize, spread: u64) -> anyhow::Result<String> {
    let database = format!("todo_bench_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(admin).await?;
    conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{database}""#))).await?;
    let url = url_with_database(admin, &database);
    let pool = PgPool::connect(&url).await?;
    todo::db::migrate(&pool).await?;

    let first_due = Utc::now() + chrono::Duration::from_std(LEAD)?;
    let first_due = DateTime::from_timestamp(first_due.timestamp(), 0).expect("a whole second");
    seed(&pool, reminders, spread, first_due).await?;
    let sink = SmtpSink::start().await?;
    let mut children: Vec<Child> =
        (0..workers).map(|_| spawn_worker(&url, &sink.url())).collect::<Result<_, _>>()?;

    let deadline = Duration::from_secs(spread) + LEAD + Duration::from_secs(60);
    sink.wait_for_count(reminders, deadline).await;
    // Anything sent twice would arrive within the next moments.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for child in &mut children {
        stop(child);
    }
    let received = sink.messages();
    pool.close().await;
    conn.execute(sqlx::AssertSqlSafe(format!(r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#)))
        .await?;

    let mut copies: HashMap<String, usize> = HashMap::new();
    let mut lateness = Vec::with_capacity(received.len());
    let (mut first, mut last) = (f64::MAX, 0_f64);
    for mail in &received {
        let Some(id) = mail.header("Message-ID") else { continue };
        let at = mail.received_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        (first, last) = (first.min(at), last.max(at));
        *copies.entry(id.clone()).or_default() += 1;
        if let Some(due) = due_of(&id) {
            lateness.push(at - due);
        }
    }
    lateness.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        lateness.get(((lateness.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN)
    };
    let duplicates = copies.values().map(|n| n - 1).sum::<usize>();
    let throughput = received.len() as f64 / (last - first).max(1e-3);
    Ok(format!(
        "| {workers} | {}/{reminders} | {duplicates} | {throughput:.0}/s | {:.2} s | {:.2} s | {:.2} s |",
        copies.len(),
        pick(0.5),
        pick(0.99),
        lateness.last().copied().unwrap_or(f64::NAN),
    ))
}

/// Users, then one task per reminder with its job, spread evenly over `spread` whole seconds,
/// queued the way the web process queues them.
async fn seed(pool: &PgPool, reminders: usize, spread: u64, first_due: DateTime<Utc>) -> anyhow::Result<()> {
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        // Verified addresses: an unverified one would have its reminders skipped, not sent.
        "INSERT INTO users (id, email, password_hash, timezone, email_verified)
         SELECT id, 'bench-' || id || '@example.com', 'x', 'Europe/Paris', true FROM unnest($1::uuid[]) AS id",
    )
    .bind(&users)
    .execute(pool)
    .await?;
    let mut tx = pool.begin().await?;
    for i in 0..reminders {
        let user_id = users[i % USERS];
        let offset = (i as u64 * spread) / reminders.max(1) as u64;
        let reminder_at = first_due + chrono::Duration::seconds(offset as i64);
        let task_id = Uuid::now_v7();
        sqlx::query("INSERT INTO tasks (id, user_id, title, timezone, reminder_at) VALUES ($1, $2, $3, 'Europe/Paris', $4)")
            .bind(task_id)
            .bind(user_id)
            .bind(format!("Reminder {i}"))
            .bind(reminder_at)
            .execute(&mut *tx)
            .await?;
        let job = Reminder { user_id, task_id, version: 1, reminder_at };
        let schedule = Schedule {
            run_at: Some(SystemTime::from(reminder_at)),
            idempotency_key: Some(format!("reminder:{task_id}:1")),
            owner: Some(user_id),
            subject: Some(task_id),
        };
        enqueue(&mut tx, &job, schedule).await?;
    }
    tx.commit().await?;
    println!("<!-- seeded {reminders} {} jobs -->", Reminder::QUEUE);
    Ok(())
}

fn spawn_worker(database_url: &str, smtp_url: &str) -> std::io::Result<Child> {
    Command::new(env!("CARGO_BIN_EXE_todo-worker"))
        .env("APP_ENV", "development")
        .env("DATABASE_URL", database_url)
        .env("SMTP_URL", smtp_url)
        .env("APP__DATABASE__CREATE_IF_MISSING", "false")
        .env("APP__WORKER__METRICS_PORT", "0")
        // 100 reminders per account in a minute: measure delivery, not the abuse caps.
        .env("APP__EMAIL__CAPS__PER_ACCOUNT_PER_HOUR", "0")
        .env("APP__EMAIL__CAPS__PER_RECIPIENT_PER_HOUR", "0")
        .env("APP__TELEMETRY__FILTER", "warn")
        .stdout(Stdio::null())
        .spawn()
}

fn stop(child: &mut Child) {
    // SIGTERM for a graceful stop; `kill` is the portable way to send it from std.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// `reminder.{task}.{unix seconds}@host` → the reminder's instant.
fn due_of(message_id: &str) -> Option<f64> {
    let inner = message_id.trim().trim_start_matches('<').split('@').next()?;
    inner.rsplit('.').next()?.parse::<f64>().ok()
}

fn url_with_database(admin: &str, database: &str) -> String {
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => format!("{admin}/{database}"),
    }
}
