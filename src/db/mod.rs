//! The connection pool, migrations (the application's and apalis's) and readiness checks.

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::config::DatabaseSettings;

pub mod agenda;
pub mod api_tokens;
pub mod caldav;
pub mod calendar_feeds;
pub mod changes;
pub mod event_tickets;
pub mod idempotency;
pub mod links;
pub mod maintenance;
pub mod projects;
pub mod queue;
pub mod reminders;
pub mod task_list;
pub mod tasks;
pub mod users;
pub mod verification;
pub mod webhooks;

/// The application's own migrations, in `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Parses the configured URL into connect options with the statement timeout applied.
fn connect_options(settings: &DatabaseSettings) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions =
        settings.url.expose_secret().parse().context("DATABASE_URL is not a valid postgres:// URL")?;
    Ok(options.options([("statement_timeout", settings.statement_timeout_ms.to_string())]))
}

/// A pool that opens connections on demand, so a running process rides out a database outage
/// (answering 503 and `/ready` 503) instead of holding dead connections.
fn lazy_pool(settings: &DatabaseSettings, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout())
        .idle_timeout(Some(Duration::from_secs(settings.idle_timeout_secs)))
        .connect_lazy_with(options)
}

/// A pool of one connection, opened on demand, for a `LISTEN` that must not take a connection
/// from the request pool.
pub fn listener_pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    side_pool(settings, 1)
}

/// A small pool of its own, opened on demand, so work that must not queue behind requests (event
/// streams' feed reads) never waits for the request pool, and never takes from it.
pub fn side_pool(settings: &DatabaseSettings, connections: u32) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(connections.max(1))
        .acquire_timeout(settings.acquire_timeout())
        .idle_timeout(Some(Duration::from_secs(settings.idle_timeout_secs)))
        .connect_lazy_with(connect_options(settings)?))
}

/// Connects, creating the database first when allowed, and fails with one line naming the
/// server when it cannot be reached.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let options = connect_options(settings)?;
    let url = settings.url.expose_secret();
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let unreachable = |e: sqlx::Error| {
        anyhow::anyhow!(
            "cannot reach PostgreSQL at {server} ({e}); start it or set DATABASE_URL to a reachable server"
        )
    };
    if settings.create_if_missing && !Postgres::database_exists(url).await.map_err(unreachable)? {
        Postgres::create_database(url).await.with_context(|| {
            format!("creating database {:?} on {server}", options.get_database().unwrap_or(""))
        })?;
        tracing::info!(database = options.get_database(), "created missing database");
    }
    let pool = lazy_pool(settings, options);
    pool.acquire().await.map_err(unreachable)?;
    Ok(pool)
}

/// Applies apalis's queue schema and then the application's migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    apalis_postgres::PostgresStorage::setup(pool).await.context("applying the apalis queue migrations")?;
    MIGRATOR.run(pool).await.context("applying the application migrations")?;
    let filled =
        tasks::backfill_series(pool).await.context("storing the next occurrence of recurring tasks")?;
    if filled > 0 {
        tracing::info!(filled, "stored the series start and next occurrence of existing recurring tasks");
    }
    Ok(())
}

/// Why the service is not ready to take traffic.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("{0} migrations not applied")]
    Pending(usize),
}

/// Ready means the database answers and every known migration has been applied.
pub async fn check_ready(pool: &PgPool) -> Result<(), NotReady> {
    let apalis = apalis_postgres::PostgresStorage::migrations();
    let mut pending = 0;
    for migrator in [&MIGRATOR, &apalis] {
        pending += pending_migrations(pool, migrator).await.map_err(NotReady::Unavailable)?;
    }
    match pending {
        0 => Ok(()),
        n => Err(NotReady::Pending(n)),
    }
}

async fn pending_migrations(pool: &PgPool, migrator: &Migrator) -> Result<usize, sqlx::Error> {
    // to_regclass is NULL when the history table does not exist yet: nothing applied.
    let table = migrator.table_name.as_ref();
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass($1)::text").bind(table).fetch_one(pool).await?;
    let applied: Vec<i64> = match exists {
        None => Vec::new(),
        Some(_) => {
            // The table name comes from the migrator's compiled-in config, never from input.
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT version FROM {table} WHERE success")))
                .fetch_all(pool)
                .await?
        }
    };
    Ok(migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .count())
}
