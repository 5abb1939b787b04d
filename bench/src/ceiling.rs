//! The ceiling of one node: a realistic mix raised step by step until its p99 passes 100 ms or
//! errors appear. The mix: mostly reads (a task, a list page), searches, writes (create, patch,
//! complete), reminders coming due at a rate that follows the load, and an event stream open for
//! a user in ten. Requests go to the web processes in turn, as a load balancer would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::load::{self, MakeRequest};
use crate::seed;

/// Where a step counts as past the knee.
pub const P99_LIMIT_MS: f64 = 100.0;
/// Concurrent clients per step: each sends its next request as soon as the last is answered.
pub const STEPS: &[usize] = &[4, 8, 16, 32, 64, 128, 256, 512];
/// Reminders set to come due per 100 requests the previous step served.
const REMINDERS_PER_100: f64 = 1.0;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub clients: usize,
    pub requests_per_second: f64,
    pub writes_per_second: f64,
    pub reminders_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

impl Step {
    pub fn within(&self) -> bool {
        self.errors == 0 && self.p99_ms <= P99_LIMIT_MS
    }
}

pub struct Target<'a> {
    pub bases: Vec<String>,
    pub tokens: Arc<Vec<String>>,
    pub tasks_per_user: usize,
    pub smtp: &'a smtp_sink::SmtpSink,
    pub streams: usize,
}

/// Raises the load until past the knee (or the last step), one step of `duration` each.
pub async fn run(target: &Target<'_>, duration: Duration) -> anyhow::Result<Vec<Step>> {
    let users = target.tokens.len();
    let open =
        crate::streams::Streams::open(&target.bases[0], &target.tokens[1..target.streams.min(users).max(2)])
            .await?;
    let mut steps = Vec::new();
    let mut last_rate = 100.0;
    for &clients in STEPS {
        let reminders = ((last_rate * duration.as_secs_f64()) * REMINDERS_PER_100 / 100.0).ceil() as usize;
        let due = reminders_due(target, reminders, duration).await?;
        let writes = Arc::new(AtomicU64::new(0));
        let before = target.smtp.count();
        let measured = load::run(clients, duration, mix(target, writes.clone())).await?;
        let seconds = measured.elapsed.as_secs_f64();
        // Reminders due in the step and sent by its end, a second after it for the poll.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = target.smtp.count().saturating_sub(before).min(due);
        let ms = |q: f64| measured.latencies.value_at_quantile(q) as f64 / 1000.0;
        let step = Step {
            clients,
            requests_per_second: measured.requests as f64 / seconds,
            writes_per_second: writes.load(Ordering::Relaxed) as f64 / seconds,
            reminders_per_second: sent as f64 / seconds,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            errors: measured.errors.values().sum(),
        };
        eprintln!(
            "ceiling: {clients} clients: {:.0} req/s, {:.0} writes/s, {:.1} reminders/s, p99 {:.1} ms, {} errors",
            step.requests_per_second,
            step.writes_per_second,
            step.reminders_per_second,
            step.p99_ms,
            step.errors
        );
        last_rate = step.requests_per_second;
        let past = !step.within();
        steps.push(step);
        if past {
            break;
        }
    }
    open.stop().await;
    Ok(steps)
}

/// The mix, spread over the web processes and every user but the big one.
fn mix(target: &Target<'_>, writes: Arc<AtomicU64>) -> MakeRequest {
    let bases = Arc::new(target.bases.clone());
    let tokens = target.tokens.clone();
    let per_user = target.tasks_per_user;
    let users = tokens.len();
    Arc::new(move |c, rng| {
        let base = &bases[rng.usize(..bases.len())];
        let user = 1 + rng.usize(..users - 1);
        let token = &tokens[user];
        let task = seed::task_id(user, rng.usize(..per_user));
        let roll = rng.u8(..100);
        if roll >= 80 {
            writes.fetch_add(1, Ordering::Relaxed);
        }
        match roll {
            0..45 => c.get(format!("{base}/api/v1/tasks/{task}")).bearer_auth(token),
            45..70 => c.get(format!("{base}/api/v1/tasks?limit=50")).bearer_auth(token),
            70..80 => c
                .get(format!("{base}/api/v1/tasks?q={}", seed::rare_word(rng.usize(..997))))
                .bearer_auth(token),
            80..88 => {
                c.post(format!("{base}/api/v1/tasks")).bearer_auth(token).json(&json!({"title": "ceiling"}))
            }
            88..95 => c
                .patch(format!("{base}/api/v1/tasks/{task}"))
                .bearer_auth(token)
                .json(&json!({"priority": "high"})),
            _ => c.post(format!("{base}/api/v1/tasks/{task}/toggle")).bearer_auth(token),
        }
    })
}

/// Sets `count` reminders to come due spread over the next `duration`; returns the count.
async fn reminders_due(target: &Target<'_>, count: usize, duration: Duration) -> anyhow::Result<usize> {
    let client = reqwest::Client::new();
    let start = chrono::Utc::now() + chrono::Duration::milliseconds(500);
    let span = duration.as_millis().max(1) as i64;
    let users = target.tokens.len();
    for chunk in 0..count.div_ceil(100) {
        let ops: Vec<Value> = (0..100.min(count - chunk * 100))
            .map(|i| {
                let at = start + chrono::Duration::milliseconds(span * (chunk * 100 + i) as i64 / count.max(1) as i64);
                json!({"op": "create", "task": {"title": "ceiling reminder", "due_at": (at + chrono::Duration::hours(1)).to_rfc3339(), "reminder_at": at.to_rfc3339()}})
            })
            .collect();
        let token = &target.tokens[1 + chunk % (users - 1)];
        let response = client
            .post(format!("{}/api/v1/tasks/bulk", target.bases[0]))
            .bearer_auth(token)
            .json(&json!({"operations": ops}))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "setting reminders: {}", response.status());
    }
    Ok(count)
}

/// The knee: the last step within the limit.
pub fn knee(steps: &[Step]) -> Option<&Step> {
    steps.iter().rev().find(|s| s.within())
}

pub fn markdown(title: &str, steps: &[Step]) -> String {
    let mut out = format!(
        "### {title}\n\n| clients | req/s | writes/s | reminders/s | p50 ms | p99 ms | errors |\n|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for s in steps {
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {} |\n",
            s.clients,
            s.requests_per_second,
            s.writes_per_second,
            s.reminders_per_second,
            s.p50_ms,
            s.p99_ms,
            s.errors
        ));
    }
    match knee(steps) {
        Some(k) => out.push_str(&format!(
            "\nKnee: {} clients, {:.0} requests/s ({:.0} writes/s, {:.1} reminders/s) at p99 {:.1} ms.\n",
            k.clients, k.requests_per_second, k.writes_per_second, k.reminders_per_second, k.p99_ms
        )),
        None => out.push_str("\nNo step stayed within p99 100 ms without errors.\n"),
    }
    out
}
