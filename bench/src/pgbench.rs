//! The baseline: what PostgreSQL alone does with the same client count, measured in the same
//! run on the same server with `pgbench -M prepared`.

use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Connection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    pub per_second: f64,
    pub mean_latency_ms: f64,
}

/// The table of the physical baseline: `tasks`' columns and types, its primary key, nothing else.
pub const PLAIN_TABLE: &str = "bench_plain_tasks";

/// The schema's own limit: a single-row INSERT into `tasks` (its indexes and triggers included)
/// for a random user, as the create scenario spreads over users (seeded ids `b0…0{n}`).
pub async fn insert(url: &str, clients: usize, duration: Duration, users: usize) -> anyhow::Result<Baseline> {
    run(url, clients, duration, &insert_script("tasks", users), &[]).await
}

/// The physical limit: the same INSERT into a table with `tasks`' column types (no generated
/// column, no foreign keys), its primary key, and no other index or trigger. Then the same INSERT
/// with a `NOTIFY` in its transaction, as every write to `tasks` sent one until migration
/// `20261219000001_changes_without_notify.sql`: PostgreSQL lets one notifying transaction commit
/// at a time, and the pair shows what that costs.
pub async fn plain_insert(
    url: &str,
    clients: usize,
    duration: Duration,
    users: usize,
) -> anyhow::Result<(Baseline, Baseline)> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let table = PLAIN_TABLE;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE tasks INCLUDING DEFAULTS); \
         ALTER TABLE {table} ADD PRIMARY KEY (id)"
    )))
    .execute(&mut conn)
    .await?;
    let script = insert_script(table, users);
    let plain = run(url, clients, duration, &script, &[]).await;
    let notifying = format!("BEGIN;\n{script}SELECT pg_notify('todo_bench', :u::text);\nCOMMIT;\n");
    let notifying = run(url, clients, duration, &notifying, &[]).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}"))).execute(&mut conn).await?;
    Ok((plain?, notifying?))
}

fn insert_script(table: &str, users: usize) -> String {
    format!(
        "\\set u random(1, {})\nINSERT INTO {table} (id, user_id, title, timezone) VALUES (gen_random_uuid(), \
         ('b0' || lpad(to_hex(:u::bigint), 30, '0'))::uuid, 'pgbench', 'UTC');\n",
        users.saturating_sub(1).max(1)
    )
}

/// A primary-key SELECT of one of the big user's tasks (ids `1…tasks` as plain numbers).
pub async fn select(url: &str, clients: usize, duration: Duration, tasks: usize) -> anyhow::Result<Baseline> {
    let script = format!(
        "\\set k random(1, {tasks})\nSELECT * FROM tasks WHERE id = lpad(to_hex(:k::bigint), 32, '0')::uuid;\n"
    );
    run(url, clients, duration, &script, &[]).await
}

async fn run(
    url: &str,
    clients: usize,
    duration: Duration,
    script: &str,
    defines: &[(&str, String)],
) -> anyhow::Result<Baseline> {
    let file = std::env::temp_dir().join(format!("todo-bench-{}.sql", Uuid::new_v4().simple()));
    std::fs::write(&file, script)?;
    let mut command = tokio::process::Command::new("pgbench");
    command
        .args(["-n", "-M", "prepared", "-j", "2"])
        .arg("-c")
        .arg(clients.to_string())
        .arg("-T")
        .arg(duration.as_secs().max(1).to_string())
        .arg("-f")
        .arg(&file);
    for (name, value) in defines {
        command.arg("-D").arg(format!("{name}={value}"));
    }
    let output =
        command.arg(url).output().await.context("running pgbench (from the PostgreSQL client tools)")?;
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("pgbench failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    }
    let number = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    };
    Ok(Baseline {
        per_second: number("tps = ").with_context(|| {
            format!("pgbench printed no tps: {stdout}{}", String::from_utf8_lossy(&output.stderr))
        })?,
        mean_latency_ms: number("latency average = ").unwrap_or(0.0),
    })
}
