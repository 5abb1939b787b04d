//! A real app on port 0 over a throwaway database, and typed helpers to talk to it.

use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use todo::config::{Environment, Settings};
use todo::web::startup::Application;
use tracing_subscriber::Layer;
use uuid::Uuid;

// A path relative to this file, so the benchmarks that include this harness find it too.
#[path = "contract_check.rs"]
pub mod contract_check;
pub use contract_check::CheckedClient;

/// Installs the test subscriber once: audit events are always captured (see `audit_events`);
/// everything else is printed only with `TEST_LOG=1`.
static TRACING: LazyLock<()> = LazyLock::new(|| {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let print = std::env::var_os("TEST_LOG").is_some().then(|| {
        tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
    });
    let _ = tracing_subscriber::registry().with(AuditCapture).with(LogWatchLayer).with(print).try_init();
});

/// One captured audit event: field name to its rendered value.
pub type AuditEvent = std::collections::BTreeMap<String, String>;

static AUDIT: std::sync::Mutex<Vec<AuditEvent>> = std::sync::Mutex::new(Vec::new());

/// Every audit event logged so far in this test process (tests run in parallel, so filter).
pub fn audit_events() -> Vec<AuditEvent> {
    AUDIT.lock().expect("audit log lock").clone()
}

struct AuditCapture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AuditCapture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "audit" {
            return;
        }
        struct Fields(AuditEvent);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
        }
        let mut fields = Fields(AuditEvent::new());
        event.record(&mut fields);
        AUDIT.lock().expect("audit log lock").push(fields.0);
    }
}

/// Strings being watched for in every log event and span field, at every level, with how often
/// each was seen.
static WATCHED: std::sync::Mutex<Vec<(u64, String, usize)>> = std::sync::Mutex::new(Vec::new());
static NEXT_WATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts the log events and span fields that contain a string, for as long as it lives: a
/// secret must never be in them, at whatever level, in whatever field.
pub struct LogWatch(u64);

impl LogWatch {
    pub fn new(needle: &str) -> Self {
        LazyLock::force(&TRACING);
        let id = NEXT_WATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WATCHED.lock().expect("log watch lock").push((id, needle.to_owned(), 0));
        Self(id)
    }

    pub fn hits(&self) -> usize {
        WATCHED.lock().expect("log watch lock").iter().find(|w| w.0 == self.0).map_or(0, |w| w.2)
    }
}

impl Drop for LogWatch {
    fn drop(&mut self) {
        WATCHED.lock().expect("log watch lock").retain(|w| w.0 != self.0);
    }
}

struct LogWatchLayer;

/// Renders every field of an event or span as text, as a formatter would print it.
#[derive(Default)]
struct Rendered(String);

impl tracing::field::Visit for Rendered {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

fn watching() -> bool {
    !WATCHED.lock().expect("log watch lock").is_empty()
}

fn check_watched(text: &str) {
    let mut watched = WATCHED.lock().expect("log watch lock");
    for (_, needle, hits) in watched.iter_mut() {
        if text.contains(needle.as_str()) {
            *hits += 1;
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogWatchLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !watching() {
            return;
        }
        let mut rendered = Rendered::default();
        event.record(&mut rendered);
        check_watched(&rendered.0);
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if !watching() {
            return;
        }
        let mut rendered = Rendered::default();
        attrs.record(&mut rendered);
        check_watched(&rendered.0);
    }

    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if !watching() {
            return;
        }
        let mut rendered = Rendered::default();
        values.record(&mut rendered);
        check_watched(&rendered.0);
    }
}

pub const TEST_PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone)]
pub struct TestUser {
    pub token: String,
    pub id: Uuid,
    pub email: String,
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    /// Checks every answer of this app against the OpenAPI document.
    pub client: CheckedClient,
    pub settings: Settings,
    pub state: actix_web::web::Data<todo::web::state::AppState>,
    /// Dropped with the app, which drops the database.
    _database: TestDatabase,
}

/// Test settings: port 0, and the database URL of the server the tests may create databases on.
pub fn test_settings() -> Settings {
    LazyLock::force(&TRACING);
    let mut settings = Settings::load_environment(Environment::Test).expect("test settings load");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.server.workers = 1;
    settings
}

