//! Write amplification: what one create costs the database beyond its own row, for a create
//! through the service and for pgbench's real-schema INSERT statement.
//!
//! - indexes on `tasks` that the new row enters (from the catalog: every index whose predicate
//!   the row satisfies), and index blocks touched per write (`pg_statio_user_indexes` deltas);
//! - function calls per write, by function (`pg_stat_user_functions`; the bench's database has
//!   `track_functions = 'all'`), which counts trigger functions and the functions they call;
//! - WAL per write: the records of exactly those writes' transactions (`pg_walinspect`, by the
//!   xid each new row carries in `xmin`), so other databases on a shared server do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteCost {
    pub writes: usize,
    /// Indexes on `tasks`, and how many of them a new row enters (and which).
    pub indexes_on_tasks: usize,
    pub indexes_entered: usize,
    pub indexes_entered_names: Vec<String>,
    /// Index blocks of `tasks` read or hit per write (lookups for uniqueness included).
    pub index_blocks_per_write: f64,
    /// Function calls per write (trigger functions and what they call), in all and by function.
    pub function_calls_per_write: f64,
    pub function_self_ms_per_write: f64,
    pub functions: BTreeMap<String, f64>,
    /// WAL of the writes' own transactions, per write.
    pub wal_records_per_write: f64,
    pub wal_bytes_per_write: f64,
    pub wal_fpi_bytes_per_write: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Amplification {
    /// One `POST /tasks` at a time, over one connection.
    pub service_create: WriteCost,
    /// pgbench's real-schema statement, one at a time, each in its own transaction.
    pub pgbench_insert: WriteCost,
}

impl Amplification {
    pub fn markdown(&self) -> String {
        let (s, p) = (&self.service_create, &self.pgbench_insert);
        let mut out = String::from(
            "\n### Write amplification (per create)\n\n| | service `POST /tasks` | pgbench real-schema INSERT |\n|---|---:|---:|\n",
        );
        let mut row = |name: &str, a: String, b: String| out.push_str(&format!("| {name} | {a} | {b} |\n"));
        row("writes measured", s.writes.to_string(), p.writes.to_string());
        row(
            "indexes on `tasks` entered",
            format!("{} of {}", s.indexes_entered, s.indexes_on_tasks),
            format!("{} of {}", p.indexes_entered, p.indexes_on_tasks),
        );
        row(
            "index blocks touched",
            format!("{:.1}", s.index_blocks_per_write),
            format!("{:.1}", p.index_blocks_per_write),
        );
        row(
            "function calls (self time ms)",
            format!("{:.1} ({:.3})", s.function_calls_per_write, s.function_self_ms_per_write),
            format!("{:.1} ({:.3})", p.function_calls_per_write, p.function_self_ms_per_write),
        );
        row(
            "WAL records",
            format!("{:.1}", s.wal_records_per_write),
            format!("{:.1}", p.wal_records_per_write),
        );
        row(
            "WAL bytes (of which full-page images)",
            format!("{:.0} ({:.0})", s.wal_bytes_per_write, s.wal_fpi_bytes_per_write),
            format!("{:.0} ({:.0})", p.wal_bytes_per_write, p.wal_fpi_bytes_per_write),
        );
        let names: BTreeSet<&String> = s.functions.keys().chain(p.functions.keys()).collect();
        for name in names {
            let calls = |c: &WriteCost| c.functions.get(name).map_or("0".to_owned(), |n| format!("{n:.2}"));
            row(&format!("calls of `{name}`"), calls(s), calls(p));
        }
        out.push_str(&format!("\nIndexes a new row enters: {}\n", s.indexes_entered_names.join(", ")));
        out
    }
}

/// Counters read before and after a run of writes. The queue's own functions (the worker's
/// polling) are left out.
struct Snapshot {
    functions: BTreeMap<String, (i64, f64)>,
    index_blocks: i64,
}

async fn snapshot(conn: &mut PgConnection) -> anyhow::Result<Snapshot> {
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *conn).await?;
    let functions = sqlx::query(
        "SELECT funcname::text, calls, self_time FROM pg_stat_user_functions WHERE schemaname <> 'apalis'",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.get::<String, _>(0), (r.get::<i64, _>(1), r.get::<f64, _>(2))))
    .collect();
    let index_blocks: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(idx_blks_hit + idx_blks_read), 0)::bigint FROM pg_statio_user_indexes \
         WHERE relname = 'tasks'",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Snapshot { functions, index_blocks })
}

