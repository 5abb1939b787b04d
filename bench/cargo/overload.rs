//! Sustained overload against the release `todo` binary: `bench/run overload`
//! (`cargo bench --bench overload`).
//!
//! For `OVERLOAD_SECS` (default 300) it keeps far more work in flight than two cores can serve:
//! logins at production argon2 strength, creates and list reads from many users, and hundreds of
//! connections that trickle their headers. Every 10 s it prints the web process's resident
//! memory, so the curve shows whether anything grows without bound. Rate limits stay on, as in
//! production, except that the per-address auth limit is raised so that logins do reach the
//! hasher (every client here shares one address).

#![allow(dead_code)] // The shared harness has helpers this binary does not use.

#[path = "../../tests/api/helpers.rs"]
mod helpers;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helpers::{TEST_PASSWORD, TestApp, WebProcess};
use serde_json::json;

const CLIENTS: usize = 256;
const USERS: usize = 64;
const TRICKLERS: usize = 300;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("OVERLOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let app = TestApp::spawn().await;
    let web = WebProcess::start(
        &app,
        &[
            ("APP__AUTH__ARGON2_MEMORY_KIB", "19456"),
            ("APP__AUTH__ARGON2_ITERATIONS", "2"),
            ("APP__RATE_LIMIT__ENABLED", "true"),
            ("APP__RATE_LIMIT__AUTH_PER_IP_PER_MINUTE", "100000"),
            ("APP__DATABASE__MAX_CONNECTIONS", "10"),
        ],
    )
    .await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut tokens = Vec::new();
    for i in 0..USERS {
        let body = json!({"email": format!("load{i}@example.com"), "password": TEST_PASSWORD});
        let response = client.post(format!("{}/api/v1/auth/register", web.address)).json(&body).send().await;
        let body: serde_json::Value = response.unwrap().json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    let start_rss = web.rss_mib();

    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let mut load = Vec::new();
    for c in 0..CLIENTS {
        let (client, base, tokens, stop, statuses) =
            (client.clone(), web.address.clone(), tokens.clone(), stop.clone(), statuses.clone());
        load.push(tokio::spawn(async move {
            let mut n = c;
            while !stop.load(Ordering::Relaxed) {
                n += CLIENTS;
                let token = &tokens[n % USERS];
                let request = match n % 10 {
                    0..=3 => client.post(format!("{base}/api/v1/auth/login")).json(
                        &json!({"email": format!("load{}@example.com", n % USERS), "password": TEST_PASSWORD}),
                    ),
                    4..=6 => client
                        .post(format!("{base}/api/v1/tasks"))
                        .bearer_auth(token)
                        .json(&json!({"title": format!("overload {n}"), "tags": ["load"]})),
                    _ => client.get(format!("{base}/api/v1/tasks?limit=50&q=overload")).bearer_auth(token),
                };
                let status = request.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        }));
    }
    let port = web.port;
    let stop_tricklers = stop.clone();
    let tricklers = std::thread::spawn(move || trickle_headers(port, &stop_tricklers));

    println!(
        "\nSustained overload for {seconds} s: {CLIENTS} clients (40% logins, 30% creates, 30% searches"
    );
    println!("over {USERS} users) and {TRICKLERS} connections trickling headers.\n");
    println!("| t (s) | RSS (MiB) | answers so far |");
    println!("|---:|---:|---|");
    println!("| 0 | {start_rss} | – |");
    let started = Instant::now();
    let mut peak = start_rss;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss = web.rss_mib();
        peak = peak.max(rss);
        let seen = statuses.lock().unwrap().clone();
        println!("| {} | {rss} | {seen:?} |", started.elapsed().as_secs());
        let _ = std::io::stdout().flush();
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    let _ = tricklers.join();
    println!(
        "\nPeak RSS {peak} MiB (started at {start_rss} MiB). Status 0 is a connection the server refused or cut."
    );
}

/// Keeps `TRICKLERS` connections open, each sending a header byte a second; when the server
/// cuts one at its header deadline, another takes its place.
fn trickle_headers(port: u16, stop: &AtomicBool) {
    let mut open: Vec<std::net::TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        open.retain_mut(|stream| stream.write_all(b"X").is_ok());
        while open.len() < TRICKLERS {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(mut stream) => {
                    let _ = stream.write_all(b"GET /health HTTP/1.1\r\nX-Slow: ");
                    open.push(stream);
                }
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
