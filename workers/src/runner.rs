//! Registers every queue's worker under a unique name and runs them until shutdown.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use apalis::prelude::{BackendExt, Monitor, WorkerBuilder, WorkerBuilderExt};
use apalis_postgres::{Config, PostgresStorage};
use sqlx::PgPool;
use todo::config::Settings;
use todo::db::maintenance::Retention;
use todo::jobs::Job;
use todo::jobs::maintenance::Maintenance;

use crate::maintenance;

pub async fn run(
    pool: PgPool,
    settings: Settings,
    shutdown: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    let name = worker_name();
    let poll = Duration::from_millis(settings.worker.poll_interval_ms);
    tracing::info!(worker = %name, "worker starting");

    let scheduler = tokio::spawn(maintenance::schedule(
        pool.clone(),
        Duration::from_secs(settings.worker.maintenance_interval_secs),
    ));

    let maintenance_pool = pool.clone();
    let retention = Retention {
        trash_days: settings.tasks.trash_retention_days,
        idempotency_hours: settings.tasks.idempotency_ttl_hours,
    };
    let maintenance_name = format!("{name}:{}", Maintenance::QUEUE);
    let monitor = Monitor::new()
        .register(move |_restarts| {
            let backend = PostgresStorage::<Maintenance>::new(&maintenance_pool)
                .with_config(Config::default().queue(Maintenance::QUEUE))
                .poll_with_interval(poll);
            WorkerBuilder::new(maintenance_name.clone())
                .backend(backend)
                .data(maintenance_pool.clone())
                .data(retention)
                .concurrency(1)
                .build(maintenance::handle)
        })
        .shutdown_timeout(Duration::from_secs(settings.server.shutdown_timeout_secs));

    let result = monitor.run_with_signal(shutdown).await.context("running the job workers");
    scheduler.abort();
    tracing::info!(worker = %name, "worker stopped");
    result
}

/// Host, pid and a random suffix: a restarted process must not reuse a crashed one's name,
/// or apalis would never rescue the crashed one's jobs.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{host}-{}-{suffix}", std::process::id())
}
