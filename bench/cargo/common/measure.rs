//! Shared by the HTTP benchmarks: drives one request shape at fixed concurrency and reports
//! throughput and latency percentiles.

use std::time::{Duration, Instant};

use futures::StreamExt;

pub struct Outcome {
    pub name: String,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Sends `requests` requests, `concurrency` at a time; `send(i)` makes request `i` and panics on
/// a failure, so a benchmark never reports the speed of errors.
pub async fn measure<F, Fut>(name: impl Into<String>, requests: usize, concurrency: usize, send: F) -> Outcome
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..requests)
        .map(|i| {
            let request = send(i);
            async move {
                let sent = Instant::now();
                request.await;
                sent.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Outcome {
        name: name.into(),
        per_second: requests as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}
