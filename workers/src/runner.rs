//! Builds the worker process from library parts: one apalis worker per job kind in
//! `todo::jobs::for_each_kind`, under a unique name, restarted with backoff when the database goes
//! away, plus the metrics endpoint and the maintenance ticker.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apalis::prelude::{BackendExt, Monitor, PollWith, Strategy, WorkerBuilder, WorkerBuilderExt};
use apalis_core::backend::ext::lifecycle::BeforeStart;
use apalis_postgres::{Config, PostgresStorage, Pubsub};
use sqlx::PgPool;
use todo::config::{Settings, WorkerSettings};
use todo::db::maintenance::Retention;
use todo::email::Mailer;
use todo::jobs::{self, Job, Kinds};

use crate::backoff::RetryPolicy;
use crate::http::MetricsServer;
use crate::queues::{self, Deps};

/// The longest wait between two looks at a database that is down, so jobs flow again within
/// about a second of its return.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Opens the worker's pool, large enough for every job running at once to hold a connection
/// (a reminder keeps its delivery row locked while it sends) plus apalis's own fetches,
/// heartbeats and acknowledgements: two per queue.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    struct Needed<'a> {
        settings: &'a WorkerSettings,
        connections: usize,
    }
    impl Kinds for Needed<'_> {
        fn add<J: Job>(&mut self) {
            self.connections += J::concurrency(self.settings) + 2;
        }
    }
    let mut needed = Needed { settings: &settings.worker, connections: 0 };
    jobs::for_each_kind(&mut needed);
    let mut database = settings.database.clone();
    database.max_connections =
        database.max_connections.max(u32::try_from(needed.connections).unwrap_or(u32::MAX));
    todo::db::connect(&database).await
}

/// A worker process ready to run: its mailer is built and its metrics port bound.
pub struct Worker {
    pool: PgPool,
    settings: Settings,
    name: String,
    deps: Deps,
    metrics: MetricsServer,
    metrics_addr: SocketAddr,
}

impl Worker {
    pub async fn build(pool: PgPool, settings: Settings) -> anyhow::Result<Self> {
        let mailer = Arc::new(Mailer::from_settings(&settings.email, settings.environment)?);
        // Refused here, in the process that sends email: links to nowhere are worse than none.
        let public_url = settings.public_url()?;
        let (host, port) = (&settings.worker.metrics_host, settings.worker.metrics_port);
        let metrics = match MetricsServer::bind(host, port).await {
            // Several workers on one host share a config: the second one still runs and says
            // where its metrics went, rather than failing to start over a probe port.
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse && port != 0 => {
                let metrics = MetricsServer::bind(host, 0).await?;
                tracing::warn!(port, actual = %metrics.local_addr()?, "metrics port in use; serving metrics on a free port");
                metrics
            }
            other => {
                other.with_context(|| format!("binding the worker's metrics endpoint on {host}:{port}"))?
            }
        };
        let metrics_addr = metrics.local_addr()?;
        let worker = &settings.worker;
        let retry = RetryPolicy {
            max_attempts: worker.max_attempts.max(1),
            base: Duration::from_millis(worker.retry_base_ms),
            max: Duration::from_secs(worker.retry_max_secs),
        };
        let context = jobs::Context {
            pool: pool.clone(),
            mailer,
            max_tasks: settings.tasks.max_per_user,
            retention: Retention::new(&settings),
            links: todo::links::LinkKeys::new(&settings.auth),
            public_url,
            reminder_caps: settings.email.caps,
            webhooks: todo::webhooks::Outbound::new(&settings).context("building the webhook client")?,
        };
        let deps = Deps { context, retry };
        Ok(Self { pool, settings, name: worker_name(), deps, metrics, metrics_addr })
    }

    /// Where `/metrics` and `/health` are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs every queue until `shutdown` resolves, then lets running jobs finish within the
    /// grace period.
    pub async fn run(
        self,
        shutdown: impl Future<Output = std::io::Result<()>> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { pool, settings, name, deps, metrics, metrics_addr } = self;
        todo::metrics::handle();
        queues::register_metrics(&jobs::queues());
        tracing::info!(worker = %name, metrics = %metrics_addr, "worker starting");
        let metrics_task = tokio::spawn(metrics.serve());
        let scheduler = tokio::spawn(jobs::maintenance::schedule(
            pool.clone(),
            Duration::from_secs(settings.worker.maintenance_interval_secs),
        ));

        let grace = Duration::from_secs(settings.server.shutdown_timeout_secs);
        let mut queues = Register {
            monitor: Monitor::new(),
            pool: pool.clone(),
            name: name.clone(),
            config: settings.worker.clone(),
            deps,
        };
        jobs::for_each_kind(&mut queues);
        let monitor = queues
            .monitor
            // A lost database ends a queue's worker; bring it back (after the database answers
            // again) rather than letting the process exit.
            .should_restart(|worker, error| {
                let restart = !worker.is_shutting_down();
                if restart {
                    tracing::warn!(worker = %worker.name(), %error, "queue worker stopped; restarting");
                }
                restart
            })
            .shutdown_timeout(grace);

        let result = monitor.run_with_signal(shutdown).await.context("running the job workers");
        scheduler.abort();
        metrics_task.abort();
        release_abandoned(&pool, &name).await;
        tracing::info!(worker = %name, "worker stopped");
        result
    }
}

