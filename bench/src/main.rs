//! The load benchmark. `bench/run` builds release binaries and runs this; see `bench/README.md`.
//!
//! It creates a fresh database, runs the Procfile's `release`, `web` and `worker` commands over
//! it, seeds with `COPY`, drives each scenario at fixed concurrency for a fixed time with real
//! JWTs, measures pgbench's single-row INSERT and primary-key SELECT against the same server in
//! the same run, and prints a Markdown report (JSON under `target/bench/`).

mod amplification;
mod ceiling;
mod load;
mod pgbench;
mod processes;
mod report;
mod seed;
mod streams;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

use load::MakeRequest;
use pgbench::Baseline;
use processes::{MemoryWatch, Process};
use report::{Report, Scenario};
use seed::Size;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The benchmark's database, dropped and created again by each run: `BENCH_DATABASE` names
/// another, so two runs on one server do not drop each other's.
fn database() -> String {
    std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "todo_bench".to_owned())
}
const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Full,
    Short,
    /// CI: a tiny seed and one-second scenarios against the debug build, to prove the harness
    /// and the report work; its timings mean nothing.
    Smoke,
}

struct Plan {
    size: Size,
    duration: Duration,
    connections: usize,
    many_connections: usize,
    reminders: usize,
    /// Users given a write at once, so each has a live actor, to weigh the web process with them.
    actors: usize,
    /// Event streams open during the streams scenario, one per user.
    streams: usize,
    only: Option<String>,
    /// `--ceiling`: the single-node ceiling (one web process, then two) instead of the scenarios.
    ceiling: bool,
}

