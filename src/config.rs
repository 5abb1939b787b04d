//! Layered settings shared by the web and worker processes.
//!
//! Order, last wins: `config/default.toml`, `config/{APP_ENV}.toml`, `APP__SECTION__KEY`
//! environment variables, then the conventional names Procfile platforms set
//! (`DATABASE_URL`, `PORT`, `JWT_SECRET`, `SMTP_URL`, `MAIL_FROM`, `PUBLIC_URL`, `DKIM_*`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The secret shipped in `config/default.toml`; production refuses to run with it.
const DEVELOPMENT_JWT_SECRET: &str = "development-only-secret-do-not-use-in-production";
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Test,
    Production,
}

impl Environment {
    fn from_env() -> anyhow::Result<Self> {
        match std::env::var("APP_ENV").as_deref() {
            Err(_) | Ok("development") => Ok(Self::Development),
            Ok("test") => Ok(Self::Test),
            Ok("production") => Ok(Self::Production),
            Ok(other) => {
                bail!("APP_ENV={other:?} is not one of development, test, production")
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub actors: ActorSettings,
    pub tasks: TaskSettings,
    pub worker: WorkerSettings,
    pub email: EmailSettings,
    pub telemetry: TelemetrySettings,
    pub rate_limit: RateLimitSettings,
    pub sync: SyncSettings,
    pub webhooks: WebhookSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Largest accepted request body; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Actix worker threads; 0 means one per core.
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    /// A request body must arrive in full within this long, so a client trickling bytes cannot
    /// hold a connection and its buffer open.
    pub body_timeout_secs: u64,
    /// A request's headers must arrive within this long, or the connection gets a 408.
    pub header_timeout_secs: u64,
    /// Open connections per actix worker thread; further ones wait in the listen backlog.
    pub max_connections_per_worker: usize,
    /// `Strict-Transport-Security` max-age on every response; 0 sends none. Set it only when
    /// clients reach the service over TLS (a terminating proxy counts).
    pub hsts_max_age_secs: u64,
    /// Browser origins allowed to call the API (CORS), such as `https://app.example.com`.
    /// Empty allows none; credentials (cookies) are never allowed, since the API uses bearer tokens.
    pub cors_allowed_origins: Vec<String>,
    /// The origin links in emails point at, such as `https://todo.example.com` (`PUBLIC_URL`).
    /// Empty outside production means the local address, `http://{host}:{port}`; a production
    /// worker refuses to start without it. Read it through [`Settings::public_url`].
    pub public_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// Server-side cap on any one statement, so a bad query cannot pin a connection.
    pub statement_timeout_ms: u64,
    /// Run migrations when the web process starts.
    pub migrate_on_start: bool,
    /// Create the database named in the URL when the server has no such database.
    pub create_if_missing: bool,
    /// Streaming replicas that may serve reads (`DATABASE_READ_URL`, comma-separated). Empty:
    /// every read goes to the primary.
    #[serde(default)]
    pub read_urls: Vec<SecretString>,
    /// Connections each replica's pool may hold.
    pub replica_max_connections: u32,
    /// How far (in WAL bytes) a replica may fall behind the primary and stay in rotation.
    pub replica_max_lag_bytes: u64,
    /// How often each web process checks its replicas' replay position and health.
    pub replica_check_ms: u64,
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_secs(self.acquire_timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: SecretString,
    pub token_ttl_secs: u64,
    pub leeway_secs: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Threads computing password hashes; each holds `argon2_memory_kib`. 0 means one per core.
    pub max_concurrent_hashes: usize,
    /// Logins and registrations waiting for a hashing slot; beyond this they get a 503.
    pub max_queued_hashes: usize,
    /// Tokens each web process remembers as good (see `web::auth::cache`); 0 asks the database
    /// on every request.
    pub token_cache_entries: usize,
    pub external: ExternalIssuerSettings,
}

/// Tokens minted by another auth server (for example Better Auth) with a shared secret.
#[derive(Debug, Clone, Deserialize)]
pub struct ExternalIssuerSettings {
    pub enabled: bool,
    pub secret: SecretString,
    /// Required `iss` claim; empty means not checked.
    pub issuer: String,
    /// Required `aud` claim; empty means not checked.
    pub audience: String,
    /// How long a deleted external account is remembered, so that the issuer's tokens minted
    /// before the deletion cannot bring it back. Keep it above the issuer's token lifetime.
    pub deleted_memory_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActorSettings {
    pub idle_timeout_secs: u64,
    pub mailbox_capacity: usize,
    pub send_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskSettings {
    pub trash_retention_days: u32,
    pub idempotency_ttl_hours: u32,
    /// Tasks one account may hold, trashed ones included; creating more is a 409.
    pub max_per_user: u32,
    /// A filtered list counts its matches exactly up to this many; past it, `total` is the
    /// planner's estimate and `total_is_exact` is false.
    pub list_exact_total_up_to: u32,
    /// A search by relevance ranks this many of its newest matches; the older ones follow,
    /// newest first.
    pub search_ranked_matches: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    /// How often a worker looks for due jobs; future jobs are found only by polling.
    pub poll_interval_ms: u64,
    /// How often maintenance (purging expired rows) is scheduled.
    pub maintenance_interval_secs: u64,
    /// Reminder emails sent at once by one worker process.
    pub reminder_concurrency: usize,
    /// Next occurrences created at once by one worker process.
    pub recurrence_concurrency: usize,
    /// Webhook endpoints one worker process sends to at once; each gets one message at a time.
    pub webhook_concurrency: usize,
    /// Attempts a job gets before it stays failed.
    pub max_attempts: u32,
    /// The first retry's delay; each later one doubles, with jitter, up to `retry_max_secs`.
    pub retry_base_ms: u64,
    pub retry_max_secs: u64,
    /// How often a worker tells the queue it is alive.
    pub heartbeat_secs: u64,
    /// A job held by a worker silent this long is handed to another.
    pub orphan_after_secs: u64,
    /// Where the worker serves `/metrics` and `/health`; port 0 picks a free one.
    pub metrics_host: String,
    pub metrics_port: u16,
}

impl WorkerSettings {
    /// Missed heartbeats before a worker counts as dead, rounded up so the window is at least
    /// `orphan_after_secs` and never less than two beats (one late beat is not a death).
    pub fn missed_heartbeats(&self) -> usize {
        let beat = self.heartbeat_secs.max(1);
        usize::try_from(self.orphan_after_secs.div_ceil(beat).max(2)).unwrap_or(2)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailSettings {
    /// `smtp://` (plain or `?tls=required` for STARTTLS) or `smtps://`. Empty outside production
    /// means "write .eml files to `outbox_dir`"; production refuses to start the worker.
    pub smtp_url: SecretString,
    pub from: String,
    /// Relative paths are resolved against the worker's working directory.
    pub outbox_dir: String,
    /// Connect, command and response timeout for one SMTP exchange.
    pub timeout_secs: u64,
    pub pool_max_connections: u32,
    /// Verification emails one account may cause per hour (registration, email changes and
    /// resends together); past it, `429` with `Retry-After`.
    pub verification_per_hour: u32,
    /// Verification emails one address may be sent per hour, whichever accounts asked (0: no
    /// cap): many accounts naming one address cannot make the service mail it repeatedly.
    pub verification_per_recipient_per_hour: u32,
    pub dkim: DkimSettings,
    pub caps: ReminderCaps,
}

impl EmailSettings {
    pub fn verification_limits(&self) -> VerificationLimits {
        VerificationLimits {
            per_account: self.verification_per_hour,
            per_recipient: self.verification_per_recipient_per_hour,
        }
    }
}

/// The hourly allowances of verification emails, per account and per address.
#[derive(Debug, Clone, Copy)]
pub struct VerificationLimits {
    pub per_account: u32,
    pub per_recipient: u32,
}

/// Reminder emails allowed per hour, beyond which reminders are recorded `skipped` with the
/// reason `rate_limited`: they bound what one account can make the service send, and what one
/// address can receive. 0 turns a cap off.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ReminderCaps {
    pub per_account_per_hour: u32,
    /// Counted over every account that sent to the address.
    pub per_recipient_per_hour: u32,
}

/// Which cap a reminder would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Account,
    Recipient,
}

impl Cap {
    pub const ALL: [Cap; 2] = [Cap::Account, Cap::Recipient];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Recipient => "recipient",
        }
    }
}

impl ReminderCaps {
    pub fn enabled(self) -> bool {
        self.per_account_per_hour > 0 || self.per_recipient_per_hour > 0
    }

    /// The cap one more reminder would break, given the sends of the last hour.
    pub fn exceeded(self, account_sends: i64, recipient_sends: i64) -> Option<Cap> {
        let full = |cap: u32, sends: i64| cap > 0 && sends >= i64::from(cap);
        if full(self.per_account_per_hour, account_sends) {
            Some(Cap::Account)
        } else if full(self.per_recipient_per_hour, recipient_sends) {
            Some(Cap::Recipient)
        } else {
            None
        }
    }
}

/// DKIM signing of every outgoing message (see `email::dkim`). All empty is off; partly set is
/// refused at start.
#[derive(Debug, Clone, Deserialize)]
pub struct DkimSettings {
    /// The `s=` tag: the key is published at `{selector}._domainkey.{domain}`.
    pub selector: String,
    /// The `d=` tag; align it with the `From` address's domain for DMARC.
    pub domain: String,
    /// The private key's PEM text (`DKIM_PRIVATE_KEY`), or …
    pub private_key: SecretString,
    /// … the path of a PEM file (`DKIM_PRIVATE_KEY_FILE`); not both.
    pub private_key_file: String,
}

/// Request limits, counted in each web process separately (see the README on sizing them).
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// One switch for all limits; `APP__RATE_LIMIT__ENABLED=false` for load tests.
    pub enabled: bool,
    /// Writes (every method but GET and HEAD) per user per minute.
    pub user_writes_per_minute: u32,
    pub user_reads_per_minute: u32,
    /// Requests to `/auth/*` per client address per minute (IPv6 by /64).
    pub auth_per_ip_per_minute: u32,
    /// Keys (users or addresses) tracked per limit; past it, new keys share one bucket.
    pub max_tracked_keys: usize,
}

/// The change feed and event streams.
/// Webhook delivery. The defaults follow the Standard Webhooks retry schedule; tests shorten it.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Lifts the SSRF guard (private, loopback, link-local and metadata targets) and the https
    /// rule of production. On in development, for receivers on the same machine.
    pub allow_private_targets: bool,
    /// One delivery's whole request, connect to last byte.
    pub timeout_secs: u64,
    /// The waits before the second, third… attempt (the first is immediate); after the last
    /// the message is given up. Each wait gets up to ±20 % jitter.
    pub retry_schedule_ms: Vec<u64>,
    /// The longest `Retry-After` (on 429 and 503) that is obeyed; longer ones are cut to this.
    pub retry_after_max_secs: u64,
    /// An endpoint failing every attempt this long is disabled and its owner emailed.
    pub disable_after_secs: u64,
    /// Messages one job sends before handing the endpoint to a fresh job, so a busy endpoint
    /// takes turns with the others.
    pub sends_per_job: usize,
    /// After a rotation, the old secret keeps signing this long.
    pub rotation_overlap_secs: u64,
    /// Delivered and given-up messages are kept this long in the delivery log.
    pub log_retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SyncSettings {
    /// How long a purged task's tombstone is kept. A client away longer must start again from 0.
    pub tombstone_retention_secs: u64,
    /// Open event streams per user in one web process (429 beyond).
    pub max_streams_per_user: usize,
    /// Open event streams in one web process (503 beyond).
    pub max_streams_per_process: usize,
    /// Events one stream may hold unsent; a client that leaves it full is dropped.
    pub stream_buffer_bytes: usize,
    /// How long a full stream buffer may wait for the client before it is dropped.
    pub slow_client_secs: u64,
    /// A comment is sent this often, so proxies keep an idle stream open.
    pub heartbeat_secs: u64,
    /// How long a ticket for `GET /events?ticket=` stays usable.
    pub ticket_ttl_secs: u64,
    /// Connections, apart from the request pool, that streams read the change feed over.
    pub read_connections: u32,
    /// How often a web process with streams open reads their users' newest change numbers: about
    /// the longest a change made by another process waits before its streams wake (this process's
    /// own writes wake them at once).
    pub poll_interval_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` takes precedence when set.
    pub filter: String,
}

impl Settings {
    /// Loads settings for `APP_ENV` from the config folder and the environment.
    pub fn load() -> anyhow::Result<Self> {
        Self::load_environment(Environment::from_env()?)
    }

    /// Loads settings for a given environment, ignoring `APP_ENV`. Tests use this.
    pub fn load_environment(environment: Environment) -> anyhow::Result<Self> {
        let dir = config_dir()?;
        let settings = Self::load_from(&dir, environment)?;
        settings.check()?;
        Ok(settings)
    }

    fn load_from(dir: &Path, environment: Environment) -> anyhow::Result<Self> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let built = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")))
            .add_source(
                config::File::from(dir.join(format!("{}.toml", environment.as_str()))).required(false),
            )
            .add_source(
                config::Environment::with_prefix("APP")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.cors_allowed_origins")
                    .with_list_parse_key("webhooks.retry_schedule_ms"),
            )
            .set_override("environment", environment.as_str())?
            .set_override_option("database.url", env("DATABASE_URL"))?
            .set_override_option(
                "database.read_urls",
                env("DATABASE_READ_URL").map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|u| !u.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                }),
            )?
            .set_override_option("server.port", env("PORT"))?
            .set_override_option("auth.jwt_secret", env("JWT_SECRET"))?
            .set_override_option("email.smtp_url", env("SMTP_URL"))?
            .set_override_option("email.from", env("MAIL_FROM"))?
            .set_override_option("server.public_url", env("PUBLIC_URL"))?
            .set_override_option("email.dkim.selector", env("DKIM_SELECTOR"))?
            .set_override_option("email.dkim.domain", env("DKIM_DOMAIN"))?
            .set_override_option("email.dkim.private_key", env("DKIM_PRIVATE_KEY"))?
            .set_override_option("email.dkim.private_key_file", env("DKIM_PRIVATE_KEY_FILE"))?
            .build()
            .with_context(|| format!("reading settings from {}", dir.display()))?;
        built
            .try_deserialize()
            .with_context(|| format!("invalid settings in {} or the environment", dir.display()))
    }

    /// Refuses settings that are unsafe for the chosen environment.
    fn check(&self) -> anyhow::Result<()> {
        if self.environment != Environment::Production {
            return Ok(());
        }
        check_production_secret("JWT_SECRET", &self.auth.jwt_secret)?;
        if self.auth.external.enabled {
            check_production_secret("APP__AUTH__EXTERNAL__SECRET", &self.auth.external.secret)?;
        }
        Ok(())
    }
}

impl Settings {
    /// The origin links in emails use, checked. Production has no default: a link to the
    /// process's bind address would reach nobody, so the process that sends email refuses to
    /// start without `PUBLIC_URL`.
    pub fn public_url(&self) -> anyhow::Result<PublicUrl> {
        let configured = self.server.public_url.trim();
        if configured.is_empty() {
            if self.environment == Environment::Production {
                bail!(
                    "PUBLIC_URL is not set; production workers put links in emails, so set PUBLIC_URL to the service's public origin (e.g. https://todo.example.com)"
                );
            }
            return PublicUrl::parse(&format!("http://{}:{}", self.server.host, self.server.port));
        }
        PublicUrl::parse(configured)
    }
}

/// An absolute `http(s)` origin with no path, query or credentials, kept without a trailing
/// slash so `{origin}{path}` is always one well-formed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(raw).map_err(|e| {
            anyhow::anyhow!("PUBLIC_URL={raw:?} is not an absolute URL such as https://todo.example.com: {e}")
        })?;
        let origin_only = url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !origin_only {
            bail!(
                "PUBLIC_URL={raw:?} must be an http(s) origin with no path, query or credentials, such as https://todo.example.com"
            );
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// `path` (starting with `/`) under this origin.
    pub fn join(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_production_secret(name: &str, secret: &SecretString) -> anyhow::Result<()> {
    let secret = secret.expose_secret();
    if secret == DEVELOPMENT_JWT_SECRET {
        bail!(
            "{name} is the development default; set {name} to a random value of at least {MIN_SECRET_BYTES} bytes"
        );
    }
    if secret.len() < MIN_SECRET_BYTES {
        bail!("{name} is {} bytes; production needs at least {MIN_SECRET_BYTES}", secret.len());
    }
    Ok(())
}

/// Finds the config folder: `APP_CONFIG_DIR`, else `config/` beside the workspace the binary was
/// built in or any folder above the executable, so a worker started elsewhere still finds it.
fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("APP_CONFIG_DIR") {
        let dir = PathBuf::from(dir);
        if !dir.join("default.toml").is_file() {
            bail!("APP_CONFIG_DIR={} has no default.toml", dir.display());
        }
        return Ok(dir);
    }
    let beside_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors().skip(1).map(|d| d.join("config")).find(|d| d.join("default.toml").is_file())
    });
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    beside_exe
        .or_else(|| built_in.join("default.toml").is_file().then_some(built_in))
        .context("no config folder found; set APP_CONFIG_DIR to the folder holding default.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(environment: Environment, secret: &str) -> Settings {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut s = Settings::load_from(&dir, environment).expect("shipped config loads");
        s.auth.jwt_secret = SecretString::from(secret);
        s
    }

    #[test]
    fn production_refuses_the_development_secret() {
        let err = settings(Environment::Production, DEVELOPMENT_JWT_SECRET).check().unwrap_err();
        assert!(err.to_string().contains("development default"), "{err}");
    }

    #[test]
    fn production_refuses_a_short_secret() {
        let err = settings(Environment::Production, "short").check().unwrap_err();
        assert!(err.to_string().contains("at least 32"), "{err}");
    }

    #[test]
    fn production_accepts_a_long_random_secret() {
        let s = settings(Environment::Production, "0123456789abcdef0123456789abcdef");
        assert!(s.check().is_ok());
    }

    #[test]
    fn the_environment_file_overrides_the_defaults() {
        let dir = std::env::temp_dir().join(format!("todo-config-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        std::fs::copy(shipped, dir.join("default.toml")).unwrap();
        std::fs::write(dir.join("production.toml"), "[server]\nbody_limit_bytes = 1234\n").unwrap();
        let production = Settings::load_from(&dir, Environment::Production).unwrap();
        let test = Settings::load_from(&dir, Environment::Test).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(production.server.body_limit_bytes, 1234);
        assert_eq!(test.server.body_limit_bytes, 65536, "a missing environment file leaves the defaults");
        assert_eq!(production.environment, Environment::Production);
    }

    #[test]
    fn public_url_defaults_to_the_local_address_outside_production_only() {
        let development = settings(Environment::Development, DEVELOPMENT_JWT_SECRET);
        assert_eq!(development.public_url().unwrap().as_str(), "http://127.0.0.1:8000");
        let mut production = settings(Environment::Production, DEVELOPMENT_JWT_SECRET);
        production.server.public_url = String::new();
        let err = production.public_url().unwrap_err().to_string();
        assert!(err.starts_with("PUBLIC_URL is not set") && !err.contains('\n'), "{err}");
        production.server.public_url = "https://todo.example.com/".into();
        assert_eq!(
            production.public_url().unwrap().join("/email/verify"),
            "https://todo.example.com/email/verify"
        );
    }

    #[test]
    fn public_url_must_be_an_http_origin() {
        for bad in [
            "todo.example.com",
            "ftp://todo.example.com",
            "https://todo.example.com/app",
            "https://todo.example.com/?a=1",
            "https://user:pw@todo.example.com",
            "javascript:alert(1)",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(PublicUrl::parse("http://localhost:8000").unwrap().as_str(), "http://localhost:8000");
    }

    #[test]
    fn a_reminder_caps_at_the_limit_and_zero_means_no_cap() {
        let caps = ReminderCaps { per_account_per_hour: 2, per_recipient_per_hour: 3 };
        assert_eq!(caps.exceeded(1, 1), None);
        assert_eq!(caps.exceeded(2, 0), Some(Cap::Account));
        assert_eq!(caps.exceeded(0, 3), Some(Cap::Recipient));
        assert_eq!(caps.exceeded(5, 5), Some(Cap::Account), "the account's cap is named first");
        let off = ReminderCaps { per_account_per_hour: 0, per_recipient_per_hour: 0 };
        assert!(!off.enabled());
        assert_eq!(off.exceeded(1_000_000, 1_000_000), None);
    }

    #[test]
    fn development_allows_the_default_secret() {
        assert!(settings(Environment::Development, DEVELOPMENT_JWT_SECRET).check().is_ok());
    }
}
