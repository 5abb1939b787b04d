//! The sync issue's scenario: many open event streams on one web process while writes run, and
//! how long a change takes from its transaction to its event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::Mutex;

/// What the streams saw.
pub struct Delivery {
    /// Microseconds from the change's `updated_at` (its transaction's start, in the database's
    /// clock, which is this machine's) to the event's arrival.
    pub latencies: Histogram<u64>,
    pub events: u64,
    /// Streams that got a `resync` or ended before the scenario did.
    pub dropped: u64,
    pub opened: usize,
}

/// Open streams, one per token; they record until `stop` is called.
pub struct Streams {
    latencies: Arc<Mutex<Histogram<u64>>>,
    events: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Streams {
    pub async fn open(base: &str, tokens: &[String]) -> anyhow::Result<Self> {
        let latencies = Arc::new(Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3)?));
        let (events, dropped) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
        let mut handles = Vec::with_capacity(tokens.len());
        for token in tokens {
            let response = client.get(format!("{base}/api/v1/events")).bearer_auth(token).send().await?;
            anyhow::ensure!(response.status() == 200, "opening a stream: {}", response.status());
            let (latencies, events, dropped) = (latencies.clone(), events.clone(), dropped.clone());
            handles.push(tokio::spawn(async move {
                let mut response = response;
                let mut buffer = String::new();
                let mut local = Vec::new();
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
                        Ok(None) | Err(_) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    let arrived = chrono::Utc::now();
                    while let Some(end) = buffer.find("\n\n") {
                        let block: String = buffer.drain(..end + 2).collect();
                        if block.contains("event: resync") {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                            continue;
                        };
                        let Ok(task) = serde_json::from_str::<serde_json::Value>(data) else { continue };
                        let Some(at) = task["updated_at"].as_str() else { continue };
                        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(at) {
                            let micros =
                                (arrived - at.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0);
                            local.push(micros.max(1) as u64);
                            events.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if !local.is_empty() {
                        let mut histogram = latencies.lock().await;
                        for micros in local.drain(..) {
                            let _ = histogram.record(micros);
                        }
                    }
                }
            }));
        }
        Ok(Self { latencies, events, dropped, handles })
    }

    /// Stops recording (the streams close with their connections).
    pub async fn stop(self) -> Delivery {
        let opened = self.handles.len();
        // Let events of the last writes arrive before closing.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let dropped = self.dropped.load(Ordering::Relaxed);
        for handle in &self.handles {
            handle.abort();
        }
        let latencies = self.latencies.lock().await.clone();
        Delivery { latencies, events: self.events.load(Ordering::Relaxed), dropped, opened }
    }
}