impl Plan {
    fn new(mode: Mode) -> Self {
        let (size, seconds, many, reminders, actors) = match mode {
            Mode::Full => {
                (Size { users: 1000, big_user_tasks: 50_000, tasks: 1_000_000 }, 10, 1000, 10_000, 10_000)
            }
            Mode::Short => {
                (Size { users: 1000, big_user_tasks: 50_000, tasks: 100_000 }, 4, 1000, 2_000, 10_000)
            }
            Mode::Smoke => (Size { users: 20, big_user_tasks: 500, tasks: 1_000 }, 1, 50, 50, 100),
        };
        Self {
            size,
            duration: Duration::from_secs(seconds),
            // CI runs the smoke mode beside other checks, each with its own server and pools, on a
            // PostgreSQL that allows 100 connections: 64 pgbench clients there could exhaust them
            // and fail whichever check asked next.
            connections: if mode == Mode::Smoke { 8 } else { 64 },
            many_connections: many,
            reminders,
            actors,
            streams: size.users,
            only: None,
            ceiling: false,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match () {
        _ if args.iter().any(|a| a == "--smoke") => Mode::Smoke,
        _ if args.iter().any(|a| a == "--short") => Mode::Short,
        _ => Mode::Full,
    };
    let profile = if args.iter().any(|a| a == "--debug") { "debug" } else { "release" };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?.to_path_buf();
    let mut plan = Plan::new(mode);
    plan.only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    plan.ceiling = args.iter().any(|a| a == "--ceiling");
    let service = Service::start(&root, profile, &plan).await?;
    if plan.ceiling {
        let result = run_ceiling(&service, &plan, &root).await;
        service.stop().await;
        return result;
    }
    let result = run_scenarios(&service, &plan).await;
    service.stop().await;
    let mut report = result?;
    report.mode = format!("{mode:?}").to_lowercase();
    report.profile = profile.to_owned();
    report.commit = commit(&root);
    println!("{}", report.markdown());
    let dir = root.join("target/bench");
    report.save(&dir)?;
    println!("JSON: {}", dir.join("report.json").display());
    Ok(())
}

/// The service under test: database, processes, tokens and seeded ids.
struct Service {
    base: String,
    url: String,
    secret: String,
    web: Arc<Process>,
    /// A second web process over the same database, for the ceiling with two.
    second_web: Option<(String, Process)>,
    worker: Arc<Process>,
    smtp: smtp_sink::SmtpSink,
    tokens: Vec<String>,
}

impl Service {
    async fn start(root: &Path, profile: &str, plan: &Plan) -> anyhow::Result<Self> {
        let database = database();
        let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
        let mut admin = sqlx::PgConnection::connect(ADMIN_URL).await.context("connecting to PostgreSQL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")))
            .execute(&mut admin)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&mut admin).await?;
        // Function call counts for the write amplification, in every session of this database.
        sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {database} SET track_functions = 'all'")))
            .execute(&mut admin)
            .await?;

        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let smtp = smtp_sink::SmtpSink::start().await?;
        let env: Vec<(String, String)> = [
            ("DATABASE_URL", url.clone()),
            ("JWT_SECRET", secret.clone()),
            ("PORT", port.to_string()),
            ("SMTP_URL", smtp.url()),
            ("PUBLIC_URL", format!("http://127.0.0.1:{port}")),
            ("APP__SERVER__HOST", "127.0.0.1".into()),
            ("APP__WORKER__METRICS_PORT", "0".into()),
            // A load test is many requests from one address and a few users: measure the
            // service, not its limits (which the test suite covers).
            ("APP__RATE_LIMIT__ENABLED", "false".into()),
            ("APP__TASKS__MAX_PER_USER", "10000000".into()),
            ("APP__EMAIL__CAPS__PER_ACCOUNT_PER_HOUR", "0".into()),
            ("APP__EMAIL__CAPS__PER_RECIPIENT_PER_HOUR", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // BENCH_BIN_DIR runs another build's binaries (say, an older commit's) under this
        // harness, so a before/after table comes from one run of one load generator.
        let bin_dir = std::env::var("BENCH_BIN_DIR").unwrap_or_else(|_| format!("./target/{profile}/"));
        let procfile = processes::procfile(root, &bin_dir)?;
        let command =
            |kind: &str| procfile.get(kind).cloned().with_context(|| format!("no `{kind}` in the Procfile"));
        Process::run(root, &command("release")?, &env).await?;
        let web = Arc::new(Process::start(root, &command("web")?, &env)?);
        let worker = Arc::new(Process::start(root, &command("worker")?, &env)?);
        let base = format!("http://127.0.0.1:{port}");
        wait_for(&format!("{base}/ready")).await?;
        let second_web = match plan.ceiling {
            true => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                let mut env = env.clone();
                env.retain(|(k, _)| k != "PORT");
                env.push(("PORT".into(), port.to_string()));
                let process = Process::start(root, &command("web")?, &env)?;
                let second = format!("http://127.0.0.1:{port}");
                wait_for(&format!("{second}/ready")).await?;
                Some((second, process))
            }
            false => None,
        };

        // User 0 registers over HTTP: its argon2 hash, made by the service, is every user's.
        let client = reqwest::Client::new();
        let registered = client
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": seed::user_email(0), "password": PASSWORD}))
            .send()
            .await?;
        if registered.status() != 201 {
            bail!("registering the seed user: {}", registered.status());
        }
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
            .bind(seed::user_email(0))
            .fetch_one(&mut conn)
            .await?;
        let started = std::time::Instant::now();
        let big_user = seed::seed(&url, plan.size, &hash).await?;
        eprintln!(
            "seeded {} users and {} tasks in {:.1?}",
            plan.size.users,
            plan.size.tasks,
            started.elapsed()
        );
        let key = EncodingKey::from_secret(secret.as_bytes());
        let tokens = (0..plan.size.users)
            .map(|u| token(&key, if u == 0 { big_user } else { seed::user_id(u) }))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { base, url, secret, web, second_web, worker, smtp, tokens })
    }

    async fn stop(self) {
        drop(self.smtp);
        if let Some((_, web)) = self.second_web {
            web.stop().await;
        }
        if let Ok(web) = Arc::try_unwrap(self.web) {
            web.stop().await;
        }
        if let Ok(worker) = Arc::try_unwrap(self.worker) {
            worker.stop().await;
        }
    }
}

/// A token as the service issues them: HS256 with `sub`, `iat`, `exp` and `jti`.
fn token(key: &EncodingKey, user: Uuid) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": user, "iat": now, "exp": now + 4 * 3600, "jti": Uuid::new_v4()});
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)?)
}

