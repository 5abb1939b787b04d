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
