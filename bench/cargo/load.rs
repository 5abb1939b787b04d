//! In-process load benchmark: `bench/run in-process` (`cargo bench --bench load`).
//!
//! Starts the real app on port 0 over a throwaway database (the test harness), then drives each
//! scenario with a fixed number of requests at fixed concurrency over loopback. Machines here are
//! shared and noisy, so every scenario is reported as a ratio against `GET /health` measured in
//! the same run: a throughput ratio and a p50 latency ratio.

#![allow(dead_code)] // The shared harness has helpers this binary does not use.

#[path = "../../tests/api/helpers.rs"]
mod helpers;
#[path = "common/measure.rs"]
mod measure;

use helpers::{TestApp, TestUser};
use measure::{Outcome, measure};
use reqwest::Method;
use serde_json::json;

const REQUESTS: usize = 4000;
const CONCURRENCY: usize = 32;
const USERS: usize = 32;

#[tokio::main]
async fn main() {
    let app = TestApp::spawn_with(|s| {
        s.server.workers = 2;
        s.database.max_connections = 20;
        s.actors.mailbox_capacity = 1024;
    })
    .await;
    let mut users = Vec::new();
    for _ in 0..USERS {
        users.push(app.new_user().await);
    }
    let tasks: Vec<String> =
        futures::future::join_all(users.iter().map(|u| app.create_task(u, json!({"title": "seed"}))))
            .await
            .iter()
            .map(|t| t["id"].as_str().expect("task id").to_owned())
            .collect();
    // A realistic list: 500 tasks for the first user.
    for i in 0..500 {
        app.create_task(&users[0], json!({"title": format!("task {i}"), "tags": ["bench"]})).await;
    }

    let results = vec![
        run("GET /health (baseline)", &app, |_| (Method::GET, "/health".to_owned(), None, None)).await,
        run("GET /tasks/{id}", &app, |i| {
            let n = i % USERS;
            (Method::GET, format!("/api/v1/tasks/{}", tasks[n]), Some(&users[n]), None)
        })
        .await,
        run("GET /tasks?limit=50 (500 tasks)", &app, |_| {
            (Method::GET, "/api/v1/tasks?limit=50".to_owned(), Some(&users[0]), None)
        })
        .await,
        run("POST /tasks, 32 users", &app, |i| {
            (
                Method::POST,
                "/api/v1/tasks".to_owned(),
                Some(&users[i % USERS]),
                Some(json!({"title": "load"})),
            )
        })
        .await,
        run("POST /tasks/{id}/toggle, 32 users", &app, |i| {
            let n = i % USERS;
            (Method::POST, format!("/api/v1/tasks/{}/toggle", tasks[n]), Some(&users[n]), None)
        })
        .await,
        run("POST /tasks/{id}/toggle, 1 user", &app, |_| {
            (Method::POST, format!("/api/v1/tasks/{}/toggle", tasks[0]), Some(&users[0]), None)
        })
        .await,
    ];

    bulk_against_singles(&app, &users[1]).await;

    let base = &results[0];
    println!("\n{REQUESTS} requests per scenario, {CONCURRENCY} in flight, loopback\n");
    println!(
        "{:<36} {:>9} {:>8} {:>8} {:>11} {:>10}",
        "scenario", "req/s", "p50 ms", "p99 ms", "throughput", "p50"
    );
    for r in &results {
        println!(
            "{:<36} {:>9.0} {:>8.2} {:>8.2} {:>10.2}x {:>9.2}x",
            r.name,
            r.per_second,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.per_second / base.per_second,
            r.p50.as_secs_f64() / base.p50.as_secs_f64(),
        );
    }
}

/// 100 creates as one bulk request against 100 single `POST /tasks` over one connection, each
/// timed end to end, best of `ROUNDS` (the least disturbed by other work on the machine).
async fn bulk_against_singles(app: &TestApp, user: &TestUser) {
    const ROUNDS: usize = 15;
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
    let post = |body: serde_json::Value, path: &'static str| {
        client.post(app.url(path)).bearer_auth(&user.token).json(&body).send()
    };
    let (mut singles, mut bulks) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let started = std::time::Instant::now();
        for i in 0..100 {
            let response = post(json!({"title": format!("single {round}-{i}")}), "/api/v1/tasks").await;
            assert_eq!(response.expect("sent").status(), 201);
        }
        singles.push(started.elapsed());
        let operations: Vec<serde_json::Value> = (0..100)
            .map(|i| json!({"op": "create", "task": {"title": format!("bulk {round}-{i}")}}))
            .collect();
        let started = std::time::Instant::now();
        let response = post(json!({"operations": operations}), "/api/v1/tasks/bulk").await;
        assert_eq!(response.expect("sent").status(), 200);
        bulks.push(started.elapsed());
    }
    let best = |times: &[std::time::Duration]| times.iter().min().copied().unwrap_or_default();
    let median = |times: &mut Vec<std::time::Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (best_single, best_bulk) = (best(&singles), best(&bulks));
    let (median_single, median_bulk) = (median(&mut singles), median(&mut bulks));
    println!("\n100 creates, one connection, {ROUNDS} rounds\n");
    println!("{:<36} {:>10} {:>10}", "", "best ms", "median ms");
    println!(
        "{:<36} {:>10.1} {:>10.1}",
        "100 x POST /tasks",
        best_single.as_secs_f64() * 1e3,
        median_single.as_secs_f64() * 1e3
    );
    println!(
        "{:<36} {:>10.1} {:>10.1}",
        "1 x POST /tasks/bulk (100 creates)",
        best_bulk.as_secs_f64() * 1e3,
        median_bulk.as_secs_f64() * 1e3
    );
    println!(
        "{:<36} {:>9.1}x {:>9.1}x",
        "bulk speed-up",
        best_single.as_secs_f64() / best_bulk.as_secs_f64(),
        median_single.as_secs_f64() / median_bulk.as_secs_f64()
    );
}

type Request<'a> = (Method, String, Option<&'a TestUser>, Option<serde_json::Value>);

async fn run<'a>(name: &'static str, app: &'a TestApp, request: impl Fn(usize) -> Request<'a>) -> Outcome {
    measure(name, REQUESTS, CONCURRENCY, |i| {
        let (method, path, user, body) = request(i);
        let mut builder = app.client.request(method, app.url(&path));
        if let Some(user) = user {
            builder = builder.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        async move {
            let response = builder.send().await.expect("request sent");
            assert!(response.status().is_success(), "{name}: {}", response.status());
            response.bytes().await.expect("body read");
        }
    })
    .await
}