async fn wait_for(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer 200 within 30 s")
}

fn commit(root: &Path) -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

async fn run_scenarios(service: &Service, plan: &Plan) -> anyhow::Result<Report> {
    let watch = MemoryWatch::start(service.web.clone(), service.worker.clone());
    let size = plan.size;
    let (n, d) = (plan.connections, plan.duration);
    let insert = pgbench::insert(&service.url, n, d, size.users).await?;
    let (plain, notifying) = pgbench::plain_insert(&service.url, n, d, size.users).await?;
    let select = pgbench::select(&service.url, n, d, size.big_user_tasks).await?;
    let amplification = write_amplification(service, plan).await?;
    eprintln!("{}", amplification.markdown());
    watch.take();
    let base = Arc::new(service.base.clone());
    let tokens = Arc::new(service.tokens.clone());
    let users = size.users;
    let per_user = size.tasks_per_user();
    let big = size.big_user_tasks;
    let cursor = end_cursor(service).await?;
    let mut scenarios = Vec::new();
    // `--only <words>`: just the scenarios whose name contains them, for working on one.
    let only = plan.only.clone();
    let mut measure =
        async |name: &str, connections: usize, baseline: Option<(&str, Baseline)>, make: MakeRequest| {
            if only.as_deref().is_some_and(|only| !name.contains(only)) {
                return anyhow::Ok(());
            }
            let measured = load::run(connections, d, make).await?;
            let (web, worker) = watch.take();
            let scenario = scenario(name, connections, &measured, baseline, web, worker);
            eprintln!("{name}: {:.0}/s, p99 {:.2} ms", scenario.per_second, scenario.p99_ms);
            scenarios.push(scenario);
            anyhow::Ok(())
        };
    // A user other than the big one, so 64 connections spread over many users' actors.
    let other = move |rng: &mut fastrand::Rng| 1 + rng.usize(..users - 1);

    let (b, t) = (base.clone(), tokens.clone());
    measure(
        "create",
        n,
        Some(("INSERT", insert)),
        Arc::new(move |c, rng| {
            c.post(format!("{b}/api/v1/tasks"))
                .bearer_auth(&t[other(rng)])
                .json(&json!({"title": "bench create"}))
        }),
    )
    .await?;
    let (b, t) = (base.clone(), tokens.clone());
    measure(
        "get by id",
        n,
        Some(("PK SELECT", select)),
        Arc::new(move |c, rng| {
            c.get(format!("{b}/api/v1/tasks/{}", seed::task_id(0, rng.usize(..big)))).bearer_auth(&t[0])
        }),
    )
    .await?;
    let (b, t) = (base.clone(), tokens.clone());
    measure(
        "patch",
        n,
        Some(("INSERT", insert)),
        Arc::new(move |c, rng| {
            let user = other(rng);
            let task = seed::task_id(user, rng.usize(..per_user));
            c.patch(format!("{b}/api/v1/tasks/{task}"))
                .bearer_auth(&t[user])
                .json(&json!({"priority": "high", "title": format!("patched {}", rng.u32(..))}))
        }),
    )
    .await?;
    let (b, t) = (base.clone(), tokens.clone());
    measure(
        "toggle",
        n,
        Some(("INSERT", insert)),
        Arc::new(move |c, rng| {
            let user = other(rng);
            c.post(format!("{b}/api/v1/tasks/{}/toggle", seed::task_id(user, rng.usize(..per_user))))
                .bearer_auth(&t[user])
        }),
    )
    .await?;
    let (b, t) = (base.clone(), tokens.clone());
    measure(
        "first list page of 50 (50,000 tasks)",
        n,
        Some(("PK SELECT", select)),
        Arc::new(move |c, _| c.get(format!("{b}/api/v1/tasks?limit=50")).bearer_auth(&t[0])),
    )
    .await?;
    let (b, t, cur) = (base.clone(), tokens.clone(), Arc::new(cursor));
    measure(
        "cursor page at the end of 50,000",
        n,
        Some(("PK SELECT", select)),
        Arc::new(move |c, _| c.get(format!("{b}/api/v1/tasks?limit=50&cursor={cur}")).bearer_auth(&t[0])),
    )
    .await?;
    let (b, t) = (base.clone(), tokens.clone());
    measure(
        "full-text search (50,000 tasks)",
        n,
        Some(("PK SELECT", select)),
        Arc::new(move |c, rng| {
            c.get(format!("{b}/api/v1/tasks?q={}", seed::rare_word(rng.usize(..997)))).bearer_auth(&t[0])
        }),
    )
    .await?;
    let b = base.clone();
    measure(
        "login (argon2id, 19 MiB)",
        n,
        Some(("PK SELECT", select)),
        Arc::new(move |c, rng| {
            let user = rng.usize(..users);
            c.post(format!("{b}/api/v1/auth/login"))
                .json(&json!({"email": seed::user_email(user), "password": PASSWORD}))
        }),
    )
    .await?;
    let mixed = |base: Arc<String>, tokens: Arc<Vec<String>>| -> MakeRequest {
        Arc::new(move |c, rng| {
            let user = other(rng);
            let (b, token) = (&base, &tokens[user]);
            let task = seed::task_id(user, rng.usize(..per_user));
            match rng.u8(..100) {
                0..35 => c.get(format!("{b}/api/v1/tasks/{task}")).bearer_auth(token),
                35..70 => c.get(format!("{b}/api/v1/tasks?limit=50")).bearer_auth(token),
                70..80 => {
                    c.post(format!("{b}/api/v1/tasks")).bearer_auth(token).json(&json!({"title": "mixed"}))
                }
                80..88 => c
                    .patch(format!("{b}/api/v1/tasks/{task}"))
                    .bearer_auth(token)
                    .json(&json!({"priority": "low"})),
                88..95 => c.post(format!("{b}/api/v1/tasks/{task}/toggle")).bearer_auth(token),
                _ => c.get(format!("{b}/api/v1/tasks?q=bravo")).bearer_auth(token),
            }
        })
    };
    measure(
        "mixed 70/25/5 over all users",
        n,
        Some(("PK SELECT", select)),
        mixed(base.clone(), tokens.clone()),
    )
    .await?;
    measure(
        "mixed 70/25/5, many connections",
        plan.many_connections,
        Some(("PK SELECT", select)),
        mixed(base.clone(), tokens.clone()),
    )
    .await?;

    // The sync issue's scenario: a stream per user open on the web process during mixed load.
    let open = streams::Streams::open(&service.base, &tokens[..plan.streams.min(tokens.len())]).await?;
    watch.take();
    measure(
        "mixed 70/25/5 with an event stream open per user",
        n,
        Some(("PK SELECT", select)),
        mixed(base.clone(), tokens.clone()),
    )
    .await?;
    let delivery = open.stop().await;
    let (streams_web, _) = watch.take();
    let at = |q: f64| delivery.latencies.value_at_quantile(q) as f64 / 1000.0;
    let mut notes = BTreeMap::new();
    notes.insert(
        "event streams".to_owned(),
        format!(
            "{} streams open through the mixed load: {} events, delivery from the write's transaction to the event p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} streams dropped; web peak RSS {streams_web} MiB",
            delivery.opened,
            delivery.events,
            at(0.5),
            at(0.99),
            delivery.latencies.max() as f64 / 1000.0,
            delivery.dropped,
        ),
    );
    let finish = |mut scenarios: Vec<Scenario>, mut notes: BTreeMap<String, String>| {
        // Writes are compared with both INSERTs: the real schema's (`baseline`) and the plain table's.
        for s in scenarios.iter_mut().filter(|s| s.baseline.as_deref() == Some("INSERT")) {
            s.plain_baseline_per_second = Some(plain.per_second);
            s.plain_ratio = Some(s.per_second / plain.per_second);
        }
        notes.insert(
            "baselines".to_owned(),
            format!(
                "pgbench -M prepared, {n} clients, {} s: INSERT into the real `tasks` {:.0}/s ({:.2} ms mean, {:.2}× the plain table's), into a plain table (PK only) {:.0}/s ({:.2} ms mean), the plain INSERT with a NOTIFY in its transaction {:.0}/s ({:.2}× without), PK SELECT {:.0}/s ({:.2} ms mean)",
                d.as_secs(),
                insert.per_second,
                insert.mean_latency_ms,
                insert.per_second / plain.per_second,
                plain.per_second,
                plain.mean_latency_ms,
                notifying.per_second,
                notifying.per_second / plain.per_second,
                select.per_second,
                select.mean_latency_ms
            ),
        );
        let mut report = report(size, scenarios, notes);
        report.baselines = BTreeMap::from([
            ("insert".to_owned(), insert),
            ("plain_insert_with_notify".to_owned(), notifying),
            ("plain_insert".to_owned(), plain),
            ("pk_select".to_owned(), select),
        ]);
        report.write_amplification = Some(amplification);
        report
    };
    // `--only bulk` or `--only reminders` also runs that measure alone (after the baselines), so
    // a before/after of the reminder path needs no full run.
    let wanted = |name: &str| plan.only.as_deref().is_none_or(|only| name.contains(only));
    if wanted("bulk") {
        notes.insert("bulk".to_owned(), bulk_against_singles(service).await?);
    }
    if wanted("reminders") {
        notes.insert("reminders".to_owned(), reminders(service, plan.reminders).await?);
    }
    if plan.only.is_some() {
        return Ok(finish(scenarios, notes));
    }
    let (web, worker) = watch.take();
    notes.insert("live actors".to_owned(), live_actors(service, plan.actors, &watch).await?);
    notes.insert(
        "peak RSS during bulk and reminders".to_owned(),
        format!("web {web} MiB, worker {worker} MiB"),
    );
    Ok(finish(scenarios, notes))
}

