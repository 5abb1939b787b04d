//! Completing a task with 50 descendants: `bench/run subtasks` (`cargo bench --bench subtasks`;
//! `SUBTASK_ROUNDS=5` for a quick run).
//!
//! Each round builds a fresh tree over the API in one batch (a parent, 5 subtasks, 9 under each:
//! 50 descendants, every one with a reminder), then times `PATCH /tasks/{id}/complete` on the
//! parent from the client, over loopback, against the real app on port 0. It checks that the
//! whole subtree was completed and its reminders cancelled in the write's one transaction: every
//! row of the tree carries the same `xmin` (the id of the transaction that wrote it last) and
//! the same `completed_at`, and no reminder job is left.

#![allow(dead_code)] // The shared harness has helpers this binary does not use.

#[path = "../../tests/api/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use helpers::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

const CHILDREN: usize = 5;
const GRANDCHILDREN: usize = 9;

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("SUBTASK_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(30);
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let reminder = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
        let mut operations =
            vec![json!({"op": "create", "ref": "root", "task": {"title": format!("Root {round}")}})];
        for c in 0..CHILDREN {
            operations.push(json!({"op": "create", "ref": format!("c{c}"),
                "task": {"title": format!("Child {c}"), "parent_id": "$root", "reminder_at": reminder}}));
            for g in 0..GRANDCHILDREN {
                operations.push(json!({"op": "create",
                    "task": {"title": format!("Step {c}.{g}"), "parent_id": format!("$c{c}"), "reminder_at": reminder}}));
            }
        }
        let body = json!({"operations": operations});
        let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await;
        assert_eq!(response.status(), 200, "building the tree");
        let built: Value = response.json().await.unwrap();
        let root = built["results"][0]["task"]["id"].as_str().unwrap().to_owned();
        let ids: Vec<uuid::Uuid> = built["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["task"]["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids.len(), 1 + CHILDREN * (1 + GRANDCHILDREN));

        let path = format!("/api/v1/tasks/{root}/complete");
        let started = Instant::now();
        let response =
            app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true}))).await;
        let took = started.elapsed();
        assert_eq!(response.status(), 200);
        times.push(took);

        let (transactions, completions, open): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(DISTINCT xmin::text), count(DISTINCT completed_at), count(*) FILTER (WHERE NOT completed)
             FROM tasks WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!((transactions, completions, open), (1, 1, 0), "one transaction completed the tree");
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'todo.reminder' AND status = 'Pending'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(pending, 0, "every descendant's reminder was cancelled with it");
    }
    times.sort_unstable();
    let pick = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let mean = times.iter().sum::<Duration>() / u32::try_from(times.len()).unwrap_or(1);
    println!(
        "completing a task with {} descendants ({} rounds): one transaction each; p50 {:.1} ms, mean {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        CHILDREN * (1 + GRANDCHILDREN),
        times.len(),
        pick(0.5).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        pick(0.9).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}
