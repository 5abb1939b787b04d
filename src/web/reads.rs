//! Where a read goes: the primary, or a streaming replica that has replayed at least what the
//! client has seen.
//!
//! Read-your-writes across web processes: every successful write's answer carries
//! `Consistency-Token`, the primary's WAL position once the write has committed. A read that
//! presents a token goes to a replica whose replay position has reached it (as last measured, so
//! never a replica that might be behind), and otherwise to the primary. A read without a token
//! goes to the primary: a client that ignores the header never sees an older state than its own
//! writes, whichever process answers it.
//!
//! Each web process checks its replicas every `replica_check_ms`: one unreachable, or more than
//! `replica_max_lag_bytes` behind the primary, leaves rotation until a later check finds it well.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::Payload;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseSettings;
use crate::web::problem::ApiError;
use crate::web::state::AppState;

/// How long a read waits for a replica's connection before it goes to the primary instead.
const REPLICA_ACQUIRE: Duration = Duration::from_millis(250);

/// The request and response header.
pub const HEADER: &str = "consistency-token";

/// A WAL position (`16/B374D848`), as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl Lsn {
    pub fn parse(text: &str) -> Option<Self> {
        let (high, low) = text.trim().split_once('/')?;
        let high = u64::from_str_radix(high, 16).ok()?;
        let low = u64::from_str_radix(low, 16).ok()?;
        (high <= u64::from(u32::MAX) && low <= u64::from(u32::MAX)).then_some(Self((high << 32) | low))
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

struct Replica {
    /// Host and port, for logs and metrics (never the credentials).
    name: String,
    pool: PgPool,
    up: AtomicBool,
    /// Replay position at the last check.
    replayed: AtomicU64,
}

pub struct Reads {
    primary: PgPool,
    replicas: Vec<Replica>,
    next: AtomicUsize,
    max_lag_bytes: u64,
}

impl Reads {
    pub fn new(primary: PgPool, settings: &DatabaseSettings) -> anyhow::Result<Arc<Self>> {
        let mut replicas = Vec::with_capacity(settings.read_urls.len());
        for url in &settings.read_urls {
            let options: PgConnectOptions = url.expose_secret().parse()?;
            let name = format!("{}:{}", options.get_host(), options.get_port());
            let options = options.options([("statement_timeout", settings.statement_timeout_ms.to_string())]);
            let pool = PgPoolOptions::new()
                .max_connections(settings.replica_max_connections.max(1))
                // A replica that does not answer at once is skipped, not waited for.
                .acquire_timeout(Duration::from_secs(2))
                .idle_timeout(Some(Duration::from_secs(settings.idle_timeout_secs)))
                .connect_lazy_with(options);
            replicas.push(Replica { name, pool, up: AtomicBool::new(false), replayed: AtomicU64::new(0) });
        }
        Ok(Arc::new(Self {
            primary,
            replicas,
            next: AtomicUsize::new(0),
            max_lag_bytes: settings.replica_max_lag_bytes,
        }))
    }

    pub fn has_replicas(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// The pool a read with this token goes to. A replica chosen must hand out a connection at
    /// once: one that has just gone away leaves rotation here, and the read goes to the primary,
    /// rather than failing while the next check is due.
    pub async fn pool(&self, token: Option<Lsn>) -> &PgPool {
        let Some(token) = token.filter(|_| self.has_replicas()) else {
            if self.has_replicas() {
                metrics::counter!("db_reads_total", "target" => "primary").increment(1);
            }
            return &self.primary;
        };
        if let Some(replica) = self.replica_at(token).await {
            return replica;
        }
        metrics::counter!("db_reads_total", "target" => "primary").increment(1);
        metrics::counter!("db_read_fallbacks_total").increment(1);
        &self.primary
    }

    /// A replica in rotation, however far it has replayed, for a read whose answer the caller
    /// completes from the primary afterwards (an event stream's backlog). `None` without one.
    pub async fn any_replica(&self) -> Option<PgPool> {
        if !self.has_replicas() {
            return None;
        }
        self.replica_at(Lsn(0)).await.cloned()
    }

    /// The next replica in rotation that has replayed `at`, once it hands out a connection.
    async fn replica_at(&self, at: Lsn) -> Option<&PgPool> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.replicas.len();
        for i in 0..count {
            let replica = &self.replicas[(start + i) % count];
            if !replica.up.load(Ordering::Acquire) || replica.replayed.load(Ordering::Acquire) < at.0 {
                continue;
            }
            match tokio::time::timeout(REPLICA_ACQUIRE, replica.pool.acquire()).await {
                Ok(Ok(_)) => {
                    metrics::counter!("db_reads_total", "target" => "replica").increment(1);
                    return Some(&replica.pool);
                }
                _ => {
                    replica.up.store(false, Ordering::Release);
                    tracing::warn!(replica = %replica.name, "replica unreachable; out of rotation");
                }
            }
        }
        None
    }

    /// The primary's WAL position now: after a write has committed, at or past its commit.
    pub async fn position(&self) -> Result<Lsn, sqlx::Error> {
        let text: String =
            sqlx::query_scalar("SELECT pg_current_wal_lsn()::text").fetch_one(&self.primary).await?;
        Ok(Lsn::parse(&text).unwrap_or(Lsn(0)))
    }

    /// Checks every replica now: its replay position, and whether it is close enough to the
    /// primary to stay in rotation.
    pub async fn check(&self) {
        let primary = match self.position().await {
            Ok(at) => Some(at),
            Err(err) => {
                tracing::warn!(%err, "cannot read the primary's WAL position; replicas keep their standing");
                None
            }
        };
        for replica in &self.replicas {
            let replayed: Result<Option<String>, sqlx::Error> =
                sqlx::query_scalar("SELECT pg_last_wal_replay_lsn()::text").fetch_one(&replica.pool).await;
            let replayed = match replayed {
                Ok(Some(text)) => Lsn::parse(&text),
                Ok(None) => None, // not a standby: never trusted for reads
                Err(err) => {
                    tracing::debug!(replica = %replica.name, %err, "replica unreachable");
                    None
                }
            };
            let lag = match (primary, replayed) {
                (Some(primary), Some(replayed)) => Some(primary.0.saturating_sub(replayed.0)),
                _ => None,
            };
            let up = match (replayed, lag) {
                (Some(_), Some(lag)) => lag <= self.max_lag_bytes,
                // The primary is unreadable: keep the replica's standing, with its new position.
                (Some(_), None) => primary.is_none() && replica.up.load(Ordering::Acquire),
                (None, _) => false,
            };
            if let Some(replayed) = replayed {
                replica.replayed.store(replayed.0, Ordering::Release);
            }
            let was_up = replica.up.swap(up, Ordering::AcqRel);
            if was_up != up {
                tracing::warn!(replica = %replica.name, up, lag_bytes = ?lag, "replica rotation changed");
            }
            metrics::gauge!("db_replica_up", "replica" => replica.name.clone()).set(if up {
                1.0
            } else {
                0.0
            });
            if let Some(lag) = lag {
                metrics::gauge!("db_replica_lag_bytes", "replica" => replica.name.clone()).set(lag as f64);
            }
        }
    }

    /// Checks the replicas every `every`, for the life of the process.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        if !self.has_replicas() {
            return;
        }
        let reads = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                reads.check().await;
            }
        });
    }
}