/// Write amplification of one create through the service and of pgbench's real-schema INSERT,
/// one write at a time so that nothing else in this database writes meanwhile.
async fn write_amplification(service: &Service, plan: &Plan) -> anyhow::Result<amplification::Amplification> {
    let writes = if plan.duration.as_secs() <= 1 { 50 } else { 500 };
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
    let users = plan.size.users.saturating_sub(1).max(1);
    let service_create = amplification::measure(&service.url, writes, |n| {
        let (client, token) = (client.clone(), service.tokens[1 + n % users].clone());
        let url = format!("{}/api/v1/tasks", service.base);
        async move {
            let response =
                client.post(url).bearer_auth(token).json(&json!({"title": "bench create"})).send().await?;
            anyhow::ensure!(response.status() == 201, "a create answered {}", response.status());
            let body: Value = response.json().await?;
            Ok(body["id"].as_str().context("a create without an id")?.parse()?)
        }
    })
    .await
    .context("measuring a service create's write amplification")?;
    let pgbench_insert = amplification::pgbench_insert(&service.url, writes, plan.size.users)
        .await
        .context("measuring pgbench's INSERT's write amplification")?;
    Ok(amplification::Amplification { service_create, pgbench_insert })
}

/// The ceiling of one node with one web process, then with two; printed, and saved as JSON.
async fn run_ceiling(service: &Service, plan: &Plan, root: &Path) -> anyhow::Result<()> {
    let mut target = ceiling::Target {
        bases: vec![service.base.clone()],
        tokens: Arc::new(service.tokens.clone()),
        tasks_per_user: plan.size.tasks_per_user(),
        smtp: &service.smtp,
        streams: (plan.size.users / 10).max(2),
    };
    let one = ceiling::run(&target, plan.duration).await?;
    if let Some((second, _)) = &service.second_web {
        target.bases.push(second.clone());
    }
    let two = ceiling::run(&target, plan.duration).await?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("## Ceiling of one node ({cores} cores, commit {})\n", commit(root));
    println!("{}", ceiling::markdown("One web process, one worker", &one));
    println!("{}", ceiling::markdown("Two web processes, one worker", &two));
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let json = json!({"cores": cores, "commit": commit(root), "seeded_users": plan.size.users,
        "seeded_tasks": plan.size.tasks, "p99_limit_ms": ceiling::P99_LIMIT_MS,
        "one_web": one, "two_webs": two});
    std::fs::write(dir.join("ceiling.json"), serde_json::to_vec_pretty(&json)?)?;
    println!("JSON: {}", dir.join("ceiling.json").display());
    Ok(())
}