impl TestApp {
    /// A migrated database and a running app.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customise: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings();
        customise(&mut settings);
        let database = TestDatabase::create(&settings).await;
        settings.database.url = database.url.clone();
        let pool = todo::db::connect(&settings.database).await.expect("connect to test database");
        todo::db::migrate(&pool).await.expect("migrate test database");
        Self::start(settings, pool, database)
    }

    /// An app over a database that exists but has no migrations applied.
    pub async fn spawn_unmigrated() -> Self {
        let mut settings = test_settings();
        let database = TestDatabase::create(&settings).await;
        settings.database.url = database.url.clone();
        let pool = todo::db::connect(&settings.database).await.expect("connect to test database");
        Self::start(settings, pool, database)
    }

    fn start(mut settings: Settings, pool: PgPool, database: TestDatabase) -> Self {
        let app = Application::build_with_pool(settings.clone(), pool.clone()).expect("build app");
        let port = app.port();
        // Bound to port 0, so only now is the address known that emailed links (minted by
        // workers started from these settings) must point at.
        settings.server.public_url = format!("http://127.0.0.1:{port}");
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        let address = format!("http://127.0.0.1:{port}");
        Self { client: CheckedClient::for_app(&address), address, pool, settings, state, _database: database }
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request sent")
    }

    /// Sends `method path` with a bearer token and an optional JSON body.
    pub async fn send_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// Registers a user and verifies their address, as someone who clicked the emailed link
    /// would have: the user gets reminders. Their token and id.
    pub async fn register(&self, email: &str) -> TestUser {
        let user = self.register_unverified(email).await;
        self.verify_address(user.id, email).await;
        user
    }

    /// Registers a user whose address awaits verification (its email is queued, not sent).
    pub async fn register_unverified(&self, email: &str) -> TestUser {
        let body = serde_json::json!({"email": email, "password": TEST_PASSWORD});
        let response = self.post_json("/api/v1/auth/register", &body).await;
        assert_eq!(response.status(), 201, "registering {email}");
        let body: serde_json::Value = response.json().await.expect("token response");
        TestUser {
            token: body["access_token"].as_str().expect("access_token").to_owned(),
            id: body["user"]["id"].as_str().expect("user id").parse().expect("uuid"),
            email: email.to_owned(),
        }
    }

    /// A verification link for `address`, signed as the worker signs the one it emails.
    pub fn verification_token(&self, user_id: Uuid, address: &str) -> String {
        let keys = todo::links::LinkKeys::new(&self.settings.auth);
        let claims = todo::links::Claims::new(
            todo::links::Purpose::VerifyEmail,
            user_id,
            todo::links::address_digest(address),
            chrono::Utc::now(),
        );
        keys.sign(&claims)
    }

    /// Presses the button of a verification link's page: `POST /email/verify`.
    pub async fn post_verification(&self, token: &str) -> reqwest::Response {
        let response = self.client.post(self.url("/email/verify")).form(&[("token", token)]).send().await;
        response.expect("request sent")
    }

    /// Verifies `address` through the page its emailed link opens. Verifying also drops the
    /// verification email still queued, so a worker started afterwards sends only reminders.
    pub async fn verify_address(&self, user_id: Uuid, address: &str) {
        let response = self.post_verification(&self.verification_token(user_id, address)).await;
        assert_eq!(response.status(), 200, "verifying {address}");
    }

    /// Creates a task and returns its body.
    pub async fn create_task(&self, user: &TestUser, body: serde_json::Value) -> serde_json::Value {
        let response = self.send_as(&user.token, reqwest::Method::POST, "/api/v1/tasks", Some(&body)).await;
        assert_eq!(response.status(), 201, "creating {body}");
        response.json().await.expect("task body")
    }

    /// Every job row of a queue, oldest first, as (status, run_at, idempotency key).
    pub async fn jobs(&self, queue: &str) -> Vec<(String, chrono::DateTime<chrono::Utc>, Option<String>)> {
        sqlx::query_as(
            "SELECT status, run_at, idempotency_key FROM apalis.jobs WHERE job_type = $1 ORDER BY run_at",
        )
        .bind(queue)
        .fetch_all(&self.pool)
        .await
        .expect("read jobs")
    }

    /// A registered user with a unique email.
    pub async fn new_user(&self) -> TestUser {
        self.register(&format!("user-{}@example.com", Uuid::new_v4().simple())).await
    }

    /// Another web process on the same database, as when several run behind a load balancer.
    pub async fn second_instance(&self) -> SecondInstance {
        self.second_instance_with(|_| {}).await
    }

    /// [`Self::second_instance`] with its settings changed by `change`.
    pub async fn second_instance_with(&self, change: impl FnOnce(&mut Settings)) -> SecondInstance {
        let mut settings = self.settings.clone();
        change(&mut settings);
        let pool = todo::db::connect(&settings.database).await.expect("second pool");
        let app = Application::build_with_pool(settings, pool).expect("build app");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        SecondInstance { client: self.client.for_other_app(&address), address }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }
}