/// Statistics reach the shared counters when a backend goes idle (at most once a second) or
/// exits: wait until the BEFORE INSERT trigger's calls show all the writes.
async fn settled(conn: &mut PgConnection, before: &Snapshot, writes: usize) -> anyhow::Result<Snapshot> {
    let calls = |s: &Snapshot| s.functions.get("tasks_number_change").map_or(0, |f| f.0);
    for _ in 0..150 {
        let now = snapshot(conn).await?;
        if calls(&now) - calls(before) >= writes as i64 {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("function statistics did not show {writes} creates within 15 s (is track_functions on?)")
}

/// Measures `writes` creates made by `create`, which returns each new task's id.
pub async fn measure<F, Fut>(url: &str, writes: usize, mut create: F) -> anyhow::Result<WriteCost>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<Uuid>>,
{
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_walinspect").execute(&mut conn).await?;
    // The WAL from `start` on is read at the end. Other databases on a shared server (CI's checks
    // beside this one) can write enough meanwhile for a checkpoint to remove it; a temporary slot,
    // reserved now, keeps it until this session ends.
    sqlx::query("SELECT pg_create_physical_replication_slot($1, true, true)")
        .bind(format!("bench_wal_{}", Uuid::new_v4().simple()))
        .execute(&mut conn)
        .await
        .context("reserving the WAL to be read")?;
    // A first write outside the count, so no page is new to it; its statistics settle first.
    let start = snapshot(&mut conn).await?;
    create(usize::MAX).await?;
    let before = settled(&mut conn, &start, 1).await?;
    let start: String =
        sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text").fetch_one(&mut conn).await?;
    let mut ids = Vec::with_capacity(writes);
    for n in 0..writes {
        ids.push(create(n).await?);
    }
    let after = settled(&mut conn, &before, writes).await?;
    let xids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT xmin::text FROM tasks WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut conn)
        .await?;
    anyhow::ensure!(xids.len() == writes, "{} transactions for {writes} creates", xids.len());
    let wal = sqlx::query(
        "SELECT count(*), coalesce(sum(record_length), 0)::bigint, coalesce(sum(fpi_length), 0)::bigint \
         FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn()) WHERE xid::text = ANY($2)",
    )
    .bind(&start)
    .bind(&xids)
    .fetch_one(&mut conn)
    .await
    .context("reading WAL with pg_walinspect")?;
    let per = |n: f64| n / writes as f64;
    let mut functions = BTreeMap::new();
    let (mut calls, mut self_ms) = (0, 0.0);
    for (name, (c, t)) in &after.functions {
        let (c0, t0) = before.functions.get(name).copied().unwrap_or_default();
        if c - c0 > 0 {
            functions.insert(name.clone(), per((c - c0) as f64));
            calls += c - c0;
            self_ms += t - t0;
        }
    }
    let (total, entered) = indexes_entered(&mut conn, ids[0]).await?;
    Ok(WriteCost {
        writes,
        indexes_on_tasks: total,
        indexes_entered: entered.len(),
        indexes_entered_names: entered,
        index_blocks_per_write: per((after.index_blocks - before.index_blocks) as f64),
        function_calls_per_write: per(calls as f64),
        function_self_ms_per_write: per(self_ms),
        functions,
        wal_records_per_write: per(wal.get::<i64, _>(0) as f64),
        wal_bytes_per_write: per(wal.get::<i64, _>(1) as f64),
        wal_fpi_bytes_per_write: per(wal.get::<i64, _>(2) as f64),
    })
}

/// The indexes on `tasks`, and the names of those whose predicate (if any) the row satisfies.
async fn indexes_entered(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<(usize, Vec<String>)> {
    let indexes = sqlx::query(
        "SELECT indexrelid::regclass::text, pg_get_expr(indpred, indrelid) FROM pg_index \
         WHERE indrelid = 'tasks'::regclass ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut entered = Vec::new();
    for index in &indexes {
        let (name, predicate): (String, Option<String>) = (index.get(0), index.get(1));
        let matches: bool = match predicate {
            None => true,
            Some(p) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE id = $1 AND ({p}))"
                )))
                .bind(id)
                .fetch_one(&mut *conn)
                .await?
            }
        };
        if matches {
            entered.push(name);
        }
    }
    Ok((indexes.len(), entered))
}

/// pgbench's real-schema INSERT, one at a time, each in its own transaction.
pub async fn pgbench_insert(url: &str, writes: usize, users: usize) -> anyhow::Result<WriteCost> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
    let users = users.saturating_sub(1).max(1);
    measure(url, writes, |n| {
        let pool = pool.clone();
        let user = crate::seed::user_id(1 + n % users);
        async move {
            let id: Uuid = sqlx::query_scalar(
                "INSERT INTO tasks (id, user_id, title, timezone) VALUES (gen_random_uuid(), $1, 'pgbench', 'UTC') \
                 RETURNING id",
            )
            .bind(user)
            .fetch_one(&pool)
            .await?;
            Ok(id)
        }
    })
    .await
}