fn report(size: Size, scenarios: Vec<Scenario>, notes: BTreeMap<String, String>) -> Report {
    Report {
        mode: String::new(),
        profile: String::new(),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        commit: String::new(),
        seeded_users: size.users,
        seeded_tasks: size.tasks,
        scenarios,
        notes,
        baselines: BTreeMap::new(),
        write_amplification: None,
    }
}

fn scenario(
    name: &str,
    connections: usize,
    measured: &load::Measured,
    baseline: Option<(&str, Baseline)>,
    web: u64,
    worker: u64,
) -> Scenario {
    let ms = |q: f64| measured.latencies.value_at_quantile(q) as f64 / 1000.0;
    let per_second = measured.requests as f64 / measured.elapsed.as_secs_f64();
    Scenario {
        name: name.to_owned(),
        connections,
        requests: measured.requests,
        per_second,
        p50_ms: ms(0.50),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        max_ms: measured.latencies.max() as f64 / 1000.0,
        errors: measured.errors.clone(),
        baseline: baseline.map(|(name, _)| name.to_owned()),
        baseline_per_second: baseline.map(|(_, b)| b.per_second),
        ratio: baseline.map(|(_, b)| per_second / b.per_second),
        plain_baseline_per_second: None,
        plain_ratio: None,
        web_peak_rss_mib: web,
        worker_peak_rss_mib: worker,
    }
}