/// `mib` MiB of spaces, gzipped: a few kilobytes per megabyte, a compression bomb.
pub fn gzip_of_spaces(mib: usize) -> Vec<u8> {
    use std::io::Write;
    let mut gzip =
        Command::new("gzip").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = gzip.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let block = vec![b' '; 1 << 20];
        for _ in 0..mib {
            stdin.write_all(&block).unwrap();
        }
    });
    let output = gzip.wait_with_output().unwrap();
    writer.join().unwrap();
    output.stdout
}

/// A uniquely named database, dropped when the test ends (pass or fail).
pub struct TestDatabase {
    pub name: String,
    pub url: SecretString,
    admin: PgConnectOptions,
}

impl TestDatabase {
    pub async fn create(settings: &Settings) -> Self {
        let admin: PgConnectOptions =
            settings.database.url.expose_secret().parse().expect("test DATABASE_URL");
        let name = format!("todo_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin).await.expect(
            "cannot reach PostgreSQL for tests; start it or set DATABASE_URL to a server where databases can be created",
        );
        conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .expect("create test database");
        let url = admin_url_with_database(settings, &name);
        Self { name, url, admin }
    }
}

fn admin_url_with_database(settings: &Settings, name: &str) -> SecretString {
    let mut url =
        reqwest::Url::parse(settings.database.url.expose_secret()).expect("test DATABASE_URL is a URL");
    url.set_path(name);
    SecretString::from(url.to_string())
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop is synchronous; use a private runtime so this works whatever the test's runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect_with(&admin).await.map_err(std::io::Error::other)?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                )))
                .await
                .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// Asserts the response is a problem document with this status and code, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response.headers().get("content-type").cloned();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "problem documents use application/problem+json"
    );
    if status == 401 {
        assert_eq!(
            response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "every 401 names the scheme"
        );
    }
    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["type"], format!("urn:todo:problem:{code}"));
    assert!(body["title"].is_string() && body["detail"].is_string() && body["instance"].is_string());
    assert_eq!(body["request_id"].as_str(), request_id.as_deref(), "request id matches the header");
    body
}

pub struct SecondInstance {
    pub address: String,
    pub client: CheckedClient,
}

impl SecondInstance {
    pub async fn send_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, format!("{}{path}", self.address)).bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }
}

