//! Liveness, readiness and Prometheus metrics, for load balancers and scrapers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use crate::db;
use crate::web::problem::{ApiError, ProblemCode};
use crate::web::state::AppState;

/// A readiness probe must answer quickly even when the database hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// Scrapes within this long of the last queue count reuse it: `/metrics` is public, and each
/// count reads the whole job table, so a flood of scrapes must not become a flood of scans.
const QUEUE_DEPTH_MAX_AGE: Duration = Duration::from_secs(10);

static LAST_QUEUE_SAMPLE: Mutex<Option<Instant>> = Mutex::new(None);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health).service(ready).service(prometheus);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    /// Always `ok` when the answer is 200.
    status: &'static str,
}

/// Liveness
///
/// The process is up and serving HTTP. Touches nothing else, so it stays cheap under load.
#[utoipa::path(operation_id = "getHealth", tag = "operations", responses((status = 200, body = Status)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Readiness
///
/// The database answers and every migration has been applied; until then, `503`.
#[utoipa::path(
    operation_id = "getReadiness", tag = "operations",
    responses(
        (status = 200, body = Status),
        (status = 503, description = "Database unreachable or migrations pending", body = crate::web::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let unavailable = |reason| ApiError::Unavailable { reason, retry_after_secs: 5 };
    match tokio::time::timeout(READY_TIMEOUT, db::check_ready(&state.pool)).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Status { status: "ok" })),
        Ok(Err(db::NotReady::Pending(n))) => {
            tracing::warn!(pending = n, "not ready: migrations pending");
            Err(unavailable(ProblemCode::MigrationsPending))
        }
        Ok(Err(db::NotReady::Unavailable(err))) => {
            tracing::warn!(%err, "not ready: database unavailable");
            Err(unavailable(ProblemCode::DatabaseUnavailable))
        }
        Err(_) => Err(unavailable(ProblemCode::DatabaseUnavailable)),
    }
}

/// Prometheus metrics
///
/// Prometheus text exposition: request counts and latencies by route, event streams, and queue
/// depth by status.
#[utoipa::path(operation_id = "getMetrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn prometheus(state: web::Data<AppState>) -> HttpResponse {
    record_queue_depth(&state).await;
    let handle = crate::metrics::handle();
    handle.run_upkeep();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render())
}

/// Samples the job table at scrape time; a scrape during an outage just omits these gauges.
async fn record_queue_depth(state: &AppState) {
    {
        let Ok(mut last) = LAST_QUEUE_SAMPLE.try_lock() else { return };
        if last.is_some_and(|at| at.elapsed() < QUEUE_DEPTH_MAX_AGE) {
            return;
        }
        *last = Some(Instant::now());
    }
    match tokio::time::timeout(READY_TIMEOUT, db::queue::depth(&state.pool)).await {
        Ok(Ok(rows)) => {
            // Zero every status of a seen queue first, so a drained status does not keep its old value.
            let queues: std::collections::BTreeSet<&str> = rows.iter().map(|(q, _, _)| q.as_str()).collect();
            for queue in queues {
                for status in crate::metrics::JOB_STATUSES {
                    metrics::gauge!("jobs", "queue" => queue.to_owned(), "status" => *status).set(0.0);
                }
            }
            for (queue, status, count) in rows {
                metrics::gauge!("jobs", "queue" => queue, "status" => status).set(count as f64);
            }
        }
        Ok(Err(err)) => tracing::warn!(%err, "could not sample queue depth"),
        Err(_) => tracing::warn!("sampling queue depth timed out"),
    }
}