/// A cursor for the last page of the big user's 50,000 tasks, found by paging there once.
async fn end_cursor(service: &Service) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let mut url = format!("{}/api/v1/tasks?limit=100", service.base);
    let mut last = String::new();
    loop {
        let page: Value = client.get(&url).bearer_auth(&service.tokens[0]).send().await?.json().await?;
        match page["next_cursor"].as_str() {
            Some(next) => {
                last = next.to_owned();
                url = format!("{}/api/v1/tasks?limit=100&cursor={next}", service.base);
            }
            None => break,
        }
    }
    // The cursor of the second-to-last page of 100, used with limit=50: one of the last pages.
    let page: Value = client
        .get(format!("{}/api/v1/tasks?limit=50&cursor={last}", service.base))
        .bearer_auth(&service.tokens[0])
        .send()
        .await?
        .json()
        .await?;
    Ok(page["next_cursor"].as_str().map_or(last, str::to_owned))
}

/// `count` more users (seeded by COPY) each write once within the actors' idle timeout, so as
/// many actors are alive at once; the web process's resident memory then.
async fn live_actors(service: &Service, count: usize, watch: &MemoryWatch) -> anyhow::Result<String> {
    let mut conn = sqlx::PgConnection::connect(&service.url).await?;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind(seed::user_email(0))
        .fetch_one(&mut conn)
        .await?;
    let ids: Vec<Uuid> = (0..count).map(|n| Uuid::from_u128((0xc0u128 << 120) | n as u128)).collect();
    let rows: String = ids.iter().map(|id| format!("{id}\tactor-{id}@example.com\t{hash}\tUTC\n")).collect();
    let mut copy = conn.copy_in_raw("COPY users (id, email, password_hash, timezone) FROM STDIN").await?;
    copy.send(rows.as_bytes()).await?;
    copy.finish().await?;
    let key = EncodingKey::from_secret(service.secret.as_bytes());
    let tokens = Arc::new(ids.iter().map(|id| token(&key, *id)).collect::<anyhow::Result<Vec<_>>>()?);
    let base = Arc::new(service.base.clone());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    watch.take();
    let started = std::time::Instant::now();
    let mut loops = Vec::new();
    for _ in 0..64 {
        let (tokens, base, next) = (tokens.clone(), base.clone(), next.clone());
        loops.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(token) = tokens.get(n) else { return anyhow::Ok(()) };
                let response = client
                    .post(format!("{base}/api/v1/tasks"))
                    .bearer_auth(token)
                    .json(&json!({"title": "actor"}))
                    .send()
                    .await?;
                anyhow::ensure!(response.status() == 201, "a write answered {}", response.status());
            }
        }));
    }
    for handle in loops {
        handle.await??;
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (web, _) = watch.take();
    Ok(format!(
        "{count} users each wrote once in {:.1} s (all their actors alive, idle timeout 60 s): web RSS peak {web} MiB",
        elapsed.as_secs_f64()
    ))
}