/// A worker process's queues running in this test process, as `todo-worker` runs them.
pub struct TestWorker {
    pub name: String,
    pub metrics_addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestWorker {
    /// Starts a worker over `settings` with its own pool, sized as the binary sizes it.
    pub async fn start(settings: Settings) -> Self {
        let pool = todo_worker::connect(&settings).await.expect("worker pool");
        let worker = todo_worker::Worker::build(pool, settings).await.expect("build worker");
        let (name, metrics_addr) = (worker.name().to_owned(), worker.metrics_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(worker.run(async move {
            let _ = stopped.await;
            Ok(())
        }));
        Self { name, metrics_addr, stop: Some(stop), handle }
    }

    /// Sends the shutdown signal and waits for the worker to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let finished = tokio::time::timeout(std::time::Duration::from_secs(30), &mut self.handle).await;
        finished.expect("worker stops within 30 s").expect("worker task did not panic")
    }

    /// Whether the worker is still running (a database outage must not end it).
    pub fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl TestApp {
    /// A worker on this app's database that sends mail to `smtp`.
    pub async fn spawn_worker(&self, smtp: &smtp_sink::SmtpSink) -> TestWorker {
        self.spawn_worker_with(smtp, |_| {}).await
    }

    pub async fn spawn_worker_with(
        &self,
        smtp: &smtp_sink::SmtpSink,
        customise: impl FnOnce(&mut Settings),
    ) -> TestWorker {
        let mut settings = self.settings.clone();
        settings.email.smtp_url = SecretString::from(smtp.url());
        customise(&mut settings);
        TestWorker::start(settings).await
    }

    /// Makes a queued job due now, as if its time had come.
    pub async fn make_due(&self, queue: &str) {
        sqlx::query("UPDATE apalis.jobs SET run_at = now() - interval '1 second' WHERE job_type = $1 AND status = 'Pending'")
            .bind(queue)
            .execute(&self.pool)
            .await
            .expect("move run_at");
    }

    /// The task's reminder delivery history.
    pub async fn reminders(&self, user: &TestUser, id: &str) -> Vec<serde_json::Value> {
        let response = self.get_as(&user.token, &format!("/api/v1/tasks/{id}/reminders")).await;
        assert_eq!(response.status(), 200, "reading reminders of {id}");
        let body: serde_json::Value = response.json().await.expect("history body");
        body["items"].as_array().expect("items").clone()
    }
}

impl TestApp {
    /// Moves every trashed task's trash time back 400 days, past any retention.
    pub async fn age_trash(&self) {
        sqlx::query(
            "UPDATE tasks SET deleted_at = deleted_at - interval '400 days' WHERE deleted_at IS NOT NULL",
        )
        .execute(&self.pool)
        .await
        .expect("age the trash");
    }

    /// Runs the maintenance job's purges, with this app's retention unless `retention` says.
    pub async fn purge(
        &self,
        retention: Option<todo::db::maintenance::Retention>,
    ) -> todo::db::maintenance::Purged {
        let retention = retention.unwrap_or_else(|| todo::db::maintenance::Retention::new(&self.settings));
        todo::db::maintenance::purge_expired(&self.pool, retention).await.expect("purge")
    }
}

/// Registers `email` on the web process at `base` (not the test app): its access token.
pub async fn register_at(base: &str, email: &str) -> String {
    let body = serde_json::json!({"email": email, "password": TEST_PASSWORD});
    let client = CheckedClient::for_app(base);
    let response = client.post(format!("{base}/api/v1/auth/register")).json(&body).send().await;
    let response = response.expect("register sent");
    assert_eq!(response.status(), 201, "registering {email}");
    let body: serde_json::Value = response.json().await.expect("token response");
    body["access_token"].as_str().expect("access_token").to_owned()
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The web binary on its own port, over the test app's database.
pub struct WebProcess {
    child: Child,
    pub address: String,
    pub port: u16,
}

impl WebProcess {
    pub async fn start(app: &TestApp, extra_env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(app, port, extra_env).await
    }

    /// Starts the binary on a given port, as a supervisor restarts a crashed process.
    pub async fn start_on(app: &TestApp, port: u16, extra_env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_todo"));
        command
            .arg("serve")
            .env("APP_ENV", "test")
            .env("DATABASE_URL", app.settings.database.url.expose_secret())
            .env("PORT", port.to_string())
            .env("APP__SERVER__HOST", "127.0.0.1")
            .env("APP__SERVER__WORKERS", "2")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let process = Self {
            child: command.spawn().expect("start the todo binary"),
            address: format!("http://127.0.0.1:{port}"),
            port,
        };
        let client = reqwest::Client::new();
        let health = format!("{}/health", process.address);
        eventually("the web process answers", Duration::from_secs(30), || {
            let request = client.get(&health).send();
            async move { request.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
        })
        .await;
        process
    }

    /// Peak resident memory so far, in MiB.
    pub fn peak_mib(&self) -> u64 {
        self.status_mib("VmHWM:")
    }

    /// Resident memory now, in MiB.
    #[allow(dead_code)] // The overload benchmark samples it; the tests read the peak.
    pub fn rss_mib(&self) -> u64 {
        self.status_mib("VmRSS:")
    }

    fn status_mib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).expect("a /proc status field");
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024
    }
}

impl WebProcess {
    /// SIGKILL: no shutdown, no draining, as when the machine or the OOM killer takes it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WebProcess {
    /// SIGTERM, as a supervisor stops a process, then waits up to `wait` for it to exit.
    pub fn terminate(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM");
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait on the web process") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for WebProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