/// Registers one apalis worker per job kind, each running the generic adapter for its payload.
struct Register {
    monitor: Monitor,
    pool: PgPool,
    name: String,
    config: WorkerSettings,
    deps: Deps,
}

impl Kinds for Register {
    fn add<J: Job>(&mut self) {
        let (pool, name, config, deps) =
            (self.pool.clone(), self.name.clone(), self.config.clone(), self.deps.clone());
        let concurrency = J::concurrency(&config).max(1);
        self.monitor = std::mem::take(&mut self.monitor).register(move |restarts| {
            WorkerBuilder::new(queue_worker_name(&name, J::QUEUE, restarts))
                .backend(backend::<J>(&pool, &name, &config, concurrency, restarts))
                .data(deps.clone())
                .concurrency(concurrency)
                .build(queues::run::<J>)
        });
    }
}

/// Builds and runs a worker until `shutdown` resolves.
pub async fn run(
    pool: PgPool,
    settings: Settings,
    shutdown: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    Worker::build(pool, settings).await?.run(shutdown).await
}

type QueueBackend<J> = BeforeStart<PollWith<PostgresStorage<J>, Strategy>, apalis_postgres::Error>;

/// One queue's backend: polled every `poll_interval_ms` for jobs that came due, and woken at once
/// by PostgreSQL's NOTIFY when a job is inserted due now. After a restart it first waits for the
/// database to answer, backing off, so an outage is ridden out instead of spun on.
fn backend<J: Job>(
    pool: &PgPool,
    process: &str,
    config: &WorkerSettings,
    batch_size: usize,
    restarts: usize,
) -> QueueBackend<J> {
    let queue = Config::default()
        .queue(J::QUEUE)
        .batch_size(batch_size.max(1))
        .heartbeat_interval(Duration::from_secs(config.heartbeat_secs.max(1)))
        .missed_heartbeats(config.missed_heartbeats());
    // The interval comes first: a closed NOTIFY stream must never stop the timer from being armed.
    let strategy = Strategy::new()
        .interval(Duration::from_millis(config.poll_interval_ms.max(10)))
        .stream(Pubsub::new(pool.clone(), J::QUEUE.to_owned()));
    let (probe, process) = (pool.clone(), process.to_owned());
    PostgresStorage::<J>::new(pool)
        .with_config(queue)
        .poll_with_strategy(strategy)
        .before_start(move |_| restart_when_ready::<J>(probe.clone(), process.clone(), restarts))
}

/// Before a restarted queue worker starts: wait for the database (backing off), then hand back
/// the jobs its earlier incarnation held, whose futures apalis dropped with it, instead of
/// leaving them to the orphan window.
async fn restart_when_ready<J: Job>(
    pool: PgPool,
    process: String,
    restarts: usize,
) -> Result<(), apalis_postgres::Error> {
    if restarts == 0 {
        return Ok(());
    }
    let mut delay = Duration::from_millis(100);
    loop {
        let release = todo::db::queue::release_queue_jobs(&pool, &process, J::QUEUE);
        match tokio::time::timeout(MAX_RECONNECT_DELAY, release).await {
            Ok(Ok(released)) => {
                tracing::info!(queue = J::QUEUE, released, "database reachable; queue worker restarting");
                return Ok(());
            }
            Ok(Err(err)) => tracing::debug!(%err, "database still unavailable"),
            Err(_) => tracing::debug!("database still unavailable"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

/// The process name, the queue, and the incarnation: a restarted queue worker registers afresh,
/// because apalis refuses to re-register a name whose advisory lock another session holds.
fn queue_worker_name(process: &str, queue: &str, restarts: usize) -> String {
    match restarts {
        0 => format!("{process}:{queue}"),
        n => format!("{process}:{queue}:{n}"),
    }
}

/// After the grace period, jobs this process still held are handed back to the queue at once,
/// rather than waiting out the orphan window for another worker to notice.
async fn release_abandoned(pool: &PgPool, name: &str) {
    match todo::db::queue::release_worker_jobs(pool, name).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::warn!(jobs = n, "jobs still running after the grace period were returned to the queue")
        }
        Err(err) => {
            tracing::warn!(%err, "could not return unfinished jobs; they are rescued after the orphan window")
        }
    }
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
