//! The load generator: `connections` loops, each with its own connection, sending requests for
//! a fixed time and recording every latency in an HDR histogram.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Builds the next request; given a per-loop random source.
pub type MakeRequest =
    Arc<dyn Fn(&reqwest::Client, &mut fastrand::Rng) -> reqwest::RequestBuilder + Send + Sync>;

pub struct Measured {
    pub requests: u64,
    pub elapsed: Duration,
    /// Microseconds.
    pub latencies: Histogram<u64>,
    /// By status; `timeout` and `connection` for requests that got none.
    pub errors: BTreeMap<String, u64>,
}

pub async fn run(connections: usize, duration: Duration, make: MakeRequest) -> anyhow::Result<Measured> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut loops = Vec::with_capacity(connections);
    for n in 0..connections {
        let (client, make) = (client.clone(), make.clone());
        loops.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(n as u64 + 1);
            let mut latencies =
                Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds");
            let mut errors = BTreeMap::<String, u64>::new();
            let mut requests = 0u64;
            while Instant::now() < deadline {
                let request = make(&client, &mut rng);
                let sent = Instant::now();
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.bytes().await;
                        match (status.is_success() || status.is_redirection(), body) {
                            (true, Ok(_)) => None,
                            (false, _) => Some(status.as_u16().to_string()),
                            (true, Err(_)) => Some("body".to_owned()),
                        }
                    }
                    Err(err) if err.is_timeout() => Some("timeout".to_owned()),
                    Err(_) => Some("connection".to_owned()),
                };
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
                latencies.saturating_record(micros);
                requests += 1;
                if let Some(error) = outcome {
                    *errors.entry(error).or_default() += 1;
                }
            }
            (requests, latencies, errors)
        }));
    }
    let mut total = Measured {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Histogram::new_with_bounds(1, 120_000_000, 3)?,
        errors: BTreeMap::new(),
    };
    for handle in loops {
        let (requests, latencies, errors) = handle.await?;
        total.requests += requests;
        total.latencies.add(&latencies)?;
        for (error, n) in errors {
            *total.errors.entry(error).or_default() += n;
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
