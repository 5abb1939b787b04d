//! The service as an operator runs it: the Procfile's own command lines, and their memory.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// The Procfile's command lines by process type, pointed at `bin_dir` instead of
/// `./target/release/` when the benchmark runs another build (the smoke mode's debug one).
pub fn procfile(root: &Path, bin_dir: &str) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(root.join("Procfile")).context("reading the Procfile")?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(kind, command)| (kind.trim().to_owned(), command.trim().replace("./target/release/", bin_dir)))
        .collect())
}

/// One Procfile process, started through `sh -c` exactly as a Procfile runner does.
pub struct Process {
    child: Child,
    pid: u32,
}

impl Process {
    pub fn start(root: &Path, command: &str, env: &[(String, String)]) -> anyhow::Result<Self> {
        let mut child = Command::new("sh")
            .arg("-c")
            // `exec` so the pid is the binary's, not the shell's, and a kill reaches it.
            .arg(format!("exec env {command}"))
            .current_dir(root)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting `{command}`"))?;
        let pid = child.id().context("the process has a pid")?;
        if let Ok(Some(status)) = child.try_wait() {
            bail!("`{command}` exited at once: {status}");
        }
        Ok(Self { child, pid })
    }

    /// Runs a one-off command (the Procfile's `release`) to completion.
    pub async fn run(root: &Path, command: &str, env: &[(String, String)]) -> anyhow::Result<()> {
        let mut process = Self::start(root, command, env)?;
        let status = process.child.wait().await?;
        if !status.success() {
            bail!("`{command}` failed: {status}");
        }
        Ok(())
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Samples the web and worker processes' memory every 100 ms; `take` gives each one's peak
/// since the previous `take`, in MiB.
pub struct MemoryWatch {
    peaks: Arc<Mutex<(u64, u64)>>,
    task: tokio::task::JoinHandle<()>,
}

impl MemoryWatch {
    pub fn start(web: Arc<Process>, worker: Arc<Process>) -> Self {
        let peaks = Arc::new(Mutex::new((0, 0)));
        let shared = peaks.clone();
        let task = tokio::spawn(async move {
            loop {
                let (w, k) = (web.rss_kib(), worker.rss_kib());
                {
                    let mut peaks = shared.lock().unwrap_or_else(|e| e.into_inner());
                    peaks.0 = peaks.0.max(w);
                    peaks.1 = peaks.1.max(k);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { peaks, task }
    }

    pub fn take(&self) -> (u64, u64) {
        let mut peaks = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
        let taken = (peaks.0 / 1024, peaks.1 / 1024);
        *peaks = (0, 0);
        taken
    }
}

impl Drop for MemoryWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
