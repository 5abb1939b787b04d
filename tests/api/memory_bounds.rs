//! Floods against the real `todo` binary, measuring the process's peak memory (VmHWM): an
//! anonymous client must not be able to make it grow without bound.

use serde_json::json;

use crate::helpers::{TEST_PASSWORD, TestApp, WebProcess, gzip_of_spaces};

#[tokio::test]
async fn a_login_flood_costs_a_bounded_amount_of_memory() {
    let app = TestApp::spawn().await;
    // Production-strength hashing (19 MiB each); the limit is switched off from the environment,
    // as a load test would, so that every login reaches the hasher.
    let web = WebProcess::start(
        &app,
        &[
            ("APP__AUTH__ARGON2_MEMORY_KIB", "19456"),
            ("APP__AUTH__ARGON2_ITERATIONS", "2"),
            ("APP__RATE_LIMIT__ENABLED", "false"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let register = json!({"email": "flood@example.com", "password": TEST_PASSWORD});
    let registered =
        client.post(format!("{}/api/v1/auth/register", web.address)).json(&register).send().await;
    assert_eq!(registered.unwrap().status(), 201);
    let before = web.peak_mib();

    let login = format!("{}/api/v1/auth/login", web.address);
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(100));
    let mut attempts = Vec::new();
    for i in 0..400 {
        let (client, login, semaphore) = (client.clone(), login.clone(), semaphore.clone());
        attempts.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.unwrap();
            let password = if i % 2 == 0 { TEST_PASSWORD } else { "wrong-password" };
            let body = json!({"email": "flood@example.com", "password": password});
            client.post(login).json(&body).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for attempt in attempts {
        *statuses.entry(attempt.await.unwrap()).or_default() += 1;
    }
    let peak = web.peak_mib();
    eprintln!("login flood: {statuses:?}, peak RSS {before} MiB before, {peak} MiB after");
    assert!(statuses.keys().all(|s| [200, 401, 503].contains(s)), "{statuses:?}");
    assert!(statuses.get(&200).copied().unwrap_or(0) > 0, "some logins got through: {statuses:?}");
    assert!(peak < before + 100, "400 logins took the process from {before} MiB to {peak} MiB");
}

#[tokio::test]
async fn gzip_bombs_cost_a_bounded_amount_of_memory() {
    let app = TestApp::spawn().await;
    let web = WebProcess::start(&app, &[]).await;
    let before = web.peak_mib();
    // ~200 KB of gzip that would inflate to 200 MB.
    let bomb = gzip_of_spaces(200);
    let client = reqwest::Client::new();
    let sends = (0..40).map(|_| {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            bomb.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
        client
            .post(format!("{}/api/v1/auth/login", web.address))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
    });
    // The server may answer and hang up before the whole upload is sent: a send error is fine.
    for response in futures::future::join_all(sends).await.into_iter().flatten() {
        assert_eq!(response.status(), 415);
    }
    let peak = web.peak_mib();
    eprintln!("gzip bombs: peak RSS {before} MiB before, {peak} MiB after");
    assert!(peak < before + 100, "40 gzip bombs took the process from {before} MiB to {peak} MiB");
}
