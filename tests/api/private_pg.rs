//! A private PostgreSQL server that a test may stop and start, built with `initdb` into a
//! temporary folder on a free port from the machine's own PostgreSQL binaries. The shared
//! server the rest of the suite uses is never touched.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    /// Creates and starts the server. Panics with the reason when it cannot, since a test that
    /// needs it cannot mean anything without it.
    pub fn start() -> Self {
        let bin =
            binaries().expect("PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(format!("todo-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the server's folder");
        let port = free_port();
        let server = Self { dir, bin, port };
        if running_as_root() {
            // initdb refuses to run as root; the server runs as the postgres account instead.
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&server.dir));
        }
        server.pg(
            "initdb",
            &["-D", &server.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        );
        server.start_again();
        server
    }

    /// A started server with the test settings pointed at it (a 2 s acquire timeout, so an
    /// outage answers quickly), a pool, and every migration applied.
    pub async fn start_migrated() -> (Self, todo::config::Settings, sqlx::PgPool) {
        let server = tokio::task::spawn_blocking(Self::start).await.expect("start PostgreSQL");
        let mut settings = crate::helpers::test_settings();
        settings.database.url = secrecy::SecretString::from(server.url());
        settings.database.acquire_timeout_secs = 2;
        let pool = todo::db::connect(&settings.database).await.expect("connect to the private server");
        todo::db::migrate(&pool).await.expect("migrate");
        (server, settings, pool)
    }

    /// A hot standby of `primary`, from `pg_basebackup`, streaming from it on a port of its own.
    pub fn standby_of(primary: &Self) -> Self {
        let dir = std::env::temp_dir().join(format!("todo-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the standby's folder");
        let standby = Self { dir, bin: primary.bin.clone(), port: free_port() };
        if running_as_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&standby.dir));
        }
        let port = primary.port.to_string();
        standby.pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &standby.data(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        standby.start_again();
        standby
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash or a failover would.
    pub fn stop(&self) {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.pg("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args);
        run(&mut command);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The newest installed server's binaries.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort_by_key(|bin| version_of(bin));
    versions.pop()
}

fn version_of(bin: &Path) -> u32 {
    bin.parent()
        .and_then(|v| v.file_name())
        .and_then(|v| v.to_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