/// The token a request presented, if it parsed.
pub fn presented(req: &HttpRequest) -> Option<Lsn> {
    req.headers().get(HEADER).and_then(|v| v.to_str().ok()).and_then(Lsn::parse)
}

/// The pool this request's reads go to, by its `Consistency-Token`.
pub struct ReadPool(pub PgPool);

impl FromRequest for ReadPool {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = presented(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?;
            Ok(Self(state.reads.pool(token).await.clone()))
        })
    }
}

/// Stamps every successful write's answer with the primary's WAL position after it, when there
/// are replicas to read from (without them, nothing is added and nothing is asked).
pub async fn stamp(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let writes = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS" | "PROPFIND" | "REPORT");
    let state = req.app_data::<web::Data<AppState>>().cloned().filter(|s| writes && s.reads.has_replicas());
    let mut response = next.call(req).await?;
    if let Some(state) = state
        && response.status().is_success()
    {
        match state.reads.position().await {
            Ok(at) => {
                if let Ok(value) = HeaderValue::from_str(&at.to_string()) {
                    response.headers_mut().insert(HeaderName::from_static(HEADER), value);
                }
            }
            Err(err) => tracing::warn!(%err, "cannot read the WAL position for a consistency token"),
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_print_as_postgres_writes_them() {
        let at = Lsn::parse("16/B374D848").unwrap();
        assert_eq!(at.0, (0x16 << 32) | 0xB374_D848);
        assert_eq!(at.to_string(), "16/B374D848");
        assert!(Lsn::parse("0/0").unwrap() < at);
        assert_eq!(Lsn::parse("nonsense"), None);
        assert_eq!(Lsn::parse("1/1FFFFFFFF"), None);
    }
}
