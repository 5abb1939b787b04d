//! Reads from a real hot standby: a private primary from `initdb`, a `pg_basebackup` of it
//! streaming on another port, and two web processes over both. A read that presents the
//! `Consistency-Token` of a write sees that write whichever process answers; a replica that
//! stops leaves rotation without a failed read, and comes back by itself.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use todo::web::startup::Application;

use crate::helpers::register_at;
use crate::private_pg::PrivatePostgres;

struct Cluster {
    primary: PrivatePostgres,
    standby: PrivatePostgres,
    /// Two web processes over the same primary and standby.
    bases: [String; 2],
    client: reqwest::Client,
}

async fn cluster() -> Cluster {
    let (primary, mut settings, pool) = PrivatePostgres::start_migrated().await;
    let (primary, standby) = tokio::task::spawn_blocking(move || {
        let standby = PrivatePostgres::standby_of(&primary);
        (primary, standby)
    })
    .await
    .unwrap();
    settings.database.read_urls = vec![secrecy::SecretString::from(standby.url())];
    settings.database.replica_check_ms = 100;
    let mut bases = Vec::new();
    for _ in 0..2 {
        let app = Application::build_with_pool(settings.clone(), pool.clone()).expect("build app");
        bases.push(format!("http://127.0.0.1:{}", app.port()));
        tokio::spawn(app.run_until_stopped());
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    Cluster { primary, standby, bases: [bases[0].clone(), bases[1].clone()], client }
}

impl Cluster {
    async fn send(
        &self,
        app: usize,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        consistency: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request =
            self.client.request(method, format!("{}/api/v1{path}", self.bases[app])).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(at) = consistency {
            request = request.header("Consistency-Token", at);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let at = response.headers().get("consistency-token").map(|v| v.to_str().unwrap().to_owned());
        let body = response.json().await.unwrap_or(Value::Null);
        (status, at, body)
    }

    async fn standby_sql(&self, sql: &'static str) {
        let pool = sqlx::PgPool::connect(&self.standby.url()).await.expect("connect to the standby");
        sqlx::query(sql).execute(&pool).await.expect(sql);
        pool.close().await;
    }

    /// Waits until the standby has replayed `at` and a check has seen it (checks run every
    /// 100 ms).
    async fn caught_up(&self, at: &str) {
        let pool = sqlx::PgPool::connect(&self.standby.url()).await.expect("connect to the standby");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let done: bool = sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                .bind(at)
                .fetch_one(&pool)
                .await
                .unwrap_or(false);
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "the standby never replayed {at}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pool.close().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// A task's title through process `app`, presenting `at`.
    async fn title(&self, app: usize, token: &str, id: &str, at: Option<&str>) -> String {
        let (status, _, body) =
            self.send(app, token, reqwest::Method::GET, &format!("/tasks/{id}"), None, at).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["title"].as_str().unwrap().to_owned()
    }
}

/// A task written and caught up on the standby, then renamed with replay paused: the standby
/// still holds the old title, which proves a read went there.
async fn renamed_with_replay_paused(c: &Cluster, token: &str) -> (String, String, String) {
    let (status, first, task) =
        c.send(0, token, reqwest::Method::POST, "/tasks", Some(json!({"title": "v1"})), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let first = first.expect("a write's answer carries Consistency-Token");
    c.caught_up(&first).await;
    c.standby_sql("SELECT pg_wal_replay_pause()").await;
    let id = task["id"].as_str().unwrap().to_owned();
    let (status, second, _) = c
        .send(0, token, reqwest::Method::PATCH, &format!("/tasks/{id}"), Some(json!({"title": "v2"})), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    (id, first, second.expect("a write's answer carries Consistency-Token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_with_a_writes_token_sees_it_on_another_process_even_with_replay_paused() {
    let c = cluster().await;
    let token = register_at(&c.bases[0], "ryw@example.com").await;
    let (id, first, second) = renamed_with_replay_paused(&c, &token).await;
    // The older token is met by the paused standby, which answers with what it has.
    assert_eq!(
        c.title(1, &token, &id, Some(&first)).await,
        "v1",
        "a read with an older token may use the standby"
    );
    // The write's own token is not: the other process reads the primary.
    assert_eq!(c.title(1, &token, &id, Some(&second)).await, "v2");
    // No token: the primary, whatever the standby holds.
    assert_eq!(c.title(1, &token, &id, None).await, "v2");
    let (status, _, list) = c.send(1, &token, reqwest::Method::GET, "/tasks", None, Some(&second)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["title"], "v2");
    c.standby_sql("SELECT pg_wal_replay_resume()").await;
    c.caught_up(&second).await;
    assert_eq!(c.title(1, &token, &id, Some(&second)).await, "v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_standby_leaves_rotation_without_a_failed_read_and_comes_back() {
    let c = cluster().await;
    let token = register_at(&c.bases[0], "fallback@example.com").await;
    let (status, at, task) =
        c.send(0, &token, reqwest::Method::POST, "/tasks", Some(json!({"title": "kept"})), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let at = at.unwrap();
    c.caught_up(&at).await;
    let id = task["id"].as_str().unwrap().to_owned();

    c.standby.stop();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        for app in 0..2 {
            assert_eq!(c.title(app, &token, &id, Some(&at)).await, "kept", "reads fall back to the primary");
        }
    }

    c.standby.start_again();
    // Back in rotation by itself: once caught up, a paused standby serves an older token again.
    let (id, first, _) = renamed_with_replay_paused(&c, &token).await;
    assert_eq!(c.title(1, &token, &id, Some(&first)).await, "v1");
    c.standby_sql("SELECT pg_wal_replay_resume()").await;
    drop(c.primary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_served_from_the_standby_belongs_to_another_user() {
    let c = cluster().await;
    let alice = register_at(&c.bases[0], "alice@example.com").await;
    let bob = register_at(&c.bases[0], "bob@example.com").await;
    let (_, _, bobs) =
        c.send(0, &bob, reqwest::Method::POST, "/tasks", Some(json!({"title": "bob's"})), None).await;
    let (_, at, _) =
        c.send(0, &alice, reqwest::Method::POST, "/tasks", Some(json!({"title": "alice's"})), None).await;
    let at = at.unwrap();
    c.caught_up(&at).await;
    let bobs = bobs["id"].as_str().unwrap();
    for app in 0..2 {
        let (status, _, _) =
            c.send(app, &alice, reqwest::Method::GET, &format!("/tasks/{bobs}"), None, Some(&at)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, _, list) = c.send(app, &alice, reqwest::Method::GET, "/tasks", None, Some(&at)).await;
        let titles: Vec<&str> =
            list["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
        assert_eq!(titles, ["alice's"]);
        let (_, _, changes) =
            c.send(app, &alice, reqwest::Method::GET, "/changes?since=0", None, Some(&at)).await;
        assert_eq!(changes["changes"].as_array().map(Vec::len), Some(1), "{changes}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_tokens_see_their_writes_across_processes_while_others_write() {
    let c = cluster().await;
    let token = register_at(&c.bases[0], "busy@example.com").await;
    let other = register_at(&c.bases[1], "writer@example.com").await;
    let (status, _, task) =
        c.send(0, &token, reqwest::Method::POST, "/tasks", Some(json!({"title": "v0"})), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = task["id"].as_str().unwrap().to_owned();
    // Another user writes through both processes all along, so the standby is always replaying.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, bases, stop) = (c.client.clone(), c.bases.clone(), stop.clone());
        tokio::spawn(async move {
            let mut failed = 0;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client
                    .post(format!("{}/api/v1/tasks", bases[n % 2]))
                    .bearer_auth(&other)
                    .json(&json!({"title": format!("load {n}")}))
                    .send()
                    .await;
                failed += usize::from(!response.is_ok_and(|r| r.status() == StatusCode::CREATED));
                n += 1;
            }
            (n, failed)
        })
    };
    for i in 1..=30 {
        let title = format!("v{i}");
        let path = format!("/tasks/{id}");
        let (status, at, _) =
            c.send(i % 2, &token, reqwest::Method::PATCH, &path, Some(json!({"title": title})), None).await;
        assert_eq!(status, StatusCode::OK);
        let at = at.expect("a write's answer carries Consistency-Token");
        // Read back at once through the other process, and again after a pause, when the
        // standby has usually replayed the write and serves the read.
        assert_eq!(c.title((i + 1) % 2, &token, &id, Some(&at)).await, title);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(c.title((i + 1) % 2, &token, &id, Some(&at)).await, title);
        let (_, _, list) = c.send(i % 2, &token, reqwest::Method::GET, "/tasks", None, Some(&at)).await;
        assert_eq!(list["items"][0]["title"], title.as_str());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (writes, failed) = writer.await.unwrap();
    assert!(writes > 10, "the other user wrote only {writes} times");
    assert_eq!(failed, 0, "{failed} of the other user's {writes} writes failed");
}

/// How many scans of `tasks` the standby has run, by its own statistics.
async fn standby_task_scans(c: &Cluster) -> i64 {
    let pool = sqlx::PgPool::connect(&c.standby.url()).await.expect("connect to the standby");
    let scans = sqlx::query_scalar(
        "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint \
         FROM pg_stat_user_tables WHERE relname = 'tasks'",
    )
    .fetch_one(&pool)
    .await
    .expect("standby statistics");
    pool.close().await;
    scans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_reads_its_backlog_on_the_standby_and_the_rest_on_the_primary() {
    let c = cluster().await;
    let token = register_at(&c.bases[0], "stream@example.com").await;
    let mut at = String::new();
    for title in ["one", "two", "three"] {
        let (status, written, _) =
            c.send(0, &token, reqwest::Method::POST, "/tasks", Some(json!({"title": title})), None).await;
        assert_eq!(status, StatusCode::CREATED);
        at = written.unwrap();
    }
    c.caught_up(&at).await;
    c.standby_sql("SELECT pg_wal_replay_pause()").await;
    // Written after the standby stopped replaying: only the primary has it.
    let (status, _, _) =
        c.send(0, &token, reqwest::Method::POST, "/tasks", Some(json!({"title": "four"})), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let scans_before = standby_task_scans(&c).await;

    let mut response = c
        .client
        .get(format!("{}/api/v1/events?since=0", c.bases[1]))
        .bearer_auth(&token)
        .send()
        .await
        .expect("stream opened");
    assert_eq!(response.status(), StatusCode::OK);
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while text.matches("event: task.upserted").count() < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the stream stopped before four tasks ({other:?}): {text}"),
        }
    }
    for title in ["one", "two", "three", "four"] {
        assert!(text.contains(&format!("\"title\":\"{title}\"")), "no {title} in {text}");
    }
    drop(response);
    // The standby's statistics reach its counters within a second or so.
    let deadline = Instant::now() + Duration::from_secs(10);
    while standby_task_scans(&c).await == scans_before {
        assert!(Instant::now() < deadline, "the standby never read the backlog");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.standby_sql("SELECT pg_wal_replay_resume()").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caldav_reads_with_a_token_use_the_standby_and_a_writes_own_token_sees_it() {
    let c = cluster().await;
    let token = register_at(&c.bases[0], "dav@example.com").await;
    let (id, first, second) = renamed_with_replay_paused(&c, &token).await;
    let summary = |at: &str| {
        let request = c
            .client
            .get(format!("{}/dav/calendars/inbox/{id}.ics", c.bases[1]))
            .bearer_auth(&token)
            .header("Consistency-Token", at);
        async move {
            let response = request.send().await.expect("GET sent");
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.text().await.unwrap();
            body.lines().find_map(|l| l.strip_prefix("SUMMARY:")).map(str::to_owned).unwrap_or(body)
        }
    };
    assert_eq!(summary(&first).await, "v1", "the paused standby answers an older token");
    assert_eq!(summary(&second).await, "v2", "the write's own token is read on the primary");
    c.standby_sql("SELECT pg_wal_replay_resume()").await;
}