/// 100 creates as one bulk request against 100 single creates, over one connection.
async fn bulk_against_singles(service: &Service) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
    let token = &service.tokens[1];
    let (mut singles, mut bulks) = (Vec::new(), Vec::new());
    for round in 0..10 {
        let started = std::time::Instant::now();
        for i in 0..100 {
            let body = json!({"title": format!("single {round} {i}")});
            client
                .post(format!("{}/api/v1/tasks", service.base))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?;
        }
        singles.push(started.elapsed());
        let operations: Vec<Value> = (0..100)
            .map(|i| json!({"op": "create", "task": {"title": format!("bulk {round} {i}")}}))
            .collect();
        let started = std::time::Instant::now();
        let response = client
            .post(format!("{}/api/v1/tasks/bulk", service.base))
            .bearer_auth(token)
            .json(&json!({"operations": operations}))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "bulk answered {}", response.status());
        bulks.push(started.elapsed());
    }
    singles.sort();
    bulks.sort();
    let (single, bulk) = (singles[singles.len() / 2], bulks[bulks.len() / 2]);
    Ok(format!(
        "100 creates over one connection, median of 10: 100 × POST /tasks {:.1} ms, one POST /tasks/bulk {:.1} ms ({:.1}× faster)",
        single.as_secs_f64() * 1e3,
        bulk.as_secs_f64() * 1e3,
        single.as_secs_f64() / bulk.as_secs_f64()
    ))
}

/// The workers issue's scenario: `count` reminders all due at one instant, created through the
/// API (bulk), delivered by the worker to a real SMTP sink; how late each arrives.
async fn reminders(service: &Service, count: usize) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let due_at = chrono::Utc::now() + chrono::Duration::seconds(8);
    let remind = due_at.to_rfc3339();
    let task_due = (due_at + chrono::Duration::hours(1)).to_rfc3339();
    let before = service.smtp.count();
    let users = service.tokens.len().max(2);
    for chunk in 0..count.div_ceil(100) {
        let ops: Vec<Value> = (0..100.min(count - chunk * 100))
            .map(|i| json!({"op": "create", "task": {"title": format!("remind {chunk} {i}"), "due_at": task_due, "reminder_at": remind}}))
            .collect();
        let token = &service.tokens[1 + chunk % (users - 1)];
        let response = client
            .post(format!("{}/api/v1/tasks/bulk", service.base))
            .bearer_auth(token)
            .json(&json!({"operations": ops}))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "creating reminders: {}", response.status());
    }
    let delivered = service.smtp.wait_for_count(before + count, Duration::from_secs(300)).await - before;
    // A figure over missing mail would read as a fast worker: a run that lost any fails instead.
    anyhow::ensure!(
        delivered == count,
        "only {delivered} of {count} reminders arrived; see the worker's log"
    );
    let due = SystemTime::from(due_at);
    let mut lateness: Vec<f64> = service
        .smtp
        .drain()
        .iter()
        .filter_map(|m| m.received_at.duration_since(due).ok())
        .map(|d| d.as_secs_f64())
        .collect();
    lateness.sort_by(f64::total_cmp);
    let at = |q: f64| {
        lateness.get(((lateness.len() as f64 * q) as usize).min(lateness.len().saturating_sub(1))).copied()
    };
    Ok(format!(
        "{delivered} of {count} delivered; lateness after the due instant p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        at(0.5).unwrap_or(f64::NAN),
        at(0.99).unwrap_or(f64::NAN),
        lateness.last().copied().unwrap_or(f64::NAN)
    ))
}
