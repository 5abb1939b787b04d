//! The process-wide Prometheus recorder, shared by the web and worker processes. `metrics` allows
//! one global recorder per process, and the test suite starts many apps and workers in one
//! process, so it is installed once and shared.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from a fast cached read to a slow write under load.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Reminder lateness in seconds: the promise is "within about a second", and the tail shows
/// retries and outages.
const LATENESS_BUCKETS: &[f64] =
    &[0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

pub const REMINDER_LATENESS: &str = "reminder_lateness_seconds";
/// Reminders skipped by a cap, labelled `cap="account|recipient"`.
pub const REMINDERS_RATE_LIMITED: &str = "reminders_rate_limited_total";

/// Webhook attempts by outcome: `succeeded`, `retrying`, `failed` (given up), `gone` (410).
pub const WEBHOOK_DELIVERIES: &str = "webhook_deliveries_total";
pub const WEBHOOK_OUTCOMES: &[&str] = &["succeeded", "retrying", "failed", "gone"];
/// How long a webhook message waited from its change to its first attempt, in seconds.
pub const WEBHOOK_QUEUE_AGE: &str = "webhook_queue_age_seconds";
/// Endpoints the service disabled, by reason: `gone` (410) or `failing` (days of failures).
pub const WEBHOOK_ENDPOINTS_DISABLED: &str = "webhook_endpoints_disabled_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS).and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(REMINDER_LATENESS.into()), LATENESS_BUCKETS)?
                .set_buckets_for_metric(Matcher::Full(WEBHOOK_QUEUE_AGE.into()), LATENESS_BUCKETS)
        });
        let builder = match builder {
            Ok(builder) => builder,
            Err(err) => {
                tracing::warn!(%err, "histogram buckets rejected; histograms render as summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

/// The statuses apalis-postgres writes to `apalis.jobs.status`.
pub const JOB_STATUSES: &[&str] = &["Pending", "Queued", "Running", "Done", "Failed", "Killed"];

/// Registers the web process's gauges at zero, so a dashboard or alert on a fresh process sees
/// 0 rather than "no data". `queues` comes from the caller so this module stays below `jobs`.
pub fn register_web_series(queues: &[&'static str]) {
    metrics::gauge!("user_actors").increment(0.0);
    metrics::gauge!("event_streams").increment(0.0);
    metrics::counter!("event_streams_dropped_slow").increment(0);
    for &queue in queues {
        for status in JOB_STATUSES {
            metrics::gauge!("jobs", "queue" => queue, "status" => *status).increment(0.0);
        }
    }
}

/// Registers the worker's webhook series at zero.
pub fn register_webhook_series() {
    for outcome in WEBHOOK_OUTCOMES {
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => *outcome).increment(0);
    }
    for reason in ["gone", "failing"] {
        metrics::counter!(WEBHOOK_ENDPOINTS_DISABLED, "reason" => reason).increment(0);
    }
    let _ = metrics::histogram!(WEBHOOK_QUEUE_AGE);
}
